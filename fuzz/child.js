'use strict';
// Runs a range of fuzz cases in this process (started by fuzz/fuzz.js with --expose-gc).
// Progress goes to file descriptor 3 with synchronous writes, one line per event, so the
// parent knows which case was running even if this process dies by a signal mid-case:
//   B <index>            case started
//   E <index> <json>     case ended, with its outcome
//   D                    range done
// Job (argv[2], JSON): { seed, start, end, api: 'lib' | 'dist', asyncTimeoutMs, only }
const fs = require('node:fs');

const job = JSON.parse(process.argv[2]);

function write(line) {
  // fd 3 is a pipe the parent reads; writeSync retries on EAGAIN so nothing is lost.
  for (;;) {
    try {
      fs.writeSync(3, line + '\n');
      return;
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
    }
  }
}

const { load } = require('./load');

// Failure injection, for the fuzzer's own tests only: SMOOTHCE_FUZZ_INJECT="abort@5,hang@9".
const inject = new Map(
  (process.env.SMOOTHCE_FUZZ_INJECT || '')
    .split(',')
    .filter(Boolean)
    .map((s) => {
      const [what, at] = s.split('@');
      return [Number(at), what];
    }),
);

async function main() {
  const { runCase } = require('./cases');
  const { api, native } = load(job.api);
  const gc = typeof global.gc === 'function' ? () => global.gc() : () => {};
  const env = { api, native, gc, asyncTimeoutMs: job.asyncTimeoutMs, only: job.only ? new RegExp(job.only) : null,
    onNote: job.verbose ? (i, s) => write(`N ${i} ${String(s).replace(/\n/g, ' ')}`) : null,
  };
  let late = null;
  process.on('uncaughtException', (err) => {
    late = { failure: 'uncaught-exception', message: String((err && err.stack) || err).slice(0, 500) };
  });
  process.on('unhandledRejection', (err) => {
    late = { failure: 'unhandled-rejection', message: String((err && err.stack) || err).slice(0, 500) };
  });
  // The library's one-time warnings (e.g. label smoothing with C = 2) are expected output.
  process.removeAllListeners('warning');
  for (let i = job.start; i < job.end; i++) {
    write(`B ${i}`);
    const what = inject.get(i);
    if (what === 'abort') process.abort();
    if (what === 'segv') process.kill(process.pid, 'SIGSEGV');
    if (what === 'hang') for (;;);
    if (what === 'exit') process.exit(3);
    const t0 = process.hrtime.bigint();
    let out = await runCase(job.seed, i, env);
    out.ms = Number(process.hrtime.bigint() - t0) / 1e6;
    await new Promise((resolve) => setImmediate(resolve));
    if (late) {
      out = { ...out, outcome: 'failure', ...late };
      late = null;
    }
    write(`E ${i} ${JSON.stringify(out)}`);
  }
  write('D');
  // Pending in-flight work (a promise that never settled) must not keep the child alive.
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`fuzz child: ${(err && err.stack) || err}\n`);
  process.exit(70);
});
