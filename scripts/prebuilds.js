// The prebuilt addons in prebuilds/<platform>-<arch>/ and which one fits this machine, without
// loading any of them. Shared by the loader (lib/ native), the install script and `smoothce doctor`.
//
// One prebuild per LibTorch release (their C++ ABIs differ), named in prebuildify's tag style:
//   smoothce.libtorch1_13.napi.glibc.node   (+ smoothce.libtorch1_13.napi.glibc.json, its metadata)
// node-gyp-build splits a name on dots and reads only its own tags (runtime, napi, abi, uv, armv,
// glibc/musl), ignoring the rest, so it would take any of them: the LibTorch tag (written without
// a dot, libtorch<major>_<minor>, so that it stays one tag) is matched here. Its metadata says
// which libc10 it links (its DT_NEEDED name, e.g. libc10.so.1.13 for Debian's packages), its
// RUNPATH, and the glibc it needs. The libc10 is looked for the way the dynamic loader would
// (LD_LIBRARY_PATH, the RUNPATH, the ld.so.conf folders, the default folders), and the prebuild
// whose LibTorch version matches the libc10 found is the one to load.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** "1.13.0" -> "libtorch1_13" (the file-name tag). */
function libtorchTag(version) {
  const m = /^(\d+)\.(\d+)/.exec(String(version));
  return m ? `libtorch${m[1]}_${m[2]}` : null;
}

/** The tag's version ("libtorch2_6" -> "2.6"), or null. */
function tagVersion(file) {
  for (const tag of path.basename(file).split('.')) {
    const m = /^libtorch(\d+)_(\d+)$/.exec(tag);
    if (m) return `${m[1]}.${m[2]}`;
  }
  return null;
}

/** The folders of /etc/ld.so.conf (its `include` globs followed, one level of `*`). */
function ldConfDirs(file = '/etc/ld.so.conf', seen = new Set()) {
  if (seen.has(file)) return [];
  seen.add(file);
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const inc = /^include\s+(.+)$/.exec(line);
    if (!inc) {
      out.push(line);
      continue;
    }
    const pattern = path.resolve(path.dirname(file), inc[1].trim());
    const dir = path.dirname(pattern);
    const re = new RegExp(`^${path.basename(pattern).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    let names = [];
    try {
      names = fs.readdirSync(dir).filter((n) => re.test(n)).sort();
    } catch {
      // no such folder
    }
    for (const n of names) out.push(...ldConfDirs(path.join(dir, n), seen));
  }
  return out;
}

const DEFAULT_DIRS = {
  x64: ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64'],
  arm64: ['/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib64', '/usr/lib64'],
};

/**
 * Where the dynamic loader would find `soname` for a library whose RUNPATH is `runpath` and
 * which sits in `origin`: the first existing file, or null. Also returns the folders looked in.
 */
function findLibrary(soname, { runpath = [], origin = '', env = process.env } = {}) {
  const dirs = [
    ...String(env.LD_LIBRARY_PATH || '').split(':'),
    ...runpath.map((d) => d.replace(/\$\{?ORIGIN\}?/g, origin)),
    ...ldConfDirs(),
    ...(DEFAULT_DIRS[process.arch] ?? []),
    '/lib',
    '/usr/lib',
  ].filter(Boolean);
  const looked = [...new Set(dirs)];
  for (const d of looked) {
    const f = path.join(d, soname);
    try {
      if (fs.statSync(f).isFile()) return { file: f, looked };
    } catch {
      // next
    }
  }
  return { file: null, looked };
}

/**
 * The prebuilds for this platform and arch that node-gyp-build's own tags allow here (runtime,
 * Node-API, libc), each with its metadata: { file, name, torchVersion, meta }.
 */
function list(root, { platform = process.platform, arch = process.arch } = {}) {
  const dir = path.join(root, 'prebuilds', `${platform}-${arch}`);
  let names = [];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.node')).sort();
  } catch {
    return [];
  }
  let gyp = null;
  try {
    gyp = require(require.resolve('node-gyp-build', { paths: [root, __dirname] }));
  } catch {
    // without it, every file is a candidate
  }
  const libc = process.env.LIBC || (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc');
  return names
    .filter((n) => {
      if (!gyp) return true;
      const tags = gyp.parseTags(n);
      if (!tags) return false;
      // node-gyp-build's matchTags, as it would apply them (napi prebuilds fit any Node ABI).
      if (!gyp.matchTags('node', process.versions.modules)(tags)) return false;
      return !tags.libc || tags.libc === libc;
    })
    .map((n) => {
      const file = path.join(dir, n);
      const meta = readJson(file.replace(/\.node$/, '.json'));
      return { file, name: n, torchVersion: meta?.torchVersion ?? tagVersion(n), meta };
    });
}

/**
 * Which prebuild fits here. Returns { chosen, reason, candidates, libtorch } where each candidate
 * has { file, name, torchVersion, libc10, found, foundVersion, match, glibc } and libtorch says
 * what was found at all ({ found: [files], looked: [folders] }).
 */
function choose(root, opts = {}) {
  const lt = opts.libtorch ?? require('./libtorch');
  const candidates = list(root, opts).map((c) => {
    const needed = c.meta?.needed ?? [];
    const libc10 = needed.find((n) => /^libc10\.so(\.|$)/.test(n)) ?? (c.torchVersion ? `libc10.so.${c.torchVersion.split('.').slice(0, 2).join('.')}` : 'libc10.so');
    const hit = findLibrary(libc10, { runpath: c.meta?.runpath ?? [], origin: path.dirname(c.file), env: opts.env ?? process.env });
    const foundVersion = hit.file ? lt.versionOfLibrary(hit.file) : null;
    const match = !!hit.file && !!c.torchVersion && (!foundVersion || lt.sameVersion(c.torchVersion, foundVersion));
    return { ...c, libc10, found: hit.file, looked: hit.looked, foundVersion, match, glibc: c.meta?.glibc ?? null };
  });
  // Any libc10 at all, whichever name (a LibTorch that no prebuild here was built for).
  const looked = [...new Set(candidates.flatMap((c) => c.looked))];
  const anyLibc10 = [];
  for (const d of looked.length ? looked : findLibrary('libc10.so', { env: opts.env ?? process.env }).looked) {
    let names = [];
    try {
      names = fs.readdirSync(d).filter((n) => /^libc10\.so(\.[\d.]+)?$/.test(n));
    } catch {
      // missing folder
    }
    for (const n of names) {
      try {
        if (fs.statSync(path.join(d, n)).isFile()) anyLibc10.push(path.join(d, n));
      } catch {
        // a dangling link
      }
    }
  }
  const chosen = candidates.find((c) => c.match) ?? null;
  let reason;
  if (candidates.length === 0) reason = `no prebuild for ${process.platform}-${process.arch} in this package`;
  else if (chosen) reason = `it was built against LibTorch ${chosen.torchVersion}, and ${chosen.found} (LibTorch ${chosen.foundVersion ?? chosen.torchVersion}) is what it loads here`;
  else if (anyLibc10.length === 0) reason = 'no LibTorch (libc10) was found on this machine';
  else {
    const versions = [...new Set(anyLibc10.map((f) => lt.versionOfLibrary(f)).filter(Boolean))];
    reason = `the LibTorch found (${anyLibc10[0]}${versions.length ? `, ${versions.join(', ')}` : ''}) is not one the prebuilds were built for (${candidates.map((c) => c.torchVersion).join(', ')})`;
  }
  return { chosen, reason, candidates, libtorch: { found: anyLibc10, looked } };
}

module.exports = { list, choose, findLibrary, libtorchTag, tagVersion, ldConfDirs };
