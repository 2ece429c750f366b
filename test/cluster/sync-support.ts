// Shared by the cluster's synchronous-request tests: a worker child process (`earshot worker`)
// over a test model, and a stateless API node (`--no-local-model`) in the
// test's process, both on the test's own redis-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { RunningServer } from '../../src/server/app.ts';
import { servedModelId } from '../../src/models/index.ts';
import { BIN, ROOT, startTestServer } from '../server/helpers.ts';

export interface WorkerChild {
  child: ChildProcess;
  /** Its /metrics address. */
  metricsUrl: string;
  exited: Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `earshot worker` on `dir` (1 thread, its /metrics on a free port) with a constant
 * Math.random (constant-random.mjs), and resolves once its /metrics answers.
 */
export async function startWorker(redisUrl: string, dir: string, heartbeatTtlMs: number, extraArgs: readonly string[] = []): Promise<WorkerChild> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', join(ROOT, 'test/cluster/constant-random.mjs'), BIN, 'worker', '--redis', redisUrl, '--model', dir, '--threads', '1', '--metrics-port', String(port), '--heartbeat-ttl', String(heartbeatTtlMs), ...extraArgs],
    { env: { ...process.env, ORT_DISABLE_TELEMETRY: '1', EARSHOT_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  for (const end = Date.now() + 60_000; !(await fetch(metricsUrl).then((r) => r.ok, () => false)); ) {
    if (child.exitCode !== null) throw new Error(`worker exited before it was ready: ${err}`);
    if (Date.now() > end) throw new Error(`worker not ready in 60 s: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    metricsUrl,
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
