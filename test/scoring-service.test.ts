/**
 * examples/scoring-service: loopback by default, body cap (413), bad input answered 400 with a
 * JSON error and no stack trace, bounded queues (503), /metrics in Prometheus text format whose
 * gauges equal the Monitor's snapshots, and a short bounded run of the load test.
 */
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createService } = require('../examples/scoring-service/server.js');

interface Service {
  server: http.Server;
  monitor: import('../lib/index').calibration.Monitor;
  listen(port?: number, host?: string): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, method: string, urlPath: string, body?: string | Buffer, headers: Record<string, string | number> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A 4xx/5xx answer: JSON { error: { code, message } }, no stack trace or file path in it. */
function expectJsonError(r: Reply, status: number, code?: string): void {
  expect(r.status, r.body).toBe(status);
  expect(r.headers['content-type']).toMatch(/application\/json/);
  const body = JSON.parse(r.body);
  expect(typeof body.error.message).toBe('string');
  if (code) expect(body.error.code).toBe(code);
  expect(r.body).not.toMatch(/\n\s*at |\.js:\d+|\.ts:\d+|node:internal|\/work\//);
}

/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4): every line is a
 * # HELP, a # TYPE, or a sample `name{label="value",...} value`; names and labels follow the
 * grammar; TYPE comes before a metric's samples. Returns the samples.
 */
function parseExposition(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  const typed = new Map<string, string>();
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
  const sampleRe = new RegExp(`^(${NAME})(?:\\{((?:${LABEL}="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? (\\S+)(?: -?\\d+)?$`);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) continue;
    if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      expect(typed.has(m[1]), `second TYPE for ${m[1]}`).toBe(false);
      typed.set(m[1], m[2]);
      continue;
    }
    m = sampleRe.exec(line);
    if (!m) throw new Error(`not exposition format: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    const raw = m[3];
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`bad sample value in ${JSON.stringify(line)}`);
    const base = m[1].replace(/_(bucket|sum|count|total|created)$/, '');
    expect(typed.has(m[1]) || typed.has(base), `TYPE before samples of ${m[1]}`).toBe(true);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

describe('scoring service (examples/scoring-service)', () => {
  let service: Service;
  let port: number;
  const K = 10;

  beforeAll(async () => {
    service = createService({ classes: K, maxBodyBytes: 4096, keepRows: true });
    // No host given: the default.
    const addr = await service.listen(0);
    port = addr.port;
  });
  afterAll(async () => {
    await service.close();
  });

  it('listens on 127.0.0.1 unless told otherwise', () => {
    const addr = service.server.address() as { address: string };
    expect(addr.address).toBe('127.0.0.1');
  });

  it('scores a prediction and joins its label', async () => {
    const logits = [2, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const r = await request(port, 'POST', '/predict', JSON.stringify({ id: 'a', logits }));
    expect(r.status, r.body).toBe(200);
    const body = JSON.parse(r.body);
    expect(body.prediction).toBe(0);
    const p0 = Math.exp(2) / (Math.exp(2) + Math.exp(1) + 8);
    expect(body.confidence).toBeCloseTo(p0, 12);
    expect(body.loss).toBeCloseTo(-Math.log(p0), 12);
    const l = await request(port, 'POST', '/label', JSON.stringify({ id: 'a', label: 0 }));
    expect(JSON.parse(l.body)).toEqual({ received: 1, matched: 1 });
    const again = await request(port, 'POST', '/label', JSON.stringify({ labels: [{ id: 'a', label: 0 }, { id: 'zz', label: 1 }] }));
    expect(JSON.parse(again.body)).toEqual({ received: 2, matched: 0 });
  });

  it('answers bodies over the cap with 413, with or without a content-length', async () => {
    const big = JSON.stringify({ id: 'x', logits: Array.from({ length: 2000 }, () => 1.2345) });
    expectJsonError(await request(port, 'POST', '/predict', big), 413, 'body_too_large');
    // Chunked (no content-length): the cap is enforced while reading.
    const r = await new Promise<Reply>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/label', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write('x'.repeat(1000));
      req.end();
    });
    expectJsonError(r, 413, 'body_too_large');
  });

  it('answers bad input with 400 and a JSON error, never a stack trace, and keeps serving', async () => {
    const cases: [string, string, string | undefined][] = [
      ['/predict', '{"id": "b", "logits": [1, 2', 'invalid_json'],
      ['/predict', '[1, 2, 3]', 'invalid_body'],
      ['/predict', JSON.stringify({ id: 'b', logits: [1, 2, 3] }), 'invalid_logits'],
      ['/predict', JSON.stringify({ id: 'b', logits: Array(K).fill('1') }), 'invalid_logits'],
      ['/predict', JSON.stringify({ id: 'b', logits: [...Array(K - 1).fill(0), 1e309] }), 'invalid_logits'],
      ['/predict', JSON.stringify({ id: 7, logits: Array(K).fill(0) }), 'invalid_id'],
      ['/predict', JSON.stringify({ id: 'x'.repeat(129), logits: Array(K).fill(0) }), 'invalid_id'],
      ['/predict', '{"__proto__": {"polluted": 1}, "id": "c", "logits": 5}', 'invalid_logits'],
      ['/label', JSON.stringify({ id: 'a', label: K }), 'invalid_label'],
      ['/label', JSON.stringify({ id: 'a', label: 1.5 }), 'invalid_label'],
      ['/label', JSON.stringify({ labels: [] }), 'invalid_labels'],
      ['/label', JSON.stringify({ labels: [{ id: 'a', label: 0 }, 5] }), 'invalid_labels'],
      ['/label', 'null', 'invalid_body'],
    ];
    for (const [p, body, code] of cases) expectJsonError(await request(port, 'POST', p, body), 400, code);
    await request(port, 'POST', '/predict', JSON.stringify({ id: 'dup', logits: Array(K).fill(0) }));
    expectJsonError(await request(port, 'POST', '/predict', JSON.stringify({ id: 'dup', logits: Array(K).fill(0) })), 400, 'duplicate_id');
    expectJsonError(await request(port, 'GET', '/snapshot?window=nope'), 400, 'invalid_window');
    expectJsonError(await request(port, 'GET', '/nope'), 404, 'not_found');
    expectJsonError(await request(port, 'DELETE', '/predict'), 405, 'method_not_allowed');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await request(port, 'GET', '/healthz')).status).toBe(200);
  });

  it('answers hostile bodies (deep nesting, binary, huge numbers, odd keys) with 400, and keeps serving', async () => {
    let seed = 99;
    const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const bodies: (string | Buffer)[] = [
      '['.repeat(30_000) + ']'.repeat(30_000),
      '{"id":"d","logits":' + '['.repeat(20_000) + ']'.repeat(20_000) + '}',
      Buffer.from(Array.from({ length: 3000 }, () => Math.floor(rnd() * 256))),
      Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
      JSON.stringify({ id: 'e', logits: Array(K).fill(1e308).map((v, i) => (i ? v : -v)) }).replace(/1e\+308/g, '1e999'),
      JSON.stringify({ id: 'f\u0000\ud800', logits: Array(K).fill(0), constructor: { prototype: { x: 1 } } }),
      JSON.stringify({ id: 'g', logits: { length: K } }),
      JSON.stringify({ id: 'h', logits: Array(K).fill(null) }),
      '',
      'true',
      '"just a string"',
    ];
    for (const body of bodies) {
      for (const p of ['/predict', '/label']) {
        const r = await request(port, 'POST', p, body);
        expect([400, 413], `${p} ${String(body).slice(0, 40)}: ${r.body}`).toContain(r.status);
        expectJsonError(r, r.status);
      }
    }
    expect((await request(port, 'GET', '/healthz')).status).toBe(200);
  });

  /** Sends `head` at once, then `trickle` one byte a second; resolves when the server closes the connection. */
  function slowClient(head: string, trickle: string): Promise<{ ms: number; reply: string }> {
    return new Promise((resolve, reject) => {
      const t0 = Date.now();
      const socket = net.connect(port, '127.0.0.1');
      let reply = '';
      let i = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.on('connect', () => {
        socket.write(head);
        timer = setInterval(() => {
          if (i < trickle.length && !socket.destroyed) socket.write(trickle[i++]);
        }, 1000);
      });
      socket.on('data', (d) => (reply += d));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ ms: Date.now() - t0, reply });
      });
      setTimeout(() => {
        socket.destroy();
        reject(new Error(`not cut after 25 s (sent ${i} bytes slowly)`));
      }, 25_000).unref();
    });
  }

  it('cuts a client that sends its headers or its body one byte a second, at about the 5 s header and 10 s request timeouts', async () => {
    const [headers, body] = await Promise.all([
      slowClient('GET /healthz HTTP/1.1\r\n', 'Host: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(40)),
      slowClient('POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n', ' '.repeat(200)),
    ]);
    // Behaviour bounds (Node checks its connections every connectionsCheckingInterval, 1 s here;
    // with its default of 30 s both ran to about 30 s), with slack for a loaded machine.
    expect(headers.ms, headers.reply).toBeGreaterThanOrEqual(4_500);
    expect(headers.ms).toBeLessThan(9_000);
    expect(headers.reply).toMatch(/^HTTP\/1\.1 408/);
    expect(body.ms, body.reply).toBeGreaterThanOrEqual(9_500);
    expect(body.ms).toBeLessThan(15_000);
    expect((await request(port, 'GET', '/healthz')).status).toBe(200);
  }, 40_000);

  it('answers a request target that is not a valid URL (GET http://a:99999/) with 400, not 500', async () => {
    const reply = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end('GET http://a:99999/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('close', () => resolve(text));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4));
    expect(body.error.code).toBe('invalid_url');
    expect((await request(port, 'GET', '/healthz')).status).toBe(200);
  });

  it('bounds its queues: a full Batcher queue answers 503 with Retry-After, and the service recovers', async () => {
    const small: Service = createService({ classes: K, batcherMaxQueue: 1 });
    const p = (await small.listen(0)).port;
    try {
      const replies = await Promise.all(
        Array.from({ length: 40 }, (_, i) => request(p, 'POST', '/predict', JSON.stringify({ id: `q${i}`, logits: Array(K).fill(i % 3) }))),
      );
      const codes = replies.map((r) => r.status);
      expect(codes.every((c) => c === 200 || c === 503)).toBe(true);
      expect(codes).toContain(200);
      expect(codes).toContain(503);
      const busy = replies.find((r) => r.status === 503)!;
      expectJsonError(busy, 503, 'overloaded');
      expect(busy.headers['retry-after']).toBe('1');
      expect((await request(p, 'POST', '/predict', JSON.stringify({ id: 'after', logits: Array(K).fill(0) }))).status).toBe(200);
    } finally {
      await small.close();
    }
    const tiny: Service = createService({ classes: K, maxPending: 5 });
    const q = (await tiny.listen(0)).port;
    try {
      for (let i = 0; i < 12; i++) await request(q, 'POST', '/predict', JSON.stringify({ id: `u${i}`, logits: Array(K).fill(0) }));
      expect(tiny.monitor.counts).toMatchObject({ observed: 12, pending: 5, dropped: 7 });
    } finally {
      await tiny.close();
    }
  });

  it('/metrics parses as Prometheus text format, and its gauges equal the Monitor snapshots', async () => {
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    for (let i = 0; i < 300; i++) {
      const logits = Array.from({ length: K }, () => 3 * rnd() - 1.5);
      expect((await request(port, 'POST', '/predict', JSON.stringify({ id: `m${i}`, logits }))).status).toBe(200);
      if (i % 10 !== 0) await request(port, 'POST', '/label', JSON.stringify({ id: `m${i}`, label: Math.floor(rnd() * K) }));
    }
    const r = await request(port, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = parseExposition(r.body);
    const value = (name: string, labels: Record<string, string>) => {
      const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
      return found[0].value;
    };
    let checked = 0;
    for (const w of service.monitor.windows) {
      const snap = service.monitor.snapshot(w.name)!;
      expect(snap.n).toBeGreaterThan(200);
      const labels = { model: 'default', window: w.name };
      expect(value('smoothce_calibration_ece', labels)).toBe(snap.ece);
      expect(value('smoothce_calibration_mce', labels)).toBe(snap.mce);
      expect(value('smoothce_calibration_nll', labels)).toBe(snap.nll);
      expect(value('smoothce_calibration_brier', labels)).toBe(snap.brier);
      expect(value('smoothce_calibration_accuracy', labels)).toBe(snap.accuracy);
      expect(value('smoothce_calibration_samples', labels)).toBe(snap.n);
      checked++;
    }
    expect(checked).toBe(4);
    expect(value('smoothce_calibration_temperature', { window: 'last10k' })).toBe(service.monitor.fitTemperature('last10k')!.temperature);
    const c = service.monitor.counts;
    expect(value('smoothce_calibration_predictions_observed_total', { model: 'default' })).toBe(c.observed);
    expect(value('smoothce_calibration_predictions_labelled_total', { model: 'default' })).toBe(c.labelled);
    expect(value('smoothce_calibration_predictions_expired_total', { model: 'default' })).toBe(c.expired);
    expect(value('smoothce_calibration_predictions_dropped_total', { model: 'default' })).toBe(c.dropped);
    expect(value('smoothce_calibration_predictions_pending', { model: 'default' })).toBe(c.pending);
    // Process metrics are there for dashboards too.
    expect(samples.some((s) => s.name === 'process_resident_memory_bytes')).toBe(true);
  });

  it('runs a short bounded load test and reports its figures (npm run load-test does 100,000)', async () => {
    const script = path.join(__dirname, '..', 'examples', 'scoring-service', 'load-test.js');
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [script, '--requests', '3000', '--warmup', '500', '--concurrency', '8', '--max-seconds', '60', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(out.code, out.stderr + out.stdout).toBe(0);
    const r = JSON.parse(out.stdout.trim().split('\n').pop()!);
    expect(r.failed).toBe(0);
    expect(r.requests).toBe(3000);
    expect(r.requestsPerSecond).toBeGreaterThan(0);
    expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
    expect(r.longestStallMs).toBeGreaterThanOrEqual(0);
    expect(r.rssEndMB).toBeGreaterThan(0);
    expect(r.rssGrowthMB).toBeLessThan(64);
    expect(r.monitor.observed).toBeGreaterThan(1000);
    expect(r.metricsStatus).toBe(200);
  }, 120_000);
});
