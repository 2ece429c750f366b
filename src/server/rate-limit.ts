// Per-client limits: requests per minute (a token bucket per client) and concurrent WebSocket
// streams per client. A client is its API key (by digest, never the key itself) or, on a server
// without keys, its address. Over a limit is a typed `overloaded` error carrying how long to wait,
// which the error mapping turns into 429 with Retry-After and OpenAI's error body.
//
// Written here rather than taken from @fastify/rate-limit: that plugin counts fixed windows of
// requests only, while the stream count must share the same client identity and error shape, and
// a token bucket (smooth refill, no double burst at a window edge) is a dozen lines.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EarshotError } from '../errors.ts';
import { streamAuthorization } from './routes/stream-common.ts';

/** Past this many tracked clients, idle (full) buckets are dropped so memory stays bounded. */
const PRUNE_AT = 10_000;

export interface RateLimitOptions {
  /** Requests per minute per client; 0 = no limit. */
  rpm: number;
  /** Open WebSocket streams per client; 0 = no limit. */
  maxStreams: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** An `overloaded` EarshotError that says how many seconds to wait before retrying. */
export class RetryLaterError extends EarshotError {
  constructor(
    code: string,
    message: string,
    readonly retryAfterS: number,
  ) {
    super('overloaded', code, message);
  }
}

/** Seconds a client should wait, when the error says so. */
export function retryAfterOf(e: unknown): number | undefined {
  return e instanceof RetryLaterError ? e.retryAfterS : undefined;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly streams = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: RateLimitOptions) {
    this.now = opts.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.opts.rpm > 0 || this.opts.maxStreams > 0;
  }

  /** Counts one request of `client`; throws RetryLaterError when its bucket is empty. */
  hit(client: string): void {
    const { rpm } = this.opts;
    if (rpm <= 0) return;
    const now = this.now();
    const perMs = rpm / 60_000;
    const b = this.buckets.get(client) ?? { tokens: rpm, at: now };
    b.tokens = Math.min(rpm, b.tokens + (now - b.at) * perMs);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(client, b);
      const waitS = Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
      throw new RetryLaterError('rate_limited', `rate limit reached: at most ${rpm} requests per minute; retry in ${waitS} s`, waitS);
    }
    b.tokens -= 1;
    this.buckets.set(client, b);
    if (this.buckets.size > PRUNE_AT) this.prune(now, perMs);
  }

  /** Opens one stream of `client`; the returned function (idempotent) closes it. */
  openStream(client: string): () => void {
    const max = this.opts.maxStreams;
    if (max <= 0) return () => {};
    const open = this.streams.get(client) ?? 0;
    if (open >= max) {
      throw new RetryLaterError('too_many_streams', `too many open streams: at most ${max} at a time per API key; close one first`, 1);
    }
    this.streams.set(client, open + 1);
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const n = (this.streams.get(client) ?? 1) - 1;
      if (n <= 0) this.streams.delete(client);
      else this.streams.set(client, n);
    };
  }

  /** Open streams of `client` (tests, metrics). */
  openStreams(client: string): number {
    return this.streams.get(client) ?? 0;
  }

  private prune(now: number, perMs: number): void {
    for (const [client, b] of this.buckets) {
      if (b.tokens + (now - b.at) * perMs >= this.opts.rpm) this.buckets.delete(client);
    }
  }
}

/** Who a request counts against: its key (as a digest; a browser stream's too) or, without one, its address. */
export function clientOf(request: FastifyRequest): string {
  const m = /^Bearer[ \t]+(\S+)/i.exec(request.headers.authorization ?? streamAuthorization(request) ?? '');
  if (m) return `key:${createHash('sha256').update(m[1]!, 'utf8').digest('hex').slice(0, 32)}`;
  return `ip:${request.ip}`;
}

const isWebSocketUpgrade = (request: FastifyRequest): boolean => request.headers.upgrade?.toLowerCase() === 'websocket';

/**
 * Adds the limits as an onRequest hook (to be added after the API-key check, so that a bad key is
 * a 401 and uses up nothing). `exempt` paths (health probes) are never limited. A WebSocket
 * upgrade holds one stream until its socket closes.
 */
export function installRateLimits(app: FastifyInstance, limits: RateLimits, exempt: (path: string) => boolean): void {
  if (!limits.enabled) return;
  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS' || exempt(request.url.split('?')[0]!)) return;
    const client = clientOf(request);
    limits.hit(client);
    if (isWebSocketUpgrade(request)) {
      const close = limits.openStream(client);
      const socket = request.raw.socket;
      if (socket.destroyed) close();
      else socket.once('close', close);
    }
  });
}
