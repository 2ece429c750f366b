// The worker's side of durable jobs: one BullMQ consumer per served model on its `jobs-<model id>`
// queue, so a job only ever reaches a worker that has its model. Each job runs through the shared
// decode loop (jobs/decode-job.ts, the code the SQLite runner runs) on the model's work queue at a
// job's priority, and every finished 30 s window is stored in the job's record (job-records.ts)
// with the point a later run resumes from. So:
// - a worker killed mid-job (kill -9, a lost machine) stops renewing its BullMQ lock; after
//   --lock-duration another worker's stalled-job check puts the job back, and the next run resumes
//   at the last stored window with the text before it as the prompt (the record's run token shuts
//   out the old run, should it still be alive: the job completes exactly once);
// - SIGTERM (`close`) stops the runs, puts each job back in the queue with its stored windows and
//   hands it back to BullMQ (moveToWait), for another worker or this one's next start;
// - a cancelled job (its record deleted by an API node) is stopped at once through the cancel
//   channel, or at its next window if the message was missed.
import { randomUUID } from 'node:crypto';
import { DelayedError, type Job as BullJob, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { EarshotError, isEarshotError } from '../errors.ts';
import { decodeJob, JOB_CANCELLED, type JobSink } from '../jobs/decode-job.ts';
import { MAX_INTERRUPTIONS } from '../jobs/recovery.ts';
import type { Job, StoredStatus } from '../jobs/types.ts';
import { log as rootLog } from '../log.ts';
import type { Whisper } from '../runtime/loaded-model.ts';
import { assertTaskSupported } from '../runtime/transcriber.ts';
import { JOB_CANCEL_CHANNEL, JobRecords, jobQueueName } from './job-records.ts';
import { connectRedis, KEY_PREFIX, redisOptions, subscribeTo } from './redis.ts';
import { readUpload } from './uploads.ts';

export interface JobConsumerOptions {
  redisUrl: string;
  /** The models this worker serves, by the id jobs name them. */
  models: ReadonlyArray<{ id: string; whisper: Whisper }>;
  /** Jobs run at once per model. */
  concurrency: number;
  sampleLen?: number;
  maxAudioSeconds?: number;
  /** How long a job's lock lasts unless renewed (renewed every half of it): a dead worker's jobs move on after this. */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose lock expired. */
  stalledIntervalMs?: number;
  /** Called once per job that ends here. */
  onFinished?: (model: string, status: StoredStatus) => void;
  /** Called with the number of jobs running here whenever it changes. */
  onRunning?: (running: number) => void;
}

const log = rootLog.child({ component: 'jobs' });
const STOPPING = new EarshotError('not_ready', 'worker_stopping', 'the worker is shutting down');
const RETRY_MS = 1000;

export class JobConsumer {
  private readonly workers: Worker<{ id: string }, void>[] = [];
  private readonly active = new Map<string, AbortController>();

  private constructor(
    private readonly opts: JobConsumerOptions,
    private readonly records: JobRecords,
    private readonly cancels: Redis,
  ) {}

  static async start(opts: JobConsumerOptions): Promise<JobConsumer> {
    const redis = connectRedis(opts.redisUrl, 'earshot-worker-jobs');
    // Subscribed before taking any job, so no cancellation of one it runs can be missed.
    let c: JobConsumer | undefined;
    const cancels = await subscribeTo(opts.redisUrl, 'earshot-worker-job-cancels', JOB_CANCEL_CHANNEL, (id) => c?.active.get(id)?.abort(JOB_CANCELLED));
    c = new JobConsumer(opts, new JobRecords(redis), cancels);
    for (const m of opts.models) {
      const worker = new Worker<{ id: string }, void>(jobQueueName(m.id), (job, token) => c.process(m.whisper, m.id, job, token), {
        connection: redisOptions(opts.redisUrl),
        prefix: KEY_PREFIX,
        concurrency: opts.concurrency,
        lockDuration: opts.lockDurationMs ?? 30_000,
        stalledInterval: opts.stalledIntervalMs ?? 30_000,
        // Interruptions are counted by the record (a job is failed after MAX_INTERRUPTIONS without progress), not by BullMQ.
        maxStalledCount: Number.MAX_SAFE_INTEGER,
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 0 },
      });
      worker.on('error', (e: Error) => log.warn({ err: { message: e.message }, model: m.id }, 'job consumer error'));
      c.workers.push(worker);
    }
    return c;
  }

  /** Jobs running here now. */
  get running(): number {
    return this.active.size;
  }

  /** Takes no more jobs, hands the running ones back to the queue with their stored windows, disconnects. */
  async close(): Promise<void> {
    const closing = Promise.all(this.workers.map((w) => w.close()));
    for (const c of this.active.values()) c.abort(STOPPING);
    await closing;
    this.cancels.disconnect();
    this.records.redis.disconnect();
  }

  private async process(whisper: Whisper, model: string, bull: BullJob<{ id: string }>, lockToken: string | undefined): Promise<void> {
    const id = bull.data.id;
    const { records } = this;
    // This run's token: the record takes writes only from the run that holds it.
    const run = randomUUID();
    const claim = await records.claim(id, run, MAX_INTERRUPTIONS);
    if (claim === 'skip') return; // cancelled, or already finished
    if (claim === 'exhausted') {
      const message = `workers stopped more than ${MAX_INTERRUPTIONS} times while decoding this job, without a window finished in between; it is not tried again`;
      if (await records.finish(id, run, { status: 'failed', error: { code: 'too_many_attempts', message } })) this.finished(model, id, 'failed');
      return;
    }
    const job = await records.get(id);
    if (!job) return;
    const controller = new AbortController();
    this.active.set(id, controller);
    this.opts.onRunning?.(this.active.size);
    try {
      await this.attempt(whisper, job, run, controller.signal);
    } catch (e) {
      const reason = controller.signal.aborted ? controller.signal.reason : e;
      if (reason === STOPPING || retryLater(reason)) {
        // Back to the queue, its stored windows kept; nothing is counted against it.
        await records.requeue(id, run);
        // Should BullMQ's move fail, the job is still left to BullMQ as moved: its lock then expires
        // and the stalled-job check puts it back, rather than BullMQ failing (and dropping) it.
        if (reason === STOPPING) {
          log.info({ jobId: id }, 'job handed back');
          await bull.moveToWait(lockToken).catch((e2: unknown) => log.warn({ err: e2, jobId: id }, 'handing a job back failed: it moves on when its lock expires'));
          throw new WaitingError();
        }
        await bull.moveToDelayed(Date.now() + RETRY_MS, lockToken).catch((e2: unknown) => log.warn({ err: e2, jobId: id }, 'delaying a job failed: it moves on when its lock expires'));
        throw new DelayedError();
      }
      if (reason === JOB_CANCELLED) {
        log.info({ jobId: id }, 'job stopped: cancelled, or taken over by another worker');
        return;
      }
      const error = isEarshotError(e) ? { code: e.code, message: e.message } : { code: 'internal_error', message: 'internal error while transcribing' };
      if (!isEarshotError(e)) log.error({ err: e, jobId: id }, 'job failed');
      if (await records.finish(id, run, { status: 'failed', error })) this.finished(model, id, 'failed');
    } finally {
      this.active.delete(id);
      this.opts.onRunning?.(this.active.size);
    }
  }

  /** One run of the job from its last stored window; throws what stopped it. */
  private async attempt(whisper: Whisper, job: Job, run: string, signal: AbortSignal): Promise<void> {
    const { records } = this;
    assertTaskSupported(whisper, job.request.task, job.model);
    const audio = await readUpload(records.redis, job.id);
    const sink: JobSink = {
      enterWindow: (j) => records.enterWindow(j.id, run),
      setAudioInfo: (j, info) => records.setAudioInfo(j.id, run, info),
      saveWindow: (j, segments, resume, done) => records.saveWindow(j.id, run, segments, resume, done),
      complete: (j, _now, segments) => records.finish(j.id, run, { status: 'completed', segments }),
    };
    await decodeJob(whisper, job, audio, sink, {
      signal,
      ...(this.opts.sampleLen !== undefined ? { sampleLen: this.opts.sampleLen } : {}),
      ...(this.opts.maxAudioSeconds !== undefined ? { maxAudioSeconds: this.opts.maxAudioSeconds } : {}),
      onStart: (resumed) => log.info({ jobId: job.id, seek: job.nextSeek, interruptions: job.interruptions }, resumed ? 'job resumed' : 'job started'),
      onCompleted: () => this.finished(job.model, job.id, 'completed'),
    });
  }

  private finished(model: string, id: string, status: StoredStatus): void {
    log.info({ jobId: id, status }, `job ${status}`);
    this.opts.onFinished?.(model, status);
  }
}

/** The model cannot take the job now (its queue is full of requests, or it is not ready). */
function retryLater(e: unknown): boolean {
  return isEarshotError(e) && (e.kind === 'overloaded' || e.kind === 'not_ready') && e !== STOPPING;
}
