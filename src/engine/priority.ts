// Who goes first: one number for each piece of model work, higher first. The work queue orders its
// waiting jobs by it and hands each job a runner at the same number (work-queue.ts), so the batch
// scheduler orders that job's model calls by it too: a queue ticket and its model calls can never
// disagree. Every rule is here.
import { TARGET_SAMPLE_RATE } from '../audio/types.ts';

/** A stream's final: someone is waiting for the end of what they said. */
export const STREAM_FINAL = 20;
/** A stream's final decoded early, on the VAD's tentative end (streaming/stream-finals.ts). */
export const STREAM_SPECULATION = 15;
/** A stream's partial hypothesis: nice to have, dropped when late. */
export const STREAM_PARTIAL = 10;

/**
 * How many jobs of `priority` run at once, given how many of one stream kind the device runs
 * (`streamJobs`, batch-policy.ts's deviceBatchLimits) and the queue's `concurrency`. Streams' kinds
 * (partials, speculations, finals) get a lane each, so a final never waits for a queue full of
 * partials and a new partial never starts while another one runs where that does not pay: on the
 * CPU two streams' decoder steps almost never share a run (each forces its own committed prefix,
 * so their cache lengths differ) and the encoder takes one window a run, so running two partials
 * at once only interleaves them, and each holds the model while its audio goes stale.
 * Requests and jobs keep the queue's whole concurrency: their windows start alike and step together.
 */
export function laneOf(priority: number, streamJobs: number, concurrency: number): number {
  return priority >= STREAM_PARTIAL ? Math.min(streamJobs, concurrency) : concurrency;
}

/** Durable jobs come after every interactive request, whatever their lengths. */
const JOB_FLOOR = -1_000_000;

/** 30 s windows in `samples` of 16 kHz audio (at least 1). */
function windows(samples: number): number {
  return Math.max(1, Math.ceil(samples / (TARGET_SAMPLE_RATE * 30)));
}

/**
 * A file sent to the API and waited for: shorter audio first, so a few seconds sent while a long
 * file transcribes wait for one of the file's runs, not for its turn in a round robin.
 */
export function requestPriority(samples: number): number {
  return -windows(samples);
}

/** A durable job: after every request and stream; among jobs, shorter first. */
export function jobPriority(samples: number): number {
  return JOB_FLOOR - windows(samples);
}
