/**
 * npx smoothce demo: trains a small MLP on the handwritten digits with 20% of the training
 * labels flipped, once per label-smoothing ε, with loss and gradients from crossEntropy,
 * and compares accuracy and calibration on the clean test labels. See docs/demo.md.
 */
import { performance } from 'node:perf_hooks';
import { SingleBar, Presets } from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULTS, formatTable, runDemo, type DemoHooks } from '../demo';

interface DemoCliOptions {
  eps: number[];
  noise: number;
  seed: number;
  epochs: number;
  hidden: number;
  batchSize: number;
  lr: number;
  bins: number;
  binary?: boolean;
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

/** A bar per ε on an interactive terminal, else one line per epoch; always on stderr. */
function progressHooks(): DemoHooks {
  const out = process.stderr;
  if (out.isTTY) {
    let bar: SingleBar | undefined;
    return {
      onRunStart(eps, epochs) {
        bar = new SingleBar(
          {
            stream: out,
            format: `ε = ${String(eps).padEnd(5)} {bar} epoch {value}/{total}  loss {loss}  validation accuracy {acc}`,
            hideCursor: true,
          },
          Presets.shades_classic,
        );
        bar.start(epochs, 0, { loss: '-', acc: '-' });
      },
      onEpoch(_eps, info) {
        bar?.update(info.epoch, { loss: info.loss.toFixed(4), acc: `${(info.validationAccuracy * 100).toFixed(1)}%` });
      },
      onRunEnd() {
        bar?.stop();
      },
    };
  }
  return {
    onEpoch(eps, info) {
      out.write(
        `ε = ${eps}  epoch ${info.epoch}/${info.epochs}  loss ${info.loss.toFixed(4)}  ` +
          `validation accuracy ${(info.validationAccuracy * 100).toFixed(1)}%\n`,
      );
    },
  };
}

export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'train a small MLP on the handwritten digits with noisy training labels, once per label smoothing ε ' +
        '(loss and gradients from crossEntropy), and compare accuracy and calibration on the clean test labels',
    )
    .option('--eps <list>', 'label smoothing values, comma-separated', epsList, [...DEFAULTS.eps])
    .option('--noise <fraction>', 'fraction of training labels flipped to another class', number('a number in [0, 1)', (v) => v >= 0 && v < 1), DEFAULTS.noise)
    .option('--seed <int>', 'seed of the split, the noise, the initialisation and the batch order', number('a 32-bit integer', integer(-(2 ** 31), 2 ** 31 - 1)), DEFAULTS.seed)
    .option('--epochs <n>', 'training epochs', number('an integer ≥ 1', integer(1, 100_000)), DEFAULTS.epochs)
    .option('--hidden <n>', 'hidden units', number('an integer in [1, 4096]', integer(1, 4096)), DEFAULTS.hidden)
    .option('--batch-size <n>', 'minibatch size', number('an integer ≥ 1', integer(1, Number.MAX_SAFE_INTEGER)), DEFAULTS.batchSize)
    .option('--lr <rate>', 'Adam learning rate', number('a positive number', (v) => v > 0 && Number.isFinite(v)), DEFAULTS.lr)
    .option('--bins <n>', 'calibration bins', number('an integer in [1, 1000]', integer(1, 1000)), DEFAULTS.bins)
    .option('--binary', `two classes only (digits 3 vs 8)`)
    .option('--out <dir>', 'folder for report.json and the reliability diagrams', DEFAULTS.out)
    .option('--json', 'print the report as one JSON document on stdout (progress still goes to stderr)')
    .option('--no-progress', 'no progress output on stderr')
    .action((opts: DemoCliOptions) => {
      const started = performance.now();
      const report = runDemo(
        {
          eps: opts.eps,
          noise: opts.noise,
          seed: opts.seed,
          epochs: opts.epochs,
          hidden: opts.hidden,
          batchSize: opts.batchSize,
          lr: opts.lr,
          bins: opts.bins,
          binary: opts.binary ?? false,
          out: opts.out,
        },
        opts.progress ? progressHooks() : {},
      );
      if (opts.json) {
        process.stdout.write(JSON.stringify(report) + '\n');
        return;
      }
      const lines = [formatTable(report), '', 'wrote:'];
      if (report.files) for (const f of [report.files.report, ...report.files.diagrams]) lines.push(`  ${f}`);
      lines.push('', `done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
