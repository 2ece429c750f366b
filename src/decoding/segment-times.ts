// earshot's one rule for segment times at the end of the audio. A short clip's last window is
// padded, and the model may place timestamps in the padding. openai/whisper keeps such times as
// they are (segments may run past the end of the file); earshot holds every time within the audio,
// and so that clamping never leaves a segment empty in time while it carries text, a segment that
// starts at or after the end of the audio is joined to the segment before it in its window (text,
// tokens and words appended), or, when it is its window's first, starts where its window starts:
// the audio the model heard for it.
import type { Segment } from './transcription.ts';

/** A segment before its id is given (ids are given after joining, so they stay consecutive). */
export type UnnumberedSegment = Omit<Segment, 'id'>;

/**
 * Applies the rule to one window's segments, in order. `windowStart` (seconds) is below
 * `duration` (a window starts inside the audio); times come back within [0, duration].
 */
export function fitToAudio(segments: readonly UnnumberedSegment[], windowStart: number, duration: number): UnnumberedSegment[] {
  const out: UnnumberedSegment[] = [];
  for (const s of segments) {
    const prev = out.at(-1);
    if (s.start >= duration && prev) {
      prev.text += s.text;
      prev.tokens = [...prev.tokens, ...s.tokens];
      if (prev.words || s.words) prev.words = [...(prev.words ?? []), ...(s.words ?? [])];
      prev.end = duration;
      continue;
    }
    const start = s.start >= duration ? Math.min(windowStart, duration) : s.start;
    out.push({ ...s, start, end: Math.min(Math.max(s.end, start), duration) });
  }
  for (const s of out) {
    if (s.words) s.words = s.words.map((w) => ({ ...w, start: Math.min(Math.max(w.start, s.start), s.end), end: Math.min(Math.max(w.end, s.start), s.end) }));
  }
  return out;
}
