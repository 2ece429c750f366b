// Choosing rows of a decoder cache (beam reordering, finished rows) outside the batching scheduler:
// host caches are copied at once; caches kept on the WebGPU device cannot be read from JavaScript,
// so their choice is a RowSelection, gathered on the device at the model's next decode. A
// selection holds the cache it selects from (device-refs.ts) until it is released itself, so the
// caller may finish the source at once; `releaseHandle` is how a holder lets go of any handle.
import type ort from 'onnxruntime-node';
import { releaseTensors, retainTensors } from './device-refs.ts';
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
  private held = true;
  constructor(
    readonly from: DecoderCache,
    readonly rows: readonly number[],
  ) {
    for (const r of rows) if (r < 0 || r >= from.batch) throw new RangeError(`cache row ${r} out of range 0..${from.batch - 1}`);
    retainTensors([...from.self, ...from.cross]);
  }

  /** Lets go of the source's tensors (once). */
  release(): void {
    if (!this.held) return;
    this.held = false;
    releaseTensors([...this.from.self, ...this.from.cross]);
  }

  get batch(): number {
    return this.rows.length;
  }

  get length(): number {
    return this.from.length;
  }
}

const released = new WeakSet<object>();

/**
 * Its holder is done with `handle` (an encoder output, or a decoder cache of any kind): the device
 * tensors it held lose that holder. Once per handle; later calls do nothing.
 */
export function releaseHandle(handle: Tensor | DecoderCache): void {
  if (released.has(handle)) return;
  released.add(handle);
  const own = handle as unknown as { release?: () => void };
  if (typeof own.release === 'function') own.release(); // a RowSelection, a ScheduledCache
  else if ('location' in handle) releaseTensors([handle]);
  else releaseTensors([...handle.self, ...handle.cross]);
}
