#!/usr/bin/env node
// npm run prebuild: compile the addon with cmake-js and copy it into prebuildify's
// naming, prebuilds/<platform>-<arch>/smoothce.node, where node-gyp-build finds it.
// (prebuildify itself cannot drive cmake-js: prebuild/prebuildify#49.)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const from = path.join(root, 'build', 'Release', 'smoothce.node');
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const to = path.join(dir, 'smoothce.node');
fs.copyFileSync(from, to);
spawnSync('strip', ['--strip-unneeded', to], { stdio: 'inherit' });
console.log(`prebuild: ${path.relative(root, to)} (${fs.statSync(to).size} bytes)`);
