/**
 * `smoothce/vitest`: the toMatchTorch matcher and its type declaration for vitest.
 * Importing this module does not import vitest at run time.
 *
 *   import { expect } from 'vitest';
 *   import { toMatchTorch } from 'smoothce/vitest';
 *   expect.extend({ toMatchTorch });
 */
import type { MatchTorchOptions } from './matcher';
// Type-only: makes vitest's declarations visible for the augmentation below; emits no require.
import type {} from 'vitest';

export { toMatchTorch } from './matcher';
export type { MatchTorchOptions, MatcherResult } from './matcher';

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface Matchers<T = any> {
    /** Compares with PyTorch's values (torch.testing.assert_close's rule and default tolerances). */
    toMatchTorch(expected: unknown, options?: MatchTorchOptions): void;
  }
}
