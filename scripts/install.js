#!/usr/bin/env node
// npm "install" hook: use a prebuilt addon when one loads (no compiler needed),
// otherwise compile from source with cmake-js against the LibTorch found by CMakeLists.txt.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
if (process.env.SMOOTHCE_SKIP_INSTALL) process.exit(0); // scripts/setup.sh builds explicitly
if (!process.env.SMOOTHCE_BUILD_FROM_SOURCE) {
  try {
    require('node-gyp-build')(root);
    console.log('smoothce: using the prebuilt native addon');
    process.exit(0);
  } catch (err) {
    console.log(`smoothce: no loadable prebuilt addon (${String(err.message).split('\n')[0]}); building from source`);
  }
}
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    'smoothce: building the native addon failed. It needs cmake (>= 3.18), a C++17 compiler and LibTorch ' +
      '(Debian 12: apt-get install cmake g++ libtorch-dev; or set LIBTORCH to a LibTorch root). See README.md.',
  );
}
process.exit(r.status ?? 1);
