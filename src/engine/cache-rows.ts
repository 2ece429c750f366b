// Choosing rows of a decoder cache (beam reordering, finished rows) outside the batching scheduler:
// host caches are copied at once; caches kept on the WebGPU device cannot be read from JavaScript,
// so their choice is a RowSelection, gathered on the device at the model's next decode.
import type ort from 'onnxruntime-node';
import { gatherHostRows } from './device-tensors.ts';
import type { DecoderCache } from './model-types.ts';

type Tensor = ort.Tensor;

/** A cache holding only the rows `rows` of `cache`, in that order (beam reordering, finished rows). */
export function selectCacheRows(cache: DecoderCache, rows: readonly number[]): DecoderCache {
  const pick = (tensor: Tensor): Tensor => gatherHostRows(rows.map((row) => ({ tensor, row })));
  return { batch: rows.length, length: cache.length, self: cache.self.map(pick), cross: cache.cross.map(pick) };
}

/** Rows `rows` of a cache kept on the device, to be gathered there when next decoded from. */
export class RowSelection implements DecoderCache {
  readonly self: Tensor[] = [];
  readonly cross: Tensor[] = [];
  constructor(
    readonly from: DecoderCache,
    readonly rows: readonly number[],
  ) {
    for (const r of rows) if (r < 0 || r >= from.batch) throw new RangeError(`cache row ${r} out of range 0..${from.batch - 1}`);
  }

  get batch(): number {
    return this.rows.length;
  }

  get length(): number {
    return this.from.length;
  }
}
