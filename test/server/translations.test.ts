// Translations (and language handling) through the official `openai` client, on a multilingual
// test model: task translate in verbose_json, the other formats, a given language for
// transcription, and streaming. Random weights: only the structure is checked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import OpenAI, { toFile } from 'openai';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { isolateHome, jfkClip, modelDir, startTestServer } from './helpers.ts';

let server: RunningServer;
let client: OpenAI;
let home: string;
const audio = () => toFile(jfkClip(3), 'clip.wav');

before(async () => {
  home = isolateHome();
  server = await startTestServer({ model: modelDir('multilingual') });
  client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
});
after(async () => {
  await server.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

test('translations: verbose_json says task translate; json and text come back too', async () => {
  const v = (await client.audio.translations.create({ file: await audio(), model: 'whisper-1', response_format: 'verbose_json', temperature: 0.5 })) as unknown as OpenAI.Audio.TranscriptionVerbose & { task: string };
  assert.equal(v.task, 'translate');
  assert.equal(v.duration, 3);
  assert.equal(v.text, (v.segments ?? []).map((s) => s.text).join(''));
  const j = await client.audio.translations.create({ file: await audio(), model: server.ctx.host.id, temperature: 0.5 });
  assert.equal(typeof j.text, 'string');
  const t = (await client.audio.translations.create({ file: await audio(), model: 'whisper-1', response_format: 'text', temperature: 0.5 })) as unknown as string;
  assert.match(t, /\n$/);
});

test('transcriptions: a given language is used, not detected', async () => {
  const r = await client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', language: 'de', response_format: 'verbose_json', temperature: 0.5 });
  assert.equal(r.language, 'german');
  const auto = await client.audio.transcriptions.create({ file: await audio(), model: 'whisper-1', response_format: 'verbose_json', temperature: 0.5 });
  assert.equal(typeof auto.language, 'string');
  assert.ok(auto.language.length > 1);
});

test('translations stream like transcriptions', async () => {
  const res = await fetch(`${server.url}/v1/audio/translations`, {
    method: 'POST',
    body: (() => {
      const f = new FormData();
      f.append('file', new Blob([Buffer.from(jfkClip(3))]), 'a.wav');
      f.append('stream', 'true');
      f.append('temperature', '0.5');
      return f;
    })(),
  });
  assert.equal(res.status, 200);
  const events = (await res.text()).split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)) as { type: string });
  assert.equal(events.at(-1)!.type, 'transcript.text.done');
});
