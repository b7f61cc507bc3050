/**
 * The protocol that lets distributed.allReduce() update an accumulator in place:
 * `acc[replaceState](other)` makes `acc` hold exactly `other`'s state (same options).
 * LossAccumulator and calibration.Accumulator implement it.
 */
export const replaceState: unique symbol = Symbol.for('smoothce.replaceState') as never;
