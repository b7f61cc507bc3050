/**
 * The Monitor's saved state (toJSON / fromJSON / load): its JSON Schema, checked with ajv
 * (types, required and unknown fields), then the invariants a schema cannot state (labelled
 * <= observed, sub-windows inside their window, per-bin sums that a real pass can give, the
 * same bin edges and class count everywhere). Every problem is a TypeError (a wrong kind of
 * value, a missing field) or RangeError (a wrong value, an unknown field, text that is not
 * JSON) with code ERR_SMOOTHCE_STATE_FORMAT and the path of the field in its message, so that
 * a state that loads is one that snapshot(), merge() and the Prometheus export can use.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import { describe, ERROR_CODES, rangeErrorMessage, typeErrorMessage, withCode } from '../../core/errors';
import { tensor } from '../../core/tensor';
import { schemaProblem } from '../../parity/case-validate';
import { Accumulator, type AccumulatorOptions, type AccumulatorState } from '../accumulator';
import type { BinTable, Stats } from '../metrics';
import type { CommonOptions } from '../options';
import { checkSegment, OVERFLOW_SEGMENT } from './segments';
import type { MonitorState, WindowState } from './types';
import type { Window } from './windows';

const CODE = ERROR_CODES.STATE_FORMAT;

/** A RangeError with code ERR_SMOOTHCE_STATE_FORMAT: "Invalid Monitor state: expected <what> for <path> but received <value>". */
export function badState(path: string, expected: string, value: unknown): RangeError {
  return rangeErrorMessage(`Invalid Monitor state: expected ${expected} for ${path} but received ${describe(value)}`, CODE);
}

/** Gives an error thrown while reading a state (by the Monitor's own option checks) the state's code. */
export function asStateError(err: unknown): unknown {
  if (err instanceof Error && (err as { code?: string }).code !== CODE) {
    err.message = `Invalid Monitor state: ${err.message}`;
    withCode(err, CODE);
  }
  return err;
}

const MAX_INT = Number.MAX_SAFE_INTEGER;
const count = { type: 'integer', minimum: 0, maximum: MAX_INT, 'x-expected': 'a non-negative integer' };
const finite = { type: 'number', 'x-expected': 'a finite number' };
const numbers = { type: 'array', items: finite, 'x-expected': 'an array of numbers' };
const table = {
  type: 'object',
  required: ['edges', 'count', 'confSum', 'accSum'],
  additionalProperties: false,
  properties: { edges: numbers, count: { type: 'array', items: count }, confSum: numbers, accSum: numbers },
};
const accumulator = {
  type: 'object',
  'x-expected': 'an Accumulator state',
  required: ['format', 'version', 'options', 'stats'],
  additionalProperties: false,
  properties: {
    // SmoothECE grids (calibration/smooth-ece.ts, where the build has them): Accumulator.fromJSON checks them.
    smooth: {},
    format: { const: 'smoothce.calibration.accumulator' },
    version: { const: 1 },
    options: {
      type: 'object',
      required: ['from', 'bins', 'convention', 'temperature', 'tolerance', 'device'],
      additionalProperties: false,
      properties: { from: { type: 'string' }, bins: { type: 'integer' }, convention: { type: 'string' }, temperature: finite, tolerance: finite, device: { type: 'string' }, smoothEce: { type: 'boolean' } },
    },
    stats: {
      type: 'object',
      'x-expected': 'the statistics of at least one row',
      required: ['n', 'classes', 'correct', 'nllSum', 'brierSum', 'nllClamped', 'top', 'classwise'],
      additionalProperties: false,
      properties: { n: count, classes: count, correct: count, nllSum: finite, brierSum: finite, nllClamped: count, top: table, classwise: table, topLabel: table },
    },
  },
};
const windowState = {
  type: 'object',
  required: ['name', 'late', 'buckets'],
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    late: count,
    rowsIncomplete: { type: 'boolean' },
    buckets: {
      type: 'array',
      items: {
        type: 'array',
        'x-expected': '[index, sums] or [index, sums, rows, labels]',
        minItems: 2,
        maxItems: 4,
        items: [{ type: 'integer', minimum: -MAX_INT, maximum: MAX_INT, 'x-expected': 'a sub-window index (an integer)' }, accumulator, numbers, { type: 'array', items: count }],
      },
    },
  },
};
const segmentCounts = {
  type: 'object',
  required: ['observed', 'labelled', 'expired', 'dropped', 'late'],
  additionalProperties: false,
  properties: { observed: count, labelled: count, expired: count, dropped: count, late: count },
};
const STATE_SCHEMA = {
  type: 'object',
  'x-expected': 'a Monitor state object',
  required: ['format', 'version', 'options', 'classes', 'dtype', 'rows', 'now', 'counts', 'windows'],
  additionalProperties: false,
  properties: {
    format: { const: 'smoothce.calibration.monitor', 'x-expected': "'smoothce.calibration.monitor'" },
    version: { enum: [1, 2], 'x-expected': 'version 1 or 2' },
    options: {
      type: 'object',
      required: ['from', 'bins', 'convention', 'temperature', 'tolerance', 'windows', 'ttlMs', 'maxPending', 'flushRows'],
      additionalProperties: false,
      properties: {
        from: { type: 'string' },
        bins: { type: 'integer' },
        convention: { type: 'string' },
        temperature: finite,
        tolerance: finite,
        windows: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name', 'step'],
            additionalProperties: false,
            properties: { name: { type: 'string' }, rows: { type: 'integer' }, seconds: { type: 'integer' }, step: { type: 'integer' }, keepRows: { type: 'boolean' } },
          },
        },
        ttlMs: { type: 'integer' },
        maxPending: { type: 'integer' },
        flushRows: { type: 'integer' },
        smoothEce: { type: 'boolean' },
        maxSegments: { type: 'integer' },
      },
    },
    classes: { type: ['integer', 'null'], minimum: 2, maximum: MAX_INT, 'x-expected': 'an integer >= 2 or null' },
    dtype: { enum: ['float32', 'float64', null], 'x-expected': "'float32', 'float64' or null" },
    rows: count,
    now: { type: ['number', 'null'], 'x-expected': 'a time in ms, or null' },
    counts: {
      type: 'object',
      required: ['observed', 'labelled', 'expired', 'dropped', 'unmatched', 'late'],
      additionalProperties: false,
      properties: { observed: count, labelled: count, expired: count, dropped: count, unmatched: count, late: count, overflow: count },
    },
    windows: { type: 'array', items: windowState },
    segments: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'rows', 'counts', 'windows'],
        additionalProperties: false,
        properties: { name: { type: 'string' }, rows: count, counts: segmentCounts, windows: { type: 'array', items: windowState } },
      },
    },
    pending: {
      type: 'array',
      items: {
        type: 'array',
        'x-expected': '[id, time, scores, segment]',
        minItems: 4,
        maxItems: 4,
        items: [{ type: ['string', 'integer'], 'x-expected': 'an id (a string or an integer)' }, finite, numbers, { type: ['string', 'null'], 'x-expected': 'a segment name or null' }],
      },
    },
  },
  if: { properties: { version: { const: 2 } } },
  then: { required: ['segments', 'pending'], properties: { options: { required: ['maxSegments'] }, counts: { required: ['overflow'] } } },
};

let validator: ValidateFunction | undefined;

/** Checks the shape of a state (ajv); throws the first problem with the state's code. */
function checkSchema(value: unknown): asserts value is MonitorState {
  validator ??= new Ajv({ allErrors: false, verbose: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false, allowUnionTypes: true })
    .addKeyword('x-expected')
    .compile(STATE_SCHEMA);
  if (validator(value)) return;
  const errors = validator.errors ?? [];
  const p = schemaProblem(errors);
  const last = errors.filter((e) => e.keyword !== 'if').pop();
  const path = ['state', ...p.path].join('.');
  const message = p.unknownKey ? `Invalid Monitor state: unknown field ${path}` : `Invalid Monitor state: expected ${p.expected} for ${path} but received ${describe(p.value)}`;
  if (last && (last.keyword === 'type' || last.keyword === 'required')) throw typeErrorMessage(message, CODE);
  throw rangeErrorMessage(message, CODE);
}

/** The state as an object: JSON text is parsed (text that is not JSON, e.g. truncated, is a coded RangeError). */
export function parseState(state: unknown): unknown {
  if (typeof state !== 'string') return state;
  try {
    return JSON.parse(state);
  } catch (err) {
    throw withCode(new RangeError(`Invalid Monitor state: the text is not JSON (truncated or not a Monitor state): ${(err as Error).message}`, { cause: err }), CODE);
  }
}

/** What the state's options resolved to, which the rest of the state is checked against. */
export interface StateContext {
  specs: readonly Window['spec'][];
  accOptions: AccumulatorOptions;
  maxPending: number;
  maxSegments: number;
}

const edgesCache = new Map<string, { top: number[]; classwise: number[] }>();

/** The bin edges a real pass gives with these options (one tiny native pass, cached). */
function expectedEdges(options: CommonOptions): { top: number[]; classwise: number[] } {
  const key = JSON.stringify(options);
  let e = edgesCache.get(key);
  if (!e) {
    const acc = new Accumulator(options).update(tensor(new Float64Array([0.5, 0.5]), [1, 2]), tensor(new Int32Array([0]), [1]));
    const s = acc.toJSON().stats!;
    e = { top: s.top.edges, classwise: s.classwise!.edges };
    edgesCache.set(key, e);
  }
  return e;
}

const sum = (a: readonly number[]): number => a.reduce((x, y) => x + y, 0);
const SLACK = 1e-9;

function checkTable(t: BinTable, path: string, len: number, edges: number[], rowsPerSample: number, n: number): void {
  if (t.edges.length !== edges.length || t.edges.some((v, i) => v !== edges[i])) throw badState(`${path}.edges`, `the bin edges of these options (${edges.length} edges)`, t.edges);
  for (const key of ['count', 'confSum', 'accSum'] as const) {
    if (t[key].length !== len) throw badState(`${path}.${key}`, `an array of ${len} entries`, t[key]);
  }
  if (sum(t.count) > n * rowsPerSample) throw badState(`${path}.count`, `bin counts that add up to at most ${n * rowsPerSample}`, sum(t.count));
  for (let b = 0; b < len; b++) {
    const c = t.count[b];
    const conf = t.confSum[b];
    const hits = t.accSum[b];
    if (!(conf >= 0 && conf <= c * (1 + SLACK))) throw badState(`${path}.confSum[${b}]`, `a confidence sum in [0, ${c}] (the bin's count)`, conf);
    if (!(Number.isInteger(hits) && hits >= 0 && hits <= c)) throw badState(`${path}.accSum[${b}]`, `a number of hits, an integer in [0, ${c}]`, hits);
  }
}

function checkAccumulator(a: AccumulatorState, path: string, ctx: StateContext, k: number): number {
  const want = new Accumulator(ctx.accOptions).toJSON().options;
  for (const key of Object.keys(want) as (keyof typeof want)[]) {
    if (a.options[key] !== want[key]) throw badState(`${path}.options.${key}`, `the monitor's ${key}, ${JSON.stringify(want[key])}`, a.options[key]);
  }
  const s = a.stats as Stats;
  if (s.n < 1) throw badState(`${path}.stats.n`, 'at least 1 row', s.n);
  if (s.classes !== k) throw badState(`${path}.stats.classes`, `the monitor's class count, ${k}`, s.classes);
  if (s.correct > s.n) throw badState(`${path}.stats.correct`, `at most n = ${s.n}`, s.correct);
  if (s.nllClamped > s.n) throw badState(`${path}.stats.nllClamped`, `at most n = ${s.n}`, s.nllClamped);
  if (!(s.nllSum >= 0)) throw badState(`${path}.stats.nllSum`, 'a non-negative sum', s.nllSum);
  if (!(s.brierSum >= 0 && s.brierSum <= 2 * s.n * (1 + SLACK))) throw badState(`${path}.stats.brierSum`, `a sum in [0, 2n] = [0, ${2 * s.n}]`, s.brierSum);
  const edges = expectedEdges(ctx.accOptions);
  // Bins per table: `bins`, one more for the torchmetrics convention (its bin for confidence 1).
  const nb = ctx.accOptions.bins! + (ctx.accOptions.convention === 'torchmetrics' ? 1 : 0);
  checkTable(s.top, `${path}.stats.top`, nb, edges.top, 1, s.n);
  checkTable(s.classwise!, `${path}.stats.classwise`, nb * k, edges.classwise, k, s.n);
  // The top-label table (where the build has it): bins by predicted class.
  const topLabel = (s as Stats & { topLabel?: BinTable }).topLabel;
  if (topLabel) checkTable(topLabel, `${path}.stats.topLabel`, nb * k, topLabel.edges, 1, s.n);
  // What the Accumulator checks itself (the SmoothECE grids, where the build has them).
  try {
    Accumulator.fromJSON(a);
  } catch (err) {
    throw asStateError(err);
  }
  if (sum(s.top.accSum) > s.correct) throw badState(`${path}.stats.top.accSum`, `hits that add up to at most correct = ${s.correct}`, sum(s.top.accSum));
  if (sum(s.classwise!.accSum) > s.n) throw badState(`${path}.stats.classwise.accSum`, `hits that add up to at most n = ${s.n}`, sum(s.classwise!.accSum));
  return s.n;
}

interface Totals {
  observed: number;
  labelled: number;
  late: number;
  rows: number;
}

function checkWindows(windows: readonly WindowState[], path: string, ctx: StateContext, s: MonitorState, totals: Totals): void {
  if (windows.length !== ctx.specs.length) throw badState(path, `${ctx.specs.length} windows, as in state.options.windows`, windows);
  windows.forEach((sw, i) => {
    const spec = ctx.specs[i];
    const p = `${path}[${i}]`;
    if (sw.name !== spec.name) throw badState(`${p}.name`, `'${spec.name}' (the order of state.options.windows)`, sw.name);
    if (sw.late > totals.late) throw badState(`${p}.late`, `at most ${totals.late} (the late rows counted)`, sw.late);
    if (sw.rowsIncomplete !== undefined && !spec.keepRows) throw badState(`${p}.rowsIncomplete`, 'no such field on a window without keepRows', sw.rowsIncomplete);
    const unit = spec.rows !== undefined ? spec.step : spec.step * 1000;
    const blocks = (spec.rows ?? spec.seconds)! / spec.step;
    if (sw.buckets.length > 0 && s.classes === null) throw badState(`${p}.buckets`, 'no sub-windows in a monitor that has seen no row (classes null)', sw.buckets);
    let newest: number;
    if (spec.rows !== undefined) newest = totals.rows > 0 ? Math.floor((totals.rows - 1) / unit) : -Infinity;
    else newest = s.now === null ? -Infinity : Math.floor(s.now / unit);
    let previous = -Infinity;
    let rows = 0;
    sw.buckets.forEach((entry, j) => {
      const q = `${p}.buckets[${j}]`;
      const index = entry[0];
      if (index <= previous) throw badState(`${q}[0]`, 'sub-window indices in increasing order, each once', index);
      previous = index;
      if (!(index <= newest && index > newest - blocks)) {
        const range = Number.isFinite(newest) ? `an index in [${newest - blocks + 1}, ${newest}] (the window at ${spec.rows !== undefined ? `row ${totals.rows}` : `time ${s.now}`})` : 'no sub-window (the window cannot hold rows yet)';
        throw badState(`${q}[0]`, range, index);
      }
      if ((entry.length as number) === 3 || (entry.length === 4 && !spec.keepRows)) throw badState(q, spec.keepRows ? '[index, sums, rows, labels]' : '[index, sums] (the window has no keepRows)', entry);
      const n = checkAccumulator(entry[1], `${q}[1]`, ctx, s.classes!);
      rows += n;
      if (entry.length === 4) {
        const [, , kept, labels] = entry;
        if (sw.rowsIncomplete) throw badState(q, '[index, sums] in a window whose rows are incomplete', entry);
        if (labels.length !== n) throw badState(`${q}[3]`, `${n} labels (the sub-window's rows)`, labels);
        if (kept.length !== n * s.classes!) throw badState(`${q}[2]`, `${n} × ${s.classes} scores`, kept);
        const bad = labels.findIndex((y) => y >= s.classes!);
        if (bad >= 0) throw badState(`${q}[3][${bad}]`, `a class index in [0, ${s.classes! - 1}]`, labels[bad]);
      } else if (spec.keepRows && s.version === 2 && !sw.rowsIncomplete) {
        throw badState(q, '[index, sums, rows, labels] (a keepRows window with all its rows)', entry);
      }
    });
    if (rows > totals.labelled) throw badState(`${p}.buckets`, `sub-windows holding at most ${totals.labelled} rows (the rows labelled)`, rows);
  });
}

function checkCounts(c: Totals & { expired: number; dropped: number }, path: string, pending: number): void {
  if (c.labelled > c.observed) throw badState(`${path}.labelled`, `at most observed = ${c.observed}`, c.labelled);
  const settled = c.labelled + c.expired + c.dropped + pending;
  if (settled > c.observed) {
    throw badState(path, `labelled + expired + dropped + pending (${settled}) at most observed = ${c.observed}`, c.observed);
  }
  if (c.late > c.labelled) throw badState(`${path}.late`, `at most labelled = ${c.labelled}`, c.late);
}

/** The most a saved `now` may be: the largest time a Date can hold (year 275760). */
const MAX_TIME = 8.64e15;

/**
 * Parses (text) and checks a saved state against its own options (`ctx`, from the Monitor
 * made from state.options). Returns the state, typed. Throws coded TypeError/RangeError.
 */
export function checkState(value: unknown): MonitorState {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw typeErrorMessage(`Invalid Monitor state: expected a Monitor state object or its JSON text for state but received ${describe(value)}`, CODE);
  }
  // What the object is comes first: another kind of state is a wrong value, not a missing field.
  const { format, version } = value as { format?: unknown; version?: unknown };
  if (format !== 'smoothce.calibration.monitor') throw badState('state.format', "'smoothce.calibration.monitor'", format);
  if (version !== 1 && version !== 2) throw badState('state.version', '1 or 2', version);
  // A number that is not finite is a wrong value (the schema would call it a wrong type).
  const now = (value as { now?: unknown }).now;
  if (typeof now === 'number' && !Number.isFinite(now)) throw badState('state.now', 'a time in ms, or null', now);
  checkSchema(value);
  return value;
}

/** The invariants (after checkState and once the options are resolved into `ctx`). */
export function checkInvariants(s: MonitorState, ctx: StateContext): void {
  if ((s.classes === null) !== (s.dtype === null)) throw badState('state.dtype', s.classes === null ? 'null (classes is null)' : "'float32' or 'float64' (classes is set)", s.dtype);
  if (s.now !== null && !(Math.abs(s.now) <= MAX_TIME)) throw badState('state.now', `a time in ms within ±${MAX_TIME} (a Date's range), or null`, s.now);
  const pending = s.pending ?? [];
  const c = s.counts;
  checkCounts({ ...c, rows: s.rows }, 'state.counts', pending.length);
  if (s.classes === null && c.observed > 0) throw badState('state.classes', `an integer >= 2 (${c.observed} predictions were observed)`, s.classes);
  if (s.rows > c.labelled) throw badState('state.rows', `at most labelled = ${c.labelled}`, s.rows);
  if ((c.overflow ?? 0) > c.observed) throw badState('state.counts.overflow', `at most observed = ${c.observed}`, c.overflow);
  checkWindows(s.windows, 'state.windows', ctx, s, { ...c, rows: s.rows });
  const segments = s.segments ?? [];
  const names = new Set<string>();
  const totals = { observed: 0, labelled: 0 };
  segments.forEach((seg, i) => {
    const p = `state.segments[${i}]`;
    try {
      checkSegment(seg.name, `${p}.name`, true);
    } catch (err) {
      throw asStateError(err);
    }
    if (names.has(seg.name)) throw badState(`${p}.name`, 'a name no other segment has', seg.name);
    names.add(seg.name);
    const pendingHere = pending.filter((e) => e[3] === seg.name).length;
    checkCounts({ ...seg.counts, rows: seg.rows }, `${p}.counts`, pendingHere);
    if (seg.rows > seg.counts.labelled) throw badState(`${p}.rows`, `at most its labelled = ${seg.counts.labelled}`, seg.rows);
    totals.observed += seg.counts.observed;
    totals.labelled += seg.counts.labelled;
    checkWindows(seg.windows, `${p}.windows`, ctx, s, { ...seg.counts, rows: seg.rows });
  });
  const own = [...names].filter((n) => n !== OVERFLOW_SEGMENT).length;
  if (own > ctx.maxSegments) throw badState('state.segments', `at most maxSegments = ${ctx.maxSegments} segments (and the overflow one)`, segments);
  if (totals.observed > c.observed) throw badState('state.segments', `segments that observed at most ${c.observed} predictions in all`, totals.observed);
  if (totals.labelled > c.labelled) throw badState('state.segments', `segments that labelled at most ${c.labelled} predictions in all`, totals.labelled);
  if (pending.length > ctx.maxPending) throw badState('state.pending', `at most maxPending = ${ctx.maxPending} predictions`, pending);
  const ids = new Set<string | number>();
  let last = -Infinity;
  pending.forEach(([id, time, row, segment], i) => {
    const p = `state.pending[${i}]`;
    if (typeof id === 'string' ? id.length < 1 || id.length > 256 : !Number.isSafeInteger(id)) throw badState(`${p}[0]`, 'a string of 1 to 256 characters or a safe integer', id);
    if (ids.has(id)) throw badState(`${p}[0]`, 'an id no other pending prediction has', id);
    ids.add(id);
    if (!(time >= last && s.now !== null && time <= s.now)) throw badState(`${p}[1]`, `a time in [${last}, ${s.now}] (in observation order, not after state.now)`, time);
    last = time;
    if (row.length !== s.classes) throw badState(`${p}[2]`, `${s.classes} scores`, row);
    if (segment !== null && !names.has(segment)) throw badState(`${p}[3]`, 'null or the name of a segment in state.segments', segment);
  });
}
