// Runs the queued jobs of the store, a bounded number at a time. The queue itself is the database:
// the runner claims the oldest queued job only when it has a free slot, so nothing waits in memory
// however many jobs are submitted. Each run goes through the model's WorkQueue like a request (at a
// lower priority, so interactive requests go first) and stores every window's segments as soon as
// it is decoded; a run interrupted by a crash or a shutdown resumes from the window it had reached.
import { decodeAudio } from '../audio/index.ts';
import type { Segment } from '../decoding/segment.ts';
import type { Whisper } from '../decoding/whisper.ts';
import { EarshotError, isEarshotError } from '../errors.ts';
import { log as rootLog } from '../log.ts';
import { transcribeWithVad, type VadTranscribeOptions } from '../streaming/vad-transcribe.ts';
import type { JobAudio } from './audio-files.ts';
import type { JobStore } from './store.ts';
import type { Job } from './types.ts';

/** Where the runner gets models: the server's ModelHost. */
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
  /** Runs a job may start before it is failed (a job that keeps crashing the process must not loop forever). */
  maxAttempts?: number;
  /** How often queued jobs are looked for besides submissions and finishes (a retry after a full queue). */
  pollMs?: number;
  /** Called once per job that ends here (completed or failed). */
  onFinished?: (job: Job) => void;
  /** Called with the number of running jobs whenever it changes. */
  onRunning?: (running: number) => void;
  /** Refuses a job the model cannot run (e.g. translation on an English-only model); called before it starts. */
  check?: (w: Whisper, job: Job) => void;
}

/** Priority in the model's queue: below requests (0) and streams. */
const JOB_PRIORITY = -1;

const CANCELLED = new EarshotError('internal', 'job_cancelled', 'the job was cancelled');
const STOPPING = new EarshotError('internal', 'job_interrupted', 'the server is shutting down');

interface Active {
  controller: AbortController;
  done: Promise<void>;
}

export class JobRunner {
  private readonly active = new Map<string, Active>();
  private readonly log = rootLog.child({ component: 'jobs' });
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** No job is claimed before this (unix ms): the model could not take one a moment ago. */
  private backoffUntil = 0;

  constructor(private readonly opts: JobRunnerOptions) {}

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

  /** Fills the free slots with queued jobs, oldest first. */
  kick(): void {
    if (this.stopped || Date.now() < this.backoffUntil) return;
    while (this.active.size < this.opts.concurrency) {
      const job = this.opts.store.claimNext(Date.now());
      if (!job) break;
      const controller = new AbortController();
      const done = this.execute(job, controller.signal).finally(() => {
        this.active.delete(job.id);
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

  private async execute(job: Job, signal: AbortSignal): Promise<void> {
    const { store, audio } = this.opts;
    const maxAttempts = this.opts.maxAttempts ?? 3;
    let lease: { whisper: Whisper; release(): void } | undefined;
    try {
      if (job.attempts > maxAttempts) {
        throw new EarshotError('internal', 'too_many_attempts', `the job was interrupted ${maxAttempts} times while running; it is not tried again`);
      }
      // Held for the whole run, so the model is not unloaded or swapped out under the job.
      lease = await this.opts.model.lease(job.model);
      const w = lease.whisper;
      this.opts.check?.(w, job);
      const decoded = await decodeAudio(audio.path(job.id), { signal, ...(this.opts.maxAudioSeconds ? { maxDurationS: this.opts.maxAudioSeconds } : {}) });
      await w.queue.run(() => this.transcribe(w, job, decoded.samples, decoded.durationS, signal), { signal, priority: JOB_PRIORITY });
      await audio.remove(job.id);
    } catch (e) {
      if (signal.aborted && signal.reason === STOPPING) {
        store.requeue(job.id, { refundAttempt: true });
      } else if (e === CANCELLED || (signal.aborted && signal.reason === CANCELLED)) {
        await audio.remove(job.id);
      } else if (isEarshotError(e) && (e.kind === 'overloaded' || e.kind === 'not_ready')) {
        // The model's queue is full of requests, or the model is loading or unloaded: try again on a later poll.
        store.requeue(job.id, { refundAttempt: true });
        this.backoffUntil = Date.now() + (this.opts.pollMs ?? 1000);
      } else {
        const error = isEarshotError(e) ? { code: e.code, message: e.message } : { code: 'internal_error', message: 'internal error while transcribing' };
        if (!isEarshotError(e)) this.log.error({ err: e, jobId: job.id }, 'job failed');
        if (store.fail(job.id, error, Date.now())) this.finished(job.id);
        await audio.remove(job.id);
      }
    } finally {
      lease?.release();
    }
  }

  private async transcribe(w: Whisper, job: Job, samples: Float32Array, duration: number, signal: AbortSignal): Promise<void> {
    const { store } = this.opts;
    const r = job.request;
    const resumed = job.nextSeek > 0 || job.previousTokens !== null;
    let pending: Segment[] = [];
    const options: VadTranscribeOptions = {
      task: r.task,
      vadFilter: r.vadFilter,
      signal,
      ...(this.opts.sampleLen !== undefined ? { sampleLen: this.opts.sampleLen } : {}),
      // A resumed run keeps the language the first run detected.
      ...((job.language ?? r.language) !== undefined ? { language: (job.language ?? r.language)! } : {}),
      ...(r.temperature !== undefined ? { temperature: r.temperature } : {}),
      ...(r.prompt !== undefined ? { initialPrompt: r.prompt } : {}),
      ...(resumed ? { startSeek: job.nextSeek, previousTokens: job.previousTokens ?? undefined } : {}),
      onProgress: (done, _total, resume) => {
        if (!store.saveWindow(job.id, pending, resume, done)) throw CANCELLED;
        pending = [];
      },
    };
    if (resumed) this.log.info({ jobId: job.id, seek: job.nextSeek, attempt: job.attempts }, 'job resumed');
    const run = await transcribeWithVad(w, samples, options);
    if (!store.setAudioInfo(job.id, { duration, language: run.language, languageProbability: run.languageProbability })) throw CANCELLED;
    for await (const s of run.segments) {
      signal.throwIfAborted();
      pending.push(s);
    }
    signal.throwIfAborted();
    if (!store.complete(job.id, Date.now(), pending)) throw CANCELLED;
    // Reported in the same tick as the commit (the crash test counts these lines).
    this.finished(job.id);
  }

  private finished(id: string): void {
    const job = this.opts.store.get(id);
    if (!job) return;
    this.log.info({ jobId: id, status: job.status, attempts: job.attempts, ...(job.error ? { code: job.error.code } : {}) }, `job ${job.status}`);
    this.opts.onFinished?.(job);
  }
}
