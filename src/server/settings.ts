// Every setting of `earshot serve`, declared once: its zod schema (type, bounds, default), its
// EARSHOT_* environment variable, its command-line flag and its help line. The config loader
// (config.ts), the serve command's options (cli/serve.ts), `--help` and the masked log of the
// effective configuration are all derived from this table, so a new setting is one entry here.
import { z } from 'zod';
import { DEFAULT_MAX_DURATION_S } from '../audio/index.ts';
import { MAX_SAMPLE_LEN } from '../decoding/sot.ts';
import { DEVICES } from '../engine/execution.ts';


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
export const list = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',') : v),
  z.array(z.string().trim()).transform((a) => a.filter((s) => s.length > 0)),
);

const text = () => z.string().trim().min(1);

export interface Setting<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** The EARSHOT_* environment variable. */
  env: string;
  /**
   * The `earshot serve` flag in commander's syntax: `--port <n>`; a boolean is `--name` (default
   * off) or `--no-name` (default on). A list's flag is repeatable.
   */
  flag: string;
  help: string;
  /** How --help shows the default when the schema's own default does not say it well. */
  shownDefault?: string;
  /** Never logged: the effective configuration shows a count instead. */
  secret?: boolean;
}

const setting = <S extends z.ZodType>(schema: S, env: string, flag: string, help: string, more: Pick<Setting, 'shownDefault' | 'secret'> = {}): Setting<S> => ({
  ...more,
  schema,
  env,
  flag,
  help,
});

export const SETTINGS = {
  host: setting(text().default('127.0.0.1'), 'EARSHOT_HOST', '--host <address>', 'address to listen on; anything but loopback needs an API key'),
  port: setting(number(0, 65535, true).default(8000), 'EARSHOT_PORT', '--port <n>', 'port; 0 picks a free one'),
  apiKeys: setting(list.default([]), 'EARSHOT_API_KEYS', '--api-key <key>', 'accept this API key (repeatable; the variable takes a comma-separated list)', { secret: true }),
  apiKeysFile: setting(text().optional(), 'EARSHOT_API_KEYS_FILE', '--api-keys-file <file>', 'file with one API key per line (blank lines and # comments skipped)'),
  adminKeys: setting(list.default([]), 'EARSHOT_ADMIN_KEYS', '--admin-key <key>', 'accept this admin API key: it may also load, unload and swap models (repeatable; the variable takes a comma-separated list)', { secret: true }),
  adminKeysFile: setting(text().optional(), 'EARSHOT_ADMIN_KEYS_FILE', '--admin-keys-file <file>', 'file with one admin API key per line (blank lines and # comments skipped)'),
  insecureNoAuth: setting(boolean.default(false), 'EARSHOT_INSECURE_NO_AUTH', '--insecure-no-auth', 'allow listening beyond loopback without any API key'),
  corsOrigins: setting(list.default([]), 'EARSHOT_CORS_ORIGINS', '--cors-origin <origin>', 'allow this browser origin (repeatable; * for any); CORS is off otherwise'),
  model: setting(text().default('base'), 'EARSHOT_MODEL', '--model <model>', 'catalogue name, hub repository id or model folder'),
  modelId: setting(text().optional(), 'EARSHOT_MODEL_ID', '--model-id <id>', 'the id clients see for the model (default: its catalogue name, repository id or folder name)'),
  extraModels: setting(list.default([]), 'EARSHOT_EXTRA_MODELS', '--extra-model <spec>', "serve another model too, chosen by the request's model field: [id=]model[@dtype] (repeatable)"),
  modelAliases: setting(list.default([]), 'EARSHOT_MODEL_ALIASES', '--model-alias <name=id>', "another name a request's model field may use for a hosted model's id (repeatable); whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe and default mean the default model unless re-pointed here"),
  modelTtlS: setting(number(0, 1e7).default(0), 'EARSHOT_MODEL_TTL', '--model-ttl <s>', 'unload a model idle this long; the next request loads it again (0: never)'),
  allowPull: setting(list.default([]), 'EARSHOT_ALLOW_PULL', '--allow-pull <pattern>', "hub repositories an admin load may download, as glob patterns such as 'onnx-community/whisper-*' (repeatable; the catalogue's are always allowed)", { shownDefault: "the catalogue's repositories" }),
  modelsDir: setting(text().optional(), 'EARSHOT_MODELS_DIR', '--models-dir <dir>', 'folder whose model folders an admin load may name (by their name in it); requests never name paths'),
  maxLoadedModels: setting(number(1, 1000, true).default(4), 'EARSHOT_MAX_LOADED_MODELS', '--max-loaded-models <n>', 'most models loaded at once; an admin load beyond it gets 409'),
  dtype: setting(text().optional(), 'EARSHOT_DTYPE', '--dtype <spec>', 'weights precision, e.g. fp32, q8 or "encoder=fp32,decoder=q8" (default: the model\'s; on a GPU, fp16 where the model has it)'),
  device: setting(z.enum(DEVICES).default('cpu'), 'EARSHOT_DEVICE', '--device <device>', 'cpu; cuda (needs the CUDA provider); webgpu (any GPU with a Vulkan driver); or auto (CUDA if installed, else WebGPU on a hardware GPU, else the CPU)'),
  threads: setting(number(0, 1024, true).default(0), 'EARSHOT_THREADS', '--threads <n>', 'threads per operator; 0 lets onnxruntime pick'),
  maxUploadBytes: setting(number(1, 2 ** 40, true).default(200 * 1000 * 1000), 'EARSHOT_MAX_UPLOAD_BYTES', '--max-upload-bytes <n>', 'largest accepted upload, bytes'),
  maxUploadMemoryBytes: setting(number(0, 2 ** 40, true).default(256 * 1024 * 1024), 'EARSHOT_MAX_UPLOAD_MEMORY', '--max-upload-memory <bytes>', 'upload bytes held in memory, all requests together; beyond it uploads go to a private temporary file'),
  maxAudioSeconds: setting(number(0.001, 1e7).default(DEFAULT_MAX_DURATION_S), 'EARSHOT_MAX_AUDIO_SECONDS', '--max-audio-seconds <s>', 'longest accepted audio'),
  requestTimeoutS: setting(number(1, 1e6).default(3600), 'EARSHOT_REQUEST_TIMEOUT', '--request-timeout <s>', 'longest a request may take from its first byte to its last'),
  bodyTimeoutS: setting(number(1, 1e6).default(30), 'EARSHOT_BODY_TIMEOUT', '--body-timeout <s>', 'a request body that sends less than --body-min-bytes in this long has its connection closed (408)'),
  bodyMinBytes: setting(number(0, 2 ** 40, true).default(1024), 'EARSHOT_BODY_MIN_BYTES', '--body-min-bytes <n>', 'least a request body must send per --body-timeout (0: no rate check)'),
  maxConnections: setting(number(1, 1e6, true).default(1024), 'EARSHOT_MAX_CONNECTIONS', '--max-connections <n>', 'client connections open at once (HTTP and WebSocket); more are closed on arrival'),
  queueSize: setting(number(0, 100000, true).default(64), 'EARSHOT_QUEUE_SIZE', '--queue-size <n>', 'requests that may wait for the model beyond the one running; more get 429'),
  sampleLen: setting(number(1, MAX_SAMPLE_LEN, true).default(MAX_SAMPLE_LEN), 'EARSHOT_SAMPLE_LEN', '--sample-len <n>', 'most tokens decoded per 30 s window'),
  shutdownTimeoutS: setting(number(0, 86400).default(30), 'EARSHOT_SHUTDOWN_TIMEOUT', '--shutdown-timeout <s>', 'how long requests in flight get to finish on SIGTERM'),
  logContent: setting(boolean.default(false), 'EARSHOT_LOG_CONTENT', '--log-content', 'log transcript text (never logged otherwise)'),
  rateLimitRpm: setting(number(0, 1e9, true).default(0), 'EARSHOT_RATE_LIMIT_RPM', '--rate-limit-rpm <n>', 'requests per minute per API key (per address without keys); more get 429 (0: no limit)'),
  maxStreamsPerKey: setting(number(0, 1e6, true).default(0), 'EARSHOT_MAX_STREAMS_PER_KEY', '--max-streams-per-key <n>', 'WebSocket streams open at once per API key (per address without keys); more get 429 (0: no limit)'),
  tlsCert: setting(text().optional(), 'EARSHOT_TLS_CERT', '--tls-cert <file>', 'PEM certificate (chain): serve HTTPS and wss://; needs --tls-key'),
  tlsKey: setting(text().optional(), 'EARSHOT_TLS_KEY', '--tls-key <file>', 'PEM private key of --tls-cert'),
  dataDir: setting(text().optional(), 'EARSHOT_DATA_DIR', '--data-dir <dir>', 'where async jobs are kept (jobs.db, the audio of unfinished jobs)', { shownDefault: '$EARSHOT_HOME/data' }),
  jobRetentionS: setting(duration(1, 10 * 365 * 86400).default(7 * 86400), 'EARSHOT_JOB_RETENTION', '--job-retention <time>', 'how long finished jobs are kept: seconds or 30m, 12h, 7d', { shownDefault: '7d' }),
  jobConcurrency: setting(number(1, 64, true).default(1), 'EARSHOT_JOB_CONCURRENCY', '--job-concurrency <n>', 'async jobs transcribed at once; the others wait in the job store'),
  jobQueueSize: setting(number(1, 1e7, true).default(1000), 'EARSHOT_JOB_QUEUE_SIZE', '--job-queue-size <n>', 'jobs that may be queued or running at once; more submissions get 429'),
  maxQueuedBytes: setting(number(1, 2 ** 40, true).default(1024 * 1024 * 1024), 'EARSHOT_MAX_QUEUED_BYTES', '--max-queued-bytes <n>', 'with --redis: upload bytes of unfinished jobs kept in Redis, all jobs together; a submission beyond it gets 429'),
  vadFilter: setting(boolean.default(true), 'EARSHOT_VAD_FILTER', '--no-vad-filter', "decode whole uploads, silence included (default: only the speech Silero VAD finds; a request's vad_filter field overrides)"),
  maxStreams: setting(number(0, 10000, true).default(16), 'EARSHOT_MAX_STREAMS', '--max-streams <n>', 'WebSocket streams open at once (/v1/realtime, /v1/stream); more are refused with close code 1013'),
  streamSilenceMs: setting(number(100, 10000, true).default(500), 'EARSHOT_STREAM_SILENCE_MS', '--stream-silence <ms>', 'silence that ends an utterance in a stream'),
  streamPartialIntervalMs: setting(number(100, 60000, true).default(500), 'EARSHOT_STREAM_PARTIAL_INTERVAL_MS', '--stream-partial-interval <ms>', "how often a stream's partial hypothesis is re-decoded, ms of audio"),
  streamMaxMessageBytes: setting(number(1024, 64 * 1024 * 1024, true).default(1024 * 1024), 'EARSHOT_STREAM_MAX_MESSAGE_BYTES', '--stream-max-message-bytes <n>', 'largest WebSocket message a stream accepts, bytes (a larger one gets an error event; over 4 times this the stream is closed with 1009)'),
  streamIdleTimeoutS: setting(number(1, 86400).default(60), 'EARSHOT_STREAM_IDLE_TIMEOUT', '--stream-idle-timeout <s>', 'a stream that sends no audio for this long is closed (1008)'),
  redis: setting(text().optional(), 'EARSHOT_REDIS_URL', '--redis <url>', 'Redis of the cluster (redis:// or rediss://, password in the URL): jobs go in its BullMQ queues instead of the local SQLite store', { secret: true }),
  localModel: setting(boolean.default(true), 'EARSHOT_LOCAL_MODEL', '--no-local-model', 'load no model here: a stateless API node whose requests are decoded by `earshot worker` processes through --redis; realtime streams are refused (route them to nodes with a model)'),
} as const;

export type SettingName = keyof typeof SETTINGS;

type Shape = { [K in SettingName]: (typeof SETTINGS)[K]['schema'] };
const shape = Object.fromEntries(Object.entries(SETTINGS).map(([k, s]) => [k, s.schema])) as Shape;

export const serverConfigSchema = z.strictObject(shape);
export type ServerConfig = z.output<typeof serverConfigSchema>;

/** The default as --help shows it: the schema's own, unless the entry words it; none for empty lists and off switches. */
export function shownDefault(name: SettingName): string | undefined {
  const s: Setting = SETTINGS[name];
  if (s.shownDefault !== undefined) return s.shownDefault;
  const r = s.schema.safeParse(undefined);
  if (!r.success || r.data === undefined || r.data === false || s.flag.startsWith('--no-')) return undefined;
  if (Array.isArray(r.data)) return r.data.length > 0 ? r.data.join(',') : undefined;
  return String(r.data);
}
