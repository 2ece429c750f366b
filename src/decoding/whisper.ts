// A ready-to-use Whisper: the ONNX sessions, the tokenizer and the feature extractor of one model
// folder, loaded together. `loadWhisper` keeps one instance per model, dtype and engine options, so
// every request and stream in the process shares the same sessions; `acquireWhisper` /
// `releaseWhisper` count holders, so a server can unload or swap a model it no longer needs.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type EngineOptionsInput, parseEngineOptions, resolveDevice } from '../engine/execution.ts';
import { RemoteRunner } from '../engine/remote-runner.ts';
import { type ModelRunner, WhisperModel } from '../engine/whisper-model.ts';
import { WorkQueue } from '../engine/work-queue.ts';
import { LogMelExtractor, parsePreprocessorConfig } from '../features/index.ts';
import { MelPool } from '../features/mel-pool.ts';
import { EarshotError } from '../errors.ts';
import { type ResolvedModel, resolveModel, type ResolveOptions } from '../models/index.ts';
import { loadWhisperTokenizer, type WhisperTokenizer } from './tokenizer.ts';

export interface Whisper {
  /** The model's name as the user gave it (catalogue name, repo id or folder). */
  id: string;
  resolved: ResolvedModel;
  /**
   * The model and its batching scheduler, in a worker thread of their own so that model runs never
   * block the event loop: what decoding calls (as `runner`), plus release, stats and failure.
   */
  model: RemoteRunner;
  /** What decoding calls: `model`, or a view of it (a stream's runner with a priority). */
  runner: ModelRunner;
  tokenizer: WhisperTokenizer;
  features: LogMelExtractor;
  /** The same extractor's long-form mel, off the main thread for long files. */
  mel: MelPool;
  /** Every use of the model waits its turn here (see work-queue.ts); up to a batch of jobs run at once. */
  queue: WorkQueue;
  /** Milliseconds spent creating the sessions. */
  loadMs: number;
}

export interface LoadOptions extends Omit<ResolveOptions, 'dtype'> {
  dtype?: string;
  engine?: EngineOptionsInput;
}

export async function loadWhisperFrom(id: string, resolved: ResolvedModel, engine: EngineOptionsInput = {}): Promise<Whisper> {
  const started = performance.now();
  const engineOpts = parseEngineOptions(engine);
  // Concurrent jobs share batched model runs through the scheduler; as many jobs run at once as
  // one decoder run takes rows, the rest wait in the queue. On the CPU the encoder gains nothing from
  // batching (a batch of windows only makes a short request wait longer behind it): one window per
  // encoder run there.
  const onCpu = resolveDevice(engineOpts.device) === 'cpu';
  const [model, tokenizer, preprocessor] = await Promise.all([
    RemoteRunner.start({
      dir: resolved.dir,
      files: { encoder: resolved.encoderPath, decoder: resolved.decoderPath },
      engine: engineOpts,
      scheduler: { maxEncodeBatch: onCpu ? 1 : undefined },
    }),
    loadWhisperTokenizer(resolved.dir),
    readFile(join(resolved.dir, 'preprocessor_config.json'), 'utf8').then((s) => JSON.parse(s) as unknown),
  ]);
  const features = new LogMelExtractor(parsePreprocessorConfig(preprocessor));
  const queue = new WorkQueue({ concurrency: model.maxBatch });
  const mel = new MelPool(features);
  return { id, resolved, model, runner: model, tokenizer, features, mel, queue, loadMs: performance.now() - started };
}

/**
 * The model of `w` loaded once more, on the calling thread (the caller releases it): for tests and
 * benchmarks that need its tensors or the bare sessions. Serving and decoding use `w.model`.
 */
export function loadModelHere(w: Whisper, engine: EngineOptionsInput = {}): Promise<WhisperModel> {
  return WhisperModel.load(w.resolved.dir, { encoder: w.resolved.encoderPath, decoder: w.resolved.decoderPath }, parseEngineOptions(engine));
}

/**
 * One cached instance. `pinned` instances (handed out by plain `loadWhisper`, whose callers never
 * say when they are done) live until `unloadAll`; the others live while `holds` > 0.
 */
interface Cached {
  whisper: Promise<Whisper>;
  holds: number;
  pinned: boolean;
}

const loaded = new Map<string, Cached>();
/** Instances a fresh load took out of `loaded`, kept until their last holder lets go (or `unloadAll`). */
const evicted = new Set<Cached>();
const entryOf = new WeakMap<Whisper, Cached>();

async function cached(spec: string, opts: LoadOptions, how: { fresh: boolean; hold: boolean }): Promise<Cached> {
  const engine = parseEngineOptions(opts.engine ?? {});
  const resolved = await resolveModel(spec, { ...opts, dtype: opts.dtype });
  const key = JSON.stringify([resolved.encoderPath, resolved.decoderPath, engine]);
  let c = loaded.get(key);
  if (c && how.fresh) {
    loaded.delete(key);
    evicted.add(c);
    c = undefined;
  }
  if (!c) {
    const whisper = loadWhisperFrom(spec, resolved, engine).then((w) => {
      entryOf.set(w, entry);
      // A model whose worker died is never handed out again; its holders still release it.
      w.model.onFailure(() => {
        if (loaded.get(key) !== entry) return;
        loaded.delete(key);
        evicted.add(entry);
      });
      return w;
    });
    const entry: Cached = { whisper, holds: 0, pinned: false };
    entry.whisper.catch(() => {
      if (loaded.get(key) === entry) loaded.delete(key);
    });
    loaded.set(key, entry);
    c = entry;
  }
  // Counted before any await, so a concurrent release cannot close what is being handed out.
  if (how.hold) c.holds++;
  else c.pinned = true;
  return c;
}

/** Resolves (downloading if needed) and loads `spec`, or returns the instance already loaded. It stays loaded until `unloadAll`. */
export async function loadWhisper(spec: string, opts: LoadOptions = {}): Promise<Whisper> {
  return (await cached(spec, opts, { fresh: false, hold: false })).whisper;
}

/**
 * As `loadWhisper`, but counted: the instance stays loaded until each `acquireWhisper` is matched
 * by a `releaseWhisper` (and no plain `loadWhisper` caller shares it). `fresh` loads a new instance
 * even if one is cached (files changed on disk); later loads get the new one, while holders of the
 * old one keep it until they release it.
 */
export async function acquireWhisper(spec: string, opts: LoadOptions & { fresh?: boolean } = {}): Promise<Whisper> {
  const c = await cached(spec, opts, { fresh: opts.fresh ?? false, hold: true });
  try {
    return await c.whisper;
  } catch (e) {
    c.holds--;
    throw e;
  }
}

/** Gives back one `acquireWhisper` hold; the last one releases the sessions. Resolves to whether it did. */
export async function releaseWhisper(w: Whisper): Promise<boolean> {
  const c = entryOf.get(w);
  if (!c || c.holds <= 0) throw new EarshotError('internal', 'not_held', `model "${w.id}" is not held: releaseWhisper without acquireWhisper`);
  if (--c.holds > 0 || c.pinned) return false;
  for (const [k, v] of loaded) if (v === c) loaded.delete(k);
  evicted.delete(c);
  await w.model.release();
  return true;
}

/** Releases every loaded model (tests, shutdown). */
export async function unloadAll(): Promise<void> {
  const all = [...loaded.values(), ...evicted];
  loaded.clear();
  evicted.clear();
  await Promise.all(all.map(async (c) => (await c.whisper.catch(() => null))?.model.release()));
}
