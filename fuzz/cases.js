'use strict';
// The fuzz cases. runCase(seed, index, env) builds case `index` of run `seed` from its own
// random stream (fuzz/random.js), runs it, and returns its outcome:
//   { outcome: 'result' }                      the call returned (or its promise resolved)
//   { outcome: 'error', cls, message }         it threw (or rejected) a JS error
//   { outcome: 'failure', failure, ... }       a defect short of a crash: a thrown value that
//                                              is not an Error, a changed input, an async result
//                                              that differs from the sync one, a promise that
//                                              never settles
// A crash (signal, abort) or a hang of a sync call cannot be returned: the parent process
// sees the child die or go quiet (fuzz/fuzz.js).
//
// Each case is one call: through the public API (crossEntropy, crossEntropyAsync, tensor,
// the other exports) or straight into the native binding, with a valid problem to start
// from and 0-3 mutations applied to it (wrong types, detached or shared or resizable
// buffers, typed arrays whose offset/length disagree with the shape, huge/negative/
// non-integer/NaN dims, element counts past 2^31/2^53/2^64, NaN/Infinity values, edge
// targets, wrong dtypes, wrong weight lengths, prototype pollution, throwing getters,
// getters that detach other buffers, Proxies, frozen objects, in-flight detach/mutate/drop
// for async calls).
const { Rng } = require('./random');
const { extraCase } = require('./extra');
const { filesCase } = require('./files');

class FuzzInjectedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FuzzInjectedError';
  }
}

const TYPED = {
  float32: Float32Array,
  float64: Float64Array,
  bfloat16: Float32Array,
  float16: Float32Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
};
const DTYPE_NAMES = Object.keys(TYPED);
const REDUCTION_CODE = { none: 0, mean: 1, sum: 2 };

const numel = (shape) => shape.reduce((a, b) => a * b, 1);
function isPlainTensor(t) {
  try {
    const plain = (o) => Object.values(Object.getOwnPropertyDescriptors(o)).every((d) => 'value' in d);
    return (
      t !== null && typeof t === 'object' && !require('node:util').types.isProxy(t) && Object.getPrototypeOf(t) === Object.prototype &&
      plain(t) && ArrayBuffer.isView(own(t, 'data')) && Array.isArray(own(t, 'shape')) && plain(own(t, 'shape'))
    );
  } catch {
    return false;
  }
}
function toBig(v) {
  try {
    return typeof v === 'bigint' ? v : BigInt(v);
  } catch {
    return -100n;
  }
}
/** An own property, never a polluted prototype's (the harness must not trip on its own pollution),
 * and undefined where a proxy's trap throws (the harness must not trip on its own traps). */
function own(o, key) {
  let d;
  try {
    d = o !== null && typeof o === 'object' ? Object.getOwnPropertyDescriptor(o, key) : undefined;
  } catch {
    return undefined;
  }
  return d && 'value' in d ? d.value : undefined;
}

/** Makes an ArrayBuffer's views detached (length 0), as postMessage's transfer does. */
function detach(buffer) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0) return false;
  try {
    structuredClone(buffer, { transfer: [buffer] });
    return true;
  } catch {
    return false; // untransferable (e.g. a result's external memory)
  }
}

function fill(Ctor, n, f) {
  const a = new Ctor(n);
  for (let i = 0; i < n; i++) a[i] = Ctor === BigInt64Array ? BigInt(f(i)) : f(i);
  return a;
}

// ---- junk values ------------------------------------------------------------------------
function junk(r) {
  return r.pick([
    () => undefined,
    () => null,
    () => true,
    () => 0,
    () => -1,
    () => NaN,
    () => Infinity,
    () => 'float32',
    () => '',
    () => Symbol('fuzz'),
    () => 10n,
    () => ({}),
    () => [],
    () => [1, 2, 3],
    () => () => 1,
    () => new Date(0),
    () => /x/,
    () => new Map([[1, 2]]),
    () => new ArrayBuffer(16),
    () => new SharedArrayBuffer(16),
    () => new DataView(new ArrayBuffer(16)),
    () => Promise.resolve(1),
    () => new Proxy({}, {}),
    () => Object.create(null),
    () => new Error('x'),
    () => new Float32Array(3),
    () => Buffer.from('abcd'),
    () => new String('float32'),
    () => new Number(3),
    () => new WeakMap(),
    () => ({ data: null, shape: null, dtype: null }),
    () => ({ valueOf: () => 1, toString: () => 'float32' }),
  ])();
}

function otherArray(r, n) {
  return r.pick([
    () => new Int8Array(n),
    () => new Uint16Array(n),
    () => new Int16Array(n),
    () => new Uint32Array(n),
    () => new Uint8ClampedArray(n),
    () => new BigUint64Array(n),
    () => new Float32Array(n),
    () => new Float64Array(n),
    () => new Int32Array(n),
    () => new BigInt64Array(n),
    () => new Uint8Array(n),
    () => new DataView(new ArrayBuffer(n * 4)),
    () => Buffer.alloc(n * 4),
    () => Array.from({ length: n }, () => 0),
  ])();
}

const EDGE_DIMS = [
  0, 1, -1, -0, 1.5, NaN, Infinity, -Infinity, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63,
  2 ** 64, 1e308, Number.MAX_VALUE, Number.MIN_VALUE, -(2 ** 63), '2', 2n, null, undefined, true, {}, [],
];
const HUGE_COUNT_SHAPES = [
  [65536, 32768], [65536, 65536], [2 ** 16, 2 ** 16, 2], [2 ** 27, 2 ** 27], [2 ** 32, 2 ** 32], [2 ** 53, 2],
  [2 ** 31, 1], [2 ** 31 + 1, 1], [2 ** 52, 4], [3037000500, 3037000500], [2 ** 21, 2 ** 21, 2 ** 21, 2 ** 21],
];

// ---- a valid problem --------------------------------------------------------------------
// big: at least 70 000 elements (> 256 KiB), so that freed memory is unmapped, not reused,
// and a read after free faults instead of passing unnoticed.
function problem(r, { maxElems = 512, kdimUint8 = false, big = false } = {}) {
  const rank = r.weighted([[2, 1], [6, 2], [2, 3], [1, 4]]);
  const C = r.weighted([[6, r.int(3, 6)], [1, 1], [1, 0], [2, 2], [1, r.int(7, 33)]]);
  const N = r.weighted([[6, r.int(1, 5)], [1, 0], [1, r.int(6, 40)]]);
  const ds = [];
  for (let k = 2; k < rank; k++) ds.push(r.int(0, 3));
  const shape = rank === 1 ? [C] : [N, C, ...ds];
  while (!big && numel(shape) > maxElems) {
    const i = shape.indexOf(Math.max(...shape));
    shape[i] = Math.max(1, Math.floor(shape[i] / 2));
  }
  if (big) {
    for (let i = 1; i < shape.length; i++) shape[i] = Math.max(1, shape[i]);
    if (rank === 1) shape[0] = 70000;
    else shape[0] = Math.ceil(70000 / numel(shape.slice(1)));
    r.note(`big ${JSON.stringify(shape)}`);
  }
  const classes = rank === 1 ? shape[0] : shape[1];
  const lossShape = rank === 1 ? [] : shape.filter((_, i) => i !== 1);
  const dtype = r.weighted([[5, 'float32'], [4, 'float64'], [1, 'bfloat16'], [1, 'float16']]);
  const input = { data: fill(TYPED[dtype], numel(shape), r.values()), shape, dtype };
  const options = {};
  let target;
  const prob = r.chance(0.25);
  if (prob) {
    const tdtype = r.pick(['float32', 'float64']);
    const v = r.values(0.01);
    target = { data: fill(TYPED[tdtype], numel(shape), () => Math.abs(v()) / 4), shape: [...shape], dtype: tdtype };
    if (r.chance(0.1)) options.ignoreIndex = r.pick([-100, -1, -5n]);
  } else {
    const tdtype = r.weighted([[6, 'int64'], [3, 'int32'], [rank <= 2 || kdimUint8 ? 1 : 0, 'uint8']]);
    const ignore = r.weighted([[6, undefined], [1, -1], [1, r.int(0, Math.max(0, classes))], [1, -100], [1, 255]]);
    if (ignore !== undefined) options.ignoreIndex = ignore;
    const ig = ignore ?? -100;
    const cls = r.ints(0, Math.max(0, classes - 1));
    const coin = r.ints(0, 9);
    target = {
      data: fill(TYPED[tdtype], numel(lossShape), () => (classes === 0 || coin() === 0 ? ig : cls())),
      shape: lossShape,
      dtype: tdtype,
    };
  }
  if (r.chance(0.6)) options.labelSmoothing = r.pick([0, 0.1, 0.5, 1, r.int(0, 1000) / 1000]);
  if (r.chance(0.6)) options.reduction = r.pick(['mean', 'sum', 'none']);
  if (r.chance(0.25)) {
    const wv = r.values(0.01);
    const w = Array.from({ length: classes }, () => Math.abs(wv()));
    options.weight = r.pick([w, Float32Array.from(w), Float64Array.from(w)]);
  }
  if (r.chance(0.4)) options.grad = r.chance(0.8);
  if (options.grad && r.chance(0.3)) {
    const gshape = (options.reduction ?? 'mean') === 'none' ? lossShape : [];
    options.gradOutput = r.chance(0.5)
      ? r.value(0.1)
      : { data: fill(Float64Array, numel(gshape), r.values()), shape: gshape, dtype: 'float64' };
  }
  if (r.chance(0.1)) options.device = 'cpu';
  // The gradient as a device tensor handle (on 'cpu' here): the native wrap path.
  if (options.grad && r.chance(0.15)) options.gradOnDevice = true;
  return { input, target, options, classes, lossShape, prob };
}

/** The same problem as the native binding takes it (what lib/core/options.ts's prepare builds). */
function nativeArgs(p) {
  const o = p.options;
  const wtype = p.input.dtype === 'float64' ? Float64Array : Float32Array;
  let gradOutput = o.grad ? 1 : null;
  if (o.gradOutput !== undefined) gradOutput = o.gradOutput;
  return {
    input: p.input,
    target: p.target,
    weight: o.weight ? { data: wtype.from(o.weight), shape: [p.classes], dtype: wtype === Float64Array ? 'float64' : 'float32' } : null,
    reduction: REDUCTION_CODE[o.reduction ?? 'mean'],
    ignoreIndex: BigInt(o.ignoreIndex ?? -100),
    labelSmoothing: o.labelSmoothing ?? 0,
    grad: o.grad ?? false,
    gradOutput,
    device: 'cpu',
    gradOnDevice: o.gradOnDevice ?? false,
  };
}

// ---- mutations of one tensor argument -----------------------------------------------------
// ctx: { buffers: ArrayBuffer[] (live buffers of this case, for getters that detach them),
//        gc, cleanup: (() => void)[], intentional: Set<ArrayBuffer> (buffers the case changes) }
function detachSomething(r, ctx) {
  const live = ctx.buffers.filter((b) => b instanceof ArrayBuffer && b.byteLength > 0);
  if (live.length === 0) return;
  const b = r.pick(live);
  ctx.intentional.add(b);
  detach(b);
  ctx.gc();
}

function getterObject(r, t, ctx, kind) {
  const keys = ['data', 'shape', 'dtype'];
  const key = r.pick(keys);
  const o = { ...t };
  let calls = 0;
  const valid = t[key];
  const bad = junk(r);
  const detachNow = () => detachSomething(r, ctx);
  Object.defineProperty(o, key, {
    enumerable: true,
    get() {
      calls++;
      if (kind === 'throw') throw new FuzzInjectedError(`getter ${key} throws`);
      if (kind === 'flip') return calls === 1 ? valid : bad;
      if (kind === 'flop') return calls === 1 ? bad : valid;
      if (kind === 'late') {
        // The second read (a binding that reads a property twice) pulls the memory away.
        if (calls === 2 && ArrayBuffer.isView(t.data)) {
          ctx.intentional.add(t.data.buffer);
          detach(t.data.buffer);
          ctx.gc();
        }
        return valid;
      }
      detachNow();
      return valid;
    },
  });
  r.note(`getter(${kind}) on .${key}`);
  return o;
}

function proxyObject(r, t) {
  const trap = r.pick(['none', 'get', 'has', 'ownKeys', 'getOwnPropertyDescriptor', 'getPrototypeOf']);
  r.note(`proxy trap ${trap}`);
  if (trap === 'none') return new Proxy(t, {});
  return new Proxy(t, {
    [trap]() {
      throw new FuzzInjectedError(`proxy ${trap} trap throws`);
    },
  });
}

function shapeWithGetter(r, t, ctx) {
  const shape = [...t.shape];
  if (shape.length === 0) shape.push(1);
  const i = r.int(0, shape.length - 1);
  const v = shape[i];
  const kind = r.pick(['throw', 'detach', 'flip']);
  let calls = 0;
  Object.defineProperty(shape, i, {
    enumerable: true,
    get() {
      calls++;
      if (kind === 'throw') throw new FuzzInjectedError('shape element getter throws');
      if (kind === 'flip') return calls === 1 ? v : v + 1;
      detachSomething(r, ctx);
      return v;
    },
  });
  r.note(`shape[${i}] getter(${kind})`);
  return { ...t, shape };
}

const TENSOR_MUTATIONS = [
  [3, 'replace-junk', (r) => junk(r)],
  [3, 'data-junk', (r, t) => ({ ...t, data: junk(r) })],
  [4, 'data-other-array', (r, t) => ({ ...t, data: otherArray(r, t.data.length) })],
  [4, 'data-detached', (r, t, ctx) => {
    const data = t.data.slice();
    detach(data.buffer);
    return { ...t, data };
  }],
  [3, 'data-offset', (r, t) => {
    const n = t.data.length;
    const k = r.int(1, 7);
    const Ctor = t.data.constructor;
    const big = new Ctor(n + k + r.int(0, 5));
    const view = new Ctor(big.buffer, k * Ctor.BYTES_PER_ELEMENT, n);
    view.set(t.data);
    return { ...t, data: view };
  }],
  [3, 'data-offset-mismatch', (r, t) => {
    const n = t.data.length;
    const k = r.int(0, 7);
    const Ctor = t.data.constructor;
    const len = Math.max(0, n + r.pick([-2, -1, 1, 2]));
    const big = new Ctor(len + k + 4);
    return { ...t, data: new Ctor(big.buffer, k * Ctor.BYTES_PER_ELEMENT, len) };
  }],
  [3, 'data-length', (r, t) => {
    const n = t.data.length;
    const len = r.pick([0, Math.max(0, n - 1), n + 1, 2 * n + 1, 1]);
    return { ...t, data: new t.data.constructor(len) };
  }],
  [3, 'data-shared', (r, t) => {
    const Ctor = t.data.constructor;
    const data = new Ctor(new SharedArrayBuffer(t.data.byteLength));
    data.set(t.data);
    return { ...t, data };
  }],
  [3, 'data-resizable', (r, t) => {
    const Ctor = t.data.constructor;
    const ab = new ArrayBuffer(t.data.byteLength, { maxByteLength: t.data.byteLength * 2 + 64 });
    const data = new Ctor(ab); // length-tracking
    data.set(t.data);
    const how = r.pick(['keep', 'shrink', 'grow']);
    if (how === 'shrink') ab.resize(Math.max(0, t.data.byteLength - Ctor.BYTES_PER_ELEMENT));
    if (how === 'grow') ab.resize(t.data.byteLength + Ctor.BYTES_PER_ELEMENT);
    r.note(`resizable ${how}`);
    return { ...t, data };
  }],
  [4, 'shape-dim-edge', (r, t) => {
    const shape = [...t.shape];
    const i = shape.length ? r.int(0, shape.length - 1) : 0;
    shape[i] = r.pick(EDGE_DIMS);
    return { ...t, shape };
  }],
  [2, 'shape-junk', (r, t) => ({ ...t, shape: junk(r) })],
  [2, 'shape-sparse', (r, t) => {
    const shape = new Array(t.shape.length + r.int(0, 1));
    for (let i = 0; i < t.shape.length; i++) if (r.chance(0.5)) shape[i] = t.shape[i];
    return { ...t, shape };
  }],
  [2, 'shape-long', (r, t) => {
    const rank = r.pick([64, 65, 1000, 100000]);
    const shape = new Array(rank).fill(1);
    return { ...t, shape, data: t.data.slice(0, 1).length === 1 ? t.data.slice(0, 1) : t.data };
  }],
  [2, 'shape-arraylike', (r, t) =>
    r.pick([
      () => ({ ...t, shape: Float64Array.from(t.shape) }),
      () => ({ ...t, shape: Object.assign({ length: t.shape.length }, t.shape) }),
      () => ({ ...t, shape: new Proxy([...t.shape], {}) }),
      () => ({ ...t, shape: t.shape.map((d) => BigInt(d)) }),
      () => ({ ...t, shape: t.shape.map(String) }),
    ])(),
  ],
  [3, 'shape-huge-count', (r, t) => ({ ...t, shape: [...r.pick(HUGE_COUNT_SHAPES)] })],
  [2, 'shape-zero-huge', (r, t) => {
    const huge = r.pick([2 ** 31, 2 ** 40, 2 ** 53 - 1, 2 ** 32 + 1]);
    const shape = r.pick([[huge, 0], [0, huge], [huge, 0, 2], [2, 0, huge]]);
    return { ...t, shape, data: new t.data.constructor(0) };
  }],
  [3, 'dtype-junk', (r, t) => ({
    ...t,
    dtype: r.pick(['float', 'Float32', 'int16', 'bool', 'complex64', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '', null, 3, Symbol.iterator, new String('float32')]),
  })],
  [3, 'dtype-mismatch', (r, t) => ({ ...t, dtype: r.pick(DTYPE_NAMES) })],
  [2, 'dtype-missing', (r, t) => {
    const o = { ...t };
    delete o[r.pick(['data', 'shape', 'dtype'])];
    return o;
  }],
  [2, 'obj-frozen', (r, t) => Object.freeze({ ...t, shape: Object.freeze([...t.shape]) })],
  [2, 'obj-proxy', (r, t) => proxyObject(r, t)],
  [2, 'obj-getter-throw', (r, t, ctx) => getterObject(r, t, ctx, 'throw')],
  [2, 'obj-getter-flip', (r, t, ctx) => getterObject(r, t, ctx, r.pick(['flip', 'flop']))],
  [4, 'obj-getter-detach', (r, t, ctx) => getterObject(r, t, ctx, 'detach')],
  [3, 'obj-getter-detach-late', (r, t, ctx) => getterObject(r, t, ctx, 'late')],
  [2, 'shape-elem-getter', (r, t, ctx) => shapeWithGetter(r, t, ctx)],
  [1, 'obj-inherited', (r, t) => Object.create(t)],
  [1, 'obj-null-proto', (r, t) => Object.assign(Object.create(null), t)],
  [1, 'obj-class', (r, t) => {
    class T {
      constructor() {
        Object.assign(this, t);
      }
    }
    return new T();
  }],
  [1, 'obj-accessor-proto', (r, t) => {
    class T {
      get data() { return t.data; }
      get shape() { return t.shape; }
      get dtype() { return t.dtype; }
    }
    return new T();
  }],
  [1, 'obj-extra', (r, t) => ({ ...t, extra: 1, [Symbol('s')]: 2, device: 'cuda', handle: {} })],
  [1, 'obj-array', (r, t) => [t.data, t.shape, t.dtype]],
  [1, 'obj-typed', (r, t) => t.data],
];

function mutateTensor(r, t, ctx) {
  if (!isPlainTensor(t)) return junk(r);
  const [, name, f] = r.weighted(TENSOR_MUTATIONS.map((m) => [m[0], m]));
  r.note(name);
  try {
    return f(r, t, ctx);
  } catch {
    // Not applicable to what earlier mutations made (e.g. copying a detached array).
    r.note(`${name} not applicable`);
    return t;
  }
}

// ---- mutations of values inside a valid tensor (stay valid or become out-of-range) ---------
function specialValues(r, t) {
  if (!isPlainTensor(t) || t.data.length === 0 || !(t.data instanceof Float32Array || t.data instanceof Float64Array)) return;
  const v = r.pick([NaN, Infinity, -Infinity, -0, 1e38, -1e38, 3.5e38, 1e308, 5e-324, -1]);
  const all = r.chance(0.3);
  const coin = r.ints(0, 4);
  for (let i = 0; i < t.data.length; i++) if (all || coin() === 0) t.data[i] = v;
  r.note(`values ${all ? 'all' : 'some'} ${v}`);
}

function edgeTarget(r, p, ignore) {
  const t = p.target;
  if (!isPlainTensor(t) || t.data.length === 0 || p.prob) return;
  const C = p.classes;
  const v = r.pick([C - 1, C, C + 1, -1, ignore, ignore + 1n, ignore - 1n, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, 2n ** 63n - 1n, -(2n ** 63n), 255, 256, -100]);
  const i = r.int(0, t.data.length - 1);
  if (t.data instanceof BigInt64Array) t.data[i] = BigInt.asIntN(64, BigInt(v));
  else if (t.data instanceof Int32Array) t.data[i] = Number(BigInt.asIntN(32, BigInt(v)));
  else t.data[i] = Number(BigInt.asUintN(8, BigInt(v)));
  r.note(`target[${i}] = ${t.data[i]} (C = ${C})`);
}

// ---- options ----------------------------------------------------------------------------------
const OPTION_EDGES = {
  labelSmoothing: [NaN, Infinity, -Infinity, -0, -1e-300, 1 + 2 ** -52, 1, 0, 0.5, 2, '0.1', null, 1n, { valueOf: () => 0.1 }, true],
  reduction: ['Mean', 'none ', '', 'batchmean', 'elementwise_mean', 'toString', '__proto__', 'constructor', null, 0, 1, 2, true, new String('mean')],
  weight: ['len+1', 'len-1', 'empty', 'nan', 'negative', 'int32', 'bigint64', 'sparse', 'getter', 'arraylike', 'detached', 'shared', 'strings', 'huge-arraylike'],
  ignoreIndex: [NaN, Infinity, 1.5, 2 ** 53, 2 ** 63, -(2 ** 63), 2n ** 63n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 64n, '-100', -1, 0, 'C', null, true, -0],
  grad: ['yes', 1, 0, null, 'true', {}, true, false],
  gradOnDevice: ['yes', 1, 0, null, {}, true, false],
  gradOutput: [NaN, Infinity, -0, 0n, 'x', null, 'wrong-shape', 'int-tensor', 'junk-tensor', 'without-grad', 1e308],
  device: ['cuda', 'cuda:0', 'cuda:1', 'cuda:99999', 'cuda:-1', 'cuda:1e3', 'cuda:00', 'CPU', 'cpu:0', 'meta', 'mps', '', 'cpu\u0000x', 'x'.repeat(100000), null, 5, {}],
};

function weightEdge(r, kind, C, ctx) {
  switch (kind) {
    case 'len+1': return new Array(C + 1).fill(1);
    case 'len-1': return new Array(Math.max(0, C - 1)).fill(1);
    case 'empty': return [];
    case 'nan': return new Array(C).fill(NaN);
    case 'negative': return new Array(C).fill(-1);
    case 'int32': return new Int32Array(C).fill(1);
    case 'bigint64': return new BigInt64Array(C).fill(1n);
    case 'sparse': return new Array(C);
    case 'getter': {
      const w = new Array(C).fill(1);
      if (C > 0) Object.defineProperty(w, r.int(0, C - 1), { get() { throw new FuzzInjectedError('weight element getter'); } });
      return w;
    }
    case 'arraylike': return Object.assign({ length: C }, new Array(C).fill(1));
    case 'detached': {
      const w = new Float32Array(C).fill(1);
      detach(w.buffer);
      return w;
    }
    case 'shared': {
      const w = new Float64Array(new SharedArrayBuffer(C * 8)).fill(0.5);
      return w;
    }
    case 'strings': return new Array(C).fill('1');
    case 'huge-arraylike': return { length: 2 ** 32 };
    default: return undefined;
  }
}

function mutateOption(r, p, ctx) {
  const name = r.pick(Object.keys(OPTION_EDGES));
  let v = r.pick(OPTION_EDGES[name]);
  if (name === 'weight') v = weightEdge(r, v, p.classes, ctx);
  if (name === 'ignoreIndex' && v === 'C') v = p.classes;
  if (name === 'gradOutput') {
    if (v === 'wrong-shape') v = { data: new Float64Array(3), shape: [3], dtype: 'float64' };
    else if (v === 'int-tensor') v = { data: new Int32Array(1), shape: [], dtype: 'int32' };
    else if (v === 'junk-tensor') v = mutateTensor(r, { data: new Float64Array(1), shape: [], dtype: 'float64' }, ctx);
    else if (v === 'without-grad') {
      p.options.grad = false;
      v = 1;
    } else if (r.chance(0.7)) p.options.grad = true;
  }
  r.note(`option ${name} = ${describe(v)}`);
  p.options[name] = v;
}

function describe(v) {
  try {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'string') return JSON.stringify(v.length > 20 ? v.slice(0, 20) + '…' : v);
    if (typeof v === 'symbol') return v.toString();
    if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length ?? v.byteLength})`;
    if (Array.isArray(v)) return `array(${v.length})`;
    if (v && typeof v === 'object') return `object ${v.constructor?.name ?? 'null-proto'}`;
    return String(v);
  } catch {
    return 'unprintable';
  }
}

const POLLUTE_KEYS = ['labelSmoothing', 'reduction', 'weight', 'ignoreIndex', 'grad', 'gradOutput', 'gradOnDevice', 'device', 'data', 'shape', 'dtype', 'input', 'target', '0', '1'];

function pollute(r, ctx) {
  const key = r.pick(POLLUTE_KEYS);
  const value = r.pick([5, -1, 'none', 'cuda', true, null, [1], new Float32Array(2), 2n ** 70n, { data: new Float32Array(1), shape: [1], dtype: 'float32' }]);
  // Array.prototype gets values only: a getter without a setter on an index makes every
  // array write to that index fail, which breaks JavaScript itself, not just smoothce.
  const onArray = r.chance(0.3);
  const proto = onArray ? Array.prototype : Object.prototype;
  const had = Object.getOwnPropertyDescriptor(proto, key);
  ctx.cleanup.push(() => {
    if (had) Object.defineProperty(proto, key, had);
    else delete proto[key];
  });
  if (!onArray && !/^\d+$/.test(key) && r.chance(0.3)) {
    Object.defineProperty(proto, key, {
      configurable: true,
      get() {
        throw new FuzzInjectedError(`polluted ${key} getter`);
      },
    });
  } else {
    Object.defineProperty(proto, key, { configurable: true, writable: true, value });
  }
  r.note(`${onArray ? 'Array' : 'Object'}.prototype.${key} polluted`);
}

function mutateOptions(r, p, ctx, args) {
  const kind = r.weighted([
    [2, 'junk'], [10, 'value'], [2, 'unknown'], [2, 'getter'], [2, 'proxy'], [1, 'frozen'], [3, 'pollute'], [1, 'inherited'],
  ]);
  r.note(`options:${kind}`);
  switch (kind) {
    case 'junk': {
      let j = junk(r);
      if (j === undefined) j = null;
      args[2] = j;
      return;
    }
    case 'value':
      mutateOption(r, p, ctx);
      args[2] = p.options;
      return;
    case 'unknown': {
      const key = r.pick(['label_smoothing', 'labelsmoothing', 'Reduction', 'foo', '__proto__', 'constructor', 'toString', 'batchSize', '']);
      if (key === '__proto__') args[2] = Object.assign(JSON.parse('{"__proto__": {"grad": true}}'), p.options);
      else args[2] = { ...p.options, [key]: 1 };
      if (r.chance(0.2)) args[2][Symbol('opt')] = 1;
      return;
    }
    case 'getter': {
      const o = { ...p.options };
      const key = r.pick(Object.keys(OPTION_EDGES));
      Object.defineProperty(o, key, { enumerable: r.chance(0.8), get() { throw new FuzzInjectedError(`option getter ${key}`); } });
      args[2] = o;
      return;
    }
    case 'proxy':
      args[2] = proxyObject(r, { ...p.options });
      return;
    case 'frozen':
      args[2] = Object.freeze({ ...p.options });
      return;
    case 'pollute':
      pollute(r, ctx);
      args[2] = p.options;
      return;
    case 'inherited':
      args[2] = Object.create({ ...p.options, reduction: 'bogus' });
      return;
    default:
  }
}

// ---- running a call and judging its outcome ----------------------------------------------------
function bytesOf(a) {
  try {
    if (!ArrayBuffer.isView(a) || a.byteLength === 0) return null;
    return Buffer.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  } catch {
    return null;
  }
}

/** Snapshots of the caller's typed arrays, to check that no call changed them. */
function guard(arrays) {
  return arrays.filter(ArrayBuffer.isView).map((a) => ({ a, bytes: bytesOf(a), buffer: a.buffer }));
}

function changed(snapshots, ctx) {
  for (const s of snapshots) {
    if (s.bytes === null || ctx.intentional.has(s.buffer)) continue;
    if (s.a.byteLength !== s.bytes.length) continue; // detached or resized by the case itself
    if (!bytesOf(s.a).equals(s.bytes)) return true;
  }
  return false;
}

function classify(err) {
  if (err instanceof Error) {
    return { outcome: 'error', cls: err.constructor?.name ?? err.name ?? 'Error', message: String(err.message).slice(0, 300) };
  }
  return { outcome: 'failure', failure: 'non-error-throw', message: describe(err) };
}

async function settle(value, timeoutMs) {
  if (!value || typeof value.then !== 'function') return { value };
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ hung: true }), timeoutMs);
  });
  try {
    return await Promise.race([value.then((v) => ({ value: v }), (e) => ({ error: e })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function sameResult(a, b, fp64) {
  const tol = fp64 ? 1e-12 : 1e-5;
  const close = (x, y) => (Number.isNaN(x) && Number.isNaN(y)) || x === y || Math.abs(x - y) <= tol * Math.max(1, Math.abs(x), Math.abs(y));
  // A gradOnDevice gradient is a DeviceTensor handle: compare what it holds.
  const host = (v) => (v && typeof v.toCPU === 'function' ? v.toCPU() : v);
  const arr = (v) => (typeof v === 'number' ? [v] : host(v) && host(v).data ? Array.from(host(v).data, Number) : []);
  const eq = (x, y) => {
    const p = arr(x);
    const q = arr(y);
    return p.length === q.length && p.every((v, i) => close(v, q[i]));
  };
  return eq(a.loss, b.loss) && eq(a.grad, b.grad);
}

function deepCopyTensor(t) {
  return { data: t.data.slice(), shape: [...t.shape], dtype: t.dtype };
}

/** What a caller may do while an async call is in flight (the call must not care). */
function inFlight(after, p, args, ctx, env, nativeArgsObj) {
  if (!after) return;
  try {
    if (after === 'detach') {
      for (const a of [p.input.data, p.target.data]) {
        ctx.intentional.add(a.buffer);
        detach(a.buffer);
      }
    } else if (after === 'mutate') {
      ctx.intentional.add(p.input.data.buffer);
      if (p.input.data.byteLength > 0) p.input.data.fill(p.input.data instanceof BigInt64Array ? 7n : NaN);
    } else if (after === 'drop') {
      if (args) args.length = 0;
      if (nativeArgsObj) nativeArgsObj.input = nativeArgsObj.target = null;
      p.input = p.target = null;
      env.gc();
    }
  } catch {
    // e.g. a frozen argument object: the caller could not do it either.
  }
}

// ---- the case kinds -------------------------------------------------------------------------
async function apiCall(r, env, ctx) {
  const p = problem(r, { big: r.chance(0.08) });
  const fn = r.pick(['crossEntropy', 'crossEntropyAsync']);
  const args = [p.input, p.target, p.options];
  ctx.buffers.push(p.input.data.buffer, p.target.data.buffer);
  if (ArrayBuffer.isView(own(p.options, 'weight'))) ctx.buffers.push(own(p.options, 'weight').buffer);
  const n = r.weighted([[3, 0], [6, 1], [3, 2], [1, 3]]);
  let after = null;
  for (let k = 0; k < n; k++) {
    const what = r.weighted([[8, 'input'], [6, 'target'], [9, 'options'], [2, 'values'], [3, 'target-edge'], [1, 'arity'], [fn === 'crossEntropyAsync' ? 3 : 0, 'in-flight']]);
    if (what === 'input') args[0] = mutateTensor(r, args[0], ctx);
    else if (what === 'target') args[1] = mutateTensor(r, args[1], ctx);
    else if (what === 'options') mutateOptions(r, p, ctx, args);
    else if (what === 'values') specialValues(r, r.chance(0.7) ? args[0] : args[1]);
    else if (what === 'target-edge') edgeTarget(r, p, toBig(own(p.options, 'ignoreIndex') ?? -100));
    else if (what === 'arity') {
      args.length = r.int(0, 2);
      if (r.chance(0.3)) args.push(junk(r), junk(r), junk(r));
      r.note(`arity ${args.length}`);
    } else after = r.pick(['detach', 'mutate', 'drop']);
  }
  if (after) r.note(`in-flight ${after}`);
  r.note(`${fn}(${args.length} args)`);
  // Values edits above were made before the call: snapshot what the call receives.
  const snapshots = guard([p.input.data, p.target.data, own(p.options, 'weight'), own(own(p.options, 'gradOutput'), 'data')]);
  let ret;
  try {
    ret = env.api[fn](...args);
  } catch (err) {
    return classify(err);
  }
  // Handlers go on the promise first: an in-flight action that throws must not leave it unhandled.
  const settling = settle(ret, env.asyncTimeoutMs);
  inFlight(after, p, args, ctx, env);
  return outcomeOf(await settling, snapshots, ctx);
}

/** The outcome of a settled async call whose inputs were snapshotted before it started. */
function outcomeOf(s, snapshots, ctx) {
  if (s.hung) return { outcome: 'failure', failure: 'promise-never-settled' };
  if (changed(snapshots, ctx)) return { outcome: 'failure', failure: 'input-mutated' };
  if (s.error !== undefined) return classify(s.error);
  return { outcome: 'result' };
}

async function nativeCall(r, env, ctx) {
  const p = problem(r, { kdimUint8: true, big: r.chance(0.08) });
  const a = nativeArgs(p);
  const entry = env.native.crossEntropyFused && r.chance(0.3) ? 'crossEntropyFused' : 'crossEntropy';
  r.note(`native.${entry}`);
  const async = r.chance(0.5);
  let second = async;
  ctx.buffers.push(p.input.data.buffer, p.target.data.buffer);
  if (a.weight) ctx.buffers.push(a.weight.data.buffer);
  const n = r.weighted([[2, 0], [6, 1], [3, 2], [1, 3]]);
  let args = a;
  let after = null;
  for (let k = 0; k < n; k++) {
    const what = r.weighted([[6, 'input'], [5, 'target'], [3, 'weight'], [2, 'gradOutput'], [8, 'field'], [2, 'values'], [5, 'target-edge'], [1, 'args'], [2, 'second'], [async ? 3 : 0, 'in-flight']]);
    if (what === 'input') a.input = mutateTensor(r, a.input, ctx);
    else if (what === 'target') a.target = mutateTensor(r, a.target, ctx);
    else if (what === 'weight') a.weight = mutateTensor(r, a.weight ?? { data: new Float32Array(p.classes).fill(1), shape: [p.classes], dtype: 'float32' }, ctx);
    else if (what === 'gradOutput') a.gradOutput = mutateTensor(r, isPlainTensor(a.gradOutput) ? a.gradOutput : { data: new Float64Array(1), shape: [], dtype: 'float64' }, ctx);
    else if (what === 'values') specialValues(r, r.chance(0.7) ? a.input : a.target);
    else if (what === 'target-edge') edgeTarget(r, p, toBig(a.ignoreIndex));
    else if (what === 'field') {
      const f = r.pick(['reduction', 'ignoreIndex', 'labelSmoothing', 'grad', 'gradOutput', 'device', 'weight', 'gradOnDevice']);
      const edges = {
        reduction: [-1, 3, NaN, 1.5, 2 ** 53, -(2 ** 63), '1', null, undefined, 1n],
        ignoreIndex: [NaN, Infinity, -Infinity, 2 ** 63, -(2 ** 63), 2 ** 64, 1.5, -0, 2n ** 63n, -(2n ** 63n) - 1n, 2n ** 64n, 'x', null, undefined, BigInt(p.classes), 0n, 1n],
        labelSmoothing: [NaN, -0, 1.0000001, Infinity, -1, '0.1', null, undefined, 1],
        grad: [1, 'yes', null, {}, 0, true],
        gradOutput: [NaN, Infinity, 'x', {}, 0n, 5],
        device: OPTION_EDGES.device,
        weight: [undefined, 0, 'w', {}, []],
        gradOnDevice: [1, 'yes', null, {}, 0, true, Symbol('x')],
      };
      a[f] = r.pick(edges[f]);
      r.note(`field ${f} = ${describe(a[f])}`);
    } else if (what === 'args') {
      const kind = r.pick(['junk', 'proxy', 'frozen', 'getter-throw', 'getter-detach', 'inherited']);
      r.note(`args:${kind}`);
      if (kind === 'junk') args = junk(r);
      else if (kind === 'proxy') args = proxyObject(r, a);
      else if (kind === 'frozen') args = Object.freeze({ ...a });
      else if (kind === 'inherited') args = Object.create(a);
      else {
        const key = r.pick(Object.keys(a));
        args = { ...a };
        Object.defineProperty(args, key, {
          enumerable: true,
          get() {
            if (kind === 'getter-throw') throw new FuzzInjectedError(`native args getter ${key}`);
            detachSomething(r, ctx);
            return a[key];
          },
        });
        r.note(`getter on ${key}`);
      }
    } else if (what === 'second') {
      second = junk(r);
      r.note(`second argument ${describe(second)}`);
    } else after = r.pick(['detach', 'mutate', 'drop']);
  }
  const snapshots = guard([p.input.data, p.target.data, own(own(a, 'weight'), 'data')]);
  const callArgs = r.chance(0.05) ? [] : [args, second];
  let ret;
  try {
    ret = env.native[entry](...callArgs);
  } catch (err) {
    return classify(err);
  }
  if (after) r.note(`in-flight ${after}`);
  const settling = settle(ret, env.asyncTimeoutMs);
  inFlight(after, p, null, ctx, env, a);
  return outcomeOf(await settling, snapshots, ctx);
}

/** Valid async calls whose caller changes its buffers while the call is in flight: the result
 * must equal the synchronous result on the original data. */
async function lifetimeCall(r, env, ctx) {
  const p = problem(r, { maxElems: r.chance(0.2) ? 1 << 16 : 512 });
  const viaNative = r.chance(0.4);
  const how = r.pick(['detach', 'transfer-message', 'mutate', 'drop', 'shared', 'resize']);
  r.note(`lifetime ${viaNative ? 'native' : 'api'} ${how}`);
  if (how === 'shared' || how === 'resize') {
    for (const key of ['input', 'target']) {
      const t = p[key];
      const Ctor = t.data.constructor;
      const buf = how === 'shared' ? new SharedArrayBuffer(t.data.byteLength) : new ArrayBuffer(t.data.byteLength, { maxByteLength: t.data.byteLength + 64 });
      const d = new Ctor(buf);
      d.set(t.data);
      p[key] = { ...t, data: d };
    }
  }
  const copy = { input: deepCopyTensor(p.input), target: deepCopyTensor(p.target), options: { ...p.options } };
  const call = (input, target, options, async) => {
    if (!viaNative) return env.api[async ? 'crossEntropyAsync' : 'crossEntropy'](input, target, options);
    const a = nativeArgs({ ...p, input, target, options });
    const out = env.native.crossEntropy(a, async);
    const fix = (res) => ({ loss: a.reduction === 0 || typeof res.loss === "number" ? res.loss : Number(res.loss.data[0]), grad: res.grad });
    return async ? out.then(fix) : fix(out);
  };
  let expected;
  try {
    expected = call(copy.input, copy.target, copy.options, false);
  } catch (err) {
    return classify(err); // an invalid problem (e.g. float16 on this LibTorch): nothing to compare
  }
  let ret;
  try {
    ret = call(p.input, p.target, p.options, true);
  } catch (err) {
    return { outcome: 'failure', failure: 'async-threw-where-sync-worked', message: String(err && err.message) };
  }
  const settling = settle(ret, env.asyncTimeoutMs);
  if (how === 'detach') {
    detach(p.input.data.buffer);
    detach(p.target.data.buffer);
  } else if (how === 'transfer-message') {
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(p.input.data, [p.input.data.buffer]);
    port1.close();
    port2.close();
  } else if (how === 'mutate') {
    p.input.data.fill(p.input.data instanceof BigInt64Array ? 3n : 1e30);
    p.target.data.fill(p.target.data instanceof BigInt64Array ? 999999n : 77);
  } else if (how === 'drop') {
    p.input = p.target = null;
    env.gc();
    env.gc();
  } else if (how === 'resize') {
    p.input.data.buffer.resize(0);
    p.target.data.buffer.resize(0);
  }
  const s = await settling;
  if (s.hung) return { outcome: 'failure', failure: 'promise-never-settled' };
  if (s.error !== undefined) {
    return { outcome: 'failure', failure: 'async-rejected-where-sync-worked', message: String(s.error && s.error.message) };
  }
  const fp64 = copy.input.dtype === 'float64' || copy.target.dtype === 'float64';
  if (!sameResult(s.value, expected, fp64)) return { outcome: 'failure', failure: 'async-result-differs' };
  return { outcome: 'result' };
}

async function tensorCall(r, env) {
  const n = r.int(0, 8);
  const dataKind = r.pick(['typed', 'array', 'junk', 'mixed']);
  let data;
  if (dataKind === 'typed') data = r.chance(0.6) ? new (r.pick(Object.values(TYPED)))(n) : otherArray(r, n);
  else if (dataKind === 'array') data = Array.from({ length: n }, () => r.pick([r.value(0.2), 1, 2n, 2 ** 63, -1, 0.5]));
  else if (dataKind === 'mixed') data = [1, '2', null, undefined, {}, 3n, NaN].slice(0, n);
  else data = junk(r);
  let shape = r.chance(0.2) ? undefined : [n];
  if (shape && r.chance(0.5)) shape = r.pick([[r.pick(EDGE_DIMS)], [n, 1], [1, n, 1], junk(r), r.pick(HUGE_COUNT_SHAPES), [0, 2 ** 53]]);
  const dtype = r.chance(0.3) ? undefined : r.chance(0.8) ? r.pick(DTYPE_NAMES) : junk(r);
  r.note(`tensor(${describe(data)}, ${describe(shape)}, ${describe(dtype)})`);
  try {
    const t = env.api.tensor(data, shape, dtype);
    if (!t || !ArrayBuffer.isView(t.data)) return { outcome: 'failure', failure: 'tensor-returned-non-tensor' };
    return { outcome: 'result' };
  } catch (err) {
    return classify(err);
  }
}

async function miscCall(r, env) {
  const fn = r.pick(['torchVersion', 'cudaAvailable', 'cudaDeviceCount', 'native.getNumThreads', 'native.setNumThreads', 'native.cudaBuilt']);
  r.note(fn);
  try {
    if (fn === 'native.setNumThreads') {
      const before = env.native.getNumThreads();
      try {
        env.native.setNumThreads(r.pick([0, -1, 1, 2, 1025, NaN, 1.5, 2 ** 53, '2', null, undefined, {}]));
      } finally {
        env.native.setNumThreads(before);
      }
      return { outcome: 'result' };
    }
    if (fn.startsWith('native.')) env.native[fn.slice(7)](junk(r), junk(r));
    else env.api[fn](junk(r));
    return { outcome: 'result' };
  } catch (err) {
    return classify(err);
  }
}

const KINDS = [
  [40, 'api', apiCall],
  [30, 'native', nativeCall],
  [7, 'lifetime', lifetimeCall],
  [5, 'tensor', tensorCall],
  [3, 'misc', miscCall],
  [15, 'extra', extraCase],
  [5, 'files', filesCase],
];

/**
 * Runs case `index` of run `seed`. env: { api, native, gc, asyncTimeoutMs, only? }.
 * Returns { kind, trace, outcome, ... }.
 */
async function runCase(seed, index, env) {
  const r = new Rng(seed, index);
  if (env.onNote) {
    // Streamed as they are made, so a case that kills its process still says what it did.
    r.note = (s) => {
      r.trace.push(s);
      env.onNote(index, s);
    };
  }
  const kinds = env.only ? KINDS.filter((k) => env.only.test(k[1])) : KINDS;
  const [, kind, fn] = r.weighted(kinds.map((k) => [k[0], k]));
  const ctx = { buffers: [], gc: env.gc, cleanup: [], intentional: new Set() };
  let out;
  try {
    out = await fn(r, env, ctx);
  } catch (err) {
    // The harness's own code threw (a bug in the fuzzer, or an injected getter/Proxy hit by
    // the fuzzer itself): report it, it is not the library's outcome.
    out = { outcome: 'failure', failure: 'harness-error', message: String((err && err.stack) || err).slice(0, 500) };
  } finally {
    for (const undo of ctx.cleanup.reverse()) undo();
  }
  return { kind, trace: r.trace, ...out };
}

module.exports = { runCase, KINDS, FuzzInjectedError, junk, detach, problem, nativeArgs, isPlainTensor, mutateTensor, describe, classify, settle };
