// The process's loaded models: `loadWhisper` keeps one instance per model, dtype and engine
// options, so every request and stream in the process shares the same sessions;
// `acquireWhisper` / `releaseWhisper` count holders, so a server can unload or swap a model it no
// longer needs.
import { type EngineOptionsInput, parseEngineOptions, resolveDevice } from '../engine/execution.ts';
import { EarshotError } from '../errors.ts';
import { log } from '../log.ts';
import { resolveModel, type ResolveOptions } from '../models/index.ts';
import { loadWhisperFrom, type Whisper } from './loaded-model.ts';

export interface LoadOptions extends Omit<ResolveOptions, 'dtype'> {
  dtype?: string;
  engine?: EngineOptionsInput;
  /**
   * The bound of the model's work queue (default 64). It is set when the model is loaded: a later
   * loader of the same instance that asks for another bound keeps the first one (and is warned).
   */
  queueSize?: number;
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
  // On a GPU the default dtype is fp16 where the model has it (models/dtype.ts says why).
  const gpu = engine.device !== 'cpu' && resolveDevice(engine.device) !== 'cpu';
  const resolved = await resolveModel(spec, { ...opts, dtype: opts.dtype, gpu });
  const key = JSON.stringify([resolved.encoderPath, resolved.decoderPath, engine]);
  let c = loaded.get(key);
  if (c && how.fresh) {
    loaded.delete(key);
    evicted.add(c);
    c = undefined;
  }
  if (!c) {
    const whisper = loadWhisperFrom(spec, resolved, engine, opts.queueSize).then((w) => {
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
    const w = await c.whisper;
    if (opts.queueSize !== undefined && w.queue.maxWaiting !== opts.queueSize) {
      log.warn({ model: spec, queueSize: w.queue.maxWaiting, asked: opts.queueSize }, 'model already loaded with its own queue bound; keeping it');
    }
    return w;
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
