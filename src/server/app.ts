// The app factory: one fastify instance with the OpenAI-compatible routes, API-key check, CORS
// (only when origins are configured), request ids, metrics and the error mapping, logging through
// the process's one pino logger. `startServer` also listens and loads the default model in the
// background, so /health answers at once and /ready turns 200 when the model is in.
import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { join } from 'node:path';
import { ApiNode } from '../cluster/api-node.ts';
import { JobService } from '../jobs/service.ts';
import type { JobQueue } from '../jobs/queue.ts';
import { RedisJobs } from '../cluster/redis-jobs.ts';
import { EarshotError } from '../errors.ts';
import { log } from '../log.ts';
import { settingsFromEnv } from '../models/settings.ts';
import { formatDtypeSpec } from '../models/dtype.ts';
import { deviceLog } from '../engine/execution.ts';
import { ApiKeys } from './auth.ts';
import { isLoopback, type ServerConfig } from './config.ts';
import type { ServerContext } from './context.ts';
import { limitConnections } from './connection-limits.ts';
import { toHttpError } from './http-errors.ts';
import { ServerMetrics } from './metrics.ts';
import { ModelRegistry } from './model-registry.ts';
import { ModelPolicy } from './model-policy.ts';
import { installRateLimits, RateLimits, retryAfterOf } from './rate-limit.ts';
import { loadTls } from './tls.ts';
import { trackModels } from './model-metrics.ts';
import { assertTaskSupported } from '../runtime/transcriber.ts';
import { sweepDeadLeftovers } from '../private-temp.ts';
import { UploadMemory } from './upload.ts';
import { LocalTranscriber } from './local-transcriber.ts';
import { audioRoutes } from './routes/audio.ts';
import { jobRoutes } from './routes/jobs.ts';
import { realtimeRoutes } from './routes/realtime.ts';
import { streamRoutes } from './routes/stream.ts';
import { streamAuthorization, websocketOptions } from './routes/stream-common.ts';
import { modelRoutes } from './routes/models.ts';
import { statusRoutes } from './routes/status.ts';
import { isWebPath, webRoutes } from './web/routes.ts';

/** Paths anyone may call, keys or not: probes must work without secrets. */
const OPEN_PATHS = new Set(['/health', '/ready']);

export interface BuiltApp {
  app: FastifyInstance;
  ctx: ServerContext;
}

/** Builds the app for `config`; the model is not loaded (call `ctx.host.load()`), so /ready is 503 until then. */
export async function buildApp(config: ServerConfig, opts: { host?: ModelRegistry } = {}): Promise<BuiltApp> {
  const host = opts.host ?? new ModelRegistry(config);
  const metrics = new ServerMetrics();
  const cluster = clusterNodeFor(config, host);
  const ctx: ServerContext = {
    config,
    host,
    metrics,
    keys: new ApiKeys(config.apiKeys, { adminKeys: config.adminKeys, loopbackOnly: isLoopback(config.host) }),
    policy: new ModelPolicy({ allowPull: config.allowPull, modelsDir: config.modelsDir }),
    jobs: jobServiceFor(config, host, metrics),
    // The server's uploads together hold at most --max-upload-memory bytes in memory; the rest are spooled.
    uploads: new UploadMemory(config.maxUploadMemoryBytes, (n) => metrics.uploadMemoryBytes.set(n)),
    transcriber: cluster?.transcriber ?? new LocalTranscriber(host),
    ...(cluster ? { cluster } : {}),
  };
  if (cluster) metrics.watchCluster(() => cluster.gauges());
  const { keys, jobs } = ctx;
  trackModels(host, metrics);

  const https = loadTls(config);
  const app = Fastify({
    // With TLS the server is an https.Server; routes only use what both kinds share.
    ...(https ? { https } : {}),
    loggerInstance: log as FastifyBaseLogger,
    genReqId: () => randomUUID(),
    requestTimeout: config.requestTimeoutS * 1000,
    // Uploads are multipart, bounded by the multipart limits; other bodies are small.
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
  });
  limitConnections(app.server, config, metrics);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    const route = request.routeOptions.url ?? 'unmatched';
    const started = performance.now();
    metrics.inFlight.inc();
    reply.raw.once('close', () => {
      metrics.inFlight.dec();
      const status = reply.raw.writableFinished ? String(reply.raw.statusCode) : 'aborted';
      metrics.requests.inc({ route, method: request.method, status });
      metrics.requestDuration.observe({ route, method: request.method }, (performance.now() - started) / 1000);
    });
  });

  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
      allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
      exposedHeaders: ['x-request-id', 'retry-after'],
    });
  }

  // The frame cap (close 1009), socket errors, and the graceful end of open streams on close.
  // Registered before the key and rate-limit hooks: its own onRequest hook is what lets it close
  // the socket of an upgrade those hooks refuse (else the socket is never released).
  await app.register(websocket, websocketOptions(ctx));

  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]!;
    if (request.method === 'OPTIONS' || OPEN_PATHS.has(path) || isWebPath(path)) return;
    // Browsers cannot set headers on a WebSocket: streams may carry the key another way.
    keys.check(request.headers.authorization ?? streamAuthorization(request));
  });
  if (cluster) {
    // A node without a model cannot hold a realtime stream: a clear refusal before the upgrade
    // (503, so a load balancer may try a node that can), never a stream that fails later.
    app.addHook('onRequest', async (request) => {
      const path = request.url.split('?')[0]!;
      if (path === '/v1/realtime' || path === '/v1/stream') {
        throw new EarshotError('not_ready', 'no_local_model', `this node holds no model (--no-local-model): ${path} streams are served by nodes that load one; route them there`);
      }
    });
  }
  installRateLimits(app, new RateLimits({ rpm: config.rateLimitRpm, maxStreams: config.maxStreamsPerKey }), (path) => OPEN_PATHS.has(path));

  await app.register(multipart, { limits: { fileSize: config.maxUploadBytes, files: 1 } });

  app.setErrorHandler((error, request, reply) => {
    const h = toHttpError(error, { retryAfterS: retryAfterOf(error) ?? 1 });
    // A client that hung up mid-request is no fault of ours: logged as such, not as an error.
    const code = (error as { code?: unknown }).code;
    if (reply.raw.destroyed || code === 'client_closed' || code === 'ECONNRESET') request.log.info({ code }, 'client went away');
    else if (h.serverFault) request.log.error({ err: error }, 'request failed');
    else request.log.info({ status: h.status, code: h.body.error.code, message: h.body.error.message }, 'request refused');
    if (reply.raw.headersSent || reply.raw.destroyed) return;
    void reply.code(h.status).headers(h.headers).send(h.body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      error: { message: `no route for ${request.method} ${request.url.split('?')[0]}`, type: 'invalid_request_error', param: null, code: 'not_found' },
    });
  });

  app.addHook('onClose', async () => host.close());
  if (cluster) app.addHook('onClose', () => cluster.close());
  app.addHook('onReady', () => jobs.start());
  app.addHook('onClose', () => jobs.close());
  statusRoutes(app, ctx);
  modelRoutes(app, ctx);
  audioRoutes(app, ctx);
  jobRoutes(app, ctx);
  webRoutes(app);
  realtimeRoutes(app, ctx);
  streamRoutes(app, ctx);
  return { app, ctx };
}

/** On a node without a model (--no-local-model), the cluster its requests go to. */
function clusterNodeFor(config: ServerConfig, host: ModelRegistry): ApiNode | undefined {
  if (config.localModel || !config.redis) return undefined;
  return new ApiNode({
    redisUrl: config.redis,
    defaultModel: host.id,
    // The server's one alias table (model-aliases.ts): the same names work as on a node with models.
    idOf: (name) => host.find(name)?.id ?? name?.trim() ?? '',
    aliasesOf: (id) => {
      const h = host.byId(id);
      return h && h.id === id ? host.aliasesOf(h) : [];
    },
    queueSize: config.queueSize,
    requestTimeoutS: config.requestTimeoutS,
  });
}

/** The server's job queue (SQLite, or Redis with --redis): its bounds and metrics; opened when the app is ready. */
function jobServiceFor(config: ServerConfig, host: ModelRegistry, metrics: ServerMetrics): JobQueue {
  // On a cluster the jobs live in Redis and `earshot worker` processes run them; this node runs none.
  if (config.redis) {
    return new RedisJobs({
      redisUrl: config.redis,
      retentionS: config.jobRetentionS,
      maxUnfinished: config.jobQueueSize,
      maxQueuedBytes: config.maxQueuedBytes,
      onQueued: (_jobs, bytes) => metrics.jobsQueuedBytes.set(bytes),
    });
  }
  return new JobService({
    dataDir: config.dataDir ?? join(settingsFromEnv().home, 'data'),
    retentionS: config.jobRetentionS,
    maxUnfinished: config.jobQueueSize,
    concurrency: config.jobConcurrency,
    sampleLen: config.sampleLen,
    maxAudioSeconds: config.maxAudioSeconds,
    model: host,
    check: (w, job) => assertTaskSupported(w, job.request.task, job.model),
    onFinished: (job) => metrics.jobsFinished.inc({ status: job.status }),
    onRunning: (n) => metrics.jobsRunning.set(n),
  });
}

export interface RunningServer extends BuiltApp {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  /** Settles when the default model is loaded (rejects if it cannot be). */
  loaded: Promise<unknown>;
}

/** Builds the app, listens, then starts loading the model. */
export async function startServer(config: ServerConfig, opts: { host?: ModelRegistry } = {}): Promise<RunningServer> {
  const built = await buildApp(config, opts);
  await built.app.listen({ host: config.host, port: config.port });
  // Audio a killed earshot left in the temporary directory goes before anything else is served.
  const swept = await sweepDeadLeftovers();
  if (swept > 0) built.app.log.info({ swept }, 'deleted the temporary audio of earshot processes that died');
  const addr = built.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const shownHost = config.host.includes(':') ? `[${config.host}]` : config.host;
  // A node without a model loads none: it is ready when a worker is (routes/status.ts).
  const loaded = !config.localModel ? Promise.resolve() : built.ctx.host.load().then(
    (w) =>
      built.app.log.info(
        { model: built.ctx.host.id, loadMs: Math.round(w.loadMs), ...deviceLog(w.model.device), dtype: formatDtypeSpec(w.resolved.dtype), dtypeReason: w.resolved.dtypeReason },
        'model loaded',
      ),
    (e: unknown) => {
      built.app.log.error({ err: e, model: built.ctx.host.id }, 'model failed to load');
      throw e;
    },
  );
  loaded.catch(() => {});
  return { ...built, url: `${config.tlsCert ? 'https' : 'http'}://${shownHost}:${port}`, loaded };
}
