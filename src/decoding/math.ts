// Numerics on one row of logits, written for the decoder's hot loop: no allocation unless the
// caller asks for an output row, ranges instead of slices, float64 accumulation.

/** Largest value in row[start, end); -Infinity for an empty range. */
export function maxOf(row: ArrayLike<number>, start = 0, end = row.length): number {
  let m = -Infinity;
  for (let i = start; i < end; i++) {
    const v = row[i]!;
    if (v > m) m = v;
  }
  return m;
}

// exp(d) for d in [-EXP_CUTOFF, 0], the only range logSumExp needs (every term is shifted by the
// row's max): d·log2(e) is split into 64ths, 2^(whole part) and 2^(n/64) come from tables and the
// remainder (< 1/64) from a 4-term series, within ~1e-9 relative of Math.exp and several times
// faster. Terms below e^-EXP_CUTOFF (< 1e-43 of the max term's 1) are dropped. This runs on every
// decoder step over the whole vocabulary, where Math.exp alone cost about 1 ms.
const EXP_CUTOFF = 100;
const LOG2E = Math.LOG2E;
const LN2 = Math.LN2;
const POW2_INT = Float64Array.from({ length: Math.ceil(EXP_CUTOFF * LOG2E) + 2 }, (_, k) => 2 ** -k);
const POW2_64THS = Float64Array.from({ length: 64 }, (_, j) => 2 ** (j / 64));

function expNonPositive(d: number): number {
  const t = d * LOG2E * 64; // ≤ 0
  const n = Math.floor(t);
  const y = ((t - n) / 64) * LN2; // in [0, ln2/64)
  const whole = -Math.floor(n / 64); // ≥ 0
  return POW2_INT[whole]! * POW2_64THS[n - -whole * 64]! * (1 + y * (1 + y * (0.5 + y * (1 / 6 + y / 24))));
}

/**
 * log(sum(exp(row[start, end)))), stable against overflow; -Infinity when every value is -Infinity.
 * `knownMax` saves a pass when the caller already has the range's maximum (an argmax).
 */
export function logSumExp(row: ArrayLike<number>, start = 0, end = row.length, knownMax?: number): number {
  const m = knownMax ?? maxOf(row, start, end);
  if (m === -Infinity || Number.isNaN(m)) return m;
  if (m === Infinity) return Infinity;
  let sum = 0;
  for (let i = start; i < end; i++) {
    const d = row[i]! - m;
    if (d > -EXP_CUTOFF) sum += expNonPositive(d);
  }
  return m + Math.log(sum);
}

/** log_softmax over the whole row, written into `out` (which may be `row` itself). */
export function logSoftmax(row: Float32Array, out: Float32Array = new Float32Array(row.length)): Float32Array {
  if (out.length !== row.length) throw new RangeError('logSoftmax: output row has the wrong length');
  const lse = logSumExp(row);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - lse;
  return out;
}

/** Index of the largest value (the first one on ties, as torch.argmax); -1 for an empty row. */
export function argmax(row: ArrayLike<number>): number {
  let best = -1;
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (v > m || best === -1) {
      m = v;
      best = i;
    }
  }
  return best;
}
