// The batching scheduler: stands in front of one WhisperModel as its `ModelRunner`, so that many
// decodeWindow loops (several requests, several windows, every beam) share batched model runs while
// each keeps its own options and its own loop. Hand-written: it is the product's core.
//
// Rules, and why:
// - The hub's merged decoders take no attention mask, so rows can share a decoder run only when
//   their self-attention caches have the same length (no padding). Calls are grouped by kind and
//   shape: encoder calls by frame count, prompt calls (no cache) by prompt length and the position
//   whose logits they also want, step calls by cache length. Rows that start together stay aligned.
// - A group's rows keep their KV tensors between steps (see batch-cache.ts): the same rows in the
//   same order feed the last run's present tensors straight back; rows are copied only when
//   membership or order changes.
// - One model run at a time (parallel runs would only fight over the cores). Calls arriving while
//   the model is busy wait for the next run. With the model idle, a new call waits at most
//   `maxWaitMs` for others to join.
// - A cohort stays whole: after a run, its callers come back one by one (each filters its logits on
//   the main thread first, about a millisecond a row). A group whose callers are still out waits
//   for them, up to `maxCohortWaitMs`, while complete groups run meanwhile; a caller that is done
//   says so (`finish`) and is not waited for. Starting without a straggler would split the cohort
//   for good (rows of different cache lengths never share a run again), doubling the runs.
//   Lower-priority work also waits for higher-priority callers still out, so a stream's final is
//   not held up behind a run of a partial between two of its steps.
// - Within a kind of call, a run takes calls by priority (higher first), then arrival order, up to
//   `maxBatch` rows; the group of the first call in that order runs next, so work of all lengths is
//   served in turn. A call is never split across runs.
// - A batched run that fails is retried call by call, so a bad call rejects only its own caller.
import ort from 'onnxruntime-node';
import { EarshotError } from '../errors.ts';
import { assembleCache, KvState, newOrigin, ScheduledCache, type StateRow, type Ticket } from './batch-cache.ts';
import type { LogitMask } from './greedy-pick.ts';
import type { CrossAttentions, DecodeOptions, DecodeOutput, DecoderCache, ModelRunner, WhisperDims, WhisperModel } from './whisper-model.ts';
import { concatFloat32 } from '../audio/chunks.ts';

type Tensor = ort.Tensor;

/** What the scheduler needs from the model it drives. */
export type BatchableModel = Pick<WhisperModel, 'dims' | 'encode' | 'decode'> & Partial<Pick<WhisperModel, 'crossAttentions'>>;

export interface SchedulerOptions {
  /** Most decoder rows in one run (default 16). 1 turns batching off. */
  maxBatch?: number;
  /** Most windows in one encoder run (default: maxBatch). */
  maxEncodeBatch?: number;
  /** Longest a call waits for others to join while the model is idle, in ms (default 3). */
  maxWaitMs?: number;
  /** Longest a group waits for the callers of the last run that fed it to come back, in ms (default 200). */
  maxCohortWaitMs?: number;
}

export interface CallOptions {
  /** Higher runs first when a run cannot take every waiting call (streams). Default 0. */
  priority?: number;
}

export interface SchedulerStats {
  /** Calls waiting for a run. */
  pending: number;
  /** Results handed out whose callers the scheduler still waits for before starting a run. */
  awaiting: number;
  running: boolean;
  /** Whether a timer or an immediate is armed. */
  armed: boolean;
  runs: { encode: number; prompt: number; step: number };
  rows: { encode: number; prompt: number; step: number };
  /** Step runs that fed the previous run's tensors back unchanged. */
  reused: number;
  /** Step runs that copied self-attention rows (membership or order changed). */
  selfCopies: number;
  /** Step runs that copied cross-attention rows (membership changed). */
  crossCopies: number;
  /** Batched runs that failed and were retried call by call. */
  retries: number;
}

interface CallBase {
  /** Calls of one key can share a run. */
  key: string;
  /** The cohort the call belongs to: the callers a waiting group expects back (see Ticket.group). */
  group: string;
  rows: number;
  priority: number;
  seq: number;
  arrived: number;
  /** Whether this call follows a result the scheduler handed out (the caller came back). */
  linked: boolean;
  reject: (e: unknown) => void;
}

interface EncodeCall extends CallBase {
  kind: 'encode';
  features: Float32Array;
  resolve: (t: Tensor) => void;
}

interface PromptCall extends CallBase {
  kind: 'prompt';
  tokens: BigInt64Array;
  encoded: Tensor;
  alsoPosition?: number;
  greedy?: readonly (LogitMask | null)[];
  resolve: (o: DecodeOutput) => void;
}

interface StepCall extends CallBase {
  kind: 'step';
  tokens: BigInt64Array;
  cache: ScheduledCache;
  alsoPosition?: number;
  greedy?: readonly (LogitMask | null)[];
  resolve: (o: DecodeOutput) => void;
}

type Call = EncodeCall | PromptCall | StepCall;

/** Callers given an encoder output come back with a prompt call; those given a cache of length n, with a step on it. */
const PROMPT_GROUP = 'prompt';
const stepGroup = (length: number) => `step:${length}`;

function bad(message: string): EarshotError {
  return new EarshotError('invalid_argument', 'bad_model_call', message);
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

export class BatchScheduler implements ModelRunner {
  readonly dims: WhisperDims;
  readonly maxBatch: number;
  readonly maxEncodeBatch: number;
  readonly maxWaitMs: number;
  readonly maxCohortWaitMs: number;
  private readonly model: BatchableModel;
  private pending: Call[] = [];
  /** Results handed out whose callers have not come back yet. */
  private readonly awaiting = new Set<Ticket>();
  /** Encoder outputs handed out: the ticket (and so the priority) a prompt call on them inherits. */
  private readonly encodedInfo = new WeakMap<Tensor, Ticket>();
  private running = false;
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly counters = {
    runs: { encode: 0, prompt: 0, step: 0 },
    rows: { encode: 0, prompt: 0, step: 0 },
    reused: 0,
    selfCopies: 0,
    crossCopies: 0,
    retries: 0,
  };
  private readonly noEncoder: Tensor;

  constructor(model: BatchableModel, opts: SchedulerOptions = {}) {
    const int = (name: string, v: number, min: number) => {
      if (!(Number.isInteger(v) && v >= min)) throw bad(`scheduler ${name} must be an integer of at least ${min}, got ${v}`);
      return v;
    };
    this.model = model;
    this.dims = model.dims;
    this.maxBatch = int('maxBatch', opts.maxBatch ?? 16, 1);
    this.maxEncodeBatch = int('maxEncodeBatch', opts.maxEncodeBatch ?? this.maxBatch, 1);
    this.maxWaitMs = opts.maxWaitMs ?? 3;
    this.maxCohortWaitMs = opts.maxCohortWaitMs ?? 200;
    for (const [name, v] of [['maxWaitMs', this.maxWaitMs], ['maxCohortWaitMs', this.maxCohortWaitMs]] as const) {
      if (!(v >= 0 && Number.isFinite(v))) throw bad(`scheduler ${name} must be 0 or more, got ${v}`);
    }
    this.noEncoder = new ort.Tensor('float32', new Float32Array(0), [1, 0, this.dims.dModel]);
  }

  stats(): SchedulerStats {
    const c = this.counters;
    return {
      pending: this.pending.length,
      awaiting: this.awaiting.size,
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

  /** A runner whose every call carries `priority` (how a stream asks to go first). */
  withPriority(priority: number): Pick<BatchScheduler, 'dims' | 'encode' | 'decode' | 'selectRows' | 'finish'> {
    return {
      dims: this.dims,
      encode: (features, batch) => this.encode(features, batch, { priority }),
      decode: (tokens, batch, encoded, cache, opts = {}) => this.decode(tokens, batch, encoded, cache, { ...opts, priority }),
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
      this.enqueue({ kind: 'encode', key: `encode:${frames}`, group: 'encode', rows: batch, priority: opts.priority ?? 0, linked: false, features, resolve, reject }),
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
          linked: this.link(info ?? null),
          tokens,
          encoded,
          alsoPosition: pos,
          greedy,
          resolve,
          reject,
        });
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
        linked: this.link(handle.ticket),
        tokens,
        cache: handle,
        alsoPosition: pos,
        greedy,
        resolve,
        reject,
      });
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

  /** Marks the caller of `ticket` as back; true when it was awaited. */
  private link(ticket: Ticket | null): boolean {
    if (!ticket || ticket.done) return false;
    ticket.done = true;
    this.awaiting.delete(ticket);
    return true;
  }

  private ticket(group: string, priority: number): Ticket {
    const t: Ticket = { done: false, group, priority, handedOut: performance.now() };
    this.awaiting.add(t);
    return t;
  }

  /**
   * The caller holding `handle` (a cache, or an encoder output) makes no more calls on it: its group
   * stops waiting for it. Safe to call more than once, and on handles the scheduler did not make.
   */
  finish(handle: DecoderCache | Tensor): void {
    const ticket = handle instanceof ScheduledCache ? handle.ticket : this.encodedInfo.get(handle as Tensor);
    if (!ticket || ticket.done) return;
    this.link(ticket);
    if (this.pending.length > 0) this.schedule();
  }

  private enqueue(call: Omit<EncodeCall, 'seq' | 'arrived'> | Omit<PromptCall, 'seq' | 'arrived'> | Omit<StepCall, 'seq' | 'arrived'>): void {
    this.pending.push({ ...call, seq: this.seq++, arrived: performance.now() } as Call);
    this.schedule();
  }

  private limit(call: Call): number {
    return call.kind === 'encode' ? this.maxEncodeBatch : this.maxBatch;
  }

  /** Decides when the next run starts: now (next macrotask), at a deadline, or when the model is free. */
  private schedule(): void {
    if (this.running || this.immediate) return;
    const now = performance.now();
    this.expire(now);
    if (this.pending.length === 0) {
      this.disarm();
      return;
    }
    const ready = this.readyAt(now);
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

  /** Forgets callers not back within maxCohortWaitMs: their groups stop waiting for them. */
  private expire(now: number): void {
    for (const t of this.awaiting) {
      if (now - t.handedOut >= this.maxCohortWaitMs) this.awaiting.delete(t);
    }
  }

  /**
   * Until when `c` must wait for callers still out (0: it need not): those of its own group (so a
   * cohort stays whole) and those of higher priority (a final's next step goes before a partial's
   * work, rather than behind a run of it).
   */
  private blockedUntil(c: Call): number {
    let until = 0;
    for (const t of this.awaiting) {
      if (t.group === c.group || t.priority > c.priority) until = Math.max(until, t.handedOut + this.maxCohortWaitMs);
    }
    return until;
  }

  /**
   * When the next run may start: at once if an unblocked call has a full batch behind its key, or
   * is a returning caller, or has waited maxWaitMs for company; otherwise at the earliest of those
   * deadlines and the blocked calls' cohort deadlines.
   */
  private readyAt(now: number): number {
    const rowsByKey = this.rowsByKey();
    let at = Infinity;
    for (const c of this.pending) {
      const until = this.blockedUntil(c);
      if (until > 0) at = Math.min(at, until);
      else if (rowsByKey.get(c.key)! >= this.limit(c)) return now;
      else at = Math.min(at, c.linked ? now : c.arrived + this.maxWaitMs);
    }
    return at;
  }

  private rowsByKey(): Map<string, number> {
    const rows = new Map<string, number>();
    for (const c of this.pending) rows.set(c.key, (rows.get(c.key) ?? 0) + c.rows);
    return rows;
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
    const now = performance.now();
    this.expire(now);
    const ordered = [...this.pending].sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    // An unblocked call with a full key first, then the first unblocked call; failing both (a
    // cohort deadline passed), the first in order, whose blockers are then not waited for again.
    const rowsByKey = this.rowsByKey();
    const free = ordered.filter((c) => this.blockedUntil(c) === 0);
    const head = free.find((c) => rowsByKey.get(c.key)! >= this.limit(c)) ?? free[0] ?? ordered[0]!;
    for (const t of this.awaiting) if (t.group === head.group || t.priority > head.priority) this.awaiting.delete(t);
    const limit = this.limit(head);
    const chosen: Call[] = [];
    let rows = 0;
    for (const c of ordered) {
      if (c.key !== head.key) continue;
      if (chosen.length > 0 && rows + c.rows > limit) break;
      chosen.push(c);
      rows += c.rows;
    }
    const taken = new Set(chosen);
    this.pending = this.pending.filter((c) => !taken.has(c));
    this.running = true;
    try {
      await this.runGroup(chosen);
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  /** Runs `calls` as one batch; if that fails, each on its own, so only a failing call is rejected. */
  private async runGroup(calls: Call[]): Promise<void> {
    let deliver: () => void;
    try {
      deliver = await this.runBatch(calls);
    } catch (e) {
      if (calls.length === 1) {
        calls[0]!.reject(e);
        return;
      }
      this.counters.retries++;
      for (const c of calls) {
        try {
          (await this.runBatch([c]))();
        } catch (e1) {
          c.reject(e1);
        }
      }
      return;
    }
    deliver();
  }

  /** One model run for `calls` (all of one key); returns the function that hands out the results. */
  private async runBatch(calls: Call[]): Promise<() => void> {
    const head = calls[0]!;
    if (head.kind === 'encode') return this.runEncode(calls as EncodeCall[]);
    if (head.kind === 'prompt') return this.runPrompt(calls as PromptCall[]);
    return this.runStep(calls as StepCall[]);
  }

  private async runEncode(calls: EncodeCall[]): Promise<() => void> {
    const total = calls.reduce((n, c) => n + c.rows, 0);
    const features = calls.length === 1 ? calls[0]!.features : concatFloat32(calls.map((c) => c.features));
    const out = await this.model.encode(features, total);
    this.counters.runs.encode++;
    this.counters.rows.encode += total;
    const data = out.data as Float32Array;
    const perRow = data.length / total;
    const rest = out.dims.slice(1);
    return () => {
      let at = 0;
      for (const c of calls) {
        const t = calls.length === 1 ? out : new ort.Tensor('float32', data.slice(at * perRow, (at + c.rows) * perRow), [c.rows, ...rest]);
        at += c.rows;
        this.encodedInfo.set(t, this.ticket(PROMPT_GROUP, c.priority));
        c.resolve(t);
      }
    };
  }

  private async runPrompt(calls: PromptCall[]): Promise<() => void> {
    const total = calls.reduce((n, c) => n + c.rows, 0);
    const tokens = calls.length === 1 ? calls[0]!.tokens : concatBigInt(calls.map((c) => c.tokens));
    const encoded =
      calls.length === 1
        ? calls[0]!.encoded
        : new ort.Tensor('float32', concatFloat32(calls.map((c) => c.encoded.data as Float32Array)), [total, ...calls[0]!.encoded.dims.slice(1)]);
    const out = await this.model.decode(tokens, total, encoded, null, { alsoPosition: calls[0]!.alsoPosition, greedy: greedyRows(calls) });
    this.counters.runs.prompt++;
    this.counters.rows.prompt += total;
    const state = new KvState(out.cache.length, out.cache.self, out.cache.cross, range(0, total).map(newOrigin));
    return () => this.deliver(calls, out, state);
  }

  private async runStep(calls: StepCall[]): Promise<() => void> {
    // Lay rows out in the order of the states they come from, so a cohort that comes back whole
    // lines up with its previous run whatever order its callers arrived in.
    const laid = [...calls].sort((a, b) => a.cache.state.id - b.cache.state.id || a.cache.rows[0]! - b.cache.rows[0]!);
    const layout: StateRow[] = laid.flatMap((c) => c.cache.rows.map((row) => ({ state: c.cache.state, row })));
    const asm = assembleCache(layout);
    const total = layout.length;
    const tokens = laid.length === 1 ? laid[0]!.tokens : concatBigInt(laid.map((c) => c.tokens));
    const out = await this.model.decode(tokens, total, this.noEncoder, asm.cache, { alsoPosition: laid[0]!.alsoPosition, greedy: greedyRows(laid) });
    const c = this.counters;
    c.runs.step++;
    c.rows.step += total;
    if (asm.selfCopied) c.selfCopies++;
    else c.reused++;
    if (asm.crossCopied) c.crossCopies++;
    const state = new KvState(out.cache.length, out.cache.self, asm.cache.cross, asm.origins);
    return () => this.deliver(laid, out, state);
  }

  /** Hands each caller its rows of a decoder run's output, in layout order. */
  private deliver(calls: (PromptCall | StepCall)[], out: DecodeOutput, state: KvState): void {
    const vocab = this.dims.vocabSize;
    let at = 0;
    for (const c of calls) {
      const one = calls.length === 1;
      const slice = (a: Float32Array) => (one ? a : a.slice(at * vocab, (at + c.rows) * vocab));
      const cache = new ScheduledCache(state, range(at, c.rows), this.ticket(stepGroup(state.length), c.priority), c.priority);
      const picked = c.greedy !== undefined && c.greedy.every((m) => m !== null);
      c.resolve({
        logits: picked ? NO_LOGITS : slice(out.logits),
        positionLogits: out.positionLogits && slice(out.positionLogits),
        picks: c.greedy && out.picks?.slice(at, at + c.rows),
        cache,
      });
      at += c.rows;
    }
  }
}

const NO_LOGITS = new Float32Array(0);

/** The calls' greedy masks row by row (null for rows without), or undefined when no call has any. */
function greedyRows(calls: readonly (PromptCall | StepCall)[]): (LogitMask | null)[] | undefined {
  if (!calls.some((c) => c.greedy)) return undefined;
  return calls.flatMap((c) => c.greedy ?? new Array<null>(c.rows).fill(null));
}

function concatBigInt(parts: readonly BigInt64Array[]): BigInt64Array {
  const out = new BigInt64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
