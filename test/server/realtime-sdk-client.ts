// For the SDK-driven realtime tests: OpenAI's own `OpenAIRealtimeWS` (the installed `openai`
// package) opened on an earshot server over TLS, recording every server event as the SDK hands it
// over, typed as the SDK types them; a self-signed certificate made with the openssl CLI; and
// G.711 encoders (the ITU reference algorithm, independent of the server's decoding tables).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { OpenAIRealtimeError } from 'openai/realtime/internal-base';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { RealtimeClientEvent, RealtimeServerEvent } from 'openai/resources/realtime/realtime';

export type ServerEventType = RealtimeServerEvent['type'];
export type EventOf<T extends ServerEventType> = Extract<RealtimeServerEvent, { type: T }>;

export interface SdkClient {
  rt: OpenAIRealtimeWS;
  /** Every event in arrival order (beta ones too, which the SDK's union does not name). */
  events: RealtimeServerEvent[];
  /** What the SDK raised for `error` events. */
  errors: OpenAIRealtimeError[];
  of<T extends ServerEventType>(type: T): EventOf<T>[];
  /** The first event of `type`, received or to come. */
  next<T extends ServerEventType>(type: T, ms?: number): Promise<EventOf<T>>;
  /** Any event by its type name (the beta protocol's). */
  nextNamed(type: string, ms?: number): Promise<Record<string, any>>;
  /** Sends an event the SDK's client union does not name (the beta protocol's). */
  sendRaw(event: object): void;
  closed: Promise<number>;
}

/** A certificate for 127.0.0.1 / localhost in `dir`. */
export function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  return { cert, key };
}

/** Connects as the SDK does (`wss://…/v1/realtime?model=…`), trusting only `cert`. */
export async function openSdk(serverUrl: string, apiKey: string, cert: string, opts: { model?: string; headers?: Record<string, string> } = {}): Promise<SdkClient> {
  const client = new OpenAI({ apiKey, baseURL: `${serverUrl}/v1` });
  const rt = new OpenAIRealtimeWS({ model: opts.model ?? 'whisper-1', options: { ca: readFileSync(cert), headers: opts.headers ?? {} } }, client);
  const events: RealtimeServerEvent[] = [];
  const errors: OpenAIRealtimeError[] = [];
  rt.on('event', (e) => events.push(e));
  rt.on('error', (e) => errors.push(e));
  const closed = new Promise<number>((resolve) => rt.socket.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    rt.socket.once('open', () => resolve());
    rt.socket.once('error', reject);
  });
  const nextNamed = async (type: string, ms = 10000): Promise<Record<string, any>> => {
    const end = Date.now() + ms;
    for (;;) {
      const hit = events.find((e) => e.type === type);
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`no "${type}" event within ${ms} ms; got ${events.map((e) => e.type).join(', ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    rt,
    events,
    errors,
    closed,
    of: <T extends ServerEventType>(type: T) => events.filter((e): e is EventOf<T> => e.type === type),
    next: async <T extends ServerEventType>(type: T, ms?: number) => (await nextNamed(type, ms)) as EventOf<T>,
    nextNamed,
    sendRaw: (event) => rt.send(event as RealtimeClientEvent),
  };
}

const clamp16 = (x: number): number => Math.max(-32768, Math.min(32767, Math.round(x * 32768)));

/** G.711 mu-law bytes of samples in [-1, 1] (ITU-T G.711, as in the Sun reference code). */
export function muLaw(samples: Float32Array): Buffer {
  const out = Buffer.alloc(samples.length);
  for (let i = 0; i < samples.length; i++) {
    let v = clamp16(samples[i]!) >> 2;
    const mask = v < 0 ? 0x7f : 0xff;
    if (v < 0) v = -v;
    v = Math.min(v, 8159) + 0x21;
    let seg = 0;
    while (seg < 8 && v > (0x40 << seg) - 1) seg++;
    out[i] = seg >= 8 ? 0x7f ^ mask : (((seg << 4) | ((v >> (seg + 1)) & 0x0f)) ^ mask);
  }
  return out;
}

/** G.711 A-law bytes of samples in [-1, 1]. */
export function aLaw(samples: Float32Array): Buffer {
  const out = Buffer.alloc(samples.length);
  for (let i = 0; i < samples.length; i++) {
    let v = clamp16(samples[i]!) >> 3;
    let mask = 0xd5;
    if (v < 0) {
      mask = 0x55;
      v = -v - 1;
    }
    let seg = 0;
    while (seg < 8 && v > (0x20 << seg) - 1) seg++;
    out[i] = seg >= 8 ? 0x7f ^ mask : (((seg << 4) | ((seg < 2 ? v >> 1 : v >> seg) & 0x0f)) ^ mask);
  }
  return out;
}
