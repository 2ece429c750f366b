// The protocol of synchronous requests through the cluster, shared by the API node
// (cluster-transcriber.ts) and the worker (request-consumer.ts):
// - one BullMQ queue per model, `requests-<model id>` (BullMQ forbids ':' in queue names), whose
//   jobs carry the request's options; shorter audio has the higher BullMQ priority, as in one
//   process (engine/priority.ts);
// - the decoded audio (float32 samples) stored as an upload (uploads.ts: chunked keys with a TTL)
//   under the request's id, deleted when the request ends;
// - the answer on a pub/sub channel of the request's own that only its API node listens to: `start`,
//   each `segment` as it is decoded, then `done` or `error`. Nothing of the transcript is stored
//   in Redis. A publish that reaches nobody tells the worker that its API node is gone;
// - a cancellation broadcast (the client left): the worker decoding that request stops.
import { EarshotError, type ErrorKind, isEarshotError } from '../errors.ts';
import type { Segment } from '../decoding/transcription.ts';
import type { RequestOptions, RunResult } from '../runtime/transcriber.ts';
import { KEY_PREFIX } from './redis.ts';

export const requestQueueName = (modelId: string): string => `requests-${encodeURIComponent(modelId)}`;
export const replyChannel = (requestId: string): string => `${KEY_PREFIX}:reply:${requestId}`;
export const CANCEL_CHANNEL = `${KEY_PREFIX}:requests:cancel`;

/** What a request's BullMQ job carries (the audio is the upload under the job's id). */
export interface RequestData {
  options: RequestOptions;
  /** Whether the API node wants each segment as it is decoded (stream=true). */
  stream: boolean;
}

export type Reply =
  | { type: 'start' }
  | { type: 'segment'; segment: Segment }
  | { type: 'done'; result: RunResult }
  | { type: 'error'; error: { kind: ErrorKind; code: string; message: string; param?: string } };

/** An error as it crosses to the API node: a typed error keeps its kind, code and param (the same HTTP answer as in one process). */
export function errorReply(e: unknown): Reply {
  if (isEarshotError(e)) return { type: 'error', error: { kind: e.kind, code: e.code, message: e.message, ...(e.param !== undefined ? { param: e.param } : {}) } };
  return { type: 'error', error: { kind: 'internal', code: 'worker_failed', message: `the worker failed: ${e instanceof Error ? e.message : String(e)}` } };
}

export function replyError(r: Extract<Reply, { type: 'error' }>): EarshotError {
  return new EarshotError(r.error.kind, r.error.code, r.error.message, { param: r.error.param });
}

/** Samples as bytes for Redis (a view, no copy), and back (a copy: Redis's buffer may be unaligned). */
export function samplesToBytes(samples: Float32Array): Buffer {
  return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
}

export function bytesToSamples(bytes: Buffer): Float32Array {
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
