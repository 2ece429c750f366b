// Uploaded audio kept in the cluster's Redis until the work on it ends: the bytes of one upload as
// chunks of at most CHUNK_BYTES (no single huge value blocks Redis or a connection), each key with a
// TTL, so an upload whose owner died is still removed in the end. The head key, written last, holds
// the chunk count and size: an upload whose head is missing is not (or no longer) there. Keyed by
// the id of the work that owns it (a job id, a request id), under `earshot:upload:<id>`.
import { createReadStream } from 'node:fs';
import type { Redis } from 'ioredis';
import { EarshotError } from '../errors.ts';
import { KEY_PREFIX } from './redis.ts';

export const CHUNK_BYTES = 1024 * 1024;

const head = (id: string): string => `${KEY_PREFIX}:upload:${id}`;
const chunk = (id: string, n: number): string => `${KEY_PREFIX}:upload:${id}:${n}`;

/**
 * Stores an upload (its bytes, or the file it was spooled to) under `id`, every key expiring after
 * `ttlMs`; returns its size. The head goes last, so a reader never sees a part of it.
 */
export async function putUpload(redis: Redis, id: string, source: Uint8Array | string, ttlMs: number): Promise<number> {
  let n = 0;
  let bytes = 0;
  const write = async (b: Buffer): Promise<void> => {
    for (let at = 0; at < b.length; at += CHUNK_BYTES) {
      const part = b.subarray(at, at + CHUNK_BYTES);
      await redis.set(chunk(id, n++), part, 'PX', ttlMs);
      bytes += part.length;
    }
  };
  try {
    if (typeof source === 'string') {
      for await (const c of createReadStream(source, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>) await write(c);
    } else await write(Buffer.from(source.buffer, source.byteOffset, source.byteLength));
    await redis.set(head(id), `${n},${bytes}`, 'PX', ttlMs);
  } catch (e) {
    await deleteUpload(redis, id, n).catch(() => {});
    throw e;
  }
  return bytes;
}

/** The upload's bytes; `upload_missing` when it is not there (never stored, expired or deleted). */
export async function readUpload(redis: Redis, id: string): Promise<Buffer> {
  const h = await redis.get(head(id));
  if (h === null) throw missing(id);
  const [count, bytes] = h.split(',').map(Number) as [number, number];
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const part = await redis.getBuffer(chunk(id, i));
    if (part === null) throw missing(id);
    parts.push(part);
  }
  const all = Buffer.concat(parts);
  if (all.length !== bytes) throw missing(id);
  return all;
}

/** Deletes the upload (nothing if it is not there); `count` chunks when the head is already gone. */
export async function deleteUpload(redis: Redis, id: string, count?: number): Promise<void> {
  const h = await redis.get(head(id));
  const n = h === null ? (count ?? 0) : Number(h.split(',')[0]);
  const keys = [head(id), ...Array.from({ length: n }, (_, i) => chunk(id, i))];
  await redis.del(...keys);
}

/** Whether an upload is stored under `id` (tests, diagnostics). */
export async function hasUpload(redis: Redis, id: string): Promise<boolean> {
  return (await redis.exists(head(id))) === 1;
}

/** The ids that hold any upload key now, whole or not (tests, diagnostics: SCAN, never KEYS). */
export async function uploadIds(redis: Redis): Promise<Set<string>> {
  const ids = new Set<string>();
  const prefix = `${KEY_PREFIX}:upload:`;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) ids.add(k.slice(prefix.length).split(':')[0]!);
  } while (cursor !== '0');
  return ids;
}

function missing(id: string): EarshotError {
  return new EarshotError('invalid_audio', 'upload_missing', `the upload of ${id} is no longer stored (it expired or was deleted)`);
}
