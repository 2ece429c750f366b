// Run by offline.test.ts under strace, in a network namespace with only loopback. Two modes, each
// printing one JSON line:
// - `serve <model> <clip.wav> <windowMs>`: starts `earshot serve` (bin/earshot.js, as a user would)
//   on a free loopback port, sends it a transcription and a WebSocket stream, keeps it serving until
//   `windowMs` after it was ready (longer than onnxruntime's telemetry takes to try its collector),
//   then stops it with SIGTERM. This driver imports nothing of earshot's, so whatever keeps the
//   server quiet is the server's own doing; the server is given ORT_DISABLE_TELEMETRY=0.
// - `pull`: tries to pull a hub model, the one thing allowed to reach out; it must fail fast with a
//   typed error.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect, wsUrl } from '../server/stream-client.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const [mode, ...args] = process.argv.slice(2);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function serve(model: string, clipPath: string, windowMs: number): Promise<object> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, ORT_DISABLE_TELEMETRY: '0' };
  delete env.TSX_DISABLE_CACHE; // this driver's own setting; bin/earshot.js sets its own
  const server = spawn(process.execPath, [join(ROOT, 'bin/earshot.js'), 'serve', '--model', model, '--port', String(port), '--threads', '1', '--sample-len', '4'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  server.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const exited = new Promise<number | null>((r) => server.on('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  try {
    let ready = false;
    for (const end = Date.now() + 90_000; !ready && Date.now() < end; await sleep(100)) {
      ready = await fetch(`${url}/ready`).then((r) => r.ok, () => false);
    }
    if (!ready) throw new Error(`the server was not ready within 90 s: ${stderr}`);
    const readyAt = Date.now();

    const wav = readFileSync(clipPath);
    const body = new FormData();
    body.append('file', new Blob([wav]), 'clip.wav');
    body.append('response_format', 'verbose_json');
    const res = await fetch(`${url}/v1/audio/transcriptions`, { method: 'POST', body });
    const transcript = (await res.json()) as { duration?: number };

    // The same clip as a stream: its PCM in 100 ms messages, at about ten times real time.
    const c = await connect(wsUrl(url, '/v1/stream'));
    c.ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 }));
    await c.next('ready');
    const pcm = wav.subarray(wav.indexOf('data') + 8);
    for (let at = 0; at < pcm.length; at += 3200) {
      c.ws.send(pcm.subarray(at, at + 3200));
      await sleep(10);
    }
    c.ws.send(JSON.stringify({ type: 'end' }));
    const closed = await c.closed;

    await sleep(readyAt + windowMs - Date.now());
    server.kill('SIGTERM');
    const exit = await Promise.race([exited, sleep(30_000).then(() => 'still running')]);
    return {
      status: res.status,
      duration: transcript.duration,
      stream: { types: [...new Set(c.received.map((r) => r.msg.type))], close: closed.code },
      servedMs: Date.now() - readyAt,
      exit,
      stderr,
    };
  } finally {
    server.kill('SIGKILL');
  }
}

async function pull(): Promise<object> {
  // Imported here, not above: the serve driver must load nothing of earshot's.
  const { loadWhisper } = await import('../../src/runtime/model-cache.ts');
  const { isEarshotError } = await import('../../src/errors.ts');
  const t0 = performance.now();
  try {
    await loadWhisper('tiny');
    return { ok: true, ms: performance.now() - t0 };
  } catch (e) {
    return { ok: false, ms: performance.now() - t0, ...(isEarshotError(e) ? { kind: e.kind, code: e.code, message: e.message } : { message: String(e) }) };
  }
}

const out = mode === 'serve' ? await serve(args[0]!, args[1]!, Number(args[2])) : mode === 'pull' ? await pull() : { error: `unknown mode ${mode}` };
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
