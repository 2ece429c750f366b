// Worker heartbeats in Redis: each worker announces itself (its id, the models it serves, its
// device and concurrency) in a key of its own that expires unless it is refreshed, so a worker that
// dies (kill -9, a lost machine) drops out of the live set by itself within one TTL. API nodes read
// the live set for /ready, /v1/models, routing checks and the per-model worker gauge.
//
// Keys: `earshot:workers:<id>` holds the worker's JSON with a TTL (Redis's own expiry: no clock of
// any machine is compared with another's); the set `earshot:workers` lists the ids, so readers
// never SCAN. A reader drops from the set the ids whose key has expired.
import type { Redis } from 'ioredis';
import { log } from '../log.ts';
import { KEY_PREFIX } from './redis.ts';

export interface ServedModel {
  /** The id requests name it by. */
  id: string;
  /** Whether it can translate and detect languages (not an English-only model). */
  multilingual: boolean;
}

export interface WorkerInfo {
  id: string;
  models: ServedModel[];
  device: string;
  /** Requests the worker decodes at once. */
  concurrency: number;
  /** Unix ms. */
  startedAt: number;
}

const SET = `${KEY_PREFIX}:workers`;
const keyOf = (id: string): string => `${KEY_PREFIX}:workers:${id}`;

/** Default lifetime of a heartbeat; it is refreshed every third of it. */
export const DEFAULT_HEARTBEAT_TTL_MS = 15_000;

/** A worker's own heartbeat: announced at once, refreshed until `stop()`, which removes it. */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly ttlMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly info: WorkerInfo,
    opts: { ttlMs?: number } = {},
  ) {
    this.ttlMs = opts.ttlMs ?? DEFAULT_HEARTBEAT_TTL_MS;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      // A failed refresh (Redis restarting) is retried on the next tick; the key outlives one miss.
      this.beat().catch((e: unknown) => log.warn({ err: e, worker: this.info.id }, 'heartbeat failed'));
    }, Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    await this.redis.multi().set(keyOf(this.info.id), JSON.stringify(this.info), 'PX', this.ttlMs).sadd(SET, this.info.id).exec();
  }

  /** Stops refreshing and removes the heartbeat: the worker leaves the live set at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.redis.multi().del(keyOf(this.info.id)).srem(SET, this.info.id).exec();
  }
}

/** The live workers as an API node sees them, read at most every `cacheMs` (probes and requests come often). */
export class LiveWorkers {
  private cached: { at: number; workers: Promise<WorkerInfo[]> } | undefined;
  private readonly cacheMs: number;

  constructor(
    private readonly redis: Redis,
    opts: { cacheMs?: number } = {},
  ) {
    this.cacheMs = opts.cacheMs ?? 500;
  }

  list(): Promise<WorkerInfo[]> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at >= this.cacheMs) {
      const workers = this.read();
      // A failed read is not cached: the next call asks Redis again.
      workers.catch(() => {
        if (this.cached?.workers === workers) this.cached = undefined;
      });
      this.cached = { at: now, workers };
    }
    return this.cached.workers;
  }

  /** The live workers serving `modelId`. */
  async serving(modelId: string): Promise<WorkerInfo[]> {
    return (await this.list()).filter((w) => w.models.some((m) => m.id === modelId));
  }

  /** Every model a live worker serves (the first announcement of each id wins). */
  async models(): Promise<ServedModel[]> {
    const byId = new Map<string, ServedModel>();
    for (const w of await this.list()) for (const m of w.models) if (!byId.has(m.id)) byId.set(m.id, m);
    return [...byId.values()];
  }

  private async read(): Promise<WorkerInfo[]> {
    const ids = await this.redis.smembers(SET);
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map(keyOf));
    const live: WorkerInfo[] = [];
    const expired: string[] = [];
    values.forEach((v, i) => {
      if (v === null) expired.push(ids[i]!);
      else live.push(JSON.parse(v) as WorkerInfo);
    });
    if (expired.length > 0) await this.redis.srem(SET, ...expired);
    return live;
  }
}
