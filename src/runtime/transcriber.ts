// What the audio routes call to transcribe a request: one interface, two backends. A server that
// holds its models decodes here (server/local-transcriber.ts, over the model registry's leases); a
// stateless API node (`--no-local-model`) sends the request through Redis to a worker
// (cluster/cluster-transcriber.ts), whose consumer decodes it with `runOnWhisper` below, the very
// code the local backend runs, so both give the same text. The routes never know which one ran.
import { encodePrompt } from '../decoding/sot.ts';
import type { Segment, Transcription } from '../decoding/transcription.ts';
import { transcribeWithVad } from '../decoding/vad-filter.ts';
import { requestPriority } from '../engine/priority.ts';
import { EarshotError } from '../errors.ts';
import type { Whisper } from './loaded-model.ts';

export type Task = 'transcribe' | 'translate';

/** A request's decoding options, plain data (they travel as JSON to a worker). */
export interface RequestOptions {
  task: Task;
  vadFilter: boolean;
  sampleLen: number;
  language?: string;
  temperature?: number;
  initialPrompt?: string;
  wordTimestamps?: boolean;
}

export interface RunHooks {
  /** The client left or the request timed out: the decode stops (or never starts). */
  signal: AbortSignal;
  /** Called once the decode has begun: errors before it are the request's, after it a stream's events. */
  onStart?: () => void;
  /** Each segment as soon as it is decoded. */
  onSegment?: (s: Segment) => void;
}

export interface RunResult {
  transcription: Transcription;
  /** Tokens of the request's prompt (OpenAI's `usage.input_token_details.text_tokens`). */
  promptTokens: number;
  /** Seconds the decode took, queueing left out (the real-time factor's numerator). */
  processingS: number;
}

/** The model a request named, ready to run it. */
export interface TranscriptionTarget {
  readonly id: string;
  run(samples: Float32Array, options: RequestOptions, hooks: RunHooks): Promise<RunResult>;
  /** Done with the model (a local lease is counted; a cluster target holds nothing). */
  release(): void;
}

export interface Transcriber {
  /** 503 while nothing can serve, 429 when the queue is full: checked before an upload is read. */
  admit(): Promise<void>;
  /** The model the request's `model` field names, checked for the task (404, 503, 400). */
  open(model: string | undefined, task: Task): Promise<TranscriptionTarget>;
}

/** Why a model cannot do `task` (translation needs a multilingual model), or undefined. */
export function taskError(multilingual: boolean, task: Task, modelId: string): EarshotError | undefined {
  if (task === 'translate' && !multilingual) {
    return new EarshotError('invalid_argument', 'translation_unsupported', `model "${modelId}" is English-only: translation needs a multilingual model`, { param: 'model' });
  }
  return undefined;
}

/** taskError as a throw, for a loaded model. */
export function assertTaskSupported(w: Whisper, task: Task, modelId: string): void {
  const refused = taskError(w.tokenizer.isMultilingual, task, modelId);
  if (refused) throw refused;
}

/** Runs one request on a loaded model, through its work queue at a request's priority. */
export function runOnWhisper(w: Whisper, samples: Float32Array, options: RequestOptions, hooks: RunHooks): Promise<RunResult> {
  const { signal } = hooks;
  return w.queue.run(
    async (runner) => {
      const started = performance.now();
      const { initialPrompt, ...rest } = options;
      const run = await transcribeWithVad({ ...w, runner }, samples, { ...rest, ...(initialPrompt !== undefined ? { initialPrompt } : {}), signal });
      hooks.onStart?.();
      const segments: Segment[] = [];
      for await (const s of run.segments) {
        signal.throwIfAborted();
        segments.push(s);
        hooks.onSegment?.(s);
      }
      const { language, languageProbability, duration, task } = run;
      return {
        transcription: { language, languageProbability, duration, task, text: segments.map((s) => s.text).join(''), segments },
        promptTokens: initialPrompt ? encodePrompt(w.tokenizer, initialPrompt).length : 0,
        processingS: (performance.now() - started) / 1000,
      };
    },
    { signal, priority: requestPriority(samples.length) },
  );
}
