// What a restart does before taking jobs again: jobs the previous process left running go back to
// the queue (their stored segments and seek kept, so they resume from the window they reached),
// unless crashes kept costing one the same window (store.recoverInterrupted says which count), and
// audio files that belong to no unfinished job are deleted.
import type { JobAudio } from './audio-files.ts';
import type { JobStore } from './store.ts';

export interface Recovered {
  /** Jobs that were running when the previous process stopped, queued again. */
  requeued: string[];
  /** Jobs failed for too many interruptions without progress (`too_many_attempts`). */
  failed: string[];
  /** Files removed from the audio directory. */
  orphans: string[];
}

/** Interruptions without progress a job may have and still be run again (a fourth fails it). */
export const MAX_INTERRUPTIONS = 3;

export async function recoverJobs(store: JobStore, audio: JobAudio, now = Date.now()): Promise<Recovered> {
  const { requeued, failed } = store.recoverInterrupted(MAX_INTERRUPTIONS, now);
  const orphans = await audio.sweep(store.unfinishedIds());
  return { requeued, failed, orphans };
}
