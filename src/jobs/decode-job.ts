// One run of a job's audio through its model, window by window: the part the SQLite runner
// (runner.ts) and the cluster's workers (cluster/job-consumer.ts) share. The audio is decoded, the
// run waits its turn in the model's work queue at the job's priority, and each finished 30 s window
// is handed to the caller's `JobSink` with the point a later run resumes from (the seek after it and
// the text before it, the next window's prompt). A run resumed from a stored point continues as the
// uninterrupted run would have (temperature 0). A sink that answers false means the job is no longer
// this run's (cancelled, or taken over): the run stops with JOB_CANCELLED.
import { decodeAudio } from '../audio/index.ts';
import type { ResumePoint } from '../decoding/transcribe.ts';
import type { Segment } from '../decoding/transcription.ts';
import { transcribeWithVad, type VadTranscribeOptions } from '../decoding/vad-filter.ts';
import { jobPriority } from '../engine/priority.ts';
import { EarshotError } from '../errors.ts';
import type { Whisper } from '../runtime/loaded-model.ts';
import type { Job } from './types.ts';

export const JOB_CANCELLED = new EarshotError('internal', 'job_cancelled', 'the job was cancelled');

type Answer = boolean | Promise<boolean>;

/**
 * Where a run records its job's progress. Each answer is false when the job is no longer running for
 * this run; a synchronous store answers at once, an asynchronous one (Redis) with a promise, which
 * must settle in the order the calls were made.
 */
export interface JobSink {
  /** The run starts decoding windows: a crash from here costs the job its window in progress. */
  enterWindow(job: Job): Answer;
  setAudioInfo(job: Job, info: { duration: number; language: string; languageProbability: number }): Answer;
  /** One finished window's segments with the point after it, stored together. */
  saveWindow(job: Job, segments: readonly Segment[], resume: ResumePoint, doneSeconds: number): Answer;
  /** The job's last segments; the job is completed. */
  complete(job: Job, now: number, segments: readonly Segment[]): Answer;
}

export interface DecodeJobOptions {
  signal: AbortSignal;
  sampleLen?: number;
  maxAudioSeconds?: number;
  /** Called when a window is stored (a pause for a storage fault is over). */
  onWindow?: () => void;
  /** Called once the run has its audio and starts decoding windows. */
  onStart?: (resumed: boolean) => void;
  /** Called in the same tick as the completion is stored. */
  onCompleted?: () => void;
}

/** Decodes the job's audio (a file path or its bytes) and runs it to its end from its stored resume point. */
export async function decodeJob(w: Whisper, job: Job, audio: string | Uint8Array, sink: JobSink, opts: DecodeJobOptions): Promise<void> {
  const { signal } = opts;
  const decoded = await decodeAudio(audio, {
    signal,
    ...(opts.maxAudioSeconds ? { maxDurationS: opts.maxAudioSeconds } : {}),
    ...(job.request.raw ? { raw: job.request.raw } : {}),
  });
  // Below every request and stream, in the queue and in the scheduler alike (engine/priority.ts).
  await w.queue.run((runner) => transcribeJob({ ...w, runner }, job, decoded.samples, decoded.durationS, sink, opts), {
    signal,
    priority: jobPriority(decoded.samples.length),
  });
}

/** Waits for an answer of the sink; false (the job is not this run's any more) stops the run. */
async function must(a: Answer): Promise<void> {
  if (!(await a)) throw JOB_CANCELLED;
}

async function transcribeJob(w: Whisper, job: Job, samples: Float32Array, duration: number, sink: JobSink, opts: DecodeJobOptions): Promise<void> {
  const { signal } = opts;
  const r = job.request;
  const resumed = job.nextSeek > 0 || job.previousTokens !== null;
  let pending: Segment[] = [];
  // Asynchronous window saves in flight (in call order), and the first failure among them.
  const saves: Array<Promise<void>> = [];
  let failure: unknown;
  const options: VadTranscribeOptions = {
    task: r.task,
    vadFilter: r.vadFilter,
    signal,
    ...(opts.sampleLen !== undefined ? { sampleLen: opts.sampleLen } : {}),
    // A resumed run keeps the language the first run detected.
    ...((job.language ?? r.language) !== undefined ? { language: (job.language ?? r.language)! } : {}),
    ...(r.temperature !== undefined ? { temperature: r.temperature } : {}),
    ...(r.prompt !== undefined ? { initialPrompt: r.prompt } : {}),
    ...(resumed ? { startSeek: job.nextSeek, previousTokens: job.previousTokens ?? undefined } : {}),
    onProgress: (done, _total, resume) => {
      if (failure !== undefined) throw failure;
      const answer = sink.saveWindow(job, pending, resume, done);
      pending = [];
      if (typeof answer === 'boolean') {
        if (!answer) throw JOB_CANCELLED;
        opts.onWindow?.();
        return;
      }
      saves.push(
        answer.then(
          (ok) => {
            if (!ok) failure ??= JOB_CANCELLED;
            else opts.onWindow?.();
          },
          (e: unknown) => {
            failure ??= e;
          },
        ),
      );
    },
  };
  // From here a crash costs the job its window: the mark lets the next run count it.
  await must(sink.enterWindow(job));
  opts.onStart?.(resumed);
  const run = await transcribeWithVad(w, samples, options);
  await must(sink.setAudioInfo(job, { duration, language: run.language, languageProbability: run.languageProbability }));
  for await (const s of run.segments) {
    signal.throwIfAborted();
    if (failure !== undefined) throw failure;
    pending.push(s);
  }
  signal.throwIfAborted();
  await Promise.all(saves);
  if (failure !== undefined) throw failure;
  const completed = sink.complete(job, Date.now(), pending);
  if (typeof completed === 'boolean' ? !completed : !(await completed)) throw JOB_CANCELLED;
  opts.onCompleted?.();
}
