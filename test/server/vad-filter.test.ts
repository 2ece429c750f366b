// `vad_filter` on the HTTP API: on by default, uploads of silence come back empty (a random-weight
// model would otherwise invent text on them); the form field and the server option turn it off.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { form, isolateHome, modelDir, startTestServer, wav16 } from './helpers.ts';

let home: string;
const servers: RunningServer[] = [];
const silence = () => wav16(Buffer.alloc(16000 * 2 * 8)); // 8 s of digital silence

before(() => {
  home = isolateHome();
});
after(async () => {
  for (const s of servers) await s.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

async function transcribeSilence(server: RunningServer, fields: Record<string, string>): Promise<{ text: string; segments: unknown[] }> {
  const r = await fetch(`${server.url}/v1/audio/transcriptions`, {
    method: 'POST',
    body: form({ model: 'whisper-1', response_format: 'verbose_json', temperature: '0.0001', ...fields }, { bytes: silence() }),
  });
  assert.equal(r.status, 200);
  return (await r.json()) as { text: string; segments: unknown[] };
}

test('silence gives no text with the default vad_filter, and invented text with vad_filter=false', async () => {
  const server = await startTestServer({ model: modelDir('english') });
  servers.push(server);
  const filtered = await transcribeSilence(server, {});
  assert.equal(filtered.text, '');
  assert.deepEqual(filtered.segments, []);
  const unfiltered = await transcribeSilence(server, { vad_filter: 'false' });
  assert.ok(unfiltered.text.trim().length > 0, 'random weights emit text on silence when nothing filters it');
  const bad = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ vad_filter: 'maybe' }, { bytes: silence() }) });
  assert.equal(bad.status, 400);
});

test('the server option turns the filter off by default; the field still turns it on', async () => {
  const server = await startTestServer({ model: modelDir('english'), vadFilter: false });
  servers.push(server);
  assert.ok((await transcribeSilence(server, {})).text.trim().length > 0);
  assert.equal((await transcribeSilence(server, { vad_filter: 'true' })).text, '');
});
