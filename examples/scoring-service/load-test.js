#!/usr/bin/env node
// A bounded load test of the scoring service on 127.0.0.1 (npm run load-test).
//
//   node examples/scoring-service/load-test.js [--requests 100000] [--concurrency 16]
//        [--warmup 5000] [--max-seconds 300] [--classes 10] [--json]
//
// Forks the service (examples/scoring-service/server.js) on a free loopback port, then
// `concurrency` clients each loop: POST /predict one row of logits, then POST /label for it
// (9 in 10 of them; the rest stay unlabelled and expire or are dropped by the Monitor's cap).
// Every HTTP request counts towards --requests. It stops at --requests or --max-seconds,
// whichever comes first, and reports requests/s, p50/p99 latency, the service's longest
// event-loop stall (perf_hooks.monitorEventLoopDelay, after warm-up), and the service's RSS
// at start, after warm-up and at the end (each after a full GC). Exit code 1 when the RSS
// grew by more than 64 MB between warm-up and the end, or any request failed.
'use strict';
const http = require('node:http');
const path = require('node:path');
const { fork } = require('node:child_process');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    console.error(`--${name} needs a non-negative number`);
    process.exit(2);
  }
  return v;
}

const REQUESTS = arg('requests', 100_000);
const CONCURRENCY = Math.max(1, arg('concurrency', 16));
const WARMUP = Math.min(arg('warmup', 5_000), Math.floor(REQUESTS / 2));
const MAX_SECONDS = arg('max-seconds', 300);
const CLASSES = Math.max(2, arg('classes', 10));
const JSON_OUT = process.argv.includes('--json');
const RSS_LIMIT_MB = 64;

function mb(bytes) {
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function startServer() {
  const child = fork(path.join(__dirname, 'server.js'), [], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', CLASSES: String(CLASSES) },
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiters = new Map();
  child.on('message', (m) => {
    const w = waiters.get(m.type);
    if (w) {
      waiters.delete(m.type);
      w(m);
    }
  });
  const next = (type) => new Promise((resolve) => waiters.set(type, resolve));
  const ask = async (msg) => {
    const reply = next(msg.type);
    child.send(msg);
    return reply;
  };
  return { child, next, ask };
}

async function main() {
  const srv = startServer();
  const exited = new Promise((resolve) => srv.child.once('exit', (code) => resolve(code)));
  const listening = await Promise.race([srv.next('listening'), exited.then((code) => ({ exited: code }))]);
  if (listening.exited !== undefined) throw new Error(`the service exited (${listening.exited}) before listening`);
  const port = listening.port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const stats = async () => {
    await srv.ask({ type: 'gc' });
    return srv.ask({ type: 'stats' });
  };
  const start = await stats();

  function request(method, urlPath, body) {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = http.request(
        { host: '127.0.0.1', port, method, path: urlPath, agent, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(data);
    });
  }

  let sent = 0;
  let failed = 0;
  let firstFailure;
  let latencies = [];
  let seq = 0;
  let rnd = 12345;
  const random = () => ((rnd = (Math.imul(rnd, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const deadline = Date.now() + MAX_SECONDS * 1000;
  let timedOut = false;

  async function timed(method, urlPath, body) {
    sent++;
    const t0 = performance.now();
    try {
      const r = await request(method, urlPath, body);
      if (r.status !== 200) {
        failed++;
        firstFailure ??= `${method} ${urlPath}: ${r.status} ${r.body.slice(0, 200)}`;
      }
    } catch (err) {
      failed++;
      firstFailure ??= `${method} ${urlPath}: ${err.message}`;
    }
    latencies.push(performance.now() - t0);
  }

  async function client(limit) {
    while (sent < limit) {
      if (Date.now() > deadline) {
        timedOut = true;
        return;
      }
      const id = `r${seq++}`;
      const top = Math.floor(random() * CLASSES);
      const logits = Array.from({ length: CLASSES }, (_, j) => Math.round((2 * random() - 1 + (j === top ? 2 : 0)) * 1e4) / 1e4);
      await timed('POST', '/predict', { id, logits });
      if (sent < limit && random() < 0.9) {
        const label = random() < 0.75 ? top : Math.floor(random() * CLASSES);
        await timed('POST', '/label', { id, label });
      }
    }
  }

  const run = async (limit) => Promise.all(Array.from({ length: CONCURRENCY }, () => client(limit)));
  await run(WARMUP);
  const warm = await stats();
  await srv.ask({ type: 'stats', reset: true }); // stalls are measured after warm-up
  latencies = [];
  const t0 = performance.now();
  const sentBefore = sent;
  await run(REQUESTS);
  const seconds = (performance.now() - t0) / 1000;
  const measured = sent - sentBefore;
  const end = await stats();
  const metrics = await request('GET', '/metrics');
  agent.destroy();
  srv.child.kill('SIGTERM');
  await exited;

  latencies.sort((a, b) => a - b);
  const growth = mb(end.rss - warm.rss);
  const result = {
    requests: sent,
    measuredRequests: measured,
    warmupRequests: sentBefore,
    concurrency: CONCURRENCY,
    classes: CLASSES,
    seconds: Math.round(seconds * 100) / 100,
    requestsPerSecond: Math.round(measured / seconds),
    p50Ms: Math.round(percentile(latencies, 50) * 100) / 100,
    p99Ms: Math.round(percentile(latencies, 99) * 100) / 100,
    longestStallMs: Math.round(end.maxStallMs * 10) / 10,
    rssStartMB: mb(start.rss),
    rssAfterWarmupMB: mb(warm.rss),
    rssEndMB: mb(end.rss),
    rssGrowthMB: growth,
    failed,
    firstFailure: firstFailure ?? null,
    timedOut,
    monitor: end.counts,
    metricsStatus: metrics.status,
  };
  if (JSON_OUT) {
    console.log(JSON.stringify(result));
  } else {
    console.log(`scoring-service load test on 127.0.0.1 (K = ${CLASSES}, ${CONCURRENCY} clients)`);
    console.log(`  requests        ${sent} (${sentBefore} warm-up, ${measured} measured${timedOut ? `; stopped at --max-seconds ${MAX_SECONDS}` : ''}), ${failed} failed`);
    console.log(`  throughput      ${result.requestsPerSecond} requests/s over ${result.seconds} s`);
    console.log(`  latency         p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`);
    console.log(`  longest stall   ${result.longestStallMs} ms (service event loop, after warm-up)`);
    console.log(`  service RSS     start ${result.rssStartMB} MB, after warm-up ${result.rssAfterWarmupMB} MB, end ${result.rssEndMB} MB (growth ${growth} MB; limit ${RSS_LIMIT_MB})`);
    console.log(`  monitor         ${JSON.stringify(end.counts)}`);
    if (firstFailure) console.log(`  first failure   ${firstFailure}`);
  }
  if (failed > 0 || growth > RSS_LIMIT_MB) process.exitCode = 1;
}

main().catch((err) => {
  console.error(`load-test: ${err.message}`);
  process.exit(1);
});
