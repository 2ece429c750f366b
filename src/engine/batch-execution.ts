// Running one batch for the BatchScheduler (scheduler.ts): the chosen calls' inputs are laid out as
// one model call, the model runs, and each caller gets its own rows back with a ticket that tells
// the dispatch policy (batch-policy.ts) to expect it again. A batched run that fails is retried
// call by call, so a bad call rejects only its own caller.
//
// The hub's merged decoders take no attention mask, so rows can share a decoder run only when
// their self-attention caches have the same length (no padding): that is what a call's key says.
// A group's rows keep their KV tensors between steps (batch-cache.ts): the same rows in the same
// order feed the last run's present tensors straight back; rows are copied only when membership or
// order changes. What a run makes for itself (a joined encoder batch, gathered rows, the batched
// encoder output once cut) is released as soon as the run is done with it (device-refs.ts).
//
// Each successful run is reported to an optional observer (what it ran, how many rows, how long
// each call waited, how long the model call took): the engine declares the interface, and whoever
// watches (the server's metrics) subscribes, so this layer imports nothing above it.
import './telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import ort from 'onnxruntime-node';
import { concatFloat32 } from '../audio/chunks.ts';
import { assembleCache, type Gather, hostGather, KvState, newOrigin, ScheduledCache, type StateRow, type Ticket } from './batch-cache.ts';
import { gatherEach, releaseTensors } from './device-refs.ts';
import { type Call, type EncodeCall, PROMPT_GROUP, type PromptCall, type StepCall, stepGroup } from './batch-calls.ts';
import type { LogitMask } from './greedy-pick.ts';
import type { WhisperModel } from './whisper-model.ts';
import type { DecodeOutput } from './model-types.ts';

type Tensor = ort.Tensor;

/** What the scheduler needs from the model it drives. */
export type BatchableModel = Pick<WhisperModel, 'dims' | 'encode' | 'decode'> & Partial<Pick<WhisperModel, 'crossAttentions' | 'gatherRows'>>;

export interface ExecutionCounters {
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

/** One batched model run, as an observer sees it. */
export interface BatchRun {
  kind: Call['kind'];
  /** Rows (windows or decoder rows) in the run. */
  rows: number;
  /** For each call in the run: seconds from its arrival at the scheduler to the start of the run. */
  waitSeconds: number[];
  /** Seconds the model call took (the session run, with its input and output transfers). */
  runSeconds: number;
}

/** Told of every successful run, before its callers get their results. Must not throw. */
export type BatchObserver = (run: BatchRun) => void;

export const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

export class BatchExecution {
  readonly counters: ExecutionCounters = {
    runs: { encode: 0, prompt: 0, step: 0 },
    rows: { encode: 0, prompt: 0, step: 0 },
    reused: 0,
    selfCopies: 0,
    crossCopies: 0,
    retries: 0,
  };
  private readonly noEncoder: Tensor;
  /** Moves rows between runs where the model keeps them (on the device, or the host). */
  private readonly gather: Gather;

  /**
   * `ticket` makes the ticket a result is handed out with; `encodedTickets` remembers the ticket of
   * each encoder output handed out (a prompt call on it inherits it).
   */
  constructor(
    private readonly model: BatchableModel,
    private readonly ticket: (group: string, priority: number) => Ticket,
    private readonly encodedTickets: WeakMap<Tensor, Ticket>,
    private readonly observer?: BatchObserver,
  ) {
    this.noEncoder = new ort.Tensor('float32', new Float32Array(0), [1, 0, model.dims.dModel]);
    this.gather = model.gatherRows ? (rows) => model.gatherRows!(rows) : hostGather;
  }

  /** Runs `calls` as one batch; if that fails, each on its own, so only a failing call is rejected. */
  async runGroup(calls: Call[]): Promise<void> {
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
    const started = performance.now();
    const deliver =
      head.kind === 'encode'
        ? await this.runEncode(calls as EncodeCall[])
        : head.kind === 'prompt'
          ? await this.runPrompt(calls as PromptCall[])
          : await this.runStep(calls as StepCall[]);
    try {
      this.observer?.({
        kind: head.kind,
        rows: calls.reduce((n, c) => n + c.rows, 0),
        waitSeconds: calls.map((c) => Math.max(0, started - c.arrived) / 1000),
        runSeconds: this.lastRunMs / 1000,
      });
    } catch {
      // Watching must never fail the run it watches.
    }
    return deliver;
  }

  /** Milliseconds of the last model call (set by `timed`). */
  private lastRunMs = 0;

  /** `run()` (one model call), timed into lastRunMs. */
  private async timed<T>(run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const out = await run();
    this.lastRunMs = performance.now() - t0;
    return out;
  }

  private async runEncode(calls: EncodeCall[]): Promise<() => void> {
    const total = calls.reduce((n, c) => n + c.rows, 0);
    const features = calls.length === 1 ? calls[0]!.features : concatFloat32(calls.map((c) => c.features));
    const out = await this.timed(() => this.model.encode(features, total));
    this.counters.runs.encode++;
    this.counters.rows.encode += total;
    // Each call's windows, cut where the model keeps them (the device or the host).
    let at = 0;
    let parts = [out];
    if (calls.length > 1) {
      try {
        parts = await gatherEach(this.gather, calls.map((c) => range((at += c.rows) - c.rows, c.rows).map((row) => ({ tensor: out, row }))));
      } finally {
        releaseTensors([out]); // each caller holds its own part
      }
    }
    return () => {
      calls.forEach((c, i) => {
        const t = parts[i]!;
        this.encodedTickets.set(t, this.ticket(PROMPT_GROUP, c.priority));
        c.resolve(t);
      });
    };
  }

  private async runPrompt(calls: PromptCall[]): Promise<() => void> {
    const total = calls.reduce((n, c) => n + c.rows, 0);
    const tokens = calls.length === 1 ? calls[0]!.tokens : concatBigInt(calls.map((c) => c.tokens));
    const encoded =
      calls.length === 1 ? calls[0]!.encoded : await this.gather(calls.flatMap((c) => range(0, c.rows).map((row) => ({ tensor: c.encoded, row }))));
    let out: DecodeOutput;
    try {
      out = await this.timed(() => this.model.decode(tokens, total, encoded, null, { alsoPosition: calls[0]!.alsoPosition, greedy: greedyRows(calls) }));
    } finally {
      if (encoded !== calls[0]!.encoded) releaseTensors([encoded]);
    }
    this.counters.runs.prompt++;
    this.counters.rows.prompt += total;
    const state = new KvState(out.cache.length, out.cache.self, out.cache.cross, range(0, total).map(newOrigin));
    releaseTensors([...out.cache.self, ...out.cache.cross]); // the state holds them now
    return () => this.deliver(calls, out, state);
  }

  private async runStep(calls: StepCall[]): Promise<() => void> {
    // Lay rows out in the order of the states they come from, so a cohort that comes back whole
    // lines up with its previous run whatever order its callers arrived in.
    const laid = [...calls].sort((a, b) => a.cache.state.id - b.cache.state.id || a.cache.rows[0]! - b.cache.rows[0]!);
    const layout: StateRow[] = laid.flatMap((c) => c.cache.rows.map((row) => ({ state: c.cache.state, row })));
    const asm = await assembleCache(layout, this.gather);
    const total = layout.length;
    const tokens = laid.length === 1 ? laid[0]!.tokens : concatBigInt(laid.map((c) => c.tokens));
    let out: DecodeOutput;
    try {
      out = await this.timed(() => this.model.decode(tokens, total, this.noEncoder, asm.cache, { alsoPosition: laid[0]!.alsoPosition, greedy: greedyRows(laid) }));
    } finally {
      releaseTensors(asm.copies);
    }
    const c = this.counters;
    c.runs.step++;
    c.rows.step += total;
    if (asm.selfCopied) c.selfCopies++;
    else c.reused++;
    if (asm.crossCopied) c.crossCopies++;
    const state = new KvState(out.cache.length, out.cache.self, asm.cache.cross, asm.origins);
    releaseTensors([...out.cache.self, ...out.cache.cross]); // the state holds them now
    return () => this.deliver(laid, out, state);
  }

  /** Hands each caller its rows of a decoder run's output, in layout order. */
  private deliver(calls: (PromptCall | StepCall)[], out: DecodeOutput, state: KvState): void {
    const vocab = this.model.dims.vocabSize;
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
