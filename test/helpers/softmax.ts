/** Row-wise softmax of n×k logits in float64 (max subtracted first), for tests that need probabilities. */
export function softmaxRows(z: ArrayLike<number>, n: number, k: number): Float64Array {
  const p = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, z[i * k + j]);
    let s = 0;
    for (let j = 0; j < k; j++) s += p[i * k + j] = Math.exp(z[i * k + j] - m);
    for (let j = 0; j < k; j++) p[i * k + j] /= s;
  }
  return p;
}
