// Run by offline.test.ts, inside a network namespace that has only loopback (or, where namespaces
// are not allowed, with EARSHOT_NET_GUARD=throw). Serves the test model, transcribes a clip over
// HTTP, then tries to pull a hub model, and prints one JSON line: every non-loopback connection
// or DNS lookup the process attempted in each phase, the transcription's status, and how the
// pull failed and how long that took.
import dns from 'node:dns';
import net from 'node:net';
import { isolateHome, jfkClip, modelDir, startTestServer, form } from '../server/helpers.ts';
import { loadWhisper } from '../../src/decoding/whisper.ts';
import { isEarshotError } from '../../src/errors.ts';

const attempts: string[] = [];
const guard = process.env.EARSHOT_NET_GUARD === 'throw';
const loopback = (host: string | undefined): boolean => !host || host === 'localhost' || net.isIP(host) !== 0 && (/^127\./.test(host) || host === '::1');

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  const o = args[0];
  const host = typeof o === 'object' && o !== null ? ((o as { host?: string; path?: string }).path ? 'localhost' : (o as { host?: string }).host) : (args[1] as string | undefined);
  if (!loopback(host)) {
    attempts.push(`connect ${host}`);
    if (guard) throw new Error(`earshot test guard: no connection to ${host}`);
  }
  return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof net.Socket.prototype.connect;
const lookup = dns.lookup;
(dns as { lookup: unknown }).lookup = function (host: string, ...rest: unknown[]) {
  if (!loopback(host)) {
    attempts.push(`lookup ${host}`);
    if (guard) {
      const cb = rest.at(-1) as (e: Error) => void;
      return process.nextTick(() => cb(Object.assign(new Error(`earshot test guard: no lookup of ${host}`), { code: 'ENOTFOUND' })));
    }
  }
  return (lookup as (...a: unknown[]) => void).call(dns, host, ...rest);
};

isolateHome();
const server = await startTestServer({ model: modelDir('english') });
const res = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ response_format: 'verbose_json' }, { bytes: jfkClip(2) }) });
const body = (await res.json()) as { duration?: number };
const serveAttempts = [...attempts];
await server.app.close();

const t0 = performance.now();
let pull: { ok: boolean; kind?: string; code?: string; message?: string; ms: number };
try {
  await loadWhisper('tiny');
  pull = { ok: true, ms: performance.now() - t0 };
} catch (e) {
  pull = { ok: false, ms: performance.now() - t0, ...(isEarshotError(e) ? { kind: e.kind, code: e.code, message: e.message } : { message: String(e) }) };
}
process.stdout.write(`${JSON.stringify({ status: res.status, duration: body.duration, serveAttempts, pullAttempts: attempts.slice(serveAttempts.length), pull })}\n`);
process.exit(0);
