// Who may load models, and what a load may name. Ordinary keys transcribe but get 403
// permission_error on the admin routes (load, swap, unload), which admin keys use; a request never
// names a path: traversal ids in any encoding are refused and load nothing, a body naming a path
// gets the same 400 whether it exists or not and no path comes back, and a hub repository off the
// --allow-pull list is refused without any request to the hub (the fake hub on 127.0.0.1 counts
// them) while an allowed one is fetched; at most --max-loaded-models models are loaded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { ApiKeys } from '../../src/server/auth.ts';
import { loadServerConfig } from '../../src/server/config.ts';
import { ModelRegistry } from '../../src/server/model-registry.ts';
import { startFakeHub, type FakeHub } from '../helpers/fake-hub.ts';
import { form, isolateHome, jfkClip, metricValue, startTestServer } from './helpers.ts';

const USER = 'sk-user-roles-1';
const ADMIN = 'sk-admin-roles-1';
const english = testModelDir({ preset: 'english', dtypes: ['fp32', 'q8'] });
let server: RunningServer;
let hub: FakeHub;
let home: string;
let modelsDir: string;
/** A real model folder outside everything the server may load: what a traversal would reach. */
let planted: string;

before(async () => {
  home = isolateHome();
  modelsDir = join(home, 'models-dir');
  mkdirSync(modelsDir);
  cpSync(english, join(modelsDir, 'mine'), { recursive: true });
  planted = mkdtempSync(join(tmpdir(), 'earshot-planted-'));
  cpSync(english, planted, { recursive: true });
  hub = await startFakeHub({ repos: { 'allowed-org/whisper-x': english, 'other-org/whisper-y': english } });
  process.env.HF_ENDPOINT = hub.url;
  server = await startTestServer({
    model: english,
    modelId: 'files',
    apiKeys: [USER],
    adminKeys: [ADMIN],
    allowPull: ['allowed-org/whisper-*'],
    modelsDir,
    maxLoadedModels: 8,
    vadFilter: false,
  });
});
after(async () => {
  await server.app.close();
  await hub.close();
  await unloadAll();
  delete process.env.HF_ENDPOINT;
  rmSync(home, { recursive: true, force: true });
  rmSync(planted, { recursive: true, force: true });
});

async function call(method: string, path: string, key: string | undefined, body?: object): Promise<{ status: number; text: string; body: any }> {
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  if (body) headers['content-type'] = 'application/json';
  const r = await fetch(`${server.url}${path}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  return { status: r.status, text, body: text ? JSON.parse(text) : undefined };
}

const hostedIds = () => server.ctx.host.models().map((h) => h.id);

test('an ordinary key gets 403 permission_error on load, swap and unload, and nothing changes', async () => {
  const serving = server.ctx.host.ready();
  const attempts: Array<[string, string, object?]> = [
    ['POST', '/v1/models/mine/load'],
    ['POST', '/v1/models/files/load', { dtype: 'q8' }],
    ['POST', '/v1/models/whisper-1/load'],
    ['DELETE', '/v1/models/files'],
    ['DELETE', '/v1/models/whisper-1'],
  ];
  for (const [method, path, body] of attempts) {
    const r = await call(method, path, USER, body);
    assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
    assert.deepEqual(r.body.error, {
      message: r.body.error.message,
      type: 'permission_error',
      param: null,
      code: 'admin_key_required',
    });
    assert.equal((await call(method, path, undefined, body)).status, 401, 'no key at all is still a 401');
  }
  assert.deepEqual(hostedIds(), ['files']);
  assert.equal(server.ctx.host.ready(), serving, 'no swap happened');
  assert.equal((await fetch(`${server.url}/ready`)).status, 200);
  // The ordinary key still does everything else.
  assert.equal((await call('GET', '/v1/models', USER)).status, 200);
  const t = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${USER}` }, body: form({}, { bytes: jfkClip(1) }) });
  assert.equal(t.status, 200);
});

test('an admin key loads, swaps and unloads, and is accepted everywhere an ordinary key is', async () => {
  const swap = await call('POST', '/v1/models/files/load', ADMIN, { dtype: 'q8' });
  assert.equal(swap.status, 200, swap.text);
  assert.equal(server.ctx.host.get('files').current?.whisper.resolved.dtype.decoder, 'q8');
  const loaded = await call('POST', '/v1/models/mine/load', ADMIN);
  assert.equal(loaded.status, 200, loaded.text);
  assert.equal(loaded.body.model, 'mine', 'a models-dir folder is shown by its name, not its path');
  const t = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` }, body: form({ model: 'mine' }, { bytes: jfkClip(1) }) });
  assert.equal(t.status, 200);
  assert.equal((await call('DELETE', '/v1/models/mine', ADMIN)).status, 200);
  assert.equal(server.ctx.host.get('mine').state, 'unloaded');
});

test('without an admin key the admin routes are open only on a loopback server with no key at all', () => {
  assert.doesNotThrow(() => new ApiKeys([], { loopbackOnly: true }).checkAdmin(undefined));
  const refusals: Array<[ApiKeys, string | undefined]> = [
    [new ApiKeys([], { loopbackOnly: false }), undefined], // --insecure-no-auth beyond loopback
    [new ApiKeys(['k'], { loopbackOnly: true }), 'Bearer k'], // ordinary keys, no admin key
  ];
  for (const [keys, header] of refusals) {
    assert.throws(() => keys.checkAdmin(header), (e: any) => e.kind === 'forbidden' && e.code === 'admin_key_required');
  }
  const both = new ApiKeys(['u'], { adminKeys: ['a'], loopbackOnly: true });
  assert.equal(both.check('Bearer a'), 'admin');
  assert.equal(both.check('Bearer u'), 'user');
  assert.throws(() => both.check('Bearer x'), (e: any) => e.kind === 'unauthorized');
});

test('traversal ids, in every encoding, are refused and load nothing', async () => {
  const rel = relative(process.cwd(), planted); // ../../tmp/earshot-planted-…
  const enc = (s: string) => encodeURIComponent(s);
  const lower = (s: string) => enc(s).replace(/%2F/g, '%2f').replace(/\./g, '%2e');
  const ids = [
    enc(rel), // ..%2F..%2Ftmp%2F…
    enc(planted), // %2Ftmp%2F…
    `~%2F${enc(relative(homedir(), planted))}`, // ~%2F..%2F…
    lower(rel), // %2e%2e%2f%2e%2e%2f…
    enc(enc(rel)), // ..%252F..%252F…
    enc(lower(rel)), // %252e%252e%252f…
    enc(enc(planted)), // %252Ftmp…
    `${enc('..\\..')}${enc('\\x')}`,
    'a%00b',
  ];
  const before = hostedIds();
  const loadedBefore = server.ctx.host.loadedCount;
  for (const id of ids) {
    const r = await call('POST', `/v1/models/${id}/load`, ADMIN);
    assert.ok(r.status >= 400 && r.status < 500, `${id}: ${r.status} ${r.text}`);
    assert.equal(r.body.error.code, 'bad_model_name', id);
    assert.ok(!r.text.includes(planted) && !r.text.includes('earshot-planted'), `${id}: ${r.text}`);
  }
  assert.deepEqual(hostedIds(), before);
  assert.equal(server.ctx.host.loadedCount, loadedBefore);
});

test('a body naming a path gets the same 400 whether it exists or not, and no path comes back', async () => {
  const answers = [];
  for (const model of ['/root/.ssh', '/nonexistent', planted, '../models-dir/mine', '~/.ssh', 'mine/../mine']) {
    const r = await call('POST', '/v1/models/probe/load', ADMIN, { model });
    answers.push({ status: r.status, body: r.body });
    assert.doesNotMatch(r.text, /\/root|nonexistent|ssh|earshot-planted|models-dir|\/tmp/, r.text);
  }
  for (const a of answers) assert.deepEqual(a, answers[0]);
  assert.equal(answers[0]!.status, 400);
  assert.equal(server.ctx.host.find('probe'), undefined);
  // A load that fails on the server's side says what is missing, not where.
  const missing = await call('POST', '/v1/models/files/load', ADMIN, { dtype: 'q4' });
  assert.equal(missing.status, 404, missing.text);
  assert.doesNotMatch(missing.text, /\/tmp|earshot-test-models|\/root/, missing.text);
});

test('a hub repository off the allow-list is refused without any request to the hub; an allowed one is fetched', async () => {
  hub.requests.length = 0;
  const refused = await call('POST', '/v1/models/other-org/whisper-y/load', ADMIN);
  assert.equal(refused.status, 403, refused.text);
  assert.equal(refused.body.error.type, 'permission_error');
  assert.equal(refused.body.error.code, 'pull_not_allowed');
  const viaBody = await call('POST', '/v1/models/other/load', ADMIN, { model: 'other-org/whisper-y' });
  assert.equal(viaBody.status, 403, viaBody.text);
  assert.equal(hub.requests.length, 0, `the hub was never asked: ${JSON.stringify(hub.requests)}`);
  assert.ok(!hostedIds().includes('other-org/whisper-y') && !hostedIds().includes('other'));

  const allowed = await call('POST', '/v1/models/allowed-org/whisper-x/load', ADMIN);
  assert.equal(allowed.status, 200, allowed.text);
  assert.ok(hub.requests.some((r) => r.path.startsWith('/allowed-org/whisper-x/resolve/')));
  const t = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${USER}` }, body: form({ model: 'allowed-org/whisper-x' }, { bytes: jfkClip(1) }) });
  assert.equal(t.status, 200);
  const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${USER}` } })).text();
  assert.equal(metricValue(metrics, 'earshot_model_loads_refused_total', { reason: 'pull_not_allowed' }), 2);
  assert.equal((await call('DELETE', '/v1/models/allowed-org/whisper-x', ADMIN)).status, 200);
});

test('at most --max-loaded-models models are loaded: 409 beyond, with a metric; an unload makes room', async () => {
  const small = await startTestServer({ model: english, modelId: 'base-one', modelsDir, maxLoadedModels: 2, vadFilter: false });
  try {
    const load = async (id: string, body?: object) => {
      const r = await fetch(`${small.url}/v1/models/${id}/load`, {
        method: 'POST',
        ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
      });
      return { status: r.status, body: (await r.json()) as any };
    };
    // Two loads race for the one place left: one wins, the other gets 409.
    const raced = await Promise.all([load('a', { model: 'mine' }), load('b', { model: 'mine' })]);
    assert.deepEqual(raced.map((r) => r.status).sort(), [200, 409], JSON.stringify(raced));
    const refused = raced.find((r) => r.status === 409)!;
    assert.equal(refused.body.error.code, 'max_loaded_models');
    assert.equal(small.ctx.host.loadedCount, 2);
    assert.equal((await load('c', { model: 'mine' })).status, 409);
    assert.equal((await load('base-one', { dtype: 'q8' })).status, 200, 'a swap of a loaded model needs no new place');
    const metrics = await (await fetch(`${small.url}/metrics`)).text();
    assert.equal(metricValue(metrics, 'earshot_model_loads_refused_total', { reason: 'max_loaded_models' }), 2);

    const winner = raced[0]!.status === 200 ? 'a' : 'b';
    assert.equal((await fetch(`${small.url}/v1/models/${winner}`, { method: 'DELETE' })).status, 200);
    assert.equal((await load('c', { model: 'mine' })).status, 200, 'room again after an unload');
    assert.equal((await load(winner)).status, 409, 'reloading an unloaded model needs a place too');
  } finally {
    await small.app.close();
  }
});

test('settings: admin keys from every source together, the allow-list, the models dir and the max', () => {
  const keysFile = join(home, 'admin-keys');
  writeFileSync(keysFile, '# admins\nsk-a-file\n\n');
  const configFile = join(home, 'config.json');
  writeFileSync(configFile, JSON.stringify({ adminKeys: ['sk-a-config'], allowPull: ['x/*'], maxLoadedModels: 3 }));
  const c = loadServerConfig({
    configFile,
    env: { EARSHOT_ADMIN_KEYS: 'sk-a-env1,sk-a-env2', EARSHOT_ADMIN_KEYS_FILE: keysFile, EARSHOT_MODELS_DIR: modelsDir, EARSHOT_ALLOW_PULL: 'onnx-community/whisper-*,me/*' },
    flags: { adminKeys: ['sk-a-flag'] },
  });
  assert.deepEqual([...c.adminKeys].sort(), ['sk-a-config', 'sk-a-env1', 'sk-a-env2', 'sk-a-file', 'sk-a-flag']);
  assert.deepEqual(c.allowPull, ['onnx-community/whisper-*', 'me/*']);
  assert.equal(c.modelsDir, modelsDir);
  assert.equal(c.maxLoadedModels, 3);
  assert.equal(loadServerConfig({ env: {} }).maxLoadedModels, 4);
  assert.throws(() => loadServerConfig({ env: { EARSHOT_MAX_LOADED_MODELS: '0' } }), /EARSHOT_MAX_LOADED_MODELS/);
  // An admin key alone lets the server listen beyond loopback (and then guards every route).
  assert.equal(loadServerConfig({ env: {}, flags: { host: '0.0.0.0', adminKeys: ['sk-a'] } }).host, '0.0.0.0');
  // More configured models than the max stop the server at startup.
  const tooMany = loadServerConfig({ env: {}, flags: { model: 'tiny', extraModels: ['a=tiny', 'b=tiny'], maxLoadedModels: 2 } });
  assert.throws(() => new ModelRegistry(tooMany), /3 models are configured.*--max-loaded-models/);
});
