// Shared by the load and soak benches: `earshot serve` as a child process over the tiny-dims test
// model (so the client's own work never shares the server's event loop), the server's figures
// from its /metrics, and a multipart body of a JFK clip.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { wav16 } from '../../test/audio/support.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface ServerChild {
  url: string;
  child: ChildProcess;
  stop: () => Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function startServerChild(flags: string[]): Promise<ServerChild> {
  const model = testModelDir({ preset: 'english', dims: 'tiny' });
  const port = await freePort();
  // Its own data directory: a server refuses one that another server holds (the machine's own, say).
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-bench-data-'));
  const args = [join(ROOT, 'bin/earshot.js'), 'serve', '--model', model, '--port', String(port), '--data-dir', dataDir, ...flags];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, EARSHOT_LOG_LEVEL: 'warn' },
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`earshot serve exited with ${child.exitCode}`);
    const ok = await fetch(`${url}/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 600) throw new Error('server not ready after 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url, child, stop };
}

/** The server's process figures from its Prometheus metrics. */
export async function serverFigures(
  url: string,
): Promise<{ rss: number; heapUsed: number; handles: number; inFlight: number; queue: number; fds: number; streams: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const v = (name: string): number => {
    let total = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
      if (m && m[1] === name) total += Number(m[3]);
    }
    return total;
  };
  return {
    rss: v('process_resident_memory_bytes'),
    heapUsed: v('nodejs_heap_size_used_bytes'),
    handles: v('nodejs_active_handles_total'),
    inFlight: v('earshot_http_requests_in_flight'),
    queue: v('earshot_queue_waiting') + v('earshot_queue_running'),
    fds: v('process_open_fds'),
    streams: v('earshot_streams_active'),
  };
}

/** The first `seconds` of the JFK sample as 16 kHz s16le PCM. */
export function jfkPcm(seconds: number): Buffer {
  const src = readFileSync(join(ROOT, 'samples/jfk.wav'));
  const dataAt = src.indexOf(Buffer.from('data')) + 8;
  return src.subarray(dataAt, dataAt + Math.round(seconds * 16000) * 2);
}

/** A multipart body with `seconds` of the JFK sample as a 16 kHz WAV, and its content type. */
export function clipUpload(seconds: number): { body: Buffer; contentType: string } {
  const pcm = jfkPcm(seconds);
  const boundary = 'earshotbenchboundary';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n`),
    // One temperature: random weights never satisfy the fallback thresholds, so the default ladder
    // would decode every window six times, measuring the ladder rather than the server.
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="temperature"\r\n\r\n0\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.wav"\r\nContent-Type: audio/wav\r\n\r\n`),
    wav16(pcm),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

export const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
