// What /v1/audio/transcriptions and /v1/jobs share about a transcript: the response body of a finished transcription in each response_format
// (formats.ts's rendering, plus OpenAI's `usage` in the JSON formats) with its content type.
import type { Transcription } from '../decoding/transcription.ts';
import { render, type RenderOptions, type ResponseFormat } from '../output/formats.ts';

export const CONTENT_TYPES: Readonly<Record<ResponseFormat, string>> = {
  json: 'application/json; charset=utf-8',
  verbose_json: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  srt: 'text/plain; charset=utf-8',
  vtt: 'text/vtt; charset=utf-8',
};

/** The body of a finished transcription: formats.ts's rendering, plus OpenAI's `usage` in JSON. */
export function transcriptBody(t: Transcription, format: ResponseFormat, opts: RenderOptions = {}): string {
  const rendered = render(t, format, opts);
  if (format !== 'json' && format !== 'verbose_json') return rendered;
  return JSON.stringify({ ...(JSON.parse(rendered) as object), usage: { type: 'duration', seconds: Math.ceil(t.duration) } });
}
