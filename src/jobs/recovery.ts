// What a restart does before taking jobs again: jobs the previous process left running go back to
// the queue (their stored segments and seek kept, so they resume from the window they reached),
// and audio files that belong to no unfinished job are deleted.
import type { JobAudio } from './audio-files.ts';
import type { JobStore } from './store.ts';

export interface Recovered {
  /** Jobs that were running when the previous process stopped. */
  requeued: string[];
  /** Files removed from the audio directory. */
  orphans: string[];
}

export async function recoverJobs(store: JobStore, audio: JobAudio): Promise<Recovered> {
  const requeued = store.requeueInterrupted();
  const orphans = await audio.sweep(store.unfinishedIds());
  return { requeued, orphans };
}
