// The batching scheduler: stands in front of one WhisperModel as its `ModelRunner`, so that many
// decodeWindow loops (several requests, several windows, every beam) share batched model runs while
// each keeps its own options and its own loop. Hand-written: it is the product's core.
//
// This file holds the waiting calls and the run loop: one model run at a time (parallel runs would
// only fight over the cores); calls arriving while the model is busy wait for the next run. What
// runs next is the dispatch policy's decision (batch-policy.ts: cohorts, priorities, waiting for
// company); running the chosen calls as one batch is batch-execution.ts's job. Calls are grouped
// by kind and shape: encoder calls by frame count, prompt calls (no cache) by prompt length and the
// position whose logits they also want, step calls by cache length.
import './telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import ort from 'onnxruntime-node';
import { EarshotError } from '../errors.ts';
import { KvState, newOrigin, ScheduledCache, type Ticket } from './batch-cache.ts';
import { type Call, type EncodeCall, PROMPT_GROUP, type PromptCall, type StepCall, stepGroup } from './batch-calls.ts';
import { type BatchableModel, BatchExecution, type BatchObserver, type ExecutionCounters, range } from './batch-execution.ts';
import { deviceBatchLimits, DispatchPolicy } from './batch-policy.ts';
import type { CrossAttentions, DecodeOptions, DecodeOutput, DecoderCache, ModelRunner } from './model-types.ts';
import type { WhisperDims } from './model-dims.ts';

type Tensor = ort.Tensor;

export type { BatchableModel, BatchObserver, BatchRun } from './batch-execution.ts';

export interface SchedulerOptions {
  /** Most decoder rows in one run (default: the CPU's, batch-policy.ts's deviceBatchLimits). 1 turns batching off. */
  maxBatch?: number;
  /** Most windows in one encoder run (default: the CPU's, 1). */
  maxEncodeBatch?: number;
  /** Longest a call waits for others to join while the model is idle, in ms (default 3). */
  maxWaitMs?: number;
  /** Longest a group waits for the callers of the last run that fed it to come back, in ms (default 200). */
  maxCohortWaitMs?: number;
}

/** What the scheduler is built with besides its options (not plain data: it stays in the model's thread). */
export interface SchedulerHooks {
  /** Told of every batched run (batch-execution.ts). */
  observer?: BatchObserver;
}

export interface CallOptions {
  /** Higher runs first when a run cannot take every waiting call (streams). Default 0. */
  priority?: number;
  /**
   * Among equal priorities, lower runs first: the caller's job's place in the work queue, so that
   * the job queued first finishes first, as when jobs run one after another (default 0: arrival order).
   */
  order?: number;
  /** The caller's job was withdrawn: a call still waiting is dropped, and rejects with `cancelled()`. */
  signal?: AbortSignal;
}

/** What a call withdrawn before its run rejects with. */
export function cancelled(): EarshotError {
  return new EarshotError('invalid_argument', 'call_cancelled', 'the model call was withdrawn before it ran');
}

export interface SchedulerStats extends ExecutionCounters {
  /** Calls waiting for a run. */
  pending: number;
  /** Results handed out whose callers the scheduler still waits for before starting a run. */
  awaiting: number;
  running: boolean;
  /** Whether a timer or an immediate is armed. */
  armed: boolean;
}

function bad(message: string): EarshotError {
  return new EarshotError('invalid_argument', 'bad_model_call', message);
}

export class BatchScheduler implements ModelRunner {
  readonly dims: WhisperDims;
  readonly maxBatch: number;
  readonly maxEncodeBatch: number;
  readonly maxWaitMs: number;
  readonly maxCohortWaitMs: number;
  private readonly model: BatchableModel;
  private pending: Call[] = [];
  /** Encoder outputs handed out: the ticket (and so the priority) a prompt call on them inherits. */
  private readonly encodedInfo = new WeakMap<Tensor, Ticket>();
  private readonly policy: DispatchPolicy;
  private readonly execution: BatchExecution;
  private running = false;
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;

  constructor(model: BatchableModel, opts: SchedulerOptions = {}, hooks: SchedulerHooks = {}) {
    const int = (name: string, v: number, min: number) => {
      if (!(Number.isInteger(v) && v >= min)) throw bad(`scheduler ${name} must be an integer of at least ${min}, got ${v}`);
      return v;
    };
    this.model = model;
    this.dims = model.dims;
    const cpu = deviceBatchLimits('cpu');
    this.maxBatch = int('maxBatch', opts.maxBatch ?? cpu.maxBatch, 1);
    this.maxEncodeBatch = int('maxEncodeBatch', opts.maxEncodeBatch ?? cpu.maxEncodeBatch, 1);
    this.maxWaitMs = opts.maxWaitMs ?? 3;
    this.maxCohortWaitMs = opts.maxCohortWaitMs ?? 200;
    for (const [name, v] of [['maxWaitMs', this.maxWaitMs], ['maxCohortWaitMs', this.maxCohortWaitMs]] as const) {
      if (!(v >= 0 && Number.isFinite(v))) throw bad(`scheduler ${name} must be 0 or more, got ${v}`);
    }
    this.policy = new DispatchPolicy(this);
    this.execution = new BatchExecution(model, (group, priority) => this.policy.ticket(group, priority), this.encodedInfo, hooks.observer);
  }

  stats(): SchedulerStats {
    const c = this.execution.counters;
    return {
      pending: this.pending.length,
      awaiting: this.policy.awaitingCount,
      running: this.running,
      armed: this.timer !== null || this.immediate !== null,
      runs: { ...c.runs },
      rows: { ...c.rows },
      reused: c.reused,
      selfCopies: c.selfCopies,
      crossCopies: c.crossCopies,
      retries: c.retries,
    };
  }

  /** A runner whose every call carries `job` (its priority, queue order, withdrawal: how a stream asks to go first). */
  withPriority(priority: number, job: Omit<CallOptions, 'priority'> = {}): Pick<BatchScheduler, 'dims' | 'encode' | 'decode' | 'selectRows' | 'finish'> {
    const o = { ...job, priority };
    return {
      dims: this.dims,
      encode: (features, batch) => this.encode(features, batch, o),
      decode: (tokens, batch, encoded, cache, opts = {}) => this.decode(tokens, batch, encoded, cache, { ...opts, ...o }),
      selectRows: (cache, rows) => this.selectRows(cache, rows),
      finish: (handle) => this.finish(handle),
    };
  }

  /** Runs the encoder on `batch` windows laid out [batch, nMels, frames], batched with other callers' windows. */
  encode(features: Float32Array, batch: number, opts: CallOptions = {}): Promise<Tensor> {
    const nMels = this.dims.nMels;
    if (!(Number.isInteger(batch) && batch >= 1) || features.length === 0 || features.length % (batch * nMels) !== 0) {
      return Promise.reject(bad(`encoder input of ${features.length} values is not ${batch} window(s) of ${nMels} mel bands`));
    }
    const frames = features.length / (batch * nMels);
    return new Promise<Tensor>((resolve, reject) =>
      this.enqueue({ kind: 'encode', key: `encode:${frames}`, group: 'encode', rows: batch, priority: opts.priority ?? 0, order: opts.order ?? 0, linked: false, features, resolve, reject }, opts.signal),
    );
  }

  /** One decoder call (see WhisperModel.decode), merged with other callers' calls of the same shape. */
  decode(
    tokens: BigInt64Array,
    batch: number,
    encoded: Tensor,
    cache: DecoderCache | null,
    opts: DecodeOptions & CallOptions = {},
  ): Promise<DecodeOutput> {
    if (!(Number.isInteger(batch) && batch >= 1) || tokens.length === 0 || tokens.length % batch !== 0) {
      return Promise.reject(bad(`${tokens.length} token(s) cannot be split into ${batch} row(s)`));
    }
    const seq = tokens.length / batch;
    const vocab = this.dims.vocabSize;
    for (const t of tokens) {
      if (t < 0n || t >= BigInt(vocab)) return Promise.reject(bad(`token id ${t} is outside the vocabulary 0..${vocab - 1}`));
    }
    const pos = opts.alsoPosition;
    if (pos !== undefined && !(Number.isInteger(pos) && pos >= 0 && pos < seq)) {
      return Promise.reject(bad(`alsoPosition ${pos} is outside 0..${seq - 1}`));
    }
    const greedy = opts.greedy;
    if (greedy && greedy.length !== batch) return Promise.reject(bad(`${greedy.length} greedy mask(s) for ${batch} row(s)`));
    return new Promise<DecodeOutput>((resolve, reject) => {
      if (cache === null) {
        if (encoded.dims.length !== 3 || encoded.dims[0] !== batch || encoded.dims[2] !== this.dims.dModel) {
          reject(bad(`encoder output of shape [${encoded.dims.join(', ')}] does not match ${batch} row(s)`));
          return;
        }
        const info = this.encodedInfo.get(encoded);
        this.enqueue({
          kind: 'prompt',
          key: `prompt:${seq}:${pos ?? -1}:${encoded.dims[1]}`,
          group: PROMPT_GROUP,
          rows: batch,
          priority: opts.priority ?? info?.priority ?? 0,
          order: opts.order ?? 0,
          linked: this.policy.link(info ?? null),
          tokens,
          encoded,
          alsoPosition: pos,
          greedy,
          resolve,
          reject,
        }, opts.signal);
        return;
      }
      const handle = this.adopt(cache);
      if (handle.batch !== batch) {
        reject(bad(`the cache holds ${handle.batch} row(s), the call has ${batch}`));
        return;
      }
      this.enqueue({
        kind: 'step',
        key: `step:${handle.length}:${seq}:${pos ?? -1}`,
        group: stepGroup(handle.length),
        rows: batch,
        priority: opts.priority ?? handle.priority,
        order: opts.order ?? 0,
        linked: this.policy.link(handle.ticket),
        tokens,
        cache: handle,
        alsoPosition: pos,
        greedy,
        resolve,
        reject,
      }, opts.signal);
    });
  }

  /** The rows `rows` of `cache`, in that order. Copies nothing: the next run gathers what it needs. */
  selectRows(cache: DecoderCache, rows: readonly number[]): DecoderCache {
    const handle = this.adopt(cache);
    for (const r of rows) {
      if (!(Number.isInteger(r) && r >= 0 && r < handle.batch)) throw new RangeError(`cache row ${r} out of range 0..${handle.batch - 1}`);
    }
    return new ScheduledCache(handle.state, rows.map((r) => handle.rows[r]!), handle.ticket, handle.priority);
  }

  /** Word timing's teacher-forced run (one row, no cache: nothing to batch), passed to the model. */
  crossAttentions(
    tokens: readonly number[],
    encoded: Tensor,
    heads: readonly (readonly [number, number])[],
    from?: number,
  ): Promise<CrossAttentions> {
    if (!this.model.crossAttentions) return Promise.reject(bad('this model cannot give cross-attention weights'));
    return this.model.crossAttentions(tokens, encoded, heads, from);
  }

  /** A cache made elsewhere (by the model itself) joins the scheduler's bookkeeping as its own state. */
  private adopt(cache: DecoderCache): ScheduledCache {
    if (cache instanceof ScheduledCache) return cache;
    const state = new KvState(cache.length, cache.self, cache.cross, range(0, cache.batch).map(newOrigin));
    return new ScheduledCache(state, range(0, cache.batch), null, 0);
  }

  /**
   * The caller holding `handle` (a cache, or an encoder output) makes no more calls on it: its group
   * stops waiting for it. Safe to call more than once, and on handles the scheduler did not make.
   */
  finish(handle: DecoderCache | Tensor): void {
    // Its hold on the cache's tensors goes now (on a device, their buffers), not at GC; the model
    // worker's own release of the handle after this is then a no-op.
    if (handle instanceof ScheduledCache) handle.release();
    const ticket = handle instanceof ScheduledCache ? handle.ticket : this.encodedInfo.get(handle as Tensor);
    if (!ticket || ticket.done) return;
    this.policy.link(ticket);
    if (this.pending.length > 0) this.schedule();
  }

  /**
   * Adds a call to the waiting ones. A withdrawn job's call that has not run yet is dropped (a
   * stream's speculative final withdrawn when speech resumes costs no encoder run), as the work
   * queue drops a withdrawn job that has not started; one already running finishes.
   */
  private enqueue(call: Omit<EncodeCall, 'seq' | 'arrived'> | Omit<PromptCall, 'seq' | 'arrived'> | Omit<StepCall, 'seq' | 'arrived'>, signal?: AbortSignal): void {
    if (signal?.aborted) {
      call.reject(cancelled());
      return;
    }
    const c = { ...call, seq: this.seq++, arrived: performance.now() } as Call;
    if (signal) {
      const drop = () => {
        const i = this.pending.indexOf(c);
        if (i < 0) return;
        this.pending.splice(i, 1);
        c.reject(cancelled());
        this.schedule();
      };
      signal.addEventListener('abort', drop, { once: true });
      const { resolve, reject } = c;
      c.resolve = ((v: never) => {
        signal.removeEventListener('abort', drop);
        resolve(v);
      }) as typeof c.resolve;
      c.reject = (e) => {
        signal.removeEventListener('abort', drop);
        reject(e);
      };
    }
    this.pending.push(c);
    this.schedule();
  }

  /** Decides when the next run starts: now (next macrotask), at a deadline, or when the model is free. */
  private schedule(): void {
    if (this.running || this.immediate) return;
    const now = performance.now();
    this.policy.expire(now);
    if (this.pending.length === 0) {
      this.disarm();
      return;
    }
    const ready = this.policy.readyAt(this.pending, now);
    if (ready <= now) {
      this.disarm();
      this.immediate = setImmediate(() => {
        this.immediate = null;
        void this.dispatch();
      });
    } else {
      this.arm(ready);
    }
  }

  private arm(at: number): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.schedule();
    }, Math.max(0, at - performance.now()));
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async dispatch(): Promise<void> {
    if (this.running || this.pending.length === 0) return;
    this.disarm();
    const chosen = this.policy.choose(this.pending, performance.now());
    const taken = new Set(chosen);
    this.pending = this.pending.filter((c) => !taken.has(c));
    this.running = true;
    try {
      await this.execution.runGroup(chosen);
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}
