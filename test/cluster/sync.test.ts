// Synchronous requests through the cluster (issue 15 item 3): a stateless API node
// (`--no-local-model`) in this process, workers in child processes, a real redis-server. The same
// requests go to a one-process server on the same model, and the answers must be the same: the
// text, the segments, the stream's events, and the 4xx of bad input.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Queue } from 'bullmq';
import WebSocket from 'ws';
import { connectRedis, KEY_PREFIX } from '../../src/cluster/redis.ts';
import { requestQueueName } from '../../src/cluster/requests.ts';
import { uploadIds } from '../../src/cluster/uploads.ts';
import { EarshotError } from '../../src/errors.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import { loadServerConfig } from '../../src/server/config.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { form, isolateHome, jfkClip, metricValue, modelDir, startTestServer } from '../server/helpers.ts';
import { modelIdOf, sseEvents, startApiNode, startWorker, type WorkerChild } from './sync-support.ts';

const TTL_MS = 3000;
let redis: RedisServer;
let home: string;
let single: RunningServer;
let api: RunningServer;
let worker: WorkerChild | undefined;
const dir = modelDir('multilingual');
const id = modelIdOf(dir);

before(async () => {
  // Random weights fail the fallback thresholds of every window, so decoding ends in sampling: a
  // constant random source (the worker child has the same: constant-random.mjs) makes both processes sample alike.
  Math.random = () => 0.5;
  home = isolateHome();
  redis = await startRedis();
  single = await startTestServer({ model: dir, maxUploadBytes: 25_000_000 });
  api = await startApiNode(redis.url, dir, { maxUploadBytes: 25_000_000 });
});
after(async () => {
  await worker?.stop();
  await api.app.close();
  await single.app.close();
  await unloadAll();
  await redis.stop();
  rmSync(home, { recursive: true, force: true });
});

const post = (url: string, path: string, fields: Record<string, string>, bytes: Uint8Array = jfkClip(3), signal?: AbortSignal) =>
  fetch(`${url}${path}`, { method: 'POST', body: form(fields, { bytes }), ...(signal ? { signal } : {}) });

async function ready(): Promise<number> {
  return (await fetch(`${api.url}/ready`)).status;
}

test('/ready is 503 while no worker is alive, and a request gets 503 no_workers', async () => {
  const r = await fetch(`${api.url}/ready`);
  assert.equal(r.status, 503);
  assert.deepEqual(await r.json(), { status: 'no_workers', model: id, workers: 0 });
  const t = await post(api.url, '/v1/audio/transcriptions', { temperature: '0' });
  assert.equal(t.status, 503);
  assert.equal(((await t.json()) as { error: { code: string } }).error.code, 'no_workers');
});

test('a worker in another process answers: /ready 200, /v1/models lists its model, the text is the one-process text', async () => {
  worker = await startWorker(redis.url, dir, TTL_MS);
  for (const end = Date.now() + 5000; (await ready()) !== 200; ) {
    assert.ok(Date.now() < end, '/ready did not turn 200');
    await new Promise((r) => setTimeout(r, 50));
  }
  // The same ids as one process: the model, and the names OpenAI clients send for the default one.
  const listed = async (url: string) => ((await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string; default?: boolean }> }).data;
  const models = await listed(api.url);
  assert.deepEqual(models.map((m) => m.id).sort(), (await listed(single.url)).map((m) => m.id).sort());
  assert.ok(models.some((m) => m.id === 'whisper-1'));
  assert.equal(models.find((m) => m.id === id)!.default, true);

  for (const [path, fields] of [
    ['/v1/audio/transcriptions', { temperature: '0', response_format: 'verbose_json' }],
    ['/v1/audio/transcriptions', { temperature: '0', response_format: 'srt', language: 'de', prompt: 'Ask not' }],
    ['/v1/audio/translations', { temperature: '0', response_format: 'verbose_json', model: 'whisper-1' }],
    ['/v1/audio/transcriptions', { temperature: '0', response_format: 'text', model: 'gpt-4o-mini-transcribe' }],
  ] as const) {
    const [a, b] = await Promise.all([post(single.url, path, fields, jfkClip(40)), post(api.url, path, fields, jfkClip(40))]);
    assert.equal(b.status, 200, await b.clone().text());
    assert.equal(a.status, 200);
    assert.equal(b.headers.get('content-type'), a.headers.get('content-type'));
    assert.equal(await b.text(), await a.text(), `${path} ${JSON.stringify(fields)}`);
  }
});

test('SSE through the cluster: the same deltas and done event as one process', async () => {
  const fields = { temperature: '0', stream: 'true', vad_filter: 'false', prompt: 'so' };
  const [a, b] = await Promise.all([post(single.url, '/v1/audio/transcriptions', fields, jfkClip(70)), post(api.url, '/v1/audio/transcriptions', fields, jfkClip(70))]);
  assert.equal(b.status, 200);
  assert.match(b.headers.get('content-type') ?? '', /^text\/event-stream/);
  const [ea, eb] = [sseEvents(await a.text()), sseEvents(await b.text())];
  assert.equal(eb.at(-1)!.type, 'transcript.text.done');
  assert.ok(eb.filter((e) => e.type === 'transcript.text.delta').length >= 1);
  assert.deepEqual(eb, ea);
});

test('bad input and over-limit uploads get the same 4xx as one process', async () => {
  const cases: Array<[string, Record<string, string>, Uint8Array]> = [
    ['not audio', { temperature: '0' }, new TextEncoder().encode('this is not audio at all, just text')],
    ['empty file', {}, new Uint8Array(0)],
    ['over --max-upload-bytes', {}, jfkClip(800)],
    ['unknown model', { model: 'no-such-model' }, jfkClip(2)],
    ['bad response_format', { response_format: 'xml' }, jfkClip(2)],
    ['bad language', { language: 'klingon' }, jfkClip(2)],
  ];
  for (const [name, fields, bytes] of cases) {
    const [a, b] = await Promise.all([post(single.url, '/v1/audio/transcriptions', fields, bytes), post(api.url, '/v1/audio/transcriptions', fields, bytes)]);
    assert.ok(a.status >= 400 && a.status < 500, `${name}: one process said ${a.status}`);
    assert.equal(b.status, a.status, name);
    const [ja, jb] = [(await a.json()) as { error: { code: string; type: string; param: unknown } }, (await b.json()) as { error: { code: string; type: string; param: unknown } }];
    assert.equal(jb.error.code, ja.error.code, name);
    assert.equal(jb.error.type, ja.error.type, name);
    assert.equal(jb.error.param, ja.error.param, name);
  }
});

test('a client that leaves cancels the work: the worker stops decoding, no answer is sent, no job and no audio stay in Redis', async () => {
  const completedBefore = metricValue(await (await fetch(worker!.metricsUrl)).text(), 'earshot_worker_requests_total', { outcome: 'completed' });
  // The test listens to every reply channel: it sees the worker start and would see any answer. (A
  // pattern listener keeps a publish from reaching nobody; the worker's check of the channel's own
  // subscribers, which the API node drops when its client leaves, can stop it too: either way the
  // outcome is `cancelled` and no answer is sent.)
  const listener = connectRedis(redis.url);
  const replies: string[] = [];
  await listener.psubscribe(`${KEY_PREFIX}:reply:*`);
  listener.on('pmessage', (_p: string, _c: string, m: string) => replies.push((JSON.parse(m) as { type: string }).type));
  try {
    const leave = new AbortController();
    // Long and slow on random weights: 20 windows, each through the whole fallback ladder.
    const pending = post(api.url, '/v1/audio/transcriptions', { temperature: '0', vad_filter: 'false' }, jfkClip(600), leave.signal).catch((e: unknown) => e);
    for (const end = Date.now() + 60000; !replies.includes('start'); ) {
      assert.ok(Date.now() < end, 'the worker never started the request');
      await new Promise((r) => setTimeout(r, 10));
    }
    leave.abort();
    assert.equal(((await pending) as Error).name, 'AbortError');
    let text = '';
    for (const end = Date.now() + 10000; metricValue((text = await (await fetch(worker!.metricsUrl)).text()), 'earshot_worker_requests_total', { outcome: 'cancelled' }) < 1; ) {
      assert.ok(Date.now() < end, 'the worker did not stop the request');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(metricValue(text, 'earshot_worker_requests_running'), 0);
    assert.equal(metricValue(text, 'earshot_worker_requests_total', { outcome: 'completed' }), completedBefore);
    assert.deepEqual(replies, ['start'], 'no answer may be published after the client left');
  } finally {
    listener.disconnect();
  }
  const r = connectRedis(redis.url);
  const q = new Queue(requestQueueName(id), { connection: r, prefix: KEY_PREFIX });
  try {
    const counts = await q.getJobCounts('waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed');
    assert.ok(Object.values(counts).every((n) => n === 0), JSON.stringify(counts));
    assert.equal((await uploadIds(r)).size, 0);
  } finally {
    await q.close();
    r.disconnect();
  }
});

test('metrics on the API node: live workers and queue depth per model', async () => {
  const scrape = async () => (await fetch(`${api.url}/metrics`)).text();
  assert.equal(metricValue(await scrape(), 'earshot_cluster_workers', { model: id }), 1);
  assert.equal(metricValue(await scrape(), 'earshot_cluster_queue_depth', { model: id }), 0);
  // A stopped worker (SIGSTOP) still counts as alive within its TTL, but takes nothing: requests wait in Redis.
  worker!.child.kill('SIGSTOP');
  const waiting = [0, 1, 2].map(() => post(api.url, '/v1/audio/transcriptions', { temperature: '0' }, jfkClip(2)));
  try {
      let depth = 0;
    for (const end = Date.now() + 2000; (depth = metricValue(await scrape(), 'earshot_cluster_queue_depth', { model: id })) < 3 && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(depth, 3);
  } finally {
    worker!.child.kill('SIGCONT');
  }
  for (const r of await Promise.all(waiting)) assert.equal(r.status, 200);
  assert.equal(metricValue(await scrape(), 'earshot_cluster_queue_depth', { model: id }), 0);
});

test('a worker that dies drops out within its heartbeat TTL: /ready 503, no live workers', async () => {
  assert.equal(await ready(), 200);
  await worker!.stop('SIGKILL');
  const died = Date.now();
  while ((await ready()) !== 503) {
    assert.ok(Date.now() - died < TTL_MS + 2000, '/ready still 200 after the TTL');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(Date.now() - died > 200, 'turned 503 before the heartbeat could expire');
  assert.equal(metricValue(await (await fetch(`${api.url}/metrics`)).text(), 'earshot_cluster_workers', { model: id }), 0);
  assert.deepEqual(((await (await fetch(`${api.url}/v1/models`)).json()) as { data: unknown[] }).data, []);
});

test('a node without a model refuses realtime streams with a clear 503, and stays up', async () => {
  for (const path of ['/v1/realtime', '/v1/stream']) {
    const ws = new WebSocket(`${api.url.replace('http', 'ws')}${path}`);
    const [status, body] = await new Promise<[number, string]>((resolve, reject) => {
      ws.once('open', () => reject(new Error('the stream was opened')));
      ws.once('unexpected-response', (_req, res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve([res.statusCode ?? 0, text]));
      });
    });
    assert.equal(status, 503, path);
    const err = (JSON.parse(body) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, 'no_local_model');
    assert.match(err.message, /holds no model/);
  }
  assert.equal((await fetch(`${api.url}/health`)).status, 200);
});

test('--no-local-model without --redis is refused at startup with one clear error', () => {
  assert.throws(
    () => loadServerConfig({ env: {}, flags: { localModel: false } }),
    (e: unknown) => e instanceof EarshotError && e.code === 'bad_config' && /--no-local-model\) needs redis \(--redis <url>\)/.test(e.message),
  );
  assert.equal(loadServerConfig({ env: { EARSHOT_LOCAL_MODEL: 'false', EARSHOT_REDIS_URL: 'redis://127.0.0.1:1' } }).localModel, false);
});
