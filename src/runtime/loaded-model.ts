// A loaded model: the ONNX sessions (in their worker thread, behind the batching scheduler), the
// tokenizer and the feature extractor of one model folder, loaded together. It sits above the
// layers it assembles (engine, features, the decoding tokenizer, models); decoding and streaming
// take only the parts they use (DecodingModel, StreamModel), so they never import it. The process
// keeps one instance per model (model-cache.ts).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deviceBatchLimits } from '../engine/batch-policy.ts';
import { type EngineOptionsInput, parseEngineOptions, resolveDevice } from '../engine/execution.ts';
import { laneOf } from '../engine/priority.ts';
import { RemoteRunner } from '../engine/remote-runner.ts';
import { WhisperModel } from '../engine/whisper-model.ts';
import type { ModelRunner } from '../engine/model-types.ts';
import { type JobPlace, type Lane, WorkQueue } from '../engine/work-queue.ts';
import { LogMelExtractor, parsePreprocessorConfig } from '../features/index.ts';
import { MelPool } from '../features/mel-pool.ts';
import { EarshotError } from '../errors.ts';
import { type ResolvedModel, resolveModel, type ResolveOptions } from '../models/index.ts';
import { loadWhisperTokenizer, type WhisperTokenizer } from '../decoding/tokenizer.ts';

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
  /** Every use of the model waits its turn here (see work-queue.ts), and is handed `runner` at its priority; up to a batch of jobs run at once. */
  queue: WorkQueue<ModelRunner>;
  /** Milliseconds spent creating the sessions. */
  loadMs: number;
}

/** `maxWaiting`: the bound of the model's work queue, set here once (requests beyond it get 429). */
export async function loadWhisperFrom(id: string, resolved: ResolvedModel, engine: EngineOptionsInput = {}, maxWaiting?: number): Promise<Whisper> {
  const started = performance.now();
  const engineOpts = parseEngineOptions(engine);
  // Concurrent jobs share batched model runs through the scheduler; as many jobs run at once as
  // one decoder run takes rows, the rest wait in the queue. The batch limits are the device's
  // (batch-policy.ts says them and why: the encoder batches on a GPU, not on the CPU).
  const limits = deviceBatchLimits(resolveDevice(engineOpts.device));
  const [model, tokenizer, preprocessor] = await Promise.all([
    RemoteRunner.start({
      dir: resolved.dir,
      files: { encoder: resolved.encoderPath, decoder: resolved.decoderPath },
      engine: engineOpts,
      scheduler: { maxBatch: limits.maxBatch, maxEncodeBatch: limits.maxEncodeBatch },
    }),
    loadWhisperTokenizer(resolved.dir),
    readFile(join(resolved.dir, 'preprocessor_config.json'), 'utf8').then((s) => JSON.parse(s) as unknown),
  ]);
  const features = new LogMelExtractor(parsePreprocessorConfig(preprocessor));
  const concurrency = model.maxBatch;
  const lane = (priority: number) => laneOf(priority, limits.streamJobs, concurrency);
  const queue = modelQueue(model, { concurrency, lane, ...(maxWaiting !== undefined ? { maxWaiting } : {}) });
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

/** A runner that can carry a job's place and withdrawal too (RemoteRunner, BatchScheduler). */
type JobRunner = ModelRunner & { withPriority?(priority: number, place?: JobPlace): ModelRunner };

/**
 * A work queue in front of `runner`: each job is handed the runner at the job's own priority and
 * place, withdrawn with the job (engine/batch-policy.ts says why the scheduler wants both). `lane`:
 * the lane of each priority (a loaded model's: streams share one, as wide as the device runs them: priority.ts's `laneOf`).
 */
export function modelQueue(runner: JobRunner, opts: { concurrency: number; lane?: (priority: number) => Lane | null; maxWaiting?: number }): WorkQueue<ModelRunner> {
  return new WorkQueue({ ...opts, at: (priority, place) => runner.withPriority?.(priority, place) ?? runner });
}
