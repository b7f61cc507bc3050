'use strict';
// Deterministic randomness for the fuzzer: every case draws from its own stream, made
// from (seed, index) alone, so any case can be replayed without running the ones before
// it. The stream is fast-check's `gen()` (its arbitraries, with their bias towards edge
// values: 0, -0, NaN, ±Infinity, min/max integers).
const fc = require('fast-check');

/** 32-bit seed of case `index` of run `seed` (a murmur3-style finaliser of both). */
function caseSeed(seed, index) {
  let h = Math.imul((seed | 0) ^ 0x9e3779b9, 0x85ebca6b) ^ (index | 0);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= Math.imul(Math.floor(index / 0x100000000), 0x27d4eb2f);
  return (h ^ (h >>> 16)) | 0;
}

const SPECIALS = [NaN, Infinity, -Infinity, -0, 1e38, -1e38, 5e-324, 3.4e38, 1e300];

class Rng {
  constructor(seed, index) {
    this.g = fc.sample(fc.gen(), { seed: caseSeed(seed, index), numRuns: 1 })[0];
    /** What was chosen, in words: printed for a finding and by --replay. */
    this.trace = [];
  }
  int(min, max) {
    return this.g(fc.integer, { min, max });
  }
  chance(p) {
    return this.g(fc.integer, { min: 0, max: 9999 }) < p * 10000;
  }
  pick(list) {
    return list[this.int(0, list.length - 1)];
  }
  /** pairs: [[weight, value], ...] */
  weighted(pairs) {
    const total = pairs.reduce((s, [w]) => s + w, 0);
    let x = this.int(0, total - 1);
    for (const [w, v] of pairs) {
      if (x < w) return v;
      x -= w;
    }
    return pairs[pairs.length - 1][1];
  }
  /** Any double (fast-check's, biased towards NaN, ±Infinity, ±0, extremes). */
  anyDouble() {
    return this.g(fc.double, {});
  }
  /** A "normal" logit or probability, with occasional specials. */
  value(special = 0.02) {
    if (this.chance(special)) return this.pick(SPECIALS);
    return this.int(-4000, 4000) / 1000;
  }
  /** A fast stream of value()s for filling arrays (one draw here seeds a mulberry32). */
  values(special = 0.02) {
    let a = this.int(-0x80000000, 0x7fffffff);
    const next = () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    return () => (next() < special ? SPECIALS[Math.floor(next() * SPECIALS.length)] : Math.round((next() * 8 - 4) * 1000) / 1000);
  }
  /** Integers in [min, max] from the same kind of fast stream. */
  ints(min, max) {
    const v = this.values(0);
    return () => Math.min(max, min + Math.floor(((v() + 4) / 8) * (max - min + 1)));
  }
  bigint(min, max) {
    return this.g(fc.bigInt, { min, max });
  }
  note(s) {
    this.trace.push(s);
  }
}

module.exports = { Rng, caseSeed };
