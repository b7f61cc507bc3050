/**
 * The shipped addon exports the API only: the test and benchmark hooks (binding/testing/) are
 * built into the test addon, build/Testing/smoothce_testing.node, which is the shipped addon's
 * exports plus the hooks and nothing else (CMakeLists.txt, targets smoothce and smoothce_testing).
 * Each addon is loaded in a child process of its own.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PRODUCTION_ADDON, TESTING_ADDON } from './helpers/testing-addon';

const HOOKS = ['atenPathCounts', 'computeFloor', 'memoryFloor', 'probeAsyncThreads'];

function exportsOf(file: string): string[] {
  const script = `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(file)})).sort()))`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim().split('\n').pop()!) as string[];
}

describe('addon exports', () => {
  const shipped = exportsOf(PRODUCTION_ADDON);
  const testing = exportsOf(TESTING_ADDON);

  it('the shipped smoothce.node exports the API and no test or benchmark hook', () => {
    expect(shipped).toContain('crossEntropy');
    expect(shipped).toContain('crossEntropyFused');
    expect(shipped).toContain('calibrationStats');
    expect(shipped.filter((k) => HOOKS.includes(k))).toEqual([]);
  });

  it('the test addon is the shipped exports plus the hooks', () => {
    expect(testing).toEqual([...shipped, ...HOOKS].sort());
  });

  it('the test addon sits outside build/Release, where node-gyp-build loads the first .node it finds', () => {
    expect(fs.readdirSync(path.dirname(PRODUCTION_ADDON)).filter((f) => f.endsWith('.node'))).toEqual(['smoothce.node']);
  });
});
