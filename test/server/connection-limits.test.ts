// Connection bounds over real sockets: a request body that trickles in (less than --body-min-bytes
// per --body-timeout) is answered 408 and its connection closed, where it used to stay open for
// the whole --request-timeout; one that keeps the rate is left alone; beyond --max-connections a
// new connection is closed on arrival, and the ones already open still work.
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { form, isolateHome, jfkClip, metricValue, modelDir, startTestServer, until } from './helpers.ts';

let slow: RunningServer;
let capped: RunningServer;

before(async () => {
  isolateHome();
  slow = await startTestServer({ model: modelDir('english'), bodyTimeoutS: 1, bodyMinBytes: 1024 });
  capped = await startTestServer({ model: modelDir('english'), maxConnections: 3 });
});
after(async () => {
  await slow.app.close();
  await capped.app.close();
  await unloadAll();
});

const metric = async (s: RunningServer, name: string): Promise<number> => metricValue(await s.ctx.metrics.registry.metrics(), name);

interface Raw {
  socket: Socket;
  data: () => string;
  closed: Promise<void>;
}

async function open(server: RunningServer): Promise<Raw> {
  const { port } = new URL(server.url);
  const socket = tcpConnect(Number(port), '127.0.0.1');
  let data = '';
  socket.setEncoding('utf8').on('data', (d: string) => (data += d));
  socket.on('error', () => {}); // a reset is one of the ways a closed connection shows
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, data: () => data, closed };
}

const uploadHead = (length: number): string =>
  `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: ${length}\r\n\r\n`;

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([p, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms))]);

test('a body sent one byte at a time gets 408 and its connection closed within the body timeout', async () => {
  const c = await open(slow);
  c.socket.write(uploadHead(100_000));
  const drip = setInterval(() => c.socket.writable && c.socket.write('x'), 100);
  const started = performance.now();
  try {
    assert.notEqual(await within(c.closed, 6000), 'timeout', 'the trickling connection should be closed');
  } finally {
    clearInterval(drip);
    c.socket.destroy();
  }
  const took = performance.now() - started;
  assert.ok(took >= 900 && took < 4500, `closed after ${Math.round(took)} ms (timeout 1 s)`);
  assert.match(c.data(), /^HTTP\/1\.1 408 /);
  assert.match(c.data(), /"code":"body_timeout"/);
  assert.equal(await metric(slow, 'earshot_http_slow_bodies_total'), 1);
});

test('a body that keeps the rate, and an ordinary upload, are left alone', async () => {
  const c = await open(slow);
  c.socket.write(uploadHead(100_000));
  // 2 KiB every 400 ms: slow, but above 1 KiB per second.
  const feed = setInterval(() => c.socket.writable && c.socket.write('x'.repeat(2048)), 400);
  try {
    assert.equal(await within(c.closed, 2500), 'timeout', 'a body above the rate must not be cut');
  } finally {
    clearInterval(feed);
    c.socket.destroy();
  }
  const r = await fetch(`${slow.url}/v1/audio/transcriptions`, { method: 'POST', body: form({}, { bytes: jfkClip(2) }) });
  assert.equal(r.status, 200);
  assert.equal(await metric(slow, 'earshot_http_slow_bodies_total'), 1, 'only the trickling one of the test before');
});

test('beyond --max-connections a new connection is closed on arrival; the open ones still work', async () => {
  const held = [await open(capped), await open(capped), await open(capped)];
  const extra = await open(capped);
  assert.notEqual(await within(extra.closed, 2000), 'timeout', 'the connection over the cap should be closed');
  assert.equal(extra.data(), '');
  assert.equal(await metric(capped, 'earshot_http_connections_refused_total'), 1);
  assert.equal(await metric(capped, 'earshot_http_connections'), 3);
  // A held connection still serves requests.
  held[0]!.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await until(() => held[0]!.data().startsWith('HTTP/1.1 200'), 5000);
  // Once one closes, a new connection is taken again.
  held[1]!.socket.destroy();
  await held[1]!.closed;
  await until(() => (capped.app.server as { _connections?: number })._connections === 2, 2000);
  const status = await new Promise<number>((resolve, reject) => {
    httpGet(`${capped.url}/health`, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }).on('error', reject);
  });
  assert.equal(status, 200);
  for (const h of held) h.socket.destroy();
});
