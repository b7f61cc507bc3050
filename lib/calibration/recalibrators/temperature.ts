/**
 * Temperature scaling: softmax(z / T), T fitted by the same native search as
 * calibration.fitTemperature (Newton on 1/T, float64), so the temperature is the one
 * fitTemperature gives for these logits (for from: 'probs', for z = log(max(p, 2^-52))).
 */
import { native } from '../../core/native';
import { finite, exactKeys, stored } from './json';
import { logitsOf, rowLogits, runSync, rowsPerYield, type Labeled, type Rows, type Work } from './data';
import { rangeError } from '../../core/errors';
import type { Fitted, MethodSpec } from './types';

export interface TemperatureParams {
  temperature: number;
}

/** The logits the native fit reads: the caller's (validated) tensor for logits, else log-probabilities. */
function fitInput(data: Labeled) {
  const logits = data.from === 'logits' ? data.source : { data: runSync(logitsOf(data)), shape: [data.n, data.k], dtype: 'float64' as const };
  return { logits, labels: { data: data.labels, shape: [data.n], dtype: 'int32' as const }, device: 'cpu' };
}

function fitted(r: { temperature: number; iterations: number; nllAfter: number }): Fitted<TemperatureParams> {
  return { params: { temperature: stored(r.temperature) }, iterations: r.iterations, converged: true, gradientNorm: null };
}

export const temperature: MethodSpec<TemperatureParams> = {
  options: [],
  keep: [],
  settings: () => ({}),
  // eslint-disable-next-line require-yield
  *fit(data) {
    return fitted(native().calibrationFitTemperature(fitInput(data)));
  },
  async fitAsync(data) {
    return fitted(await native().calibrationFitTemperature(fitInput(data), true));
  },
  *apply({ temperature: t }, rows: Rows): Work<Float64Array> {
    const { n, k } = rows;
    const z = new Float64Array(n * k);
    const out = new Float64Array(n * k);
    const chunk = rowsPerYield(20 * k);
    for (let i = 0; i < n; i++) {
      if (i > 0 && i % chunk === 0) yield;
      const o = i * k;
      rowLogits(rows, i, z, o);
      let m = -Infinity;
      for (let j = 0; j < k; j++) m = Math.max(m, z[o + j] / t);
      let s = 0;
      for (let j = 0; j < k; j++) {
        const e = Math.exp(z[o + j] / t - m);
        out[o + j] = e;
        s += e;
      }
      for (let j = 0; j < k; j++) out[o + j] /= s;
    }
    return out;
  },
  toJSON: ({ temperature: t }) => ({ temperature: t }),
  fromJSON(raw, _k, where) {
    const o = exactKeys(raw, ['temperature'], where);
    const t = finite(o.temperature, `${where}.temperature`);
    if (!(t > 0)) throw rangeError(`${where}.temperature`, 'a positive finite number', t);
    return { temperature: t };
  },
};
