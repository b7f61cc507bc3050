/**
 * What each recalibrator does to the demo's digits models: held-out (test) NLL and ECE
 * before and after temperature, vector, matrix (plain and ODIR), isotonic and histogram
 * recalibration, each fitted on the validation split's logits (calibration.fitCalibrator,
 * from: 'logits') and applied to the test split. The models are the demo's default regime
 * (10 digits, 20% of training labels flipped, 64 hidden units, 300 epochs) trained with
 * and without label smoothing; the seeds, splits and training are lib/demo's.
 *
 *   npm run bench:recalibrators                        (--seeds 3 --epochs 300)
 *   npm run bench:recalibrators -- --seeds 2 --epochs 20  (a smoke run)
 *
 * Prints a Markdown table: mean ± sd over seeds of test NLL and ECE (15 uniform bins,
 * Guo's convention), per ε. Figures go in docs/calibration.md.
 */
import { calibration, tensor } from '../lib/index';
import { DEFAULTS, prepare, train } from '../lib/demo';
import { arg } from './args';

const SEEDS = arg('seeds', 3);
const EPOCHS = arg('epochs', DEFAULTS.epochs);
const EPS = [0, 0.1];

const METHODS: { name: string; options: calibration.FitCalibratorOptions | null }[] = [
  { name: 'none', options: null },
  { name: 'temperature', options: { method: 'temperature', from: 'logits' } },
  { name: 'vector', options: { method: 'vector', from: 'logits' } },
  { name: 'matrix', options: { method: 'matrix', from: 'logits' } },
  { name: 'matrix, ODIR λ = μ = 1', options: { method: 'matrix', from: 'logits', odir: { lambda: 1, mu: 1 } } },
  { name: 'isotonic', options: { method: 'isotonic', from: 'logits' } },
  { name: 'histogram (15 bins)', options: { method: 'histogram', from: 'logits' } },
];

type Cell = { nll: number[]; ece: number[] };
const results = new Map<string, Cell>();
const cell = (method: string, eps: number): Cell => {
  const key = `${method}|${eps}`;
  if (!results.has(key)) results.set(key, { nll: [], ece: [] });
  return results.get(key)!;
};

const started = Date.now();
let info = '';
for (let s = 0; s < SEEDS; s++) {
  const seed = DEFAULTS.seed + s;
  for (const eps of EPS) {
    const spec = { seed, noise: DEFAULTS.noise, binary: false };
    const { data, train: trainSet, validation, test, noisy, modelSeed } = prepare(spec);
    info = `${data.classes} classes; train ${trainSet.n}, validation ${validation.n}, test ${test.n} rows`;
    const model = train(trainSet, noisy.y, validation, { eps, epochs: EPOCHS, hidden: DEFAULTS.hidden, batchSize: DEFAULTS.batchSize, lr: DEFAULTS.lr, seed: modelSeed, validationEveryEpoch: false });
    const k = data.classes;
    const val = tensor(model.forward(validation.x, validation.n), [validation.n, k], 'float64');
    const valY = tensor(validation.y, [validation.n], 'int32');
    const testZ = tensor(model.forward(test.x, test.n), [test.n, k], 'float64');
    const testY = tensor(test.y, [test.n], 'int32');
    for (const m of METHODS) {
      const r = m.options
        ? calibration.report(calibration.fitCalibrator(val, valY, m.options).apply(testZ), testY, { bins: DEFAULTS.bins })
        : calibration.report(testZ, testY, { from: 'logits', bins: DEFAULTS.bins });
      cell(m.name, eps).nll.push(r.nll);
      cell(m.name, eps).ece.push(r.ece);
    }
    process.stderr.write(`seed ${seed}, ε = ${eps}: done (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  }
}

function summary(xs: number[], scale: number, digits: number): string {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return `${(scale * mean).toFixed(digits)} ± ${(scale * sd).toFixed(digits)}`;
}

console.log(`digits, ${info}; ${SEEDS} seeds, ${EPOCHS} epochs; fitted on validation logits, scored on test (mean ± sd over seeds)\n`);
console.log(`| recalibrator | NLL, ε = 0 | ECE %, ε = 0 | NLL, ε = 0.1 | ECE %, ε = 0.1 |`);
console.log(`|---|---|---|---|---|`);
for (const m of METHODS) {
  const a = cell(m.name, 0);
  const b = cell(m.name, 0.1);
  console.log(`| ${m.name} | ${summary(a.nll, 1, 3)} | ${summary(a.ece, 100, 2)} | ${summary(b.nll, 1, 3)} | ${summary(b.ece, 100, 2)} |`);
}
