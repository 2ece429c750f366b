// `npm run bench -- soak [--minutes 10] [--clients 4]`: a steady load (a few clients uploading
// 5 s clips back to back) on `earshot serve` over the tiny-dims test model, with the server's RSS,
// V8 heap and active handles sampled every minute from its /metrics. Passes when RSS and heap grew
// by less than 5% from the first minute (after warm-up) to the last, and the active handles are back
// to their idle count once the clients stop (under load they count the clients' open sockets, a
// number that moves by one or two with timing, so a percentage of it says nothing).
import { parseArgs } from 'node:util';
import { Agent, request } from 'node:http';
import { clipUpload, mib, serverFigures, startServerChild } from './lib/server-child.ts';

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      minutes: { type: 'string', default: '10' },
      clients: { type: 'string', default: '4' },
    },
  });
  const minutes = Number(values.minutes);
  const clients = Number(values.clients);
  const server = await startServerChild(['--sample-len', '8', '--threads', '1']);
  const { body, contentType } = clipUpload(5);
  let stop = false;
  const counts = new Map<number, number>();
  // The clients' own keep-alive agent, closed when they stop, so the server's handle count can
  // return to idle (its side of an idle keep-alive socket is a handle until the client closes it).
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const post = (): Promise<number> =>
    new Promise((resolve) => {
      const req = request(`${server.url}/v1/audio/transcriptions`, { method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      });
      req.on('error', () => resolve(0));
      req.end(body);
    });
  const loop = async (): Promise<void> => {
    while (!stop) {
      const status = await post();
      counts.set(status, (counts.get(status) ?? 0) + 1);
    }
  };
  const samples: Array<Awaited<ReturnType<typeof serverFigures>>> = [];
  const idle = await serverFigures(server.url);
  try {
    const running = Array.from({ length: clients }, loop);
    for (let m = 1; m <= minutes; m++) {
      await new Promise((r) => setTimeout(r, 60_000));
      const f = await serverFigures(server.url);
      samples.push(f);
      process.stdout.write(`minute ${m}: RSS ${mib(f.rss)}, heap ${mib(f.heapUsed)}, handles ${f.handles}, answers ${JSON.stringify([...counts])}\n`);
    }
    stop = true;
    await Promise.all(running);
    agent.destroy();
    let after = await serverFigures(server.url);
    for (let i = 0; i < 50 && after.handles > idle.handles; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await serverFigures(server.url);
    }
    const first = samples[0]!;
    const last = samples.at(-1)!;
    const growth = (a: number, b: number): number => (b - a) / a;
    const g = { rss: growth(first.rss, last.rss), heap: growth(first.heapUsed, last.heapUsed) };
    const handles = samples.map((f) => f.handles);
    const ok =
      server.child.exitCode === null && Object.values(g).every((x) => x < 0.05) && after.handles <= idle.handles && [...counts.keys()].every((s) => s === 200);
    process.stdout.write(
      `soak: ${minutes} min, ${clients} clients; growth first→last minute: RSS ${(g.rss * 100).toFixed(1)}%, heap ${(g.heap * 100).toFixed(1)}% (< 5%); ` +
        `active handles ${idle.handles} idle, ${Math.min(...handles)}–${Math.max(...handles)} under load, ${after.handles} after the clients stopped — ${ok ? 'PASS' : 'FAIL'}\n`,
    );
    if (!ok) process.exitCode = 1;
  } finally {
    stop = true;
    await server.stop();
  }
}
