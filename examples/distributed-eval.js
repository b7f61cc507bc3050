#!/usr/bin/env node
// Three processes each score a third of a data set; rank 0 prints the global loss and
// calibration report, which equal a single-process run over all of it.
//
//   node examples/distributed-eval.js            # launches 3 ranks on 127.0.0.1 and checks the result
//   RANK=1 WORLD_SIZE=3 MASTER_ADDR=10.0.0.5 MASTER_PORT=29500 node examples/distributed-eval.js
//                                                # one rank of a multi-machine run (torchrun's variables)
'use strict';
const { spawn } = require('node:child_process');
const smoothce = require('..');

const N = 30000;
const C = 10;

// The "data set": deterministic logits of some model, and the true labels.
function rows(start, end) {
  const logits = new Float64Array((end - start) * C); // float64: equal to 1e-12 (float32 sums differ in the last bits)
  const labels = new BigInt64Array(end - start);
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let i = 0; i < N; i++) {
    const y = Math.floor(rnd() * C);
    for (let c = 0; c < C; c++) {
      const v = (rnd() - 0.5) * 3 + (c === y ? 2.5 : 0);
      if (i >= start && i < end) logits[(i - start) * C + c] = v;
    }
    if (i >= start && i < end) labels[i - start] = BigInt(y);
  }
  return { logits: smoothce.tensor(logits, [end - start, C]), labels: smoothce.tensor(labels, [end - start]) };
}

function score(start, end) {
  const { logits, labels } = rows(start, end);
  const loss = new smoothce.LossAccumulator({ labelSmoothing: 0.1 });
  loss.update(logits, labels);
  const cal = new smoothce.calibration.Accumulator({ from: 'logits', bins: 15 });
  cal.update(logits, labels);
  return { loss, cal };
}

async function rank() {
  const r = Number(process.env.RANK);
  const world = Number(process.env.WORLD_SIZE);
  const group = await smoothce.distributed.init({ timeoutMs: 30000 }); // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
  const start = Math.floor((N * r) / world);
  const end = Math.floor((N * (r + 1)) / world);
  const { loss, cal } = score(start, end);
  await group.allReduce(loss);
  await group.allReduce(cal);
  if (r === 0) {
    const rep = cal.report();
    console.log(JSON.stringify({ loss: loss.result(), n: rep.n, accuracy: rep.accuracy, nll: rep.nll, brier: rep.brier, ece: rep.ece }));
  }
  group.destroy();
}

async function launch() {
  const world = 3;
  const env = { ...process.env, WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(29500 + (process.pid % 1000)) };
  const outputs = await Promise.all(
    Array.from({ length: world }, (_, r) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [__filename], { env: { ...env, RANK: String(r) }, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`rank ${r} exited with ${code}`))));
      }),
    ),
  );
  const distributed = JSON.parse(outputs[0]);
  const { loss, cal } = score(0, N);
  const rep = cal.report();
  const single = { loss: loss.result(), n: rep.n, accuracy: rep.accuracy, nll: rep.nll, brier: rep.brier, ece: rep.ece };
  console.log(`           ${'loss'.padEnd(20)} ${'n'.padEnd(6)} ${'accuracy'.padEnd(10)} ${'nll'.padEnd(20)} ${'brier'.padEnd(20)} ece`);
  for (const [name, r] of [['3 ranks', distributed], ['1 process', single]]) {
    console.log(`${name.padEnd(10)} ${String(r.loss).padEnd(20)} ${String(r.n).padEnd(6)} ${r.accuracy.toFixed(6).padEnd(10)} ${String(r.nll).padEnd(20)} ${String(r.brier).padEnd(20)} ${r.ece}`);
  }
  const worst = Math.max(...Object.keys(single).map((k) => Math.abs(distributed[k] - single[k]) / Math.max(1e-300, Math.abs(single[k]))));
  console.log(`largest relative difference: ${worst.toExponential(2)}`);
  if (worst > 1e-12) process.exitCode = 1;
}

(process.env.RANK === undefined ? launch() : rank()).catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
