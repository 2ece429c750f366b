// The text fields of /v1/audio/transcriptions and /v1/audio/translations, as OpenAI's API defines
// them, checked with zod into typed values. A bad field is a 400 that names it; fields OpenAI
// defines that earshot does not use (e.g. `include[]`, `chunking_strategy`) are ignored, as are
// unknown ones, so clients written for newer API versions keep working.
import { z } from 'zod';
import { resolveLanguage } from '../decoding/languages.ts';
import { RESPONSE_FORMATS, type ResponseFormat } from '../output/formats.ts';
import { paramError } from './http-errors.ts';

export interface AudioParams {
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
}

const truthy = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0'], { error: 'expected true or false' }))
  .transform((s) => s === 'true' || s === '1');

const fieldSchemas = {
  model: z.string().trim().min(1, { error: 'expected a model id such as whisper-1' }),
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
    model: field(fields, 'model'),
    language,
    prompt: field(fields, 'prompt') || undefined,
    temperature: temperature === undefined || temperature === 0 ? undefined : temperature,
    responseFormat,
    wordTimestamps,
    stream: field(fields, 'stream') ?? false,
    vadFilter: field(fields, 'vad_filter'),
  };
}
