// The one queue in front of the model: every transcription in the process waits here for its turn.
// Up to `concurrency` of them run at once (as many as one batched decoder run takes rows: their
// model calls share runs in the scheduler); the rest wait, so the cores are never oversubscribed
// by more work than a batch. It is bounded: when it is full, callers get a typed `overloaded`
// error at once (the server answers 429 with Retry-After) instead of waiting without limit. Higher
// priority (streams) goes first; equal priorities are served in arrival order. A job is handed the
// model's runner at its own priority, so its model calls are scheduled as it was queued (the rules
// are in priority.ts). Priorities can also share a lane that runs fewer jobs at once than the queue
// (`lane`: on the CPU, streams' work runs one job at a time while requests batch beside it;
// priority.ts says why). A job that must wait for its lane may have a running lower-priority job of
// the lane withdrawn to make room, when that job said it may be (`preempt`: a stream's partial,
// which is worthless late).
import { EarshotError } from '../errors.ts';

export interface QueueStats {
  /** Jobs waiting for their turn. */
  waiting: number;
  /** Jobs running now. */
  running: number;
}

/** A set of priorities that run at most `size` jobs at once between them. */
export interface Lane {
  name: string;
  size: number;
}

/** A job running, or admitted to run. */
interface Running {
  priority: number;
  lane: Lane | null;
  /** Withdraws the job (given by a job that may make room for higher-priority work of its lane). */
  preempt?: () => void;
}

interface Waiter {
  job: Running;
  seq: number;
  start: () => void;
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
  /** The lane of a job of `priority`, or null (the default): only the queue's concurrency bounds it. */
  lane?: (priority: number) => Lane | null;
}

export interface RunOptions {
  priority?: number;
  signal?: AbortSignal;
  /**
   * The job may be withdrawn, while it runs, for a higher-priority job waiting for its lane: the
   * queue calls this at most once, and the job is expected to end soon after (through its signal).
   */
  preempt?: () => void;
}

export class WorkQueue<R = undefined> {
  readonly maxWaiting: number;
  readonly concurrency: number;
  readonly lane: (priority: number) => Lane | null;
  private readonly at: (priority: number, place: JobPlace) => R;
  private readonly active = new Set<Running>();
  private seq = 0;
  private readonly waiters: Waiter[] = [];
  private readonly listeners = new Set<(s: QueueStats) => void>();

  constructor(opts: WorkQueueOptions<R> = {}) {
    this.maxWaiting = opts.maxWaiting ?? 64;
    this.concurrency = opts.concurrency ?? 1;
    this.at = opts.at ?? (() => undefined as R);
    this.lane = opts.lane ?? (() => null);
  }

  /** True when a new job would be refused right now. */
  get full(): boolean {
    return this.active.size >= this.concurrency && this.waiters.length >= this.maxWaiting;
  }

  stats(): QueueStats {
    return { waiting: this.waiters.length, running: this.active.size };
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
  async run<T>(job: (runner: R) => Promise<T>, opts: RunOptions = {}): Promise<T> {
    opts.signal?.throwIfAborted();
    const priority = opts.priority ?? 0;
    const me: Running = { priority, lane: this.lane(priority), ...(opts.preempt ? { preempt: opts.preempt } : {}) };
    const order = this.seq++;
    // A job waits when the queue or its lane is full, or when a job of its lane that goes before it
    // already waits (that one keeps its place).
    if (!this.mayStart(me) || this.waiters.some((w) => sameLane(w.job, me) && w.job.priority >= priority)) {
      if (this.waiters.length >= this.maxWaiting) {
        throw new EarshotError('overloaded', 'queue_full', `the work queue is full (${this.maxWaiting} waiting); retry later`);
      }
      this.makeRoom(me);
      await this.wait(me, order, opts.signal);
    } else {
      this.active.add(me);
      this.emit();
    }
    try {
      return await job(this.at(priority, { order, ...(opts.signal ? { signal: opts.signal } : {}) }));
    } finally {
      this.active.delete(me);
      this.next();
    }
  }

  private mayStart(job: Running): boolean {
    if (this.active.size >= this.concurrency) return false;
    if (job.lane === null) return true;
    let inLane = 0;
    for (const r of this.active) if (sameLane(r, job)) inLane++;
    return inLane < job.lane.size;
  }

  /** Withdraws the lowest-priority preemptible job of `me`'s lane below `me`'s priority, if there is one. */
  private makeRoom(me: Running): void {
    let victim: Running | undefined;
    for (const r of this.active) {
      if (sameLane(r, me) && r.preempt && r.priority < me.priority && (!victim || r.priority < victim.priority)) victim = r;
    }
    if (!victim) return;
    const preempt = victim.preempt!;
    delete victim.preempt; // once
    preempt();
  }

  private wait(me: Running, seq: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        this.emit();
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        job: me,
        seq,
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          this.active.add(me);
          resolve();
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // Keep the list sorted: higher priority first, then arrival order.
      let at = this.waiters.length;
      while (at > 0 && this.waiters[at - 1]!.job.priority < me.priority) at--;
      this.waiters.splice(at, 0, waiter);
      this.emit();
    });
  }

  /** Starts the waiting jobs that may start now, in queue order (one whose lane is full keeps its place). */
  private next(): void {
    for (let i = 0; i < this.waiters.length && this.active.size < this.concurrency; ) {
      const w = this.waiters[i]!;
      if (!this.mayStart(w.job)) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      w.start();
    }
    this.emit();
  }

  private emit(): void {
    const s = this.stats();
    for (const l of this.listeners) l(s);
  }
}

function sameLane(a: Running, b: Running): boolean {
  return a.lane !== null && b.lane !== null && a.lane.name === b.lane.name;
}
