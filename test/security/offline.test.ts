// Nothing leaves the machine, and nothing is even attempted: a CLI transcription, and a server that
// answers a transcription and a WebSocket stream and keeps serving for WINDOW_MS, run under strace
// (every process and thread), in a network namespace with only loopback where the machine allows
// one (CI runs as root). Any connect/sendto/sendmsg beyond loopback, or any DNS query at all, fails
// the test, and so does any file written outside EARSHOT_HOME and TMPDIR, anything left in TMPDIR,
// or anything added to HOME (all three fresh for each run). The runs get no CI markers and
// ORT_DISABLE_TELEMETRY=0, so onnxruntime's telemetry would be on (CI=true turns it off by itself)
// unless earshot turns it off (src/engine/telemetry-off.ts).
// A control run proves the tracer would see it: an onnxruntime session without earshot's guard,
// under the same tracer, is caught trying DNS and writing its queue and logs. Pulling a hub model is
// the one thing allowed to reach out; it must fail fast with a typed error.
// strace must work in CI (.ci/run installs it); elsewhere the test is skipped without it.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, jfkClip, modelDir, ROOT } from '../server/helpers.ts';
import { freshDirs, leftIn, namespacesWork, report, straceWorks, traced, tracedEnv, type Dirs, type Trace } from './trace.ts';

/** onnxruntime's first upload attempt comes about 9 s after its first session; watch longer. */
const WINDOW_MS = 15_000;
const CHILD = join(ROOT, 'test/security/offline-child.ts');
const CONTROL = join(ROOT, 'test/security/telemetry-on-child.ts');

const canTrace = straceWorks();
const isolate = namespacesWork();
const how = isolate ? 'strace, loopback-only network namespace' : 'strace, no namespace permitted here';
const skip = canTrace || process.env.CI ? false : 'strace is not installed or may not trace here (CI installs it: .ci/run)';

let fixtures: string;
let clip: string;
let model: string;
const runs: Array<{ dirs: Dirs; trace: Promise<Trace> }> = [];

/** Starts a traced run at once (the four run side by side); its test awaits it. */
function start(argv: string[], opts: { extraEnv?: Record<string, string>; timeoutMs: number }): { dirs: Dirs; trace: Promise<Trace> } {
  const dirs = freshDirs();
  const run = { dirs, trace: traced(argv, { env: tracedEnv(dirs, opts.extraEnv), cwd: ROOT, isolate, timeoutMs: opts.timeoutMs }) };
  runs.push(run);
  return run;
}

let cli: { dirs: Dirs; trace: Promise<Trace> };
let served: { dirs: Dirs; trace: Promise<Trace> };
let control: { dirs: Dirs; trace: Promise<Trace> };
let pulled: { dirs: Dirs; trace: Promise<Trace> };

before(() => {
  if (skip) return;
  assert.ok(canTrace, 'strace must work here: CI has to run this test (apt-get install strace; ptrace permitted)');
  fixtures = mkdtempSync(join(tmpdir(), 'earshot-egress-fixtures-'));
  clip = join(fixtures, 'clip.wav');
  writeFileSync(clip, jfkClip(3));
  model = modelDir('english');
  // The test's own runs of tsx keep no cache in the fresh TMPDIR (bin/earshot.js sets its own).
  const tsxNoCache = { TSX_DISABLE_CACHE: '1' };
  cli = start(['node', BIN, 'transcribe', clip, '--model', model, '--format', 'json', '--sample-len', '4', '--temperature', '0', '--threads', '1'], { timeoutMs: 120_000 });
  served = start(['node', '--import', 'tsx', CHILD, 'serve', model, clip, String(WINDOW_MS)], { extraEnv: tsxNoCache, timeoutMs: 150_000 });
  // Outside a namespace the control's telemetry could really reach Microsoft: it stops before the upload.
  control = start(['node', '--import', 'tsx', CONTROL, String(isolate ? WINDOW_MS : 2000)], { extraEnv: tsxNoCache, timeoutMs: 60_000 });
  pulled = start(['node', '--import', 'tsx', CHILD, 'pull'], { extraEnv: tsxNoCache, timeoutMs: 90_000 });
});

after(async () => {
  await Promise.allSettled(runs.map((r) => r.trace));
  for (const r of runs) r.dirs.remove();
  if (fixtures) rmSync(fixtures, { recursive: true, force: true });
});

/** Files written outside EARSHOT_HOME and TMPDIR (TMPDIR must be empty afterwards, checked apart). */
function writtenOutside(t: Trace, d: Dirs): string[] {
  const ours = [d.earshotHome, d.tmp].map((p) => `${p}/`);
  return t.written.filter((p) => !ours.some((o) => p.startsWith(o)) && !/^\/dev\/(null|tty|pts\/)/.test(p));
}

/** The checks every earshot run must pass. */
function assertQuiet(t: Trace, d: Dirs): void {
  assert.ok(t.tracedToExit, `strace did not follow the run to its end: ${report(t)}`);
  assert.deepEqual(t.egress, [], `attempts to reach beyond loopback (or DNS): ${report(t)}`);
  assert.deepEqual(writtenOutside(t, d), [], `files written outside EARSHOT_HOME and TMPDIR: ${report(t)}`);
  assert.deepEqual(leftIn(d.home), [], 'HOME gained files');
  assert.deepEqual(leftIn(d.tmp), [], 'files left in TMPDIR');
}

test(`a CLI transcription attempts nothing beyond loopback and leaves nothing outside EARSHOT_HOME (${how})`, { skip, timeout: 150_000 }, async () => {
  const t = await cli.trace;
  assert.equal(t.status, 0, report(t));
  assert.equal(typeof (JSON.parse(t.stdout) as { text: unknown }).text, 'string');
  assertQuiet(t, cli.dirs);
});

test(`a server answering a transcription and a stream, ${WINDOW_MS / 1000} s of serving: no attempt beyond loopback, nothing left outside EARSHOT_HOME (${how})`, { skip, timeout: 180_000 }, async () => {
  const t = await served.trace;
  assert.equal(t.status, 0, report(t));
  const out = JSON.parse(t.stdout.trim().split('\n').at(-1)!) as {
    status: number;
    duration: number;
    stream: { types: string[]; close: number };
    servedMs: number;
    exit: number | string;
    stderr: string;
  };
  assert.equal(out.status, 200, out.stderr);
  assert.ok(Math.abs(out.duration - 3) < 0.01, `duration ${out.duration}`);
  assert.equal(out.stream.close, 1000, out.stderr);
  assert.ok(out.stream.types.includes('ready') && out.stream.types.includes('done'), out.stream.types.join());
  assert.ok(out.servedMs >= WINDOW_MS, `served ${out.servedMs} ms`);
  assert.equal(out.exit, 0, out.stderr);
  assertQuiet(t, served.dirs);
});

test(`control: the same tracer catches onnxruntime's telemetry when nothing turns it off (${how})`, { skip, timeout: 90_000 }, async () => {
  const t = await control.trace;
  assert.equal(t.status, 0, report(t));
  const { pid, telemetry } = JSON.parse(t.stdout) as { pid: number; telemetry: string | null };
  assert.equal(telemetry, '0');
  // Its queue and device id in HOME, its log in TMPDIR: seen by the write trace and left behind.
  const queue = join(control.dirs.home, '.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db');
  const debugLog = join(control.dirs.tmp, `mat-debug-${pid}.log`);
  assert.ok(t.written.includes(queue) && t.written.includes(debugLog), report(t));
  assert.ok(leftIn(control.dirs.home).includes('.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid'), leftIn(control.dirs.home).join());
  assert.ok(leftIn(control.dirs.tmp).includes(`mat-debug-${pid}.log`), leftIn(control.dirs.tmp).join());
  assert.ok(writtenOutside(t, control.dirs).length > 0);
  // And, where the namespace keeps it from getting anywhere, its collector lookups.
  if (isolate) assert.ok(t.egress.some((a) => a.to.endsWith(':53')), `no DNS attempt seen in ${WINDOW_MS} ms: ${report(t)}`);
});

test(`a model pull is the one allowed attempt, and it fails fast with a typed error (${how})`, { skip, timeout: 120_000 }, async () => {
  const t = await pulled.trace;
  assert.equal(t.status, 0, report(t));
  const pull = JSON.parse(t.stdout.trim().split('\n').at(-1)!) as { ok: boolean; kind?: string; ms: number; message?: string };
  assert.equal(pull.ok, false);
  assert.equal(pull.kind, 'model_unavailable', pull.message);
  assert.ok(pull.ms < 30_000, `the pull took ${pull.ms} ms to fail`);
  // It did try (so this tracer sees a real attempt), and nothing but the pull wrote outside.
  assert.ok(t.egress.length > 0, report(t));
  assert.deepEqual(leftIn(pulled.dirs.home), [], 'HOME gained files');
});
