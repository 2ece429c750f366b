// KV-cache bookkeeping for the batching scheduler. One decoder run leaves a `KvState`: the present
// tensors of all its rows (a cohort: every row has the same cache length). A caller holds a
// `ScheduledCache`, which names rows of a state instead of owning tensors, so beam reordering
// (`selectRows`) costs nothing until the next run, and a cohort whose rows come back unchanged feeds
// the previous present tensors straight back. Rows are copied only when a run's membership or row
// order differs from the state it reads; cross-attention rows (1500 frames each, the big ones) are
// kept as they are whenever the new layout needs the same encoder rows in the same order, which is
// what beam reordering within one window gives (every beam of a window reads the same audio).
//
// Ownership (device-refs.ts): a KvState holds a reference on each of its tensors (cross tensors
// are often shared by several states); the ScheduledCaches naming its rows hold the state, and the
// last one's `release` frees what only it held. The model worker releases a cache when its caller
// finishes it (model-worker.ts); the batch execution releases its own temporaries.
import './telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import type ort from 'onnxruntime-node';
import { gatherEach, releaseTensors, retainTensors } from './device-refs.ts';
import { RowSelection } from './cache-rows.ts';
import { gatherHostRows, type RowOf } from './device-tensors.ts';
import type { DecoderCache } from './model-types.ts';

type Tensor = ort.Tensor;

let nextOrigin = 0;
let nextState = 0;

/** A fresh id for a row whose cross-attention K/V come from its own encoder output. */
export function newOrigin(): number {
  return nextOrigin++;
}

/** The caches of every row of one decoder run. Never mutated once built. */
export class KvState {
  readonly id = nextState++;
  /** ScheduledCaches (and calls in flight) holding this state. */
  private holders = 0;
  private released = false;
  constructor(
    /** Tokens in the self-attention cache of every row. */
    readonly length: number,
    /** [k0, v0, k1, v1, ...] of the self-attention, batch = origins.length. */
    readonly self: readonly Tensor[],
    /** Same for the cross-attention. */
    readonly cross: readonly Tensor[],
    /** Per row: which encoder output its cross-attention K/V were computed from. */
    readonly origins: readonly number[],
  ) {
    retainTensors([...self, ...cross]);
  }

  get batch(): number {
    return this.origins.length;
  }

  /** One more holder. A state whose holders all left is gone: holding it again is a bug. */
  hold(): void {
    if (this.released) throw new Error('a decoder cache was used after it was released');
    this.holders++;
  }

  /** One holder fewer; the last one's leaving lets go of the tensors. */
  drop(): void {
    if (this.holders === 0 || --this.holders > 0) return;
    this.released = true;
    releaseTensors([...this.self, ...this.cross]);
  }
}

/** Marks a result handed to a caller, so the scheduler knows when that caller is back. */
export interface Ticket {
  /** The caller came back (made its next call) or finished. */
  done: boolean;
  /** The group its next call will join (see scheduler.ts). */
  group: string;
  /** The priority of the call it answered (its next call's, too). */
  priority: number;
  /** When the result was handed out (performance.now()). */
  handedOut: number;
}

/**
 * The decoder cache a scheduler caller holds: rows `rows` of `state`, in that order. It satisfies
 * `DecoderCache`; reading `self` or `cross` (which only code outside the scheduler does) copies the
 * rows out.
 */
export class ScheduledCache implements DecoderCache {
  private held = true;
  constructor(
    readonly state: KvState,
    readonly rows: readonly number[],
    /** The delivery this cache descends from (null for caches built from a foreign DecoderCache). */
    readonly ticket: Ticket | null,
    /** Priority inherited by calls on this cache that give none. */
    readonly priority: number,
  ) {
    state.hold();
  }

  /** Lets go of the state (once; later calls do nothing). */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.state.drop();
  }

  get batch(): number {
    return this.rows.length;
  }

  get length(): number {
    return this.state.length;
  }

  get self(): Tensor[] {
    return this.state.self.map((t) => gatherHostRows(this.rows.map((row) => ({ tensor: t, row }))));
  }

  get cross(): Tensor[] {
    return this.state.cross.map((t) => gatherHostRows(this.rows.map((row) => ({ tensor: t, row }))));
  }
}

/**
 * Holds what `handle` (an encoder output, or a decoder cache) names for a call in flight, so that
 * its caller finishing it meanwhile frees nothing the call still reads; returns the letting go.
 */
export function holdHandle(handle: Tensor | DecoderCache): () => void {
  if (handle instanceof ScheduledCache) {
    handle.state.hold();
    return () => handle.state.drop();
  }
  const cache = handle instanceof RowSelection ? handle.from : handle;
  const tensors = 'location' in cache ? [cache] : [...cache.self, ...cache.cross];
  retainTensors(tensors);
  return () => releaseTensors(tensors);
}

/** One row of some [batch, heads, len, headDim] tensor. */
export type RowRef = RowOf;

/**
 * Gathers rows wherever their sources live (the model's gatherRows: on the device when they are
 * kept there, see device-tensors.ts); the host copy for models that keep nothing on a device.
 */
export type Gather = (rows: readonly RowRef[]) => Promise<Tensor>;
export const hostGather: Gather = async (rows) => gatherHostRows(rows);

/** One row of a run's input: row `row` of `state`. */
export interface StateRow {
  state: KvState;
  row: number;
}

export interface AssembledCache {
  cache: DecoderCache;
  origins: number[];
  /** Whether the self-attention / cross-attention tensors had to be copied for this layout. */
  selfCopied: boolean;
  crossCopied: boolean;
  /** The copies: the caller's to release once the run has read them (device-refs.ts). */
  copies: Tensor[];
}

/**
 * The cache to feed for a run whose row i is `layout[i]`: the state's own tensors when the layout
 * is exactly its rows in order, otherwise gathered copies (cross-attention reused from any input
 * state that already holds the needed encoder rows in the needed order).
 */
export async function assembleCache(layout: readonly StateRow[], gather: Gather = hostGather): Promise<AssembledCache> {
  const first = layout[0]!.state;
  const origins = layout.map(({ state, row }) => state.origins[row]!);
  const identity = layout.length === first.batch && layout.every(({ state, row }, i) => state === first && row === i);
  if (identity) {
    return {
      cache: { batch: first.batch, length: first.length, self: [...first.self], cross: [...first.cross] },
      origins,
      selfCopied: false,
      crossCopied: false,
      copies: [],
    };
  }
  const self = await gatherEach(gather, first.self.map((_, i) => layout.map(({ state, row }) => ({ tensor: state.self[i]!, row }))));
  const states = new Set(layout.map((r) => r.state));
  const sameOrigins = [...states].find((s) => s.batch === origins.length && s.origins.every((o, i) => o === origins[i]));
  let cross: Tensor[];
  try {
    cross = sameOrigins ? [...sameOrigins.cross] : await gatherEach(gather, first.cross.map((_, i) => layout.map(({ state, row }) => ({ tensor: state.cross[i]!, row }))));
  } catch (e) {
    releaseTensors(self);
    throw e;
  }
  return {
    cache: { batch: layout.length, length: first.length, self, cross },
    origins,
    selfCopied: true,
    crossCopied: !sameOrigins,
    copies: sameOrigins ? self : [...self, ...cross],
  };
}
