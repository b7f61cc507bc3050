// One rank of a distributed test: node test/helpers/dist-rank.js '<json job>'
// Prints one JSON line with its results. Uses the built package (dist/).
'use strict';
const path = require('node:path');
const smoothce = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));

const job = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const DTYPES = { float32: Float32Array, float64: Float64Array };
// 64-bit FNV-1a of a class name, as lib/distributed.ts tags accumulator states (for a hostile rank).
function fnv1a(text) {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) h = BigInt.asUintN(64, (h ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n);
  return BigInt.asIntN(64, h);
}
let initStarted = 0;

(async () => {
  initStarted = Date.now();
  const group = await smoothce.distributed.init({
    rank: job.rank,
    worldSize: job.worldSize,
    store: job.store,
    timeoutMs: job.timeoutMs ?? 20000,
    ...(job.storeLayout ? { storeLayout: job.storeLayout } : {}),
    ...(job.checkCollectives !== undefined ? { checkCollectives: job.checkCollectives } : {}),
  });
  const result = { rank: group.rank };
  // A collective whose failure is reported (not fatal), then the group is used again.
  const attempt = async (name, fn) => {
    try {
      result[name] = await fn();
    } catch (e) {
      result[name] = { name: e.name, code: e.code, message: e.message };
    }
  };
  if (job.tensor) {
    const data = new (DTYPES[job.dtype ?? 'float64'])(job.tensor);
    const t = smoothce.tensor(data, job.shape ?? [job.tensor.length]);
    const call = job.gather ? () => group.allGather(t).then((ts) => ts.map((x) => Array.from(x.data))) : () => group.allReduceTensor(t, job.op ?? 'sum').then((r) => Array.from(r.data));
    if (job.expectFailure) await attempt('tensor', call);
    else result.tensor = await call();
    result.inputAfter = Array.from(t.data);
  }
  if (job.accumulator) {
    // One accumulator of the kind asked for, all-reduced (failure reported); job.claimBytes
    // makes this rank a hostile one that claims a state of that many bytes instead.
    const { dataset, rows, LOSS_OPTIONS, CALIBRATION_OPTIONS } = require('./dist-data');
    const d = dataset(40, 7, 3 + job.rank);
    const part = rows(d, 0, d.n);
    await attempt('accumulator', async () => {
      if (job.claimBytes !== undefined) {
        await group.allGather(smoothce.tensor(new BigInt64Array([fnv1a(job.accumulator), BigInt(job.claimBytes), 1n << 40n]), [3]));
        return 'sent a claim';
      }
      const acc =
        job.accumulator === 'LossAccumulator'
          ? new smoothce.LossAccumulator(LOSS_OPTIONS).update(part.logits, part.target)
          : new smoothce.calibration.Accumulator(job.calibrationOptions ?? CALIBRATION_OPTIONS).update(part.logits, part.labels);
      await group.allReduce(acc);
      return acc.toJSON();
    });
  }
  if (job.loop) {
    // All-reduces in a loop, each checked to be exact, until a collective fails (the test
    // SIGKILLs a rank once every rank has printed 'looping'); then, with job.regroup, joins a
    // new group of the survivors and all-reduces rank + 1 in it.
    let i = 0;
    try {
      for (;;) {
        const r = await group.allReduceTensor(smoothce.tensor(new Float64Array([1]), [1]));
        if (r.data[0] !== job.worldSize) throw new Error(`iteration ${i}: the sum is ${r.data[0]}, not ${job.worldSize}`);
        if (++i === 20) process.stdout.write('looping\n');
      }
    } catch (e) {
      result.loopError = { name: e.name, code: e.code, message: e.message };
      result.iterations = i;
    }
    group.destroy();
    if (job.regroup) {
      const g = await smoothce.distributed.init({ ...job.regroup, timeoutMs: job.timeoutMs ?? 20000 });
      result.regroup = Array.from((await g.allReduceTensor(smoothce.tensor(new Float64Array([job.regroup.rank + 1]), [1]))).data);
      g.destroy();
    }
    out(result);
    return;
  }
  if (job.after) {
    // The group still works after the failure: an exact sum of job.after over the ranks.
    result.after = Array.from((await group.allReduceTensor(smoothce.tensor(new Float64Array(job.after), [job.after.length]))).data);
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
  out({ rank: job.rank, error: { name: e.name, code: e.code, message: e.message }, elapsedMs: Date.now() - initStarted });
  process.exitCode = 1;
});
