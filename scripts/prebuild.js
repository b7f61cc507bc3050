#!/usr/bin/env node
// npm run prebuild (and prepack): compile the addon (incrementally, scripts/build.js) and copy
// it into prebuildify's naming, prebuilds/<platform>-<arch>/smoothce.node, where
// node-gyp-build finds it, with smoothce.json beside it: the hash of the sources it was built
// from (binding/ and CMakeLists.txt), the LibTorch it was built against and where that was.
// The package test compares that hash with the sources in the tarball, so a stale prebuild
// cannot ship. (prebuildify itself cannot drive CMake: prebuild/prebuildify#49.)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { build, sourceHash, probeAddon } = require('./build');
const libtorch = require('./libtorch');

const root = path.join(__dirname, '..');

async function main() {
  const hashBefore = sourceHash(root);
  const r = await build({ root });
  if (r.status !== 0) return r.status;
  const from = path.join(root, 'build', 'Release', 'smoothce.node');
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.mkdirSync(dir, { recursive: true });
  const to = path.join(dir, 'smoothce.node');
  fs.copyFileSync(from, to);
  spawnSync('strip', ['--strip-unneeded', to], { stdio: 'inherit' });
  const probe = probeAddon(to);
  if (!probe.ok) {
    console.error(`prebuild: ${path.relative(root, to)} does not load: ${probe.error}`);
    return 1;
  }
  if (sourceHash(root) !== hashBefore) {
    console.error('prebuild: binding/ or CMakeLists.txt changed during the build; run it again');
    return 1;
  }
  const chosen = libtorch.candidates().find((c) => c.selected);
  const meta = {
    name: 'smoothce',
    sourceHash: hashBefore,
    torchVersion: probe.torch,
    cuda: probe.cuda,
    libtorch: chosen ? { source: chosen.source, path: chosen.path } : null,
    napi: 8,
    platform: process.platform,
    arch: process.arch,
    libc: 'glibc',
    builtWith: `node ${process.version}`,
  };
  fs.writeFileSync(path.join(dir, 'smoothce.json'), `${JSON.stringify(meta, null, 2)}\n`);
  console.log(`prebuild: ${path.relative(root, to)} (${fs.statSync(to).size} bytes, LibTorch ${probe.torch}, sources ${hashBefore.slice(0, 12)})`);
  return 0;
}

main().then((code) => {
  process.exitCode = code;
});
