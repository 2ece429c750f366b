// A ModelRunner wrapper for engine tests: records every decoder call's tokens, logits and picks;
// and how far two such rows of numbers are apart.
import assert from 'node:assert/strict';
import type { Pick } from '../../src/engine/greedy-pick.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';

export interface Recorded {
  inputs: bigint[][];
  /** Copies of the logits as returned (empty where every row was picked next to the model). */
  raw: Float32Array[];
  /** The returned arrays themselves: decodeWindow filters them in place, so after it ends they hold the filtered logits. */
  filtered: Float32Array[];
  /** Greedy picks as returned (undefined where the call returned logits). */
  picks: ((Pick | null)[] | undefined)[];
}

/**
 * A runner that records every decoder call of one caller. With `logits`, it drops the calls'
 * greedy masks, so every call returns logits and the choice is made in decodeWindow.
 */
export function recording(runner: ModelRunner, opts: { logits?: boolean } = {}): { runner: ModelRunner; rec: Recorded } {
  const rec: Recorded = { inputs: [], raw: [], filtered: [], picks: [] };
  return {
    rec,
    runner: {
      dims: runner.dims,
      encode: (f, b) => runner.encode(f, b),
      selectRows: (c, r) => runner.selectRows(c, r),
      decode: async (tokens, batch, encoded, cache, callOpts = {}) => {
        const { greedy, ...rest } = callOpts;
        const out = await runner.decode(tokens, batch, encoded, cache, opts.logits ? rest : { ...rest, greedy });
        rec.inputs.push([...tokens]);
        rec.raw.push(out.logits.slice());
        rec.filtered.push(out.logits);
        rec.picks.push(out.picks);
        return out;
      },
    },
  };
}

/** Largest |a - b| over the row, relative to the row's largest magnitude. */
export function relDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
