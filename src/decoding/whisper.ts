// A ready-to-use Whisper: the ONNX sessions, the tokenizer and the feature extractor of one model
// folder, loaded together. `loadWhisper` keeps one instance per model, dtype and engine options, so
// every request and stream in the process shares the same sessions.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type EngineOptionsInput, parseEngineOptions } from '../engine/execution.ts';
import { BatchScheduler } from '../engine/scheduler.ts';
import { type ModelRunner, WhisperModel } from '../engine/whisper-model.ts';
import { WorkQueue } from '../engine/work-queue.ts';
import { LogMelExtractor, parsePreprocessorConfig } from '../features/index.ts';
import { type ResolvedModel, resolveModel, type ResolveOptions } from '../models/index.ts';
import { loadWhisperTokenizer, type WhisperTokenizer } from './tokenizer.ts';

export interface Whisper {
  /** The model's name as the user gave it (catalogue name, repo id or folder). */
  id: string;
  resolved: ResolvedModel;
  model: WhisperModel;
  /** What decoding calls: the model itself, or a batching scheduler in front of it. */
  runner: ModelRunner;
  tokenizer: WhisperTokenizer;
  features: LogMelExtractor;
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
  const [model, tokenizer, preprocessor] = await Promise.all([
    WhisperModel.load(resolved.dir, { encoder: resolved.encoderPath, decoder: resolved.decoderPath }, parseEngineOptions(engine)),
    loadWhisperTokenizer(resolved.dir),
    readFile(join(resolved.dir, 'preprocessor_config.json'), 'utf8').then((s) => JSON.parse(s) as unknown),
  ]);
  const features = new LogMelExtractor(parsePreprocessorConfig(preprocessor));
  // Concurrent jobs share batched model runs through the scheduler; as many jobs run at once as
  // one decoder run takes rows, the rest wait in the queue.
  const runner = new BatchScheduler(model);
  const queue = new WorkQueue({ concurrency: runner.maxBatch });
  return { id, resolved, model, runner, tokenizer, features, queue, loadMs: performance.now() - started };
}

const loaded = new Map<string, Promise<Whisper>>();

/** Resolves (downloading if needed) and loads `spec`, or returns the instance already loaded. */
export async function loadWhisper(spec: string, opts: LoadOptions = {}): Promise<Whisper> {
  const engine = parseEngineOptions(opts.engine ?? {});
  const resolved = await resolveModel(spec, { ...opts, dtype: opts.dtype });
  const key = JSON.stringify([resolved.encoderPath, resolved.decoderPath, engine]);
  let p = loaded.get(key);
  if (!p) {
    p = loadWhisperFrom(spec, resolved, engine);
    loaded.set(key, p);
    p.catch(() => loaded.delete(key));
  }
  return p;
}

/** Releases every loaded model (tests, shutdown). */
export async function unloadAll(): Promise<void> {
  const all = [...loaded.values()];
  loaded.clear();
  await Promise.all(all.map(async (p) => (await p.catch(() => null))?.model.release()));
}
