// `earshot serve` as a real child process for the job tests and the faults bench: its JSON log
// lines collected, its URL taken from the "Server listening" line, kill -9 and restart on the same
// data directory, and the job API as plain fetch calls.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BIN, form, jfkClip } from '../server/helpers.ts';

export interface ChildServer {
  child: ChildProcess;
  url: string;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  /** stderr lines that are not JSON (the CLI's own error line). */
  plain: string[];
  exited: Promise<number | null>;
  /** kill -9, resolved once it has exited. */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  /** Flags after `serve`. */
  args: string[];
  env?: Record<string, string>;
}

/** Starts the server; resolves once it listens (rejects with its stderr if it exits first). */
export function spawnServer(opts: SpawnOptions): Promise<ChildServer> {
  const child = spawn(process.execPath, [BIN, 'serve', ...opts.args], {
    env: { ...process.env, EARSHOT_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const plain: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return new Promise((resolve, reject) => {
    void exited.then((code) => reject(Object.assign(new Error(`server exited (${code}) before listening: ${plain.join('\n')}`), { code, plain, logs })));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        plain.push(line);
        return;
      }
      logs.push(entry);
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(String(entry.msg));
      if (m) resolve({ child, url: m[1]!, logs, plain, exited, kill });
    });
  });
}

/** Runs the binary to its exit: the exit code, the non-JSON stderr lines, and whether it ever listened. */
export async function runToExit(opts: SpawnOptions): Promise<{ code: number | null; plain: string[]; listened: boolean }> {
  try {
    const s = await spawnServer(opts);
    await s.kill();
    return { code: null, plain: s.plain, listened: true };
  } catch (e) {
    const x = e as { code?: number | null; plain?: string[] };
    if (x.plain === undefined) throw e;
    return { code: x.code ?? null, plain: x.plain, listened: false };
  }
}

/** Polls until `check` is true (every `everyMs`), failing after `ms`. */
export async function until(check: () => Promise<boolean> | boolean, ms: number, what: string, everyMs = 20): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function waitReady(url: string, ms = 60_000): Promise<void> {
  await until(async () => (await fetch(`${url}/ready`).catch(() => undefined))?.status === 200, ms, 'ready');
}

/** POSTs a job of `seconds` of the JFK clip (temperature 0, no VAD): the response. */
export function submitJob(url: string, seconds: number, fields: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v1/jobs`, {
    method: 'POST',
    headers,
    body: form({ model: 'whisper-1', temperature: '0', vad_filter: 'false', response_format: 'verbose_json', ...fields }, { bytes: jfkClip(seconds) }),
  });
}

export async function getJob(url: string, id: string, headers: Record<string, string> = {}): Promise<Record<string, any>> {
  const r = await fetch(`${url}/v1/jobs/${id}`, { headers });
  if (r.status !== 200) throw new Error(`GET job ${id}: ${r.status} ${await r.text()}`);
  return (await r.json()) as Record<string, any>;
}
