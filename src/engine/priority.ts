// Who goes first: one number for each piece of model work, higher first. The work queue orders its
// waiting jobs by it and hands each job a runner at the same number (work-queue.ts), so the batch
// scheduler orders that job's model calls by it too: a queue ticket and its model calls can never
// disagree. Every rule is here.
import { TARGET_SAMPLE_RATE } from '../audio/types.ts';
import type { Lane } from './work-queue.ts';

/** A stream's final: someone is waiting for the end of what they said. */
export const STREAM_FINAL = 20;
/** A stream's final decoded early, on the VAD's tentative end (streaming/stream-finals.ts). */
export const STREAM_SPECULATION = 15;
/** A stream's partial hypothesis: nice to have, dropped when late. */
export const STREAM_PARTIAL = 10;

/**
 * The work queue's lane for a job of `priority` (null: none, only the queue's concurrency), given
 * how many stream jobs the device runs at once (`streamJobs`, batch-policy.ts's deviceBatchLimits).
 * Streams' work (partials, speculations, finals) shares one lane. On the CPU it holds one job: two
 * streams' decoder steps almost never share a run there (each forces its own committed prefix, so
 * their cache lengths differ) and the encoder takes one window a run, so stream jobs run side by
 * side only interleave: a partial's encoder run (which cannot be interrupted) lands in the gaps of
 * a final's job and delays it by that run. One at a time, a final waits at most for the job
 * running when it came, and not even that when it is a partial: the final withdraws it (the
 * partial says so with `preempt`, stream-partials.ts), so it waits for one model run at most.
 * Requests and jobs keep the queue's whole concurrency: their windows start alike and step together.
 */
export function laneOf(priority: number, streamJobs: number, concurrency: number): Lane | null {
  return priority >= STREAM_PARTIAL ? { name: 'streams', size: Math.min(streamJobs, concurrency) } : null;
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
