// What the collective check (InitOptions.checkCollectives, a 16-int64 header all-gathered
// before each collective) costs per allReduceTensor: two ranks on loopback, a small and a
// large float64 tensor, with the check on and off. Median of --iters calls after a warm-up.
//
//   npm run bench:dist-check [-- --iters 200 --large 1048576]
//
// Prints one table (and, with --json, one JSON line). Uses the built package (dist/).
'use strict';
const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { values: flags } = parseArgs({
  options: {
    iters: { type: 'string', default: '200' },
    large: { type: 'string', default: String(1 << 20) },
    json: { type: 'boolean', default: false },
    rank: { type: 'string' },
    store: { type: 'string' },
    check: { type: 'string' },
  },
});
const ITERS = Number(flags.iters);
const SIZES = [8, Number(flags.large)];

async function rankMain() {
  const smoothce = require(path.join(__dirname, '..', 'dist', 'index.js'));
  const g = await smoothce.distributed.init({
    rank: Number(flags.rank),
    worldSize: 2,
    store: flags.store,
    timeoutMs: 60_000,
    checkCollectives: flags.check === '1',
  });
  const out = {};
  for (const n of SIZES) {
    const t = smoothce.tensor(new Float64Array(n).fill(1), [n]);
    for (let i = 0; i < 10; i++) await g.allReduceTensor(t);
    const times = [];
    for (let i = 0; i < ITERS; i++) {
      await g.barrier();
      const t0 = process.hrtime.bigint();
      await g.allReduceTensor(t);
      times.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    times.sort((a, b) => a - b);
    out[n] = { median: times[times.length >> 1], p90: times[Math.floor(times.length * 0.9)] };
  }
  g.destroy();
  process.stdout.write(JSON.stringify(out) + '\n');
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function runRank(rank, store, check) {
  return new Promise((resolve, reject) => {
    const args = [__filename, '--rank', String(rank), '--store', store, '--check', check ? '1' : '0', '--iters', String(ITERS), '--large', String(SIZES[1])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout.trim().split('\n').pop())) : reject(new Error(`rank ${rank} exited ${code}`))));
  });
}

async function main() {
  const rows = {};
  for (const check of [false, true]) {
    const store = `tcp://127.0.0.1:${await freePort()}`;
    const [r0] = await Promise.all([runRank(0, store, check), runRank(1, store, check)]);
    rows[check ? 'checked' : 'unchecked'] = r0;
  }
  const fmt = (us) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`);
  console.log(`allReduceTensor, 2 ranks on loopback, float64, median (p90) of ${ITERS} calls, rank 0's clock`);
  console.log('| elements | checkCollectives: false | checkCollectives: true (default) | cost of the check |');
  console.log('|---|---|---|---|');
  for (const n of SIZES) {
    const u = rows.unchecked[n];
    const c = rows.checked[n];
    console.log(`| ${n} | ${fmt(u.median)} (${fmt(u.p90)}) | ${fmt(c.median)} (${fmt(c.p90)}) | ${fmt(c.median - u.median)} |`);
  }
  if (flags.json) console.log(JSON.stringify({ iters: ITERS, ...rows }));
}

(flags.rank !== undefined ? rankMain() : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
