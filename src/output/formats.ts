// Renders a transcription in the response formats OpenAI's audio API and the CLI offer:
// text, json, verbose_json, srt and vtt. The server and the CLI both call this one module.
import type { Segment, Transcription } from '../decoding/transcription.ts';
import { languageName } from '../decoding/languages.ts';
import { toSrt, toVtt } from './subtitles.js';

export const RESPONSE_FORMATS = ['text', 'json', 'verbose_json', 'srt', 'vtt'] as const;
export type ResponseFormat = (typeof RESPONSE_FORMATS)[number];

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
