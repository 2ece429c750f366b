// One model the server hosts under one id, through its versions: loading, hot swaps (a new version
// serves new requests while requests on the old one finish; the old one is released after its
// last lease), unloading by an operator, and unloading after `ttlS` idle seconds (the next request
// loads it again and waits for it). Every use of a version is counted by a lease, so nothing is
// released under a request, a stream or a job; and a version is only released once its queue is
// idle too, so work queued on it always finishes.
import type { Whisper } from '../runtime/loaded-model.ts';
import { acquireWhisper, releaseWhisper } from '../runtime/model-cache.ts';
import type { EngineOptionsInput } from '../engine/execution.ts';
import { EarshotError } from '../errors.ts';
import { log } from '../log.ts';

/** `idle`: unloaded after `ttlS` without use; the next request loads it again. `unloaded`: by an operator. */
export type ModelState = 'loading' | 'ready' | 'failed' | 'unloaded' | 'idle';

export interface ModelSpec {
  /** Catalogue name, hub repository id or model folder. */
  model: string;
  dtype?: string | undefined;
  /** What clients see as its `model` when that is not `model` itself (a folder named by a request). */
  label?: string | undefined;
  /** false: load only what the cache holds, never fetch (a repository a request may not pull). */
  download?: boolean | undefined;
}

export type ModelEvent =
  | { type: 'loaded'; id: string; whisper: Whisper; swapped: boolean }
  | { type: 'unloaded'; id: string; reason: 'admin' | 'idle' }
  /** A version's sessions were closed (its last lease ended after a swap or an unload). */
  | { type: 'released'; id: string; whisper: Whisper };

export interface HostedModelEnv {
  engine: EngineOptionsInput;
  /** Requests that may wait for one model beyond the running ones; more get 429. */
  queueSize: number;
  /** Seconds idle before unloading; 0 = never. */
  ttlS: number;
  emit(e: ModelEvent): void;
}

/** One loaded version of a model. */
export interface ModelVersion {
  whisper: Whisper;
  spec: ModelSpec;
  /** Unix seconds when it finished loading. */
  loadedAt: number;
  leases: number;
  retired: boolean;
}

/** A counted use of one version: call `release()` (once) when done with `whisper`. */
export interface ModelLease {
  id: string;
  whisper: Whisper;
  release(): void;
}

/** Retired versions being released, or waiting for their queue to drain first. */
const closing = new WeakSet<ModelVersion>();

function queueIdle(w: Whisper): boolean {
  const s = w.queue.stats();
  return s.running === 0 && s.waiting === 0;
}

export class HostedModel {
  state: ModelState = 'loading';
  error: unknown;
  private version: ModelVersion | undefined;
  /** A load that requests may wait for (a reload after an idle unload). */
  private reloading: Promise<ModelVersion> | undefined;
  /** Loads and unloads run one at a time, in order. */
  private chain: Promise<unknown> = Promise.resolve();
  private lastUsed = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private stopQueueWatch: (() => void) | undefined;
  private closed = false;

  constructor(
    readonly id: string,
    public spec: ModelSpec,
    private readonly env: HostedModelEnv,
  ) {}

  /** The version serving new requests, if any. */
  get current(): ModelVersion | undefined {
    return this.version;
  }

  /** Whether requests can use it now or after an on-demand load (idle-unloaded). */
  get available(): boolean {
    return this.state === 'ready' || this.state === 'idle' || this.reloading !== undefined;
  }

  /**
   * Loads `spec` (default: the current one) and makes it the version new requests use. With
   * `fresh`, a new instance is loaded even if the process has one cached (files changed on disk).
   * A failed load leaves the version already serving in place.
   */
  load(spec: Partial<ModelSpec> = {}, opts: { fresh?: boolean } = {}): Promise<ModelVersion> {
    return this.serial(() => this.doLoad(spec, opts.fresh ?? false));
  }

  /** Unloads the model: new requests get 503 (`admin`) or load it again (`idle`). */
  unload(reason: 'admin' | 'idle'): Promise<void> {
    return this.serial(async () => this.doUnload(reason));
  }

  /** A counted use of the serving version; waits for an on-demand load, 503 when there is no version. */
  async lease(): Promise<ModelLease> {
    for (;;) {
      this.lastUsed = Date.now();
      const v = this.version;
      if (v) return this.leaseOf(v);
      if (this.state === 'idle' && !this.reloading) this.reload();
      if (!this.reloading) throw this.notReady();
      await this.reloading;
    }
  }

  /** The serving model without a lease (kept for callers that need it synchronously); 503 without one. */
  now(): Whisper {
    this.lastUsed = Date.now();
    if (this.version) return this.version.whisper;
    if (this.state === 'idle' && !this.reloading) this.reload();
    throw this.notReady();
  }

  /** Stops the idle timer (server closing); loaded versions stay until `unloadAll`. */
  close(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.stopQueueWatch?.();
  }

  private notReady(): EarshotError {
    switch (this.state) {
      case 'failed':
        return new EarshotError('not_ready', 'model_failed', `model "${this.id}" failed to load: ${(this.error as Error)?.message ?? String(this.error)}`);
      case 'unloaded':
        return new EarshotError('not_ready', 'model_unloaded', `model "${this.id}" is unloaded; load it with POST /v1/models/${this.id}/load`);
      default:
        return new EarshotError('not_ready', 'model_loading', `model "${this.id}" is still loading; retry shortly`);
    }
  }

  private reload(): void {
    const p = this.load();
    this.reloading = p;
    const done = () => {
      if (this.reloading === p) this.reloading = undefined;
    };
    p.then(done, (e: unknown) => {
      done();
      log.error({ err: e, model: this.id }, 'model failed to load again after an idle unload');
    });
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op, op);
    this.chain = p.catch(() => {});
    return p;
  }

  private async doLoad(spec: Partial<ModelSpec>, fresh: boolean): Promise<ModelVersion> {
    // A new `model` brings its own label and fetch rule (and its default dtype unless one is given).
    const from = spec.model !== undefined ? spec : this.spec;
    const next: ModelSpec = {
      model: from.model!,
      dtype: spec.model !== undefined || spec.dtype !== undefined ? spec.dtype : this.spec.dtype,
      ...(from.label !== undefined ? { label: from.label } : {}),
      ...(from.download !== undefined ? { download: from.download } : {}),
    };
    const previous = this.version;
    if (!previous) this.state = 'loading';
    let whisper: Whisper;
    try {
      whisper = await acquireWhisper(next.model, {
        ...(next.dtype !== undefined ? { dtype: next.dtype } : {}),
        ...(next.download !== undefined ? { download: next.download } : {}),
        engine: this.env.engine,
        queueSize: this.env.queueSize,
        fresh,
      });
    } catch (e) {
      if (!previous) {
        this.state = 'failed';
        this.error = e;
      }
      throw e;
    }
    const v: ModelVersion = { whisper, spec: next, loadedAt: Math.floor(Date.now() / 1000), leases: 0, retired: false };
    this.spec = next;
    this.version = v;
    this.state = 'ready';
    this.error = undefined;
    this.lastUsed = Date.now();
    this.watchQueue(v);
    // The model's worker thread died: new requests get 503 until an operator loads it again.
    whisper.model.onFailure((e) => {
      if (this.version !== v) return;
      log.error({ err: e, model: this.id }, 'model worker failed');
      this.version = undefined;
      this.state = 'failed';
      this.error = e;
      this.stopQueueWatch?.();
      this.retire(v);
    });
    this.env.emit({ type: 'loaded', id: this.id, whisper, swapped: previous !== undefined });
    if (previous) this.retire(previous);
    this.scheduleIdle();
    return v;
  }

  private doUnload(reason: 'admin' | 'idle'): void {
    const v = this.version;
    if (reason === 'idle' && (!v || !this.idleEnough(v))) return; // used again since the check
    this.version = undefined;
    this.state = reason === 'admin' ? 'unloaded' : 'idle';
    this.stopQueueWatch?.();
    clearTimeout(this.idleTimer);
    if (!v) return;
    this.env.emit({ type: 'unloaded', id: this.id, reason });
    this.retire(v);
  }

  private leaseOf(v: ModelVersion): ModelLease {
    v.leases++;
    let done = false;
    return {
      id: this.id,
      whisper: v.whisper,
      release: () => {
        if (done) return;
        done = true;
        v.leases--;
        this.lastUsed = Date.now();
        if (v.retired) this.releaseWhenDone(v);
        else this.scheduleIdle();
      },
    };
  }

  /** Takes a version out of service; its sessions close once no lease or queued work uses it. */
  private retire(v: ModelVersion): void {
    v.retired = true;
    this.releaseWhenDone(v);
  }

  private releaseWhenDone(v: ModelVersion): void {
    if (v.leases > 0 || closing.has(v)) return; // the last lease's release() comes back here
    if (!queueIdle(v.whisper)) {
      // Work queued without a lease (streams, jobs): wait for it to drain.
      closing.add(v);
      const stop = v.whisper.queue.onChange(() => {
        if (!queueIdle(v.whisper)) return;
        stop();
        closing.delete(v);
        this.releaseWhenDone(v);
      });
      return;
    }
    closing.add(v); // for good: released once
    void releaseWhisper(v.whisper).then(
      () => this.env.emit({ type: 'released', id: this.id, whisper: v.whisper }),
      (e: unknown) => log.error({ err: e, model: this.id }, 'model release failed'),
    );
  }

  /** Work in the queue (leased or not) counts as use for the idle timer. */
  private watchQueue(v: ModelVersion): void {
    this.stopQueueWatch?.();
    this.stopQueueWatch = v.whisper.queue.onChange(() => {
      this.lastUsed = Date.now();
      if (queueIdle(v.whisper)) this.scheduleIdle();
    });
  }

  private idleEnough(v: ModelVersion): boolean {
    return v.leases === 0 && queueIdle(v.whisper) && Date.now() - this.lastUsed >= this.env.ttlS * 1000;
  }

  private scheduleIdle(): void {
    if (this.env.ttlS <= 0 || this.closed || !this.version) return;
    clearTimeout(this.idleTimer);
    const wait = Math.max(0, this.lastUsed + this.env.ttlS * 1000 - Date.now());
    this.idleTimer = setTimeout(() => {
      const v = this.version;
      if (!v || v.leases > 0 || !queueIdle(v.whisper)) return; // the last lease or job reschedules
      if (!this.idleEnough(v)) return this.scheduleIdle();
      this.unload('idle').catch((e: unknown) => log.error({ err: e, model: this.id }, 'idle unload failed'));
    }, wait);
    this.idleTimer.unref();
  }
}
