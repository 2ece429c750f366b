// `earshot serve`: the OpenAI-compatible HTTP server. Flags are only collected here; every value
// (flag, EARSHOT_* variable or config file) is validated by src/server/config.ts, the one loader.
import { Command } from 'commander';
import { log } from '../log.ts';
import { loadServerConfig, maskedConfig, type ServerConfig } from '../server/config.ts';
import { startServer } from '../server/app.ts';
import { installShutdown } from '../server/shutdown.ts';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

interface ServeFlags {
  config?: string;
  host?: string;
  port?: string;
  model?: string;
  modelId?: string;
  extraModel?: string[];
  modelTtl?: string;
  dtype?: string;
  device?: string;
  threads?: string;
  apiKey?: string[];
  apiKeysFile?: string;
  insecureNoAuth?: boolean;
  corsOrigin?: string[];
  maxUploadBytes?: string;
  maxAudioSeconds?: string;
  requestTimeout?: string;
  queueSize?: string;
  sampleLen?: string;
  shutdownTimeout?: string;
  logContent?: boolean;
  rateLimitRpm?: string;
  maxStreamsPerKey?: string;
  tlsCert?: string;
  tlsKey?: string;
  maxStreams?: string;
  streamSilence?: string;
  streamPartialInterval?: string;
  streamMaxMessageBytes?: string;
  dataDir?: string;
  jobRetention?: string;
  jobConcurrency?: string;
  jobQueueSize?: string;
  vadFilter?: boolean;
}

export function serveFlagsToConfig(f: ServeFlags): Partial<Record<keyof ServerConfig, unknown>> {
  return {
    host: f.host,
    port: f.port,
    model: f.model,
    modelId: f.modelId,
    extraModels: f.extraModel,
    modelTtlS: f.modelTtl,
    dtype: f.dtype,
    device: f.device,
    threads: f.threads,
    apiKeys: f.apiKey,
    apiKeysFile: f.apiKeysFile,
    insecureNoAuth: f.insecureNoAuth,
    corsOrigins: f.corsOrigin,
    maxUploadBytes: f.maxUploadBytes,
    maxAudioSeconds: f.maxAudioSeconds,
    requestTimeoutS: f.requestTimeout,
    queueSize: f.queueSize,
    sampleLen: f.sampleLen,
    shutdownTimeoutS: f.shutdownTimeout,
    logContent: f.logContent,
    rateLimitRpm: f.rateLimitRpm,
    maxStreamsPerKey: f.maxStreamsPerKey,
    tlsCert: f.tlsCert,
    tlsKey: f.tlsKey,
    maxStreams: f.maxStreams,
    streamSilenceMs: f.streamSilence,
    streamPartialIntervalMs: f.streamPartialInterval,
    streamMaxMessageBytes: f.streamMaxMessageBytes,
    dataDir: f.dataDir,
    jobRetentionS: f.jobRetention,
    jobConcurrency: f.jobConcurrency,
    jobQueueSize: f.jobQueueSize,
    vadFilter: f.vadFilter,
  };
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the OpenAI-compatible HTTP API (default 127.0.0.1:8000)')
    .option('--config <file>', 'JSON config file (also $EARSHOT_CONFIG)')
    .option('--host <address>', 'address to listen on; anything but loopback needs an API key (default 127.0.0.1)')
    .option('--port <n>', 'port; 0 picks a free one (default 8000)')
    .option('--model <model>', 'catalogue name, hub repository id or model folder (default base)')
    .option('--model-id <id>', 'the id clients see for the model')
    .option('--extra-model <spec>', 'serve another model too, chosen by the request\'s model field: [id=]model[@dtype] (repeatable; also $EARSHOT_EXTRA_MODELS)', collect)
    .option('--model-ttl <s>', 'unload a model idle this long; the next request loads it again (default 0: never)')
    .option('--dtype <spec>', 'weights precision, e.g. fp32, q8 or "encoder=fp32,decoder=q8"')
    .option('--device <device>', 'cpu, cuda or auto (default cpu)')
    .option('--threads <n>', 'threads per operator; 0 lets onnxruntime pick (default 0)')
    .option('--api-key <key>', 'accept this API key (repeatable; also $EARSHOT_API_KEYS, comma-separated)', collect)
    .option('--api-keys-file <file>', 'file with one API key per line')
    .option('--insecure-no-auth', 'allow listening beyond loopback without any API key')
    .option('--cors-origin <origin>', 'allow this browser origin (repeatable; * for any); CORS is off otherwise', collect)
    .option('--max-upload-bytes <n>', 'largest accepted upload (default 200000000)')
    .option('--max-audio-seconds <s>', 'longest accepted audio (default 10800)')
    .option('--request-timeout <s>', 'longest a request may take (default 3600)')
    .option('--queue-size <n>', 'requests that may wait for the model; more get 429 (default 64)')
    .option('--sample-len <n>', 'most tokens decoded per 30 s window (default 224)')
    .option('--shutdown-timeout <s>', 'how long requests in flight get to finish on SIGTERM (default 30)')
    .option('--log-content', 'log transcript text (never logged otherwise)')
    .option('--rate-limit-rpm <n>', 'requests per minute per API key (per address without keys); more get 429 (default 0: no limit)')
    .option('--max-streams-per-key <n>', 'WebSocket streams open at once per API key; more get 429 (default 0: no limit)')
    .option('--tls-cert <file>', 'PEM certificate (chain): serve HTTPS; needs --tls-key')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--max-streams <n>', 'WebSocket streams open at once; more are refused with close code 1013 (default 16)')
    .option('--stream-silence <ms>', 'silence that ends a turn in a stream (default 500)')
    .option('--stream-partial-interval <ms>', 'audio between partial results of a stream (default 500)')
    .option('--stream-max-message-bytes <n>', 'largest WebSocket message accepted (default 1048576)')
    .option('--data-dir <dir>', 'where async jobs are kept (default $EARSHOT_HOME/data)')
    .option('--job-retention <time>', 'how long finished jobs are kept: seconds or 30m, 12h, 7d (default 7d)')
    .option('--job-concurrency <n>', 'async jobs transcribed at once (default 1)')
    .option('--job-queue-size <n>', 'jobs that may be queued or running; more get 429 (default 1000)')
    .option('--no-vad-filter', "decode whole uploads, silence included (default: only the speech Silero VAD finds; a request's vad_filter field overrides)")
    .action(async (flags: ServeFlags, cmd: Command) => {
      // commander defaults a --no- flag to true; only a flag actually given may override env and file.
      if (cmd.getOptionValueSource('vadFilter') !== 'cli') delete flags.vadFilter;
      const config = loadServerConfig({ flags: serveFlagsToConfig(flags), ...(flags.config ? { configFile: flags.config } : {}) });
      log.info({ config: maskedConfig(config) }, 'effective configuration');
      const server = await startServer(config);
      installShutdown(server.app, { timeoutS: config.shutdownTimeoutS });
      try {
        await server.loaded;
      } catch (e) {
        await server.app.close();
        throw e;
      }
    });
}
