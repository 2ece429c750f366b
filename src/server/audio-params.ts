// The text fields of /v1/audio/transcriptions and /v1/audio/translations, as OpenAI's API defines
// them, checked with zod into typed values. A bad field is a 400 that names it; fields OpenAI
// defines that earshot does not use (e.g. `include[]`, `chunking_strategy`) are ignored, as are
// unknown ones, so clients written for newer API versions keep working. earshot's own fields:
// `vad_filter`, and `input_format` + `sample_rate` for headerless PCM (it has no header to sniff).
import { z } from 'zod';
import type { RawPcmFormat } from '../audio/index.ts';
import { resolveLanguage } from '../decoding/languages.ts';
import { RESPONSE_FORMATS, type ResponseFormat } from '../output/formats.ts';
import { paramError } from './http-errors.ts';

export interface AudioParams {
  /** undefined (no field, or an empty one) = the default model. */
  model: string | undefined;
  /** ISO code; undefined = detect (transcriptions only). */
  language: string | undefined;
  prompt: string | undefined;
  /** 0 (or none) = openai/whisper's fallback ladder; above 0 = that one temperature. */
  temperature: number | undefined;
  responseFormat: ResponseFormat;
  stream: boolean;
  /** earshot's own field: decode only speech (undefined = the server's default). */
  vadFilter: boolean | undefined;
  /** `timestamp_granularities[]` includes `word` (verbose_json only). */
  wordTimestamps: boolean;
  /** earshot's own fields `input_format` and `sample_rate`: the file is headerless PCM of this layout. */
  raw: RawPcmFormat | undefined;
}

/** Headerless PCM layouts an upload may declare, as /v1/stream names them. */
const RAW_FORMATS = { s16le: 'pcm_s16le', f32le: 'pcm_f32le' } as const;
/** The sample rates /v1/stream accepts too. */
const MIN_RAW_RATE = 8000;
const MAX_RAW_RATE = 192000;

const truthy = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0'], { error: 'expected true or false' }))
  .transform((s) => s === 'true' || s === '1');

const fieldSchemas = {
  model: z.string().trim(),
  language: z.string().trim().min(1, { error: 'expected a language code such as "en"' }),
  prompt: z.string(),
  temperature: z
    .string()
    .trim()
    .regex(/^(\d+(\.\d*)?|\.\d+)$/, { error: 'expected a number from 0 to 1' })
    .transform(Number)
    .pipe(z.number().min(0, { error: 'expected a number from 0 to 1' }).max(1, { error: 'expected a number from 0 to 1' })),
  response_format: z.enum(RESPONSE_FORMATS, { error: `expected one of ${RESPONSE_FORMATS.join(', ')}` }),
  stream: truthy,
  vad_filter: truthy,
  input_format: z.enum(Object.keys(RAW_FORMATS) as ['s16le', 'f32le'], { error: 'expected s16le or f32le (headerless PCM; leave it out for any file with a header)' }),
  sample_rate: z
    .string()
    .trim()
    .regex(/^\d+$/, { error: `expected a whole number of Hz from ${MIN_RAW_RATE} to ${MAX_RAW_RATE}` })
    .transform(Number)
    .pipe(z.number().min(MIN_RAW_RATE, { error: `expected a whole number of Hz from ${MIN_RAW_RATE} to ${MAX_RAW_RATE}` }).max(MAX_RAW_RATE, { error: `expected a whole number of Hz from ${MIN_RAW_RATE} to ${MAX_RAW_RATE}` })),
} as const;

type FieldName = keyof typeof fieldSchemas;

function one(fields: Map<string, string[]>, name: FieldName): string | undefined {
  const values = fields.get(name);
  if (!values) return undefined;
  if (values.length > 1) throw paramError('invalid_argument', 'repeated_field', name, `the field "${name}" was given more than once`);
  return values[0];
}

function field<N extends FieldName>(fields: Map<string, string[]>, name: N): z.output<(typeof fieldSchemas)[N]> | undefined {
  const raw = one(fields, name);
  if (raw === undefined) return undefined;
  const r = fieldSchemas[name].safeParse(raw);
  if (!r.success) {
    throw paramError('invalid_argument', 'invalid_value', name, `invalid ${name} "${raw.slice(0, 100)}": ${r.error.issues[0]!.message}`);
  }
  return r.data as z.output<(typeof fieldSchemas)[N]>;
}

export function parseAudioParams(fields: Map<string, string[]>, task: 'transcribe' | 'translate'): AudioParams {
  const granularities = [...(fields.get('timestamp_granularities[]') ?? []), ...(fields.get('timestamp_granularities') ?? [])].map((g) =>
    g.trim().toLowerCase(),
  );
  for (const g of granularities) {
    if (g !== 'segment' && g !== 'word') {
      throw paramError('invalid_argument', 'invalid_value', 'timestamp_granularities[]', `invalid timestamp granularity "${g.slice(0, 100)}": expected segment or word`);
    }
  }
  const wordTimestamps = granularities.includes('word');
  let language: string | undefined;
  const lang = field(fields, 'language');
  if (task === 'transcribe' && lang !== undefined && lang.toLowerCase() !== 'auto') {
    try {
      language = resolveLanguage(lang);
    } catch (e) {
      throw paramError('invalid_argument', 'invalid_value', 'language', (e as Error).message);
    }
  }
  const temperature = field(fields, 'temperature');
  const responseFormat = field(fields, 'response_format') ?? 'json';
  // As OpenAI's API: the words are only part of verbose_json.
  if (wordTimestamps && responseFormat !== 'verbose_json') {
    throw paramError('invalid_argument', 'invalid_value', 'timestamp_granularities[]', 'word timestamps need response_format "verbose_json"');
  }
  return {
    model: field(fields, 'model') || undefined,
    language,
    prompt: field(fields, 'prompt') || undefined,
    temperature: temperature === undefined || temperature === 0 ? undefined : temperature,
    responseFormat,
    wordTimestamps,
    stream: field(fields, 'stream') ?? false,
    vadFilter: field(fields, 'vad_filter'),
    raw: rawFormat(fields),
  };
}

/** `input_format` and `sample_rate` go together: a rate guessed for headerless PCM would decode noise, and a rate alone means nothing. */
function rawFormat(fields: Map<string, string[]>): RawPcmFormat | undefined {
  const format = field(fields, 'input_format');
  const sampleRate = field(fields, 'sample_rate');
  if (format === undefined && sampleRate === undefined) return undefined;
  if (format === undefined) {
    throw paramError('invalid_argument', 'invalid_value', 'sample_rate', 'sample_rate is for headerless PCM: give input_format (s16le or f32le) with it, or leave both out for a file with a header');
  }
  if (sampleRate === undefined) {
    throw paramError('invalid_argument', 'invalid_value', 'sample_rate', `input_format ${format} is headerless PCM: give its sample_rate too (e.g. 16000)`);
  }
  return { sampleFormat: RAW_FORMATS[format], sampleRate };
}
