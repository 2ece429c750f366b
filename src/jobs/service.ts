// The job system of one server: the data directory's lock, the store, the audio directory, the
// runner and the retention purge, opened together at startup (`start`, before the server listens).
// What can go wrong with the data directory decides how the server starts:
// - in use by another process, not writable, or holding a store of an unknown schema: `start`
//   throws, and the server stops with one line instead of running half-working;
// - a store that fails its integrity check (or reads as corrupt later): the server runs on, its job
//   routes answer 503 `job_store_damaged` and `problem()` turns /ready 503 with the reason;
// - a full disk or an I/O error: submissions get 507, running jobs pause (runner.ts), the process
//   and every other request live on; a store that could not be opened is tried again on the next call.
import { join } from 'node:path';
import { EarshotError } from '../errors.ts';
import { log as rootLog } from '../log.ts';
import { JobAudio, newJobId } from './audio-files.ts';
import { DataDirLock } from './lock.ts';
import { recoverJobs } from './recovery.ts';
import { schedulePurge } from './retention.ts';
import { JobRunner, type JobRunnerOptions, type Pause } from './runner.ts';
import { storageFault } from './storage-faults.ts';
import { JobStore, type ListOptions } from './store.ts';
import type { Segment } from '../decoding/transcription.ts';
import type { JobQueue, Submission } from './queue.ts';
import type { Job } from './types.ts';

export interface JobServiceOptions extends Omit<JobRunnerOptions, 'store' | 'audio'> {
  dataDir: string;
  /** How long finished jobs are kept, seconds. */
  retentionS: number;
  /** Most jobs queued or running at once; more submissions are refused (429). */
  maxUnfinished: number;
  /** How often the retention purge runs (default: every minute, or the retention time if shorter). */
  purgeEveryMs?: number;
}


interface Opened {
  store: JobStore;
  audio: JobAudio;
  runner: JobRunner;
  stopPurge: () => void;
}

const log = rootLog.child({ component: 'jobs' });

export class JobService implements JobQueue {
  private lock: DataDirLock | undefined;
  private opening: Promise<Opened> | undefined;
  private opened: Opened | undefined;
  /** Why the store cannot serve: set once it is found damaged, cleared only by a restart. */
  private damaged: EarshotError | undefined;
  private closed = false;

  constructor(private readonly opts: JobServiceOptions) {}

  /**
   * Takes the data directory and opens the store, resuming what the last process left. Throws (the
   * server must not start) when the directory is in use, not writable, or of an unknown schema;
   * a damaged store or a failing disk is recorded instead, and the server runs on.
   */
  async start(): Promise<void> {
    this.lock = DataDirLock.acquire(this.opts.dataDir);
    try {
      await this.open();
    } catch (e) {
      if (this.damaged) return;
      if (storageFault(e)) {
        log.warn({ err: e }, 'the job store could not be opened: job routes answer 507 until it can be');
        return;
      }
      this.lock.release();
      throw e;
    }
  }

  /** Why the job system cannot serve now (for /ready), or undefined. */
  problem(): string | undefined {
    return this.damaged?.message;
  }

  /** Why a running job is paused (a storage fault), if it is. */
  pauseOf(id: string): Pause | undefined {
    return this.opened?.runner.pauseOf(id);
  }

  /** Stores the upload and queues the job; it is durable when this resolves. */
  async submit(s: Submission): Promise<Job> {
    const { store, audio, runner } = await this.open();
    const queueFull = (): EarshotError =>
      new EarshotError('overloaded', 'job_queue_full', `${this.opts.maxUnfinished} jobs are already waiting or running; retry later`);
    // A cheap early answer that spares writing the upload; the bound itself is enforced by create().
    if (this.guard(() => store.countUnfinished()) >= this.opts.maxUnfinished) throw queueFull();
    const id = newJobId();
    try {
      await audio.save(id, s.audio);
    } catch (e) {
      throw this.fault(e);
    }
    let job: Job | undefined;
    try {
      job = store.create({ id, owner: s.owner, model: s.model, filename: s.filename, request: s.request, createdAt: Date.now() }, this.opts.maxUnfinished);
    } catch (e) {
      await audio.remove(id).catch(() => {});
      throw this.fault(e);
    }
    if (!job) {
      await audio.remove(id).catch(() => {});
      throw queueFull();
    }
    runner.kick();
    return job;
  }

  /** A job of `owner`, or a 404. */
  async get(id: string, owner: string): Promise<Job> {
    const o = await this.open();
    const job = this.guard(() => o.store.get(id, owner));
    if (!job) throw notFound(id);
    return job;
  }

  async segments(job: Job): Promise<Segment[]> {
    const o = await this.open();
    return this.guard(() => o.store.segments(job.id));
  }

  /** `owner`'s jobs, newest first. */
  async list(owner: string, opts: ListOptions): Promise<{ jobs: Job[]; hasMore: boolean }> {
    const o = await this.open();
    const page = this.guard(() => o.store.list(owner, opts));
    if (!page) throw notFound(opts.after!, 'after');
    return page;
  }

  /** Runs `read` on the store, turning a storage fault into its typed error (for the routes' reads). */
  guard<T>(read: () => T): T {
    try {
      return read();
    } catch (e) {
      throw this.fault(e);
    }
  }

  /** Deletes a job of `owner` with its audio, stopping it first if it runs; returns it as it was. */
  async cancel(id: string, owner: string): Promise<Job> {
    const o = await this.open();
    const job = this.guard(() => o.store.remove(id, owner));
    if (!job) throw notFound(id);
    await o.runner.cancel(id);
    await o.audio.remove(id).catch((e: unknown) => log.warn({ err: e, jobId: id }, 'removing a cancelled job\'s audio failed'));
    return job;
  }

  /** Stops the runner (running jobs go back to the queue with their progress), closes the store, frees the directory. */
  async close(): Promise<void> {
    this.closed = true;
    const o = await this.opening?.catch(() => undefined);
    if (o) {
      o.stopPurge();
      await o.runner.stop();
      o.store.close();
    }
    this.lock?.release();
  }

  /** The opened system; opened on first use, and again after a storage fault stopped an earlier try. */
  private open(): Promise<Opened> {
    if (this.closed) return Promise.reject(new EarshotError('not_ready', 'shutting_down', 'the server is shutting down'));
    if (this.damaged) return Promise.reject(this.damaged);
    if (!this.lock) return Promise.reject(new EarshotError('not_ready', 'jobs_not_started', 'the job system has not started yet'));
    this.opening ??= this.openNow();
    this.opening.catch(() => (this.opening = undefined));
    return this.opening;
  }

  private async openNow(): Promise<Opened> {
    let store: JobStore;
    try {
      store = JobStore.open(this.opts.dataDir);
    } catch (e) {
      throw this.fault(e);
    }
    try {
      const audio = new JobAudio(join(this.opts.dataDir, 'audio'));
      const recovered = await recoverJobs(store, audio);
      if (recovered.requeued.length > 0 || recovered.failed.length > 0 || recovered.orphans.length > 0) {
        log.info({ requeued: recovered.requeued.length, failed: recovered.failed, orphansRemoved: recovered.orphans.length }, 'jobs recovered');
      }
      for (const id of recovered.failed) {
        const job = store.get(id);
        if (job) this.opts.onFinished?.(job);
      }
      const retentionMs = this.opts.retentionS * 1000;
      const stopPurge = schedulePurge(store, audio, retentionMs, this.opts.purgeEveryMs ?? Math.max(1000, Math.min(60_000, retentionMs)), (e) =>
        log.error({ err: e }, 'purging expired jobs failed'),
      );
      const { dataDir: _d, retentionS: _r, maxUnfinished: _m, purgeEveryMs: _p, ...runnerOpts } = this.opts;
      const runner = new JobRunner({
        ...runnerOpts,
        store,
        audio,
        onStorageFault: (f) => {
          this.fault(f);
          this.opts.onStorageFault?.(f);
        },
      });
      runner.start();
      this.opened = { store, audio, runner, stopPurge };
      return this.opened;
    } catch (e) {
      store.close();
      throw this.fault(e);
    }
  }

  /** The typed error for `e`; a damaged store is remembered (and logged once) for /ready and every later call. */
  private fault(e: unknown): unknown {
    const f = storageFault(e);
    if (!f) return e;
    if (f.code === 'job_store_damaged' && !this.damaged) {
      this.damaged = f;
      log.error({ err: e, dataDir: this.opts.dataDir }, 'the job store is damaged: job routes answer 503 until it is repaired');
    }
    return f;
  }
}

function notFound(id: string, param?: string): EarshotError {
  return new EarshotError('not_found', 'job_not_found', `no job "${id.slice(0, 100)}"`, { param });
}
