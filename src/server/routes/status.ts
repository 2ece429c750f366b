// Operator endpoints, open without an API key except /metrics: /health (the process answers),
// /ready (200 once the default model is loaded, 503 before) and /metrics (Prometheus text).
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';

export function statusRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { host, metrics } = ctx;

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/ready', async (_request, reply) => {
    if (host.state === 'ready') return { status: 'ready', model: host.id };
    return reply
      .code(503)
      .header('retry-after', '5')
      .send({ status: host.state, model: host.id, ...(host.state === 'failed' ? { error: String((host.error as Error)?.message ?? host.error) } : {}) });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
