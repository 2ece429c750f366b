// Connections to the cluster's Redis, made one way for every part of earshot that talks to it (the
// job queue, the workers, the API nodes). BullMQ needs `maxRetriesPerRequest: null` on the
// connections its workers block on; every connection retries forever with a capped back-off, so a
// Redis restart is ridden out rather than crashing the process. Retrying forever also means a
// command sent while Redis is away waits for it: whatever answers a client checks `connected`
// first and gives a 503 instead. An outage is logged once, when it starts, and again when Redis is
// back. The URL may carry a password: `redactRedisUrl` is the only form of it that may reach a log.
import { Redis, type RedisOptions } from 'ioredis';
import { EarshotError } from '../errors.ts';
import { log as rootLog } from '../log.ts';

const log = rootLog.child({ component: 'redis' });

/** The prefix of every key earshot writes, BullMQ's included. */
export const KEY_PREFIX = 'earshot';

export function redisOptions(url: string): RedisOptions {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`not a Redis URL (redis:// or rediss://): ${redactRedisUrl(url)}`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: false,
  };
}

export function connectRedis(url: string, name = 'earshot'): Redis {
  const redis = new Redis({ ...redisOptions(url), connectionName: name });
  let down = false;
  // Without a listener ioredis prints every failed reconnect attempt to stderr.
  redis.on('error', (e: Error) => {
    if (!down) log.warn({ connection: name, redis: redactRedisUrl(url), err: { message: e.message } }, 'Redis connection lost; retrying');
    down = true;
  });
  redis.on('ready', () => {
    if (down) log.info({ connection: name }, 'Redis connection back');
    down = false;
  });
  return redis;
}

/**
 * A connection of its own subscribed to `channel`, calling `onMessage` with each message: how a
 * worker hears cancellations. Resolves once subscribed, so nothing published after is missed.
 */
export async function subscribeTo(url: string, name: string, channel: string, onMessage: (message: string) => void): Promise<Redis> {
  const redis = connectRedis(url, name);
  await redis.subscribe(channel);
  redis.on('message', (_channel: string, message: string) => onMessage(message));
  return redis;
}

/** Whether `redis` can take a command now (not connecting, reconnecting or closed). */
export function connected(redis: Redis): boolean {
  return redis.status === 'ready';
}

/** The 503 for work that needs the cluster's Redis while it cannot be reached. */
export function clusterUnavailable(): EarshotError {
  return new EarshotError('not_ready', 'cluster_unavailable', "the cluster's Redis cannot be reached; retry shortly");
}

/** The URL with its password replaced, for logs and errors. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable Redis URL>';
  }
}
