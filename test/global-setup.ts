// Builds dist/ once before the suite: tests that run the package the way users do
// (child processes, the CLI, ESM/CJS entry points) load dist/, not lib/.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export default function setup(): void {
  const root = path.resolve(__dirname, '..');
  try {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: root,
      stdio: 'inherit',
    });
  } catch {
    // Type errors still emit JavaScript; test/typecheck.test.ts reports them as a failure.
    if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) throw new Error('tsc did not produce dist/index.js');
  }
  execFileSync(process.execPath, ['scripts/esm-wrapper.js'], { cwd: root, stdio: 'inherit' });
}
