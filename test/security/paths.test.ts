// Names that could reach the file system: a request's `model` (and a realtime session's) naming a
// path, `..` or an encoded traversal is a plain 404 / error event that names only the served
// model; an upload's file name is never used as a path; JSON bodies are capped; and the CLI's
// model commands refuse traversal ids and never delete a folder outside the cache.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { RunningServer } from '../../src/server/app.ts';
import { BIN, form, isolateHome, jfkClip, modelDir, startTestServer } from '../server/helpers.ts';

const HOSTILE = ['../../etc', '/etc/passwd', '..%2F..%2Fetc', '..\\..\\windows', 'onnx-community/../../x', '~/.ssh', 'file:///etc/passwd', './test/fixtures/whisper-tiny'];

let server: RunningServer;
let home: string;
before(async () => {
  home = isolateHome();
  server = await startTestServer({ model: modelDir('english') });
});
after(async () => server.app.close());

test('a model field naming a path or a traversal is a 404 that reveals nothing', async () => {
  for (const model of HOSTILE) {
    const res = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ model }, { bytes: jfkClip(0.5) }) });
    assert.equal(res.status, 404, model);
    const e = ((await res.json()) as { error: { code: string; message: string } }).error;
    assert.equal(e.code, 'model_not_found');
    assert.doesNotMatch(e.message, /root:|No such file|ENOENT/);
  }
});

test('an upload named like a path is only a name: 200, and nothing written there', async () => {
  const target = join(home, 'planted.wav');
  const res = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form({}, { bytes: jfkClip(0.5), name: `../../../../..${target}` }) });
  assert.equal(res.status, 200);
  assert.equal(existsSync(target), false);
});

test('JSON bodies are capped (413), deep JSON is a 4xx, not a crash', async () => {
  const big = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(2 * 1024 * 1024) }) });
  assert.equal(big.status, 413);
  const deep = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '['.repeat(200_000) + ']'.repeat(200_000) });
  assert.ok(deep.status >= 400 && deep.status < 500, `status ${deep.status}`);
});

test('a realtime session asked for a traversal model answers model_not_found', async () => {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/realtime?intent=transcription`);
  const events: Array<{ type: string; error?: { code: string } }> = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (m) => {
      const e = JSON.parse(String(m)) as { type: string; error?: { code: string } };
      events.push(e);
      if (e.type === 'error') resolve();
    });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'transcription_session.update', session: { input_audio_transcription: { model: '../../etc' } } })));
    ws.on('error', reject);
  });
  ws.close(1000);
  assert.equal(events.at(-1)!.error!.code, 'model_not_found');
});

test('CLI: model commands refuse traversal ids and never delete a folder outside the cache', () => {
  const cliHome = mkdtempSync(join(tmpdir(), 'earshot-paths-cli-'));
  const outside = join(cliHome, 'outside');
  mkdirSync(join(cliHome, 'cache'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'keep.txt'), 'x');
  try {
    const cases: string[][] = [
      ['models', 'rm', outside],
      ['models', 'rm', '../outside'],
      ['models', 'rm', 'onnx-community/../../outside'],
      ['models', 'pull', '..%2F..%2Foutside'],
      ['models', 'pull', 'a/../../b'],
      ['models', 'path', '../../etc'],
    ];
    for (const args of cases) {
      const r = spawnSync(process.execPath, [BIN, ...args], { cwd: join(cliHome, 'cache'), encoding: 'utf8', env: { ...process.env, EARSHOT_HOME: join(cliHome, 'cache'), EARSHOT_OFFLINE: '1' }, timeout: 30_000 });
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trim(), /^earshot: /, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(existsSync(join(outside, 'keep.txt')), `${args.join(' ')} deleted a folder outside the cache`);
    }
  } finally {
    rmSync(cliHome, { recursive: true, force: true });
  }
});
