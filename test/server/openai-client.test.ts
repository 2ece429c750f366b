// The server as OpenAI's own client library sees it: the official `openai` package pointed at a
// server on port 0 (English test model, one API key, no waiting room in the queue, a 1 MB upload
// limit), every response_format, streaming, the models list, and each error as the SDK surfaces
// it. Random weights: the words are gibberish, so only shapes and consistency are checked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { AddressInfo } from 'node:net';
import { buildApp, type RunningServer } from '../../src/server/app.ts';
import { loadServerConfig } from '../../src/server/config.ts';
import { isolateHome, jfkClip, metricValue, modelDir, occupy, startTestServer, until } from './helpers.ts';

const KEY = 'sk-test-0123456789';
const CACHED = 'test-org/whisper-cached';
let server: RunningServer;
let client: OpenAI;
let home: string;
const clip = jfkClip(3);

const audio = () => toFile(clip, 'clip.wav', { type: 'audio/wav' });

before(async () => {
  home = isolateHome();
  // One model in the cache besides the served one, for /v1/models.
  mkdirSync(join(home, 'models', 'test-org'), { recursive: true });
  cpSync(modelDir('english'), join(home, 'models', CACHED), { recursive: true });
  server = await startTestServer({ model: modelDir('english'), apiKeys: [KEY], queueSize: 0, maxUploadBytes: 1_000_000 });
  client = new OpenAI({ apiKey: KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
});
after(async () => {
  await server.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `an APIError, got ${String(e)}`);
    return e;
  }
  assert.fail('the request should have failed');
}

test('json (the default): {text, usage} with the audio duration', async () => {
  const r = await client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1' });
  assert.equal(typeof r.text, 'string');
  assert.equal(r.text, r.text.trim());
  assert.deepEqual(r.usage, { type: 'duration', seconds: 3 });
});

test('verbose_json: task, language name, duration and segments that add up to the text', async () => {
  const r = await client.audio.transcriptions.create({
    file: await audio(),
    model: server.ctx.host.id,
    response_format: 'verbose_json',
    timestamp_granularities: ['segment'],
    temperature: 0.4,
  });
  assert.equal(r.language, 'english');
  assert.equal(r.duration, 3);
  assert.ok(r.segments && r.segments.length > 0);
  r.segments.forEach((s, i) => {
    assert.equal(s.id, i);
    assert.ok(s.start <= s.end);
    assert.equal(s.temperature, 0.4, 'one temperature given: no fallback ladder');
    assert.ok(Array.isArray(s.tokens));
  });
  assert.equal(r.text, r.segments.map((s) => s.text).join(''));
});

test('text, srt and vtt come back as strings in their formats', async () => {
  const text = await client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', response_format: 'text' });
  assert.equal(typeof text, 'string');
  assert.match(text as unknown as string, /\n$/);
  const srt = (await client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', response_format: 'srt' })) as unknown as string;
  for (const block of srt.trim().split('\n\n').filter((b) => b.length > 0)) {
    assert.match(block, /^\d+\n\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d\n/);
  }
  const vtt = (await client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', response_format: 'vtt' })) as unknown as string;
  assert.match(vtt, /^WEBVTT\n\n/);
});

test('content types follow OpenAI: text/plain for text and srt, text/vtt for vtt, JSON otherwise', async () => {
  for (const [format, type] of [
    ['text', 'text/plain'],
    ['srt', 'text/plain'],
    ['vtt', 'text/vtt'],
    ['json', 'application/json'],
    ['verbose_json', 'application/json'],
  ] as const) {
    const { response } = await client.audio.transcriptions
      .create({ file: await audio(), model: 'whisper-1', response_format: format, temperature: 0.5 })
      .withResponse();
    assert.equal(response.headers.get('content-type')?.split(';')[0], type, format);
    assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  }
});

test('stream: transcript.text.delta events, then transcript.text.done with the full text and usage', async () => {
  const events = await client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', stream: true, temperature: 0.3 });
  const got: Array<OpenAI.Audio.TranscriptionStreamEvent> = [];
  for await (const e of events) got.push(e);
  const done = got.at(-1)!;
  assert.equal(done.type, 'transcript.text.done');
  const deltas = got.slice(0, -1);
  assert.ok(deltas.every((e) => e.type === 'transcript.text.delta' && e.delta.length > 0));
  assert.equal(done.type === 'transcript.text.done' && done.text, deltas.map((e) => (e.type === 'transcript.text.delta' ? e.delta : '')).join('').trim());
  const usage = done.type === 'transcript.text.done' ? done.usage : undefined;
  assert.ok(usage);
  assert.equal(usage.type, 'tokens');
  assert.equal(usage.input_token_details?.audio_tokens, 150, '50 encoder positions per second of audio');
  assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
});

test("models: the served model and OpenAI's names for it are loaded, the cached one is listed; unknown ids are 404", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids.slice(0, 5), [server.ctx.host.id, 'whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe', 'default']);
  assert.ok(ids.includes(CACHED), `the cached model is listed: ${ids.join(', ')}`);
  const one = await client.models.retrieve('whisper-1');
  assert.equal(one.object, 'model');
  assert.equal((one as unknown as { loaded: boolean }).loaded, true);
  const cached = await client.models.retrieve(CACHED);
  assert.equal((cached as unknown as { loaded: boolean }).loaded, false);
  assert.equal((await client.models.retrieve('gpt-4o-mini-transcribe')).id, 'gpt-4o-mini-transcribe');
  for (const model of ['gpt-4o-transcribe', 'gpt-4o-mini-transcribe']) {
    assert.equal(typeof (await client.audio.transcriptions.create({ file: await audio(), model })).text, 'string', `${model} transcribes`);
  }
  const e = await rejection(client.models.retrieve('gpt-5-transcribe'));
  assert.equal(e.status, 404);
});

test('401: no key, or a wrong one', async () => {
  const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const e = await rejection(wrong.audio.transcriptions.create({ file: await audio(), model: 'whisper-1' }));
  assert.ok(e instanceof OpenAI.AuthenticationError);
  assert.equal(e.code, 'invalid_api_key');
  const r = await fetch(`${server.url}/v1/models`);
  assert.equal(r.status, 401);
  assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'missing_api_key');
});

test('404: a model that is not served, even one in the cache', async () => {
  for (const model of ['gpt-5-transcribe', CACHED]) {
    const e = await rejection(client.audio.transcriptions.create({ file: await audio(), model }));
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.code, 'model_not_found');
  }
});

test('400: bad parameters and unreadable audio, each with a message that says why', async () => {
  const cases: Array<[() => Promise<unknown>, RegExp, string | null]> = [
    [async () => client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', timestamp_granularities: ['word'] }), /verbose_json/, 'timestamp_granularities[]'],
    // The served test model has no cross-attention outputs (not a *_timestamped export).
    [async () => client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', response_format: 'verbose_json', timestamp_granularities: ['word'] }), /cross-attention outputs.*_timestamped/, null],
    [async () => client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', temperature: 3 }), /temperature.*0 to 1/, 'temperature'],
    [async () => client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', response_format: 'docx' as 'json' }), /response_format/, 'response_format'],
    [async () => client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', language: 'klingon' }), /unknown language/, 'language'],
    [async () => client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', language: 'de' }), /English-only/, null],
    [async () => client.audio.translations.create({ file: await audio(), model: 'whisper-1' }), /English-only.*multilingual/, 'model'],
    [async () => client.audio.transcriptions.create({ file: await toFile(Buffer.from('hello, not audio at all'), 'a.wav'), model: 'whisper-1' }), /audio|format/, null],
  ];
  for (const [call, message, param] of cases) {
    const e = await rejection(call());
    assert.ok(e instanceof OpenAI.BadRequestError, `${message}: got ${e.status}`);
    assert.match(e.message, message);
    assert.equal(e.param ?? null, param);
    assert.equal(e.type, 'invalid_request_error');
  }
});

test('413: an upload over the size limit', async () => {
  const e = await rejection(client.audio.transcriptions.create({ file: await toFile(jfkClip(40), 'long.wav'), model: 'whisper-1' }));
  assert.equal(e.status, 413);
  assert.equal(e.code, 'file_too_large');
  const ok = await client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', temperature: 0.5 });
  assert.equal(typeof ok.text, 'string', 'the server still answers');
});

test('429 with Retry-After while the queue is full (here: every slot running, no waiting room)', async () => {
  const w = server.ctx.host.ready();
  const held = occupy(w.queue);
  try {
    await until(() => w.queue.stats().running === held.slots);
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    assert.equal(metricValue(metrics, 'earshot_queue_running'), held.slots, 'the queue gauge follows the queue');
    const e = await rejection(client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1' }));
    assert.ok(e instanceof OpenAI.RateLimitError);
    assert.equal(e.code, 'queue_full');
    assert.ok(Number(e.headers?.get('retry-after')) >= 1);
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200, 'a busy model does not block /health');
    // The refusal comes before the upload is read: even an upload over the size limit gets 429, not 413.
    const big = new FormData();
    big.append('file', new Blob([new Uint8Array(1_000_001)]), 'big.wav');
    const early = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: big, headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(early.status, 429);
  } finally {
    held.release();
    await held.done;
  }
});

test('503 with Retry-After before the model is loaded; /ready turns 200 once it is', async () => {
  // buildApp alone does not load the model: its host stays "loading" until asked.
  const built = await buildApp(loadServerConfig({ env: {}, flags: { model: modelDir('english'), apiKeys: [KEY], port: 0, sampleLen: 4, threads: 1 } }));
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(built.app.server.address() as AddressInfo).port}`;
  try {
    const c = new OpenAI({ apiKey: KEY, baseURL: `${url}/v1`, maxRetries: 0 });
    const e = await rejection(c.audio.transcriptions.create({ file: await audio(), model: 'whisper-1' }));
    assert.equal(e.status, 503);
    assert.equal(e.code, 'model_loading');
    assert.ok(Number(e.headers?.get('retry-after')) >= 1);
    assert.equal((await fetch(`${url}/ready`)).status, 503);
    assert.equal((await fetch(`${url}/health`)).status, 200);
    await built.ctx.host.load();
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    const ok = await c.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', temperature: 0.5 });
    assert.equal(typeof ok.text, 'string');
  } finally {
    await built.app.close();
  }
});

test('metrics: requests by route and status, audio seconds, real-time factor, tokens, load time, process metrics', async () => {
  const open = await fetch(`${server.url}/metrics`);
  assert.equal(open.status, 401, '/metrics needs the key when keys are set');
  const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
  const route = '/v1/audio/transcriptions';
  assert.ok(metricValue(text, 'earshot_http_requests_total', { route, status: '200' }) >= 10);
  for (const status of ['400', '401', '404', '413', '429']) {
    assert.ok(metricValue(text, 'earshot_http_requests_total', { route, status }) >= 1, `status ${status} counted`);
  }
  assert.ok(metricValue(text, 'earshot_http_request_duration_seconds_count', { route }) >= 10);
  assert.ok(metricValue(text, 'earshot_audio_seconds_total', { task: 'transcribe' }) >= 30);
  assert.ok(metricValue(text, 'earshot_real_time_factor_count') >= 10);
  assert.ok(metricValue(text, 'earshot_tokens_generated_total') > 0);
  assert.ok(metricValue(text, 'earshot_model_load_seconds', { model: server.ctx.host.id }) > 0);
  assert.equal(metricValue(text, 'earshot_model_ready'), 1);
  assert.equal(metricValue(text, 'earshot_queue_running'), 0);
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  assert.match(text, /^process_cpu_user_seconds_total /m);
});
