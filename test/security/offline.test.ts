// No data leaves the machine: the server and a whole transcription run inside a Linux network
// namespace that has only loopback (`unshare -n`, then `ip link set lo up`; CI runs as root), so
// any outbound connection would fail, and the child also records every non-loopback connect and
// DNS lookup it attempts. Serving and transcribing must attempt none; pulling a hub model is the
// one thing that may, and it must fail fast with a typed error instead of hanging. Where
// namespaces are not permitted, the child runs with an in-process guard that throws on any
// non-loopback connect or lookup instead (the test says which in its name).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../server/helpers.ts';

const CHILD = join(ROOT, 'test/security/offline-child.ts');

function namespacesWork(): boolean {
  try {
    execFileSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const isolated = namespacesWork();
const how = isolated ? 'in a network namespace with only loopback' : 'under the in-process network guard (namespaces not permitted here)';

test(`serving and transcribing open no outbound connection; a model pull fails fast (${how})`, { timeout: 120_000 }, () => {
  const node = [process.execPath, '--import', 'tsx', CHILD];
  const r = isolated
    ? spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...node], { cwd: ROOT, encoding: 'utf8', timeout: 110_000 })
    : spawnSync(node[0]!, node.slice(1), { cwd: ROOT, encoding: 'utf8', timeout: 110_000, env: { ...process.env, EARSHOT_NET_GUARD: 'throw' } });
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    status: number;
    duration: number;
    serveAttempts: string[];
    pullAttempts: string[];
    pull: { ok: boolean; kind?: string; ms: number; message?: string };
  };
  assert.equal(out.status, 200);
  assert.ok(Math.abs(out.duration - 2) < 0.01, `duration ${out.duration}`);
  assert.deepEqual(out.serveAttempts, [], 'no connection beyond loopback while serving');
  // The pull did try the hub (so the recorder works), and gave up at once with a typed error.
  assert.ok(out.pullAttempts.some((a) => a.includes('huggingface.co')), JSON.stringify(out.pullAttempts));
  assert.equal(out.pull.ok, false);
  assert.equal(out.pull.kind, 'model_unavailable', out.pull.message);
  assert.ok(out.pull.ms < 30_000, `the pull took ${out.pull.ms} ms to fail`);
});
