// Dynamic time warping of a cost matrix, as openai/whisper's timing.py aligns text tokens to audio
// frames: the cheapest monotonic path from the top-left to the bottom-right cell, moving one row,
// one column or both at a time. Ties go the way openai's loop breaks them (diagonal only when
// strictly cheapest, then down, else right), so equal-cost paths come out the same.
// Hand-written: it is the product's core (word timing) and tiny.

export interface WarpPath {
  /** Row (token) of each step of the path. */
  rows: number[];
  /** Column (frame) of each step, same length as `rows`. */
  cols: number[];
}

/** The path through `cost`, an `n` × `m` matrix in row-major order. */
export function dtw(cost: ArrayLike<number>, n: number, m: number): WarpPath {
  if (n === 0 || m === 0) return { rows: [], cols: [] };
  const w = m + 1;
  const total = new Float64Array((n + 1) * w).fill(Infinity);
  // 0 = diagonal, 1 = from the row above, 2 = from the column to the left
  const trace = new Uint8Array((n + 1) * w);
  total[0] = 0;
  for (let j = 1; j <= m; j++) {
    for (let i = 1; i <= n; i++) {
      const c0 = total[(i - 1) * w + j - 1]!;
      const c1 = total[(i - 1) * w + j]!;
      const c2 = total[i * w + j - 1]!;
      let c: number;
      let t: number;
      if (c0 < c1 && c0 < c2) [c, t] = [c0, 0];
      else if (c1 < c0 && c1 < c2) [c, t] = [c1, 1];
      else [c, t] = [c2, 2];
      total[i * w + j] = cost[(i - 1) * m + j - 1]! + c;
      trace[i * w + j] = t;
    }
  }
  for (let j = 0; j <= m; j++) trace[j] = 2;
  for (let i = 0; i <= n; i++) trace[i * w] = 1;

  const rows: number[] = [];
  const cols: number[] = [];
  let i = n;
  let j = m;
  while (i > 0 || j > 0) {
    rows.push(i - 1);
    cols.push(j - 1);
    const t = trace[i * w + j];
    if (t === 0) {
      i--;
      j--;
    } else if (t === 1) i--;
    else j--;
  }
  return { rows: rows.reverse(), cols: cols.reverse() };
}
