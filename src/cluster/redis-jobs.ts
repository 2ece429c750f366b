// The jobs API's queue on a cluster (`--redis`): the JobQueue the routes use, kept in Redis and BullMQ
// instead of the local SQLite store, so any API node can take a job, any API node can answer for it,
// and any worker with the job's model (`earshot worker`, worker.ts) runs it. A submission stores the
// upload in Redis (uploads.ts), records the job under the bounds (job-records.ts: --job-queue-size
// jobs, --max-queued-bytes bytes, else 429), then adds it to its model's BullMQ queue; it is durable
// (given AOF persistence) when the 202 is sent. This process runs no job itself.
import { Queue } from 'bullmq';
import { stat } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import type { Segment } from '../decoding/transcription.ts';
import { EarshotError } from '../errors.ts';
import { newJobId } from '../jobs/audio-files.ts';
import type { JobQueue, ListOptions, Submission } from '../jobs/queue.ts';
import type { Job } from '../jobs/types.ts';
import { log as rootLog } from '../log.ts';
import { JOB_CANCEL_CHANNEL, JobRecords, jobQueueName } from './job-records.ts';
import { connectRedis, KEY_PREFIX, redactRedisUrl } from './redis.ts';
import { deleteUpload, putUpload } from './uploads.ts';

export interface RedisJobsOptions {
  redisUrl: string;
  retentionS: number;
  /** Most jobs queued or running at once, the whole cluster together (--job-queue-size). */
  maxUnfinished: number;
  /** Most upload bytes of unfinished jobs kept in Redis (--max-queued-bytes). */
  maxQueuedBytes: number;
  /** Called with the jobs queued or running and their bytes, after each submission and cancellation. */
  onQueued?: (jobs: number, bytes: number) => void;
}

const log = rootLog.child({ component: 'jobs' });
/** A queued job with no BullMQ job this long after it was recorded was never acknowledged: it is removed. */
const UNQUEUED_AFTER_MS = 60_000;

export class RedisJobs implements JobQueue {
  private redis: Redis | undefined;
  private records: JobRecords | undefined;
  private readonly queues = new Map<string, Queue>();
  private closed = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly opts: RedisJobsOptions) {}

  async start(): Promise<void> {
    this.redis = connectRedis(this.opts.redisUrl, 'earshot-api-jobs');
    this.records = new JobRecords(this.redis);
    // Serve from the first request on when Redis is there; when it is not, the node starts anyway
    // and its job routes answer 503 until it is.
    await readyWithin(this.redis, 5000);
    this.sweeper = setInterval(() => void this.sweepUnqueued().catch(() => {}), UNQUEUED_AFTER_MS);
    this.sweeper.unref();
    if (this.redis.status !== 'ready') log.warn({ redis: redactRedisUrl(this.opts.redisUrl) }, 'Redis not reachable yet: job routes answer 503 until it is');
  }

  /**
   * Removes the jobs an API node recorded but died before queueing (and so before their 202): they
   * would wait forever and count against the bounds. Every node sweeps, every minute; removal is atomic.
   */
  async sweepUnqueued(now = Date.now()): Promise<string[]> {
    const records = this.ready();
    const gone: string[] = [];
    for (const { id, owner } of await records.unqueued(now - UNQUEUED_AFTER_MS)) {
      if (await records.remove(id, owner)) gone.push(id);
    }
    if (gone.length > 0) log.warn({ jobs: gone }, 'removed jobs recorded but never queued (their API node died before answering)');
    return gone;
  }

  problem(): string | undefined {
    if (this.redis && this.redis.status !== 'ready') return 'the job queue (Redis) is unreachable';
    return undefined;
  }

  pauseOf(): undefined {
    // A worker whose Redis is away simply waits for it; nothing is paused by a local disk here.
    return undefined;
  }

  async submit(s: Submission): Promise<Job> {
    const records = this.ready();
    const id = newJobId();
    const retentionMs = this.opts.retentionS * 1000;
    const bytes = typeof s.audio === 'string' ? (await stat(s.audio)).size : s.audio.byteLength;
    // Cheap early answers that spare storing the upload; the bounds themselves hold in create().
    const now = await records.unfinished();
    if (now.jobs >= this.opts.maxUnfinished) throw queueFull(this.opts.maxUnfinished);
    if (now.bytes + bytes > this.opts.maxQueuedBytes) throw bytesFull(this.opts.maxQueuedBytes);
    // The upload expires by itself if this node dies before the job is recorded.
    await putUpload(records.redis, id, s.audio, retentionMs);
    let job: Job;
    try {
      const created = await records.create({ id, owner: s.owner, model: s.model, filename: s.filename, request: s.request, createdAt: Date.now() }, bytes, retentionMs, {
        maxUnfinished: this.opts.maxUnfinished,
        maxBytes: this.opts.maxQueuedBytes,
      });
      if ('refused' in created) throw created.refused === 'queue_full' ? queueFull(this.opts.maxUnfinished) : bytesFull(this.opts.maxQueuedBytes);
      job = created.job;
    } catch (e) {
      await deleteUpload(records.redis, id).catch(() => {});
      throw e;
    }
    try {
      await this.queueOf(s.model).add('job', { id }, { jobId: id, removeOnComplete: true, removeOnFail: true });
    } catch (e) {
      await records.remove(id, s.owner).catch(() => {});
      throw e;
    }
    void this.report();
    return job;
  }

  async get(id: string, owner: string): Promise<Job> {
    const job = await this.ready().get(id, owner);
    if (!job) throw notFound(id);
    return job;
  }

  segments(job: Job): Promise<Segment[]> {
    return this.ready().segments(job.id);
  }

  async list(owner: string, opts: ListOptions): Promise<{ jobs: Job[]; hasMore: boolean }> {
    const page = await this.ready().list(owner, opts);
    if (!page) throw notFound(opts.after!, 'after');
    return page;
  }

  async cancel(id: string, owner: string): Promise<Job> {
    const records = this.ready();
    const job = await records.remove(id, owner);
    if (!job) throw notFound(id);
    // A waiting BullMQ job goes now; one a worker runs is stopped there (and would stop at its next
    // window anyway: its record is gone).
    await this.queueOf(job.model).remove(id).catch(() => 0);
    await records.redis.publish(JOB_CANCEL_CHANNEL, id);
    void this.report();
    return job;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => {})));
    this.queues.clear();
    this.redis?.disconnect();
  }

  /** The records, or a 503 while Redis cannot be reached (rather than a request waiting on it). */
  private ready(): JobRecords {
    if (this.closed) throw new EarshotError('not_ready', 'shutting_down', 'the server is shutting down');
    if (!this.records) throw new EarshotError('not_ready', 'jobs_not_started', 'the job system has not started yet');
    if (this.redis!.status !== 'ready') throw new EarshotError('not_ready', 'job_queue_unavailable', 'the job queue (Redis) cannot be reached; retry later');
    return this.records;
  }

  private queueOf(model: string): Queue {
    let q = this.queues.get(model);
    if (!q) {
      q = new Queue(jobQueueName(model), { connection: this.redis!, prefix: KEY_PREFIX });
      q.on('error', (e: Error) => log.debug({ err: { message: e.message } }, 'job queue error'));
      this.queues.set(model, q);
    }
    return q;
  }

  private async report(): Promise<void> {
    if (!this.opts.onQueued || !this.records) return;
    const n = await this.records.unfinished().catch(() => undefined);
    if (n) this.opts.onQueued(n.jobs, n.bytes);
  }
}

function readyWithin(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once('ready', done);
  });
}

function queueFull(max: number): EarshotError {
  return new EarshotError('overloaded', 'job_queue_full', `${max} jobs are already waiting or running; retry later`);
}

function bytesFull(max: number): EarshotError {
  return new EarshotError('overloaded', 'job_queue_bytes_full', `the uploads of the jobs waiting or running already take ${max} bytes; retry later`);
}

function notFound(id: string, param?: string): EarshotError {
  return new EarshotError('not_found', 'job_not_found', `no job "${id.slice(0, 100)}"`, { param });
}
