// One rank of the Monitor's distributed test: node test/helpers/monitor-rank.js '<json job>'
// Rebuilds its monitor from job.state, all-reduces a clone over the group and prints one
// JSON line: the global '1m' snapshot (whole and per segment) and counters, and its own counters afterwards.
'use strict';
const path = require('node:path');
const smoothce = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));

const job = JSON.parse(process.argv[2]);
(async () => {
  const clock = () => job.now;
  const local = smoothce.calibration.Monitor.fromJSON(job.state, { clock });
  const group = await smoothce.distributed.init({ rank: job.rank, worldSize: job.worldSize, store: job.store, timeoutMs: 20000 });
  const global = await group.allReduce(local.clone());
  group.destroy();
  process.stdout.write(
    JSON.stringify({
      rank: job.rank,
      '1m': global.snapshot('1m'),
      counts: global.counts,
      localCounts: local.counts,
      segments: Object.fromEntries(global.segments.map((s) => [s, global.snapshot('1m', s)])),
    }) + '\n',
  );
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
