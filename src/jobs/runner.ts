// Runs the queued jobs of the store, a bounded number at a time. The queue itself is the database:
// the runner claims the oldest queued job only when it has a free slot, so nothing waits in memory
// however many jobs are submitted. Each run goes through the model's WorkQueue like a request (at a
// lower priority, so interactive requests go first) and stores every window's segments as soon as
// it is decoded; a run interrupted by a crash or a shutdown resumes from the window it had reached.
//
// A storage fault (full disk, I/O error) never escapes: the job pauses (its row stays as it was,
// which needs no write), its `paused` reason is shown, and it is retried from its last stored
// window with a growing delay until the disk takes writes again. Nothing here may throw out of a
// timer or a promise chain: that would take down the process and every request in flight.
import type { Whisper } from '../runtime/loaded-model.ts';
import { EarshotError, isEarshotError } from '../errors.ts';
import { storageFault } from './storage-faults.ts';
import { log as rootLog } from '../log.ts';
import type { JobAudio } from './audio-files.ts';
import { decodeJob, JOB_CANCELLED, type JobSink } from './decode-job.ts';
import type { JobStore } from './store.ts';
import type { Job } from './types.ts';

/** Where the runner gets models: the server's ModelRegistry. */
export interface ModelSource {
  /** A counted use of the model a job names (by its id); rejects `not_ready` while it cannot serve. */
  lease(name: string): Promise<{ whisper: Whisper; release(): void }>;
  /** Called once the default model has first loaded. */
  onLoaded(listener: (w: Whisper) => void): void;
}

export interface JobRunnerOptions {
  store: JobStore;
  audio: JobAudio;
  model: ModelSource;
  /** Jobs running at once. */
  concurrency: number;
  sampleLen?: number;
  maxAudioSeconds?: number;
  /** First delay before a job paused by a storage fault is retried (doubling up to 30 s; default 1 s). */
  storageRetryMs?: number;
  /** How often queued jobs are looked for besides submissions and finishes (a retry after a full queue). */
  pollMs?: number;
  /** Called once per job that ends here (completed or failed). */
  onFinished?: (job: Job) => void;
  /** Called with the number of running jobs whenever it changes. */
  onRunning?: (running: number) => void;
  /** Refuses a job the model cannot run (e.g. translation on an English-only model); called before it starts. */
  check?: (w: Whisper, job: Job) => void;
  /** Called with each storage fault met (the service turns a damaged store into /ready 503). */
  onStorageFault?: (fault: EarshotError) => void;
}

/** Why a job is paused: a storage fault, and since when (unix ms). */
export interface Pause {
  code: string;
  message: string;
  since: number;
}


const CANCELLED = JOB_CANCELLED;
const STOPPING = new EarshotError('internal', 'job_interrupted', 'the server is shutting down');
const MAX_STORAGE_RETRY_MS = 30_000;

interface Active {
  controller: AbortController;
  done: Promise<void>;
}

export class JobRunner {
  private readonly active = new Map<string, Active>();
  private readonly paused = new Map<string, Pause>();
  private readonly log = rootLog.child({ component: 'jobs' });
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** No job is claimed before this (unix ms): the model could not take one a moment ago, or the disk failed. */
  private backoffUntil = 0;

  /** The store as the shared decode loop (decode-job.ts) records a run's windows. */
  private readonly sink: JobSink;

  constructor(private readonly opts: JobRunnerOptions) {
    const { store } = opts;
    this.sink = {
      enterWindow: (job) => store.enterWindow(job.id),
      setAudioInfo: (job, info) => store.setAudioInfo(job.id, info),
      saveWindow: (job, segments, resume, done) => store.saveWindow(job.id, segments, resume, done),
      complete: (job, now, segments) => store.complete(job.id, now, segments),
    };
  }

  /** Starts taking jobs (now if the model is loaded, else once it is). */
  start(): void {
    this.opts.model.onLoaded(() => {
      this.backoffUntil = 0;
      this.kick();
    });
    this.timer = setInterval(() => this.kick(), this.opts.pollMs ?? 1000);
    this.timer.unref();
    this.kick();
  }

  /** Jobs running now. */
  get running(): number {
    return this.active.size;
  }

  /** Why job `id` is paused, if it is. */
  pauseOf(id: string): Pause | undefined {
    return this.paused.get(id);
  }

  /** Fills the free slots with queued jobs, oldest first. Never throws. */
  kick(): void {
    if (this.stopped || Date.now() < this.backoffUntil) return;
    while (this.active.size < this.opts.concurrency) {
      let job: Job | undefined;
      try {
        job = this.opts.store.claimNext(Date.now());
      } catch (e) {
        this.storageTrouble(e, 'claiming a queued job failed');
        this.backoffUntil = Date.now() + (this.opts.storageRetryMs ?? 1000);
        return;
      }
      if (!job) break;
      const controller = new AbortController();
      const done = this.execute(job, controller.signal)
        .catch((e: unknown) => this.log.error({ err: e, jobId: job.id }, 'job runner error'))
        .finally(() => {
          this.active.delete(job.id);
          this.paused.delete(job.id);
          this.opts.onRunning?.(this.active.size);
          this.kick();
        });
      this.active.set(job.id, { controller, done });
      this.opts.onRunning?.(this.active.size);
    }
  }

  /** Stops job `id` if it is running (its row is already deleted by the caller); resolves once it has stopped. */
  async cancel(id: string): Promise<void> {
    const a = this.active.get(id);
    if (!a) return;
    a.controller.abort(CANCELLED);
    await a.done;
  }

  /** Stops taking jobs and interrupts the running ones; they go back to the queue with their progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const all = [...this.active.values()];
    for (const a of all) a.controller.abort(STOPPING);
    await Promise.all(all.map((a) => a.done));
  }

  /** Runs a claimed job to its end, pausing and retrying it while the disk fails. */
  private async execute(claimed: Job, signal: AbortSignal): Promise<void> {
    const { store, audio } = this.opts;
    let job = claimed;
    let delay = this.opts.storageRetryMs ?? 1000;
    for (;;) {
      try {
        await this.attempt(job, signal);
        return;
      } catch (e) {
        const fault = signal.aborted ? undefined : storageFault(e);
        if (!fault) return this.interrupted(job, e, signal);
        this.opts.onStorageFault?.(fault);
        if (!this.paused.has(job.id)) this.log.warn({ jobId: job.id, code: fault.code, err: e }, 'job paused: storage fault');
        this.paused.set(job.id, { code: fault.code, message: `${fault.message}; the job resumes from its last stored window once its disk takes writes again`, since: this.paused.get(job.id)?.since ?? Date.now() });
      }
      if (!(await sleep(delay, signal))) return this.interrupted(job, signal.reason, signal);
      delay = Math.min(delay * 2, MAX_STORAGE_RETRY_MS);
      try {
        const fresh = store.get(job.id);
        // Cancelled, or finished by the write that failed late (its audio is then an orphan the next start sweeps).
        if (!fresh || fresh.status !== 'running') return void (await audio.remove(job.id).catch(() => {}));
        job = fresh;
      } catch {
        // The store cannot even be read: keep what we had and try again after the next delay.
      }
    }
  }

  /**
   * One run of a job from its last stored window. The job's own failures (bad audio, a task its
   * model cannot do) are recorded here; a storage fault, an abort or a busy model is thrown to `execute`.
   */
  private async attempt(job: Job, signal: AbortSignal): Promise<void> {
    const { store, audio } = this.opts;
    let lease: { whisper: Whisper; release(): void } | undefined;
    try {
      // Held for the whole run, so the model is not unloaded or swapped out under the job.
      lease = await this.opts.model.lease(job.model);
      const w = lease.whisper;
      this.opts.check?.(w, job);
      await decodeJob(w, job, audio.path(job.id), this.sink, {
        signal,
        ...(this.opts.sampleLen !== undefined ? { sampleLen: this.opts.sampleLen } : {}),
        ...(this.opts.maxAudioSeconds !== undefined ? { maxAudioSeconds: this.opts.maxAudioSeconds } : {}),
        onWindow: () => this.paused.delete(job.id),
        onStart: (resumed) => this.log.info({ jobId: job.id, seek: job.nextSeek, interruptions: job.interruptions }, resumed ? 'job resumed' : 'job started'),
        // Reported in the same tick as the commit (the crash test counts these lines).
        onCompleted: () => this.finished(job.id),
      });
      this.paused.delete(job.id);
      await audio.remove(job.id);
    } catch (e) {
      if (signal.aborted || e === CANCELLED || storageFault(e) || retryLater(e)) throw e;
      const error = isEarshotError(e) ? { code: e.code, message: e.message } : { code: 'internal_error', message: 'internal error while transcribing' };
      if (!isEarshotError(e)) this.log.error({ err: e, jobId: job.id }, 'job failed');
      this.paused.delete(job.id);
      if (store.fail(job.id, error, Date.now())) this.finished(job.id);
      await audio.remove(job.id);
    } finally {
      lease?.release();
    }
  }

  /** A run that stopped without finishing: shut down, cancelled, or the model busy or loading. Never throws. */
  private async interrupted(job: Job, e: unknown, signal: AbortSignal): Promise<void> {
    const { store, audio } = this.opts;
    try {
      if (signal.aborted && signal.reason === STOPPING) {
        store.requeue(job.id);
      } else if (e === CANCELLED || (signal.aborted && signal.reason === CANCELLED)) {
        await audio.remove(job.id);
      } else if (retryLater(e)) {
        // The model's queue is full of requests, or the model is loading or unloaded: try again on a later poll.
        store.requeue(job.id);
        this.backoffUntil = Date.now() + (this.opts.pollMs ?? 1000);
      } else {
        this.log.error({ err: e, jobId: job.id }, 'job stopped by an unexpected error');
      }
    } catch (e2) {
      // Left as it is in the store (running): the next start recovers it.
      this.storageTrouble(e2, 'putting an interrupted job back in the queue failed');
    }
  }

  private storageTrouble(e: unknown, what: string): void {
    const fault = storageFault(e);
    if (fault) this.opts.onStorageFault?.(fault);
    if (fault) this.log.warn({ code: fault.code, err: e }, what);
    else this.log.error({ err: e }, what);
  }

  private finished(id: string): void {
    let job: Job | undefined;
    try {
      job = this.opts.store.get(id);
    } catch (e) {
      this.storageTrouble(e, 'reading a finished job failed');
    }
    if (!job) return;
    this.log.info({ jobId: id, status: job.status, ...(job.error ? { code: job.error.code } : {}) }, `job ${job.status}`);
    this.opts.onFinished?.(job);
  }
}

/** The model cannot take the job now (its queue is full, or it is loading or unloaded). */
function retryLater(e: unknown): boolean {
  return isEarshotError(e) && (e.kind === 'overloaded' || e.kind === 'not_ready') && storageFault(e) === undefined;
}

/** Waits `ms`; false if `signal` aborted first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = (): void => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
