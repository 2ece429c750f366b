// The one interface the jobs API (server/routes/jobs.ts) and the server use for durable jobs,
// whatever keeps them: the embedded SQLite queue of one machine (service.ts, the default) or the
// cluster's Redis and BullMQ (cluster/redis-jobs.ts, with `--redis`). Both keep the same contract:
// the same states, progress, results kept for the retention time, jobs visible only to the key that
// made them, the same bounds (429) and errors.
import type { Segment } from '../decoding/transcription.ts';
import type { Pause } from './runner.ts';
import type { ListOptions } from './store.ts';
import type { Job, JobRequest } from './types.ts';

export type { ListOptions } from './store.ts';

export interface Submission {
  owner: string;
  model: string;
  filename: string;
  request: JobRequest;
  /** The uploaded audio: its bytes, or the path of the file it was spooled to. */
  audio: Uint8Array | string;
}

export interface JobQueue {
  /** Opens the queue before the server listens; throws when the server must not start. */
  start(): Promise<void>;
  /** Stops what runs here and lets go of the queue's resources. */
  close(): Promise<void>;
  /** Why the queue cannot serve now (for /ready), or undefined. */
  problem(): string | undefined;
  /** Why a running job is paused (a storage fault), if it is. */
  pauseOf(id: string): Pause | undefined;
  /** Stores the upload and queues the job; the job is durable when this resolves. */
  submit(s: Submission): Promise<Job>;
  /** A job of `owner`, or a 404 `job_not_found`. */
  get(id: string, owner: string): Promise<Job>;
  /** The segments a completed job produced, in order. */
  segments(job: Job): Promise<Segment[]>;
  /** `owner`'s jobs, newest first; a 404 when `after` names no job of theirs. */
  list(owner: string, opts: ListOptions): Promise<{ jobs: Job[]; hasMore: boolean }>;
  /** Deletes a job of `owner` with its audio, stopping it first if it runs; returns it as it was. */
  cancel(id: string, owner: string): Promise<Job>;
}
