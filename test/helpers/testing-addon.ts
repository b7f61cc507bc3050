/**
 * The test addon, build/Testing/smoothce_testing.node (CMakeLists.txt, target smoothce_testing):
 * the shipped addon's API plus the test and benchmark hooks (memoryFloor, computeFloor,
 * atenPathCounts, probeAsyncThreads) from binding/testing/. The shipped smoothce.node has none
 * of them. A second addon in the same process would have its own copy of the addon's static
 * state (route counters, allocator), so a test that needs the hooks loads the test addon as THE
 * addon: import this module before anything that loads it (lib/index loads it on import), e.g.
 *   import { hooks } from './helpers/testing-addon';   // first import
 * Vitest runs each test file in its own process (pool 'forks'), so this stays within the file.
 */
import * as path from 'node:path';
import { native, type NativeBinding, type TestingHooks } from '../../lib/core/native';

export const TESTING_ADDON = path.resolve(__dirname, '..', '..', 'build', 'Testing', 'smoothce_testing.node');
export const PRODUCTION_ADDON = path.resolve(__dirname, '..', '..', 'build', 'Release', 'smoothce.node');

process.env.SMOOTHCE_NATIVE = TESTING_ADDON;

/** The loaded addon with its hooks (throws if the addon loaded is not the test addon). */
export function hooks(): NativeBinding & TestingHooks {
  const b = native();
  if (typeof b.memoryFloor !== 'function') {
    throw new Error(`the addon loaded has no test hooks: import test/helpers/testing-addon first (SMOOTHCE_NATIVE=${process.env.SMOOTHCE_NATIVE})`);
  }
  return b as NativeBinding & TestingHooks;
}
