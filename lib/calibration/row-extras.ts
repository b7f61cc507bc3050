/**
 * The part of report() that works on per-row values in JavaScript (float64): top-label ECE,
 * SmoothECE with its curve, and AURC. One step generator serves report() (run to the end)
 * and reportAsync() (run in slices of a few milliseconds, so that the event loop is never
 * held long).
 */
import type { Tensor } from '../tensor';
import { topLabelTable, type BinTable, type RowExtras } from './metrics';
import type { Convention } from './options';
import { topLabelRows } from './rows';
import { riskCoverage, type SelectiveScore } from './selective';
import { ROWS_PER_STEP, SmoothEceGrids, smoothCurveSteps, smoothEceSteps, type Grid } from './smooth-ece';

export interface RowWorkOptions {
  fromLogits: boolean;
  temperature: number;
  convention: Convention;
  /** The uniform bin edges the native pass used (Stats.top.edges). */
  edges: number[];
  /** null: no AURC (the Accumulator). */
  selectiveScore: SelectiveScore | null;
  smoothBand: number;
}

export function* rowWork(scores: Tensor, labels: Tensor, o: RowWorkOptions): Generator<void, RowExtras & { topLabel: BinTable }> {
  const rows = yield* topLabelRows(scores, labels, o.fromLogits, o.temperature);
  const topLabel = topLabelTable(rows, o.edges, o.convention);
  yield;
  const grids = new Map<number, Grid>();
  const smooth = yield* smoothEceSteps(rows.confidence, rows.correct, grids);
  const curve = yield* smoothCurveSteps(rows.confidence, rows.correct, smooth.bandwidth, o.smoothBand, grids);
  let selective = null;
  if (o.selectiveScore) {
    const key = o.selectiveScore === 'normalized-max-logit' ? rows.normalizedMaxLogit! : rows.confidence;
    selective = yield* riskCoverage(key, rows.correct, o.selectiveScore);
  }
  return { smooth, curve, selective, topLabel };
}

/** The Accumulator's per-batch part: the top-label table and the batch's SmoothECE grids (all ten sizes). */
export function* batchWork(
  scores: Tensor,
  labels: Tensor,
  o: Pick<RowWorkOptions, 'fromLogits' | 'temperature' | 'convention' | 'edges'>,
): Generator<void, { topLabel: BinTable; grids: SmoothEceGrids }> {
  const rows = yield* topLabelRows(scores, labels, o.fromLogits, o.temperature);
  const topLabel = topLabelTable(rows, o.edges, o.convention);
  const grids = new SmoothEceGrids();
  for (let s = 0; s < rows.n; s += ROWS_PER_STEP >> 2) {
    yield;
    grids.add(rows.confidence, rows.correct, s, Math.min(rows.n, s + (ROWS_PER_STEP >> 2)));
  }
  return { topLabel, grids };
}
