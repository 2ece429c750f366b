// Secrets never reach the log. The real binary serves as a child process and its stderr (where the
// one logger writes) is read back: WebSocket upgrades carrying a key in `?api_key=` (refused and
// accepted), in an `openai-insecure-api-key.<key>` subprotocol (refused and accepted), and HTTP
// requests with keys in the Authorization header or the query are all logged, and no key's text
// appears anywhere, the startup configuration included. A second child logs through the logger
// directly what a careless line could carry (headers, a bearer token in a message, a URL in an
// error) to show every line is covered, not only fastify's request logs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { BIN, ROOT, modelDir } from './helpers.ts';

const USER = 'sk-user-logged-7f3a9c';
const ADMIN = 'sk-admin-logged-2b8e41';
const WRONG = { query: 'sk-wrong-query-5d1c07', protocol: 'sk-wrong-proto-9a4f22', header: 'sk-wrong-header-3e7b18' };
const SECRETS = [USER, ADMIN, ...Object.values(WRONG)];

let home: string;
let child: ChildProcess | undefined;
let url = '';
let stderr = '';

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'earshot-log-test-'));
  const c = spawn(process.execPath, [BIN, 'serve', '--model', modelDir('english'), '--port', '0', '--threads', '1', '--api-key', USER, '--admin-key', ADMIN], {
    env: { PATH: process.env.PATH ?? '', HOME: home, EARSHOT_HOME: home, EARSHOT_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child = c;
  url = await new Promise<string>((resolve, reject) => {
    c.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /Server listening at (http:\/\/[^"\s]+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    c.once('exit', (code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
  });
});
after(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(home, { recursive: true, force: true });
});

/** Opens a stream; resolves with the HTTP status of a refused upgrade, or 101 once the server's first event came (then closes it). */
function upgrade(path: string, protocols: string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}${path}`, protocols);
    // /v1/stream answers its start message; /v1/realtime speaks first.
    if (path.startsWith('/v1/stream')) ws.once('open', () => ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 })));
    ws.once('message', () => {
      ws.close(1000);
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', reject);
  });
}

/** Lines logged for requests to `path` (with the query as logged). */
const linesFor = (path: string) => stderr.split('\n').filter((l) => l.includes(`"url":"${path}"`));

test('keys in ?api_key=, subprotocols and Authorization headers are never logged, while the requests are', async () => {
  assert.equal(await upgrade(`/v1/stream?api_key=${WRONG.query}`), 401);
  assert.equal(await upgrade(`/v1/stream?api_key=${USER}`), 101);
  assert.equal(await upgrade('/v1/realtime?intent=transcription', [`openai-insecure-api-key.${WRONG.protocol}`, 'realtime']), 401);
  assert.equal(await upgrade('/v1/stream', [`openai-insecure-api-key.${ADMIN}`, 'earshot']), 101);
  assert.equal((await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${WRONG.header}` } })).status, 401);
  const forbidden = await fetch(`${url}/v1/models/whisper-1/load`, { method: 'POST', headers: { authorization: `Bearer ${USER}` } });
  assert.equal(forbidden.status, 403);
  assert.equal((await fetch(`${url}/v1/models?api_key=${USER}&x=1`, { headers: { authorization: `Bearer ${USER}` } })).status, 200);
  await new Promise((r) => setTimeout(r, 200)); // the child's last lines

  assert.equal(linesFor('/v1/stream?api_key=[redacted]').filter((l) => l.includes('incoming request')).length, 2, 'both upgrades were logged');
  assert.equal(linesFor('/v1/realtime?intent=transcription').filter((l) => l.includes('incoming request')).length, 1);
  assert.equal(linesFor('/v1/stream').filter((l) => l.includes('incoming request')).length, 1);
  assert.equal(linesFor('/v1/models?api_key=[redacted]&x=1').length >= 1, true);
  assert.match(stderr, /"code":"admin_key_required"/, 'the refusal was logged');
  assert.match(stderr, /effective configuration/);
  for (const secret of SECRETS) assert.ok(!stderr.includes(secret), `${secret} is in the log:\n${stderr.split('\n').filter((l) => l.includes(secret)).join('\n')}`);
});

test('every line of the one logger is covered: headers, messages and errors', () => {
  const s = ['sk-h-1', 'sk-h-2', 'sk-m-3', 'sk-m-4', 'sk-e-5', 'sk-r-6', 'sk-r-7', 'sk-c-8', 'sk-c-9'];
  const script = `
    const { log } = await import(${JSON.stringify(join(ROOT, 'src/log.ts'))});
    log.info({ headers: { authorization: 'Bearer ${s[0]}', 'sec-websocket-protocol': 'realtime, openai-insecure-api-key.${s[1]}' } }, 'upgrade headers');
    log.warn('refused Bearer ${s[2]} at /v1/stream?intent=x&api_key=${s[3]}');
    log.error({ err: new Error('GET ws://h/v1/realtime?api_key=${s[4]} failed') }, 'socket error');
    log.info({ req: { method: 'GET', url: '/v1/stream?api_key=${s[5]}', headers: { authorization: 'Bearer ${s[6]}' } } }, 'incoming request');
    log.info({ config: { apiKeys: ['${s[7]}'], adminKeys: ['${s[8]}'] } }, 'configuration');
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, EARSHOT_LOG_LEVEL: 'info' } });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
  assert.deepEqual(lines.map((l) => l.msg).slice(-5), ['upgrade headers', lines.at(-4)!.msg, 'socket error', 'incoming request', 'configuration']);
  assert.match(lines.at(-4)!.msg, /^refused Bearer \[redacted\] at \/v1\/stream\?intent=x&api_key=\[redacted\]$/);
  for (const secret of s) assert.ok(!r.stderr.includes(secret), `${secret} is in the log:\n${r.stderr}`);
});
