// `npm run bench -- faults [--jobs 20] [--kills 10] [--seed 1] [--sample-len 24] [--full-s 6]`:
// fault injection on durable jobs. `earshot serve` runs as a child process over the tiny-dims test
// model, its data directory on a real tmpfs (mount needs root; elsewhere the bench re-runs itself
// in `unshare -Urm`). Three faults, in order:
// 1. kill -9 of the server at random moments (seeded), restarted each time, while jobs are
//    submitted two per start (a submission cut by a kill is sent again to the next server), one
//    job running at a time (the default --job-concurrency);
// 2. a full disk: the tmpfs is filled while jobs run, held full for --full-s seconds, then freed;
// 3. a corrupted store: once every job is done, the server is stopped, jobs.db is backed up and its
//    pages past the header overwritten, the server started on it, then stopped and the backup restored.
// Reported: jobs submitted (acknowledged with 202) / completed / lost (acknowledged, then not in the
// store) / duplicated (completed more than once, by the runners' log lines of every process) /
// failed, target 20 / 20 / 0 / 0 / 0; and the server's uptime through the storage faults (/health
// probes answered, unexpected exits, what submissions and transcriptions got meanwhile).
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { testModelDir } from '../scripts/test-model/index.ts';
import { random } from '../test/features/inputs.ts'; // seeded (mulberry32): a run's kill moments can be repeated
import { form, jfkClip, metricValue } from '../test/server/helpers.ts';
import { spawnServer, until, type ChildServer } from '../test/jobs/child-server.ts';
import { fill, mountTmpfs, needsNamespace, runInMountNamespace } from '../test/jobs/tmpfs.ts';

interface Probe {
  ok: number;
  total: number;
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function run(args: string[]): Promise<void> {
  if (needsNamespace()) {
    process.stdout.write('faults: mount is not permitted here; re-running inside `unshare -Urm`\n');
    const r = runInMountNamespace([process.execPath, '--import', 'tsx', new URL('run.ts', import.meta.url).pathname, 'faults', ...args], 1_800_000);
    process.stdout.write(r.output);
    process.exitCode = r.status ?? 1;
    return;
  }
  const { values } = parseArgs({
    args,
    options: {
      jobs: { type: 'string', default: '20' },
      kills: { type: 'string', default: '10' },
      seed: { type: 'string', default: '1' },
      'sample-len': { type: 'string', default: '24' },
      'full-s': { type: 'string', default: '6' },
    },
  });
  const jobCount = Number(values.jobs);
  const kills = Number(values.kills);
  const rand = random(Number(values.seed));
  const model = testModelDir({ preset: 'english', dims: 'tiny' });
  const disk = mountTmpfs(256 << 20);
  const dataDir = join(disk.dir, 'data');
  const home = mkdtempSync(join(tmpdir(), 'earshot-faults-home-')); // off the tmpfs: only the data directory fills
  const serveArgs = ['--model', model, '--port', '0', '--data-dir', dataDir, '--threads', '1', '--sample-len', values['sample-len']!];
  const servers: ChildServer[] = [];
  const start = async (): Promise<ChildServer> => {
    const s = await spawnServer({ args: serveArgs, env: { EARSHOT_HOME: home } });
    servers.push(s);
    return s;
  };
  const acknowledged: string[] = [];
  let unacknowledged = 0;
  // Lengths 20–110 s (one to four 30 s windows), in a fixed order.
  const lengthOf = (i: number): number => 20 + ((i * 37) % 91);
  const submit = async (s: ChildServer): Promise<number> => {
    const i = acknowledged.length;
    const body = form({ model: 'whisper-1', temperature: '0', vad_filter: 'false', response_format: 'json' }, { bytes: jfkClip(lengthOf(i)), name: `job${i}.wav` });
    try {
      const r = await fetch(`${s.url}/v1/jobs`, { method: 'POST', body });
      if (r.status === 202) acknowledged.push(((await r.json()) as { id: string }).id);
      else await r.arrayBuffer();
      return r.status;
    } catch {
      unacknowledged++; // the kill cut it: sent again to the next server
      return 0;
    }
  };
  const report: string[] = [];
  try {
    // 1. kill -9 at random moments: 0.2–12 s after each start (the model load takes the first
    // few seconds, the first window after a start a few more: some kills cut each).
    const t0 = performance.now();
    let server = await start();
    const moments: number[] = [];
    for (let k = 0; k < kills; k++) {
      const at = 200 + rand() * 11_800;
      moments.push(Math.round(at));
      const killed = sleep(at).then(() => server.kill());
      for (let n = 0; n < 2 && acknowledged.length < jobCount; n++) if ((await submit(server)) === 0) break;
      await killed;
      server = await start();
    }
    while (acknowledged.length < jobCount) await submit(server);
    const killed = servers.slice(0, kills);
    const duringLoad = killed.filter((s) => !s.logs.some((e) => e.msg === 'model loaded')).length;
    // A kill cut a window when the server's last run of a job had started and not completed.
    const cutWindow = killed.filter((s) => {
      const runs = s.logs.filter((e) => e.msg === 'job started' || e.msg === 'job resumed');
      const last = runs.at(-1);
      return last !== undefined && !s.logs.some((e) => e.msg === 'job completed' && e.jobId === last.jobId && s.logs.indexOf(e) > s.logs.indexOf(last));
    }).length;
    report.push(
      `kills: ${kills} at ${moments.map((m) => (m / 1000).toFixed(1)).join(', ')} s after each start (${duringLoad} during the model load, ${cutWindow} cutting a window); ` +
        `${unacknowledged} submissions cut by a kill and sent again`,
    );
    await waitReady(server);

    // 2. The disk fills while jobs run.
    const states = async (): Promise<Array<Record<string, any>>> => {
      const out: Array<Record<string, any>> = [];
      for (const id of acknowledged) {
        const r = await fetch(`${server.url}/v1/jobs/${id}`);
        out.push(r.status === 200 ? ((await r.json()) as Record<string, any>) : { id, status: `http_${r.status}` });
      }
      return out;
    };
    const unfinished = async (): Promise<number> => (await states()).filter((j) => j.status === 'queued' || j.status === 'running').length;
    if ((await unfinished()) === 0) report.push('full disk: every job had finished before the disk was filled (raise --jobs or --sample-len)');
    const filler = fill(disk.dir);
    const fullFrom = performance.now();
    const probes: Probe = { ok: 0, total: 0 };
    const probing = probeHealth(server, probes, () => performance.now() - fullFrom > Number(values['full-s']) * 1000);
    const during = { submit: await submitStatus(server), transcribe: await transcribeStatus(server) };
    await probing;
    const pausedSeen = (await states()).filter((j) => j.paused).map((j) => j.paused.code as string);
    rmSync(filler);
    report.push(
      `full disk for ${((performance.now() - fullFrom) / 1000).toFixed(1)} s: /health ${probes.ok}/${probes.total} answered 200; a submission got ${during.submit}, a transcription ${during.transcribe}; ` +
        `jobs paused at the end of it: ${pausedSeen.length} (${[...new Set(pausedSeen)].join(', ') || 'none'}); server exited: ${server.child.exitCode !== null ? 'YES' : 'no'}`,
    );
    const diskProbes = probes;
    await until(async () => (await unfinished()) === 0, 600_000, 'every job finished', 500);
    const elapsed = (performance.now() - t0) / 1000;

    // 3. A corrupted store: stop, back up, overwrite pages, start on it, then restore.
    server.child.kill('SIGTERM');
    await server.exited;
    const db = join(dataDir, 'jobs.db');
    const backup = join(disk.dir, 'jobs.db.backup');
    copyFileSync(db, backup);
    for (const extra of ['jobs.db-wal', 'jobs.db-shm']) if (existsSync(join(dataDir, extra))) rmSync(join(dataDir, extra));
    const size = statSync(db).size;
    const fd = openSync(db, 'r+');
    for (let at = 4096; at < size; at += 4096) writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, at);
    closeSync(fd);
    server = await start();
    await until(async () => (await fetch(`${server.url}/health`)).status === 200, 60_000, 'health');
    await until(async () => metricValue(await fetch(`${server.url}/metrics`).then((r) => r.text()), 'earshot_model_ready') === 1, 60_000, 'model loaded');
    const ready = await fetch(`${server.url}/ready`);
    const readyBody = (await ready.json()) as { jobs?: string };
    const corruptProbes: Probe = { ok: 0, total: 0 };
    const corruptFrom = performance.now();
    const probing2 = probeHealth(server, corruptProbes, () => performance.now() - corruptFrom > 3000);
    const jobsAnswer = (await fetch(`${server.url}/v1/jobs`)).status;
    const transcribed = await transcribeStatus(server);
    await probing2;
    report.push(
      `corrupted store: /ready ${ready.status} (${(readyBody.jobs ?? 'no reason').slice(0, 90)}…); /health ${corruptProbes.ok}/${corruptProbes.total} answered 200; ` +
        `GET /v1/jobs ${jobsAnswer}; a transcription ${transcribed}; server exited: ${server.child.exitCode !== null ? 'YES' : 'no'}`,
    );
    const uptime = (diskProbes.ok + corruptProbes.ok) / Math.max(1, diskProbes.total + corruptProbes.total);
    const exitedUnexpectedly = servers.filter((s) => s !== server && s.child.signalCode !== 'SIGKILL' && s.child.signalCode !== 'SIGTERM' && s.child.exitCode !== 0).length;
    server.child.kill('SIGTERM');
    await server.exited;
    copyFileSync(backup, db);
    server = await start();

    // The outcome, read from the restored store.
    const final = await states();
    const completions = new Map<string, number>();
    for (const s of servers) for (const e of s.logs) if (e.msg === 'job completed') completions.set(String(e.jobId), (completions.get(String(e.jobId)) ?? 0) + 1);
    const list = (await (await fetch(`${server.url}/v1/jobs?limit=100`)).json()) as { data: Array<{ id: string }> };
    const extra = list.data.filter((j) => !acknowledged.includes(j.id)).length;
    const counts = {
      submitted: acknowledged.length,
      completed: final.filter((j) => j.status === 'completed').length,
      lost: final.filter((j) => j.status === 'http_404').length,
      duplicated: acknowledged.filter((id) => (completions.get(id) ?? 0) > 1).length,
      failed: final.filter((j) => j.status === 'failed').length,
    };
    const leftAudio = readdirSync(join(dataDir, 'audio')).length;
    const mostInterruptions = Math.max(0, ...servers.flatMap((s) => s.logs.filter((e) => e.msg === 'job resumed' || e.msg === 'job started').map((e) => Number(e.interruptions))));
    report.push(`most interruptions without progress any job carried into a run: ${mostInterruptions} (a fourth fails a job)`);
    for (const line of report) process.stdout.write(`${line}\n`);
    process.stdout.write(
      `jobs submitted / completed / lost / duplicated / failed: ${counts.submitted} / ${counts.completed} / ${counts.lost} / ${counts.duplicated} / ${counts.failed} ` +
        `(target ${jobCount} / ${jobCount} / 0 / 0 / 0); stored without a 202: ${extra}; uploads left behind: ${leftAudio}; ` +
        `${elapsed.toFixed(0)} s from the first submission to the last job done, ${servers.length - 1} restarts\n`,
    );
    for (const j of final.filter((x) => x.status !== 'completed')) process.stdout.write(`  ${j.id}: ${j.status} ${JSON.stringify(j.error ?? null)}\n`);
    process.stdout.write(`server uptime through the storage faults: ${(uptime * 100).toFixed(1)}% of /health probes, ${exitedUnexpectedly} unexpected exits\n`);
    const pass = counts.submitted === jobCount && counts.completed === jobCount && counts.lost + counts.duplicated + counts.failed === 0 && uptime === 1 && exitedUnexpectedly === 0;
    process.stdout.write(`faults: ${pass ? 'PASS' : 'FAIL'}\n`);
    if (!pass) process.exitCode = 1;
  } finally {
    for (const s of servers) await s.kill();
    disk.remove();
    rmSync(home, { recursive: true, force: true });
  }
}

async function waitReady(s: ChildServer): Promise<void> {
  await until(async () => (await fetch(`${s.url}/ready`).catch(() => undefined))?.status === 200, 120_000, 'ready', 100);
}

/** Probes /health every 100 ms until `done()`; counts the answers. */
async function probeHealth(s: ChildServer, p: Probe, done: () => boolean): Promise<void> {
  while (!done()) {
    p.total++;
    const r = await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (r?.status === 200) p.ok++;
    await sleep(100);
  }
}

async function submitStatus(s: ChildServer): Promise<string> {
  const r = await fetch(`${s.url}/v1/jobs`, { method: 'POST', body: form({ model: 'whisper-1' }, { bytes: jfkClip(2) }) }).catch(() => undefined);
  if (!r) return 'no answer';
  const body = (await r.json()) as { error?: { code: string } };
  return `${r.status}${body.error ? ` ${body.error.code}` : ''}`;
}

async function transcribeStatus(s: ChildServer): Promise<string> {
  const r = await fetch(`${s.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ model: 'whisper-1', temperature: '0' }, { bytes: jfkClip(3) }) }).catch(() => undefined);
  if (!r) return 'no answer';
  const body = (await r.json()) as { error?: { code: string } };
  return `${r.status}${body.error ? ` ${body.error.code}` : ''}`;
}
