import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

// The public .d.ts is part of the API: the whole project (library, tests, benchmarks)
// must type-check under `strict`.
describe('types', () => {
  it('tsc --noEmit reports no errors', () => {
    const root = path.resolve(__dirname, '..');
    let output = '';
    let status = 0;
    try {
      output = execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit'], {
        cwd: root,
        encoding: 'utf8',
      });
    } catch (err) {
      const e = err as { status: number; stdout: string };
      status = e.status;
      output = e.stdout;
    }
    expect(output.trim(), output).toBe('');
    expect(status).toBe(0);
  });
});
