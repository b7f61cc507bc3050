/**
 * Framework tensors as inputs (lib/core/framework-tensor.ts, through checkTensor): an
 * onnxruntime-node Tensor from a real InferenceSession, and TensorFlow.js tensors, taken
 * by crossEntropy, calibration.*, LossAccumulator and Batcher with no rewrap, equal to the
 * same data given as plain tensors.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { Batcher, calibration, crossEntropy, crossEntropyAsync, LossAccumulator, tensor, type Tensor } from '../lib/index';
import { checkTensor } from '../lib/core/tensor';
import { softmaxRows } from './helpers/softmax';

// The ONNX bytes are written by hand (examples/onnx/onnx-model.js): no onnx package needed.
const { classMeans, linearClassifierOnnx } = require('../examples/onnx/onnx-model.js') as {
  linearClassifierOnnx: (w: Float32Array, b: Float32Array, features: number, classes: number) => Uint8Array;
  /** Nearest-class-mean weights: logit_c = s·(x·μ_c − |μ_c|²/2), a linear classifier. */
  classMeans: (x: Float32Array, y: BigInt64Array, n: number, s: number) => { w: Float32Array; b: Float32Array };
};

const ROOT = path.resolve(__dirname, '..');

/** The digits (data/digits.csv.gz): 64 features scaled to [0, 1], labels 0..9. */
function digits(): { x: Float32Array; y: BigInt64Array; n: number } {
  const rows = zlib.gunzipSync(fs.readFileSync(path.join(ROOT, 'data', 'digits.csv.gz'))).toString('utf8').trim().split('\n');
  const body = rows.filter((r) => /^[0-9]/.test(r));
  const x = new Float32Array(body.length * 64);
  const y = new BigInt64Array(body.length);
  body.forEach((line, i) => {
    const v = line.split(',').map(Number);
    for (let j = 0; j < 64; j++) x[i * 64 + j] = v[j] / 16;
    y[i] = BigInt(v[64]);
  });
  return { x, y, n: body.length };
}


const plain = (t: ort.Tensor): Tensor => tensor((t.data as Float32Array).slice(), [...t.dims]);

describe('onnxruntime-node: a real InferenceSession', () => {
  let logits: ort.Tensor;
  let labels: ort.Tensor;
  let n = 0;
  beforeAll(async () => {
    const d = digits();
    n = d.n;
    const { w, b } = classMeans(d.x, d.y, d.n, 2);
    const session = await ort.InferenceSession.create(linearClassifierOnnx(w, b, 64, 10));
    const out = await session.run({ x: new ort.Tensor('float32', d.x, [d.n, 64]) });
    logits = out.logits;
    labels = new ort.Tensor('int64', d.y, [d.n]);
    await session.release();
  });

  it('the session output is an ort.Tensor, and checkTensor views its data without copying', () => {
    expect(logits).toBeInstanceOf(ort.Tensor);
    expect(logits.dims).toEqual([n, 10]);
    expect(logits.type).toBe('float32');
    const t = checkTensor(logits, 'scores');
    expect(t.data).toBe(logits.data); // the same typed array
    expect(t.shape).toEqual([n, 10]);
    expect(checkTensor(labels, 'labels').data).toBe(labels.data);
  });

  it('calibration.report scores it with no rewrap, equal to the same data as a plain tensor', () => {
    const r = calibration.report(logits, labels, { from: 'logits', bins: 15 });
    const ref = calibration.report(plain(logits), tensor((labels.data as BigInt64Array).slice()), { from: 'logits', bins: 15 });
    expect(r).toEqual(ref);
    expect(r.n).toBe(n);
    expect(r.accuracy).toBeGreaterThan(0.85); // nearest class means on the digits
    expect(calibration.ece(probsOf(logits), labels)).toBe(calibration.ece(probsOf(logits), tensor((labels.data as BigInt64Array).slice())));
    const fit = calibration.fitTemperature(logits, labels);
    expect(fit.temperature).toBe(calibration.fitTemperature(plain(logits), labels).temperature);
    const acc = new calibration.Accumulator({ from: 'logits', bins: 15 });
    acc.update(logits, labels);
    expect(acc.report().ece).toBe(r.ece);
  });

  it('crossEntropy (sync and async), LossAccumulator and Batcher take it too', async () => {
    const opts = { labelSmoothing: 0.1 };
    const want = crossEntropy(plain(logits), tensor((labels.data as BigInt64Array).slice()), opts).loss;
    expect(crossEntropy(logits, labels, opts).loss).toBe(want);
    expect((await crossEntropyAsync(logits, labels, opts)).loss).toBe(want);
    const acc = new LossAccumulator(opts);
    acc.update(logits, labels);
    expect(acc.result()).toBeCloseTo(want, 6);
    const batcher = new Batcher({ ...opts, maxDelayMs: 0 });
    try {
      const row = new ort.Tensor('float32', (logits.data as Float32Array).slice(0, 10), [1, 10]);
      const lab = new ort.Tensor('int64', (labels.data as BigInt64Array).slice(0, 1), [1]);
      const r = await batcher.score(row, lab);
      expect(r.loss).toBe(crossEntropy(row, lab, opts).loss);
    } finally {
      await batcher.close();
    }
  });
});

function probsOf(t: ort.Tensor): Tensor {
  const x = t.data as Float32Array;
  const [n, k] = t.dims as number[];
  return tensor(softmaxRows(x, n, k), [n, k]);
}

describe('examples/onnx/digits-linear.onnx', () => {
  it('is what examples/onnx/make-model.js writes, and the session built from it scores as the test-built one', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'smoothce-onnx-')), 'm.onnx');
    const r = spawnSync(process.execPath, ['examples/onnx/make-model.js', out], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const committed = fs.readFileSync(path.join(ROOT, 'examples', 'onnx', 'digits-linear.onnx'));
    expect(Buffer.compare(fs.readFileSync(out), committed)).toBe(0);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
    const d = digits();
    const { w, b } = classMeans(d.x, d.y, d.n, 2);
    expect(Buffer.compare(Buffer.from(linearClassifierOnnx(w, b, 64, 10)), committed)).toBe(0);
  });
});

describe('onnxruntime Tensor types', () => {
  it('float64, int32 and uint8 are viewed; float16 is widened to float32 data with dtype float16', () => {
    const f64 = new ort.Tensor('float64', new Float64Array([1, 2]), [1, 2]);
    expect(checkTensor(f64, 'x')).toMatchObject({ dtype: 'float64', shape: [1, 2] });
    expect(checkTensor(f64, 'x').data).toBe(f64.data);
    expect(checkTensor(new ort.Tensor('int32', new Int32Array([3]), [1]), 'y').dtype).toBe('int32');
    expect(checkTensor(new ort.Tensor('uint8', new Uint8Array([3]), [1]), 'y').dtype).toBe('uint8');
    // 1, -2, +inf, NaN, the smallest subnormal
    const half = new ort.Tensor('float16', new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x7e00, 0x0001]), [5]);
    const h = checkTensor(half, 'x');
    expect(h.dtype).toBe('float16');
    expect(Array.from(h.data as Float32Array)).toEqual([1, -2, Infinity, NaN, 2 ** -24]);
  });

  it('other types and tensors outside CPU memory are TypeErrors naming the parameter', () => {
    const x = new ort.Tensor('float32', new Float32Array(6), [2, 3]);
    expect(() => crossEntropy(new ort.Tensor('int8', new Int8Array(6), [2, 3]), tensor(new Int32Array(2)))).toThrow(TypeError);
    expect(() => crossEntropy(new ort.Tensor('int8', new Int8Array(6), [2, 3]), tensor(new Int32Array(2)))).toThrow(/input\.type/);
    expect(() => calibration.report(x, new ort.Tensor('bool', new Uint8Array(2), [2]))).toThrow(/labels\.type/);
    // A tensor whose data lives elsewhere (as a WebGPU/ML tensor would): its location says so.
    const gpu = Object.create(Object.getPrototypeOf(x), {
      dims: { value: [2, 3], enumerable: true },
      type: { value: 'float32', enumerable: true },
      dataLocation: { value: 'gpu-buffer', enumerable: true },
    });
    Object.defineProperty(gpu, 'location', { get: () => 'gpu-buffer' });
    expect(() => crossEntropy(gpu, tensor(new Int32Array(2)))).toThrow(/in CPU memory \(its location is "gpu-buffer"/);
    // shape errors read as for plain tensors
    expect(() => crossEntropy(x, new ort.Tensor('int64', new BigInt64Array(3), [3]))).toThrow(RangeError);
  });
});

describe('TensorFlow.js tensors', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('are read once with dataSync and give the plain-tensor results', async () => {
    const x = tf.tensor2d([[2, 0.5, -1], [0.1, 0.2, 3]]);
    const y = tf.tensor1d([0, 2], 'int32');
    let reads = 0;
    const orig = x.dataSync.bind(x);
    (x as unknown as { dataSync: () => unknown }).dataSync = () => (reads++, orig());
    const want = crossEntropy(tensor(new Float32Array([2, 0.5, -1, 0.1, 0.2, 3]), [2, 3]), tensor(new Int32Array([0, 2])), { labelSmoothing: 0.1, grad: true });
    const got = crossEntropy(x, y, { labelSmoothing: 0.1, grad: true });
    expect(reads).toBe(1);
    expect(got.loss).toBe(want.loss);
    const acc = new LossAccumulator({ labelSmoothing: 0.1 });
    acc.update(x, y);
    expect(reads).toBe(2);
    await acc.updateAsync(x, y);
    expect(reads).toBe(3); // once per call, async included
    expect(acc.result()).toBeCloseTo(want.loss, 6);
    expect(Array.from(got.grad!.data)).toEqual(Array.from(want.grad!.data));
    expect(calibration.report(x, y, { from: 'logits' })).toEqual(calibration.report(tensor(new Float32Array([2, 0.5, -1, 0.1, 0.2, 3]), [2, 3]), tensor(new Int32Array([0, 2])), { from: 'logits' }));
    tf.dispose([x, y]);
  });

  it('bool/string tensors are TypeErrors; a disposed tensor is ERR_SMOOTHCE_DISPOSED', () => {
    const y = tf.tensor1d([0, 1], 'int32');
    expect(() => crossEntropy(tf.tensor2d([[true, false]], [1, 2], 'bool'), y)).toThrow(/input\.dtype/);
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    x.dispose();
    expect(() => crossEntropy(x, y)).toThrow(expect.objectContaining({ code: 'ERR_SMOOTHCE_DISPOSED' }));
    y.dispose();
  });

  it('an object that merely has a data field is still a plain tensor (own properties decide)', () => {
    const t = { data: new Float32Array(3), shape: [1, 3], dtype: 'float32', dims: [3], type: 'int8', dataId: {} };
    expect(checkTensor(t, 'x').dtype).toBe('float32');
  });
});
