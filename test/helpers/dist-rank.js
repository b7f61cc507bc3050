// One rank of a distributed test: node test/helpers/dist-rank.js '<json job>'
// Prints one JSON line with its results. Uses the built package (dist/).
'use strict';
const path = require('node:path');
const smoothce = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));

const job = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

(async () => {
  const group = await smoothce.distributed.init({
    rank: job.rank,
    worldSize: job.worldSize,
    store: job.store,
    timeoutMs: job.timeoutMs ?? 20000,
    ...(job.storeLayout ? { storeLayout: job.storeLayout } : {}),
  });
  const result = { rank: group.rank };
  if (job.tensor) {
    const t = smoothce.tensor(new Float64Array(job.tensor), [job.tensor.length]);
    const r = await group.allReduceTensor(t, job.op ?? 'sum');
    result.tensor = Array.from(r.data);
    result.inputAfter = Array.from(t.data);
  }
  if (job.data) {
    // Score this rank's shard, then combine the accumulators over the group.
    const { dataset, shard, rows, LOSS_OPTIONS, CALIBRATION_OPTIONS } = require('./dist-data');
    const d = dataset(job.data.n, job.data.c, job.data.seed);
    const [start, end] = shard(d.n, job.worldSize, job.rank);
    const part = rows(d, start, end);
    const loss = new smoothce.LossAccumulator(LOSS_OPTIONS);
    loss.update(part.logits, part.target);
    const cal = new smoothce.calibration.Accumulator(CALIBRATION_OPTIONS);
    cal.update(part.logits, part.labels);
    await group.allReduce(loss);
    await group.allReduce(cal);
    result.rows = end - start;
    result.loss = loss.result();
    result.report = cal.report();
  }
  if (job.dieAfterInit) process.exit(3);
  if (job.collectiveAfterPeerDies) {
    try {
      await group.allReduceTensor(smoothce.tensor(new Float64Array([1]), [1]));
      result.collective = 'ok';
    } catch (e) {
      result.collective = { name: e.name, code: e.code, message: e.message };
    }
  }
  await group.barrier();
  group.destroy();
  group.destroy();
  out(result);
})().catch((e) => {
  out({ rank: job.rank, error: { name: e.name, code: e.code, message: e.message } });
  process.exitCode = 1;
});
