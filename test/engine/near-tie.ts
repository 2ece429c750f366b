// The near-tie rule of comparisons between two runs of one model (CPU and WebGPU, float32 and
// float16 I/O): their tokens may part only right after a call whose top two logits were closer
// than a tolerance, where rounding may rightly pick the other.
import assert from 'node:assert/strict';
import type { Recorded } from './recording.ts';

/** float16 rounding of the caches and logits moves the logits by about 1e-3. */
const NEAR_TIE = 2e-2;

/** Gap between the two largest finite values of a row. */
export function topGap(row: Float32Array): number {
  let a = -Infinity;
  let b = -Infinity;
  for (const v of row) {
    if (!Number.isFinite(v)) continue;
    if (v > a) [a, b] = [v, a];
    else if (v > b) b = v;
  }
  return a - b;
}

/** `got`'s tokens are `want`'s, or part from them only right after a near-tie of `want`'s logits. */
export function sameTokensButNearTies(got: Recorded, want: Recorded, what: string, nearTie = NEAR_TIE): void {
  for (let c = 0; c < Math.min(want.inputs.length, got.inputs.length); c++) {
    if (want.inputs[c]!.join() !== got.inputs[c]!.join()) {
      assert.ok(c > 0 && topGap(want.filtered[c - 1]!) < nearTie, `${what}: tokens part at call ${c} without a near-tie`);
      return;
    }
  }
  assert.equal(got.inputs.length, want.inputs.length, `${what}: as many decoder calls`);
}
