/**
 * The part of report() that works on the native pass's per-row float64 values: top-label ECE,
 * SmoothECE with its curve, and AURC. One step generator serves report() (run to the end)
 * and reportAsync() (run in slices of a few milliseconds, so that the event loop is never
 * held long).
 */
import { topLabelTable, type BinTable, type RowExtras } from './metrics';
import type { Convention } from './options';
import type { TopLabelRows } from './rows';
import { riskCoverage, type SelectiveScore } from './selective';
import { ROWS_PER_STEP, SmoothEceGrids, smoothEceSteps, type Grid } from './smooth-ece';
import { smoothCurveSteps } from './smooth-curve';

export interface RowWorkOptions {
  convention: Convention;
  /** The uniform bin edges the native pass used (Stats.top.edges). */
  edges: number[];
  /** null: no AURC (the Accumulator). */
  selectiveScore: SelectiveScore | null;
  smoothBand: number;
}

export function* rowWork(rows: TopLabelRows, o: RowWorkOptions): Generator<void, RowExtras & { topLabel: BinTable }> {
  const topLabel = yield* topLabelTable(rows, o.edges, o.convention);
  const grids = new Map<number, Grid>();
  const smooth = yield* smoothEceSteps(rows.confidence, rows.correct, grids);
  const curve = yield* smoothCurveSteps(rows.confidence, rows.correct, smooth.bandwidth, o.smoothBand, grids);
  let selective = null;
  if (o.selectiveScore) {
    const order = o.selectiveScore === 'normalized-max-logit' ? rows.orderNormalized! : rows.order;
    selective = yield* riskCoverage(order, rows.correct, o.selectiveScore);
  }
  return { smooth, curve, selective, topLabel };
}

/** The Accumulator's per-batch part: the top-label table and the batch's SmoothECE grids (all ten sizes). */
export function* batchWork(
  rows: TopLabelRows,
  o: Pick<RowWorkOptions, 'convention' | 'edges'> & { grids: boolean },
): Generator<void, { topLabel: BinTable; grids: SmoothEceGrids | null }> {
  const topLabel = yield* topLabelTable(rows, o.edges, o.convention);
  if (!o.grids) return { topLabel, grids: null };
  const grids = new SmoothEceGrids();
  const step = ROWS_PER_STEP >> 2; // ten grids per row
  for (let s = 0; s < rows.n; s += step) {
    yield;
    grids.add(rows.confidence, rows.correct, s, Math.min(rows.n, s + step));
  }
  return { topLabel, grids };
}
