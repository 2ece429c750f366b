// Raw HTTP against the server (fetch with FormData or hand-built bodies): malformed uploads, every
// hostile file of ../shared/audio/bad, temporary files, a client that hangs up while queued, and
// SSE deltas that arrive while the rest is still being decoded. After each bad request the server
// must still answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { BAD_DIR, form, isolateHome, jfkClip, metricValue, modelDir, occupy, ROOT, startTestServer, until } from './helpers.ts';

let server: RunningServer;
let home: string;
let url: string;

before(async () => {
  home = isolateHome();
  server = await startTestServer({ model: modelDir('english'), maxUploadBytes: 4_000_000 });
  url = `${server.url}/v1/audio/transcriptions`;
});
after(async () => {
  await server.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

interface Answer {
  status: number;
  json: { error?: { message: string; type: string; param: string | null; code: string }; text?: string };
}

async function post(body: FormData | string, headers: Record<string, string> = {}): Promise<Answer> {
  const r = await fetch(url, { method: 'POST', body, headers });
  const text = await r.text();
  return { status: r.status, json: JSON.parse(text) as Answer['json'] };
}

async function stillUp(): Promise<void> {
  const r = await fetch(`${server.url}/health`);
  assert.equal(r.status, 200, 'the server still answers');
}

const temporaries = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('earshot-audio-'));

test('a form without a file: 400 naming the file field', async () => {
  const a = await post(form({ model: 'whisper-1' }));
  assert.equal(a.status, 400);
  assert.equal(a.json.error?.code, 'missing_file');
  assert.equal(a.json.error?.param, 'file');
  await stillUp();
});

test('two files, or a file in another field: 400', async () => {
  const two = form({ model: 'whisper-1' }, { bytes: jfkClip(1) });
  two.append('file', new Blob([Buffer.from(jfkClip(1))]), 'second.wav');
  const a = await post(two);
  assert.equal(a.status, 400);
  assert.equal(a.json.error?.code, 'too_many_files');
  const other = new FormData();
  other.append('audio', new Blob([Buffer.from(jfkClip(1))]), 'a.wav');
  const b = await post(other);
  assert.equal(b.status, 400);
  assert.equal(b.json.error?.param, 'audio');
  await stillUp();
});

test('huge or too many fields: 413; a repeated field: 400', async () => {
  const huge = await post(form({ prompt: 'x'.repeat(100_000) }, { bytes: jfkClip(1) }));
  assert.equal(huge.status, 413);
  assert.equal(huge.json.error?.param, 'prompt');
  const many: Record<string, string> = {};
  for (let i = 0; i < 40; i++) many[`f${i}`] = 'v';
  const lots = await post(form(many, { bytes: jfkClip(1) }));
  assert.equal(lots.status, 413);
  const twice = await post(form({ response_format: ['json', 'text'] }, { bytes: jfkClip(1) }));
  assert.equal(twice.status, 400);
  assert.equal(twice.json.error?.param, 'response_format');
  await stillUp();
});

test('not multipart, or a broken multipart body: 400 in OpenAI error shape', async () => {
  const json = await post(JSON.stringify({ file: 'x' }), { 'content-type': 'application/json' });
  assert.equal(json.status, 400);
  assert.equal(json.json.error?.code, 'not_multipart');
  const broken = await post('--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF', {
    'content-type': 'multipart/form-data; boundary=XYZ',
  });
  assert.equal(broken.status, 400);
  assert.equal(typeof broken.json.error?.message, 'string');
  await stillUp();
});

test('every file in shared/audio/bad gets an answer its manifest allows, and no temporary file is left', async () => {
  const before = temporaries();
  const entries = readFileSync(join(BAD_DIR, 'manifest.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { path: string; expect: string; duration_s: number | null });
  assert.ok(entries.length >= 5);
  for (const e of entries) {
    const bytes = readFileSync(join(BAD_DIR, '..', e.path));
    const a = await post(form({ model: 'whisper-1', temperature: '0.5' }, { bytes, name: e.path.split('/').pop()! }));
    const allowed = new Set((e.expect.match(/\b[245]\d\d\b/g) ?? []).map(Number));
    const any4xx = /4xx/.test(e.expect);
    assert.ok(allowed.has(a.status) || (any4xx && a.status >= 400 && a.status < 500), `${e.path}: ${a.status} is allowed by "${e.expect}"`);
    assert.ok(a.status < 500, `${e.path}: never 5xx`);
    if (a.status === 200) {
      assert.equal(typeof a.json.text, 'string');
      if (e.duration_s === 0) assert.equal(a.json.text, '', `${e.path}: no audio, no text`);
    } else {
      assert.equal(a.json.error?.type, 'invalid_request_error');
      assert.ok((a.json.error?.message.length ?? 0) > 5, `${e.path}: the message says why`);
    }
    await stillUp();
  }
  // An MP4 upload goes through a private temporary file (ffmpeg needs to seek): it must go too.
  const m4a = readFileSync(join(ROOT, '../shared/audio/formats/jfk__m4a_aac.m4a'));
  const ok = await post(form({ temperature: '0.5' }, { bytes: m4a, name: 'jfk.m4a' }));
  assert.equal(ok.status, 200);
  assert.deepEqual(temporaries(), before, 'no temporary file left behind');
});

test('a client that hangs up while queued leaves the queue, and its job never runs', async () => {
  const w = server.ctx.host.ready();
  const metrics = async () => (await fetch(`${server.url}/metrics`)).text();
  const tokensBefore = metricValue(await metrics(), 'earshot_tokens_generated_total');
  const held = occupy(w.queue);
  await until(() => w.queue.stats().running === held.slots);
  const client = new AbortController();
  const pending = fetch(url, { method: 'POST', body: form({ temperature: '0.5' }, { bytes: jfkClip(3) }), signal: client.signal });
  try {
    await until(() => w.queue.stats().waiting === 1);
    client.abort();
    await assert.rejects(pending);
    await until(() => w.queue.stats().waiting === 0);
  } finally {
    held.release();
    await held.done;
  }
  const text = await metrics();
  assert.equal(metricValue(text, 'earshot_tokens_generated_total'), tokensBefore, 'nothing was decoded for nobody');
  assert.equal(metricValue(text, 'earshot_http_requests_total', { route: '/v1/audio/transcriptions', status: 'aborted' }), 1);
  assert.equal(w.queue.stats().running, 0);
});

test('stream=true: deltas arrive while later windows are still decoding; /health answers meanwhile', async () => {
  const w = server.ctx.host.ready();
  const r = await fetch(url, { method: 'POST', body: form({ stream: 'true', temperature: '0.5' }, { bytes: jfkClip(100) }) });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type')?.split(';')[0], 'text/event-stream');
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let received = '';
  let sawDeltaBeforeEnd = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    received += decoder.decode(value, { stream: true });
    if (!sawDeltaBeforeEnd && received.includes('transcript.text.delta') && !received.includes('transcript.text.done')) {
      sawDeltaBeforeEnd = true;
      assert.ok(w.queue.stats().running >= 1, 'the transcription is still running');
      assert.equal((await fetch(`${server.url}/health`)).status, 200);
      assert.equal((await fetch(`${server.url}/ready`)).status, 200);
    }
  }
  assert.ok(sawDeltaBeforeEnd, 'a delta came before the end of the stream');
  const events = received
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => JSON.parse(b.slice(6)) as { type: string; delta?: string; text?: string });
  assert.equal(events.at(-1)!.type, 'transcript.text.done');
  assert.ok(events.length >= 3, `several windows, several deltas (${events.length - 1})`);
  assert.equal(events.at(-1)!.text, events.slice(0, -1).map((e) => e.delta).join('').trim());
});

test('a request over the timeout: 504, and it leaves the queue', async () => {
  const quick = await startTestServer({ model: modelDir('english'), requestTimeoutS: 1 });
  const w = quick.ctx.host.ready();
  const held = occupy(w.queue);
  try {
    await until(() => w.queue.stats().running === held.slots);
    const r = await fetch(`${quick.url}/v1/audio/transcriptions`, { method: 'POST', body: form({}, { bytes: jfkClip(2) }) });
    assert.equal(r.status, 504);
    assert.equal(((await r.json()) as Answer['json']).error?.code, 'timeout');
    assert.equal(w.queue.stats().waiting, 0);
  } finally {
    held.release();
    await held.done;
    await quick.app.close();
  }
});
