// An `earshot worker` process: no HTTP API, only the model it serves and the consumers that feed it
// from the cluster's Redis. It loads its model the way a server does (the process's model cache, the
// same batching scheduler and work queue), then starts its consumers, each a part that takes one kind
// of work from Redis: durable jobs (job-consumer.ts) and synchronous requests (request-consumer.ts;
// requests outrank jobs in the model's work queue). Its heartbeat (heartbeats.ts) tells the API
// nodes it is alive; `--metrics-port` serves its own /metrics. `close` (SIGTERM) first withdraws the
// heartbeat, then stops the consumers in turn, each handing back what it runs, then lets the model go.
import '../engine/telemetry-off.ts'; // first: the worker loads onnxruntime (see the module)
import { randomUUID } from 'node:crypto';
import type { ServerConfig } from '../server/config.ts';
import { servedModelId } from '../models/index.ts';
import { log as rootLog } from '../log.ts';
import { sweepDeadLeftovers } from '../private-temp.ts';
import type { Whisper } from '../runtime/loaded-model.ts';
import { acquireWhisper, releaseWhisper } from '../runtime/model-cache.ts';
import { Heartbeat } from './heartbeats.ts';
import { JobConsumer } from './job-consumer.ts';
import { connectRedis, redactRedisUrl } from './redis.ts';
import { RequestConsumer } from './request-consumer.ts';
import { WorkerMetrics } from './worker-metrics.ts';

/** The settings a worker shares with `earshot serve` (same names, flags and variables), and its own. */
export type WorkerConfig = Pick<ServerConfig, 'model' | 'modelId' | 'dtype' | 'device' | 'threads' | 'queueSize' | 'sampleLen' | 'maxAudioSeconds'> & {
  redis: string;
  /** Jobs run at once. */
  concurrency: number;
  /** BullMQ's job lock: a dead worker's jobs move on after this (ms). */
  lockDurationMs?: number;
  /** How often stalled jobs (lock expired) are looked for (ms). */
  stalledIntervalMs?: number;
  /** Serve the worker's /metrics on this port (none when undefined; 0 picks a free one). */
  metricsPort?: number;
  /** The address of that /metrics (default 127.0.0.1). */
  metricsHost?: string;
  /** The heartbeat's lifetime (ms): a worker that stops refreshing it drops out of the live set after this. */
  heartbeatTtlMs?: number;
};

/** One part of the worker that takes work from Redis; `close` hands back what it runs. */
export interface Consumer {
  close(): Promise<void>;
}

export interface RunningWorker {
  /** The models served, by the id requests and jobs name them. */
  models: ReadonlyArray<{ id: string; whisper: Whisper }>;
  consumers: Consumer[];
  close(): Promise<void>;
}

const log = rootLog.child({ component: 'worker' });

export async function startWorker(config: WorkerConfig): Promise<RunningWorker> {
  const started = performance.now();
  const swept = await sweepDeadLeftovers(); // temporary audio of earshot processes that died
  if (swept > 0) log.info({ swept }, 'deleted the temporary audio of earshot processes that died');
  // As the server's model registry loads it: a worker in the same process shares the instance.
  const whisper = await acquireWhisper(config.model, {
    ...(config.dtype !== undefined ? { dtype: config.dtype } : {}),
    engine: { device: config.device, intraOpThreads: config.threads },
    queueSize: config.queueSize,
  });
  const models = [{ id: servedModelId(config), whisper }];
  const consumers: Consumer[] = [];
  const close = async (): Promise<void> => {
    // Each one closes even if one before it failed: the job consumer must always hand its jobs back.
    for (const c of consumers.splice(0)) await c.close().catch((e: unknown) => log.warn({ err: e }, 'stopping a worker part failed'));
    await releaseWhisper(whisper);
  };
  try {
    consumers.push(
      await JobConsumer.start({
        redisUrl: config.redis,
        models,
        concurrency: config.concurrency,
        sampleLen: config.sampleLen,
        maxAudioSeconds: config.maxAudioSeconds,
        ...(config.lockDurationMs !== undefined ? { lockDurationMs: config.lockDurationMs } : {}),
        ...(config.stalledIntervalMs !== undefined ? { stalledIntervalMs: config.stalledIntervalMs } : {}),
      }),
    );
    const metrics = new WorkerMetrics();
    const requests = await RequestConsumer.start({
      redisUrl: config.redis,
      models,
      onFinished: (model, outcome, seconds) => metrics.finished(model, outcome, seconds),
      onRunning: (n) => metrics.requestsRunning.set(n),
    });
    consumers.push(requests);
    if (config.metricsPort !== undefined) {
      const server = await metrics.serve(config.metricsPort, config.metricsHost);
      consumers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
      log.info({ metrics: server.address() }, 'worker metrics served');
    }
    // Announced last, once it takes work; withdrawn first, so API nodes stop counting on it at once.
    const beatRedis = connectRedis(config.redis, 'earshot-worker-heartbeat');
    const heartbeat = new Heartbeat(
      beatRedis,
      {
        id: randomUUID(),
        models: models.map((m) => ({ id: m.id, multilingual: m.whisper.tokenizer.isMultilingual })),
        device: whisper.model.device.device,
        concurrency: requests.concurrency,
        startedAt: Date.now(),
      },
      { ...(config.heartbeatTtlMs !== undefined ? { ttlMs: config.heartbeatTtlMs } : {}) },
    );
    consumers.unshift({ close: () => heartbeat.stop().finally(() => beatRedis.disconnect()) });
    await heartbeat.start();
  } catch (e) {
    await close();
    throw e;
  }
  log.info(
    { redis: redactRedisUrl(config.redis), models: models.map((m) => m.id), concurrency: config.concurrency, loadMs: Math.round(performance.now() - started) },
    'worker started',
  );
  return { models, consumers, close };
}
