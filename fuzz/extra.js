'use strict';
// Fuzz cases for every entry point besides crossEntropy/crossEntropyAsync/tensor: the other
// public exports (calibration, device tensors, accumulators, parity helpers, distributed,
// ...) and the other native exports (DeviceTensor, crossEntropyFused, calibration*, dist*,
// hugeBuffer, ...). Entry points are found at run time (Object.keys of the public API and
// of the binding), so new exports are fuzzed without editing this file; the ones below get
// arguments shaped for them, the rest get the generic pool.
//
// Left out on purpose (DENY): calls that touch the file system or the network by design,
// or wait for peers (a valid distributed init blocks until its world joins, up to its
// timeoutMs): the fuzzer would write files or report a by-design wait as a hang. Their
// argument checks are still fuzzed where they can be reached without that side effect
// (distInit/distributed.init with options that are invalid in at least one field).
const DENY = /(^|\.)(write|save|load|read|find|open|serve|listen|main|demo|cli|buildProgram|run)[A-Z]?|CaseFiles?$|Npy$/;
// Whole exports never called, with the reason.
const SKIP = new Set([
  'distInit', // valid options start a TCP store and wait for the world (see above); invalid ones fuzzed below
  'distributed.init',
  'hugePageAllocator', // swaps ATen's process-wide allocator; fuzzed below with its state restored
]);

const lazy = () => require('./cases');

function genericArg(r, ctx) {
  const c = lazy();
  const p = c.problem(r);
  const kind = r.weighted([[4, 'junk'], [5, 'tensor'], [2, 'typed'], [2, 'options'], [2, 'number'], [1, 'array'], [1, 'mutated']]);
  switch (kind) {
    case 'junk':
      return c.junk(r);
    case 'tensor':
      return r.chance(0.5) ? p.input : p.target;
    case 'typed':
      return r.chance(0.5) ? p.input.data : p.target.data;
    case 'options':
      return randomOptions(r, c);
    case 'number':
      return r.pick([0, 1, -1, 2, 15, NaN, Infinity, 1.5, 2 ** 31, 2 ** 53, 1e308, -0, 10n]);
    case 'array':
      return Array.from(p.input.data.slice(0, 12));
    default:
      return c.mutateTensor(r, p.input, ctx);
  }
}

const OPTION_KEYS = ['bins', 'norm', 'strategy', 'convention', 'device', 'from', 'temperature', 'debias', 'classwise', 'reduction', 'labelSmoothing', 'batchSize', 'tolerance', 'format', 'width', 'height', 'title', 'worldSize', 'rank', 'port', 'host', 'backend', 'timeoutMs', 'op', 'ignoreIndex', 'weight', 'grad', 'numClasses'];
const OPTION_VALUES = [0, 1, -1, 15, 1e9, NaN, Infinity, 0.5, 'l1', 'l2', 'max', 'uniform', 'quantile', 'top-label', 'logits', 'probs', 'cpu', 'cuda', 'svg', 'png', '', true, false, null, 2n, [], {}, 'x'.repeat(1000)];

function randomOptions(r, c) {
  const o = {};
  const n = r.int(0, 4);
  for (let i = 0; i < n; i++) o[r.pick(OPTION_KEYS)] = r.pick(OPTION_VALUES);
  if (r.chance(0.1)) return c.junk(r);
  return o;
}

/** Flattens the public API one level deep (namespaces such as calibration, distributed). */
function entryPoints(obj, prefix) {
  const out = [];
  for (const key of Object.keys(obj)) {
    let v;
    try {
      v = obj[key];
    } catch {
      continue;
    }
    const name = prefix ? `${prefix}.${key}` : key;
    if (typeof v === 'function') out.push([name, v, obj]);
    else if (v && typeof v === 'object' && !prefix && !ArrayBuffer.isView(v) && !Array.isArray(v)) out.push(...entryPoints(v, name));
  }
  return out;
}

const CORE = new Set(['crossEntropy', 'crossEntropyAsync', 'tensor', 'torchVersion', 'cudaAvailable', 'cudaDeviceCount', 'setNumThreads', 'getNumThreads', 'cudaBuilt']);

let cachedList;
function list(env) {
  if (!cachedList) {
    const api = entryPoints(env.api, '').filter(([n]) => !CORE.has(n)).map((e) => ['api', ...e]);
    const nat = entryPoints(env.native, '').filter(([n]) => !CORE.has(n)).map((e) => ['native', ...e]);
    cachedList = [...api, ...nat].filter(([, n]) => !SKIP.has(n) && !DENY.test(n));
  }
  return cachedList;
}

function isClass(f) {
  return /^class[\s{]/.test(Function.prototype.toString.call(f)) || (f.prototype && Object.getOwnPropertyNames(f.prototype).length > 1);
}

/** Calls methods and reads accessors of an object a call returned (handles, accumulators). */
async function poke(r, env, obj, ctx, c) {
  if (!obj || typeof obj !== 'object') return;
  const proto = Object.getPrototypeOf(obj);
  const names = proto && proto !== Object.prototype ? Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor') : [];
  const steps = r.int(1, 4);
  for (let i = 0; i < steps && names.length; i++) {
    const n = r.pick(names);
    const d = Object.getOwnPropertyDescriptor(proto, n);
    r.note(`.${n}`);
    if (d && d.get) void obj[n];
    else if (typeof obj[n] === 'function') {
      const args = Array.from({ length: r.int(0, 3) }, () => genericArg(r, ctx));
      const ret = obj[n](...args);
      await c.settle(ret, env.asyncTimeoutMs);
    }
  }
}

async function deviceTensorCase(r, env, ctx, c) {
  const Ctor = env.native.DeviceTensor;
  const p = c.problem(r, { big: r.chance(0.5) });
  ctx.buffers.push(p.input.data.buffer);
  let t = r.chance(0.5) ? p.input : p.target;
  const before = t.data.slice();
  const source = t.data;
  if (r.chance(0.6)) t = c.mutateTensor(r, t, ctx);
  const device = r.weighted([[6, 'cpu'], [1, 'cuda'], [1, c.junk(r)]]);
  const viaApi = env.api.toDevice && r.chance(0.5);
  r.note(viaApi ? 'toDevice' : 'new native.DeviceTensor');
  const h = viaApi ? env.api.toDevice(t, device) : new Ctor(t, device);
  if (ctx.intentional.has(source.buffer) && device === 'cpu') {
    // A getter detached the source while it was being read, and the handle was made anyway:
    // it must hold the values from before, never what the freed memory held afterwards.
    const got = h.toCPU().data;
    const same = got.length === before.length && got.every((v, i) => Object.is(v, before[i]) || (v !== v && before[i] !== before[i]));
    if (!same) return { outcome: 'failure', failure: 'read-after-detach', message: 'DeviceTensor copied memory its caller had already detached' };
  }
  // Misuse: dispose twice, use after dispose, read accessors after dispose.
  const steps = r.int(1, 5);
  for (let i = 0; i < steps; i++) {
    const step = r.pick(['dispose', 'toCPU', 'shape', 'dtype', 'device', 'disposed', 'asInput', 'asTarget']);
    r.note(`handle.${step}`);
    try {
      if (step === 'dispose') h.dispose();
      else if (step === 'toCPU') h.toCPU();
      else if (step === 'asInput' || step === 'asTarget') {
        const args = c.nativeArgs(p);
        args[step === 'asInput' ? 'input' : 'target'] = h;
        const ret = env.native.crossEntropy(args, r.chance(0.5));
        const s = await c.settle(ret, env.asyncTimeoutMs);
        if (s.hung) return { outcome: 'failure', failure: 'promise-never-settled' };
      } else void h[step];
    } catch (err) {
      if (!(err instanceof Error)) return { outcome: 'failure', failure: 'non-error-throw' };
    }
  }
  return { outcome: 'result' };
}

async function distInitInvalid(r, env, c) {
  // Options with at least one field that must be rejected before anything connects. The
  // world has one rank, so a field the API reads as "use the default" (null) joins at once
  // instead of waiting for peers that never come.
  const viaNative = r.chance(0.5) && env.native.distInit;
  const port = r.int(20000, 60000);
  const o = viaNative
    ? { worldSize: 1, rank: 0, port, host: '127.0.0.1', timeoutMs: 1000, backend: 'gloo' }
    : { worldSize: 1, rank: 0, store: `tcp://127.0.0.1:${port}`, timeoutMs: 1000, backend: 'gloo' };
  const field = r.pick(Object.keys(o));
  o[field] = r.pick({
    worldSize: [0, -1, 1.5, NaN, 65537, '2', null],
    rank: [-1, 99, 1.5, NaN, '0', null],
    port: [0, -1, 65536, NaN, '80', null],
    host: [5, null, {}],
    store: ['tcp://x', 'http://127.0.0.1:1', 'tcp://127.0.0.1:0', 'tcp://127.0.0.1:65536', 5, null, ''],
    timeoutMs: [0, -1, NaN, 86400001, '1', null],
    backend: [5, null, {}, 'mpi'],
  }[field]);
  if (field === 'rank' && o.rank === 99) o.rank = o.worldSize;
  r.note(`distInit (${viaNative ? 'native' : 'api'}) invalid ${field} = ${c.describe(o[field])}`);
  const fn = viaNative ? (x) => env.native.distInit(x) : env.api.distributed && env.api.distributed.init;
  if (!fn) return { outcome: 'result' };
  const ret = fn(r.chance(0.1) ? c.junk(r) ?? 0 : o);
  const s = await c.settle(ret, env.asyncTimeoutMs);
  if (s.hung) return { outcome: 'failure', failure: 'promise-never-settled' };
  if (s.error !== undefined) return c.classify(s.error);
  // A process group was made after all: leave nothing behind.
  try {
    if (s.value && typeof s.value.destroy === 'function') await s.value.destroy();
    else if (env.native.distDestroy) env.native.distDestroy(s.value);
  } catch {}
  // Accepted options that were meant to be invalid (e.g. a non-integer worldSize the binding
  // truncates) are a validation gap, not a crash: reported as a result with a note.
  r.note(`ACCEPTED invalid options ${JSON.stringify(o)}`);
  return { outcome: 'result' };
}

async function hugePages(r, env) {
  const before = env.native.hugePageAllocator();
  try {
    env.native.hugePageAllocator(r.pick([true, false, 1, 'yes', null]));
  } finally {
    env.native.hugePageAllocator(before);
  }
  return { outcome: 'result' };
}

async function extraCase(r, env, ctx) {
  const c = lazy();
  const special = [];
  if (env.native.DeviceTensor) special.push([5, 'DeviceTensor misuse', deviceTensorCase]);
  if (env.native.distInit || (env.api.distributed && env.api.distributed.init)) special.push([1, 'distInit invalid', (r2, e) => distInitInvalid(r2, e, c)]);
  if (env.native.hugePageAllocator) special.push([1, 'hugePageAllocator', hugePages]);
  const entries = list(env);
  const pick = r.weighted([[entries.length ? 12 : 0, 'generic'], ...special.map(([w, n]) => [w, n])]);
  try {
    if (pick !== 'generic') {
      r.note(pick);
      return await special.find(([, n]) => n === pick)[2](r, env, ctx, c);
    }
    const [side, name, fn, self] = r.pick(entries);
    const args = Array.from({ length: r.weighted([[1, 0], [3, 1], [4, 2], [3, 3], [1, 4]]) }, () => genericArg(r, ctx));
    r.note(`${side}.${name}(${args.map(c.describe).join(', ')})`);
    const ret = isClass(fn) ? new fn(...args) : fn.apply(self, args);
    const s = await c.settle(ret, env.asyncTimeoutMs);
    if (s.hung) return { outcome: 'failure', failure: 'promise-never-settled' };
    if (s.error !== undefined) return c.classify(s.error);
    await poke(r, env, s.value, ctx, c);
    return { outcome: 'result' };
  } catch (err) {
    return c.classify(err);
  }
}

module.exports = { extraCase, entryPoints, DENY, SKIP };
