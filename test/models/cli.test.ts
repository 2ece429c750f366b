// `earshot models ...` end to end: the real binary, EARSHOT_HOME in a temp folder and HF_ENDPOINT
// pointing at the fake hub. The child runs asynchronously so this process's fake hub can answer it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { startFakeHub, type FakeHub } from '../helpers/fake-hub.ts';
import { makeModelFolder } from './model-folder.ts';

const BIN = new URL('../../bin/earshot.js', import.meta.url).pathname;
const REPO = 'test-org/whisper-cli';
let hub: FakeHub;
let folder: string;
let home: string;

before(async () => {
  folder = makeModelFolder();
  hub = await startFakeHub({ repos: { [REPO]: folder } });
  home = mkdtempSync(join(tmpdir(), 'earshot-cli-'));
});
after(async () => {
  await hub.close();
  rmSync(folder, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

function earshot(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = { PATH: process.env.PATH ?? '', HOME: home, EARSHOT_HOME: home, HF_ENDPOINT: hub.url };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...base, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('models pull, list, path and rm work end to end', async () => {
  const dir = join(home, 'models', 'test-org', 'whisper-cli');

  const pull = await earshot(['models', 'pull', REPO, '--dtype', 'q8']);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, /fetched 7 files/);
  assert.match(pull.stderr, /fetched onnx\/encoder_model_quantized\.onnx/);
  const f = 'onnx/decoder_model_merged_quantized.onnx';
  assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(folder, f))));
  assert.ok(!existsSync(join(dir, 'onnx/encoder_model.onnx')), 'fp32 graphs were not fetched');

  const again = await earshot(['models', 'pull', REPO, '--dtype', 'q8']);
  assert.match(again.stdout, /already cached/);

  const list = await earshot(['models', 'list', '--json']);
  assert.equal(list.code, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as Array<{ name: string; cachedDtypes: string[]; cachedBytes: number }>;
  const row = rows.find((r) => r.name === REPO)!;
  assert.deepEqual(row.cachedDtypes, ['q8']);
  assert.ok(row.cachedBytes > 200_000);
  assert.ok(rows.some((r) => r.name === 'large-v3-turbo'));
  const table = await earshot(['models', 'list']);
  assert.match(table.stdout, new RegExp(`${REPO}\\s.*q8 \\(`));

  const requestsBefore = hub.requests.length;
  const path = await earshot(['models', 'path', REPO, '--dtype', 'q8'], { EARSHOT_OFFLINE: '1' });
  assert.equal(path.code, 0, path.stderr);
  assert.equal(path.stdout.trim(), dir);
  const missing = await earshot(['models', 'path', REPO, '--dtype', 'fp32'], { HF_HUB_OFFLINE: '1' });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /onnx\/encoder_model\.onnx.*earshot models pull test-org\/whisper-cli --dtype fp32/);
  assert.equal(hub.requests.length, requestsBefore, 'offline commands made no request');

  const rm = await earshot(['models', 'rm', REPO]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, /removed .*whisper-cli/);
  assert.ok(!existsSync(dir));
  const rm2 = await earshot(['models', 'rm', REPO]);
  assert.notEqual(rm2.code, 0);
  assert.match(rm2.stderr, /not in the cache/);
});

test('bad input to models commands gives one clear line and a non-zero exit', async () => {
  const bad = await earshot(['models', 'pull', 'tiny', '--dtype', 'q3']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /^earshot: invalid dtype "q3"/);
  const unknown = await earshot(['models', 'path', 'not-a-model']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown model "not-a-model"/);
  const notFolder = await earshot(['models', 'path', home]);
  assert.match(notFolder.stderr, /is not a model folder/);
});

/** A local port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

test('a first run with the hub unreachable and nothing cached names the three ways forward, in one line', async () => {
  const fresh = mkdtempSync(join(tmpdir(), 'earshot-cli-offline-'));
  try {
    const hubUrl = `http://127.0.0.1:${await closedPort()}`;
    const jfk = new URL('../../samples/jfk.wav', import.meta.url).pathname;
    const r = await earshot(['transcribe', jfk, '--model', REPO], { EARSHOT_HOME: fresh, HF_ENDPOINT: hubUrl });
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    const line = lines[0]!;
    assert.match(line, new RegExp(`cannot reach ${hubUrl}`));
    assert.match(line, /--model \.\/dir/, 'a local folder');
    assert.match(line, /HF_ENDPOINT/, 'a mirror');
    assert.match(line, new RegExp(`earshot models pull ${REPO} --dtype fp32\` on a connected machine`), 'a pull elsewhere');
    // ...and which folder the copy goes to: the cache this run uses.
    assert.ok(line.includes(`to ${join(fresh, 'models', 'test-org', 'whisper-cli')} here`), line);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});
