// HTTPS: a self-signed certificate made here with the openssl CLI; the server answers over TLS to
// a client that trusts it, refuses plain HTTP on the same port, and refuses to start with half a
// configuration, an unreadable file or a key that is not the certificate's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEarshotError } from '../../src/errors.ts';
import { loadServerConfig } from '../../src/server/config.ts';
import { loadTls } from '../../src/server/tls.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { form, isolateHome, jfkClip, modelDir, startTestServer } from '../server/helpers.ts';

let dir: string;
let cert: string;
let key: string;
let otherKey: string;
let server: RunningServer;

function selfSigned(name: string): { cert: string; key: string } {
  const c = join(dir, `${name}.crt`);
  const k = join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', k, '-out', c, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  return { cert: c, key: k };
}

before(async () => {
  isolateHome();
  dir = mkdtempSync(join(tmpdir(), 'earshot-tls-test-'));
  ({ cert, key } = selfSigned('server'));
  otherKey = selfSigned('other').key;
  server = await startTestServer({ model: modelDir('english'), apiKeys: ['k'], tlsCert: cert, tlsKey: key });
});
after(async () => {
  await server?.app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One HTTPS request trusting only our certificate. */
function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { ca: readFileSync(cert), headers, agent: false }, (res) => {
      const protocol = (res.socket as import('node:tls').TLSSocket).getProtocol() ?? '';
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, protocol }));
    });
    req.on('error', reject).end();
  });
}

test('--tls-cert/--tls-key: the server speaks HTTPS (TLS 1.2+) to a client that trusts its certificate', async () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const health = await get('/health');
  assert.equal(health.status, 200);
  assert.match(health.protocol, /^TLSv1\.[23]$/);
  assert.equal((await get('/v1/models')).status, 401);
  const models = await get('/v1/models', { authorization: 'Bearer k' });
  assert.equal(models.status, 200);
  assert.ok((JSON.parse(models.body) as { data: unknown[] }).data.length >= 1);
});

test('a transcription over HTTPS', async () => {
  const f = form({ response_format: 'json' }, { bytes: jfkClip(1) });
  // fetch has no per-request CA; the request is built by hand over node:https.
  const body = new Response(f);
  const bytes = Buffer.from(await body.arrayBuffer());
  const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      `${server.url}/v1/audio/transcriptions`,
      { method: 'POST', ca: readFileSync(cert), headers: { authorization: 'Bearer k', 'content-type': body.headers.get('content-type')!, 'content-length': String(bytes.length) } },
      (r) => {
        let text = '';
        r.setEncoding('utf8').on('data', (d: string) => (text += d));
        r.on('end', () => resolve({ status: r.statusCode!, text }));
      },
    );
    req.on('error', reject).end(bytes);
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(typeof (JSON.parse(res.text) as { text: unknown }).text, 'string');
});

test('plain HTTP on the TLS port gets no answer it could read, and an untrusting client refuses the certificate', async () => {
  const plain = await fetch(server.url.replace('https:', 'http:') + '/health').then(
    (r) => r.status,
    () => 'failed',
  );
  assert.notEqual(plain, 200);
  await assert.rejects(fetch(`${server.url}/health`), /fetch failed/);
});

test('half a TLS configuration, a missing file or a key that is not the certificate\'s is refused at startup', () => {
  assert.throws(() => loadServerConfig({ env: {}, flags: { tlsCert: cert } }), (e: unknown) => isEarshotError(e) && e.code === 'bad_config' && /tls/i.test(e.message));
  assert.throws(() => loadServerConfig({ env: { EARSHOT_TLS_KEY: key } }), (e: unknown) => isEarshotError(e) && e.code === 'bad_config');
  const both = loadServerConfig({ env: { EARSHOT_TLS_CERT: cert, EARSHOT_TLS_KEY: key } });
  assert.deepEqual(loadTls(both)?.cert, readFileSync(cert));
  assert.throws(() => loadTls({ tlsCert: join(dir, 'missing.crt'), tlsKey: key }), (e: unknown) => isEarshotError(e) && e.code === 'bad_tls' && /missing\.crt/.test(e.message));
  assert.throws(() => loadTls({ tlsCert: cert, tlsKey: otherKey }), (e: unknown) => isEarshotError(e) && e.code === 'bad_tls' && /unusable/.test(e.message));
  assert.throws(() => loadTls({ tlsCert: key, tlsKey: key }), (e: unknown) => isEarshotError(e) && e.code === 'bad_tls');
  assert.equal(loadTls({}), undefined);
});
