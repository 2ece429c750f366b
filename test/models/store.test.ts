// The store against a local fake hub: full pulls, only the files a dtype needs, external data,
// resumed downloads, verification, offline mode, tokens and gated repositories, local folders.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEarshotError } from '../../src/errors.ts';
import { listModels, removeModel } from '../../src/models/cache.ts';
import { settingsFromEnv, type StoreSettings } from '../../src/models/settings.ts';
import { resolveModel } from '../../src/models/store.ts';
import { startFakeHub, type FakeHub } from '../helpers/fake-hub.ts';
import { makeModelFolder } from './model-folder.ts';

const REPO = 'test-org/whisper-test';
const EXT_REPO = 'test-org/whisper-ext';
const GATED = 'test-org/whisper-gated';
const CONFIGS = ['config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json'];

let hub: FakeHub;
let folder: string;
let extFolder: string;

before(async () => {
  folder = makeModelFolder();
  extFolder = makeModelFolder({
    graphs: { 'encoder_model.onnx': 20_000, 'encoder_model.onnx_data': 250_000, 'decoder_model_merged.onnx': 150_000 },
    jsConfig: { use_external_data_format: { 'encoder_model.onnx': 1 } },
  });
  hub = await startFakeHub({ repos: { [REPO]: folder, [EXT_REPO]: extFolder, [GATED]: folder }, gated: { [GATED]: 'hf_secret' } });
});
after(async () => {
  await hub.close();
  rmSync(folder, { recursive: true, force: true });
  rmSync(extFolder, { recursive: true, force: true });
});

function settings(extra: Partial<StoreSettings> = {}): StoreSettings {
  hub.requests.length = 0;
  return { home: mkdtempSync(join(tmpdir(), 'earshot-home-')), endpoint: hub.url, offline: false, ...extra };
}

/** Repository paths requested from the hub, in order. */
function hubFiles(): string[] {
  return hub.requests.filter((r) => r.server === 'hub').map((r) => decodeURIComponent(r.path.replace(/^\/[^/]+\/[^/]+\/resolve\/[^/]+\//, '')));
}

function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

const code = (kind: string, c: string, re?: RegExp) => (e: unknown) =>
  isEarshotError(e) && e.kind === kind && e.code === c && (!re || re.test(e.message));

test('a full pull fetches exactly the needed files, byte-identical, LFS ones via the CDN', async () => {
  const s = settings();
  const m = await resolveModel(REPO, { dtype: 'fp32', settings: s });
  const expected = [...CONFIGS, 'onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx'];
  assert.deepEqual(m.files, expected);
  assert.deepEqual(hubFiles(), expected);
  assert.deepEqual(walk(m.dir).sort(), [...expected].sort());
  for (const f of expected) assert.ok(readFileSync(join(m.dir, f)).equals(readFileSync(join(folder, f))), f);
  const cdn = hub.requests.filter((r) => r.server === 'cdn');
  assert.equal(cdn.length, 2, 'both graphs came from the CDN');
  assert.equal(m.encoderPath, join(s.home, 'models', 'test-org', 'whisper-test', 'onnx', 'encoder_model.onnx'));

  hub.requests.length = 0;
  const again = await resolveModel(REPO, { dtype: 'fp32', settings: s });
  assert.equal(again.dir, m.dir);
  assert.equal(hub.requests.length, 0, 'a cached model needs no request');
});

test('a mixed dtype fetches only its two graphs', async () => {
  const s = settings();
  const m = await resolveModel(REPO, { dtype: 'encoder=q8,decoder=fp16', settings: s });
  assert.deepEqual(hubFiles(), [...CONFIGS, 'onnx/encoder_model_quantized.onnx', 'onnx/decoder_model_merged_fp16.onnx']);
  assert.ok(m.decoderPath.endsWith('onnx/decoder_model_merged_fp16.onnx'));
  assert.ok(!existsSync(join(m.dir, 'onnx/encoder_model.onnx')));
});

test('external-data files declared in config.json are fetched beside their graph', async () => {
  const s = settings();
  const m = await resolveModel(EXT_REPO, { dtype: 'fp32', settings: s });
  assert.deepEqual(hubFiles(), [...CONFIGS, 'onnx/encoder_model.onnx', 'onnx/encoder_model.onnx_data', 'onnx/decoder_model_merged.onnx']);
  const data = 'onnx/encoder_model.onnx_data';
  assert.ok(readFileSync(join(m.dir, data)).equals(readFileSync(join(extFolder, data))));
});

test('a transfer cut midway is resumed with a Range request in the same call', async () => {
  const s = settings();
  hub.cutAfter.set(`${REPO}/onnx/decoder_model_merged.onnx`, 123_456);
  const progress: number[] = [];
  const m = await resolveModel(REPO, {
    dtype: 'fp32',
    settings: s,
    onProgress: (p) => p.file === 'onnx/decoder_model_merged.onnx' && progress.push(p.received),
  });
  const ranged = hub.requests.filter((r) => r.server === 'cdn' && r.range);
  assert.deepEqual(ranged.map((r) => r.range), ['bytes=123456-']);
  const f = 'onnx/decoder_model_merged.onnx';
  assert.ok(readFileSync(join(m.dir, f)).equals(readFileSync(join(folder, f))));
  assert.equal(progress.at(-1), statSync(join(folder, f)).size);
  assert.ok(!walk(m.dir).some((p) => p.endsWith('.incomplete')));
});

test('a transfer cut with no retries left keeps the partial file, and the next call resumes it', async () => {
  const s = settings();
  const f = 'onnx/encoder_model.onnx';
  hub.cutAfter.set(`${REPO}/${f}`, 100_000);
  await assert.rejects(
    resolveModel(REPO, { dtype: 'fp32', settings: s, retries: 0 }),
    code('model_unavailable', 'download_interrupted', /onnx\/encoder_model\.onnx.*100000 bytes kept.*again to resume/),
  );
  const dir = join(s.home, 'models', 'test-org', 'whisper-test');
  assert.equal(statSync(join(dir, `${f}.incomplete`)).size, 100_000);
  assert.ok(!existsSync(join(dir, f)));

  hub.requests.length = 0;
  await resolveModel(REPO, { dtype: 'fp32', settings: s });
  assert.deepEqual(hub.requests.filter((r) => r.server === 'cdn' && r.range).map((r) => r.range), ['bytes=100000-']);
  assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(folder, f))));
  assert.ok(!existsSync(join(dir, `${f}.incomplete`)));
});

test('a corrupted download fails sha256 verification and leaves nothing behind', async () => {
  const s = settings();
  const f = 'onnx/encoder_model.onnx';
  hub.corrupt.add(`${REPO}/${f}`);
  try {
    await assert.rejects(resolveModel(REPO, { dtype: 'fp32', settings: s }), code('integrity', 'checksum_mismatch', /encoder_model\.onnx.*sha256/));
  } finally {
    hub.corrupt.delete(`${REPO}/${f}`);
  }
  const dir = join(s.home, 'models', 'test-org', 'whisper-test');
  assert.ok(!existsSync(join(dir, f)));
  assert.ok(!existsSync(join(dir, `${f}.incomplete`)));
});

test('a corrupted small (non-LFS) file fails its git blob check', async () => {
  const s = settings();
  hub.corrupt.add(`${REPO}/tokenizer_config.json`);
  try {
    await assert.rejects(resolveModel(REPO, { dtype: 'fp32', settings: s }), code('integrity', 'checksum_mismatch', /tokenizer_config\.json.*git blob sha1/));
  } finally {
    hub.corrupt.delete(`${REPO}/tokenizer_config.json`);
  }
});

test('offline, nothing reaches the network and the error names the file and the pull command', async () => {
  const s = settings({ offline: true });
  await assert.rejects(
    resolveModel('tiny', { settings: s }),
    code('model_unavailable', 'offline_missing', /missing config\.json.*earshot models pull tiny --dtype fp32/),
  );
  // Cached in fp32, asked for q8: only the q8 graphs are named.
  const online = settings();
  await resolveModel(REPO, { dtype: 'fp32', settings: online });
  hub.requests.length = 0;
  await assert.rejects(
    resolveModel(REPO, { dtype: 'q8', settings: { ...online, offline: true } }),
    code('model_unavailable', 'offline_missing', /missing onnx\/encoder_model_quantized\.onnx, onnx\/decoder_model_merged_quantized\.onnx .*earshot models pull test-org\/whisper-test --dtype q8/),
  );
  const cached = await resolveModel(REPO, { dtype: 'fp32', settings: { ...online, offline: true } });
  assert.ok(existsSync(cached.decoderPath));
  assert.equal(hub.requests.length, 0);
});

test('HF_TOKEN goes to the hub as a bearer token but never to the CDN on another host', async () => {
  const s = settings({ token: 'hf_secret' });
  const m = await resolveModel(GATED, { dtype: 'q8', settings: s });
  assert.ok(existsSync(m.encoderPath));
  const hubReqs = hub.requests.filter((r) => r.server === 'hub');
  const cdnReqs = hub.requests.filter((r) => r.server === 'cdn');
  assert.equal(hubReqs.length, 7);
  assert.ok(hubReqs.every((r) => r.authorization === 'Bearer hf_secret'));
  assert.equal(cdnReqs.length, 2);
  assert.ok(cdnReqs.every((r) => r.authorization === undefined));
});

test('a gated repository without access gives a clear error', async () => {
  await assert.rejects(resolveModel(GATED, { settings: settings() }), code('model_unavailable', 'gated', /gated.*set HF_TOKEN/));
  await assert.rejects(resolveModel(GATED, { settings: settings({ token: 'hf_wrong' }) }), code('model_unavailable', 'gated', /HF_TOKEN was sent but does not give access/));
});

test('missing repositories and files are named', async () => {
  await assert.rejects(resolveModel('test-org/nothing-here', { settings: settings() }), code('model_not_found', 'repo_not_found', /test-org\/nothing-here/));
  await assert.rejects(resolveModel(REPO, { dtype: 'q4', settings: settings() }), code('model_not_found', 'entry_not_found', /onnx\/encoder_model_q4\.onnx/));
});

test('a catalogue dtype the repository lacks is refused before any request', async () => {
  const s = settings();
  await assert.rejects(resolveModel('large-v3', { dtype: 'q4', settings: s }), code('invalid_argument', 'dtype_unavailable', /available: fp32, q8/));
  assert.equal(hub.requests.length, 0);
});

test('a local folder resolves in place; a dtype it lacks is named', async () => {
  const s = settings();
  const m = await resolveModel(folder, { dtype: 'fp16', settings: s });
  assert.equal(m.dir, folder);
  assert.equal(m.encoderPath, join(folder, 'onnx/encoder_model_fp16.onnx'));
  await assert.rejects(resolveModel(folder, { dtype: 'q4', settings: s }), code('model_not_found', 'missing_file', /onnx\/encoder_model_q4\.onnx/));
  assert.equal(hub.requests.length, 0);
});

test('list reports cached dtypes and sizes; rm deletes the folder', async () => {
  const s = settings();
  await resolveModel(REPO, { dtype: 'fp32', settings: s });
  const rows = await listModels(s);
  assert.ok(rows.some((r) => r.name === 'tiny' && r.inCatalogue && r.cachedBytes === 0 && r.cachedDtypes.length === 0));
  const row = rows.find((r) => r.repo === REPO)!;
  assert.deepEqual(row.cachedDtypes, ['fp32']);
  assert.equal(row.cachedBytes, walk(row.dir).reduce((n, f) => n + statSync(join(row.dir, f)).size, 0));
  const removed = await removeModel(REPO, { settings: s });
  assert.equal(removed.bytes, row.cachedBytes);
  assert.ok(!existsSync(row.dir));
  await assert.rejects(removeModel(REPO, { settings: s }), code('model_not_found', 'not_cached'));
  await assert.rejects(removeModel(folder, { settings: s }), code('invalid_argument', 'not_in_cache'));
});

test('settings come from EARSHOT_HOME, HF_ENDPOINT, HF_TOKEN and the offline switches', () => {
  const s = settingsFromEnv({ EARSHOT_HOME: '/tmp/eh', HF_ENDPOINT: 'http://mirror.local/', HF_TOKEN: 't', HF_HUB_OFFLINE: '1' });
  assert.deepEqual(s, { home: '/tmp/eh', endpoint: 'http://mirror.local', token: 't', offline: true });
  const d = settingsFromEnv({ HOME: '/home/x' });
  assert.equal(d.endpoint, 'https://huggingface.co');
  assert.ok(d.home.endsWith(join('.cache', 'earshot')));
  assert.equal(d.offline, false);
  assert.equal(settingsFromEnv({ EARSHOT_OFFLINE: 'true' }).offline, true);
  assert.throws(() => settingsFromEnv({ HF_ENDPOINT: 'ftp://x' }), code('invalid_argument', 'bad_endpoint'));
});
