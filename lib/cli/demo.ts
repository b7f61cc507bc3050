/**
 * npx smoothce demo: trains a small MLP on the handwritten digits with 20% of the training
 * labels flipped, at ε = 0 and 0.1 over 8 seeds, with loss and gradients from crossEntropy,
 * and compares accuracy and calibration on the clean test labels (means, paired differences
 * and whether they exceed the seed noise). `--study` runs the four regimes of docs/demo.md.
 * `npx smoothce study` is the same as `npx smoothce demo --study`.
 */
import { performance } from 'node:perf_hooks';
import { SingleBar, Presets } from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULTS, formatStudy, formatTable, runDemo, runStudy, type DemoHooks } from '../demo';

interface DemoCliOptions {
  eps: number[];
  noise: number;
  seed: number;
  seeds: number;
  epochs?: number;
  hidden: number;
  batchSize: number;
  lr: number;
  bins: number;
  threads?: number;
  binary?: boolean;
  quick?: boolean;
  study?: boolean;
  out: string;
  json?: boolean;
  progress: boolean;
}

function number(what: string, ok: (v: number) => boolean) {
  return (text: string): number => {
    const v = Number(text);
    if (text.trim() === '' || !ok(v)) throw new InvalidArgumentError(`expected ${what}, got ${JSON.stringify(text)}`);
    return v;
  };
}

const integer = (lo: number, hi: number) => (v: number) => Number.isInteger(v) && v >= lo && v <= hi;

function epsList(text: string): number[] {
  const values = text.split(',').map((part) => number('comma-separated numbers in [0, 1]', (v) => v >= 0 && v <= 1)(part));
  if (new Set(values).size !== values.length) throw new InvalidArgumentError(`expected distinct values, got ${JSON.stringify(text)}`);
  return values;
}

function seconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.max(0, Math.round(s));
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s` : `${s} s`;
}

/**
 * On stderr: a bar with the share of the work done and the time left on a terminal, else a
 * line at every 10% (the estimate extrapolates the rate so far).
 */
function progressHooks(label: string): DemoHooks & { stop(): void } {
  const out = process.stderr;
  const started = performance.now();
  const eta = (done: number, total: number) => ((performance.now() - started) / 1000) * (total / Math.max(done, 1e-9) - 1);
  if (out.isTTY) {
    const bar = new SingleBar(
      { stream: out, format: `${label} {bar} {percentage}%  elapsed {elapsed}  left {left}`, hideCursor: true, etaBuffer: 50 },
      Presets.shades_classic,
    );
    let started_ = false;
    return {
      onProgress(done, total) {
        const left = done > 0 ? seconds(eta(done, total)) : '?';
        const elapsed = seconds((performance.now() - started) / 1000);
        if (!started_) {
          bar.start(total, done, { left, elapsed });
          started_ = true;
        } else bar.update(done, { left, elapsed });
      },
      stop() {
        if (started_) bar.stop();
      },
    };
  }
  let shown = -1;
  return {
    onProgress(done, total) {
      const tenth = Math.floor((done / total) * 10);
      if (tenth === shown || total === 0) return;
      shown = tenth;
      const left = done > 0 ? `, about ${seconds(eta(done, total))} left` : '';
      out.write(`${label} ${tenth * 10}% done, ${seconds((performance.now() - started) / 1000)} elapsed${left}\n`);
    },
    stop() {},
  };
}

async function action(opts: DemoCliOptions): Promise<void> {
  const started = performance.now();
  const common = {
    seed: opts.seed,
    seeds: opts.seeds,
    quick: opts.quick ?? false,
    threads: opts.threads,
    batchSize: opts.batchSize,
    lr: opts.lr,
    bins: opts.bins,
    out: opts.out,
  };
  const progress = opts.progress ? progressHooks(opts.study ? 'study' : 'demo') : undefined;
  let text: string;
  let json: string;
  let files: string[];
  try {
    if (opts.study) {
      const study = await runStudy(common, progress ?? {});
      text = formatStudy(study);
      json = JSON.stringify(study);
      files = study.files ? [study.files.report, study.files.svg, ...(study.files.png ? [study.files.png] : [])] : [];
    } else {
      const report = await runDemo(
        { ...common, eps: opts.eps, noise: opts.noise, epochs: opts.epochs, hidden: opts.hidden, binary: opts.binary ?? false },
        progress ?? {},
      );
      text = formatTable(report);
      json = JSON.stringify(report);
      files = report.files ? [report.files.report, report.files.svg, ...(report.files.png ? [report.files.png] : [])] : [];
    }
  } finally {
    progress?.stop();
  }
  if (opts.json) {
    process.stdout.write(json + '\n');
    return;
  }
  const lines = [text, '', 'wrote:', ...files.map((f) => `  ${f}`)];
  lines.push('', `done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  process.stdout.write(lines.join('\n') + '\n');
}

function options(cmd: Command, study: boolean): Command {
  if (!study) {
    cmd
      .option('--eps <list>', 'label smoothing values, comma-separated; the first is the baseline', epsList, [...DEFAULTS.eps])
      .option('--noise <fraction>', 'fraction of training labels flipped to another class', number('a number in [0, 1)', (v) => v >= 0 && v < 1), DEFAULTS.noise)
      .option('--epochs <n>', `training epochs (default ${DEFAULTS.epochs}; 20 with --quick)`, number('an integer ≥ 1', integer(1, 100_000)))
      .option('--hidden <n>', 'hidden units', number('an integer in [1, 4096]', integer(1, 4096)), DEFAULTS.hidden)
      .option('--binary', 'two classes only (digits 3 vs 8)')
      .option('--study', 'run the four regimes (robustness, calibration, over-correction, binary) instead, and plot them; each regime has its own ε, noise, epochs and hidden units');
  }
  return cmd
    .option('--seed <int>', 'the first seed (of the split, the noise, the initialisation and the batch order)', number('an integer in [-2^31, 2^31 - 101]', integer(-(2 ** 31), 2 ** 31 - 101)), DEFAULTS.seed)
    .option('--seeds <n>', 'how many seeds: seed, seed + 1, ...', number('an integer in [1, 100]', integer(1, 100)), DEFAULTS.seeds)
    .option('--quick', 'a smoke run of a few seconds (few epochs); its numbers show nothing')
    .option('--threads <n>', 'worker threads (default: one per core; the results do not depend on it)', number('an integer in [1, 256]', integer(1, 256)))
    .option('--batch-size <n>', 'minibatch size', number('an integer ≥ 1', integer(1, Number.MAX_SAFE_INTEGER)), DEFAULTS.batchSize)
    .option('--lr <rate>', 'Adam learning rate', number('a positive number', (v) => v > 0 && Number.isFinite(v)), DEFAULTS.lr)
    .option('--bins <n>', 'calibration bins', number('an integer in [1, 1000]', integer(1, 1000)), DEFAULTS.bins)
    .option('--out <dir>', 'folder for the JSON report and the plots (SVG and PNG)', DEFAULTS.out)
    .option('--json', 'print the report as one JSON document on stdout (progress still goes to stderr)')
    .option('--no-progress', 'no progress output on stderr');
}

export function register(program: Command): void {
  options(
    program
      .command('demo')
      .description(
        'train a small MLP on the handwritten digits with noisy training labels at each label smoothing ε over several seeds ' +
          '(loss and gradients from crossEntropy), and compare accuracy and calibration on the clean test labels',
      ),
    false,
  ).action((opts: DemoCliOptions) => action(opts));
  options(
    program
      .command('study')
      .description('the demo in four regimes (robustness, calibration, over-correction, binary): tables, plots and a JSON report'),
    true,
  ).action((opts: DemoCliOptions) => action({ ...opts, study: true }));
}
