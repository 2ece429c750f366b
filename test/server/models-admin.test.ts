// Several models at once and the admin API: extra models from the configuration chosen by a
// request's `model` field, 404 for unknown ids, /v1/models listing hosted and cached models,
// POST /v1/models/{id}/load and DELETE /v1/models/{id} behind an admin key, and unloading the
// default model (/ready 503, its requests 503 until it is loaded again). Also the parsing of
// `--extra-model` values and their configuration sources.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { flagsToConfig, serveCommand } from '../../src/cli/serve.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { loadServerConfig } from '../../src/server/config.ts';
import { ModelRegistry, parseExtraModel } from '../../src/server/model-registry.ts';
import { form, isolateHome, jfkClip, metricValue, startTestServer } from './helpers.ts';

const KEY = 'sk-admin-test-1';
const CACHED = 'test-org/whisper-cached';
const english = testModelDir({ preset: 'english', dtypes: ['fp32', 'q8'] });
const multilingual = testModelDir({ preset: 'multilingual' });
let server: RunningServer;
let home: string;

before(async () => {
  home = isolateHome();
  mkdirSync(join(home, 'models', 'test-org'), { recursive: true });
  cpSync(english, join(home, 'models', CACHED), { recursive: true });
  server = await startTestServer({ model: english, modelId: 'files', extraModels: [`multi=${multilingual}`], adminKeys: [KEY], vadFilter: false });
  await server.ctx.host.settled();
});
after(async () => {
  await server.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${KEY}` };

async function call(method: string, path: string, opts: { body?: object; key?: boolean } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = opts.key === false ? {} : { ...auth };
  if (opts.body) headers['content-type'] = 'application/json';
  const r = await fetch(`${server.url}${path}`, { method, headers, ...(opts.body ? { body: JSON.stringify(opts.body) } : {}) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

async function transcribe(model: string, task: 'transcriptions' | 'translations' = 'transcriptions'): Promise<{ status: number; body: any }> {
  const r = await fetch(`${server.url}/v1/audio/${task}`, { method: 'POST', headers: auth, body: form({ model }, { bytes: jfkClip(1) }) });
  return { status: r.status, body: await r.json() };
}

test('--extra-model values: [id=]model[@dtype]', () => {
  assert.deepEqual(parseExtraModel('tiny'), { id: 'tiny', spec: { model: 'tiny' } });
  assert.deepEqual(parseExtraModel('fast=tiny.en@q8'), { id: 'fast', spec: { model: 'tiny.en', dtype: 'q8' } });
  assert.deepEqual(parseExtraModel('./models/my-whisper@encoder=fp32,decoder=q8'), {
    id: 'my-whisper',
    spec: { model: './models/my-whisper', dtype: 'encoder=fp32,decoder=q8' },
  });
  assert.deepEqual(parseExtraModel('v=./w@v2'), { id: 'v', spec: { model: './w@v2' } }, 'not a dtype: part of the folder name');
  assert.throws(() => parseExtraModel('=tiny'), /empty id/);
  assert.throws(() => parseExtraModel('x='), /no model/);
});

test('extra models come from the flag (repeatable), EARSHOT_EXTRA_MODELS and EARSHOT_MODEL_TTL', () => {
  const cmd = serveCommand().action(() => {});
  cmd.parse(['--extra-model', 'tiny', '--extra-model', 'b=base@q8', '--model-ttl', '90'], { from: 'user' });
  const fromFlags = loadServerConfig({ env: {}, flags: flagsToConfig(cmd) });
  assert.deepEqual(fromFlags.extraModels, ['tiny', 'b=base@q8']);
  assert.equal(fromFlags.modelTtlS, 90);
  const fromEnv = loadServerConfig({ env: { EARSHOT_EXTRA_MODELS: 'tiny, small=small@q8', EARSHOT_MODEL_TTL: '1.5' } });
  assert.deepEqual(fromEnv.extraModels, ['tiny', 'small=small@q8']);
  assert.equal(fromEnv.modelTtlS, 1.5);
  assert.throws(() => loadServerConfig({ env: { EARSHOT_MODEL_TTL: '-1' } }), /EARSHOT_MODEL_TTL/);
  const config = loadServerConfig({ env: {}, flags: { model: 'tiny', extraModels: ['tiny.en', 'tiny'] } });
  assert.throws(() => new ModelRegistry(config), /two models with the id "tiny"/);
});

test('each request runs on the model its `model` field names; unknown names are a 404', async () => {
  const onDefault = await transcribe('files', 'translations');
  assert.equal(onDefault.status, 400, 'the default model is English-only');
  const onExtra = await transcribe('multi', 'translations');
  assert.equal(onExtra.status, 200, JSON.stringify(onExtra.body));
  assert.equal((await transcribe('whisper-1')).status, 200);
  const unknown = await transcribe('nope');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'model_not_found');
  assert.match(unknown.body.error.message, /"files", "multi"/);
});

test('/v1/models lists the hosted models (the default also as whisper-1), then the cached ones', async () => {
  const { status, body } = await call('GET', '/v1/models');
  assert.equal(status, 200);
  const byId = new Map<string, any>(body.data.map((m: any) => [m.id, m]));
  assert.deepEqual(body.data.slice(0, 6).map((m: any) => m.id), ['files', 'whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe', 'default', 'multi']);
  assert.equal(byId.get('files').loaded, true);
  assert.equal(byId.get('files').default, true);
  assert.equal(byId.get('multi').loaded, true);
  assert.equal(byId.get('multi').default, false);
  assert.equal(byId.get('multi').model, basename(multilingual), 'a folder given on the command line is shown by its name, not its path');
  assert.ok(!JSON.stringify(body).includes(multilingual), 'no server path in the list');
  assert.equal(byId.get(CACHED)?.loaded, false, 'a cached model is listed, not loaded');
  assert.equal((await call('GET', `/v1/models/${CACHED}`)).body.id, CACHED);
  const nope = await call('GET', '/v1/models/nope');
  assert.equal(nope.status, 404);
  for (const id of ['files', 'whisper-1', 'multi', CACHED]) assert.ok(nope.body.error.message.includes(`"${id}"`), `the 404 names "${id}": ${nope.body.error.message}`);
});

test('the admin routes need the key; unknown ids are a 404; a bad body is a 400', async () => {
  assert.equal((await call('POST', '/v1/models/multi/load', { key: false })).status, 401);
  assert.equal((await call('DELETE', '/v1/models/multi', { key: false })).status, 401);
  assert.equal(server.ctx.host.get('multi').state, 'ready', 'nothing happened without the key');
  const deleted = await call('DELETE', '/v1/models/nope');
  assert.equal(deleted.status, 404);
  assert.match(deleted.body.error.message, /its models: .*"multi"/);
  const unknownModel = await call('POST', '/v1/models/nope/load');
  assert.equal(unknownModel.status, 404);
  assert.equal(server.ctx.host.find('nope'), undefined, 'a failed load of a new id leaves nothing behind');
  const bad = await call('POST', '/v1/models/multi/load', { body: { dtype: 'q8', extra: 1 } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'bad_load_body');
  assert.equal((await call('POST', '/v1/models/multi/unload')).status, 404);
});

test('a new id loaded by the admin API (a cached model) serves requests; DELETE unloads it', async () => {
  const loaded = await call('POST', `/v1/models/${CACHED}/load`, { body: { dtype: 'q8' } });
  assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
  assert.equal(loaded.body.loaded, true);
  assert.equal(loaded.body.dtype, 'q8');
  assert.equal(server.ctx.host.get(CACHED).current?.whisper.resolved.dtype.decoder, 'q8');
  assert.equal((await transcribe(CACHED)).status, 200);

  const gone = await call('DELETE', `/v1/models/${CACHED}`);
  assert.equal(gone.status, 200);
  assert.equal(gone.body.deleted, true);
  const refused = await transcribe(CACHED);
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error.code, 'model_unloaded');
  assert.equal((await call('GET', `/v1/models/${CACHED}`)).body.state, 'unloaded');
  const metrics = await (await fetch(`${server.url}/metrics`, { headers: auth })).text();
  assert.equal(metricValue(metrics, 'earshot_model_unloads_total', { model: CACHED, reason: 'admin' }), 1);
  assert.equal(metricValue(metrics, 'earshot_models_loaded', { model: CACHED }), 0);
  assert.equal(metricValue(metrics, 'earshot_models_loaded', { model: 'multi' }), 1);
});

test('unloading the default model: /ready 503 and its requests 503 (others still served) until it is loaded again', async () => {
  assert.equal((await call('DELETE', '/v1/models/whisper-1')).status, 200);
  const ready = await fetch(`${server.url}/ready`);
  assert.equal(ready.status, 503);
  assert.equal(((await ready.json()) as { status: string }).status, 'unloaded');
  for (const name of ['whisper-1', 'files']) {
    const r = await transcribe(name);
    assert.equal(r.status, 503, name);
    assert.equal(r.body.error.code, 'model_unloaded');
  }
  assert.equal((await transcribe('multi')).status, 200, 'another model still serves');
  const metrics = await (await fetch(`${server.url}/metrics`, { headers: auth })).text();
  assert.equal(metricValue(metrics, 'earshot_model_ready'), 0);

  const back = await call('POST', '/v1/models/files/load');
  assert.equal(back.status, 200, JSON.stringify(back.body));
  assert.equal((await fetch(`${server.url}/ready`)).status, 200);
  assert.equal((await transcribe('whisper-1')).status, 200);
});
