// Connections to the cluster's Redis, made one way for every part of earshot that talks to it (the
// job queue, the workers, the API nodes). BullMQ needs `maxRetriesPerRequest: null` on the
// connections its workers block on; every connection retries forever with a capped back-off, so a
// Redis restart is ridden out rather than crashing the process. The URL may carry a password:
// `redactRedisUrl` is the only form of it that may reach a log.
import { Redis, type RedisOptions } from 'ioredis';

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
  return new Redis({ ...redisOptions(url), connectionName: name });
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
