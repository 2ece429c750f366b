// The configuration loader (defaults, file < environment < flags, keys from every source, the
// refusal to listen beyond loopback without a key), the API-key check, and the real binary
// refusing to start on 0.0.0.0 without a key.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { Command } from 'commander';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKeys } from '../../src/server/auth.ts';
import { ENV_VARS, isLoopback, loadServerConfig, maskedConfig } from '../../src/server/config.ts';
import { SETTINGS } from '../../src/server/settings.ts';
import { STATUS_BY_KIND, toHttpError } from '../../src/server/http-errors.ts';
import { EarshotError } from '../../src/errors.ts';
import { BIN } from './helpers.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'earshot-config-test-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('safe defaults: loopback, port 8000, 200 MB uploads, 3 h of audio, no keys, CORS off', () => {
  const c = loadServerConfig({ env: {} });
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8000);
  assert.equal(c.maxUploadBytes, 200_000_000);
  assert.equal(c.maxAudioSeconds, 3 * 3600);
  assert.deepEqual(c.apiKeys, []);
  assert.deepEqual(c.corsOrigins, []);
  assert.equal(c.logContent, false);
});

test('file < environment < flags, each value typed', () => {
  const cfg = file('a.json', JSON.stringify({ port: 9001, model: 'tiny', threads: 2, queueSize: 5, corsOrigins: ['http://a.example'] }));
  const c = loadServerConfig({
    configFile: cfg,
    env: { EARSHOT_PORT: '9002', EARSHOT_THREADS: '3', EARSHOT_CORS_ORIGINS: 'http://b.example, http://c.example' },
    flags: { port: '9003' },
  });
  assert.equal(c.port, 9003);
  assert.equal(c.threads, 3);
  assert.equal(c.model, 'tiny');
  assert.equal(c.queueSize, 5);
  assert.deepEqual(c.corsOrigins, ['http://b.example', 'http://c.example']);
  const viaEnv = loadServerConfig({ env: { EARSHOT_CONFIG: cfg } });
  assert.equal(viaEnv.port, 9001);
});

test('keys from flags, EARSHOT_API_KEYS, the config file and a keys file are all accepted; the log shows none', () => {
  const keysFile = file('keys', '# team keys\nkey-from-file\n\n  key-two  \n');
  const cfg = file('b.json', JSON.stringify({ apiKeys: ['key-in-config'] }));
  const c = loadServerConfig({ configFile: cfg, env: { EARSHOT_API_KEYS: 'env-1,env-2' }, flags: { apiKeys: ['flag-key'], apiKeysFile: keysFile } });
  assert.deepEqual([...c.apiKeys].sort(), ['env-1', 'env-2', 'flag-key', 'key-from-file', 'key-in-config', 'key-two']);
  const shown = JSON.stringify(maskedConfig(c));
  for (const k of c.apiKeys) assert.ok(!shown.includes(k), `${k} is masked`);
});

test('bad values name the setting and where it came from', () => {
  assert.throws(() => loadServerConfig({ env: { EARSHOT_PORT: 'eighty' } }), /EARSHOT_PORT \(environment\)/);
  assert.throws(() => loadServerConfig({ env: {}, flags: { device: 'tpu' } }), /device \(command line\)/);
  assert.throws(() => loadServerConfig({ env: {}, configFile: file('c.json', '{"prot": 1}') }), /config file .*c\.json/);
  assert.throws(() => loadServerConfig({ env: {}, configFile: file('d.json', '{not json') }), /not valid JSON/);
  assert.throws(() => loadServerConfig({ env: {}, flags: { apiKeysFile: join(dir, 'missing') } }), /cannot read API keys file/);
});

test('beyond loopback: refused without a key, allowed with one or with insecureNoAuth', () => {
  for (const host of ['0.0.0.0', '::', '192.168.1.5']) {
    assert.throws(() => loadServerConfig({ env: {}, flags: { host } }), (e: unknown) => e instanceof EarshotError && e.code === 'auth_required');
  }
  assert.equal(loadServerConfig({ env: { EARSHOT_API_KEYS: 'k' }, flags: { host: '0.0.0.0' } }).host, '0.0.0.0');
  assert.equal(loadServerConfig({ env: {}, flags: { host: '0.0.0.0', insecureNoAuth: true } }).insecureNoAuth, true);
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) assert.ok(isLoopback(h), h);
  assert.ok(!isLoopback('0.0.0.0'));
});

test('API keys: bearer only, exact match, every key compared', () => {
  const keys = new ApiKeys(['alpha-key', 'beta-key']);
  assert.doesNotThrow(() => keys.check('Bearer beta-key'));
  assert.doesNotThrow(() => keys.check('bearer   alpha-key'));
  for (const bad of [undefined, '', 'beta-key', 'Basic YWxwaGE=', 'Bearer beta-ke', 'Bearer beta-key2', 'Bearer ']) {
    assert.throws(() => keys.check(bad), (e: unknown) => e instanceof EarshotError && e.kind === 'unauthorized', String(bad));
  }
  assert.equal(keys.matches('alpha-key'), true);
  assert.equal(keys.matches('ALPHA-KEY'), false);
  assert.doesNotThrow(() => new ApiKeys([]).check(undefined), 'no keys: open');
});

test('one mapping from error kinds to HTTP statuses, in OpenAI error shape', () => {
  assert.equal(STATUS_BY_KIND.invalid_audio, 400);
  const cases: Array<[EarshotError, number]> = [
    [new EarshotError('invalid_argument', 'x', 'm'), 400],
    [new EarshotError('audio_too_long', 'x', 'm'), 400],
    [new EarshotError('unauthorized', 'x', 'm'), 401],
    [new EarshotError('model_not_found', 'x', 'm'), 404],
    [new EarshotError('payload_too_large', 'x', 'm'), 413],
    [new EarshotError('overloaded', 'x', 'm'), 429],
    [new EarshotError('not_ready', 'x', 'm'), 503],
  ];
  for (const [e, status] of cases) {
    const h = toHttpError(e);
    assert.equal(h.status, status, e.kind);
    assert.deepEqual(Object.keys(h.body.error).sort(), ['code', 'message', 'param', 'type']);
  }
  assert.equal(toHttpError(new EarshotError('overloaded', 'x', 'm')).headers['retry-after'], '1');
  const internal = toHttpError(new Error('secret detail'));
  assert.equal(internal.status, 500);
  assert.ok(!internal.body.error.message.includes('secret'), 'internal details stay in the log');
});

test('the binary refuses 0.0.0.0 without a key: one line on stderr, non-zero exit', async () => {
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, 'serve', '--host', '0.0.0.0', '--port', '0'], { env: { PATH: process.env.PATH ?? '', HOME: dir, EARSHOT_HOME: dir } }, (err, _out, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
  assert.notEqual(r.code, 0);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^earshot: refusing to listen on 0\.0\.0\.0 without an API key/);
});

test('every `earshot serve` flag reaches its setting', async () => {
  const { serveCommand, flagsToConfig } = await import('../../src/cli/serve.ts');
  const cmd = serveCommand();
  let config: ReturnType<typeof loadServerConfig> | undefined;
  cmd.action((_flags: unknown, self: Command) => {
    config = loadServerConfig({ env: {}, flags: flagsToConfig(self) });
  });
  await cmd.parseAsync(
    ['--max-streams', '3', '--stream-silence', '700', '--stream-partial-interval', '250', '--stream-max-message-bytes', '2048', '--sample-len', '9', '--no-vad-filter'],
    { from: 'user' },
  );
  assert.ok(config);
  assert.equal(config.maxStreams, 3);
  assert.equal(config.streamSilenceMs, 700);
  assert.equal(config.streamPartialIntervalMs, 250);
  assert.equal(config.streamMaxMessageBytes, 2048);
  assert.equal(config.sampleLen, 9);
  assert.equal(config.vadFilter, false);
});

test('each setting has one variable and one flag of its own, and `serve --help` names both with the default', async () => {
  const { serveCommand } = await import('../../src/cli/serve.ts');
  const help = serveCommand().helpInformation().replace(/\s+/g, ' ');
  const envs = Object.values(ENV_VARS);
  const flags = Object.values(SETTINGS).map((s) => s.flag.split(' ')[0]!);
  assert.equal(new Set(envs).size, envs.length, 'variables are unique');
  assert.equal(new Set(flags).size, flags.length, 'flags are unique');
  for (const [name, s] of Object.entries(SETTINGS)) {
    assert.ok(help.includes(s.flag.split(' ')[0]!), `--help lists ${s.flag}`);
    assert.ok(help.includes(`$${s.env}`), `--help names ${s.env} (${name})`);
  }
  assert.match(help, /--port <n> .*\(default 8000\)/);
  assert.match(help, /--job-retention <time> .*\(default 7d\)/);
});
