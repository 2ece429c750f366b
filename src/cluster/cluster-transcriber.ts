// The transcription backend of a stateless API node (`earshot serve --redis <url>
// --no-local-model`): a request goes on its model's BullMQ queue (requests.ts has the protocol)
// and the answer comes back from the worker that ran it. The audio is decoded and checked here
// first (by the route, as in one process), so bad input gets the same 4xx without costing a worker
// anything; what the worker refuses comes back as the same typed error.
//
// Which models exist is what the live workers announce (heartbeats.ts): the default model's id, or
// one a live worker serves; the default model with no live worker is 503, any other name 404.
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { requestPriority } from '../engine/priority.ts';
import { EarshotError } from '../errors.ts';
import { log as rootLog } from '../log.ts';
import { taskError, type RequestOptions, type RunHooks, type RunResult, type Task, type Transcriber, type TranscriptionTarget } from '../runtime/transcriber.ts';
import type { LiveWorkers } from './heartbeats.ts';
import { clusterUnavailable, connected, KEY_PREFIX } from './redis.ts';
import { deleteUpload, putUpload } from './uploads.ts';
import { CANCEL_CHANNEL, replyChannel, replyError, requestQueueName, samplesToBytes, type Reply, type RequestData } from './requests.ts';

export interface ClusterTranscriberOptions {
  /** Commands (queue adds, audio keys, cancellations). */
  redis: Redis;
  /** A connection of its own for the reply channels (a subscribed connection takes no other command). */
  subscriber: Redis;
  workers: LiveWorkers;
  /** The default model's id (`--model` / `--model-id`), what an empty model field means. */
  defaultModel: string;
  /** The model id a request's model field names (an alias such as `whisper-1` resolved; an unknown name as it is). */
  idOf: (name: string | undefined) => string;
  /** Requests that may wait per live worker of a model; more get 429 (the node's --queue-size). */
  queueSize: number;
  /** How long a request's audio may stay in Redis if nothing deletes it (its request timeout). */
  audioTtlMs: number;
}

const log = rootLog.child({ component: 'cluster' });

export class ClusterTranscriber implements Transcriber {
  private readonly queues = new Map<string, Queue<RequestData, void>>();
  /** Reply channel -> the waiting request's handler. */
  private readonly waiting = new Map<string, (r: Reply) => void>();
  private readonly lost = new Set<(e: Error) => void>();

  constructor(private readonly opts: ClusterTranscriberOptions) {
    opts.subscriber.on('message', (channel: string, message: string) => this.waiting.get(channel)?.(JSON.parse(message) as Reply));
    // Messages published while the subscriber was away are lost: the requests waiting on them fail
    // now (503, the client may retry) instead of hanging until their timeout.
    opts.subscriber.on('close', () => {
      for (const fail of this.lost) fail(clusterUnavailable());
    });
  }

  /** The BullMQ queue of `modelId`'s requests (also read by the metrics). */
  queue(modelId: string): Queue<RequestData, void> {
    let q = this.queues.get(modelId);
    if (!q) {
      q = new Queue<RequestData, void>(requestQueueName(modelId), { connection: this.opts.redis, prefix: KEY_PREFIX });
      this.queues.set(modelId, q);
    }
    return q;
  }

  async admit(): Promise<void> {
    if (!connected(this.opts.redis) || !connected(this.opts.subscriber)) throw clusterUnavailable();
    if ((await this.opts.workers.list()).length === 0) {
      throw new EarshotError('not_ready', 'no_workers', 'no worker is alive in the cluster; retry shortly');
    }
  }

  async open(model: string | undefined, task: Task): Promise<TranscriptionTarget> {
    if (!connected(this.opts.redis) || !connected(this.opts.subscriber)) throw clusterUnavailable();
    const id = this.opts.idOf(model);
    const workers = await this.opts.workers.serving(id);
    if (workers.length === 0) {
      if (id === this.opts.defaultModel) throw new EarshotError('not_ready', 'no_workers', `no worker for model "${id}" is alive; retry shortly`);
      const served = (await this.opts.workers.models()).map((m) => `"${m.id}"`);
      throw new EarshotError(
        'model_not_found',
        'model_not_found',
        `the model "${model}" does not exist on this cluster: its workers serve ${served.join(', ') || 'no model now'}`,
      );
    }
    const refused = taskError(workers.some((w) => w.models.some((m) => m.id === id && m.multilingual)), task, id);
    if (refused) throw refused;
    const waitingNow = await this.queue(id).getJobCountByTypes('waiting', 'prioritized');
    if (waitingNow >= this.opts.queueSize * workers.length) throw new EarshotError('overloaded', 'queue_full', 'the work queue is full; retry later');
    return { id, run: (samples, options, hooks) => this.run(id, samples, options, hooks), release: () => {} };
  }

  private async run(modelId: string, samples: Float32Array, options: RequestOptions, hooks: RunHooks): Promise<RunResult> {
    const { signal } = hooks;
    signal.throwIfAborted();
    const requestId = randomUUID();
    const channel = replyChannel(requestId);
    const { redis, subscriber } = this.opts;
    let settle!: { resolve: (r: RunResult) => void; reject: (e: unknown) => void };
    const answered = new Promise<RunResult>((resolve, reject) => (settle = { resolve, reject }));
    let started = false;
    let segments = 0;
    this.waiting.set(channel, (r) => {
      if (r.type === 'start') {
        if (!started) hooks.onStart?.();
        started = true;
      } else if (r.type === 'segment') {
        // A request taken over after its worker died starts again: its segments come anew.
        if (r.segment.id < segments) return;
        segments++;
        hooks.onSegment?.(r.segment);
      } else if (r.type === 'done') settle.resolve(r.result);
      else settle.reject(replyError(r));
    });
    this.lost.add(settle.reject);
    const onAbort = (): void => settle.reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const submitted = (async () => {
        // Listening before the request exists, so no answer can come before we hear it.
        await subscriber.subscribe(channel);
        await putUpload(redis, requestId, samplesToBytes(samples), this.opts.audioTtlMs);
        await this.queue(modelId).add('request', { options, stream: hooks.onSegment !== undefined }, {
          jobId: requestId,
          // BullMQ runs lower numbers first: shorter audio first, as requestPriority orders them in one process.
          priority: -requestPriority(samples.length),
          removeOnComplete: true,
          removeOnFail: true,
        });
      })();
      // Redis lost (or the client gone) while submitting: answer now, not when Redis is back.
      submitted.catch(() => {});
      await Promise.race([submitted, answered]);
      return await answered;
    } catch (e) {
      if (signal.aborted) await this.cancel(modelId, requestId);
      throw e;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.lost.delete(settle.reject);
      this.waiting.delete(channel);
      // Not awaited: with Redis away these wait for it to come back, and the client's answer must
      // not. The upload's key expires by itself if the delete never runs.
      void subscriber.unsubscribe(channel).catch(() => {});
      void deleteUpload(redis, requestId).catch(() => {});
    }
  }

  /** The client left: a request still waiting is removed; a running one is told to stop. */
  private async cancel(modelId: string, requestId: string): Promise<void> {
    try {
      await deleteUpload(this.opts.redis, requestId);
      const job = await this.queue(modelId).getJob(requestId);
      // Removing a job a worker holds fails (it is locked): the broadcast stops it instead.
      await job?.remove().catch(() => {});
      await this.opts.redis.publish(CANCEL_CHANNEL, requestId);
    } catch (e) {
      log.warn({ err: e, request: requestId }, 'cancelling a request failed');
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
