// Who frees a tensor kept on the WebGPU device, and when. onnxruntime-node 1.30 gives such a tensor
// no finalizer: its buffer goes only with tensor.dispose() (see scripts/test-model/WEBGPU.md). V8
// cannot see GPU memory and the tensor objects are small, so freeing at garbage collection would
// let a GPU's memory fill up under load before the collector ran. So every device tensor is
// reference counted, and freed (under the device lock, in one batch per tick) as soon as its last
// holder lets go:
// - a session run's outputs belong to whoever called the run (one reference each);
// - a KvState (batch-cache.ts) holds its self- and cross-attention tensors, which several states
//   may share (cross K/V pass from step to step), and is itself held by the ScheduledCaches that
//   name its rows; a RowSelection (cache-rows.ts) holds the cache it selects from;
// - an encoder output or a cache handed to a caller is held until the caller's `finish`.
// The garbage collector stays as a safety net for a holder that never lets go (a bug, or a caller
// that does not call finish); what it had to free is counted, and is 0 in normal work.
import type ort from 'onnxruntime-node';
import type { DeviceLock } from './device-lock.ts';

type Tensor = ort.Tensor;

/** The device tensors of one model, as an operator or a test reads them. */
export interface DeviceTensorStats {
  /** Tensors on the device not yet freed. */
  live: number;
  /** Their bytes. */
  bytes: number;
  /** Tensors freed by the garbage-collection safety net rather than by their last holder (should stay 0). */
  gcFreed: number;
}

export const NO_DEVICE_TENSORS: DeviceTensorStats = Object.freeze({ live: 0, bytes: 0, gcFreed: 0 });

interface Entry {
  refs: number;
  readonly bytes: number;
  readonly dispose: () => void;
  readonly owner: DeviceRefs;
}

/** Every counted tensor's entry (weakly: the safety net must still see the tensor go unreachable). */
const entries = new WeakMap<Tensor, Entry>();
const collected = new FinalizationRegistry<Entry>((e) => e.owner.collected(e));

/** The counted device tensors of one model, and the freeing of them. */
export class DeviceRefs {
  private readonly live = new Set<Entry>();
  private bytes = 0;
  private gcFreed = 0;
  /** Disposers due, run together under the lock. */
  private due: (() => void)[] = [];
  private flushing: Promise<void> | null = null;

  constructor(private readonly lock: DeviceLock) {}

  /** Counts `t` (a run's output, on the device) with one reference, its caller's. */
  own(t: Tensor, bytes: number, dispose: () => void): void {
    if (entries.has(t)) return;
    const e: Entry = { refs: 1, bytes, dispose, owner: this };
    entries.set(t, e);
    this.live.add(e);
    this.bytes += bytes;
    collected.register(t, e, e);
  }

  stats(): DeviceTensorStats {
    return { live: this.live.size, bytes: this.bytes, gcFreed: this.gcFreed };
  }

  /** The garbage collector found `e`'s tensor unreachable while still counted: the safety net. */
  collected(e: Entry): void {
    if (!this.live.has(e)) return;
    this.gcFreed++;
    this.free(e);
  }

  /** Frees `e`'s buffer at the next flush. */
  free(e: Entry): void {
    if (!this.live.delete(e)) return;
    e.refs = 0;
    collected.unregister(e);
    this.bytes -= e.bytes;
    this.due.push(e.dispose);
    this.flush();
  }

  /** Runs the due disposers under the lock, soon (one lock turn for all of one tick's frees). */
  private flush(): void {
    this.flushing ??= Promise.resolve()
      .then(() =>
        this.lock.run(async () => {
          for (const dispose of this.due.splice(0)) {
            try {
              dispose();
            } catch {
              // A buffer that will not free cannot be helped here; the others still go.
            }
          }
        }),
      )
      .catch(() => {})
      .finally(() => {
        this.flushing = null;
        if (this.due.length > 0) this.flush();
      });
  }

  /**
   * Frees every counted tensor still alive, and waits for the frees: before the sessions are
   * released, because a buffer freed after the session whose provider allocated it crashes the process.
   */
  async disposeAll(): Promise<void> {
    for (const e of [...this.live]) this.free(e);
    while (this.flushing) await this.flushing;
  }
}

/** One more holder of each counted tensor of `ts` (host and uncounted tensors pass). */
export function retainTensors(ts: Iterable<Tensor>): void {
  for (const t of ts) {
    const e = entries.get(t);
    if (!e) continue;
    if (e.refs === 0) throw new Error('a device tensor was used after it was freed');
    e.refs++;
  }
}

/** One holder fewer of each counted tensor of `ts`; the last one's leaving frees it. */
export function releaseTensors(ts: Iterable<Tensor>): void {
  for (const t of ts) {
    const e = entries.get(t);
    if (e && e.refs > 0 && --e.refs === 0) e.owner.free(e);
  }
}

/** `gather(list)` for each list; if one fails, the others' tensors are let go before it throws. */
export async function gatherEach<R>(gather: (list: R) => Promise<Tensor>, lists: readonly R[]): Promise<Tensor[]> {
  const all = await Promise.allSettled(lists.map((list) => gather(list)));
  const done = all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = all.find((r) => r.status === 'rejected');
  if (failed) {
    releaseTensors(done);
    throw failed.reason;
  }
  return done;
}
