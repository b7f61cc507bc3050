/**
 * Which LibTorch: the loaded one's version against the one the addon was compiled with (a
 * mismatch is ERR_SMOOTHCE_TORCH_MISMATCH, naming both and the fix), the version of a
 * LibTorch library file in each layout (Debian's versioned names, a pip torch's version.py,
 * a LibTorch zip's build-version), and the order in which scripts/libtorch.js lists the
 * places a build looks (the same as CMakeLists.txt).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { torchVersion } from '../lib/index';
import { checkTorchVersion } from '../lib/core/native';

interface Candidate {
  source: string;
  set: boolean;
  selected: boolean;
  version?: string | null;
  path?: string;
  problem?: string | null;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const lt = require('../scripts/libtorch.js') as {
  candidates(env: NodeJS.ProcessEnv): Candidate[];
  versionOfLibrary(file: string): string | null;
  loadedLibrary(): string | null;
  sameVersion(a: string, b: string): boolean;
};

let dir: string;
let pipLib: string;
let zipRoot: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-torchver-'));
  // A pip torch: site-packages/torch/{lib/libc10.so, version.py}
  fs.mkdirSync(path.join(dir, 'torch', 'lib'), { recursive: true });
  pipLib = path.join(dir, 'torch', 'lib', 'libc10.so');
  fs.writeFileSync(pipLib, '');
  fs.writeFileSync(path.join(dir, 'torch', 'version.py'), "__version__ = '2.3.1+cu121'\ncuda = '12.1'\n");
  // A LibTorch zip: libtorch/{lib/libc10.so, build-version, include/.../version.h}
  zipRoot = path.join(dir, 'libtorch');
  fs.mkdirSync(path.join(zipRoot, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(zipRoot, 'lib', 'libc10.so'), '');
  fs.writeFileSync(path.join(zipRoot, 'build-version'), '2.1.0+cpu\n');
  const h = path.join(zipRoot, 'include', 'torch', 'csrc', 'api', 'include', 'torch');
  fs.mkdirSync(h, { recursive: true });
  fs.writeFileSync(path.join(h, 'version.h'), '#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 1\n#define TORCH_VERSION_PATCH 0\n');
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the version of a LibTorch library file', () => {
  it('reads a pip torch, a LibTorch zip and the loaded (Debian or other) LibTorch', () => {
    expect(lt.versionOfLibrary(pipLib)).toBe('2.3.1+cu121');
    expect(lt.versionOfLibrary(path.join(zipRoot, 'lib', 'libc10.so'))).toBe('2.1.0+cpu');
    const loaded = lt.loadedLibrary();
    expect(loaded, 'this process has loaded the addon, so libc10 is mapped').toMatch(/libc10\.so/);
    expect(lt.sameVersion(torchVersion(), lt.versionOfLibrary(loaded!)!)).toBe(true);
  });

  it('compares only the components both versions have', () => {
    expect(lt.sameVersion('1.13.0', '1.13')).toBe(true);
    expect(lt.sameVersion('1.13.0', '1.13.0a0')).toBe(true);
    expect(lt.sameVersion('2.3.1', '2.3.1+cu121')).toBe(true);
    expect(lt.sameVersion('2.3.1', '2.3.0')).toBe(false);
    expect(lt.sameVersion('1.13.0', '2.1.0+cpu')).toBe(false);
  });
});

describe('checkTorchVersion (the loader)', () => {
  it('throws ERR_SMOOTHCE_TORCH_MISMATCH naming what was built, what was found and the fix', () => {
    let error: (Error & { code?: string }) | undefined;
    try {
      checkTorchVersion('1.13.0', pipLib, '/x/smoothce.node');
    } catch (e) {
      error = e as Error & { code?: string };
    }
    expect(error).toBeInstanceOf(Error);
    expect(error!.code).toBe('ERR_SMOOTHCE_TORCH_MISMATCH');
    expect(error!.message).toContain('built against LibTorch 1.13.0');
    expect(error!.message).toContain(`loaded LibTorch 2.3.1+cu121 (${pipLib})`);
    expect(error!.message).toContain('`npx smoothce build`');
    expect(error!.message).toContain('`npx smoothce doctor`');
  });

  it('passes when they agree, when the loaded version is unknown, and with SMOOTHCE_SKIP_TORCH_CHECK=1', () => {
    expect(() => checkTorchVersion('2.3.1', pipLib, 'x')).not.toThrow();
    expect(() => checkTorchVersion('1.13.0', null, 'x')).not.toThrow();
    process.env.SMOOTHCE_SKIP_TORCH_CHECK = '1';
    try {
      expect(() => checkTorchVersion('1.13.0', pipLib, 'x')).not.toThrow();
    } finally {
      delete process.env.SMOOTHCE_SKIP_TORCH_CHECK;
    }
  });
});

describe('the places a build looks for LibTorch, in order', () => {
  const bare = { PATH: '/nonexistent' };
  it('LIBTORCH, Torch_DIR, SMOOTHCE_PYTHON, python3 on PATH, the system; the first one set is used', () => {
    const c = lt.candidates({ ...bare, LIBTORCH: zipRoot });
    expect(c.map((x) => x.source)).toEqual(['LIBTORCH', 'Torch_DIR', 'SMOOTHCE_PYTHON', 'python3', 'system']);
    expect(c[0]).toMatchObject({ set: true, selected: true, version: '2.1.0', path: zipRoot, problem: null });
    expect(c.filter((x) => x.selected)).toHaveLength(1);
  });

  it('a LIBTORCH that is not a LibTorch root is still the one used (as CMake does), with a problem', () => {
    const c = lt.candidates({ ...bare, LIBTORCH: path.join(dir, 'nowhere') });
    expect(c[0].selected).toBe(true);
    expect(c[0].problem).toMatch(/not a LibTorch root/);
  });

  it('a SMOOTHCE_PYTHON without torch is a problem; a python3 on PATH without torch is passed over', () => {
    const fakeBin = path.join(dir, 'bin');
    fs.mkdirSync(fakeBin, { recursive: true });
    fs.writeFileSync(path.join(fakeBin, 'python3'), '#!/bin/sh\necho "ModuleNotFoundError: No module named torch" >&2\nexit 1\n', { mode: 0o755 });
    const c = lt.candidates({ PATH: fakeBin, SMOOTHCE_PYTHON: path.join(fakeBin, 'python3') });
    const py = c.find((x) => x.source === 'SMOOTHCE_PYTHON')!;
    expect(py.selected).toBe(true);
    expect(py.problem).toMatch(/cannot import torch/);
    const onPath = lt.candidates({ PATH: fakeBin });
    expect(onPath.find((x) => x.source === 'python3')).toMatchObject({ set: false, selected: false, problem: null });
  });
});
