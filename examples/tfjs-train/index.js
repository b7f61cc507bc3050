// A TensorFlow.js model trained on the handwritten digits with smoothce's label-smoothed
// cross-entropy (ε = 0.1), in a custom loop; then the calibration of the trained model, and
// where tfjs's own tf.losses.softmaxCrossEntropy (one-hot labels, labelSmoothing) agrees with
// PyTorch's loss and where it does not.
//
//   node examples/tfjs-train [--backend cpu|wasm] [--epochs 12] [--json]
//
// See docs/frameworks.md.
'use strict';
const tf = require('@tensorflow/tfjs');
const { calibration, crossEntropy, tensor } = require('smoothce');
const { crossEntropyLoss } = require('smoothce/tfjs');
const { loadDigits } = require('../digits');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const BACKEND = arg('--backend', 'cpu');
const EPOCHS = Number(arg('--epochs', 12));
const JSON_OUT = args.includes('--json');
const EPS = 0.1;
const SEED = 42;

/** Every 5th image is a test image, the rest train. */
function split({ x, y, n }) {
  const pick = (keep) => {
    const rows = [];
    for (let i = 0; i < n; i++) if (keep(i)) rows.push(i);
    const xs = new Float32Array(rows.length * 64);
    rows.forEach((r, k) => xs.set(x.subarray(r * 64, r * 64 + 64), k * 64));
    return { x: tf.tensor2d(xs, [rows.length, 64]), y: tf.tensor1d(Int32Array.from(rows, (r) => y[r]), 'int32'), n: rows.length };
  };
  return { train: pick((i) => i % 5 !== 0), test: pick((i) => i % 5 === 0) };
}

/** 64 → 32 (relu) → 10 logits, seeded. */
function makeModel() {
  return tf.sequential({
    layers: [
      tf.layers.dense({ units: 32, inputShape: [64], activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: SEED }) }),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: SEED + 1 }) }),
    ],
  });
}

/** Trains with `lossFn(labels, logits)` in a custom loop; returns the mean training loss of each epoch. */
function train(model, data, lossFn, makeLabels) {
  const optimizer = tf.train.adam(0.01);
  const batch = 64;
  const curve = [];
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    let sum = 0;
    let count = 0;
    for (let start = 0; start < data.n; start += batch) {
      const size = Math.min(batch, data.n - start);
      const cost = tf.tidy(() => {
        const xb = data.x.slice([start, 0], [size, 64]);
        const yb = makeLabels(data.y.slice([start], [size]));
        return optimizer.minimize(() => lossFn(yb, model.apply(xb)), true);
      });
      sum += cost.dataSync()[0] * size;
      count += size;
      cost.dispose();
    }
    curve.push(sum / count);
  }
  optimizer.dispose();
  return curve;
}

/** smoothce's loss (= PyTorch's) on plain arrays, for the comparisons below. */
function torchLoss(logits, shape, labels, labelShape, options) {
  return crossEntropy(tensor(logits, shape), tensor(labels, labelShape), options).loss;
}

async function main() {
  tf.enableProdMode(); // no "install tfjs-node" banner
  if (BACKEND === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(BACKEND))) throw new Error(`tfjs backend ${BACKEND} did not initialise`);
  const started = Date.now();
  const { train: trainSet, test } = split(loadDigits());

  // 1. Train with smoothce's loss, and a twin (same initial weights) with tfjs's own.
  const model = makeModel();
  const ours = train(model, trainSet, crossEntropyLoss({ labelSmoothing: EPS }), (y) => y);
  const twin = makeModel();
  const theirs = train(
    twin,
    trainSet,
    (onehot, logits) => tf.losses.softmaxCrossEntropy(onehot, logits, undefined, EPS),
    (y) => tf.oneHot(y, 10),
  );

  // 2. Calibration of the smoothce-trained model: tfjs tensors go to smoothce as they are.
  const logits = model.predict(test.x);
  const report = calibration.report(logits, test.y, { from: 'logits', bins: 15 });
  const fit = calibration.fitTemperature(logits, test.y);

  // 3. Where tfjs's softmaxCrossEntropy agrees with PyTorch's loss, and where it does not.
  const L = logits.dataSync();
  const Y = test.y.dataSync();
  const N = test.n;
  const tfjsLoss = (onehot, lg, weights, eps = EPS) => tf.tidy(() => tf.losses.softmaxCrossEntropy(onehot, lg, weights, eps).dataSync()[0]);
  const onehot = tf.oneHot(test.y, 10);
  const rows = [];
  // (a) rank 2, no weights
  rows.push({
    case: 'rank 2, no weights',
    smoothce: torchLoss(L, [N, 10], Y, [N], { labelSmoothing: EPS }),
    tfjs: tfjsLoss(onehot, logits),
  });
  // (b) per-class weights: tfjs takes per-sample weights, so give each sample its class's weight
  const classWeight = Float32Array.from({ length: 10 }, (_, c) => (c < 5 ? 1 : 3));
  rows.push({
    case: 'class weights (1 for 0-4, 3 for 5-9)',
    smoothce: torchLoss(L, [N, 10], Y, [N], { labelSmoothing: EPS, weight: classWeight }),
    tfjs: tfjsLoss(onehot, logits, tf.tensor1d(Array.from(Y, (y) => classWeight[y]))),
  });
  // (c) rank 4, channels-last: the test logits regrouped as (N/9, 3, 3, 10) tiles; the loss is
  //     unchanged (every position is one row), but tfjs smooths with shape[1] = 3 as the class count
  const M = Math.floor(N / 9) * 9;
  const L4 = tf.tensor(L.subarray(0, M * 10), [M / 9, 3, 3, 10]);
  const Y4 = tf.tensor(Y.subarray(0, M), [M / 9, 3, 3], 'int32');
  const loss4 = crossEntropyLoss({ labelSmoothing: EPS, classAxis: -1 });
  rows.push({
    case: 'rank 4 (N, 3, 3, 10), channels-last',
    smoothce: loss4(Y4, L4).dataSync()[0],
    tfjs: tfjsLoss(tf.oneHot(Y4, 10), L4),
    rank2: torchLoss(L.subarray(0, M * 10), [M, 10], Y.subarray(0, M), [M], { labelSmoothing: EPS }),
  });
  // (d) ignore_index: every 4th label ignored (-100). tf.oneHot(-100) is a zero row, which tfjs still smooths
  //     and counts; a 0/1 per-sample weight mask gives PyTorch's value when there are no class weights
  const Yi = Int32Array.from(Y, (y, i) => (i % 4 === 0 ? -100 : y));
  const Yit = tf.tensor1d(Yi, 'int32');
  const mask = tf.tensor1d(Array.from(Yi, (y) => (y === -100 ? 0 : 1)));
  rows.push({
    case: 'ignore_index (every 4th label -100)',
    smoothce: torchLoss(L, [N, 10], Yi, [N], { labelSmoothing: EPS, ignoreIndex: -100 }),
    tfjs: tfjsLoss(tf.oneHot(Yit, 10), logits),
    tfjsMasked: tfjsLoss(tf.oneHot(Yit, 10), logits, mask),
  });
  for (const r of rows) r.relDiff = Math.abs(r.tfjs - r.smoothce) / Math.abs(r.smoothce);
  const seconds = (Date.now() - started) / 1000;

  if (JSON_OUT) {
    console.log(JSON.stringify({ backend: BACKEND, epochs: EPOCHS, eps: EPS, lossCurve: ours, tfjsLossCurve: theirs, calibration: report, temperature: fit, comparison: rows, seconds }));
    return;
  }
  const f = (v, d = 4) => v.toFixed(d);
  console.log(`digits: ${trainSet.n} train, ${test.n} test; MLP 64-32-10, Adam 0.01, batch 64, ε = ${EPS}, tfjs ${tf.version.tfjs} ${BACKEND} backend`);
  console.log('\nepoch   train loss (smoothce/tfjs)   train loss (tf.losses.softmaxCrossEntropy, twin model)');
  ours.forEach((v, i) => console.log(`${String(i + 1).padStart(5)}   ${f(v, 6).padStart(26)}   ${f(theirs[i], 6).padStart(20)}`));
  console.log(
    `\ntest (${report.n} images): accuracy ${(100 * report.accuracy).toFixed(1)}%, NLL ${f(report.nll)}, Brier ${f(report.brier)}, ` +
      `ECE ${f(report.ece)}, MCE ${f(report.mce)}; temperature ${f(fit.temperature, 3)} → ECE ${f(fit.eceAfter)}`,
  );
  console.log('\nloss on the test logits             smoothce (= PyTorch)   tf.losses.softmaxCrossEntropy   relative difference');
  for (const r of rows) {
    console.log(`${r.case.padEnd(36)}${f(r.smoothce, 6).padStart(20)}   ${f(r.tfjs, 6).padStart(29)}   ${r.relDiff.toExponential(1).padStart(19)}`);
  }
  console.log(`  rank 4: the same rows as rank 2 give ${f(rows[2].rank2, 6)}; tfjs used 3 (shape[1]) as the class count when smoothing`);
  console.log(`  ignore_index: tfjs with a 0/1 sample-weight mask gives ${f(rows[3].tfjsMasked, 6)} (no class weights only)`);
  console.log(`\n${seconds.toFixed(1)} s`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
