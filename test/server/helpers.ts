// Shared by the server tests: a server on port 0 over a built test model (random weights, so only
// the structure of answers is checked), with the configuration going through the real loader, and
// small WAV clips cut from the JFK sample.
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { startServer, type RunningServer } from '../../src/server/app.ts';
import { loadServerConfig, type ServerConfig } from '../../src/server/config.ts';
import { log } from '../../src/log.ts';
import type { WorkQueue } from '../../src/engine/work-queue.ts';
import { wav16 } from '../audio/support.ts';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const JFK = join(ROOT, 'samples/jfk.wav');
export const BAD_DIR = join(ROOT, '../shared/audio/bad');
export const BIN = join(ROOT, 'bin/earshot.js');

/** Models in the cache are listed by /v1/models: keep the tests away from the user's cache. */
export function isolateHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'earshot-server-test-'));
  process.env.EARSHOT_HOME = home;
  return home;
}

export function modelDir(preset: 'english' | 'multilingual'): string {
  return testModelDir({ preset });
}

/**
 * Starts a server with the given settings (as flags) on 127.0.0.1, port 0, and waits for the model.
 * Each server gets its own fresh data directory unless one is given: a server takes its data
 * directory's lock at startup, so two in one test would otherwise refuse each other.
 */
export async function startTestServer(flags: Partial<Record<keyof ServerConfig, unknown>>, opts: { load?: boolean } = {}): Promise<RunningServer> {
  // Under the isolated home when there is one: some tests watch the temporary directory.
  const dataDir = mkdtempSync(join(process.env.EARSHOT_HOME ?? tmpdir(), 'jobs-data-'));
  const config = loadServerConfig({ env: {}, flags: { port: 0, threads: 1, sampleLen: 4, dataDir, ...flags } });
  const s = await startServer(config);
  if (opts.load !== false) await s.loaded;
  return s;
}

/** A 16 kHz mono 16-bit WAV of `seconds` of the JFK sample (11 s), repeated as needed. */
export function jfkClip(seconds: number): Uint8Array {
  const src = readFileSync(JFK);
  const dataAt = src.indexOf(Buffer.from('data')) + 8;
  const speech = src.subarray(dataAt, dataAt + src.readUInt32LE(dataAt - 4));
  const pcm = Buffer.alloc(Math.round(seconds * 16000) * 2);
  for (let at = 0; at < pcm.length; at += speech.length) speech.copy(pcm, at, 0, Math.min(speech.length, pcm.length - at));
  return wav16(pcm);
}

export { wav16 };

/** A multipart form as OpenAI clients send it. */
export function form(fields: Record<string, string | string[]>, file?: { bytes: Uint8Array; name?: string }): FormData {
  const f = new FormData();
  if (file) f.append('file', new Blob([Buffer.from(file.bytes)]), file.name ?? 'clip.wav');
  for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) f.append(k, x);
  return f;
}

/** Resolves once `check` is true (polled every 5 ms), or fails after `ms`. */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Fills every running slot of the model's queue with jobs of the test's own until `release()`. */
export function occupy(queue: WorkQueue<unknown>): { release: () => void; done: Promise<void>; slots: number } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const done = Promise.all(Array.from({ length: queue.concurrency }, () => queue.run(() => gate))).then(() => {});
  return { release, done, slots: queue.concurrency };
}

/** A metric's value from the Prometheus text, summed over series whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}

// Request logs would drown the test report; EARSHOT_LOG_LEVEL=info brings them back.
log.level = process.env.EARSHOT_LOG_LEVEL ?? 'warn';
