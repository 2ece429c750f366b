// Operator endpoints, open without an API key except /metrics: /health (the process answers),
// /ready (200 once the default model is loaded and the job store is sound, 503 with the reason
// otherwise; on a node without a model: once a worker for the default model is alive) and
// /metrics (Prometheus text).
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';

export function statusRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { host, metrics } = ctx;

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/ready', async (_request, reply) => {
    // A damaged job store is not ready either: the model serves, but acknowledged jobs cannot be read.
    const jobs = ctx.jobs.problem();
    if (ctx.cluster) {
      const workers = await ctx.cluster.defaultWorkers();
      if (workers > 0 && !jobs) return { status: 'ready', model: host.id, workers };
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ status: workers > 0 ? 'jobs_unavailable' : 'no_workers', model: host.id, workers, ...(jobs ? { jobs } : {}) });
    }
    if (host.state === 'ready' && !jobs) return { status: 'ready', model: host.id };
    return reply
      .code(503)
      .header('retry-after', '5')
      .send({
        status: host.state === 'ready' ? 'jobs_unavailable' : host.state,
        model: host.id,
        ...(host.state === 'failed' ? { error: String((host.error as Error)?.message ?? host.error) } : {}),
        ...(jobs ? { jobs } : {}),
      });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
