// Rate limits per API key: the token bucket's refill and Retry-After on a fake clock, and through
// the real server: requests per minute (429 with Retry-After and OpenAI's error body, per key,
// probes exempt, a bad key still 401) and WebSocket streams open at once per key.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { buildApp } from '../../src/server/app.ts';
import { loadServerConfig } from '../../src/server/config.ts';
import { RateLimits, RetryLaterError } from '../../src/server/rate-limit.ts';
import { isolateHome, modelDir, startTestServer } from '../server/helpers.ts';
import type { RunningServer } from '../../src/server/app.ts';

before(() => isolateHome());

test('token bucket: rpm requests at once, then one more per 60/rpm s, Retry-After says when', () => {
  let now = 1_000_000;
  const limits = new RateLimits({ rpm: 6, maxStreams: 0, now: () => now });
  for (let i = 0; i < 6; i++) limits.hit('a');
  let err: unknown;
  try {
    limits.hit('a');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof RetryLaterError);
  assert.equal(err.kind, 'overloaded');
  assert.equal(err.code, 'rate_limited');
  assert.equal(err.retryAfterS, 10); // one token per 10 s at 6 rpm
  limits.hit('b'); // another client has its own bucket
  now += 4_000;
  assert.throws(() => limits.hit('a'), (e: unknown) => e instanceof RetryLaterError && e.retryAfterS === 6);
  now += 6_000;
  limits.hit('a');
  assert.throws(() => limits.hit('a'), RetryLaterError);
  now += 10 * 60_000; // refill is capped at rpm
  for (let i = 0; i < 6; i++) limits.hit('a');
  assert.throws(() => limits.hit('a'), RetryLaterError);
});

test('streams: at most maxStreams open per client; closing (once) frees a slot', () => {
  const limits = new RateLimits({ rpm: 0, maxStreams: 2 });
  const c1 = limits.openStream('k');
  limits.openStream('k');
  assert.throws(() => limits.openStream('k'), (e: unknown) => e instanceof RetryLaterError && e.code === 'too_many_streams');
  limits.openStream('other');
  c1();
  c1();
  assert.equal(limits.openStreams('k'), 1);
  limits.openStream('k');
  assert.equal(limits.openStreams('k'), 2);
});

let server: RunningServer;
before(async () => {
  server = await startTestServer({ model: modelDir('english'), apiKeys: ['key-a', 'key-b'], rateLimitRpm: 3 });
});
after(async () => server.app.close());

const get = (path: string, key?: string): Promise<Response> =>
  fetch(`${server.url}${path}`, key ? { headers: { authorization: `Bearer ${key}` } } : {});

test('--rate-limit-rpm: the request over the limit gets 429, Retry-After and an OpenAI error body; other keys and probes go on', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await get('/v1/models', 'key-a')).status, 200);
  const over = await get('/v1/models', 'key-a');
  assert.equal(over.status, 429);
  const retry = Number(over.headers.get('retry-after'));
  assert.ok(retry >= 1 && retry <= 20, `retry-after ${retry}`);
  const body = (await over.json()) as { error: Record<string, unknown> };
  assert.equal(body.error.type, 'rate_limit_error');
  assert.equal(body.error.code, 'rate_limited');
  assert.match(String(body.error.message), /3 requests per minute/);
  assert.equal((await get('/v1/models', 'key-b')).status, 200);
  for (let i = 0; i < 5; i++) assert.equal((await get('/health')).status, 200);
  // A wrong key is refused for what it is, and does not eat into anyone's budget.
  assert.equal((await get('/v1/models', 'wrong')).status, 401);
  assert.equal((await get('/v1/models', 'key-b')).status, 200);
});

// The timeout turns a leaked socket (a refused upgrade never released, so close() never returns) into a failure.
test('--max-streams-per-key: a WebSocket over the limit is refused with 429; closing one frees its slot', { timeout: 20_000 }, async () => {
  const config = loadServerConfig({ env: {}, flags: { port: 0, model: 'tiny', apiKeys: ['k1', 'k2'], maxStreamsPerKey: 2 } });
  const { app } = await buildApp(config);
  // A stand-in stream route, so the limit is tested apart from any one WebSocket API.
  app.register(async (scope) => {
    scope.get('/test-stream', { websocket: true }, (socket) => {
      socket.on('message', (m) => socket.send(m));
    });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  try {
    const connect = (key: string): Promise<WebSocket> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/test-stream`, { headers: { authorization: `Bearer ${key}` } });
        ws.once('open', () => resolve(ws));
        // ws leaves the socket open after an answer other than 101 unless the request is destroyed.
        ws.once('unexpected-response', (req, res) => (req.destroy(), reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, headers: res.headers }))));
        ws.once('error', reject);
      });
    const a = await connect('k1');
    const b = await connect('k1');
    await assert.rejects(connect('k1'), (e: { status?: number; headers?: Record<string, string> }) => {
      assert.equal(e.status, 429);
      assert.ok(Number(e.headers?.['retry-after']) >= 1);
      return true;
    });
    const c = await connect('k2'); // another key has its own streams
    await assert.rejects(connect('wrong'), (e: { status?: number }) => e.status === 401);
    a.close();
    await new Promise((r) => a.once('close', r));
    let d: WebSocket | undefined;
    for (let i = 0; i < 50 && !d; i++) {
      d = await connect('k1').catch(async () => {
        await new Promise((r) => setTimeout(r, 10));
        return undefined;
      });
    }
    assert.ok(d, 'a slot is free again after a stream closed');
    await Promise.all([b, c, d].map((ws) => new Promise((r) => (ws.once('close', r), ws.close()))));
  } finally {
    await app.close();
  }
});
