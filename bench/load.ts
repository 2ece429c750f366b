// `npm run bench -- load [--connections 200] [--seconds 60] [--streams 100] [--rounds 10]`: two
// phases against one `earshot serve` on the tiny-dims test model.
// - HTTP: 200 clients upload 5 s clips for 60 s (autocannon). Passes when nothing crashed, some
//   transcriptions finished, every answer was 200, or 429/503 with Retry-After (the queue and rate
//   limits saying "later"), and the server is back to nothing in flight. Prints answers per status,
//   p50/p99 latency of all answers, and the server's RSS before and after.
// - WebSocket churn: 100 streams connect to /v1/stream, send audio and drop the connection without
//   a word, over and over (`--rounds`). Passes when the active-streams gauge returns to 0 and the
//   server's open file descriptors return to their baseline.
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { WebSocket } from 'ws';
import { clipUpload, jfkPcm, mib, serverFigures, startServerChild } from './lib/server-child.ts';

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      connections: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '60' },
      streams: { type: 'string', default: '100' },
      rounds: { type: 'string', default: '10' },
    },
  });
  const connections = Number(values.connections);
  const seconds = Number(values.seconds);
  const streams = Number(values.streams);
  const rounds = Number(values.rounds);
  const server = await startServerChild(['--sample-len', '8', '--queue-size', '32', '--threads', '1', '--max-streams', String(streams)]);
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
    if (!(await churn(server.url, streams, rounds))) process.exitCode = 1;
  } finally {
    await server.stop();
  }
}

/** The WebSocket churn phase; true when the server came back to its baseline. */
async function churn(url: string, streams: number, rounds: number): Promise<boolean> {
  const settle = async (until: (f: Awaited<ReturnType<typeof serverFigures>>) => boolean) => {
    let f = await serverFigures(url);
    for (let i = 0; i < 100 && !until(f); i++) {
      await new Promise((r) => setTimeout(r, 100));
      f = await serverFigures(url);
    }
    return f;
  };
  const before = await settle((f) => f.streams === 0 && f.inFlight <= 1);
  const frame = jfkPcm(0.2);
  let opened = 0;
  let failed = 0;
  let peak = 0;
  const started = performance.now();
  for (let r = 0; r < rounds; r++) {
    await Promise.all(
      Array.from({ length: streams }, (_, i) =>
        new Promise<void>((resolve) => {
          const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/stream`);
          ws.once('error', () => {
            failed++;
            resolve();
          });
          ws.once('open', () => {
            opened++;
            ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000, language: 'en' }));
            // 1 to 10 frames of 200 ms, sent every 20 ms, then the connection is dropped (no close frame).
            let left = 1 + ((i * 7 + r) % 10);
            const timer = setInterval(() => {
              if (left-- > 0 && ws.readyState === WebSocket.OPEN) {
                ws.send(frame);
                return;
              }
              clearInterval(timer);
              ws.terminate();
              resolve();
            }, 20);
          });
        }),
      ),
    );
    peak = Math.max(peak, (await serverFigures(url)).streams);
  }
  const after = await settle((f) => f.streams === 0 && f.fds <= before.fds);
  const ok = after.streams === 0 && after.fds <= before.fds;
  process.stdout.write(
    [
      `churn: ${rounds} rounds x ${streams} streams on /v1/stream, each dropped after 0.2-2 s of audio (${((performance.now() - started) / 1000).toFixed(1)} s)`,
      `  connections opened ${opened}, failed ${failed}; active streams seen right after a round: up to ${peak}`,
      `  active streams after: ${after.streams}; open fds ${before.fds} before, ${after.fds} after; RSS ${mib(before.rss)} before, ${mib(after.rss)} after`,
      `  ${ok ? 'PASS' : 'FAIL'}: the gauge ${after.streams === 0 ? 'returned' : 'did NOT return'} to 0, fds ${after.fds <= before.fds ? 'returned' : 'did NOT return'} to the baseline`,
      '',
    ].join('\n'),
  );
  return ok;
}
