// Renders a transcription in the response formats OpenAI's audio API and the CLI offer:
// text, json, verbose_json, srt and vtt. The server and the CLI both call this one module.
import type { Segment, Transcription } from '../decoding/segment.ts';
import { languageName } from '../decoding/languages.ts';
import { timecode } from './timecode.ts';

export const RESPONSE_FORMATS = ['text', 'json', 'verbose_json', 'srt', 'vtt'] as const;
export type ResponseFormat = (typeof RESPONSE_FORMATS)[number];

/** Cue text: one line per source line, with nothing that a subtitle parser would take as syntax. */
function cueText(text: string): string {
  return text
    .trim()
    .replace(/-->/g, '->')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .join('\n');
}

function cues(segments: readonly Segment[]): Segment[] {
  return segments.filter((s) => cueText(s.text).length > 0);
}

export function toSrt(segments: readonly Segment[]): string {
  return cues(segments)
    .map((s, i) => `${i + 1}\n${timecode(s.start, ',')} --> ${timecode(s.end, ',')}\n${cueText(s.text)}\n`)
    .join('\n');
}

export function toVtt(segments: readonly Segment[]): string {
  const body = cues(segments)
    .map((s) => `${timecode(s.start, '.')} --> ${timecode(s.end, '.')}\n${cueText(s.text)}\n`)
    .join('\n');
  return `WEBVTT\n\n${body}`;
}

export interface RenderOptions {
  /**
   * verbose_json: every word in one top-level `words` array as OpenAI's API gives it with
   * `timestamp_granularities[]=word` (`{word, start, end}`, the word trimmed), instead of each
   * segment carrying its own `words` as openai/whisper's CLI writes them.
   */
  topLevelWords?: boolean;
}

/**
 * OpenAI's verbose_json: language as a lower-case English name, segments as openai/whisper makes
 * them (with their `words` when they were timed), or the words at the top (see RenderOptions).
 */
export function toVerboseJson(t: Transcription, opts: RenderOptions = {}): object {
  return {
    task: t.task,
    language: languageName(t.language) ?? t.language,
    duration: t.duration,
    text: t.text,
    ...(opts.topLevelWords
      ? { words: t.segments.flatMap((s) => (s.words ?? []).map((w) => ({ word: w.word.trim(), start: w.start, end: w.end }))) }
      : {}),
    segments: t.segments.map((s) => ({
      id: s.id,
      seek: s.seek,
      start: s.start,
      end: s.end,
      text: s.text,
      tokens: s.tokens,
      temperature: s.temperature,
      avg_logprob: s.avg_logprob,
      compression_ratio: s.compression_ratio,
      no_speech_prob: s.no_speech_prob,
      ...(s.words && !opts.topLevelWords ? { words: s.words.map((w) => ({ word: w.word, start: w.start, end: w.end })) } : {}),
    })),
  };
}

/** The body for `format`, as a string; JSON formats end without a newline, text formats with one. */
export function render(t: Transcription, format: ResponseFormat, opts: RenderOptions = {}): string {
  switch (format) {
    case 'text':
      return `${t.text.trim()}\n`;
    case 'json':
      return JSON.stringify({ text: t.text.trim() });
    case 'verbose_json':
      return JSON.stringify(toVerboseJson(t, opts));
    case 'srt':
      return toSrt(t.segments);
    case 'vtt':
      return toVtt(t.segments);
  }
}
