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

/** OpenAI's verbose_json: language as a lower-case English name, segments as openai/whisper makes them. */
export function toVerboseJson(t: Transcription): object {
  return {
    task: t.task,
    language: languageName(t.language) ?? t.language,
    duration: t.duration,
    text: t.text,
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
    })),
  };
}

/** The body for `format`, as a string; JSON formats end without a newline, text formats with one. */
export function render(t: Transcription, format: ResponseFormat): string {
  switch (format) {
    case 'text':
      return `${t.text.trim()}\n`;
    case 'json':
      return JSON.stringify({ text: t.text.trim() });
    case 'verbose_json':
      return JSON.stringify(toVerboseJson(t));
    case 'srt':
      return toSrt(t.segments);
    case 'vtt':
      return toVtt(t.segments);
  }
}
