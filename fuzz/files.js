'use strict';
// Hostile and malformed files for the readers of untrusted input: the .npy reader (parseNpy,
// readNpy), the case-file loader (loadCaseFile) and, through them, `smoothce parity` and
// `smoothce calibrate`. Two parts:
//
//   HOSTILE_NPY, HOSTILE_CASES   named files, each one way a file can lie (a header that claims
//                                10^12 elements, a shape whose product overflows, truncated data,
//                                deep nesting, strings where numbers belong, ...); the tests in
//                                test/hostile-files.test.ts run every one through the readers and
//                                the CLI.
//   filesCase (kind 'files')     the fuzz case: a valid file with 1-4 random mutations from the
//                                same families plus random byte damage, read by the readers.
//
// A reader must answer every file with its result or a typed error (NpyError or
// CaseFormatError): any other error (a RangeError from an allocation, "Maximum call stack size
// exceeded") is a finding, and so is a case that raises the process's peak memory (VmHWM) by
// more than 64 MiB plus twice the file's size.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const MiB = 1024 * 1024;

// ---- .npy bytes, written by hand so that any header can be made ------------------------------
/**
 * The bytes of a .npy file: `header` is the dict text (padded here), `data` the payload.
 * major 1 has a 16-bit header length, 2 and 3 a 32-bit one; `headerLen` overrides the length
 * field (to lie about it).
 */
function npyBytes({ header, data = Buffer.alloc(0), major = 1, headerLen, magic = '\x93NUMPY' }) {
  const prefix = major === 1 ? 10 : 12;
  let text = header;
  const total = Math.ceil((prefix + text.length + 1) / 64) * 64;
  text = text + ' '.repeat(Math.max(0, total - prefix - text.length - 1)) + '\n';
  const head = Buffer.alloc(prefix);
  head.write(magic, 0, 'latin1');
  head[6] = major;
  head[7] = 0;
  const len = headerLen ?? Buffer.byteLength(text, 'latin1');
  if (major === 1) head.writeUInt16LE(len & 0xffff, 8);
  else head.writeUInt32LE(len >>> 0, 8);
  return Buffer.concat([head, Buffer.from(text, 'latin1'), Buffer.from(data)]);
}

function dict(descr, shapeText, fortran = 'False') {
  return `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shapeText}, }`;
}

function tuple(shape) {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/** A valid little float32 array (2 x 3) as .npy bytes. */
function validNpy(shape = [2, 3], descr = '<f4') {
  const n = shape.reduce((a, b) => a * b, 1);
  const width = Number(descr.slice(2));
  return npyBytes({ header: dict(descr, tuple(shape)), data: Buffer.alloc(n * width, 1) });
}

// Each entry: [name, what the file does, () => Buffer]. All are small files.
const HOSTILE_NPY = [
  ['huge-claim', 'a header that claims 10^12 float32 elements, with 24 bytes of data', () =>
    npyBytes({ header: dict('<f4', '(1000000, 1000000)'), data: Buffer.alloc(24) })],
  ['huge-claim-1d', 'a header that claims 2^40 int64 elements', () => npyBytes({ header: dict('<i8', '(1099511627776,)'), data: Buffer.alloc(8) })],
  ['overflow-product', 'a shape whose product is past 2^64', () =>
    npyBytes({ header: dict('<f8', '(4294967296, 4294967296, 4294967296)'), data: Buffer.alloc(8) })],
  ['overflow-safe-dims', 'dimensions just under 2^53 whose product overflows to Infinity', () =>
    npyBytes({ header: dict('<f4', tuple(Array(20).fill(9007199254740991))), data: Buffer.alloc(16) })],
  ['overflow-times-zero', 'huge dimensions times a zero (Infinity * 0 = NaN if overflow is not caught)', () =>
    npyBytes({ header: dict('<f4', tuple([...Array(20).fill(9007199254740991), 0])), data: Buffer.alloc(0) })],
  ['dim-past-2^53', 'a dimension past 2^53', () => npyBytes({ header: dict('<f4', '(99999999999999999999,)'), data: Buffer.alloc(4) })],
  ['many-dims', '100 dimensions of size 1', () => npyBytes({ header: dict('<f4', tuple(Array(100).fill(1))), data: Buffer.alloc(4) })],
  ['truncated-data', 'a (1000, 1000) float32 header with half of its data', () =>
    npyBytes({ header: dict('<f4', '(1000, 1000)'), data: Buffer.alloc(2_000_000) })],
  ['truncated-header', 'a header length that runs past the end of the file', () => validNpy().subarray(0, 40)],
  ['truncated-preamble', 'only the magic and the version', () => validNpy().subarray(0, 8)],
  ['header-len-4GiB', 'a version 2.0 header that claims 4 GiB', () => npyBytes({ header: dict('<f4', '(2,)'), data: Buffer.alloc(8), major: 2, headerLen: 0xffffffff })],
  ['header-len-past-limit', 'a version 2.0 header of 1 MiB of spaces', () => npyBytes({ header: dict('<f4', '(2,)') + ' '.repeat(MiB), data: Buffer.alloc(8), major: 2 })],
  ['extra-bytes', 'data after the last element', () => Buffer.concat([validNpy(), Buffer.alloc(7)])],
  ['string-shape', "strings where the shape's numbers belong", () => npyBytes({ header: dict('<f4', "('2', '3')"), data: Buffer.alloc(24) })],
  ['float-shape', 'a non-integer dimension', () => npyBytes({ header: dict('<f4', '(2.5, 3)'), data: Buffer.alloc(24) })],
  ['negative-shape', 'a negative dimension', () => npyBytes({ header: dict('<f4', '(-2, 3)'), data: Buffer.alloc(24) })],
  ['string-dtype', 'a unicode string dtype', () => npyBytes({ header: dict('<U8', '(2,)'), data: Buffer.alloc(64) })],
  ['object-dtype', 'a pickled object array', () => npyBytes({ header: dict('|O', '(2,)'), data: Buffer.alloc(16) })],
  ['complex-dtype', 'complex64', () => npyBytes({ header: dict('<c8', '(2,)'), data: Buffer.alloc(16) })],
  ['float16-dtype', 'float16', () => npyBytes({ header: dict('<f2', '(2,)'), data: Buffer.alloc(4) })],
  ['structured-dtype', 'a structured dtype (a list of fields)', () =>
    npyBytes({ header: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", data: Buffer.alloc(8) })],
  ['fortran-order', 'a Fortran-order array', () => npyBytes({ header: dict('<f4', '(2, 3)', 'True'), data: Buffer.alloc(24) })],
  ['no-shape', 'a header without a shape', () => npyBytes({ header: "{'descr': '<f4', 'fortran_order': False, }", data: Buffer.alloc(4) })],
  ['not-a-dict', 'a header that is not a dict literal', () => npyBytes({ header: 'import os; os.system("true")', data: Buffer.alloc(4) })],
  ['bad-magic', 'the wrong magic', () => npyBytes({ header: dict('<f4', '(2,)'), data: Buffer.alloc(8), magic: '\x93NUMPX' })],
  ['bad-version', 'format version 9.0', () => npyBytes({ header: dict('<f4', '(2,)'), data: Buffer.alloc(8), major: 9 })],
  ['empty', 'an empty file', () => Buffer.alloc(0)],
  ['json-not-npy', 'a JSON file where a .npy belongs', () => Buffer.from('{"dtype": "float32", "shape": [2], "data": [1, 2]}')],
];

// ---- case files ------------------------------------------------------------------------------
function caseObject(overrides = {}) {
  return {
    name: 'c0',
    input: { dtype: 'float32', shape: [2, 3], data: [[0.1, 0.2, 0.3], [1, -1, 0.5]] },
    target: { dtype: 'int64', shape: [2], data: [0, 2] },
    weight: null,
    options: { reduction: 'mean', ignore_index: -100, label_smoothing: 0.1 },
    grad_output: null,
    expected: { loss: { dtype: 'float32', shape: [], data: 1.0 }, grad_input: null },
    ...overrides,
  };
}

function caseFileText(cases = [caseObject()]) {
  return JSON.stringify({ format: 'smoothce-cases', version: 1, torch: '1.13.1', cases });
}

const deep = (n, open = '[', close = ']', inner = '0') => open.repeat(n) + inner + close.repeat(n);

// Each entry: [name, what the file does, (dir) => files: { [relative path]: Buffer | string | {sparse: bytes} }].
// The first file is the case file.
const HOSTILE_CASES = [
  ['deep-200000', 'arrays nested 200,000 deep', () => ({ 'cases.json': `{"cases": ${deep(200_000)}}` })],
  ['deep-objects-200000', 'objects nested 200,000 deep', () => ({ 'cases.json': `{"cases": [${'{"a":'.repeat(200_000)}0${'}'.repeat(200_000)}]}` })],
  ['deep-in-data', "a tensor's data nested 10,000 deep", () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [1], data: JSON.parse(deep(1000)) } })]).replace(deep(1000), deep(10_000)),
  })],
  ['deep-unclosed', '1,000,000 opening brackets and nothing else', () => ({ 'cases.json': '['.repeat(1_000_000) })],
  ['huge-claimed-shape', 'a tensor that claims 10^12 elements, with 6 values', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [1000000, 1000000], data: [0, 1, 2, 3, 4, 5] } })]),
  })],
  ['overflow-shape', 'a shape whose product is past 2^53 (and NaN with a 0)', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [...Array(20).fill(9007199254740991), 0], data: [] } })]),
  })],
  ['many-dims', 'a shape of 100,000 dimensions', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: Array(100_000).fill(1), data: [0] } })]),
  })],
  ['strings-for-numbers', 'strings where numbers belong (shape, data, options)', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: ['2', '3'], data: ['a', 'b', 'c', 'd', 'e', 'f'] } })]),
  })],
  ['string-data', 'a string where a number belongs in the data', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [2, 3], data: [0.1, 'x', 0.3, 1, -1, 0.5] } })]),
  })],
  ['string-option', 'a string for label_smoothing', () => ({
    'cases.json': caseFileText([caseObject({ options: { reduction: 'mean', ignore_index: -100, label_smoothing: 'lots' } })]),
  })],
  ['wrong-dtype', 'a dtype smoothce does not have', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'complex64', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] } })]),
  })],
  ['truncated-json', 'a case file cut in the middle', () => ({ 'cases.json': caseFileText().slice(0, 120) })],
  ['not-json', 'binary junk', () => ({ 'cases.json': Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0, 1, 2, 255]) })],
  ['huge-string', 'a 6 MiB string where a number belongs', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [1], data: ['x'.repeat(6 * MiB)] } })]),
  })],
  ['huge-string-big-int', 'a 6 MiB string beside an integer literal past 2^53', () => ({
    'cases.json': caseFileText([caseObject({ name: 'x'.repeat(6 * MiB) })]).replace('"ignore_index":-100', '"ignore_index":123456789012345678901234'),
  })],
  ['many-values', '3,000,000 values in 6 MiB (JSON.parse would need about 80 MiB)', () => ({
    'cases.json': `{"cases": [${'0,'.repeat(3_000_000)}0]}`,
  })],
  ['many-objects', '1,000,000 empty objects in 3 MiB (JSON.parse would need about 100 MiB)', () => ({
    'cases.json': `{"cases": [${'{},'.repeat(1_000_000)}{}]}`,
  })],
  ['over-size-limit', 'a 9 MiB case file, over the 8 MiB limit', () => ({
    'cases.json': caseFileText([caseObject({ name: 'x'.repeat(9 * MiB) })]),
  })],
  ['huge-file', 'a 1 GiB (sparse) case file, over the size limit', () => ({ 'cases.json': { sparse: 1024 * MiB, prefix: '{"cases": [' } })],
  ['npy-huge-claim', 'a case whose .npy claims 10^12 elements', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [1000000, 1000000], npy: 'cases.data/input.npy' } })]),
    'cases.data/input.npy': HOSTILE_NPY.find((h) => h[0] === 'huge-claim')[2](),
  })],
  ['npy-truncated', 'a case whose .npy is truncated', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [1000, 1000], npy: 'cases.data/input.npy' } })]),
    'cases.data/input.npy': HOSTILE_NPY.find((h) => h[0] === 'truncated-data')[2](),
  })],
  ['npy-absolute', 'a case whose .npy is an absolute path (/dev/zero)', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [2, 3], npy: '/dev/zero' } })]),
  })],
  ['npy-escapes', 'a case whose .npy climbs out of its folder', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [2, 3], npy: '../../../../../../../../dev/zero' } })]),
  })],
  ['npy-fifo', 'a case whose .npy is a named pipe', () => ({
    'cases.json': caseFileText([caseObject({ input: { dtype: 'float32', shape: [2, 3], npy: 'cases.data/input.npy' } })]),
    'cases.data/input.npy': { fifo: true },
  })],
];

/** Writes a HOSTILE_CASES entry's files under `dir`; returns the case file's path. */
function writeFiles(dir, files) {
  let first;
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    first ??= p;
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (content && content.sparse !== undefined) {
      fs.writeFileSync(p, content.prefix ?? '');
      fs.truncateSync(p, content.sparse); // a sparse file: no disk space used
    } else if (content && content.fifo) {
      require('node:child_process').execFileSync('mkfifo', [p]);
    } else {
      fs.writeFileSync(p, content);
    }
  }
  return first;
}

/** Peak resident memory of this process so far (VmHWM), in bytes; 0 where /proc is missing. */
function peakRss() {
  try {
    const m = /VmHWM:\s*(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

// ---- the fuzz case ---------------------------------------------------------------------------
const EDGE_DIMS = ['0', '1', '2', '4294967296', '9007199254740991', '9007199254740992', '99999999999999999999', '-1', "'3'", '3.5', '1e9', '', 'None'];
const DESCRS = ['<f4', '<f8', '<i8', '<i4', '|u1', '>f4', '>i8', '=f8', '<f2', '<c8', '|O', '<U4', '|b1', '<i2', 'f4', '', "'"];

function mutateNpy(r, bytes) {
  const kind = r.pick(['shape', 'descr', 'fortran', 'truncate', 'extend', 'headerLen', 'flip', 'version', 'header-junk']);
  r.note(`npy:${kind}`);
  const text = bytes.toString('latin1');
  const headerEnd = text.indexOf('\n', 10) + 1;
  const data = bytes.subarray(headerEnd > 0 ? headerEnd : bytes.length);
  const major = bytes[6] === 2 || bytes[6] === 3 ? bytes[6] : 1;
  const header = (headerEnd > 0 ? text.slice(major === 1 ? 10 : 12, headerEnd) : '').trim();
  switch (kind) {
    case 'shape': {
      const dims = Array.from({ length: r.int(0, r.chance(0.1) ? 80 : 4) }, () => r.pick(EDGE_DIMS));
      return npyBytes({ header: header.replace(/'shape': \([^)]*\)/, `'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''})`), data, major });
    }
    case 'descr':
      return npyBytes({ header: header.replace(/'descr': '[^']*'/, `'descr': '${r.pick(DESCRS)}'`), data, major });
    case 'fortran':
      return npyBytes({ header: header.replace('False', r.pick(['True', 'false', '0', ''])), data, major });
    case 'truncate':
      return bytes.subarray(0, r.int(0, bytes.length));
    case 'extend':
      return Buffer.concat([bytes, Buffer.alloc(r.int(1, 64), r.int(0, 255))]);
    case 'headerLen': {
      const out = Buffer.from(bytes);
      if (out.length >= 12) {
        if (major === 1) out.writeUInt16LE(r.pick([0, 1, 0xffff, r.int(0, 0xffff)]), 8);
        else out.writeUInt32LE(r.pick([0, 0xffffffff, 0x7fffffff, r.int(0, 2 ** 31)]), 8);
      }
      return out;
    }
    case 'flip': {
      const out = Buffer.from(bytes);
      for (let i = r.int(1, 8); i > 0 && out.length; i--) out[r.int(0, out.length - 1)] = r.int(0, 255);
      return out;
    }
    case 'version': {
      const out = Buffer.from(bytes);
      if (out.length > 7) out[6] = r.pick([0, 1, 2, 3, 4, 255]);
      return out;
    }
    default:
      return npyBytes({ header: r.pick(['{}', '', '{', "{'descr': '<f4'}", header.replace(/[()]/g, ''), header + header, 'x'.repeat(r.int(0, 5000))]), data, major });
  }
}

function junkValue(r) {
  return r.pick([null, true, -1, 0.5, 1e308, '', 'NaN', 'x', '123456789012345678901234567890', [], {}, [[[[]]]], 2 ** 53, -(2 ** 63)]);
}

function mutateCase(r, c) {
  const kind = r.pick(['shape', 'data', 'dtype', 'option', 'deep', 'drop', 'npy', 'junk']);
  r.note(`case:${kind}`);
  const t = r.pick(['input', 'target', 'weight', 'grad_output']);
  switch (kind) {
    case 'shape':
      c[t] = { dtype: c[t]?.dtype ?? 'float32', shape: Array.from({ length: r.int(0, 6) }, () => r.pick([0, 1, 3, 2 ** 31, 2 ** 53 - 1, 2 ** 53, -1, 1.5, '3', null, 1e300])), data: c[t]?.data ?? [] };
      break;
    case 'data':
      if (c[t]) c[t].data = r.pick([[], 'abc', junkValue(r), Array.from({ length: r.int(0, 12) }, () => junkValue(r)), JSON.parse(deep(r.int(1, 60)))]);
      break;
    case 'dtype':
      if (c[t]) c[t].dtype = r.pick(['float32', 'int64', 'complex64', 'bool', '', 'FLOAT32', 7, null, 'x'.repeat(100)]);
      break;
    case 'option':
      c.options = { ...c.options, [r.pick(['reduction', 'ignore_index', 'label_smoothing', 'bogus'])]: junkValue(r) };
      break;
    case 'deep':
      return { deepAt: t, depth: r.pick([50, 127, 128, 129, 1000, 100_000]) };
    case 'drop':
      delete c[r.pick(['name', 'input', 'target', 'expected', 'options'])];
      break;
    case 'npy':
      c.input = { dtype: 'float32', shape: [2, 3], npy: r.pick(['a.npy', '/dev/zero', '../x.npy', '', 'missing.npy', 'dir', 'a.npy/..', '.']) };
      break;
    default:
      c[r.pick(['name', 'expected', 'input'])] = junkValue(r);
  }
  return null;
}

/** The fuzz kind 'files': one malformed .npy or case file through its reader. */
async function filesCase(r, env) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-fuzz-files-'));
  const before = peakRss();
  let size = 0;
  try {
    const which = r.pick(['npy-bytes', 'npy-file', 'case-file']);
    r.note(which);
    let call;
    if (which === 'case-file') {
      const c = caseObject();
      let deepSpec = null;
      for (let i = r.int(1, 4); i > 0; i--) deepSpec = mutateCase(r, c) ?? deepSpec;
      let text = caseFileText([c]);
      if (deepSpec) text = text.replace('"cases":[', `"cases":[${deep(deepSpec.depth, '[', ']', '')},`);
      if (r.chance(0.3)) {
        // Byte damage on top.
        const b = Buffer.from(text);
        if (r.chance(0.5)) text = b.subarray(0, r.int(0, b.length)).toString('latin1');
        else {
          for (let i = r.int(1, 6); i > 0; i--) b[r.int(0, b.length - 1)] = r.pick([0x5b, 0x7b, 0x22, 0x5c, 0x2c, 0x30, 0x00, 0xff]);
          text = b.toString('latin1');
        }
      }
      fs.writeFileSync(path.join(dir, 'a.npy'), validNpy());
      fs.mkdirSync(path.join(dir, 'dir'));
      const file = path.join(dir, 'cases.json');
      fs.writeFileSync(file, text);
      size = Buffer.byteLength(text);
      call = () => env.api.loadCaseFile(file);
    } else {
      let bytes = validNpy(r.pick([[2, 3], [4], [], [0, 5]]), r.pick(['<f4', '<f8', '<i8', '<i4', '|u1', '>f8']));
      for (let i = r.int(1, 3); i > 0; i--) bytes = mutateNpy(r, bytes);
      size = bytes.length;
      if (which === 'npy-bytes') {
        call = () => env.api.parseNpy(new Uint8Array(bytes));
      } else {
        const file = path.join(dir, 'x.npy');
        fs.writeFileSync(file, bytes);
        call = () => env.api.readNpy(file);
      }
    }
    let out;
    try {
      call();
      out = { outcome: 'result' };
    } catch (err) {
      const name = err && err.constructor && err.constructor.name;
      if (name === 'NpyError' || name === 'CaseFormatError') out = { outcome: 'error', cls: name, message: String(err.message).slice(0, 300) };
      else out = { outcome: 'failure', failure: 'untyped-file-error', message: `${name}: ${String(err && err.message).slice(0, 300)}` };
    }
    const grew = peakRss() - before;
    if (out.outcome !== 'failure' && grew > 64 * MiB + 2 * size) {
      out = { outcome: 'failure', failure: 'file-memory', message: `peak RSS grew by ${(grew / MiB).toFixed(1)} MiB for a file of ${size} bytes` };
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { HOSTILE_NPY, HOSTILE_CASES, writeFiles, npyBytes, validNpy, caseObject, caseFileText, peakRss, filesCase };
