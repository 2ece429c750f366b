// A stream final's text and timed segments from its one window's tokens (stream-finals.ts). Unlike
// a file's windows (decoding/transcribe.ts), nothing of the window is dropped or left to a next
// window: the text is every text token, in order, so that it begins with the committed text forced
// at its start. The segments split it at the model's timestamp pairs as openai/whisper does, the
// unfinished tail after the last pair becomes a segment up to the end of the audio, and a segment
// whose times collapse to zero length (or fall in the padding past the audio) is merged into a
// neighbour rather than dropped, so no text is lost and no segment is empty in time.
import { splitWindow } from '../decoding/window-segments.ts';
import { TIME_PRECISION, type WhisperTokenizer } from '../decoding/tokenizer.ts';
import type { FinalSegment } from './stream-types.ts';

export interface FinalText {
  /** Every text token's text, trimmed. */
  text: string;
  /** Seconds from the start of the window; the text of each, untrimmed. */
  segments: FinalSegment[];
}

/** `tokens`: the window's sampled tokens (timestamps included); `duration`: seconds of audio in it. */
export function finalText(tok: WhisperTokenizer, tokens: readonly number[], duration: number): FinalText {
  const split = splitWindow(tokens, {
    timestampBegin: tok.timestampBegin,
    eot: tok.eot,
    segmentSize: Math.round(duration * 100),
    seek: 0,
  });
  const parts = split.segments.map((s) => ({ start: s.start, end: s.end, text: tok.decode(s.textTokens) }));
  const consumed = split.segments.reduce((n, s) => n + s.tokens.length, 0);
  if (consumed < tokens.length) {
    // The tail splitWindow leaves to a next window: it starts at the last pair's second timestamp.
    const tail = tokens.slice(consumed);
    const first = tail[0]! >= tok.timestampBegin ? (tail[0]! - tok.timestampBegin) * TIME_PRECISION : (parts.at(-1)?.end ?? 0);
    parts.push({ start: first, end: duration, text: tok.decode(tail.filter((t) => t < tok.eot)) });
  }
  const text = parts.map((p) => p.text).join('').trim();
  const segments: FinalSegment[] = [];
  let pending: FinalSegment | null = null;
  for (const p of parts) {
    const start = Math.min(p.start, duration);
    const s: FinalSegment = { start, end: Math.min(Math.max(p.end, start), duration), text: p.text };
    if (pending) {
      s.start = pending.start;
      s.text = pending.text + s.text;
      pending = null;
    }
    if (s.end > s.start) segments.push(s);
    else if (segments.length > 0) segments.at(-1)!.text += s.text;
    else pending = s;
  }
  if (pending) segments.push({ ...pending, end: duration });
  return { text, segments: segments.filter((s) => s.text.trim() !== '') };
}
