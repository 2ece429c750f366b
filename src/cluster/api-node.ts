// What a stateless API node (`earshot serve --redis <url> --no-local-model`) holds: its Redis
// connections, the live workers' heartbeats, and the cluster transcription backend. The server
// asks it whether it is ready (a live worker for the default model), which models exist (those the
// live workers serve), and, for /metrics, each model's queue depth and live workers.
import type { Redis } from 'ioredis';
import { LiveWorkers, type ServedModel } from './heartbeats.ts';
import { ClusterTranscriber } from './cluster-transcriber.ts';
import { clusterUnavailable, connected, connectRedis } from './redis.ts';

export interface ApiNodeOptions {
  redisUrl: string;
  defaultModel: string;
  /** The model id a request's model field names (the server's alias table: `whisper-1`, `--model-alias`). */
  idOf: (name: string | undefined) => string;
  /** The other names of a model id, for /v1/models. */
  aliasesOf: (id: string) => string[];
  queueSize: number;
  /** The node's request timeout: a request's audio never outlives it in Redis. */
  requestTimeoutS: number;
  /** How long a read of the live workers is reused (default 500 ms). */
  workersCacheMs?: number;
}

export interface ModelGauges {
  /** Live workers serving the model. */
  workers: number;
  /** Requests waiting for a worker (BullMQ's waiting and prioritized). */
  queued: number;
}

export class ApiNode {
  readonly transcriber: ClusterTranscriber;
  readonly workers: LiveWorkers;
  private readonly redis: Redis;
  private readonly subscriber: Redis;

  constructor(private readonly opts: ApiNodeOptions) {
    this.redis = connectRedis(opts.redisUrl, 'earshot-api');
    this.subscriber = connectRedis(opts.redisUrl, 'earshot-api-replies');
    this.workers = new LiveWorkers(this.redis, { cacheMs: opts.workersCacheMs });
    this.transcriber = new ClusterTranscriber({
      redis: this.redis,
      subscriber: this.subscriber,
      workers: this.workers,
      defaultModel: opts.defaultModel,
      idOf: opts.idOf,
      queueSize: opts.queueSize,
      audioTtlMs: opts.requestTimeoutS * 1000,
    });
  }

  get defaultModel(): string {
    return this.opts.defaultModel;
  }

  /** Live workers serving the default model (0: not ready). A Redis that cannot be read counts as none. */
  async defaultWorkers(): Promise<number> {
    if (!connected(this.redis)) return 0; // a read would wait for Redis to come back
    try {
      return (await this.workers.serving(this.opts.defaultModel)).length;
    } catch {
      return 0;
    }
  }

  /** The other names requests may use for `modelId` (e.g. `whisper-1` for the default). */
  aliasesOf(modelId: string): string[] {
    return this.opts.aliasesOf(modelId);
  }

  /** The models the live workers serve. */
  async models(): Promise<ServedModel[]> {
    if (!connected(this.redis)) throw clusterUnavailable();
    return this.workers.models();
  }

  /** Per model (the default one always, and every one a live worker serves): live workers and queued requests. */
  async gauges(): Promise<Map<string, ModelGauges>> {
    if (!connected(this.redis)) throw clusterUnavailable(); // the scrape goes on without these gauges
    const live = await this.workers.list();
    const ids = new Set([this.opts.defaultModel, ...live.flatMap((w) => w.models.map((m) => m.id))]);
    const out = new Map<string, ModelGauges>();
    await Promise.all(
      [...ids].map(async (id) => {
        const queued = await this.transcriber.queue(id).getJobCountByTypes('waiting', 'prioritized');
        out.set(id, { workers: live.filter((w) => w.models.some((m) => m.id === id)).length, queued });
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    await this.transcriber.close();
    this.subscriber.disconnect();
    this.redis.disconnect();
  }
}
