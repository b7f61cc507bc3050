/**
 * Small statistics over seeds: mean, sample standard deviation, and the paired difference
 * of a metric between two ε values with a 95% Student-t interval. With 3 to 5 seeds a
 * difference "exceeds the seed noise" when that interval leaves out zero.
 */

export interface Summary {
  /** Seeds with a value (a metric can be undefined for a seed, e.g. memorisation at noise 0). */
  n: number;
  /** null when n = 0. */
  mean: number | null;
  /** Sample standard deviation (n − 1); null when n < 2. */
  sd: number | null;
  min: number | null;
  max: number | null;
}

export interface Difference extends Summary {
  /** Per seed, in the order of the seeds: value at ε minus value at the baseline ε (null where undefined). */
  perSeed: (number | null)[];
  /** 95% interval of the mean difference, mean ± t(0.975, n − 1) · sd / √n; null when n < 2. */
  ci95: [number, number] | null;
  /** True when ci95 leaves out zero (or, with sd = 0, every seed moved the same non-zero amount). */
  exceedsSeedNoise: boolean;
}

/** t quantiles at 0.975 for 1..30 degrees of freedom (beyond: the normal 1.96). */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export function tQuantile975(df: number): number {
  return df >= 1 && df <= T975.length ? T975[df - 1] : 1.96;
}

export function summarize(values: readonly (number | null)[]): Summary {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { n, mean: null, sd: null, min: null, max: null };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const sd = n < 2 ? null : Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { n, mean, sd, min: Math.min(...v), max: Math.max(...v) };
}

/** Paired difference a[i] − base[i] over seeds. */
export function pairedDifference(a: readonly (number | null)[], base: readonly (number | null)[]): Difference {
  const perSeed = a.map((x, i) => {
    const b = base[i];
    return x === null || b === null || !Number.isFinite(x) || !Number.isFinite(b) ? null : x - b;
  });
  const s = summarize(perSeed);
  let ci95: [number, number] | null = null;
  let exceedsSeedNoise = false;
  if (s.mean !== null && s.sd !== null) {
    const half = (tQuantile975(s.n - 1) * s.sd) / Math.sqrt(s.n);
    ci95 = [s.mean - half, s.mean + half];
    exceedsSeedNoise = s.sd === 0 ? s.mean !== 0 : ci95[0] > 0 || ci95[1] < 0;
  }
  return { ...s, perSeed, ci95, exceedsSeedNoise };
}
