// A ModelRunner wrapper for engine tests: records every decoder call's tokens and logits.
import type { ModelRunner } from '../../src/engine/whisper-model.ts';

export interface Recorded {
  inputs: bigint[][];
  /** Copies of the logits as returned. */
  raw: Float32Array[];
  /** The returned arrays themselves: decodeWindow filters them in place, so after it ends they hold the filtered logits. */
  filtered: Float32Array[];
}

/** A runner that records every decoder call of one caller. */
export function recording(runner: ModelRunner): { runner: ModelRunner; rec: Recorded } {
  const rec: Recorded = { inputs: [], raw: [], filtered: [] };
  return {
    rec,
    runner: {
      dims: runner.dims,
      encode: (f, b) => runner.encode(f, b),
      selectRows: (c, r) => runner.selectRows(c, r),
      decode: async (tokens, batch, encoded, cache, opts) => {
        const out = await runner.decode(tokens, batch, encoded, cache, opts);
        rec.inputs.push([...tokens]);
        rec.raw.push(out.logits.slice());
        rec.filtered.push(out.logits);
        return out;
      },
    },
  };
}
