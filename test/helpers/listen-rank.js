// One rank for test/security-listen.test.ts: node test/helpers/listen-rank.js '<json job>'
// Joins the group, prints {"ready": true, "pid": ...} once init and a barrier are done, then
// holds the group open until its stdin closes, and leaves. Uses the built package (dist/).
'use strict';
const path = require('node:path');
const smoothce = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));

const job = JSON.parse(process.argv[2]);

(async () => {
  const group = await smoothce.distributed.init({ rank: job.rank, worldSize: job.worldSize, store: job.store, timeoutMs: job.timeoutMs ?? 20000 });
  await group.barrier();
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, rank: group.rank }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', async () => {
    await group.barrier().catch(() => {});
    group.destroy();
    process.exit(0);
  });
})().catch((err) => {
  process.stderr.write(`${err && err.stack}\n`);
  process.exit(1);
});
