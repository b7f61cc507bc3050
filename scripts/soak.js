#!/usr/bin/env node
'use strict';
// Soak test: mixed sync/async calls from the main thread and several worker_threads for a
// while, sampling memory, then a verdict on growth after warm-up.
//
//   npm run soak -- --minutes 10 --workers 3
//   node --expose-gc scripts/soak.js --seconds 20 --json     (what test/soak.test.ts runs)
//
// Each thread loops over: crossEntropy (sync), bursts of concurrent crossEntropyAsync,
// gradients, 'none' reductions, weights, probability targets, bad calls that must throw,
// device handles (toDevice/dispose) and calibration.ece when the package has them. Async
// results are checked against the sync result of the same call (nothing lost, nothing
// wrong). Workers are terminated and replaced every --recycle seconds (some with async
// calls still in flight), so the addon is loaded and unloaded over and over.
//
// Samples (every --sample seconds, after a gc() on the main thread): RSS, heap, external and
// arrayBuffers from process.memoryUsage(), VmRSS/VmHWM/RssAnon from /proc/self/status.
//
// Verdict: the samples after warm-up (the first --warmup fraction of the run, default 0.3)
// are fitted by least squares; growth = slope x post-warm-up duration. PASS when RSS growth
// is below max(16 MiB, 3% of the median post-warm-up RSS), i.e. memory is flat: a leak of
// even a few hundred bytes per call shows up over tens of thousands of calls.
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

const root = path.resolve(__dirname, '..');

// ---- the call mix (main thread and workers) --------------------------------------------------
function makeMix(api) {
  let seed = 12345 + (isMainThread ? 0 : workerData.id * 7919);
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const problem = () => {
    const n = 1 + Math.floor(rand() * 256);
    const c = 2 + Math.floor(rand() * 100);
    const f64 = rand() < 0.4;
    const x = new (f64 ? Float64Array : Float32Array)(n * c);
    for (let i = 0; i < x.length; i++) x[i] = (rand() - 0.5) * 8;
    const prob = rand() < 0.2;
    let target;
    if (prob) {
      const p = new (f64 ? Float64Array : Float32Array)(n * c);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < c; j++) s += p[i * c + j] = rand();
        for (let j = 0; j < c; j++) p[i * c + j] /= s;
      }
      target = api.tensor(p, [n, c]);
    } else {
      const t = rand() < 0.5 ? new BigInt64Array(n) : new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = rand() < 0.05 ? -100 : Math.floor(rand() * c);
        t[i] = t instanceof BigInt64Array ? BigInt(v) : v;
      }
      target = api.tensor(t, [n]);
    }
    const options = { labelSmoothing: Math.round(rand() * 10) / 10 || 0.1, reduction: ['mean', 'sum', 'none'][Math.floor(rand() * 3)], grad: rand() < 0.5 };
    if (rand() < 0.3) options.weight = Array.from({ length: c }, () => rand() + 0.1);
    const desc = `${n}x${c} ${f64 ? 'float64' : 'float32'} ${prob ? 'prob' : target.dtype} ${JSON.stringify({ ...options, weight: options.weight ? 'w' : undefined })}`;
    return { input: api.tensor(x, [n, c]), target, options, desc };
  };
  const lossOf = (r) => (typeof r.loss === 'number' ? [r.loss] : Array.from(r.loss.data));
  const close = (a, b) => a.length === b.length && a.every((v, i) => (Number.isNaN(v) && Number.isNaN(b[i])) || Math.abs(v - b[i]) <= 1e-5 * Math.max(1, Math.abs(v)));
  const counts = { sync: 0, async: 0, errors: 0, handles: 0, other: 0, wrong: 0 };

  // What the current step is doing, for the watchdog (a step that never ends is a lost call).
  const now = { what: '', since: 0 };
  // SOAK_ONLY=sync,async,bad,device,other restricts the mix (to bisect a problem).
  const only = process.env.SOAK_ONLY ? process.env.SOAK_ONLY.split(',') : null;
  const kindOf = (w) => (w < 0.35 ? 'sync' : w < 0.75 ? 'async' : w < 0.87 ? 'bad' : w < 0.95 && api.toDevice ? 'device' : 'other');
  async function step() {
    now.since = Date.now();
    try {
      await stepInner();
    } finally {
      now.since = 0;
    }
  }
  async function stepInner() {
    let what = rand();
    while (only && !only.includes(kindOf(what))) what = rand();
    now.what = kindOf(what);
    if (what < 0.35) {
      const p = problem();
      api.crossEntropy(p.input, p.target, p.options);
      counts.sync++;
    } else if (what < 0.75) {
      // A burst of concurrent async calls, each checked against the sync result.
      const burst = Array.from({ length: 1 + Math.floor(rand() * 6) }, problem);
      const pending = burst.map((p) => api.crossEntropyAsync(p.input, p.target, p.options));
      const settled = burst.map(() => false);
      pending.forEach((q, i) => q.then(() => (settled[i] = true), () => (settled[i] = true)));
      now.detail = () => burst.map((p, i) => `${settled[i] ? 'settled' : 'PENDING'} ${p.desc}`).join('; ');
      const results = await Promise.all(pending);
      now.detail = null;
      results.forEach((r, i) => {
        const p = burst[i];
        if (!close(lossOf(r), lossOf(api.crossEntropy(p.input, p.target, p.options)))) counts.wrong++;
      });
      counts.async += burst.length;
    } else if (what < 0.87) {
      // Bad calls: each must throw (sync) or reject (async), never anything else.
      const p = problem();
      const bad = [
        () => api.crossEntropy(p.input, p.target, { labelSmoothing: 2 }),
        () => api.crossEntropy(p.input, api.tensor(new BigInt64Array(p.input.shape[0]).fill(1000n), [p.input.shape[0]])),
        () => api.crossEntropy({ data: p.input.data, shape: [p.input.shape[0] + 1, p.input.shape[1]], dtype: p.input.dtype }, p.target),
        () => api.crossEntropyAsync(p.input, p.target, { reduction: 'avg' }),
        () => api.crossEntropy(p.input, p.target, { device: 'cuda:7' }),
      ][Math.floor(rand() * 5)];
      let threw = false;
      try {
        await bad();
      } catch {
        threw = true;
      }
      if (!threw) counts.wrong++;
      counts.errors++;
    } else if (what < 0.95 && api.toDevice) {
      const p = problem();
      const h = api.toDevice(p.input, 'cpu');
      const r = rand() < 0.5 ? api.crossEntropy(h, p.target, p.options) : await api.crossEntropyAsync(h, p.target, p.options);
      if (!close(lossOf(r), lossOf(api.crossEntropy(p.input, p.target, p.options)))) counts.wrong++;
      if (rand() < 0.8) h.dispose(); // the rest are left to the garbage collector
      counts.handles++;
    } else {
      const p = problem();
      if (api.calibration && api.calibration.ece && !(p.target.data instanceof Float32Array || p.target.data instanceof Float64Array)) {
        try {
          api.calibration.ece(p.input, p.target, { from: 'logits' });
        } catch {
          // options vary between versions of the calibration module; errors are fine here
        }
      }
      const head = Array.from(p.input.data.slice(0, 8), Number);
      api.tensor(head, [head.length], 'float64');
      counts.other++;
    }
  }
  return { step, counts, now };
}

// ---- worker ----------------------------------------------------------------------------------
if (!isMainThread) {
  const { load } = require(path.join(root, 'fuzz', 'load.js'));
  const { api } = load(workerData.api);
  const mix = makeMix(api);
  let stop = false;
  parentPort.on('message', (m) => {
    if (m === 'stop') stop = true;
  });
  setInterval(() => {
    if (mix.now.since && Date.now() - mix.now.since > 30000) parentPort.postMessage({ stuck: `${mix.now.what} for ${((Date.now() - mix.now.since) / 1000).toFixed(0)} s ${mix.now.detail ? mix.now.detail() : ''}` });
  }, 10000).unref();
  (async () => {
    let last = Date.now();
    while (!stop) {
      await mix.step();
      if (Date.now() - last > 500) {
        parentPort.postMessage({ counts: mix.counts });
        last = Date.now();
      }
    }
    parentPort.postMessage({ counts: mix.counts, done: true });
    parentPort.close(); // nothing else keeps this thread alive: it exits, unloading the addon
  })().catch((err) => parentPort.postMessage({ error: String((err && err.stack) || err) }));
  return;
}

// ---- main ------------------------------------------------------------------------------------
const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    workers: { type: 'string', default: '3' },
    sample: { type: 'string', default: '5' },
    recycle: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '0.3' },
    api: { type: 'string', default: 'lib' },
    json: { type: 'boolean', default: false },
  },
});
const seconds = opts.seconds ? Number(opts.seconds) : Number(opts.minutes ?? 2) * 60;
const workers = Number(opts.workers);
const sampleMs = Number(opts.sample) * 1000;
const recycleMs = Number(opts.recycle) * 1000;
const log = (s) => process.stderr.write(s + '\n');

function procStatus() {
  const out = {};
  try {
    for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
      const m = /^(VmRSS|VmHWM|RssAnon|RssFile|Threads):\s+(\d+)/.exec(line);
      if (m) out[m[1]] = Number(m[2]) * (m[1] === 'Threads' ? 1 : 1024);
    }
  } catch {
    // not Linux
  }
  return out;
}

function fit(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
};
const MiB = (b) => `${(b / 1048576).toFixed(1)} MiB`;

async function main() {
  const { load } = require(path.join(root, 'fuzz', 'load.js'));
  const { api } = load(opts.api);
  const mix = makeMix(api);
  const t0 = Date.now();
  const deadline = t0 + seconds * 1000;
  const totals = { sync: 0, async: 0, errors: 0, handles: 0, other: 0, wrong: 0 };
  const add = (c) => Object.keys(totals).forEach((k) => (totals[k] += c[k] ?? 0));
  let started = 0;
  let recycled = 0;
  const workerErrors = [];
  const stuck = [];
  const live = new Set();

  function startWorker() {
    const id = started++;
    const w = new Worker(__filename, { workerData: { id, api: opts.api } });
    const state = { w, counts: {}, id };
    w.on('message', (m) => {
      if (m.counts) state.counts = m.counts;
      if (m.error) workerErrors.push(m.error);
      if (m.stuck) {
        stuck.push(`worker ${id}: ${m.stuck}`);
        log(`soak: STUCK worker ${id}: ${m.stuck}`);
      }
    });
    w.on('error', (e) => workerErrors.push(String((e && e.stack) || e)));
    w.on('exit', (code) => {
      add(state.counts);
      state.counts = {};
      live.delete(state);
      if (code !== 0 && code !== 1) workerErrors.push(`worker ${id} exited with code ${code}`);
    });
    live.add(state);
    return state;
  }
  for (let i = 0; i < workers; i++) startWorker();

  // Recycle: terminate the oldest worker (async calls may be in flight) and start another.
  const recycler = setInterval(() => {
    const oldest = [...live][0];
    if (!oldest) return;
    recycled++;
    oldest.w.terminate();
    startWorker();
  }, recycleMs);

  const mainWatch = setInterval(() => {
    if (Date.now() >= deadline) return;
    if (mix.now.since && Date.now() - mix.now.since > 30000) {
      stuck.push(`main: ${mix.now.what}`);
      log(`soak: STUCK main thread: ${mix.now.what} for ${((Date.now() - mix.now.since) / 1000).toFixed(0)} s ${mix.now.detail ? mix.now.detail() : ''}`);
    }
  }, 10000);
  mainWatch.unref();
  const samples = [];
  const sample = () => {
    if (global.gc) global.gc();
    const m = process.memoryUsage();
    const s = { t: (Date.now() - t0) / 1000, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, ...procStatus() };
    let calls = totals.sync + totals.async + totals.errors + totals.handles + totals.other;
    for (const st of live) calls += Object.values(st.counts).reduce((a, b) => a + b, 0) - (st.counts.wrong ?? 0);
    calls += mix.counts.sync + mix.counts.async + mix.counts.errors + mix.counts.handles + mix.counts.other;
    s.calls = calls;
    samples.push(s);
    if (!opts.json || process.stderr.isTTY) {
      log(`soak: ${s.t.toFixed(0)} s, ${calls} calls, rss ${MiB(s.rss)}, heap ${MiB(s.heapUsed)}, external ${MiB(s.external)}, arrayBuffers ${MiB(s.arrayBuffers)}, threads ${s.Threads ?? '?'}`);
    }
  };
  sample();
  let nextSample = Date.now() + sampleMs;
  while (Date.now() < deadline) {
    await mix.step();
    if (Date.now() >= nextSample) {
      sample();
      nextSample += sampleMs;
    }
  }
  clearInterval(recycler);
  for (const st of [...live]) st.w.postMessage('stop');
  // A worker whose call never settles never gets to 'stop': give up on it after 60 s.
  await Promise.all(
    [...live].map(
      (st) =>
        new Promise((resolve) => {
          const t = setTimeout(() => {
            stuck.push(`worker ${st.id}: did not stop (a call never settled)`);
            st.w.terminate();
          }, 60000);
          st.w.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        }),
    ),
  );
  add(mix.counts);
  sample();
  samples[samples.length - 1].final = true; // after the workers stopped: not part of the fit

  const warm = samples.filter((s) => s.t >= seconds * Number(opts.warmup) && !s.final);
  const window = warm.length > 1 ? warm[warm.length - 1].t - warm[0].t : 0;
  const growth = (key) => (warm.length > 2 ? fit(warm.map((s) => s.t), warm.map((s) => s[key])) * window : 0);
  const rssMedian = median(warm.map((s) => s.rss));
  const limit = Math.max(16 * 1048576, 0.03 * rssMedian);
  const verdict = {
    criterion: `least-squares RSS growth over the post-warm-up window (${window.toFixed(0)} s, ${warm.length} samples) below max(16 MiB, 3% of median RSS) = ${MiB(limit)}`,
    rssGrowth: growth('rss'),
    externalGrowth: growth('external'),
    arrayBuffersGrowth: growth('arrayBuffers'),
    heapGrowth: growth('heapUsed'),
    rssMedian,
    limit,
    pass: warm.length > 2 && growth('rss') < limit && totals.wrong === 0 && workerErrors.length === 0 && stuck.length === 0,
  };
  const calls = totals.sync + totals.async + totals.errors + totals.handles + totals.other;
  const report = { seconds, workers, workersStarted: started, workersRecycled: recycled, calls, totals, workerErrors, stuck, samples, verdict };
  log(
    `soak: ${calls} calls in ${seconds} s (${totals.sync} sync, ${totals.async} async, ${totals.errors} bad calls, ${totals.handles} device handles), ` +
      `${started} workers started, ${recycled} recycled, wrong results ${totals.wrong}, worker errors ${workerErrors.length}`,
  );
  log(`soak: RSS ${MiB(samples[0].rss)} at start, median ${MiB(rssMedian)} after warm-up, growth ${MiB(verdict.rssGrowth)} (external ${MiB(verdict.externalGrowth)}, arrayBuffers ${MiB(verdict.arrayBuffersGrowth)}, heap ${MiB(verdict.heapGrowth)})`);
  log(`soak: ${verdict.pass ? 'PASS' : 'FAIL'}: ${verdict.criterion}`);
  for (const e of workerErrors.slice(0, 5)) log(`soak: worker error: ${e}`);
  for (const e of stuck.slice(0, 5)) log(`soak: stuck: ${e}`);
  if (opts.json) process.stdout.write(JSON.stringify(report) + '\n');
  process.exitCode = verdict.pass ? 0 : 1;
}

main().catch((err) => {
  log(`soak: ${(err && err.stack) || err}`);
  process.exit(70);
});
