// A worker process for the synchronous-request tests: loads one model, consumes its requests
// (src/cluster/request-consumer.ts), announces itself with a heartbeat and serves its /metrics.
// Prints one line `ready <metrics port>` on stdout once it takes requests; SIGTERM stops it.
// Usage: sync-worker-child.ts <redis url> <model dir> <model id> <heartbeat ttl ms> [worker id]
import '../../src/engine/telemetry-off.ts';
import { randomUUID } from 'node:crypto';
import { Heartbeat } from '../../src/cluster/heartbeats.ts';
import { connectRedis } from '../../src/cluster/redis.ts';
import { RequestConsumer } from '../../src/cluster/request-consumer.ts';
import { WorkerMetrics } from '../../src/cluster/worker-metrics.ts';
import { log } from '../../src/log.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';

log.level = process.env.EARSHOT_LOG_LEVEL ?? 'warn';
// The test model's random weights fail every window's fallback thresholds, so decoding ends up
// sampling; a constant source makes sampling a function of the logits alone, here as in the test's
// one-process server (see sync.test.ts).
Math.random = () => 0.5;
const [url, dir, modelId, ttl, workerId = randomUUID()] = process.argv.slice(2) as [string, string, string, string, string?];
const whisper = await loadWhisper(dir, { engine: { intraOpThreads: 1 } });
const metrics = new WorkerMetrics();
const consumer = await RequestConsumer.start({
  redisUrl: url,
  models: [{ id: modelId, whisper }],
  onFinished: (m, outcome, s) => metrics.finished(m, outcome, s),
  onRunning: (n) => metrics.requestsRunning.set(n),
});
const redis = connectRedis(url, 'earshot-test-worker');
const heartbeat = new Heartbeat(
  redis,
  { id: workerId, models: [{ id: modelId, multilingual: whisper.tokenizer.isMultilingual }], device: 'cpu', concurrency: consumer.concurrency, startedAt: Date.now() },
  { ttlMs: Number(ttl) },
);
await heartbeat.start();
const server = await metrics.serve(0);
process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`);
process.once('SIGTERM', () => {
  void (async () => {
    await heartbeat.stop();
    await consumer.close();
    server.close();
    redis.disconnect();
    process.exit(0);
  })();
});
