// Shared by the cluster's job fault tests: `earshot worker` and `earshot serve --redis` as real child
// processes of the real binary (their JSON log lines collected), kill -9 or SIGTERM, and the counts
// the tests report: jobs submitted, completed, lost, duplicated.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BIN, ROOT } from '../server/helpers.ts';
import { spawnServer, type ChildServer } from '../jobs/child-server.ts';

export interface WorkerProcess {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  kill9(): Promise<void>;
  /** SIGTERM, resolved with the exit code. */
  term(): Promise<number | null>;
}

/** Deterministic decoding in every child (see constant-random.mjs). */
export const CHILD_ENV = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${join(ROOT, 'test/cluster/constant-random.mjs')}`.trim() };

/** Test-speed lock timings: a killed worker's job moves on within about 3 s. */
export const FAST_LOCKS = ['--lock-duration', '2000', '--stalled-interval', '1000'];

/** `earshot worker` on `model`; resolves once it has started its consumers. */
export function spawnWorker(redisUrl: string, model: string, extra: string[] = []): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [BIN, 'worker', '--redis', redisUrl, '--model', model, '--threads', '1', '--sample-len', '4', ...FAST_LOCKS, ...extra], {
    env: { ...process.env, EARSHOT_LOG_LEVEL: 'info', ...CHILD_ENV },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const plain: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const w: WorkerProcess = {
    child,
    logs,
    exited,
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async term() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  return new Promise((resolve, reject) => {
    void exited.then((code) => reject(new Error(`worker exited (${code}) before it started: ${plain.join('\n')}`)));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'worker started') resolve(w);
      } catch {
        plain.push(line);
      }
    });
  });
}

/** `earshot serve --redis` (an API node; it loads the model too, but runs no job). */
export function spawnApiNode(redisUrl: string, model: string, extra: string[] = []): Promise<ChildServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-api-node-'));
  return spawnServer({ args: ['--port', '0', '--redis', redisUrl, '--model', model, '--threads', '1', '--sample-len', '4', '--data-dir', dataDir, ...extra], env: CHILD_ENV });
}

/** Log lines that say job `id` ended, in every process given. */
export function completions(id: string, ...procs: Array<{ logs: Array<Record<string, unknown>> }>): number {
  return procs.flatMap((p) => p.logs).filter((e) => e.jobId === id && (e.msg === 'job completed' || e.msg === 'job failed')).length;
}

export interface FaultFigures {
  submitted: number;
  completed: number;
  lost: number;
  duplicated: number;
}

/** The figures of a fault test: every job's final state and the number of processes that ended it. */
export function figures(ids: string[], finalStatus: Map<string, string>, ends: (id: string) => number): FaultFigures {
  const completed = ids.filter((id) => finalStatus.get(id) === 'completed').length;
  return {
    submitted: ids.length,
    completed,
    lost: ids.filter((id) => finalStatus.get(id) !== 'completed').length,
    duplicated: ids.filter((id) => ends(id) > 1).length,
  };
}
