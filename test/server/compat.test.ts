// Clients that just work (issue 14): model names as OpenAI clients send them and `--model-alias`,
// an unknown name's 404 listing the names that work, headerless PCM declared with `input_format` and
// `sample_rate` (transcriptions, translations and jobs), a WAV whose header claims more than it
// holds, `dtype` in /v1/models, and a job's `language` given as verbose_json gives it (a name).
// A server on port 0: an English test model as the default (`files`), a multilingual one (`multi`)
// with the alias `fast`. Random weights: only shapes, routing and durations are checked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { flagsToConfig, serveCommand } from '../../src/cli/serve.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { loadServerConfig } from '../../src/server/config.ts';
import { ModelRegistry } from '../../src/server/model-registry.ts';
import { form, isolateHome, jfkClip, modelDir, startTestServer } from './helpers.ts';

const OPENAI_NAMES = ['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe', 'default'];
let server: RunningServer;
let home: string;

before(async () => {
  home = isolateHome();
  server = await startTestServer({
    model: modelDir('english'),
    modelId: 'files',
    extraModels: [`multi=${modelDir('multilingual')}`],
    modelAliases: ['fast=multi'],
    vadFilter: false,
  });
  await server.ctx.host.settled();
});
after(async () => {
  await server.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

async function post(path: string, fields: Record<string, string>, bytes: Uint8Array = jfkClip(1)): Promise<{ status: number; body: any }> {
  const r = await fetch(`${server.url}${path}`, { method: 'POST', body: form(fields, { bytes }) });
  return { status: r.status, body: await r.json() };
}

test("OpenAI's model names, `default` and an empty field mean the default model; --model-alias names another", async () => {
  for (const model of [...OPENAI_NAMES, '', ' ']) {
    const ok = await post('/v1/audio/transcriptions', { model });
    assert.equal(ok.status, 200, `${model}: ${JSON.stringify(ok.body)}`);
    // The default model is English-only: a translation on it is refused, naming it.
    const translated = await post('/v1/audio/translations', { model });
    assert.equal(translated.status, 400, model);
    assert.match(translated.body.error.message, /model "files" is English-only/);
  }
  const fast = await post('/v1/audio/translations', { model: 'fast' });
  assert.equal(fast.status, 200, JSON.stringify(fast.body));
  const job = await post('/v1/jobs', { model: 'gpt-4o-mini-transcribe' });
  assert.equal(job.status, 202, JSON.stringify(job.body));
  assert.equal(job.body.model, 'files', "a job records the model's own id");
});

test("an unknown model name is a 404 that lists the names that work", async () => {
  const r = await post('/v1/audio/transcriptions', { model: 'gpt-5-transcribe' });
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, 'model_not_found');
  for (const name of ['files', 'multi', ...OPENAI_NAMES, 'fast']) assert.ok(r.body.error.message.includes(`"${name}"`), `${name} in: ${r.body.error.message}`);
  assert.match(r.body.error.message, /"fast" \(= "multi"\)/);
});

test('/v1/models lists each alias under its model, and every hosted entry has its dtype', async () => {
  const body = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: any[] };
  assert.deepEqual(
    body.data.slice(0, 7).map((m) => m.id),
    ['files', ...OPENAI_NAMES, 'multi', 'fast'],
  );
  for (const m of body.data.slice(0, 7)) assert.equal(m.dtype, 'fp32', `${m.id}: the dtype it runs in`);
  const one = (await (await fetch(`${server.url}/v1/models/gpt-4o-transcribe`)).json()) as any;
  assert.equal(one.id, 'gpt-4o-transcribe');
  assert.equal(one.default, true);
});

test('--model-alias: repeatable flag, EARSHOT_MODEL_ALIASES; a bad or dangling alias stops the server at startup', () => {
  const cmd = serveCommand().action(() => {});
  cmd.parse(['--model-alias', 'a=files', '--model-alias', 'gpt-4o-mini-transcribe=fast'], { from: 'user' });
  assert.deepEqual(loadServerConfig({ env: {}, flags: flagsToConfig(cmd) }).modelAliases, ['a=files', 'gpt-4o-mini-transcribe=fast']);
  assert.deepEqual(loadServerConfig({ env: { EARSHOT_MODEL_ALIASES: 'a=files, b=fast' } }).modelAliases, ['a=files', 'b=fast']);
  const registry = (aliases: string[]) =>
    new ModelRegistry(loadServerConfig({ env: {}, flags: { model: 'tiny.en', modelId: 'files', extraModels: ['fast=tiny'], modelAliases: aliases } }));
  const mini = registry(['gpt-4o-mini-transcribe=fast']);
  assert.equal(mini.find('gpt-4o-mini-transcribe')?.id, 'fast', 'an OpenAI name can be pointed at another model');
  assert.equal(mini.find('gpt-4o-transcribe')?.id, 'files');
  assert.throws(() => registry(['x=nope']), { code: 'bad_model_alias', message: /no hosted model has the id "nope"/ });
  assert.throws(() => registry(['fast=files']), { code: 'bad_model_alias', message: /already the id of a hosted model/ });
  assert.throws(() => registry(['novalue']), { code: 'bad_model_alias' });
  assert.throws(() => registry(['a=files', 'a=fast']), { code: 'bad_model_alias', message: /given twice/ });
});

/** The clip's 16 kHz samples without their WAV header, as s16le or f32le. */
function headerless(seconds: number, format: 's16le' | 'f32le'): Uint8Array {
  const pcm = Buffer.from(jfkClip(seconds).subarray(44));
  if (format === 's16le') return pcm;
  const out = Buffer.alloc(pcm.length * 2);
  for (let i = 0; i < pcm.length / 2; i++) out.writeFloatLE(pcm.readInt16LE(i * 2) / 32768, i * 4);
  return out;
}

test('headerless PCM declares input_format and sample_rate (transcriptions, translations, jobs)', async () => {
  // Without the fields the bytes cannot be read: a 400, not noise.
  const undeclared = await post('/v1/audio/transcriptions', {}, headerless(2, 's16le'));
  assert.equal(undeclared.status, 400, JSON.stringify(undeclared.body));
  for (const format of ['s16le', 'f32le'] as const) {
    const r = await post('/v1/audio/transcriptions', { input_format: format, sample_rate: '16000', response_format: 'verbose_json' }, headerless(2, format));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.duration, 2, format);
  }
  // The same bytes declared at 8 kHz last twice as long: the rate is the one declared.
  const at8k = await post('/v1/audio/translations', { model: 'fast', input_format: 's16le', sample_rate: '8000', response_format: 'verbose_json' }, headerless(2, 's16le'));
  assert.equal(at8k.status, 200, JSON.stringify(at8k.body));
  assert.equal(at8k.body.duration, 4);
  const job = await post('/v1/jobs', { input_format: 'f32le', sample_rate: '16000', response_format: 'verbose_json' }, headerless(2, 'f32le'));
  assert.equal(job.status, 202, JSON.stringify(job.body));
  const done = await waitForJob(job.body.id);
  assert.equal(done.result.duration, 2);
  for (const [fields, param] of [
    [{ input_format: 's16le' }, 'sample_rate'],
    [{ sample_rate: '16000' }, 'sample_rate'],
    [{ input_format: 'mp3', sample_rate: '16000' }, 'input_format'],
    [{ input_format: 's16le', sample_rate: '16k' }, 'sample_rate'],
    [{ input_format: 's16le', sample_rate: '500' }, 'sample_rate'],
  ] as const) {
    const r = await post('/v1/audio/transcriptions', fields, headerless(1, 's16le'));
    assert.equal(r.status, 400, JSON.stringify(fields));
    assert.equal(r.body.error.param, param, JSON.stringify(r.body));
  }
});

async function waitForJob(id: string): Promise<any> {
  const end = Date.now() + 30_000;
  for (;;) {
    const j = (await (await fetch(`${server.url}/v1/jobs/${id}`)).json()) as any;
    if (j.status === 'completed' || j.status === 'failed') return j;
    assert.ok(Date.now() < end, `job ${id} stayed ${j.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("a job's language is a name, as verbose_json gives it", async () => {
  const job = await post('/v1/jobs', { response_format: 'verbose_json' });
  const done = await waitForJob(job.body.id);
  assert.equal(done.status, 'completed', JSON.stringify(done));
  assert.equal(done.result.language, 'english');
  assert.equal(done.language, done.result.language);
});

test('a WAV whose header claims 2 GB over 1 s of audio is transcribed as the 1 s it holds', async () => {
  const wav = Buffer.from(jfkClip(1));
  wav.writeUInt32LE(2_000_000_000, 40); // the data chunk's size
  const r = await post('/v1/audio/transcriptions', { response_format: 'verbose_json' }, wav);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.duration, 1);
});
