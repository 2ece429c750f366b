// Temporary files: the one earshot writes (an MP4/M4A upload, which ffmpeg must seek in) lives in
// a private directory (0700) as a 0600 file and is gone after success, failure and abort; and a
// client that disconnects mid-upload or while its job waits leaves no file and no work behind
// (the queue back to 0, nothing in flight).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAudio } from '../../src/audio/index.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { form, isolateHome, metricValue, modelDir, occupy, ROOT, startTestServer, until } from '../server/helpers.ts';

const M4A = readFileSync(join(ROOT, '../shared/audio/formats/jfk__m4a_aac.m4a'));
let tmp: string;
const savedTmp = process.env.TMPDIR;

before(() => {
  isolateHome();
  // Everything this process writes to the temporary directory lands here, where it can be watched.
  tmp = mkdtempSync(join(tmpdir(), 'earshot-tmp-watch-'));
  process.env.TMPDIR = tmp;
});
after(() => {
  process.env.TMPDIR = savedTmp;
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * What earshot left in the temporary directory. Other entries (the ffmpeg binary's own debug
 * files) are not ours to judge.
 */
const ours = (): string[] => readdirSync(tmp).filter((f) => f.startsWith('earshot-'));

/** Runs `work` while polling the temporary directory; returns the modes of what appeared there. */
async function watching<T>(work: (seen: () => boolean) => Promise<T>): Promise<{ result: PromiseSettledResult<T>; dirModes: number[]; fileModes: number[] }> {
  const dirModes: number[] = [];
  const fileModes: number[] = [];
  let done = false;
  const poll = (async () => {
    while (!done) {
      for (const d of ours()) {
        try {
          const p = join(tmp, d);
          dirModes.push(statSync(p).mode & 0o777);
          for (const f of readdirSync(p)) fileModes.push(statSync(join(p, f)).mode & 0o777);
        } catch {
          // removed between listing and stat
        }
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  const [result] = await Promise.allSettled([work(() => fileModes.length > 0)]);
  done = true;
  await poll;
  return { result, dirModes, fileModes };
}

test('an M4A upload is decoded through a 0600 file in a 0700 directory, removed after success', async () => {
  const w = await watching(() => decodeAudio(new Uint8Array(M4A)));
  assert.equal(w.result.status, 'fulfilled');
  assert.ok(w.dirModes.length > 0 && w.fileModes.length > 0, 'the temporary file was seen');
  assert.ok(w.dirModes.every((m) => m === 0o700), w.dirModes.map((m) => m.toString(8)).join());
  assert.ok(w.fileModes.every((m) => m === 0o600), w.fileModes.map((m) => m.toString(8)).join());
  assert.deepEqual(ours(), []);
});

test('the temporary file is removed when decoding fails and when it is aborted', async () => {
  const broken = new Uint8Array(M4A.subarray(0, 2000)); // the MP4 header, then nothing
  const failed = await watching(() => decodeAudio(broken));
  assert.equal(failed.result.status, 'rejected');
  assert.deepEqual(ours(), []);

  const abort = new AbortController();
  const aborted = await watching(async (seen) => {
    const p = decodeAudio(new Uint8Array(M4A), { signal: abort.signal });
    await until(seen, 10_000).catch(() => {});
    abort.abort(new Error('client gone'));
    return p;
  });
  assert.equal(aborted.result.status, 'rejected');
  assert.ok(aborted.fileModes.length > 0, 'aborted while the file existed');
  assert.deepEqual(ours(), []);
});

let server: RunningServer;
before(async () => {
  server = await startTestServer({ model: modelDir('english') });
});
after(async () => server.app.close());

async function metrics(): Promise<string> {
  return (await fetch(`${server.url}/metrics`)).text();
}

function settled(): Promise<void> {
  return until(() => {
    const s = server.ctx.host.ready().queue.stats();
    return s.running === 0 && s.waiting === 0;
  });
}

test('a client that disconnects mid-upload leaves no temporary file and no work', async () => {
  const body = Buffer.from(await new Response(form({ model: 'whisper-1' }, { bytes: new Uint8Array(M4A), name: 'a.m4a' })).arrayBuffer());
  const type = `multipart/form-data; boundary=${/boundary=(\S+)/.exec(await new Response(form({})).headers.get('content-type')!)?.[1] ?? ''}`;
  const u = new URL(server.url);
  await new Promise<void>((resolve) => {
    const req = request({ host: u.hostname, port: u.port, path: '/v1/audio/transcriptions', method: 'POST', headers: { 'content-type': type, 'content-length': body.length } });
    req.on('error', () => resolve());
    req.write(body.subarray(0, body.length >> 1), () => setTimeout(() => (req.destroy(), resolve()), 100));
  });
  const deadline = Date.now() + 5000;
  while (metricValue(await metrics(), 'earshot_http_requests_in_flight') > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(metricValue(await metrics(), 'earshot_http_requests_in_flight'), 1); // the /metrics request itself
  assert.ok(metricValue(await metrics(), 'earshot_http_requests_total', { status: 'aborted' }) >= 1);
  await settled();
  assert.deepEqual(ours(), []);
});

test('a client that disconnects while its M4A job waits for the model leaves the queue at once, no file behind', async () => {
  const queue = server.ctx.host.ready().queue;
  const busy = occupy(queue);
  const abort = new AbortController();
  const sent = fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form({}, { bytes: new Uint8Array(M4A), name: 'a.m4a' }), signal: abort.signal });
  sent.catch(() => {});
  await until(() => queue.stats().waiting === 1, 10_000);
  abort.abort();
  await until(() => queue.stats().waiting === 0);
  busy.release();
  await busy.done;
  await settled();
  assert.deepEqual(ours(), []);
});
