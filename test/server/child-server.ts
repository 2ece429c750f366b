// `earshot serve` as a child process on port 0 (the real binary, its real signal handling), for
// the tests that need a process of their own: SIGTERM, or a client in another process than the
// server (TCP timing a server in the test's own event loop would hide).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from './helpers.ts';

export interface ChildServer {
  url: string;
  child: ChildProcess;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stderr(): string;
  /** SIGKILLs the process if it still runs and removes its home. */
  stop(): Promise<void>;
}

/** Starts the binary with `args` and resolves once it listens and /ready is 200. */
export async function serveChild(args: string[]): Promise<ChildServer> {
  const home = mkdtempSync(join(tmpdir(), 'earshot-child-test-'));
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: home, EARSHOT_HOME: home },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(home, { recursive: true, force: true });
  };
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /Server listening at (http:\/\/[^"\s]+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`exited ${code} before listening: ${err}`)));
  });
  for (const end = Date.now() + 20000; (await fetch(`${url}/ready`)).status !== 200; ) {
    if (Date.now() > end) {
      await stop();
      throw new Error(`not ready in 20 s: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, child, exited, stderr: () => err, stop };
}
