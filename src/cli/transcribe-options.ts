// The options of `earshot transcribe`, checked once before any work starts. Commander hands over
// strings; this schema turns them into typed values or throws one EarshotError whose message names
// the flag, the value given and what was expected, so a typo costs one line and no model load.
import { z } from 'zod';
import { DEFAULT_MAX_DURATION_S } from '../audio/index.ts';
import { resolveLanguage } from '../decoding/languages.ts';
import { DEVICES } from '../engine/execution.ts';
import { MAX_SAMPLE_LEN } from '../decoding/sot.ts';
import { EarshotError } from '../errors.ts';
import { DEFAULT_ZH_SCRIPT, ZH_SCRIPTS } from '../output/chinese.ts';
import type { ResponseFormat } from '../output/formats.ts';


export const CLI_FORMATS = ['txt', 'srt', 'vtt', 'json', 'verbose_json'] as const;
export type CliFormat = (typeof CLI_FORMATS)[number];

/** The renderer behind each --format, and the extension of the files it writes. */
export const FORMAT_OUTPUT: Readonly<Record<CliFormat, { render: ResponseFormat; ext: string }>> = {
  txt: { render: 'text', ext: 'txt' },
  srt: { render: 'srt', ext: 'srt' },
  vtt: { render: 'vtt', ext: 'vtt' },
  json: { render: 'json', ext: 'json' },
  verbose_json: { render: 'verbose_json', ext: 'json' },
};

/** Defaults as commander shows them in --help; the schema parses them like any typed value. */
export const DEFAULTS = {
  model: 'base',
  language: 'auto',
  task: 'transcribe',
  format: 'txt',
  device: 'cpu',
  maxDuration: String(DEFAULT_MAX_DURATION_S),
  zh: DEFAULT_ZH_SCRIPT,
} as const;

/** --device's help, shared by transcribe and eval. */
export const DEVICE_HELP =
  'cpu; cuda (needs the CUDA provider, see the README); webgpu (any GPU with a Vulkan driver, see the README); ' +
  'or auto (CUDA if installed, else WebGPU on a hardware GPU, else the CPU)';

/** The option names as commander stores them, mapped to the flag the user typed. */
export const FLAGS: Record<string, string> = {
  model: '--model',
  dtype: '--dtype',
  language: '--language',
  task: '--task',
  format: '--format',
  outputDir: '--output-dir',
  beamSize: '--beam-size',
  bestOf: '--best-of',
  sampleLen: '--sample-len',
  temperature: '--temperature',
  prompt: '--prompt',
  conditionOnPreviousText: '--no-condition-on-previous-text',
  vadFilter: '--no-vad-filter',
  threads: '--threads',
  device: '--device',
  maxDuration: '--max-duration',
  zh: '--zh',
  wordTimestamps: '--word-timestamps',
};

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { error: `expected a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(z.number().min(min, { error: `expected a whole number from ${min} to ${max}` }).max(max, { error: `expected a whole number from ${min} to ${max}` }));

const decimal = (what: string, check: (n: number) => boolean) =>
  z
    .string()
    .trim()
    .regex(/^(\d+(\.\d*)?|\.\d+)$/, { error: `expected ${what}` })
    .transform(Number)
    .refine(check, { error: `expected ${what}` });

const nonEmpty = z.string().trim().min(1, { error: 'expected a non-empty value' });

/** Every option of `transcribe`; other commands `.pick()` the ones they share. */
export const transcribeOptionsSchema = z.object({
  model: nonEmpty,
  dtype: nonEmpty.optional(),
  language: nonEmpty.transform((s) => s.toLowerCase()),
  task: z.enum(['transcribe', 'translate'], { error: 'expected transcribe or translate' }),
  format: z.enum(CLI_FORMATS, { error: `expected one of ${CLI_FORMATS.join(', ')}` }),
  outputDir: nonEmpty.optional(),
  beamSize: wholeNumber(1, 64).optional(),
  bestOf: wholeNumber(1, 64).optional(),
  sampleLen: wholeNumber(1, MAX_SAMPLE_LEN).optional(),
  temperature: decimal('a number from 0 to 1', (n) => n >= 0 && n <= 1).optional(),
  prompt: z.string().optional(),
  conditionOnPreviousText: z.boolean(),
  vadFilter: z.boolean(),
  threads: wholeNumber(0, 1024).optional(),
  device: z.enum(DEVICES, { error: `expected one of ${DEVICES.join(', ')}` }),
  maxDuration: decimal('a positive number of seconds', (n) => n > 0 && Number.isFinite(n)),
  zh: z.enum(ZH_SCRIPTS, { error: `expected one of ${ZH_SCRIPTS.join(', ')}` }),
  wordTimestamps: z.boolean().default(false),
});

export type TranscribeCliOptions = z.output<typeof transcribeOptionsSchema>;

/**
 * Validates commander's raw option values against `schema` (this file's, or a command's own built
 * from its pieces); throws `invalid_argument/bad_option` naming the flag of the first bad one.
 */
export function parseCliOptions<S extends z.ZodType<{ language?: string }>>(
  schema: S,
  raw: Record<string, unknown>,
  flags: Readonly<Record<string, string>> = FLAGS,
): z.output<S> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const given = raw[key];
    const shown = typeof given === 'string' ? ` "${given}"` : '';
    throw new EarshotError('invalid_argument', 'bad_option', `invalid ${flags[key] ?? key}${shown}: ${issue.message}`);
  }
  if (r.data.language !== undefined && r.data.language !== 'auto') {
    try {
      resolveLanguage(r.data.language);
    } catch (e) {
      throw new EarshotError('invalid_argument', 'bad_option', `invalid --language: ${(e as Error).message}`);
    }
  }
  return r.data;
}

/** Validates the options of `earshot transcribe`. */
export function parseTranscribeOptions(raw: Record<string, unknown>): TranscribeCliOptions {
  return parseCliOptions(transcribeOptionsSchema, raw);
}
