#!/usr/bin/env node
// Prebuilt addons, one per tested LibTorch, in prebuildify's naming (scripts/prebuilds.js):
//   prebuilds/<platform>-<arch>/smoothce.libtorch<major>_<minor>.napi.glibc.node
// with its metadata beside it (.json): the hash of the sources it was built from (binding/ and
// CMakeLists.txt), the LibTorch it was built against, the libraries it links (DT_NEEDED), its
// RUNPATH, and the newest GLIBC_/GLIBCXX_ symbol versions it needs (read with readelf). The
// package test compares the hash with the sources in the tarball, so a stale prebuild cannot ship.
// (prebuildify itself cannot drive CMake: prebuild/prebuildify#49.)
//
//   node scripts/prebuild.js              this machine's LibTorch (npm run prebuild)
//   node scripts/prebuild.js --all        also LibTorch 2.6, built in the Debian trixie chroot by
//                                         scripts/torch2.sh (which makes the chroot if it is missing;
//                                         root and a Debian mirror needed then): npm run prebuild:all
//   node scripts/prebuild.js --all-if-ready   the same where the chroot is already there, and says
//                                         which LibTorch it could not build otherwise (prepack)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { build, sourceHash, probeAddon } = require('./build');
const libtorch = require('./libtorch');
const { libtorchTag } = require('./prebuilds');

const root = path.join(__dirname, '..');
const platformDir = `${process.platform}-${process.arch}`;
const outDir = path.join(root, 'prebuilds', platformDir);
const TRIXIE = process.env.SMOOTHCE_TRIXIE || '/var/cache/smoothce-trixie';
// The LibTorch the chroot's Debian ships (scripts/torch2.sh): what --all adds to the host's.
const CHROOT_TORCH = '2.6';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return r.status === 0 ? r.stdout : null;
}

/** Newest version of a symbol-version family (GLIBC_, GLIBCXX_) a binary needs, or null. */
function newestNeeded(versionInfo, prefix) {
  const seen = [...String(versionInfo).matchAll(new RegExp(`\\b${prefix}_(\\d+(?:\\.\\d+)+)\\b`, 'g'))].map((m) => m[1]);
  if (seen.length === 0) return null;
  const cmp = (a, b) => {
    const x = a.split('.').map(Number);
    const y = b.split('.').map(Number);
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  };
  return seen.sort(cmp).pop();
}

/** DT_NEEDED, RUNPATH and the newest GLIBC_/GLIBCXX_ versions a shared object needs (readelf). */
function elfNeeds(file) {
  const dyn = run('readelf', ['-d', '-W', file]);
  const ver = run('readelf', ['-V', '-W', file]);
  if (dyn === null || ver === null) return null;
  const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const rp = /\((?:RUNPATH|RPATH)\)\s+Library (?:runpath|rpath): \[([^\]]*)\]/.exec(dyn);
  // Only the version *needs* section (.gnu.version_r) counts, not the versions the file defines.
  const needs = ver.split(/\n(?=\S)/).filter((s) => s.includes('.gnu.version_r')).join('\n');
  return { needed, runpath: rp ? rp[1].split(':').filter(Boolean) : [], glibc: newestNeeded(needs, 'GLIBC'), glibcxx: newestNeeded(needs, 'GLIBCXX') };
}

function osName() {
  try {
    return (/^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8')) ?? [])[1] ?? null;
  } catch {
    return null;
  }
}

/** Builds this machine's prebuild; resolves to { status, tag }. */
async function buildHost() {
  const hashBefore = sourceHash(root);
  const r = await build({ root });
  if (r.status !== 0) return { status: r.status };
  const from = path.join(root, 'build', 'Release', 'smoothce.node');
  const probe = probeAddon(from);
  if (!probe.ok) {
    console.error(`prebuild: build/Release/smoothce.node does not load: ${probe.error}`);
    return { status: 1 };
  }
  const tag = libtorchTag(probe.torch);
  const stem = `smoothce.${tag}.napi.glibc`;
  fs.mkdirSync(outDir, { recursive: true });
  // The untagged names of earlier versions would be taken by node-gyp-build for any LibTorch.
  for (const old of ['smoothce.node', 'smoothce.json']) fs.rmSync(path.join(outDir, old), { force: true });
  const to = path.join(outDir, `${stem}.node`);
  fs.copyFileSync(from, to);
  spawnSync('strip', ['--strip-unneeded', to], { stdio: 'inherit' });
  const loads = probeAddon(to);
  if (!loads.ok) {
    console.error(`prebuild: ${path.relative(root, to)} does not load: ${loads.error}`);
    return { status: 1 };
  }
  if (sourceHash(root) !== hashBefore) {
    console.error('prebuild: binding/ or CMakeLists.txt changed during the build; run it again');
    return { status: 1 };
  }
  const elf = elfNeeds(to);
  if (!elf) {
    console.error('prebuild: readelf (binutils) is needed to record what the prebuild links and the glibc it needs');
    return { status: 1 };
  }
  const chosen = libtorch.candidates().find((c) => c.selected);
  const meta = {
    name: 'smoothce',
    file: path.basename(to),
    sourceHash: hashBefore,
    torchVersion: probe.torch,
    cuda: probe.cuda,
    libtorch: chosen ? { source: chosen.source, path: chosen.path } : null,
    needed: elf.needed,
    runpath: elf.runpath,
    glibc: elf.glibc,
    glibcxx: elf.glibcxx,
    napi: 8,
    platform: process.platform,
    arch: process.arch,
    libc: 'glibc',
    builtOn: osName(),
    builtWith: `node ${process.version}`,
  };
  fs.writeFileSync(path.join(outDir, `${stem}.json`), `${JSON.stringify(meta, null, 2)}\n`);
  console.log(
    `prebuild: ${path.relative(root, to)} (${fs.statSync(to).size} bytes, LibTorch ${probe.torch}, needs glibc >= ${elf.glibc}, ` +
      `sources ${hashBefore.slice(0, 12)})`,
  );
  return { status: 0, tag };
}

/** Whether the trixie chroot of scripts/torch2.sh is there and usable by this process. */
function chrootReady() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'it needs root (chroot)';
  if (!fs.existsSync(path.join(TRIXIE, 'etc', 'smoothce-torch2-ready'))) return `there is no ready chroot at ${TRIXIE} (\`npm run prebuild:all\` makes one)`;
  return null;
}

/** The LibTorch 2.6 prebuild, built in the chroot and copied here; resolves to an exit status. */
function buildInChroot() {
  const tag = libtorchTag(CHROOT_TORCH);
  // The chroot's copy of the checkout is replaced by the next torch2.sh run (another one may be
  // waiting for its lock), so the prebuild is copied out, inside this run, to a folder of its own.
  const out = `/tmp/smoothce-prebuild-${process.pid}`;
  const cmd = `node scripts/prebuild.js && rm -rf ${out} && mkdir -p ${out} && cp prebuilds/${platformDir}/smoothce.${tag}.* ${out}/`;
  const r = spawnSync('bash', [path.join(root, 'scripts', 'torch2.sh'), '--run', cmd], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`prebuild: the LibTorch ${CHROOT_TORCH} prebuild failed in the chroot (scripts/torch2.sh exit ${r.status})`);
    return r.status ?? 1;
  }
  const from = path.join(TRIXIE, out);
  const files = fs.existsSync(from) ? fs.readdirSync(from).filter((n) => n.startsWith(`smoothce.${tag}.`)) : [];
  if (!files.some((n) => n.endsWith('.node')) || !files.some((n) => n.endsWith('.json'))) {
    console.error(`prebuild: the chroot built no ${tag} prebuild in ${from}`);
    return 1;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const n of files) fs.copyFileSync(path.join(from, n), path.join(outDir, n));
  fs.rmSync(from, { recursive: true, force: true });
  const meta = JSON.parse(fs.readFileSync(path.join(outDir, `smoothce.${tag}.napi.glibc.json`), 'utf8'));
  console.log(`prebuild: prebuilds/${platformDir}/smoothce.${tag}.napi.glibc.node (LibTorch ${meta.torchVersion}, ${meta.builtOn}, needs glibc >= ${meta.glibc}), from the chroot`);
  return 0;
}

/** A prebuild left from an earlier build, kept only if built from the current sources. */
function keepIfFresh(tag, why) {
  const json = path.join(outDir, `smoothce.${tag}.napi.glibc.json`);
  const node = json.replace(/\.json$/, '.node');
  let meta = null;
  try {
    meta = JSON.parse(fs.readFileSync(json, 'utf8'));
  } catch {
    // none
  }
  if (meta && fs.existsSync(node) && meta.sourceHash === sourceHash(root)) {
    console.log(`prebuild: could not build the LibTorch ${CHROOT_TORCH} prebuild now (${why}); keeping ${path.relative(root, node)}, built from these same sources`);
    return;
  }
  for (const f of [json, node]) fs.rmSync(f, { force: true });
  console.log(
    `prebuild: could not build the LibTorch ${CHROOT_TORCH} prebuild (${why}): the package will hold only this machine's. ` +
      '`npm run prebuild:all` as root builds both.',
  );
}

async function main() {
  const all = process.argv.includes('--all');
  const ifReady = process.argv.includes('--all-if-ready');
  const host = await buildHost();
  if (host.status !== 0 || (!all && !ifReady)) return host.status;
  if (host.tag === libtorchTag(CHROOT_TORCH)) return 0; // this machine already is the chroot's LibTorch
  if (ifReady) {
    const why = chrootReady();
    if (why) {
      keepIfFresh(libtorchTag(CHROOT_TORCH), why);
      return 0;
    }
  }
  return buildInChroot();
}

if (require.main === module) {
  main().then((code) => {
    process.exitCode = code;
  });
}

module.exports = { elfNeeds, newestNeeded };
