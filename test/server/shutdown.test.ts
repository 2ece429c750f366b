// Graceful shutdown of the real binary: `earshot serve` as a child process, a transcription in
// flight, SIGTERM. New requests must be refused, the one in flight must complete, and the process
// must exit 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, form, jfkClip, metricValue, modelDir } from './helpers.ts';

let home: string;
let child: ChildProcess | undefined;

before(() => {
  home = mkdtempSync(join(tmpdir(), 'earshot-shutdown-test-'));
});
after(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(home, { recursive: true, force: true });
});

/** Starts the binary and resolves with its URL once the log says it listens. */
function serve(args: string[]): Promise<{ url: string; exited: Promise<number | null>; stderr: () => string }> {
  const c = spawn(process.execPath, [BIN, 'serve', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: home, EARSHOT_HOME: home },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child = c;
  let err = '';
  const exited = new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    c.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /Server listening at (http:\/\/[^"\s]+)/.exec(err);
      if (m) resolve({ url: m[1]!, exited, stderr: () => err });
    });
    void exited.then((code) => reject(new Error(`exited ${code} before listening: ${err}`)));
  });
}

async function poll(check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const refused = async (url: string): Promise<boolean> => {
  try {
    const r = await fetch(`${url}/health`);
    return r.status === 503;
  } catch {
    return true; // connection refused: nothing listens any more
  }
};

test('SIGTERM: new requests refused, the request in flight completes, exit 0', async () => {
  const { url, exited, stderr } = await serve(['--model', modelDir('english'), '--port', '0', '--threads', '1', '--sample-len', '8', '--shutdown-timeout', '30']);
  await poll(async () => (await fetch(`${url}/ready`)).status === 200, 20000);
  const inFlight = fetch(`${url}/v1/audio/transcriptions`, { method: 'POST', body: form({ response_format: 'verbose_json' }, { bytes: jfkClip(75) }) });
  await poll(async () => metricValue(await (await fetch(`${url}/metrics`)).text(), 'earshot_queue_running') >= 1, 10000);
  child!.kill('SIGTERM');
  await poll(() => refused(url), 5000);
  const r = await inFlight;
  assert.equal(r.status, 200);
  const body = (await r.json()) as { duration: number; segments: unknown[] };
  assert.equal(body.duration, 75);
  assert.ok(body.segments.length > 0);
  assert.equal(await exited, 0, stderr());
  assert.match(stderr(), /shutting down/);
});
