// Worker-thread side of remote-runner.ts: one loaded WhisperModel and the BatchScheduler in front
// of it live here, so onnxruntime's blocking `session.run` never stalls the main event loop. Encoder
// outputs and decoder caches stay in this thread, in a registry keyed by ids the main thread picks;
// only features and tokens come in, and logits go out (transferred, not copied). The registry
// holds what it keeps: a `free` (the caller's finish, or its handle collected on the main thread)
// lets go of it, and on WebGPU the last holder's letting go frees the device buffers (device-refs.ts).
import './telemetry-off.ts'; // first: checks this worker inherited onnxruntime's telemetry off
import { parentPort, workerData } from 'node:worker_threads';
import type ort from 'onnxruntime-node';
import { type ErrorKind, isEarshotError } from '../errors.ts';
import { holdHandle } from './batch-cache.ts';
import { releaseHandle } from './cache-rows.ts';
import { adoptDeviceLock } from './device-lock.ts';
import type { DeviceTensorStats } from './device-refs.ts';
import type { EngineOptions } from './execution.ts';
import type { LogitMask, Pick } from './greedy-pick.ts';
import { type BatchRun, BatchScheduler, type CallOptions, type SchedulerOptions, type SchedulerStats } from './scheduler.ts';
import { WhisperModel } from './whisper-model.ts';
import type { CrossAttentions, DecoderCache, ModelFiles } from './model-types.ts';
import { type WhisperDims } from './model-dims.ts';

export interface ModelWorkerInit {
  dir: string;
  files: ModelFiles;
  engine: EngineOptions;
  scheduler: SchedulerOptions;
  /** The process's WebGPU lock (device-lock.ts), shared with every other model worker. */
  deviceLock: SharedArrayBuffer;
}

/** An error as plain data; typed ones keep their kind and code. */
export interface WireError {
  kind?: ErrorKind;
  code?: string;
  name?: string;
  message: string;
}

/**
 * Requests, by op. `call` is the id of the reply the main thread waits for (absent for ops that get
 * none); `handle` is the id under which the worker keeps what the op produced.
 */
export interface ModelRequests {
  encode: { features: Float32Array; batch: number; handle: number } & JobFields;
  decode: {
    tokens: BigInt64Array;
    batch: number;
    encoded: number;
    cache: number | null;
    alsoPosition?: number;
    greedy?: (LogitMask | null)[];
    handle: number;
  } & JobFields;
  select: { from: number; rows: number[]; handle: number };
  crossAttentions: { tokens: number[]; encoded: number; heads: [number, number][]; from?: number };
  free: { handles: number[] };
  /** The job of call `target` was withdrawn: the call is dropped if it has not run yet. */
  cancel: { target: number };
  stats: Record<string, never>;
  release: Record<string, never>;
}

/** What a model call says of its job (scheduler.ts's CallOptions): `cancellable` calls may be withdrawn by a `cancel`. */
export interface JobFields {
  priority?: number;
  order?: number;
  cancellable?: boolean;
}

/** Replies, by op (ops with no reply map to never). */
export interface ModelReplies {
  encode: { dims: number[] };
  decode: { logits: Float32Array; positionLogits?: Float32Array; picks?: (Pick | null)[]; batch: number; length: number };
  select: never;
  crossAttentions: CrossAttentions;
  free: never;
  cancel: never;
  stats: WorkerStats;
  release: null;
}

export type ModelOp = keyof ModelRequests;
export type ModelRequest = { [K in ModelOp]: { op: K; call?: number } & ModelRequests[K] }[ModelOp];

export type ModelReply = { call: number; ok: true; value: unknown } | { call: number; ok: false; error: WireError };

/** Sent unasked after each batched run, before that run's replies (for the main thread's metrics). */
export interface ModelNotice {
  observed: BatchRun;
}

export type ModelBoot =
  | { boot: true; ok: true; dims: WhisperDims; maxBatch: number; maxEncodeBatch: number }
  | { boot: true; ok: false; error: WireError };

export interface WorkerStats extends SchedulerStats {
  /** Encoder outputs and caches the worker keeps for the main thread. */
  handles: number;
  /** The tensors the model keeps on the device (zeros elsewhere). */
  deviceTensors: DeviceTensorStats;
}

export function toWire(error: unknown): WireError {
  const e = error as Error;
  if (isEarshotError(e)) return { kind: e.kind, code: e.code, message: e.message };
  return { name: e?.name, message: String(e?.message ?? e) };
}

type Stored = ort.Tensor | DecoderCache;

/** What each op does; an op that needs no reply returns undefined. Adding a model method is one entry here. */
type Handlers = {
  [K in ModelOp]: (req: ModelRequests[K], signal?: AbortSignal) => Promise<{ value: ModelReplies[K]; transfer?: ArrayBuffer[] }> | undefined;
};

/** A call's job fields as the scheduler's call options. */
function jobOptions({ priority, order }: JobFields, signal?: AbortSignal): CallOptions {
  return { ...(priority === undefined ? {} : { priority }), ...(order === undefined ? {} : { order }), ...(signal ? { signal } : {}) };
}

function handlers(sched: BatchScheduler, registry: Map<number, Stored>, model: { deviceTensors(): DeviceTensorStats }): Handlers {
  const take = <T extends Stored>(id: number, what: string): T => {
    const v = registry.get(id);
    if (!v) throw new Error(`the ${what} handle ${id} is unknown to the model worker (freed, or its call failed)`);
    return v as T;
  };
  return {
    encode: async (req, signal) => {
      const { features, batch, handle } = req;
      const t = await sched.encode(features, batch, jobOptions(req, signal));
      registry.set(handle, t);
      return { value: { dims: [...t.dims] } };
    },
    decode: async (req, signal) => {
      const { tokens, batch, encoded, cache, alsoPosition, greedy, handle } = req;
      const opts = {
        ...(alsoPosition === undefined ? {} : { alsoPosition }),
        ...(greedy === undefined ? {} : { greedy }),
        ...jobOptions(req, signal),
      };
      const enc = cache === null ? take<ort.Tensor>(encoded, 'encoder output') : undefined;
      const from = cache === null ? null : take<DecoderCache>(cache, 'cache');
      // Step calls never read the encoder output (the cache holds the cross-attention K/V), so a
      // freed one is no error there. What the call reads is held until it is done, should its
      // handle be freed meanwhile.
      const letGo = holdHandle((from ?? enc)!);
      const out = await sched
        .decode(tokens, batch, enc ?? (registry.get(encoded) as ort.Tensor | undefined) ?? placeholder(batch), from, opts)
        .finally(letGo);
      registry.set(handle, out.cache);
      const logits = own(out.logits);
      const positionLogits = out.positionLogits && own(out.positionLogits);
      const transfer = [logits, ...(positionLogits ? [positionLogits] : [])].filter((a) => a.length > 0).map((a) => a.buffer as ArrayBuffer);
      return { value: { logits, positionLogits, picks: out.picks, batch: out.cache.batch, length: out.cache.length }, transfer };
    },
    select: ({ from, rows, handle }) => {
      // Rows were checked on the main thread; a missing source makes the next decode on it fail.
      const src = registry.get(from) as DecoderCache | undefined;
      if (src) registry.set(handle, sched.selectRows(src, rows));
      return undefined;
    },
    crossAttentions: async ({ tokens, encoded, heads, from }) => {
      const enc = take<ort.Tensor>(encoded, 'encoder output');
      const letGo = holdHandle(enc);
      const value = await sched.crossAttentions(tokens, enc, heads, from).finally(letGo);
      return { value, transfer: value.weights.map((w) => own(w).buffer as ArrayBuffer) };
    },
    free: ({ handles }) => {
      for (const h of handles) {
        const stored = registry.get(h);
        if (stored) {
          sched.finish(stored);
          releaseHandle(stored);
        }
        registry.delete(h);
      }
      return undefined;
    },
    cancel: () => undefined, // handled where calls are received (main below): it names a call, not a handle
    stats: async () => ({ value: { ...sched.stats(), handles: registry.size, deviceTensors: model.deviceTensors() } }),
    release: async () => ({ value: null }),
  };
}

/** A stand-in encoder output for a step call whose own was freed: the scheduler checks only shapes there. */
function placeholder(batch: number): ort.Tensor {
  return { dims: [batch, 0, 0] } as unknown as ort.Tensor;
}

/** `a` in an ArrayBuffer of its own, so it can be transferred without taking anything else along. */
function own(a: Float32Array): Float32Array {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice();
}

async function main(): Promise<void> {
  const port = parentPort!;
  const init = workerData as ModelWorkerInit;
  adoptDeviceLock(init.deviceLock);
  let model: WhisperModel;
  let sched: BatchScheduler;
  try {
    model = await WhisperModel.load(init.dir, init.files, init.engine);
    sched = new BatchScheduler(model, init.scheduler, { observer: (run) => port.postMessage({ observed: run } satisfies ModelNotice) });
  } catch (e) {
    port.postMessage({ boot: true, ok: false, error: toWire(e) } satisfies ModelBoot);
    return;
  }
  const registry = new Map<number, Stored>();
  const ops = handlers(sched, registry, model);
  ops.release = async () => {
    // Closing a session under a run (or ending the thread during one) aborts the whole process in
    // onnxruntime's native code: let the scheduler finish what it has first.
    while (sched.stats().running || sched.stats().pending > 0) await new Promise((r) => setTimeout(r, 5));
    registry.clear();
    await model.release();
    return { value: null };
  };
  /** The withdrawal of each cancellable call not yet answered, by call id. */
  const withdrawals = new Map<number, AbortController>();
  port.on('message', (req: ModelRequest) => {
    const { op, call } = req;
    if (req.op === 'cancel') {
      withdrawals.get(req.target)?.abort();
      return;
    }
    let withdrawal: AbortController | undefined;
    if (call !== undefined && (req.op === 'encode' || req.op === 'decode') && req.cancellable) {
      withdrawal = new AbortController();
      withdrawals.set(call, withdrawal);
    }
    let pending: ReturnType<Handlers[ModelOp]>;
    try {
      pending = (ops[op] as (r: ModelRequest, signal?: AbortSignal) => ReturnType<Handlers[ModelOp]>)(req, withdrawal?.signal);
    } catch (e) {
      if (call !== undefined) withdrawals.delete(call);
      if (call !== undefined) port.postMessage({ call, ok: false, error: toWire(e) } satisfies ModelReply);
      return;
    }
    if (!pending || call === undefined) return;
    if (withdrawal) void pending.finally(() => withdrawals.delete(call)).catch(() => undefined);
    pending.then(
      ({ value, transfer }) => {
        try {
          port.postMessage({ call, ok: true, value } satisfies ModelReply, transfer ?? []);
        } catch {
          // A buffer onnxruntime owns cannot be transferred: send a copy.
          port.postMessage({ call, ok: true, value } satisfies ModelReply);
        }
      },
      (e) => port.postMessage({ call, ok: false, error: toWire(e) } satisfies ModelReply),
    );
  });
  port.postMessage({ boot: true, ok: true, dims: model.dims, maxBatch: sched.maxBatch, maxEncodeBatch: sched.maxEncodeBatch } satisfies ModelBoot);
}

void main();
