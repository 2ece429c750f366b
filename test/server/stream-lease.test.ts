// A stream holds its model while it is open: a silent stream longer than --model-ttl does not lose
// the model under it, and once the stream closes the model can go idle again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import WebSocket from 'ws';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { isolateHome, startTestServer, until } from './helpers.ts';

const TTL_S = 0.3;
let server: RunningServer;
let home: string;

before(async () => {
  home = isolateHome();
  server = await startTestServer({ model: testModelDir({ preset: 'english' }), modelId: 'streamed', modelTtlS: TTL_S });
});
after(async () => {
  await server.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

const hosted = () => server.ctx.host.get('streamed');

test('an open stream keeps its model past the TTL; closing it lets the model go idle', async () => {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/stream`);
  const messages: { type: string }[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(d.toString()) as { type: string }));
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 }));
  await until(() => messages.some((m) => m.type === 'ready'), 5000);
  await new Promise((r) => setTimeout(r, TTL_S * 4 * 1000));
  assert.notEqual(hosted().state, 'idle', 'the stream still holds the model');
  assert.ok(hosted().current, 'the model is loaded');
  ws.close();
  await until(() => hosted().state === 'idle', 5000);
});
