// The shapes of a durable transcription job, shared by the store, the runner and the HTTP route.
import type { RawPcmFormat } from '../audio/index.ts';
import type { ResponseFormat } from '../output/formats.ts';

/** What the API shows. `cancelled` is only ever an answer to DELETE: a cancelled job is deleted. */
export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
/** What a stored row can be. */
export type StoredStatus = Exclude<JobStatus, 'cancelled'>;

/** The request fields a job keeps until it runs (validated at submission, as for /v1/audio/transcriptions). */
export interface JobRequest {
  task: 'transcribe' | 'translate';
  language?: string;
  prompt?: string;
  temperature?: number;
  responseFormat: ResponseFormat;
  vadFilter: boolean;
  /** The upload is headerless PCM of this layout (the request's input_format and sample_rate). */
  raw?: RawPcmFormat;
}

export interface Job {
  id: string;
  /** Digest of the API key that created it ('' when the server has no keys). */
  owner: string;
  status: StoredStatus;
  model: string;
  filename: string;
  request: JobRequest;
  /** Unix milliseconds. */
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Crashes of the process that cost this job its window in progress since it last finished one. */
  interruptions: number;
  /** Whether a run is decoding the job's windows (a crash now would count as an interruption). */
  inWindow: boolean;
  /** Seconds of audio, once decoded. */
  duration: number | null;
  doneSeconds: number;
  language: string | null;
  languageProbability: number | null;
  /** Where a resumed run starts (mel frames) and the prompt it carries; null tokens = from the request's prompt. */
  nextSeek: number;
  previousTokens: number[] | null;
  error: { code: string; message: string } | null;
}

export interface NewJob {
  id: string;
  owner: string;
  model: string;
  filename: string;
  request: JobRequest;
  createdAt: number;
}
