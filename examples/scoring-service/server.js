#!/usr/bin/env node
// A scoring service that watches the calibration of the model it serves (docs/serving.md).
//
//   POST /predict  {"id": "req-1", "logits": [2.1, -0.3, ...]}      -> prediction, confidence, loss
//   POST /label    {"id": "req-1", "label": 3}  or  {"labels": [{"id": ..., "label": ...}, ...]}
//   GET  /metrics  Prometheus text (prom-client): calibration per window, counters, process metrics
//   GET  /snapshot?window=1m   the window's calibration report as JSON
//   GET  /healthz
//
// Each prediction is scored through a Batcher (requests within 1 ms share one native call):
// its loss is the cross-entropy against its own top class, -log(confidence), the model's
// surprise at its answer. The logits go to a calibration.Monitor, which joins the label when
// it arrives on /label and reports the windows 1m, 10m, 1h and last10k.
//
// Untrusted input (docs/security.md): it listens on 127.0.0.1 unless HOST says otherwise;
// request bodies are capped (413); malformed JSON or values are answered 400 with a JSON
// error, never a stack trace; every queue is bounded (503 with Retry-After when full):
// requests in flight, the Batcher's rows, and the Monitor's unlabelled predictions (cap +
// TTL, counted as dropped/expired in /metrics).
//
//   node examples/scoring-service/server.js                 # 127.0.0.1:8080, K = 10
//   HOST=0.0.0.0 PORT=9000 CLASSES=1000 node examples/scoring-service/server.js
'use strict';
const http = require('node:http');
const { URL } = require('node:url');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { Batcher, calibration, tensor } = require('smoothce');
const client = require('prom-client');

const DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  classes: 10,
  maxBodyBytes: 64 * 1024,
  maxInFlight: 1024,
  maxLabelsPerRequest: 1000,
  maxPending: 100_000,
  ttlMs: 10 * 60_000,
  batcherMaxQueue: 4096,
  maxIdLength: 128,
};

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

function sendError(res, err) {
  if (res.headersSent) return res.destroy();
  const status = err instanceof HttpError ? err.status : 500;
  const body = {
    error: {
      code: err instanceof HttpError ? err.code : 'internal',
      // Only our own messages go out; anything unexpected is logged here, not sent.
      message: err instanceof HttpError ? err.message : 'internal error',
    },
  };
  const headers = status === 503 ? { 'retry-after': '1' } : {};
  if (status === 413) headers.connection = 'close';
  send(res, status, body, headers);
}

/** Reads the body up to `limit` bytes; a longer one is a 413 (and the rest is not read). */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, 'body_too_large', `request body over ${limit} bytes`));
      return;
    }
    const chunks = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.pause();
        reject(new HttpError(413, 'body_too_large', `request body over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks, size));
      done = true;
    });
    req.on('error', (err) => {
      if (!done) reject(new HttpError(400, 'bad_request', `could not read the body: ${err.code ?? 'error'}`));
      done = true;
    });
    // The connection closed before the body ended (the client left, or requestTimeout cut it).
    req.on('close', () => {
      if (!done) reject(new HttpError(400, 'bad_request', 'the connection closed before the body ended'));
      done = true;
    });
  });
}

function parseJson(buf) {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid JSON');
  }
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkId(id, max, where) {
  // Printable ASCII only: ids are echoed back and may end up in logs.
  if (typeof id !== 'string' || id.length < 1 || id.length > max || !/^[\x21-\x7e]+$/.test(id)) {
    throw new HttpError(400, 'invalid_id', `${where} must be a string of 1 to ${max} printable ASCII characters`);
  }
  return id;
}

/** Creates the service (not yet listening). */
function createService(options = {}) {
  const o = { ...DEFAULTS, ...options };
  const K = o.classes;
  const register = new client.Registry();
  client.collectDefaultMetrics({ register });
  const monitor = new calibration.Monitor({
    from: 'logits',
    windows: [
      { name: '1m', seconds: 60, step: 5 },
      { name: '10m', seconds: 600, step: 30 },
      { name: '1h', seconds: 3600, step: 120 },
      { name: 'last10k', rows: 10_000, step: 1000, keepRows: o.keepRows === true },
    ],
    ttlMs: o.ttlMs,
    maxPending: o.maxPending,
    ...(o.clock ? { clock: o.clock } : {}),
  });
  monitor.registerMetrics({ register, model: o.model ?? 'default', client });
  if (o.eceAlert !== undefined) {
    monitor.onThreshold({ window: '10m', metric: 'ece', above: o.eceAlert, minSamples: 500 }, (e) => {
      console.warn(`calibration alert: ECE ${e.value.toFixed(4)} > ${e.threshold} over the last 10 min (${e.n} samples)`);
    });
  }
  const batcher = new Batcher({ maxBatchSize: 256, maxDelayMs: 1, maxQueue: o.batcherMaxQueue, reduction: 'none' });
  let inFlight = 0;

  async function predict(req) {
    const body = parseJson(await readBody(req, o.maxBodyBytes));
    if (!isObject(body)) throw new HttpError(400, 'invalid_body', 'the body must be a JSON object {"id", "logits"}');
    const id = checkId(body.id, o.maxIdLength, 'id');
    const logits = body.logits;
    if (!Array.isArray(logits) || logits.length !== K || !logits.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new HttpError(400, 'invalid_logits', `logits must be an array of ${K} finite numbers`);
    }
    const row = Float64Array.from(logits);
    let top = 0;
    for (let j = 1; j < K; j++) if (row[j] > row[top]) top = j;
    let loss;
    try {
      ({ loss } = await batcher.score(tensor(row, [1, K]), tensor(new Int32Array([top]), [1])));
    } catch (err) {
      if (err && err.code === 'ERR_SMOOTHCE_QUEUE_FULL') throw new HttpError(503, 'overloaded', 'the scoring queue is full; retry later');
      throw err;
    }
    const l = loss.data[0];
    try {
      monitor.observe(id, tensor(row, [K]));
    } catch (err) {
      if (err instanceof RangeError && /already waiting/.test(err.message)) {
        throw new HttpError(400, 'duplicate_id', 'a prediction with this id is already waiting for its label');
      }
      throw err;
    }
    return { id, prediction: top, confidence: Math.exp(-l), loss: l };
  }

  async function label(req) {
    const body = parseJson(await readBody(req, o.maxBodyBytes));
    if (!isObject(body)) throw new HttpError(400, 'invalid_body', 'the body must be a JSON object');
    const items = Array.isArray(body.labels) ? body.labels : [body];
    if (items.length < 1 || items.length > o.maxLabelsPerRequest) {
      throw new HttpError(400, 'invalid_labels', `labels must hold 1 to ${o.maxLabelsPerRequest} items`);
    }
    // Validate everything before applying anything.
    const parsed = items.map((item, i) => {
      const where = Array.isArray(body.labels) ? `labels[${i}]` : 'body';
      if (!isObject(item)) throw new HttpError(400, 'invalid_labels', `${where} must be an object {"id", "label"}`);
      const id = checkId(item.id, o.maxIdLength, `${where}.id`);
      if (!Number.isInteger(item.label) || item.label < 0 || item.label >= K) {
        throw new HttpError(400, 'invalid_label', `${where}.label must be an integer class index in [0, ${K - 1}]`);
      }
      return [id, item.label];
    });
    let matched = 0;
    for (const [id, y] of parsed) if (monitor.label(id, y)) matched++;
    return { received: parsed.length, matched };
  }

  async function handle(req, res) {
    let url;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      // An absolute-form request target that is not a valid URL (GET http://a:99999/).
      throw new HttpError(400, 'invalid_url', 'the request target is not a valid URL');
    }
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case 'POST /predict':
        return send(res, 200, await predict(req));
      case 'POST /label':
        return send(res, 200, await label(req));
      case 'GET /metrics': {
        const text = await register.metrics();
        return send(res, 200, text, { 'content-type': register.contentType });
      }
      case 'GET /snapshot': {
        const name = url.searchParams.get('window') ?? '1m';
        if (!monitor.windows.some((w) => w.name === name)) throw new HttpError(400, 'invalid_window', `window must be one of ${monitor.windows.map((w) => w.name).join(', ')}`);
        return send(res, 200, { window: name, bounds: monitor.windowBounds(name), report: monitor.snapshot(name), counts: monitor.counts });
      }
      case 'GET /healthz':
        return send(res, 200, { ok: true });
      default:
        if (['/predict', '/label', '/metrics', '/snapshot', '/healthz'].includes(url.pathname)) {
          throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
        }
        throw new HttpError(404, 'not_found', 'no such endpoint');
    }
  }

  // Node enforces headersTimeout and requestTimeout when it checks its connections, every
  // connectionsCheckingInterval (30 s by default): at 1 s they act at about 5 s and 10 s. Both
  // count from the request's first byte, so a client that sends one byte a second is cut too.
  const server = http.createServer({ connectionsCheckingInterval: 1_000, headersTimeout: 5_000, requestTimeout: 10_000 }, (req, res) => {
    if (inFlight >= o.maxInFlight) {
      sendError(res, new HttpError(503, 'overloaded', 'too many requests in flight; retry later'));
      req.resume();
      return;
    }
    inFlight++;
    res.on('close', () => inFlight--);
    handle(req, res).catch((err) => {
      if (!(err instanceof HttpError)) console.error('scoring-service: unexpected error:', err);
      sendError(res, err);
    });
  });
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  server.maxRequestsPerSocket = 0;

  return {
    server,
    monitor,
    batcher,
    register,
    get inFlight() {
      return inFlight;
    },
    listen(port = o.port, host = o.host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address());
        });
      });
    },
    async close() {
      await new Promise((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      await batcher.close();
    },
  };
}

module.exports = { createService, DEFAULTS };

if (require.main === module) {
  const env = process.env;
  const service = createService({
    classes: env.CLASSES ? Number(env.CLASSES) : DEFAULTS.classes,
    model: env.MODEL ?? 'default',
    eceAlert: env.ECE_ALERT ? Number(env.ECE_ALERT) : undefined,
  });
  // Event-loop stalls, for the load test (sent over IPC when forked by it).
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  service
    .listen(env.PORT === undefined ? DEFAULTS.port : Number(env.PORT), env.HOST ?? DEFAULTS.host)
    .then((addr) => {
      if (process.send) process.send({ type: 'listening', port: addr.port, rss: process.memoryUsage().rss });
      else console.log(`scoring service on http://${addr.address}:${addr.port} (K = ${service.monitor.classes ?? (env.CLASSES ?? DEFAULTS.classes)})`);
    })
    .catch((err) => {
      console.error(`scoring-service: cannot listen: ${err.message}`);
      process.exit(1);
    });
  process.on('message', (msg) => {
    if (msg && msg.type === 'stats') {
      process.send({ type: 'stats', rss: process.memoryUsage().rss, maxStallMs: delay.max / 1e6, counts: service.monitor.counts });
      if (msg.reset) delay.reset();
    } else if (msg && msg.type === 'gc' && global.gc) {
      global.gc();
      process.send({ type: 'gc' });
    }
  });
  const stop = () => service.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
