// `earshot worker`: a cluster worker (src/cluster/worker.ts) with no HTTP API. The options it shares
// with `earshot serve` (--redis, --model, --device, --threads...) are that command's own, made from
// the one table of settings (src/server/settings.ts) with the same EARSHOT_* variables; its own are
// --concurrency and the job lock's timings. SIGTERM or SIGINT hands its running jobs back and exits
// (0), or exits 1 after --shutdown-timeout when it cannot (Redis away).
import '../engine/telemetry-off.ts'; // first: onnxruntime's telemetry off (see the module)
import { Command, Option } from 'commander';
import { z } from 'zod';
import { startWorker, type WorkerConfig } from '../cluster/worker.ts';
import { EarshotError } from '../errors.ts';
import { log } from '../log.ts';
import { SETTINGS, type SettingName } from '../server/settings.ts';
import { optionOf } from './serve.ts';

/** The serve settings a worker takes too. */
const SHARED = ['redis', 'model', 'modelId', 'dtype', 'device', 'threads', 'queueSize', 'sampleLen', 'maxAudioSeconds', 'shutdownTimeoutS'] as const satisfies readonly SettingName[];

const port = z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), z.number().int().min(0).max(65535));
const ms = z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), z.number().int().min(100).max(3_600_000));

/** The worker's own options: flag, variable, schema, help. */
const OWN = {
  concurrency: { flag: '--concurrency <n>', env: 'EARSHOT_WORKER_CONCURRENCY', schema: SETTINGS.jobConcurrency.schema, help: 'jobs decoded at once (default 1)' },
  lockDurationMs: { flag: '--lock-duration <ms>', env: 'EARSHOT_WORKER_LOCK_MS', schema: ms.default(30_000), help: "how long a job's lock lasts unless renewed: a dead worker's jobs go to another worker after this (default 30000)" },
  metricsPort: { flag: '--metrics-port <n>', env: 'EARSHOT_WORKER_METRICS_PORT', schema: port.optional(), help: "serve this worker's Prometheus /metrics on this port (default: none)" },
  metricsHost: { flag: '--metrics-host <address>', env: 'EARSHOT_WORKER_METRICS_HOST', schema: z.string().trim().min(1).default('127.0.0.1'), help: 'address of --metrics-port (default 127.0.0.1: this machine only)' },
  heartbeatTtlMs: { flag: '--heartbeat-ttl <ms>', env: 'EARSHOT_WORKER_HEARTBEAT_MS', schema: ms.default(15_000), help: 'lifetime of the heartbeat that tells API nodes this worker is alive, refreshed every third of it: a dead worker leaves /ready and /v1/models after this (default 15000)' },
  stalledIntervalMs: { flag: '--stalled-interval <ms>', env: 'EARSHOT_WORKER_STALLED_MS', schema: ms.default(30_000), help: 'how often this worker looks for jobs whose lock expired (default 30000)' },
} as const;

function invalid(flag: string, message: string): EarshotError {
  return new EarshotError('invalid_argument', 'bad_config', `invalid ${flag.split(' ')[0]}: ${message}`);
}

/** Flags over variables over defaults, each validated by its schema. */
export function workerConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): WorkerConfig & { shutdownTimeoutS: number } {
  const out: Record<string, unknown> = {};
  const take = (name: string, flag: string, envName: string, schema: z.ZodType, attr: string): void => {
    const given = flags[attr] ?? (env[envName]?.trim() ? env[envName] : undefined);
    const r = schema.safeParse(given);
    if (!r.success) throw invalid(flag, r.error.issues[0]!.message);
    out[name] = r.data;
  };
  for (const name of SHARED) {
    const s = SETTINGS[name];
    take(name, s.flag, s.env, s.schema, new Option(s.flag).attributeName());
  }
  for (const [name, o] of Object.entries(OWN)) take(name, o.flag, o.env, o.schema, new Option(o.flag).attributeName());
  if (!out.redis) throw new EarshotError('invalid_argument', 'bad_config', `earshot worker needs the cluster's Redis: --redis <url> or ${SETTINGS.redis.env}`);
  return out as WorkerConfig & { shutdownTimeoutS: number };
}

export function workerCommand(): Command {
  const cmd = new Command('worker').description('run a cluster worker: takes the jobs of its model from Redis (--redis) and decodes them; no HTTP API');
  for (const name of SHARED) cmd.addOption(optionOf(name));
  for (const o of Object.values(OWN)) cmd.addOption(new Option(o.flag, `${o.help}; $${o.env}`));
  return cmd.action(async (flags: Record<string, unknown>) => {
    const config = workerConfig(flags);
    const worker = await startWorker(config);
    const clean = await new Promise<boolean>((resolve) => {
      const stop = (signal: string): void => {
        log.info({ signal }, 'worker stopping: handing its jobs back');
        // Handing jobs back needs Redis: without it the stop would wait for Redis. Past the deadline
        // the worker exits anyway; its jobs go to another worker when their locks lapse, as after a kill.
        const deadline = setTimeout(() => {
          log.warn({ shutdownTimeoutS: config.shutdownTimeoutS }, 'worker stop timed out (is Redis reachable?): exiting without handing its jobs back');
          resolve(false);
        }, config.shutdownTimeoutS * 1000);
        worker.close().then(
          () => resolve(true),
          (e: unknown) => {
            log.error({ err: e }, 'worker stop failed');
            resolve(false);
          },
        ).finally(() => clearTimeout(deadline));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    if (clean) log.info('worker stopped');
    // Open handles of the model's threads must not keep a stopped worker alive.
    process.exit(clean ? 0 : 1);
  });
}
