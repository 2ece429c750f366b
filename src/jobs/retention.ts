// Finished jobs (completed or failed) are kept for the retention time after they finish, then
// deleted with their segments: transcripts are personal data and must not pile up forever.
import type { JobAudio } from './audio-files.ts';
import type { JobStore } from './store.ts';

/** Deletes the jobs that finished more than `retentionMs` before `now`; returns their ids. */
export async function purgeExpired(store: JobStore, audio: JobAudio, retentionMs: number, now = Date.now()): Promise<string[]> {
  const ids = store.purgeFinishedBefore(now - retentionMs);
  // A finished job's audio is normally gone already; this catches a crash between the two.
  for (const id of ids) await audio.remove(id);
  return ids;
}

/** Purges now and then every `everyMs` until the returned function is called. */
export function schedulePurge(store: JobStore, audio: JobAudio, retentionMs: number, everyMs: number, onError: (e: unknown) => void): () => void {
  const tick = () => void purgeExpired(store, audio, retentionMs).catch(onError);
  tick();
  const timer = setInterval(tick, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
