// The one loader of the server's configuration. Four sources, each overriding the one before:
// built-in defaults < a JSON config file (`--config` / EARSHOT_CONFIG) < EARSHOT_* environment
// variables < command-line flags. Everything is validated once, here, with zod; the rest of the
// server only ever sees a typed ServerConfig. API keys are the exception to "override": keys from
// every source (flags, EARSHOT_API_KEYS, the config file, a keys file) are all accepted together.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_MAX_DURATION_S } from '../audio/index.ts';
import { EarshotError } from '../errors.ts';

/** Half the decoder's 448 positions, as openai/whisper: the other half is kept for the prompt. */
const MAX_SAMPLE_LEN = 224;

const number = (min: number, max: number, int = false) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' ? Number(v.trim()) : v),
    (int ? z.number().int() : z.number()).min(min).max(max),
  );

const boolean = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  return v;
}, z.boolean());

/** A duration in seconds: a number, or a string with a unit (`90s`, `30m`, `12h`, `7d`). */
const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };
const duration = (min: number, max: number) =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/i.exec(v);
    return m ? Number(m[1]) * DURATION_UNITS[(m[2] || 's').toLowerCase()]! : v;
  }, z.number({ error: 'expected seconds, or a number with s, m, h or d' }).min(min).max(max));

/** A list, from an array (file, repeatable flag) or a comma-separated string (environment). */
const list = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',') : v),
  z.array(z.string().trim()).transform((a) => a.filter((s) => s.length > 0)),
);

export const serverConfigSchema = z.strictObject({
  /** Address to listen on; anything but loopback needs an API key (or insecureNoAuth). */
  host: z.string().trim().min(1).default('127.0.0.1'),
  /** 0 picks a free port (tests). */
  port: number(0, 65535, true).default(8000),
  apiKeys: list.default([]),
  /** A file with one API key per line (blank lines and `#` comments skipped). */
  apiKeysFile: z.string().trim().min(1).optional(),
  /** Allow listening beyond loopback without any key. */
  insecureNoAuth: boolean.default(false),
  /** Origins allowed by CORS; empty = CORS off. `*` allows any. */
  corsOrigins: list.default([]),
  /** Catalogue name, hub repository id or model folder. */
  model: z.string().trim().min(1).default('base'),
  /** More models served beside the default one, chosen by a request's `model`: `[id=]model[@dtype]` each. */
  extraModels: list.default([]),
  /** Seconds a model may stay idle before it is unloaded (the next request loads it again); 0 = never. */
  modelTtlS: number(0, 1e7).default(0),
  /** The id clients see for the model (default: its catalogue name or repository id, or the folder's name). */
  modelId: z.string().trim().min(1).optional(),
  dtype: z.string().trim().min(1).optional(),
  device: z.enum(['cpu', 'cuda', 'auto']).default('cpu'),
  /** Threads inside one operator; 0 lets onnxruntime pick. */
  threads: number(0, 1024, true).default(0),
  /** Largest accepted upload, bytes. */
  maxUploadBytes: number(1, 2 ** 40, true).default(200 * 1000 * 1000),
  /** Longest accepted audio, seconds. */
  maxAudioSeconds: number(0.001, 1e7).default(DEFAULT_MAX_DURATION_S),
  /** Longest a request may take from its first byte to its last, seconds. */
  requestTimeoutS: number(1, 1e6).default(3600),
  /** Requests that may wait for the model beyond the one running; more get 429. */
  queueSize: number(0, 100000, true).default(64),
  /** Most tokens decoded per 30 s window. */
  sampleLen: number(1, MAX_SAMPLE_LEN, true).default(MAX_SAMPLE_LEN),
  /** How long in-flight requests get to finish after SIGTERM, seconds. */
  shutdownTimeoutS: number(0, 86400).default(30),
  /** Log transcript text (never logged otherwise). */
  logContent: boolean.default(false),
  /** Requests per minute per API key (per address without keys); 0 = no limit. Over it: 429. */
  rateLimitRpm: number(0, 1e9, true).default(0),
  /** WebSocket streams open at once per API key (per address without keys); 0 = no limit. */
  maxStreamsPerKey: number(0, 1e6, true).default(0),
  /** PEM certificate (chain) and private key: serve HTTPS (and wss://). Both or neither. */
  tlsCert: z.string().trim().min(1).optional(),
  tlsKey: z.string().trim().min(1).optional(),
  /** Where async jobs are kept (jobs.db, the audio of unfinished jobs); default $EARSHOT_HOME/data. */
  dataDir: z.string().trim().min(1).optional(),
  /** How long a finished job and its result are kept, seconds (also `12h`, `7d`…). */
  jobRetentionS: duration(1, 10 * 365 * 86400).default(7 * 86400),
  /** Async jobs transcribed at once; the others wait in the job store. */
  jobConcurrency: number(1, 64, true).default(1),
  /** Jobs that may be queued or running at once; more submissions get 429. */
  jobQueueSize: number(1, 1e7, true).default(1000),
  /** Decode only the speech Silero VAD finds in an upload (a request's `vad_filter` field overrides it). */
  vadFilter: boolean.default(true),
  /** Most WebSocket streams open at once (/v1/realtime, /v1/stream); more are refused (close 1013). */
  maxStreams: number(0, 10000, true).default(16),
  /** Silence that ends an utterance in a stream, ms. */
  streamSilenceMs: number(100, 10000, true).default(500),
  /** How often a stream's partial hypothesis is re-decoded, ms of audio. */
  streamPartialIntervalMs: number(100, 60000, true).default(500),
  /** Largest WebSocket message a stream accepts, bytes. */
  streamMaxMessageBytes: number(1024, 64 * 1024 * 1024, true).default(1024 * 1024),
});

export type ServerConfig = z.output<typeof serverConfigSchema>;
export type ServerConfigInput = z.input<typeof serverConfigSchema>;

/** The environment variable of each setting. */
export const ENV_VARS: Readonly<Record<keyof ServerConfig, string>> = {
  host: 'EARSHOT_HOST',
  port: 'EARSHOT_PORT',
  apiKeys: 'EARSHOT_API_KEYS',
  apiKeysFile: 'EARSHOT_API_KEYS_FILE',
  insecureNoAuth: 'EARSHOT_INSECURE_NO_AUTH',
  corsOrigins: 'EARSHOT_CORS_ORIGINS',
  model: 'EARSHOT_MODEL',
  modelId: 'EARSHOT_MODEL_ID',
  extraModels: 'EARSHOT_EXTRA_MODELS',
  modelTtlS: 'EARSHOT_MODEL_TTL',
  dtype: 'EARSHOT_DTYPE',
  device: 'EARSHOT_DEVICE',
  threads: 'EARSHOT_THREADS',
  maxUploadBytes: 'EARSHOT_MAX_UPLOAD_BYTES',
  maxAudioSeconds: 'EARSHOT_MAX_AUDIO_SECONDS',
  requestTimeoutS: 'EARSHOT_REQUEST_TIMEOUT',
  queueSize: 'EARSHOT_QUEUE_SIZE',
  sampleLen: 'EARSHOT_SAMPLE_LEN',
  shutdownTimeoutS: 'EARSHOT_SHUTDOWN_TIMEOUT',
  logContent: 'EARSHOT_LOG_CONTENT',
  rateLimitRpm: 'EARSHOT_RATE_LIMIT_RPM',
  maxStreamsPerKey: 'EARSHOT_MAX_STREAMS_PER_KEY',
  tlsCert: 'EARSHOT_TLS_CERT',
  tlsKey: 'EARSHOT_TLS_KEY',
  dataDir: 'EARSHOT_DATA_DIR',
  jobRetentionS: 'EARSHOT_JOB_RETENTION',
  jobConcurrency: 'EARSHOT_JOB_CONCURRENCY',
  jobQueueSize: 'EARSHOT_JOB_QUEUE_SIZE',
  vadFilter: 'EARSHOT_VAD_FILTER',
  maxStreams: 'EARSHOT_MAX_STREAMS',
  streamSilenceMs: 'EARSHOT_STREAM_SILENCE_MS',
  streamPartialIntervalMs: 'EARSHOT_STREAM_PARTIAL_INTERVAL_MS',
  streamMaxMessageBytes: 'EARSHOT_STREAM_MAX_MESSAGE_BYTES',
};
export const CONFIG_FILE_ENV = 'EARSHOT_CONFIG';

export interface ConfigSources {
  /** Values from the command line (undefined = not given). */
  flags?: Partial<Record<keyof ServerConfig, unknown>>;
  env?: NodeJS.ProcessEnv;
  /** A JSON config file; default: $EARSHOT_CONFIG. */
  configFile?: string;
}

function badConfig(message: string, cause?: unknown): EarshotError {
  return new EarshotError('invalid_argument', 'bad_config', message, cause === undefined ? undefined : { cause });
}

function readJsonFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw badConfig(`cannot read config file ${path}: ${(e as Error).message}`, e);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw badConfig(`config file ${path} is not valid JSON: ${(e as Error).message}`, e);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw badConfig(`config file ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Keys in a keys file: one per line, blank lines and `#` comments skipped. */
export function readKeysFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw badConfig(`cannot read API keys file ${path}: ${(e as Error).message}`, e);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Builds the effective configuration from all sources and validates it. Throws an
 * `invalid_argument` EarshotError naming the setting (and where it came from) on the first problem,
 * and refuses a non-loopback address without any API key unless insecureNoAuth is set.
 */
export function loadServerConfig(sources: ConfigSources = {}): ServerConfig {
  const env = sources.env ?? process.env;
  const flags = defined(sources.flags ?? {});
  const filePath = sources.configFile ?? (env[CONFIG_FILE_ENV]?.trim() || undefined);
  const file = filePath ? readJsonFile(filePath) : {};
  const fromEnv: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v !== undefined && v.trim() !== '') fromEnv[key] = v;
  }
  // Each source is checked alone first, so an error can say where the bad value came from.
  const parts: Array<[string, Record<string, unknown>]> = [
    [filePath ? `config file ${filePath}` : 'config file', file],
    ['environment', fromEnv],
    ['command line', flags],
  ];
  for (const [where, values] of parts) {
    const r = serverConfigSchema.partial().safeParse(values);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const key = String(issue.path[0] ?? '');
      const name = where === 'environment' ? (ENV_VARS[key as keyof ServerConfig] ?? key) : key;
      throw badConfig(`invalid setting ${name} (${where}): ${issue.message}`);
    }
  }
  const merged = { ...file, ...fromEnv, ...flags };
  const keys = [file.apiKeys, fromEnv.apiKeys, flags.apiKeys].flatMap((k) => list.parse(k ?? []));
  const keysFile = (merged.apiKeysFile as string | undefined)?.trim();
  if (keysFile) keys.push(...readKeysFile(keysFile));
  const r = serverConfigSchema.safeParse({ ...merged, apiKeys: [...new Set(keys)] });
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw badConfig(`invalid setting ${issue.path.join('.')}: ${issue.message}`);
  }
  const config = r.data;
  if (!config.tlsCert !== !config.tlsKey) throw badConfig('TLS needs both tlsCert (--tls-cert) and tlsKey (--tls-key)');
  if (!isLoopback(config.host) && config.apiKeys.length === 0 && !config.insecureNoAuth) {
    throw new EarshotError(
      'invalid_argument',
      'auth_required',
      `refusing to listen on ${config.host} without an API key: give one with --api-key, ${ENV_VARS.apiKeys} or --api-keys-file (or pass --insecure-no-auth to allow anyone who can reach the port)`,
    );
  }
  return config;
}

/** The configuration as it may be logged: keys replaced by a count. */
export function maskedConfig(config: ServerConfig): Record<string, unknown> {
  return { ...config, apiKeys: `${config.apiKeys.length} key(s), masked` };
}
