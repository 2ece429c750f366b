// The global cap on upload bytes held in memory (--max-upload-memory), over a real server: uploads
// past the cap still succeed, through a private spool file (0600 in a 0700 directory) that is gone
// once the upload is done with, whatever its outcome; the bytes held in memory never pass the cap.
// The server's temporary directory is the test's own (TMPDIR), so the spool files can be watched.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { tempPrefix } from '../../src/private-temp.ts';
import { form, isolateHome, jfkClip, metricValue, modelDir, startTestServer, until } from './helpers.ts';

const CAP = 200_000;
let server: RunningServer;
let url: string;
let spoolRoot: string;
let home: string;
const savedTmp = process.env.TMPDIR;

before(async () => {
  home = isolateHome();
  const model = modelDir('english'); // before TMPDIR moves: the test models live in the usual temp dir
  spoolRoot = mkdtempSync(join(tmpdir(), 'earshot-spool-test-'));
  process.env.TMPDIR = spoolRoot;
  server = await startTestServer({ model, maxUploadMemoryBytes: CAP, maxUploadBytes: 1_000_000, sampleLen: 2 });
  url = `${server.url}/v1/audio/transcriptions`;
});
after(async () => {
  await server.app.close();
  await unloadAll();
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  rmSync(spoolRoot, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

const spools = (): string[] => readdirSync(spoolRoot).filter((n) => n.startsWith(tempPrefix('upload')));
const metric = async (name: string): Promise<number> => metricValue(await (await fetch(`${server.url}/metrics`)).text(), name);

/** A multipart upload sent in two steps: `first` bytes of the file now, the rest on `finish()`. */
function partialUpload(audio: Uint8Array, first: number): { finish(): void; answer: Promise<{ status: number; body: string }> } {
  const boundary = 'earshot-test-boundary';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\nverbose_json\r\n--${boundary}--\r\n`);
  const req = httpRequest(url, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + audio.length + tail.length },
  });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
  req.write(Buffer.concat([head, audio.subarray(0, first)]));
  return { finish: () => req.end(Buffer.concat([audio.subarray(first), tail])), answer };
}

test('concurrent uploads past the memory cap all succeed, the ones past it spooled, and no spool file is left', async () => {
  const spooledBefore = await metric('earshot_uploads_spooled_total');
  // Four uploads under way at once, 60 KB of each in, against a 200 KB cap: the fourth passes it.
  const uploads = Array.from({ length: 4 }, () => partialUpload(jfkClip(3), 60_000));
  await until(() => spools().length >= 1, 5000);
  assert.ok((await metric('earshot_upload_memory_bytes')) <= CAP);
  for (const u of uploads) u.finish();
  for (const u of uploads) {
    const a = await u.answer;
    assert.equal(a.status, 200, a.body);
    assert.equal((JSON.parse(a.body) as { duration: number }).duration, 3, 'the whole audio was decoded, spooled or not');
  }
  assert.ok((await metric('earshot_uploads_spooled_total')) - spooledBefore >= 1, 'uploads past the cap went to spool files');
  assert.deepEqual(spools(), []);
  assert.equal(await metric('earshot_upload_memory_bytes'), 0);
});

test('a spool file is private (0600 in a 0700 directory) while the upload arrives, memory stays under the cap, and the file is removed after', async () => {
  const upload = partialUpload(jfkClip(10), 250_000); // 320 KB; past the cap, the upload goes to disk
  await until(() => spools().length === 1 && readdirSync(join(spoolRoot, spools()[0]!)).length === 1, 5000);
  const dir = join(spoolRoot, spools()[0]!);
  const file = join(dir, readdirSync(dir)[0]!);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  await until(() => statSync(file).size >= 250_000, 5000);
  assert.equal(await metric('earshot_upload_memory_bytes'), 0, 'what was in memory went to the file with the rest');
  upload.finish();
  const a = await upload.answer;
  assert.equal(a.status, 200, a.body);
  assert.equal((JSON.parse(a.body) as { duration: number }).duration, 10);
  assert.deepEqual(spools(), [], 'the spool directory is removed');
});

test('spooled uploads that fail (not audio, over the size limit) get their error and leave no file', async () => {
  const spooledBefore = await metric('earshot_uploads_spooled_total');
  const noise = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
  const notAudio = await fetch(url, { method: 'POST', body: form({}, { bytes: noise, name: 'x.wav' }) });
  assert.equal(notAudio.status, 400, await notAudio.text());
  const huge = await fetch(url, { method: 'POST', body: form({}, { bytes: jfkClip(40) }) }); // 1.28 MB, over the 1 MB limit
  assert.equal(huge.status, 413);
  assert.equal(((await huge.json()) as { error: { code: string; param: string } }).error.code, 'file_too_large');
  assert.equal((await metric('earshot_uploads_spooled_total')) - spooledBefore, 2, 'both went through a spool file');
  assert.deepEqual(spools(), []);
  assert.equal(await metric('earshot_upload_memory_bytes'), 0);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});

test("an async job's upload counts against the cap too: past it the upload is spooled, the job keeps the whole audio and completes, and no spool file is left", async () => {
  const spooledBefore = await metric('earshot_uploads_spooled_total');
  const res = await fetch(`${server.url}/v1/jobs`, { method: 'POST', body: form({ response_format: 'verbose_json' }, { bytes: jfkClip(10) }) });
  assert.equal(res.status, 202, await res.clone().text());
  const { id } = (await res.json()) as { id: string };
  assert.equal((await metric('earshot_uploads_spooled_total')) - spooledBefore, 1, 'a 320 KB upload against a 200 KB cap went to a spool file');
  let job: { status: string; result?: { duration: number } } = { status: 'queued' };
  const deadline = Date.now() + 60_000;
  while (job.status !== 'completed' && job.status !== 'failed' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    job = (await (await fetch(`${server.url}/v1/jobs/${id}`)).json()) as typeof job;
  }
  assert.equal(job.status, 'completed', JSON.stringify(job));
  assert.equal(job.result?.duration, 10, 'the job was given the whole upload');
  assert.deepEqual(spools(), []);
  assert.equal(await metric('earshot_upload_memory_bytes'), 0);
});
