// A WebSocket test client for the streaming endpoints (the `ws` package, as a Node app would use
// it): connects, records every JSON message with its arrival time, and paces audio.
import { WebSocket } from 'ws';

export interface Received {
  at: number;
  msg: Record<string, any>;
}

export interface Client {
  ws: WebSocket;
  received: Received[];
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves with the first message of `type` (already received or to come). */
  next(type: string, ms?: number): Promise<Record<string, any>>;
}

export function wsUrl(httpUrl: string, path: string): string {
  return httpUrl.replace(/^http/, 'ws') + path;
}

export async function connect(url: string, opts: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<Client> {
  const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers ?? {} });
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data, isBinary) => {
    if (!isBinary) received.push({ at: performance.now(), msg: JSON.parse(data.toString()) });
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (type: string, ms = 10000): Promise<Record<string, any>> => {
    const end = Date.now() + ms;
    for (;;) {
      const hit = received.find((r) => r.msg.type === type);
      if (hit) return hit.msg;
      if (Date.now() > end) throw new Error(`no "${type}" message within ${ms} ms; got ${received.map((r) => r.msg.type).join(', ')}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return { ws, received, closed, next };
}

/** s16le bytes of 16 kHz float samples. */
export function s16le(samples: Float32Array): Buffer {
  const b = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) b.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32767))), i * 2);
  return b;
}

/** Sends `samples` in `chunkMs` pieces through `sendChunk`, at `speed` times real time. Returns when the last is sent. */
export async function pace(samples: Float32Array, rate: number, speed: number, sendChunk: (c: Float32Array) => void, chunkMs = 100): Promise<void> {
  const n = Math.round((rate * chunkMs) / 1000);
  const start = performance.now();
  for (let i = 0, at = 0; at < samples.length; i++, at += n) {
    sendChunk(samples.subarray(at, at + n));
    const due = start + ((i + 1) * chunkMs) / speed;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
