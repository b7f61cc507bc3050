#!/usr/bin/env node
'use strict';
// smoothce's fuzzer: random and malformed calls through the public API and straight into
// the native binding, each run where a crash is caught.
//
//   npm run fuzz -- --seed 42 --cases 5000            run cases 0..4999 of seed 42
//   npm run fuzz -- --replay 42:1234                  run one case again, printing what it did
//   npm run fuzz -- --replay 42:1200-1300             a range, one child per case
//
// Cases run in child processes (fuzz/child.js), a batch of --batch cases each, --jobs at
// a time. A child that dies (signal, abort, exit) or whose case runs longer than
// --timeout seconds is killed; the case that was running is then run alone in a fresh
// child to confirm it (a crash or hang that only happens after earlier cases is reported
// with its batch range), and the rest of the batch goes on in a new child.
// Every case is a pure function of (seed, index): a finding is replayed with its id.
// Outcome per case: a result or a JS error. Anything else is a finding (crash, hang,
// a thrown non-Error, a changed input, an async result that differs from the sync one,
// a promise that never settles, an uncaught exception); exit status 1 if any.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.resolve(__dirname, '..');

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string' },
    cases: { type: 'string', default: '2000' },
    start: { type: 'string', default: '0' },
    jobs: { type: 'string' },
    batch: { type: 'string', default: '250' },
    timeout: { type: 'string', default: '60' },
    replay: { type: 'string', multiple: true },
    api: { type: 'string', default: 'lib' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(root, '.fuzz') },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (opts.help) {
  process.stdout.write(`Usage: npm run fuzz -- [options]
  --seed S         32-bit integer seed (default: random, printed)
  --cases N        number of cases (default 2000)
  --start I        first case index (default 0)
  --jobs J         child processes at a time (default: min(2, cores))
  --batch B        cases per child (default 250)
  --timeout T      seconds a single case may run before it counts as a hang (default 60)
  --replay S:I[-J] run case I (or I..J) of seed S again, one child each, printing its trace
                   (with the same --only as the run that found it: it selects the cases)
  --api lib|dist   load the package from lib/*.ts (default) or from the built dist/
  --only REGEX     only case kinds matching (api, native, lifetime, tensor, misc, extra, files)
  --json           print the summary as JSON (last line of stdout)
  --quiet          no progress lines
  --out DIR        where findings are written (default .fuzz/)
`);
  process.exit(0);
}

function int(name, v) {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) {
    process.stderr.write(`fuzz: --${name} must be an integer, got ${v}\n`);
    process.exit(2);
  }
  return n;
}

const timeoutMs = int('timeout', opts.timeout) * 1000;
const jobs = opts.jobs ? int('jobs', opts.jobs) : Math.max(1, Math.min(2, os.availableParallelism()));
const log = (s) => opts.quiet || process.stderr.write(s + '\n');

/**
 * Runs cases [start, end) of `seed` in one child. Resolves with
 * { outcomes: Map<index, outcome>, notes: Map<index, string[]>, died: null | { index, how, stderr } }.
 */
function runChild(seed, start, end, { verbose = false } = {}) {
  return new Promise((resolve) => {
    const job = { seed, start, end, api: opts.api, asyncTimeoutMs: Math.max(1000, Math.floor(timeoutMs * 0.8)), only: opts.only, verbose };
    const child = spawn(process.execPath, ['--expose-gc', path.join(__dirname, 'child.js'), JSON.stringify(job)], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      // glibc: allocations of 64 KiB and more always get their own mapping, unmapped when
      // freed (no dynamic threshold), so a read after free of a big buffer faults instead of
      // reading stale heap; and freed memory is overwritten (MALLOC_PERTURB_), so a smaller
      // read after free gives a wrong result that the lifetime cases notice.
      env: { ...process.env, NODE_OPTIONS: '', MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_PERTURB_: '165' },
    });
    const outcomes = new Map();
    const notes = new Map();
    let current = null;
    let started = false;
    let startedAt = 0;
    let done = false;
    let hung = false;
    let stderr = '';
    let buf = '';
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-8000);
    });
    child.stdio[3].on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line[0] === 'B') {
          started = true;
          current = Number(line.slice(2));
          startedAt = Date.now();
        } else if (line[0] === 'E') {
          const sp = line.indexOf(' ', 2);
          outcomes.set(Number(line.slice(2, sp)), JSON.parse(line.slice(sp + 1)));
          current = null;
        } else if (line[0] === 'N') {
          const sp = line.indexOf(' ', 2);
          const i = Number(line.slice(2, sp));
          if (!notes.has(i)) notes.set(i, []);
          notes.get(i).push(line.slice(sp + 1));
        } else if (line[0] === 'D') done = true;
      }
    });
    const timer = setInterval(() => {
      if (current !== null && Date.now() - startedAt > timeoutMs) {
        hung = true;
        child.kill('SIGKILL');
      }
    }, 250);
    child.on('close', (code, signal) => {
      clearInterval(timer);
      if (done && code === 0) return resolve({ outcomes, notes, died: null });
      if (!started && !hung) {
        // The child never reached its first case: the harness (or the package's loading) is
        // broken, not a case. Stop here rather than blame every case.
        process.stderr.write(`fuzz: a child failed before its first case (${signal ?? `exit code ${code}`}):\n${stderr}\n`);
        process.exit(70);
      }
      let index = current;
      if (index === null) {
        // Died between cases: the next case not reported.
        index = start;
        while (outcomes.has(index)) index++;
      }
      const how = hung ? 'hang' : signal ? `signal ${signal}` : `exit code ${code}`;
      resolve({ outcomes, notes, died: { index, how, hang: hung, stderr: stderr.trim().split('\n').slice(-12).join('\n') } });
    });
  });
}

function newSummary(seed) {
  return { seed, cases: 0, results: 0, errors: 0, errorsByClass: {}, byKind: {}, failures: 0, failuresByType: {}, crashes: 0, hangs: 0, findings: [], slowest: [] };
}

function record(summary, index, o) {
  summary.cases++;
  if (o.ms !== undefined) {
    summary.slowest.push({ id: `${summary.seed}:${index}`, ms: Math.round(o.ms), kind: o.kind, trace: o.trace });
    summary.slowest.sort((a, b) => b.ms - a.ms);
    summary.slowest.length = Math.min(summary.slowest.length, 5);
  }
  const k = (summary.byKind[o.kind] ??= { cases: 0, results: 0, errors: 0, failures: 0 });
  k.cases++;
  if (o.outcome === 'result') {
    summary.results++;
    k.results++;
  } else if (o.outcome === 'error') {
    summary.errors++;
    k.errors++;
    summary.errorsByClass[o.cls] = (summary.errorsByClass[o.cls] ?? 0) + 1;
  } else {
    summary.failures++;
    k.failures++;
    summary.failuresByType[o.failure] = (summary.failuresByType[o.failure] ?? 0) + 1;
    summary.findings.push({ id: `${summary.seed}:${index}`, type: o.failure, kind: o.kind, message: o.message, trace: o.trace });
  }
}

async function runRange(summary, seed, start, end) {
  let from = start;
  while (from < end) {
    const r = await runChild(seed, from, end);
    for (const [i, o] of r.outcomes) record(summary, i, o);
    if (!r.died) return;
    const { index } = r.died;
    if (index >= end) return;
    // Confirm: the same case alone, in a fresh child, with its trace streamed.
    const alone = await runChild(seed, index, index + 1, { verbose: true });
    const type = r.died.hang ? 'hang' : 'crash';
    if (alone.died) {
      summary[type === 'hang' ? 'hangs' : 'crashes']++;
      summary.findings.push({ id: `${seed}:${index}`, type, how: alone.died.how, stderr: alone.died.stderr, trace: alone.notes.get(index) ?? [] });
      log(`fuzz: ${type.toUpperCase()} at case ${seed}:${index} (${alone.died.how}); replay: npm run fuzz -- --replay ${seed}:${index}${opts.only ? ` --only '${opts.only}'` : ''}`);
    } else {
      // Not reproducible alone: the batch up to it is the reproducer.
      summary[type === 'hang' ? 'hangs' : 'crashes']++;
      summary.findings.push({ id: `${seed}:${from}-${index}`, type: `${type} (only after earlier cases)`, how: r.died.how, stderr: r.died.stderr });
      log(`fuzz: ${type.toUpperCase()} at case ${seed}:${index} (${r.died.how}), not alone: replay the batch ${seed}:${from}-${index}`);
      for (const [i, o] of alone.outcomes) record(summary, i, o);
    }
    if (alone.died) summary.cases++;
    from = index + 1;
  }
}

async function fuzz() {
  const seed = opts.seed !== undefined ? int('seed', opts.seed) : (Math.random() * 2 ** 31) | 0;
  const start = int('start', opts.start);
  const count = int('cases', opts.cases);
  const batch = Math.max(1, int('batch', opts.batch));
  const summary = newSummary(seed);
  const t0 = Date.now();
  log(`fuzz: seed ${seed}, cases ${start}..${start + count - 1}, ${jobs} jobs, batches of ${batch}, api from ${opts.api}/`);
  const ranges = [];
  for (let s = start; s < start + count; s += batch) ranges.push([s, Math.min(start + count, s + batch)]);
  let next = 0;
  const progress = setInterval(() => {
    const rate = summary.cases / ((Date.now() - t0) / 1000);
    log(`fuzz: ${summary.cases}/${count} cases, crashes ${summary.crashes}, hangs ${summary.hangs}, failures ${summary.failures} (${rate.toFixed(0)} cases/s)`);
  }, 10000);
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      while (next < ranges.length) {
        const [s, e] = ranges[next++];
        await runRange(summary, seed, s, e);
      }
    }),
  );
  clearInterval(progress);
  summary.seconds = Math.round((Date.now() - t0) / 100) / 10;
  const bad = summary.crashes + summary.hangs + summary.failures;
  const classes = Object.entries(summary.errorsByClass).map(([k, v]) => `${k} ${v}`).join(', ');
  log(
    `fuzz: seed ${seed}: ${summary.cases} cases in ${summary.seconds} s: ${summary.results} results, ${summary.errors} errors (${classes}), ` +
      `failures=${summary.failures}, crashes=${summary.crashes}, hangs=${summary.hangs}`,
  );
  for (const s of summary.slowest) log(`fuzz:   slowest: ${s.id} ${s.ms} ms (${s.kind}: ${(s.trace ?? []).join('; ')})`);
  for (const [kind, k] of Object.entries(summary.byKind)) log(`fuzz:   ${kind}: ${k.cases} cases, ${k.results} results, ${k.errors} errors, ${k.failures} failures`);
  if (bad) {
    fs.mkdirSync(opts.out, { recursive: true });
    const file = path.join(opts.out, `findings-${seed}.json`);
    fs.writeFileSync(file, JSON.stringify(summary.findings, null, 2));
    for (const f of summary.findings.slice(0, 20)) log(`fuzz: finding ${f.id}: ${f.type}${f.how ? ` (${f.how})` : ''} ${f.message ?? ''}`);
    log(`fuzz: ${summary.findings.length} findings written to ${file}`);
  }
  if (opts.json) process.stdout.write(JSON.stringify(summary) + '\n');
  process.exitCode = bad ? 1 : 0;
}

async function replay() {
  let bad = 0;
  for (const spec of opts.replay) {
    const m = /^(-?\d+):(\d+)(?:-(\d+))?$/.exec(spec);
    if (!m) {
      process.stderr.write(`fuzz: --replay takes SEED:INDEX or SEED:FROM-TO, got ${spec}\n`);
      process.exit(2);
    }
    const seed = Number(m[1]);
    const from = Number(m[2]);
    const to = m[3] !== undefined ? Number(m[3]) : from;
    for (let i = from; i <= to; i++) {
      const r = await runChild(seed, i, i + 1, { verbose: true });
      const o = r.outcomes.get(i);
      const trace = (o && o.trace) || r.notes.get(i) || [];
      process.stdout.write(`case ${seed}:${i}\n  ${trace.join('\n  ')}\n`);
      if (r.died) {
        bad++;
        process.stdout.write(`  => ${r.died.hang ? 'HANG' : 'CRASH'} (${r.died.how})\n${r.died.stderr.replace(/^/gm, '     ')}\n`);
      } else if (o.outcome === 'failure') {
        bad++;
        process.stdout.write(`  => FAILURE ${o.failure}: ${o.message ?? ''}\n`);
      } else {
        process.stdout.write(`  => ${o.outcome === 'result' ? 'result' : `${o.cls}: ${o.message}`}\n`);
      }
    }
  }
  process.exitCode = bad ? 1 : 0;
}

(opts.replay ? replay() : fuzz()).catch((err) => {
  process.stderr.write(`fuzz: ${(err && err.stack) || err}\n`);
  process.exit(70);
});
