// The two job queues the jobs contract tests run against, with the same test file: the embedded
// SQLite queue (a server alone) and the cluster's (the server with --redis, a real redis-server of
// its own, and an in-process `earshot worker` serving the same model: the process's model cache
// gives both the same instance, so a test that fills the model's queue holds both). Each says where
// the uploads of unfinished jobs are, so tests can check none is left.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../src/cluster/redis.ts';
import { hasUpload, uploadIds } from '../../src/cluster/uploads.ts';
import { type RunningWorker, startWorker } from '../../src/cluster/worker.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';

export interface JobBackend {
  readonly name: 'sqlite' | 'redis';
  /** Starts what the queue needs besides the server (Redis). */
  setup(): Promise<void>;
  /** The server flags that pick this queue. */
  flags(): Record<string, unknown>;
  /** After the server: what runs its jobs when the server does not (a worker for `model`). */
  serve(model: string, more?: { sampleLen?: number }): Promise<void>;
  /** Uploads of unfinished jobs kept now. */
  uploads(dataDir: string): Promise<number>;
  hasUpload(dataDir: string, id: string): Promise<boolean>;
  teardown(): Promise<void>;
}

export function sqliteBackend(): JobBackend {
  return {
    name: 'sqlite',
    setup: async () => {},
    flags: () => ({}),
    serve: async () => {},
    uploads: async (dataDir) => readdirSync(join(dataDir, 'audio')).length,
    hasUpload: async (dataDir, id) => readdirSync(join(dataDir, 'audio')).includes(id),
    teardown: async () => {},
  };
}

export function redisBackend(): JobBackend {
  let redis: RedisServer | undefined;
  let client: Redis | undefined;
  const workers: RunningWorker[] = [];
  return {
    name: 'redis',
    async setup() {
      redis = await startRedis();
      client = connectRedis(redis.url, 'test');
    },
    flags: () => ({ redis: redis!.url }),
    async serve(model, more = {}) {
      // As startTestServer's server loads it (threads 1, sample length 4): the same cached instance.
      workers.push(
        await startWorker({ redis: redis!.url, model, device: 'cpu', threads: 1, queueSize: 64, sampleLen: more.sampleLen ?? 4, maxAudioSeconds: 7200, concurrency: 1 }),
      );
    },
    uploads: async () => (await uploadIds(client!)).size,
    hasUpload: async (_dataDir, id) => hasUpload(client!, id),
    async teardown() {
      for (const w of workers.splice(0)) await w.close();
      client?.disconnect();
      await redis?.stop();
    },
  };
}

export const BACKENDS = [sqliteBackend, redisBackend];
