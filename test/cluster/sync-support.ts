// Shared by the cluster's synchronous-request tests: a worker child process
// (sync-worker-child.ts) over a test model, and a stateless API node (`--no-local-model`) in the
// test's process, both on the test's own redis-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { RunningServer } from '../../src/server/app.ts';
import { servedModelId } from '../../src/server/model-registry.ts';
import { ROOT, startTestServer } from '../server/helpers.ts';

export interface WorkerChild {
  child: ChildProcess;
  /** Its /metrics address. */
  metricsUrl: string;
  exited: Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a worker on `dir` (served as `id`) and resolves once it takes requests. */
export async function startWorker(redisUrl: string, dir: string, id: string, heartbeatTtlMs: number): Promise<WorkerChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/cluster/sync-worker-child.ts'), redisUrl, dir, id, String(heartbeatTtlMs)], {
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /ready (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error(`worker exited before it was ready: ${err}`)));
  });
  return {
    child,
    metricsUrl: `http://127.0.0.1:${port}/metrics`,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** An API node without a model for `dir`'s id, on `redisUrl`. */
export function startApiNode(redisUrl: string, dir: string, flags: Record<string, unknown> = {}): Promise<RunningServer> {
  return startTestServer({ model: dir, redis: redisUrl, localModel: false, ...flags });
}

export const modelIdOf = (dir: string): string => servedModelId({ model: dir });

/** The events of a server-sent-events body. */
export function sseEvents(body: string): Array<{ type: string; delta?: string; text?: string; error?: unknown }> {
  return body
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => JSON.parse(b.slice(6)) as { type: string });
}
