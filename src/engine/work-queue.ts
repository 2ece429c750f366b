// The one queue in front of the model: every transcription in the process waits here for its turn.
// Up to `concurrency` of them run at once (as many as one batched decoder run takes rows: their
// model calls share runs in the scheduler); the rest wait, so the cores are never oversubscribed
// by more work than a batch. It is bounded: when it is full, callers get a typed `overloaded`
// error at once (the server answers 429 with Retry-After) instead of waiting without limit. Higher priority (streams) goes first; equal
// priorities are served in arrival order. A job is handed the model's runner at its own priority,
// so its model calls are scheduled as it was queued (the rules are in priority.ts).
import { EarshotError } from '../errors.ts';

export interface QueueStats {
  /** Jobs waiting for their turn. */
  waiting: number;
  /** Jobs running now. */
  running: number;
}

interface Waiter {
  priority: number;
  seq: number;
  start: () => void;
  cancel: (e: unknown) => void;
}

/** What the queue says of a job besides its priority. */
export interface JobPlace {
  /** Its place in arrival order (lower came first). */
  order: number;
  /** Its withdrawal, when the caller gave one. */
  signal?: AbortSignal;
}

export interface WorkQueueOptions<R> {
  maxWaiting?: number;
  concurrency?: number;
  /**
   * What a job is handed when it starts, at its priority: the model's runner with every call at
   * that priority and place, withdrawn with the job, so the scheduler orders the job's model calls
   * as the queue ordered the job, and drops those a withdrawn job left waiting.
   */
  at?: (priority: number, place: JobPlace) => R;
}

export class WorkQueue<R = undefined> {
  readonly maxWaiting: number;
  readonly concurrency: number;
  private readonly at: (priority: number, place: JobPlace) => R;
  private running = 0;
  private seq = 0;
  private readonly waiters: Waiter[] = [];
  private readonly listeners = new Set<(s: QueueStats) => void>();

  constructor(opts: WorkQueueOptions<R> = {}) {
    this.maxWaiting = opts.maxWaiting ?? 64;
    this.concurrency = opts.concurrency ?? 1;
    this.at = opts.at ?? (() => undefined as R);
  }

  /** True when a new job would be refused right now. */
  get full(): boolean {
    return this.running >= this.concurrency && this.waiters.length >= this.maxWaiting;
  }

  stats(): QueueStats {
    return { waiting: this.waiters.length, running: this.running };
  }

  /** Called with the new stats whenever a job is queued, starts or ends (metrics). */
  onChange(listener: (s: QueueStats) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Runs `job` when its turn comes (higher `priority` first; see priority.ts), handing it what
   * `at` gives for that priority. Rejects at once with `overloaded` when the queue is full, and
   * with the signal's reason if `signal` aborts while waiting (the job then never starts).
   */
  async run<T>(job: (runner: R) => Promise<T>, opts: { priority?: number; signal?: AbortSignal } = {}): Promise<T> {
    opts.signal?.throwIfAborted();
    const priority = opts.priority ?? 0;
    const order = this.seq++;
    if (this.running >= this.concurrency) {
      if (this.waiters.length >= this.maxWaiting) {
        throw new EarshotError('overloaded', 'queue_full', `the work queue is full (${this.maxWaiting} waiting); retry later`);
      }
      await this.wait(priority, order, opts.signal);
    } else {
      this.running++;
      this.emit();
    }
    try {
      return await job(this.at(priority, { order, ...(opts.signal ? { signal: opts.signal } : {}) }));
    } finally {
      this.running--;
      this.next();
    }
  }

  private wait(priority: number, seq: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        this.emit();
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        priority,
        seq,
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        cancel: reject,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // Keep the list sorted: higher priority first, then arrival order.
      let at = this.waiters.length;
      while (at > 0 && this.waiters[at - 1]!.priority < priority) at--;
      this.waiters.splice(at, 0, waiter);
      this.emit();
    });
  }

  private next(): void {
    const w = this.waiters.shift();
    if (w) {
      this.running++;
      w.start();
    }
    this.emit();
  }

  private emit(): void {
    const s = this.stats();
    for (const l of this.listeners) l(s);
  }
}
