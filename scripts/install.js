#!/usr/bin/env node
// npm "install" hook: use the prebuilt addon when it loads here (no compiler needed), otherwise
// compile from source against the LibTorch found (scripts/build.js; the order is in
// scripts/libtorch.js and CMakeLists.txt). Touches no network.
//   SMOOTHCE_SKIP_INSTALL=1        do nothing (scripts/setup.sh builds explicitly)
//   SMOOTHCE_BUILD_FROM_SOURCE=1   compile even when the prebuild loads
// A failed source build does not fail `npm install`: the package stays installed, so that
// `npx smoothce doctor` can say what is missing and `npx smoothce build` can retry; the first
// call then throws a load error that points to both.
'use strict';
const path = require('node:path');

const root = path.join(__dirname, '..');

async function main() {
  if (process.env.SMOOTHCE_SKIP_INSTALL) return 0;
  const { build, probeAddon } = require('./build');
  const libtorch = require('./libtorch');
  if (!process.env.SMOOTHCE_BUILD_FROM_SOURCE) {
    // The prebuild whose LibTorch matches the one found here (scripts/prebuilds.js).
    const { chosen, reason } = require('./prebuilds').choose(root);
    const file = chosen ? chosen.file : null;
    if (!file) console.log(`smoothce: no prebuilt addon fits here (${reason}); building from source`);
    if (file) {
      const probe = probeAddon(file);
      if (probe.ok) {
        console.log(`smoothce: using the prebuilt native addon (${path.relative(root, file)}, LibTorch ${probe.torch}): ${reason}`);
        return 0;
      }
      console.log(`smoothce: the prebuilt addon does not load here (${probe.error}); building from source`);
    }
  }
  const chosen = libtorch.candidates().find((c) => c.selected);
  console.log(
    chosen
      ? `smoothce: LibTorch from ${chosen.label}: ${chosen.path}${chosen.version ? ` (${chosen.version})` : ''}`
      : 'smoothce: no LibTorch found (looked at LIBTORCH, Torch_DIR, SMOOTHCE_PYTHON, python3 on PATH, the system)',
  );
  const r = await build({ root });
  if (r.status !== 0) {
    console.error(
      'smoothce: WARNING: the native addon could not be built, so smoothce cannot compute until it is. It needs ' +
        'cmake (>= 3.18), a C++17 compiler and LibTorch (Debian/Ubuntu: apt-get install cmake g++ libtorch-dev; ' +
        'or set LIBTORCH to a LibTorch root, or SMOOTHCE_PYTHON to a python with torch). From your project: ' +
        '`npx smoothce doctor` says what is missing; `npx smoothce build` retries.',
    );
  }
  return 0;
}

main().then((code) => {
  process.exitCode = code;
});
