// Where LibTorch is, as the build looks for it, and which version a LibTorch library file is.
// Shared by scripts/build.js (it says which one a build will use), `npx smoothce doctor`
// (it lists them all) and lib/core/native.ts (it checks the LibTorch loaded at run time against
// the one the addon was compiled with). The order mirrors CMakeLists.txt, which makes the
// actual choice:
//   1. LIBTORCH   2. Torch_DIR   3. SMOOTHCE_PYTHON's torch   4. a `python3` on PATH whose
//   torch imports   5. the system LibTorch (Debian's libtorch-dev)
// Nothing here touches the network; only local files and local Python interpreters.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

/** "2.1.0+cu121" or "1.13.0a0" -> [2, 1, 0]; null when it does not start with a version. */
function parseVersion(text) {
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(String(text ?? ''));
  if (!m) return null;
  return m[3] === undefined ? [Number(m[1]), Number(m[2])] : [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Whether two versions agree on every component both have (1.13 matches 1.13.0). */
function sameVersion(a, b) {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) return true; // unknown: nothing to compare
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return false;
  return true;
}

function readIf(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** TORCH_VERSION_MAJOR/MINOR/PATCH from a LibTorch include folder's torch/version.h. */
function headerVersion(includeDir) {
  for (const rel of ['torch/csrc/api/include/torch/version.h', 'torch/version.h']) {
    const text = readIf(path.join(includeDir, rel));
    if (!text) continue;
    const get = (k) => (new RegExp(`#define\\s+TORCH_VERSION_${k}\\s+(\\d+)`).exec(text) ?? [])[1];
    if (get('MAJOR') !== undefined) return `${get('MAJOR')}.${get('MINOR')}.${get('PATCH')}`;
  }
  return null;
}

/**
 * The version of the LibTorch a library file (libc10.so, libtorch_cpu.so...) belongs to: from a
 * versioned file name (Debian: libc10.so.1.13.0), a pip torch's torch/version.py, a LibTorch
 * zip's build-version, or the headers next to it. null when none says.
 */
function versionOfLibrary(libFile) {
  let real = libFile;
  try {
    real = fs.realpathSync(libFile);
  } catch {
    // keep the name as given
  }
  const m = /\.so\.(\d+\.\d+(?:\.\d+)?)$/.exec(real);
  if (m) return m[1];
  const root = path.resolve(path.dirname(real), '..');
  const py = readIf(path.join(root, 'version.py'));
  const pv = py && /__version__\s*=\s*['"]([^'"]+)['"]/.exec(py);
  if (pv) return pv[1];
  const bv = readIf(path.join(root, 'build-version'));
  if (bv && parseVersion(bv)) return bv.trim();
  return headerVersion(path.join(root, 'include'));
}

/** The LibTorch library (libc10) this process has mapped, from /proc/self/maps; null if none. */
function loadedLibrary() {
  const maps = readIf('/proc/self/maps');
  if (!maps) return null;
  for (const line of maps.split('\n')) {
    const i = line.indexOf('/');
    if (i < 0) continue;
    const file = line.slice(i).trim();
    if (/\/libc10\.so(\.[\d.]+)?$/.test(file)) return file;
  }
  return null;
}

function fileExists(f) {
  try {
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
}

function hasCudaLibs(libDir) {
  return ['libtorch_cuda.so', 'libc10_cuda.so'].some((n) => fileExists(path.join(libDir, n)));
}

function hasGloo(includeDirs) {
  const ok = (rel) => includeDirs.some((d) => fileExists(path.join(d, rel)));
  return ok('gloo/config.h') && ok('torch/csrc/distributed/c10d/ProcessGroupGloo.hpp');
}

/** Describes a LibTorch root folder (an unzipped libtorch/ or a pip torch package folder). */
function describeRoot(root) {
  const libDir = path.join(root, 'lib');
  const include = path.join(root, 'include');
  const lib = ['libc10.so', 'libtorch_cpu.so'].map((n) => path.join(libDir, n)).find(fileExists);
  const version = headerVersion(include) ?? (lib ? versionOfLibrary(lib) : null);
  const problem = !lib
    ? `no ${path.join(libDir, 'libc10.so')}: not a LibTorch root (it should hold lib/ and include/)`
    : !version
      ? `no torch/version.h under ${include}`
      : null;
  return {
    path: root,
    version,
    cuda: hasCudaLibs(libDir),
    gloo: hasGloo([include, '/usr/include']),
    problem,
  };
}

const PY_PROBE = [
  'import json, os, torch, torch.utils',
  'd = os.path.dirname(torch.__file__)',
  'g = False',
  'try:',
  '    import torch.distributed as dist',
  '    g = bool(dist.is_available() and dist.is_gloo_available())',
  'except Exception:',
  '    pass',
  "print(json.dumps({'version': torch.__version__, 'cuda': torch.version.cuda, 'root': d, 'prefix': torch.utils.cmake_prefix_path, 'gloo': g}))",
].join('\n');

/** Asks a Python interpreter about its torch; { ok, ... } or { ok: false, problem }. */
function probePython(python) {
  const r = spawnSync(python, ['-c', PY_PROBE], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { ok: false, problem: `${python} could not be run (${r.error.code ?? r.error.message})` };
  if (r.status !== 0) {
    const last = String(r.stderr || '').trim().split('\n').pop() || `exit ${r.status}`;
    return { ok: false, problem: `${python} cannot import torch (${last})` };
  }
  try {
    const info = JSON.parse(r.stdout.trim().split('\n').pop());
    return { ok: true, ...info };
  } catch {
    return { ok: false, problem: `${python} printed no torch description` };
  }
}

/** The first `python3` on env's PATH (not resolved through a shell). */
function pathPython3(env = process.env) {
  for (const dir of String(env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const f = path.join(dir, 'python3');
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // next
    }
  }
  return null;
}

const SYSTEM_TORCH_DIRS = [
  '/usr/lib/x86_64-linux-gnu/cmake/Torch',
  '/usr/lib/aarch64-linux-gnu/cmake/Torch',
  '/usr/local/share/cmake/Torch',
  '/usr/share/cmake/Torch',
];

function describeTorchDir(dir) {
  const cfg = readIf(path.join(dir, 'TorchConfigVersion.cmake'));
  const version = cfg && (/set\(PACKAGE_VERSION\s+"([^"]+)"\)/.exec(cfg) ?? [])[1];
  if (!fileExists(path.join(dir, 'TorchConfig.cmake'))) {
    return { path: dir, version: null, cuda: false, gloo: false, problem: `no TorchConfig.cmake in ${dir}` };
  }
  // <prefix>/share/cmake/Torch (LibTorch zip, pip) or <prefix>/lib/<triplet>/cmake/Torch (Debian).
  const up3 = path.resolve(dir, '../../..');
  const libDirs = [path.join(up3, 'lib'), path.resolve(dir, '../..')];
  const includes = [path.join(up3, 'include'), '/usr/include'];
  return {
    path: dir,
    version: version ?? null,
    cuda: libDirs.some(hasCudaLibs),
    gloo: hasGloo(includes),
    problem: null,
  };
}

function fromPython(python, source, label) {
  const p = probePython(python);
  if (!p.ok) return { source, label, path: python, version: null, cuda: false, gloo: false, problem: p.problem };
  return {
    source,
    label,
    path: p.root,
    python,
    version: p.version,
    cuda: p.cuda ? `CUDA ${p.cuda}` : false,
    gloo: p.gloo,
    problem: null,
  };
}

/**
 * Every place LibTorch is looked for, in the build's order. Each: { source, label, path,
 * version, cuda, gloo, problem, set, selected }. `set` is false for a place that is not
 * configured (an unset variable); `selected` marks the one CMakeLists.txt will use.
 * @param {NodeJS.ProcessEnv} [env]
 */
function candidates(env = process.env) {
  const out = [];
  if (env.LIBTORCH) out.push({ source: 'LIBTORCH', label: `LIBTORCH=${env.LIBTORCH}`, set: true, ...describeRoot(path.resolve(env.LIBTORCH)) });
  else out.push({ source: 'LIBTORCH', label: 'LIBTORCH (not set)', set: false });
  if (env.Torch_DIR) out.push({ source: 'Torch_DIR', label: `Torch_DIR=${env.Torch_DIR}`, set: true, ...describeTorchDir(path.resolve(env.Torch_DIR)) });
  else out.push({ source: 'Torch_DIR', label: 'Torch_DIR (not set)', set: false });
  if (env.SMOOTHCE_PYTHON) out.push({ set: true, ...fromPython(env.SMOOTHCE_PYTHON, 'SMOOTHCE_PYTHON', `SMOOTHCE_PYTHON=${env.SMOOTHCE_PYTHON}`) });
  else out.push({ source: 'SMOOTHCE_PYTHON', label: 'SMOOTHCE_PYTHON (not set)', set: false });
  const py = pathPython3(env);
  if (py) {
    const c = fromPython(py, 'python3', `python3 on PATH (${py})`);
    // Not importing torch is not a problem for this place, only a reason to look further.
    out.push({ ...c, set: c.problem === null, note: c.problem ?? undefined, problem: null });
  } else out.push({ source: 'python3', label: 'python3 on PATH (none)', set: false });
  const sys = SYSTEM_TORCH_DIRS.find((d) => fileExists(path.join(d, 'TorchConfig.cmake')));
  if (sys) out.push({ source: 'system', label: 'system LibTorch', set: true, ...describeTorchDir(sys) });
  else out.push({ source: 'system', label: 'system LibTorch (none: Debian/Ubuntu: apt-get install libtorch-dev)', set: false });
  const chosen = out.find((c) => c.set);
  for (const c of out) c.selected = c === chosen;
  return out;
}

module.exports = { candidates, versionOfLibrary, loadedLibrary, parseVersion, sameVersion, probePython, headerVersion };
