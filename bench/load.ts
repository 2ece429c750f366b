// `npm run bench -- load [--connections 200] [--seconds 60]`: 200 clients upload 5 s clips for
// 60 s (autocannon) to `earshot serve` on the tiny-dims test model. Passes when nothing crashed,
// some transcriptions finished, and every answer was 200, or 429/503 with Retry-After (the queue and rate limits saying "later"),
// and the server is back to nothing in flight. Prints answers per status, p50/p99 latency of the
// 200s and of all answers, and the server's RSS before and after.
import autocannon from 'autocannon';
import { clipUpload, mib, serverFigures, startServerChild } from './lib/server-child.ts';

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

export async function run(args: string[]): Promise<void> {
  const connections = arg(args, 'connections', 200);
  const seconds = arg(args, 'seconds', 60);
  const server = await startServerChild(['--sample-len', '8', '--queue-size', '32', '--threads', '1']);
  try {
    const before = await serverFigures(server.url);
    const { body, contentType } = clipUpload(5);
    const statuses = new Map<number, number>();
    let missingRetryAfter = 0;
    const result = await autocannon({
      url: `${server.url}/v1/audio/transcriptions`,
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
      connections,
      duration: seconds,
      timeout: seconds + 30,
      setupClient: (client) => {
        // autocannon's client emits the parsed status line and raw header list of each answer.
        (client as unknown as NodeJS.EventEmitter).on('headers', (h: { statusCode: number; headers: string[] }) => {
          statuses.set(h.statusCode, (statuses.get(h.statusCode) ?? 0) + 1);
          if (h.statusCode === 429 || h.statusCode === 503) {
            const has = h.headers.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'retry-after');
            if (!has) missingRetryAfter++;
          }
        });
      },
    });
    await new Promise((r) => setTimeout(r, 1000));
    const after = await serverFigures(server.url);
    const alive = server.child.exitCode === null;
    const unexpected = [...statuses].filter(([s]) => s !== 200 && s !== 429 && s !== 503);
    // A run where nothing finished proves nothing about the answers: it fails too.
    const ok = alive && (statuses.get(200) ?? 0) > 0 && unexpected.length === 0 && missingRetryAfter === 0 && result.errors === 0 && after.inFlight <= 1;
    const lat = result.latency;
    process.stdout.write(
      [
        `load: ${connections} clients x ${seconds} s, 5 s WAV clips, tiny-dims test model (sample-len 8, queue 32, 1 thread)`,
        `  answers: ${[...statuses].map(([s, n]) => `${s}: ${n}`).join(', ')}; socket errors ${result.errors}, timeouts ${result.timeouts}`,
        `  429/503 without Retry-After: ${missingRetryAfter}`,
        `  latency of all answers: p50 ${lat.p50} ms, p99 ${lat.p99} ms (max ${lat.max} ms)`,
        `  200s per second: ${((statuses.get(200) ?? 0) / seconds).toFixed(2)}; audio seconds per wall second: ${(((statuses.get(200) ?? 0) * 5) / seconds).toFixed(1)}`,
        `  server RSS: ${mib(before.rss)} before, ${mib(after.rss)} after; in flight after: ${after.inFlight - 1}, queue after: ${after.queue}`,
        `  ${ok ? 'PASS' : 'FAIL'}: server ${alive ? 'alive' : 'DIED'}, ${statuses.get(200) ?? 0} transcriptions done, unexpected statuses ${JSON.stringify(unexpected)}`,
        '',
      ].join('\n'),
    );
    if (!ok) process.exitCode = 1;
  } finally {
    await server.stop();
  }
}
