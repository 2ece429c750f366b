// The one queue in front of the model: every transcription in the process waits here for its turn.
// Up to `concurrency` of them run at once (as many as one batched decoder run takes rows: their
// model calls share runs in the scheduler); the rest wait, so the cores are never oversubscribed
// by more work than a batch. It is bounded: when it is full, callers get a typed `overloaded`
// error at once (the server answers 429 with Retry-After) instead of waiting without limit. Higher priority (streams) goes first; equal
// priorities are served in arrival order. A job is handed the model's runner at its own priority,
// so its model calls are scheduled as it was queued (the rules are in priority.ts). A priority can
// also have a lane of its own, fewer jobs at once than the queue's concurrency (`lane`): on the CPU
// a stream's kind of work runs one job at a time (priority.ts says why), while a job of another
// priority may start beside it.
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
  /** Most jobs of `priority` running at once (default: `concurrency` for every priority). */
  lane?: (priority: number) => number;
}

export class WorkQueue<R = undefined> {
  readonly maxWaiting: number;
  readonly concurrency: number;
  readonly lane: (priority: number) => number;
  private readonly at: (priority: number, place: JobPlace) => R;
  private running = 0;
  /** Jobs running now, by priority. */
  private readonly runningAt = new Map<number, number>();
  private seq = 0;
  private readonly waiters: Waiter[] = [];
  private readonly listeners = new Set<(s: QueueStats) => void>();

  constructor(opts: WorkQueueOptions<R> = {}) {
    this.maxWaiting = opts.maxWaiting ?? 64;
    this.concurrency = opts.concurrency ?? 1;
    this.at = opts.at ?? (() => undefined as R);
    this.lane = opts.lane ?? (() => this.concurrency);
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
    // A job waits when the queue or its lane is full, or when one of its own priority already waits
    // (that one's lane is full: it keeps its place).
    if (!this.mayStart(priority) || this.waiters.some((w) => w.priority === priority)) {
      if (this.waiters.length >= this.maxWaiting) {
        throw new EarshotError('overloaded', 'queue_full', `the work queue is full (${this.maxWaiting} waiting); retry later`);
      }
      await this.wait(priority, order, opts.signal);
    } else {
      this.begin(priority);
      this.emit();
    }
    try {
      return await job(this.at(priority, { order, ...(opts.signal ? { signal: opts.signal } : {}) }));
    } finally {
      this.running--;
      this.runningAt.set(priority, this.runningAt.get(priority)! - 1);
      this.next();
    }
  }

  private mayStart(priority: number): boolean {
    return this.running < this.concurrency && (this.runningAt.get(priority) ?? 0) < this.lane(priority);
  }

  private begin(priority: number): void {
    this.running++;
    this.runningAt.set(priority, (this.runningAt.get(priority) ?? 0) + 1);
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

  /** Starts the waiting jobs that may start now, in queue order (a job whose lane is full keeps its place). */
  private next(): void {
    for (let i = 0; i < this.waiters.length && this.running < this.concurrency; ) {
      const w = this.waiters[i]!;
      if (!this.mayStart(w.priority)) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      this.begin(w.priority);
      w.start();
    }
    this.emit();
  }

  private emit(): void {
    const s = this.stats();
    for (const l of this.listeners) l(s);
  }
}
