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

/** log(sum(exp(row[start, end)))), stable against overflow; -Infinity when every value is -Infinity. */
export function logSumExp(row: ArrayLike<number>, start = 0, end = row.length): number {
  const m = maxOf(row, start, end);
  if (m === -Infinity || Number.isNaN(m)) return m;
  if (m === Infinity) return Infinity;
  let sum = 0;
  for (let i = start; i < end; i++) sum += Math.exp(row[i]! - m);
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
