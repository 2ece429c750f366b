// The job system of one server: the store, the audio directory, the runner and the retention
// purge, opened together. Opening is lazy: a server that never receives a job creates no files;
// a server whose data directory already holds a job store opens it at startup (`openIfPresent`),
// recovers what the last process left, and resumes the unfinished jobs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EarshotError } from '../errors.ts';
import { log as rootLog } from '../log.ts';
import { JobAudio, newJobId } from './audio-files.ts';
import { recoverJobs } from './recovery.ts';
import { schedulePurge } from './retention.ts';
import { JobRunner, type JobRunnerOptions } from './runner.ts';
import { JobStore, type ListOptions } from './store.ts';
import type { Job, JobRequest } from './types.ts';

export interface JobServiceOptions extends Omit<JobRunnerOptions, 'store' | 'audio'> {
  dataDir: string;
  /** How long finished jobs are kept, seconds. */
  retentionS: number;
  /** Most jobs queued or running at once; more submissions are refused (429). */
  maxUnfinished: number;
  /** How often the retention purge runs (default: every minute, or the retention time if shorter). */
  purgeEveryMs?: number;
}

export interface Submission {
  owner: string;
  model: string;
  filename: string;
  request: JobRequest;
  audio: Uint8Array;
}

interface Opened {
  store: JobStore;
  audio: JobAudio;
  runner: JobRunner;
  stopPurge: () => void;
}

const log = rootLog.child({ component: 'jobs' });

export class JobService {
  private opening: Promise<Opened> | undefined;
  private closed = false;

  constructor(private readonly opts: JobServiceOptions) {}

  get dbPath(): string {
    return join(this.opts.dataDir, 'jobs.db');
  }

  /** Opens the store if the data directory has one (a restart): unfinished jobs resume. */
  async openIfPresent(): Promise<void> {
    if (existsSync(this.dbPath)) await this.open();
  }

  /** The opened system, opening (and recovering) it on first use. */
  open(): Promise<Opened> {
    if (this.closed) return Promise.reject(new EarshotError('not_ready', 'shutting_down', 'the server is shutting down'));
    this.opening ??= (async () => {
      const store = JobStore.open(this.opts.dataDir);
      try {
        const audio = new JobAudio(join(this.opts.dataDir, 'audio'));
        const recovered = await recoverJobs(store, audio);
        if (recovered.requeued.length > 0 || recovered.orphans.length > 0) {
          log.info({ requeued: recovered.requeued.length, orphansRemoved: recovered.orphans.length }, 'jobs recovered');
        }
        const retentionMs = this.opts.retentionS * 1000;
        const stopPurge = schedulePurge(store, audio, retentionMs, this.opts.purgeEveryMs ?? Math.max(1000, Math.min(60_000, retentionMs)), (e) =>
          log.error({ err: e }, 'purging expired jobs failed'),
        );
        const { dataDir: _d, retentionS: _r, maxUnfinished: _m, purgeEveryMs: _p, ...runnerOpts } = this.opts;
        const runner = new JobRunner({ ...runnerOpts, store, audio });
        runner.start();
        return { store, audio, runner, stopPurge };
      } catch (e) {
        store.close();
        throw e;
      }
    })();
    this.opening.catch(() => (this.opening = undefined));
    return this.opening;
  }

  /** Stores the upload and queues the job; it is durable when this resolves. */
  async submit(s: Submission): Promise<Job> {
    const { store, audio, runner } = await this.open();
    if (store.countUnfinished() >= this.opts.maxUnfinished) {
      throw new EarshotError('overloaded', 'job_queue_full', `${this.opts.maxUnfinished} jobs are already waiting or running; retry later`);
    }
    const id = newJobId();
    await audio.save(id, s.audio);
    let job: Job;
    try {
      job = store.create({ id, owner: s.owner, model: s.model, filename: s.filename, request: s.request, createdAt: Date.now() });
    } catch (e) {
      await audio.remove(id);
      throw e;
    }
    runner.kick();
    return job;
  }

  /** A job of `owner`, or a 404. */
  async get(id: string, owner: string): Promise<{ job: Job; store: JobStore }> {
    const o = await this.existing();
    const job = o?.store.get(id, owner);
    if (!o || !job) throw notFound(id);
    return { job, store: o.store };
  }

  /** `owner`'s jobs, newest first. */
  async list(owner: string, opts: ListOptions): Promise<{ jobs: Job[]; hasMore: boolean }> {
    const o = await this.existing();
    if (!o) {
      if (opts.after !== undefined) throw notFound(opts.after, 'after');
      return { jobs: [], hasMore: false };
    }
    const page = o.store.list(owner, opts);
    if (!page) throw notFound(opts.after!, 'after');
    return page;
  }

  /** Deletes a job of `owner` with its audio, stopping it first if it runs; returns it as it was. */
  async cancel(id: string, owner: string): Promise<Job> {
    const o = await this.existing();
    const job = o?.store.remove(id, owner);
    if (!o || !job) throw notFound(id);
    await o.runner.cancel(id);
    await o.audio.remove(id);
    return job;
  }

  /** Stops the runner (running jobs go back to the queue with their progress) and closes the store. */
  async close(): Promise<void> {
    this.closed = true;
    const o = await this.opening?.catch(() => undefined);
    if (!o) return;
    o.stopPurge();
    await o.runner.stop();
    o.store.close();
  }

  /** The opened system if there is a store to read (never creates one). */
  private async existing(): Promise<Opened | undefined> {
    if (this.opening || existsSync(this.dbPath)) return this.open();
    return undefined;
  }
}

function notFound(id: string, param?: string): EarshotError {
  const e = new EarshotError('not_found', 'job_not_found', `no job "${id.slice(0, 100)}"`);
  if (param) (e as EarshotError & { param?: string }).param = param;
  return e;
}
