// A worker's own Prometheus metrics (`earshot worker --metrics-port <n>`): a worker has no HTTP
// API, so this is a bare HTTP server answering GET /metrics only, on 127.0.0.1 unless the operator
// names another address. Node's process metrics are included, as on the API nodes.
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { RequestOutcome } from './request-consumer.ts';

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'earshot_worker_requests_total',
    help: 'Synchronous requests this worker ended, by model and outcome (completed, failed, cancelled: the client left)',
    labelNames: ['model', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly requestsRunning = new Gauge({
    name: 'earshot_worker_requests_running',
    help: 'Synchronous requests this worker is decoding now',
    registers: [this.registry],
  });
  readonly audioSeconds = new Counter({
    name: 'earshot_worker_audio_seconds_total',
    help: 'Seconds of audio of the requests this worker completed, by model',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** A request ended (request-consumer.ts's onFinished). */
  finished(model: string, outcome: RequestOutcome, audioSeconds: number): void {
    this.requests.inc({ model, outcome });
    if (outcome === 'completed') this.audioSeconds.inc({ model }, audioSeconds);
  }

  /** Serves GET /metrics on `host:port` (port 0: a free one); resolves with the server once it listens. */
  serve(port: number, host = '127.0.0.1'): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}
