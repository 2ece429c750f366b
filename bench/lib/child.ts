// A benchmark side in its own Node process, so that its peak RSS is its own: the parent forks a
// worker module (run through tsx) and sends it requests one at a time over the IPC channel; every
// reply carries the worker's peak resident set size so far.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface Reply<T> {
  value: T;
  /** Peak RSS of the worker process since it started, in bytes (getrusage's ru_maxrss). */
  maxRssBytes: number;
}

type Wire = { ok: true; value: unknown; maxRssBytes: number } | { ok: false; error: string };

export class Worker {
  private readonly child: ChildProcess;
  private pending: { resolve: (r: Wire) => void; reject: (e: Error) => void } | null = null;
  private exited: Promise<number | null>;

  constructor(module: URL, readonly name: string) {
    this.child = fork(fileURLToPath(module), [], {
      execArgv: ['--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m) => {
      const p = this.pending;
      this.pending = null;
      p?.resolve(m as Wire);
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code) => {
        this.pending?.reject(new Error(`${name} worker exited (code ${code}) during a request`));
        this.pending = null;
        resolve(code);
      }),
    );
  }

  /** Sends one request and waits for its reply; requests never overlap. */
  async request<T>(message: object): Promise<Reply<T>> {
    if (this.pending) throw new Error(`${this.name} worker is busy`);
    const wire = await new Promise<Wire>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.child.send(message);
    });
    if (!wire.ok) throw new Error(`${this.name} worker: ${wire.error}`);
    return { value: wire.value as T, maxRssBytes: wire.maxRssBytes };
  }

  async close(): Promise<void> {
    if (this.child.connected) this.child.disconnect();
    await this.exited;
  }
}

/** Worker side: answers each request with `handle`'s result; exits when the parent disconnects. */
export function serve(handle: (message: Record<string, unknown>) => Promise<unknown>): void {
  process.on('message', (m) => {
    handle(m as Record<string, unknown>).then(
      (value) => process.send!({ ok: true, value, maxRssBytes: process.resourceUsage().maxRSS * 1024 }),
      (e: unknown) => process.send!({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
