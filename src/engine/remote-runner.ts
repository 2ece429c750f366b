// The model, off the main thread. onnxruntime-node's `session.run` blocks the event loop for the
// whole run (hundreds of ms per encoder run on the CPU, seconds with large models), which would
// stall /health, /metrics, stream partials and every other request while anything decodes. So each
// loaded model runs in its own worker thread (model-worker.ts) with its BatchScheduler, and this
// `RemoteRunner` is what the main thread calls: the same ModelRunner interface, forwarded as
// messages. Encoder outputs and KV caches never cross the thread: callers hold opaque handles, and
// a FinalizationRegistry tells the worker when a handle is garbage collected.
import './telemetry-off.ts'; // first: set in this thread, so that the model worker inherits it
import { Worker } from 'node:worker_threads';
import { EarshotError, isEarshotError } from '../errors.ts';
import { workerBoot } from '../worker-boot.ts';
import { deviceLock } from './device-lock.ts';
import { chooseDevice, type DeviceChoice, type EngineOptions } from './execution.ts';
import type {
  JobFields,
  ModelBoot,
  ModelNotice,
  ModelOp,
  ModelReplies,
  ModelReply,
  ModelRequests,
  ModelWorkerInit,
  WireError,
  WorkerStats,
} from './model-worker.ts';
import type { BatchObserver, SchedulerOptions } from './scheduler.ts';
import type { CacheHandle, CrossAttentions, DecodeOptions, EncodedAudio, ModelFiles, ModelRunner, RunnerOutput } from './model-types.ts';
import type { WhisperDims } from './model-dims.ts';

export type { WorkerStats } from './model-worker.ts';

export interface RemoteRunnerOptions {
  dir: string;
  files: ModelFiles;
  engine: EngineOptions;
  scheduler?: SchedulerOptions;
}

/** An encoder output kept in the worker. */
class RemoteEncoded implements EncodedAudio {
  constructor(
    readonly owner: RemoteRunner,
    readonly id: number,
    readonly dims: readonly number[],
  ) {}
}

/** A decoder cache kept in the worker. */
class RemoteCache implements CacheHandle {
  constructor(
    readonly owner: RemoteRunner,
    readonly id: number,
    readonly batch: number,
    readonly length: number,
  ) {}
}

/** Rebuilds an error sent by the worker: typed errors stay typed. */
export function fromWire(e: WireError): Error {
  if (e.kind !== undefined && e.code !== undefined) return new EarshotError(e.kind, e.code, e.message);
  const err = e.name === 'RangeError' ? new RangeError(e.message) : new Error(e.message);
  return err;
}

function released(): EarshotError {
  return new EarshotError('not_ready', 'model_released', 'the model was unloaded');
}

function bad(message: string): EarshotError {
  return new EarshotError('invalid_argument', 'bad_model_call', message);
}

interface Waiting {
  resolve: (v: never) => void;
  reject: (e: unknown) => void;
}

export class RemoteRunner implements ModelRunner {
  readonly dims: WhisperDims;
  /** The scheduler's most decoder rows per run (how many jobs can usefully run at once). */
  readonly maxBatch: number;
  readonly maxEncodeBatch: number;
  /** The device the model runs on, and why (chosen here, before the worker starts). */
  readonly device: DeviceChoice;
  private readonly worker: Worker;
  private nextCall = 0;
  private nextHandle = 0;
  private readonly waiting = new Map<number, Waiting>();
  private freed: number[] = [];
  private readonly handles = new FinalizationRegistry<number>((id) => this.freeLater(id));
  private failure: EarshotError | null = null;
  private released = false;
  private readonly failureListeners: ((e: EarshotError) => void)[] = [];
  private readonly batchObservers = new Set<BatchObserver>();

  private constructor(worker: Worker, boot: Extract<ModelBoot, { ok: true }>, device: DeviceChoice) {
    this.worker = worker;
    this.device = device;
    this.dims = boot.dims;
    this.maxBatch = boot.maxBatch;
    this.maxEncodeBatch = boot.maxEncodeBatch;
    worker.on('message', (m: ModelReply | ModelNotice) => ('observed' in m ? this.observed(m) : this.settle(m)));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => {
      if (this.released) this.rejectAll(released());
      else this.fail(new Error(`exit code ${code}`));
    });
    worker.unref(); // an idle model never keeps the process alive
  }

  /** Starts the worker and loads the model there; resolves once it can take calls. */
  static start(opts: RemoteRunnerOptions): Promise<RemoteRunner> {
    // The device is chosen on this thread (probing for WebGPU takes a child process and a second,
    // once per process); the worker gets the device itself and asks nothing again.
    let device: DeviceChoice;
    try {
      device = chooseDevice(opts.engine.device);
    } catch (e) {
      return Promise.reject(e);
    }
    const init: ModelWorkerInit = {
      dir: opts.dir,
      files: opts.files,
      engine: { ...opts.engine, device: device.device },
      scheduler: opts.scheduler ?? {},
      deviceLock: deviceLock().buffer,
    };
    const worker = new Worker(workerBoot(new URL('./model-worker.ts', import.meta.url)), { eval: true, workerData: init });
    return new Promise<RemoteRunner>((resolve, reject) => {
      const onBoot = (m: ModelBoot) => {
        if (!m || m.boot !== true) return;
        worker.off('message', onBoot);
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (m.ok) {
          resolve(new RemoteRunner(worker, m, device));
        } else {
          reject(fromWire(m.error));
          void worker.terminate();
        }
      };
      const onError = (e: unknown) => {
        reject(new EarshotError('internal', 'model_worker_failed', `the model worker failed to start: ${(e as Error)?.message ?? e}`, { cause: e }));
        void worker.terminate();
      };
      const onExit = (code: number) => reject(new EarshotError('internal', 'model_worker_failed', `the model worker exited while loading (code ${code})`));
      worker.on('message', onBoot);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  /** Runs the encoder on `batch` windows laid out [batch, nMels, frames]; the output stays in the worker. */
  encode(features: Float32Array, batch: number, job: Job = {}): Promise<EncodedAudio> {
    const handle = this.nextHandle++;
    // Copied, not transferred: callers reuse their feature buffers from window to window.
    return this.call('encode', { features, batch, handle, ...jobFields(job) }, job.signal).then((r) => this.track(new RemoteEncoded(this, handle, r.dims)));
  }

  /** One decoder call (see WhisperModel.decode), batched in the worker with other callers' calls. */
  decode(
    tokens: BigInt64Array,
    batch: number,
    encoded: EncodedAudio,
    cache: CacheHandle | null,
    opts: DecodeOptions & Job = {},
  ): Promise<RunnerOutput> {
    if (!(encoded instanceof RemoteEncoded) || encoded.owner !== this) {
      return Promise.reject(bad('the encoder output was not made by this model'));
    }
    if (cache !== null && !(cache instanceof RemoteCache && cache.owner === this)) {
      return Promise.reject(bad('the decoder cache was not made by this model'));
    }
    const handle = this.nextHandle++;
    const req: ModelRequests['decode'] = { tokens, batch, encoded: encoded.id, cache: cache?.id ?? null, handle };
    if (opts.alsoPosition !== undefined) req.alsoPosition = opts.alsoPosition;
    if (opts.greedy !== undefined) req.greedy = [...opts.greedy];
    Object.assign(req, jobFields(opts));
    // The caller's handles must outlive the call: the worker reads what they name.
    return this.call('decode', req, opts.signal).then((r) => {
      keepAlive(encoded, cache);
      const out: RunnerOutput = { logits: r.logits, cache: this.track(new RemoteCache(this, handle, r.batch, r.length)) };
      if (r.positionLogits) out.positionLogits = r.positionLogits;
      if (r.picks) out.picks = r.picks;
      return out;
    });
  }

  /** The rows `rows` of `cache`, in that order. Synchronous: the worker applies it before the next call. */
  selectRows(cache: CacheHandle, rows: readonly number[]): CacheHandle {
    if (!(cache instanceof RemoteCache && cache.owner === this)) throw bad('the decoder cache was not made by this model');
    for (const r of rows) {
      if (!(Number.isInteger(r) && r >= 0 && r < cache.batch)) throw new RangeError(`cache row ${r} out of range 0..${cache.batch - 1}`);
    }
    const handle = this.nextHandle++;
    this.post('select', { from: cache.id, rows: [...rows], handle });
    return this.track(new RemoteCache(this, handle, rows.length, cache.length));
  }

  /** The caller is done with `handle`: the worker frees it now (and its scheduler stops waiting for the caller). */
  finish(handle: CacheHandle | EncodedAudio): void {
    if (!((handle instanceof RemoteCache || handle instanceof RemoteEncoded) && handle.owner === this)) return;
    if (!this.handles.unregister(handle)) return; // already finished
    this.post('free', { handles: [handle.id] });
  }

  /** Word timing's teacher-forced run (see WhisperModel.crossAttentions), in the worker. */
  crossAttentions(
    tokens: readonly number[],
    encoded: EncodedAudio,
    heads: readonly (readonly [number, number])[],
    from?: number,
  ): Promise<CrossAttentions> {
    if (!(encoded instanceof RemoteEncoded) || encoded.owner !== this) {
      return Promise.reject(bad('the encoder output was not made by this model'));
    }
    const req: ModelRequests['crossAttentions'] = { tokens: [...tokens], encoded: encoded.id, heads: heads.map(([l, h]) => [l, h]) };
    if (from !== undefined) req.from = from;
    return this.call('crossAttentions', req).then((r) => {
      keepAlive(encoded);
      return r;
    });
  }

  /**
   * A runner whose every call carries `priority` (how a stream asks to go first) and what the work
   * queue says of the job (its place, its withdrawal: see scheduler.ts's CallOptions).
   */
  withPriority(priority: number, job: Omit<Job, 'priority'> = {}): ModelRunner {
    const o: Job = { ...job, priority };
    return {
      dims: this.dims,
      encode: (features, batch) => this.encode(features, batch, o),
      decode: (tokens, batch, encoded, cache, opts = {}) => this.decode(tokens, batch, encoded, cache, { ...opts, ...o }),
      selectRows: (cache, rows) => this.selectRows(cache, rows),
      finish: (handle) => this.finish(handle),
      crossAttentions: (tokens, encoded, heads, from) => this.crossAttentions(tokens, encoded, heads, from),
    };
  }

  /** The worker's scheduler counters and how many handles it keeps. */
  stats(): Promise<WorkerStats> {
    return this.call('stats', {});
  }

  /**
   * Calls `observer` after each batched run of the worker's scheduler (kind, rows, waits, run time:
   * batch-execution.ts's BatchRun), before that run's results arrive. Returns the unsubscribe.
   */
  onBatch(observer: BatchObserver): () => void {
    this.batchObservers.add(observer);
    return () => this.batchObservers.delete(observer);
  }

  /** Why the worker stopped, once it has (every call then rejects with it). */
  get failed(): EarshotError | null {
    return this.failure;
  }

  /** Calls `listener` once if the worker dies (not on `release`). */
  onFailure(listener: (e: EarshotError) => void): void {
    if (this.failure) listener(this.failure);
    else this.failureListeners.push(listener);
  }

  /**
   * Closes the sessions and stops the worker. New calls are refused at once; calls already sent
   * finish first (the worker must not stop during a run: see model-worker.ts).
   */
  async release(): Promise<void> {
    if (this.released) return;
    if (!this.failure) {
      const done = this.call('release', {}).catch(() => undefined);
      this.released = true;
      await done;
    }
    this.released = true;
    await this.worker.terminate();
  }

  /**
   * Sends a call and waits for its reply. With `signal`, a withdrawal is passed on to the worker,
   * which drops the call if it has not run yet; it then rejects with the signal's reason, as the
   * job's own check of its signal would.
   */
  private call<K extends ModelOp>(op: K, req: ModelRequests[K], signal?: AbortSignal): Promise<ModelReplies[K]> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.released) return Promise.reject(released());
    if (signal?.aborted) return Promise.reject(signal.reason);
    const call = this.nextCall++;
    const sent = new Promise<ModelReplies[K]>((resolve, reject) => {
      this.waiting.set(call, { resolve: resolve as (v: never) => void, reject });
      if (this.waiting.size === 1) this.worker.ref();
      this.worker.postMessage({ op, call, ...req, ...(signal ? { cancellable: true } : {}) });
    });
    if (!signal) return sent;
    const withdraw = () => this.post('cancel', { target: call });
    signal.addEventListener('abort', withdraw, { once: true });
    return sent.then(
      (v) => {
        signal.removeEventListener('abort', withdraw);
        return v;
      },
      (e: unknown) => {
        signal.removeEventListener('abort', withdraw);
        throw isEarshotError(e) && e.code === 'call_cancelled' && signal.aborted ? signal.reason : e;
      },
    );
  }

  /** A message with no reply. */
  private post<K extends ModelOp>(op: K, req: ModelRequests[K]): void {
    if (this.failure || this.released) return;
    this.worker.postMessage({ op, ...req });
  }

  private observed(m: ModelNotice): void {
    for (const o of this.batchObservers) {
      try {
        o(m.observed);
      } catch {
        // An observer's failure is its own.
      }
    }
  }

  private settle(m: ModelReply): void {
    const w = this.waiting.get(m.call);
    if (!w) return;
    this.waiting.delete(m.call);
    if (this.waiting.size === 0) this.worker.unref();
    if (m.ok) w.resolve(m.value as never);
    else w.reject(fromWire(m.error));
  }

  private track<T extends RemoteEncoded | RemoteCache>(h: T): T {
    this.handles.register(h, h.id, h);
    return h;
  }

  /** Handles collected in one GC pass go to the worker in one message. */
  private freeLater(id: number): void {
    this.freed.push(id);
    if (this.freed.length > 1) return;
    queueMicrotask(() => {
      const handles = this.freed;
      this.freed = [];
      this.post('free', { handles });
    });
  }

  private fail(e: unknown): void {
    if (this.released || this.failure) return;
    this.failure = new EarshotError('internal', 'model_worker_failed', `the model worker stopped: ${(e as Error)?.message ?? e}`, { cause: e });
    this.rejectAll(this.failure);
    for (const l of this.failureListeners.splice(0)) l(this.failure);
  }

  private rejectAll(e: EarshotError): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    this.worker.unref();
  }
}

/** What a call carries of its job (scheduler.ts's CallOptions); the signal stays on this side. */
export interface Job {
  priority?: number;
  order?: number;
  signal?: AbortSignal;
}

function jobFields({ priority, order, signal }: Job): JobFields {
  void signal; // call() passes it on as `cancellable`
  return { ...(priority === undefined ? {} : { priority }), ...(order === undefined ? {} : { order }) };
}

/** Keeps `values` reachable up to this point (their ids are in flight to the worker until then). */
function keepAlive(...values: unknown[]): void {
  void values;
}
