// A real redis-server for the cluster tests: started on a free 127.0.0.1 port with a temporary data
// directory and AOF on (fsync always, so that a kill -9 loses nothing acknowledged), stopped and
// removed after. `kill9()` and `restart()` let a test kill it the hard way and bring it back on the
// same data directory, as an operator's supervisor would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** SIGKILL, and wait for the process to be gone. */
  kill9(): Promise<void>;
  /** Start it again on the same port and data directory (after kill9 or stop). */
  restart(): Promise<void>;
  /** Stop it and remove its data directory. */
  stop(): Promise<void>;
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

/** Resolves once the port answers PING with PONG (redis loads its AOF before it does). */
async function ready(port: number, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      let got = '';
      sock.once('error', () => resolve(false));
      sock.on('data', (d) => {
        got += d.toString();
        if (got.includes('\r\n')) {
          sock.destroy();
          resolve(got.startsWith('+PONG'));
        }
      });
      sock.once('connect', () => sock.write('PING\r\n'));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
      '--maxmemory-policy', 'noeviction', '--protected-mode', 'yes',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${stderr.trim()}`))),
    );
    exited.catch(() => {});
    await Promise.race([ready(port), exited]);
  };

  const gone = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    kill9: () => gone('SIGKILL'),
    restart: launch,
    async stop() {
      await gone('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
