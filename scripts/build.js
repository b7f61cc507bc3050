#!/usr/bin/env node
// Compiles the native addon into build/Release/smoothce.node with CMake, in place: in this
// checkout or in an installed package (node_modules/smoothce). Used by `npm install`'s
// fallback (scripts/install.js), `npx smoothce build`, scripts/prebuild.js and scripts/setup.sh.
//
// It runs cmake itself, with the same cache variables as `cmake-js compile` (so the two share
// build/ incrementally), taking Node-API's headers from the node-api-headers package: cmake-js
// is needed only by contributors, not by anyone installing the package. Nothing here touches
// the network. The compiler's progress lines are shown as they come, with a line every 15 s
// saying how long it has been running, and everything goes to build/smoothce-build.log too.
// In a checkout (where binding/testing/ exists) it also builds the test addon,
// build/Testing/smoothce_testing.node: the same objects plus the test and benchmark hooks.
//   node scripts/build.js [--quiet]
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const CPU_SECONDS_PER_FILE = 40; // one binding/*.cc against LibTorch's headers, measured ~25-50 s

/**
 * Every file under binding/ (its folders included) but binding/testing/ (the test addon's hooks,
 * not shipped), as sorted '/'-separated paths relative to root: what smoothce.node is built from.
 */
function bindingFiles(root = ROOT) {
  return fs
    .readdirSync(path.join(root, 'binding'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath ?? e.path, e.name)).split(path.sep).join('/'))
    .filter((f) => !f.startsWith('binding/testing/'))
    .sort();
}

/** sha256 of CMakeLists.txt and every file under binding/ but testing/: what a prebuild was compiled from. */
function sourceHash(root = ROOT) {
  const h = crypto.createHash('sha256');
  const files = ['CMakeLists.txt', ...bindingFiles(root)];
  for (const rel of files) {
    h.update(rel);
    h.update('\0');
    h.update(fs.readFileSync(path.join(root, rel)));
    h.update('\0');
  }
  return h.digest('hex');
}

function onPath(cmd) {
  return String(process.env.PATH || '')
    .split(path.delimiter)
    .some((d) => {
      try {
        fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

function elapsed(ms) {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** The cache values `cmake-js compile` passes (cmake-js 7, Node-API build), so both share build/. */
function cacheArgs(root) {
  const req = (id) => require(require.resolve(id, { paths: [root] }));
  const apiHeaders = req('node-api-headers').include_dir;
  const addonApi = String(req('node-addon-api').include).replace(/"/g, ''); // absolute, quoted
  const D = {
    CMAKE_BUILD_TYPE: 'Release',
    CMAKE_LIBRARY_OUTPUT_DIRECTORY: path.join(root, 'build', 'Release'),
    CMAKE_MSVC_RUNTIME_LIBRARY: 'MultiThreaded$<$<CONFIG:Debug>:Debug>',
    CMAKE_JS_INC: `${apiHeaders};${addonApi}`,
    CMAKE_JS_SRC: '',
    NODE_RUNTIME: 'node',
    NODE_RUNTIMEVERSION: process.versions.node,
    NODE_ARCH: process.arch,
    CMAKE_JS_LIB: '',
  };
  return Object.entries(D).map(([k, v]) => `-D${k}=${v}`);
}

/**
 * Configures and compiles. Resolves to { status, logFile, seconds }.
 * @param {{ root?: string, quiet?: boolean, log?: (line: string) => void }} [opts]
 */
function build(opts = {}) {
  const root = opts.root ?? ROOT;
  const say = opts.log ?? ((line) => console.log(line));
  const buildDir = path.join(root, 'build');
  const started = Date.now();
  if (!onPath('cmake')) {
    say('smoothce: cmake was not found on PATH. Install cmake (>= 3.18) and a C++17 compiler (Debian/Ubuntu: apt-get install cmake g++), then run `npx smoothce build`.');
    return Promise.resolve({ status: 1, logFile: null, seconds: 0 });
  }
  const generator = onPath('ninja') ? 'Ninja' : 'Unix Makefiles';
  // A build/ configured elsewhere (a copied package) or with another generator cannot be reused.
  const cache = path.join(buildDir, 'CMakeCache.txt');
  let fresh = !fs.existsSync(cache);
  if (!fresh) {
    const text = fs.readFileSync(cache, 'utf8');
    const home = (/^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$/m.exec(text) ?? [])[1];
    const gen = (/^CMAKE_GENERATOR:INTERNAL=(.*)$/m.exec(text) ?? [])[1];
    if ((home && path.resolve(home) !== path.resolve(root)) || (gen && gen !== generator)) {
      say(`smoothce: build/ was configured for ${home} with ${gen}; starting it afresh`);
      fs.rmSync(buildDir, { recursive: true, force: true });
      fresh = true;
    }
  }
  fs.mkdirSync(buildDir, { recursive: true });
  const logFile = path.join(buildDir, 'smoothce-build.log');
  const logStream = fs.openSync(logFile, 'w');

  const files = bindingFiles(root).filter((f) => f.endsWith('.cc')).length;
  const cores = Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
  const estimate = Math.ceil((files * CPU_SECONDS_PER_FILE) / Math.min(cores, files));
  say(
    `smoothce: compiling the native addon (${files} C++ files against LibTorch, ${cores} core${cores === 1 ? '' : 's'}): ` +
      (fresh ? `a first build takes about ${elapsed(estimate * 1000)} on idle cores` : 'incremental: only what changed is recompiled') +
      `. Log: ${logFile}`,
  );

  const steps = [
    // find_package caches Torch_DIR; forget it (unless the caller set it) so that a changed
    // LIBTORCH / SMOOTHCE_PYTHON / python3 is looked at again, in CMakeLists.txt's order.
    ['cmake', ['-S', root, '-B', buildDir, '-G', generator, '--no-warn-unused-cli', ...(process.env.Torch_DIR ? [] : ['-UTorch_DIR']), ...cacheArgs(root)]],
    ['cmake', ['--build', buildDir, '--config', 'Release', ...(generator === 'Ninja' ? [] : ['--parallel', String(cores)])]],
  ];
  return new Promise((resolve) => {
    let lastLine = Date.now();
    let progress = ''; // ninja's "[done/total]"
    const beat = setInterval(() => {
      if (Date.now() - lastLine >= 14_000) {
        const ms = Date.now() - started;
        const expect = !fresh ? '' : ms <= estimate * 1000 ? `, about ${elapsed(estimate * 1000)} expected` : `, past the ~${elapsed(estimate * 1000)} estimate: the machine is busy or slower`;
        say(`smoothce: still compiling, ${elapsed(ms)} elapsed${progress ? `, ${progress} steps done` : ''}${expect}`);
        lastLine = Date.now();
      }
    }, 15_000);
    const finish = (status) => {
      clearInterval(beat);
      fs.closeSync(logStream);
      const seconds = (Date.now() - started) / 1000;
      const testing = fs.existsSync(path.join(root, 'binding', 'testing')) ? ' (and the test addon build/Testing/smoothce_testing.node)' : '';
      if (status === 0) say(`smoothce: built build/Release/smoothce.node${testing} in ${elapsed(seconds * 1000)}`);
      else say(`smoothce: the native build failed (exit ${status}); the full log is ${logFile}`);
      resolve({ status, logFile, seconds });
    };
    const next = (i) => {
      if (i === steps.length) return finish(0);
      const [cmd, args] = steps[i];
      fs.writeSync(logStream, `$ ${cmd} ${args.join(' ')}\n`);
      const child = spawn(cmd, args, { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
      const onData = (chunk) => {
        fs.writeSync(logStream, chunk);
        for (const line of String(chunk).split('\n')) {
          if (!line.trim()) continue;
          const step = /^\[(\d+)\/(\d+)\]/.exec(line);
          if (step) progress = `${step[1]}/${step[2]}`;
          // Configure chatter goes to the log; what the build found, progress and errors are shown.
          const show = !opts.quiet && (i === 1 || /smoothce:|error|Error|warning: /.test(line));
          if (show || /error/i.test(line)) {
            say(`  ${line}`);
            lastLine = Date.now();
          }
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', (err) => {
        say(`smoothce: could not run ${cmd}: ${err.message}`);
        finish(1);
      });
      child.on('close', (code) => (code === 0 ? next(i + 1) : finish(code ?? 1)));
    };
    next(0);
  });
}

/** The addon's own description of itself, from a child process (a crash there stays there). */
function probeAddon(file) {
  const code = `const b = require(${JSON.stringify(file)}); console.log(JSON.stringify({ torch: b.torchVersion(), cuda: b.cudaBuilt() }))`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) {
    try {
      return { ok: true, ...JSON.parse(r.stdout.trim().split('\n').pop()) };
    } catch {
      // fall through
    }
  }
  const msg = String(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').find((l) => /Error|error/.test(l));
  return { ok: false, error: msg ?? String(r.stderr).trim().split('\n')[0] };
}

module.exports = { build, sourceHash, bindingFiles, probeAddon, elapsed };

if (require.main === module) {
  build({ quiet: process.argv.includes('--quiet') }).then((r) => {
    process.exitCode = r.status;
  });
}
