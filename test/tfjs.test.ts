/**
 * smoothce/tfjs (lib/tfjs.ts): the TensorFlow.js loss.
 *  - loss and gradient against the live PyTorch oracle (python/oracle_batch.py), rank 2
 *    and rank 4, with weights, ignore_index, label smoothing, every reduction and
 *    probability labels, on tfjs's cpu and wasm backends, in PyTorch's layout and
 *    channels-last (classAxis: -1);
 *  - training: a custom loop (optimizer.minimize, tf.variableGrads) and model.fit with
 *    tileLabels();
 *  - errors; and a process without tfjs can still require the root entry.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossEntropyLoss, tileLabels, type CrossEntropyLossOptions } from '../lib/tfjs';
import { compareArrays, decodeFloat, describeMismatches, fromTensor, TOLERANCES, type Case } from './helpers/cases-format';
import { ORACLE_PYTHON, probeOracle, runOracle, type OracleRequest } from './helpers/oracle';
import { cleanEnv, ensureDist, runLocked } from './helpers/contract-util';
import { rng } from './helpers/rng';

const ROOT = path.resolve(__dirname, '..');
const probe = probeOracle();
if (!probe.ok) console.warn(`\n!! ORACLE SKIPPED in test/tfjs.test.ts: ${probe.reason} (${ORACLE_PYTHON})\n`);

// ---------------------------------------------------------------------------------
// cases

interface TfCase {
  request: OracleRequest;
  /** PyTorch layout (N, C, d...) data and shape of the logits. */
  x: Float32Array;
  shape: number[];
  /** Labels as given to torch: class indices (Int32Array) or probabilities (Float32Array). */
  labels: Int32Array | Float32Array;
  labelShape: number[];
  options: CrossEntropyLossOptions;
  gradOutput: Float32Array | null;
}

function makeCases(seed: number): TfCase[] {
  const r = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const out: TfCase[] = [];
  const shapes: number[][] = [
    [7, 5],
    [2, 4, 3, 2],
  ];
  for (const shape of shapes) {
    const C = shape[1];
    const positions = shape.filter((_, i) => i !== 1);
    const nPos = positions.reduce((a, b) => a * b, 1);
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      for (const kind of ['indices', 'probabilities'] as const) {
        const x = Float32Array.from({ length: nPos * C }, () => normal() * 2);
        const weight = Float32Array.from({ length: C }, () => 0.25 + 2 * r());
        const eps = [0.1, 0.25, 0][out.length % 3];
        let labels: Int32Array | Float32Array;
        let labelShape: number[];
        let ignoreIndex: number | undefined;
        if (kind === 'indices') {
          ignoreIndex = out.length % 2 === 0 ? 1 : -100;
          labels = Int32Array.from({ length: nPos }, () => (r() < 0.2 ? ignoreIndex! : Math.floor(r() * C)));
          labels[0] = 0; // at least one counted position
          labelShape = positions;
        } else {
          labels = Float32Array.from({ length: nPos * C }, () => r());
          // normalise over the class axis (PyTorch does not require it; it makes the case typical)
          const inner = nPos / shape[0];
          for (let n = 0; n < shape[0]; n++) {
            for (let p = 0; p < inner; p++) {
              let s = 0;
              for (let c = 0; c < C; c++) s += labels[(n * C + c) * inner + p];
              for (let c = 0; c < C; c++) labels[(n * C + c) * inner + p] /= s;
            }
          }
          labelShape = shape;
        }
        const gradOutput = reduction === 'none' ? Float32Array.from({ length: nPos }, () => normal()) : null;
        const options: CrossEntropyLossOptions = { labelSmoothing: eps, weight, reduction, ...(ignoreIndex === undefined ? {} : { ignoreIndex }) };
        const name = `rank ${shape.length} ${kind} ${reduction} eps ${eps}${ignoreIndex === undefined ? '' : ` ignore ${ignoreIndex}`}`;
        out.push({
          request: {
            name,
            input: fromTensor({ data: x, shape, dtype: 'float32' }),
            target: fromTensor({ data: labels, shape: labelShape, dtype: kind === 'indices' ? 'int32' : 'float32' }),
            weight: fromTensor({ data: weight, shape: [C], dtype: 'float32' }),
            options: { reduction, ignore_index: ignoreIndex ?? -100, label_smoothing: eps },
            grad_output: gradOutput && fromTensor({ data: gradOutput, shape: positions, dtype: 'float32' }),
          },
          x,
          shape,
          labels,
          labelShape,
          options,
          gradOutput,
        });
      }
    }
  }
  return out;
}

/** Moves axis 1 of a row-major array to the end: (N, C, d...) -> (N, d..., C). */
function toChannelsLast(data: Float32Array | Int32Array, shape: number[]): { data: Float32Array; shape: number[] } {
  const [N, C] = shape;
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const out = new Float32Array(data.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let p = 0; p < inner; p++) out[(n * inner + p) * C + c] = data[(n * C + c) * inner + p];
  return { data: out, shape: [N, ...shape.slice(2), C] };
}

/** Loss and gradient of one case through the tfjs loss, in PyTorch's layout (grad converted back when channels-last). */
function runTfjs(c: TfCase, channelsLast: boolean): { loss: Float32Array; grad: Float32Array } {
  return tf.tidy(() => {
    const last = channelsLast && c.shape.length > 2;
    const xl = last ? toChannelsLast(c.x, c.shape) : { data: c.x, shape: c.shape };
    const x = tf.tensor(xl.data, xl.shape, 'float32');
    let labels: tf.Tensor;
    if (c.labels instanceof Int32Array) labels = tf.tensor(c.labels, c.labelShape, 'int32');
    else {
      const l = last ? toChannelsLast(c.labels, c.labelShape) : { data: c.labels, shape: c.labelShape };
      labels = tf.tensor(l.data, l.shape, 'float32');
    }
    const loss = crossEntropyLoss({ ...c.options, classAxis: channelsLast ? -1 : 1 });
    const value = loss(labels, x);
    const dy = c.gradOutput ? tf.tensor(c.gradOutput, value.shape, 'float32') : undefined;
    const g = tf.grad((z: tf.Tensor) => loss(labels, z))(x, dy);
    let grad = g.dataSync() as Float32Array;
    if (last) {
      // back to (N, C, d...)
      const [N, C] = c.shape;
      const inner = c.shape.slice(2).reduce((a, b) => a * b, 1);
      const back = new Float32Array(grad.length);
      for (let n = 0; n < N; n++) for (let c2 = 0; c2 < C; c2++) for (let p = 0; p < inner; p++) back[(n * C + c2) * inner + p] = grad[(n * inner + p) * C + c2];
      grad = back;
    }
    return { loss: Float32Array.from(value.dataSync()), grad: Float32Array.from(grad) };
  });
}

const BACKENDS = ['cpu', 'wasm'] as const;
let savedBackend = '';
beforeAll(async () => {
  savedBackend = tf.getBackend();
  await tf.ready();
});
afterAll(async () => {
  if (savedBackend) await tf.setBackend(savedBackend);
});

// CI must have the oracle (as in test/oracle.test.ts): fail there instead of skipping.
it.runIf(!probe.ok && !!process.env.CI)('has the PyTorch oracle on CI', () => {
  throw new Error(`ORACLE MISSING ON CI: ${probe.ok ? '' : probe.reason}`);
});

describe.runIf(probe.ok)('smoothce/tfjs equals PyTorch (live oracle)', () => {
  const seed = process.env.SMOOTHCE_ORACLE_SEED ? Number(process.env.SMOOTHCE_ORACLE_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  const cases = makeCases(seed);
  let expected: Case[] = [];
  beforeAll(() => {
    expected = runOracle(cases.map((c) => c.request)).cases;
  });

  for (const backend of BACKENDS) {
    for (const channelsLast of [false, true]) {
      it(`${backend} backend, ${channelsLast ? 'channels-last (classAxis -1)' : "PyTorch layout"}: loss and gradient, rank 2 and 4 (seed ${seed})`, async () => {
        expect(await tf.setBackend(backend)).toBe(true);
        expect(tf.getBackend()).toBe(backend);
        const problems: string[] = [];
        for (let i = 0; i < cases.length; i++) {
          const c = cases[i];
          const e = expected[i].expected;
          if ('error' in e) throw new Error(`oracle error for ${c.request.name}: ${e.error.message}`);
          const got = runTfjs(c, channelsLast);
          const wantLoss = e.loss.data.map(decodeFloat);
          const wantGrad = e.grad_input!.data.map(decodeFloat);
          const ml = compareArrays(got.loss, wantLoss, TOLERANCES.float32);
          const mg = compareArrays(got.grad, wantGrad, TOLERANCES.float32);
          if (ml.length) problems.push(`${c.request.name}: ${describeMismatches('loss', ml)}`);
          if (mg.length) problems.push(`${c.request.name}: ${describeMismatches('grad', mg)}`);
        }
        expect(problems).toEqual([]);
        // 2 ranks × 3 reductions × (class indices with weights and ignore_index, probabilities with weights)
        expect(cases.length).toBe(12);
      });
    }
  }
});

describe('training with smoothce/tfjs', () => {
  for (const backend of BACKENDS) {
    it(`${backend}: a custom loop (optimizer.minimize) lowers the loss; tf.variableGrads gives smoothce's gradient`, async () => {
      await tf.setBackend(backend);
      const r = rng(7);
      const N = 64, D = 6, C = 4;
      const xs = tf.tensor2d(Float32Array.from({ length: N * D }, () => r() * 2 - 1), [N, D]);
      const trueW = tf.tensor2d(Float32Array.from({ length: D * C }, () => r() * 4 - 2), [D, C]);
      const ys = tf.tidy(() => tf.argMax(tf.matMul(xs, trueW), 1).toInt());
      const w = tf.variable(tf.zeros([D, C]), true, `w-${backend}`);
      const b = tf.variable(tf.zeros([C]), true, `b-${backend}`);
      const loss = crossEntropyLoss({ labelSmoothing: 0.1, weight: [1, 1, 2, 0.5] });
      const opt = tf.train.adam(0.1);
      const curve: number[] = [];
      for (let step = 0; step < 30; step++) {
        const l = opt.minimize(() => loss(ys, tf.add(tf.matMul(xs, w), b)) as tf.Scalar, true)!;
        curve.push(l.dataSync()[0]);
        l.dispose();
      }
      // Zero logits: every -log p is log C; PyTorch's weighted mean with smoothing gives
      // log C · ((1 − ε) + ε · mean(w) · N / Σ w[y]) (the denominator counts target weights only).
      const wts = [1, 1, 2, 0.5];
      const sumWy = Array.from(ys.dataSync() as Int32Array).reduce((s, y) => s + wts[y], 0);
      expect(curve[0]).toBeCloseTo(Math.log(C) * (0.9 + (0.1 * (4.5 / C) * N) / sumWy), 5);
      expect(curve[29]).toBeLessThan(0.6 * curve[0]);
      // variableGrads: the same gradient as smoothce's crossEntropy on the same logits
      const { value, grads } = tf.variableGrads(() => loss(ys, tf.add(tf.matMul(xs, w), b)) as tf.Scalar, [w, b]);
      const { crossEntropy } = await import('../lib/index');
      const logits = tf.add(tf.matMul(xs, w), b);
      const ref = crossEntropy(
        { data: logits.dataSync() as Float32Array, shape: [N, C], dtype: 'float32' },
        { data: ys.dataSync() as Int32Array, shape: [N], dtype: 'int32' },
        { labelSmoothing: 0.1, weight: [1, 1, 2, 0.5], grad: true },
      );
      expect(value.dataSync()[0]).toBeCloseTo(ref.loss, 6);
      // db = column sums of d loss / d logits
      const db = new Float64Array(C);
      for (let i = 0; i < N * C; i++) db[i % C] += ref.grad!.data[i];
      const gotDb = grads[b.name].dataSync();
      for (let c = 0; c < C; c++) expect(gotDb[c]).toBeCloseTo(db[c], 5);
      tf.dispose([xs, trueW, ys, w, b, value, ...Object.values(grads), logits]);
      opt.dispose();
    });
  }

  it('model.fit trains with tileLabels() targets; plain class indices are refused by tfjs-layers itself', async () => {
    await tf.setBackend('cpu');
    const r = rng(11);
    const N = 48, D = 5, C = 3;
    const xs = tf.tensor2d(Float32Array.from({ length: N * D }, () => r() * 2 - 1), [N, D]);
    const ys = tf.tensor1d(Int32Array.from({ length: N }, (_, i) => (xs.dataSync()[i * D] > 0.3 ? 2 : xs.dataSync()[i * D + 1] > 0 ? 1 : 0)), 'int32');
    const model = tf.sequential({ layers: [tf.layers.dense({ units: C, inputShape: [D], kernelInitializer: 'zeros' })] });
    model.compile({ optimizer: tf.train.adam(0.05), loss: crossEntropyLoss({ labelSmoothing: 0.1, labels: 'tiled-indices' }) });
    const targets = tileLabels(ys, C);
    expect(targets.shape).toEqual([N, C]);
    const h = await model.fit(xs, targets, { epochs: 20, batchSize: 16, verbose: 0, shuffle: false });
    const losses = h.history.loss as number[];
    expect(losses[0]).toBeLessThan(Math.log(C) + 1e-6);
    expect(losses[19]).toBeLessThan(0.8 * losses[0]);
    // tfjs-layers checks targets against the model's output shape for any loss but its own sparse one
    const plain = tf.sequential({ layers: [tf.layers.dense({ units: C, inputShape: [D] })] });
    plain.compile({ optimizer: 'sgd', loss: crossEntropyLoss({ labelSmoothing: 0.1 }) });
    await expect(plain.fit(xs, ys, { epochs: 1, verbose: 0 })).rejects.toThrow(/expected .* shape|dimension/i);
    tf.dispose([xs, ys, targets]);
    model.dispose();
    plain.dispose();
  });
});

describe('smoothce/tfjs: tiled labels and channels-last equal the plain forms', () => {
  it('tileLabels with classAxis 1 and -1 on rank-4 logits gives the sparse loss and gradient', async () => {
    await tf.setBackend('cpu');
    const r = rng(3);
    const [N, C, H, W] = [2, 3, 2, 2];
    const x = tf.tensor4d(Float32Array.from({ length: N * C * H * W }, () => r() * 4 - 2), [N, C, H, W]);
    const y = tf.tensor3d(Int32Array.from({ length: N * H * W }, () => Math.floor(r() * C)), [N, H, W], 'int32');
    const opts = { labelSmoothing: 0.2, weight: [1, 3, 0.5], ignoreIndex: 2 };
    const plain = crossEntropyLoss(opts);
    const tiled = crossEntropyLoss({ ...opts, labels: 'tiled-indices' });
    const a = tf.valueAndGrad((z: tf.Tensor) => plain(y, z) as tf.Scalar)(x);
    const b = tf.valueAndGrad((z: tf.Tensor) => tiled(tileLabels(y, C), z) as tf.Scalar)(x);
    expect(b.value.dataSync()[0]).toBe(a.value.dataSync()[0]);
    expect(Array.from(b.grad.dataSync())).toEqual(Array.from(a.grad.dataSync()));
    // channels-last: transpose logits, tile along the last axis
    const xl = tf.transpose(x, [0, 2, 3, 1]);
    const last = crossEntropyLoss({ ...opts, classAxis: -1, labels: 'tiled-indices' });
    const c = tf.valueAndGrad((z: tf.Tensor) => last(tileLabels(y, C, -1), z) as tf.Scalar)(xl);
    expect(c.value.dataSync()[0]).toBeCloseTo(a.value.dataSync()[0], 6);
    const back = tf.transpose(c.grad, [0, 3, 1, 2]).dataSync();
    const ga = a.grad.dataSync();
    for (let i = 0; i < ga.length; i++) expect(back[i]).toBeCloseTo(ga[i], 6);
    // class weights as a 1-D tfjs tensor (read once when the loss is made) are the same weights
    const wt = crossEntropyLoss({ ...opts, weight: tf.tensor1d(opts.weight) });
    expect(wt(y, x).dataSync()[0]).toBe(a.value.dataSync()[0]);
    expect(() => crossEntropyLoss({ weight: tf.tensor2d([[1, 2, 3]]) as never })).toThrow(/1-D tensor of class weights/);
    // float32 labels holding integers are class indices too
    const yf = tf.cast(y, 'float32');
    expect(plain(yf, x).dataSync()[0]).toBe(a.value.dataSync()[0]);
  });
});

describe('smoothce/tfjs: errors', () => {
  it('bad options fail when the loss is made, naming the option', () => {
    expect(() => crossEntropyLoss({ labelSmoothing: -1 })).toThrow(RangeError);
    expect(() => crossEntropyLoss({ labelSmoothing: -1 })).toThrow(/labelSmoothing/);
    expect(() => crossEntropyLoss({ reduction: 'avg' as never })).toThrow(TypeError);
    expect(() => crossEntropyLoss({ classAxis: 2 as never })).toThrow(/classAxis/);
    expect(() => crossEntropyLoss({ labels: 'onehot' as never })).toThrow(/labels/);
    expect(() => crossEntropyLoss({ labelSmothing: 0.1 } as never)).toThrow(/did you mean 'labelSmoothing'/);
  });

  it('bad labels and logits give typed errors, not crashes', async () => {
    await tf.setBackend('cpu');
    const loss = crossEntropyLoss({ labelSmoothing: 0.1 });
    const x = tf.tensor2d([[1, 2, 3], [0, 0, 1]]);
    expect(() => loss(tf.tensor1d([0, 3], 'int32'), x)).toThrow(RangeError); // out of range
    expect(() => loss(tf.tensor1d([0, 1.5]), x)).toThrow(/labels\[1\]/); // not an integer
    expect(() => loss(tf.tensor1d([0, 1, 2], 'int32'), x)).toThrow(RangeError); // wrong shape
    expect(() => loss(tf.tensor1d([0, 1], 'int32'), x.toInt())).toThrow(TypeError); // int logits
    expect(() => (loss as (a: unknown, b: unknown) => unknown)([0, 1], x)).toThrow(TypeError);
    const tiled = crossEntropyLoss({ labels: 'tiled-indices' });
    expect(() => tiled(tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3).toFloat(), x)).toThrow(/tiled-indices/);
  });
});

describe('the smoothce/tfjs entry point', () => {
  it('resolves through package.json "exports" for import and require, one instance', () => {
    ensureDist();
    const script =
      "import * as tf from '@tensorflow/tfjs-core'; import '@tensorflow/tfjs-backend-cpu';\n" +
      "import { crossEntropyLoss, tileLabels } from 'smoothce/tfjs';\n" +
      "import { createRequire } from 'node:module';\n" +
      "const cjs = createRequire(process.cwd() + '/')('smoothce/tfjs');\n" +
      "const l = crossEntropyLoss({ labelSmoothing: 0.1 })(tf.tensor1d([2], 'int32'), tf.tensor2d([[1, 2, 3]]));\n" +
      "console.log(JSON.stringify({ same: cjs.crossEntropyLoss === crossEntropyLoss && cjs.tileLabels === tileLabels, loss: l.dataSync()[0] }));\n";
    const res = runLocked('shared', process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: cleanEnv(), timeout: 60_000 });
    expect(res.status, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout.trim().split('\n').pop()!);
    expect(out.same).toBe(true);
    // log-softmax of [1, 2, 3] at class 2 with eps 0.1: 0.9·0.40761 + 0.1·mean(2.40761, 1.40761, 0.40761)
    expect(out.loss).toBeCloseTo(0.9 * 0.4076059644 + (0.1 * (2.4076059644 + 1.4076059644 + 0.4076059644)) / 3, 6);
  });
});

describe('a project without tfjs', () => {
  it("require('smoothce') never loads tfjs, and require('smoothce/tfjs') says what to install", () => {
    // A preload hides every @tensorflow package, as in a project that did not install tfjs.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-notfjs-'));
    const hide = path.join(dir, 'hide.js');
    fs.writeFileSync(
      hide,
      "const M = require('module'); const orig = M._resolveFilename;\n" +
        "M._resolveFilename = function (req, ...rest) { if (String(req).startsWith('@tensorflow/')) { const e = new Error(`Cannot find module '${req}'`); e.code = 'MODULE_NOT_FOUND'; throw e; } return orig.call(this, req, ...rest); };\n",
    );
    const script =
      "const s = require('smoothce');\n" +
      "const r = s.crossEntropy(s.tensor(new Float32Array([1, 2, 3]), [1, 3]), s.tensor(new Int32Array([2])), { labelSmoothing: 0.1 });\n" +
      "const loaded = Object.keys(require.cache).filter((f) => f.includes('@tensorflow'));\n" +
      "let peer; try { require('smoothce/tfjs'); peer = 'loaded'; } catch (e) { peer = e.code + ': ' + e.message; }\n" +
      'console.log(JSON.stringify({ loss: r.loss, loaded, peer }));\n';
    ensureDist();
    // dist/ is read under the shared lock other tests rebuild it under (test/helpers/contract-util.ts)
    const res = runLocked('shared', process.execPath, ['-r', hide, '-e', script], { cwd: ROOT, env: cleanEnv(), timeout: 60_000 });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(res.status, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout.trim().split('\n').pop()!);
    expect(out.loss).toBeGreaterThan(0);
    expect(out.loaded).toEqual([]);
    expect(out.peer).toMatch(/^ERR_SMOOTHCE_MISSING_DEPENDENCY: smoothce\/tfjs needs @tensorflow\/tfjs-core/);
  });
});
