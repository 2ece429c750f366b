// A killed earshot's temporary audio (a spooled upload, a file ffmpeg had to seek in) does not stay
// on the machine: the next server to start deletes the private directories whose process is gone,
// and leaves those of live processes (another server's uploads in flight) alone.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { tempPrefix } from '../../src/private-temp.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import { isolateHome, modelDir, startTestServer } from './helpers.ts';

const savedTmp = process.env.TMPDIR;
const home = isolateHome();
const model = modelDir('english'); // before TMPDIR moves: the test models live in the usual temp dir
const root = mkdtempSync(join(tmpdir(), 'earshot-sweep-test-'));
const live = spawn('sleep', ['60'], { stdio: 'ignore' });

after(async () => {
  live.kill('SIGKILL');
  await unloadAll();
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  rmSync(root, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

/** A private directory as earshot names it, holding a stand-in for a client's audio. */
function leftover(kind: 'upload' | 'audio', pid: number): string {
  const dir = join(root, `${tempPrefix(kind, pid)}Ab3xYz`);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, kind === 'upload' ? 'upload' : 'input'), 'RIFF client audio', { mode: 0o600 });
  return dir;
}

test("a starting server deletes the temporary audio of dead earshot processes, and only theirs", async () => {
  const dead = spawnSync('true').pid!; // a pid that has exited
  const gone = [leftover('upload', dead), leftover('audio', dead)];
  const kept = [leftover('upload', live.pid!), leftover('audio', process.pid)];
  const other = join(root, 'earshot-notes-123-x'); // not one of ours: never touched
  mkdirSync(other);
  process.env.TMPDIR = root;
  const server = await startTestServer({ model, sampleLen: 2 }, { load: false });
  try {
    for (const dir of gone) assert.equal(existsSync(dir), false, `${dir} (dead process) deleted`);
    for (const dir of kept) assert.equal(existsSync(dir), true, `${dir} (live process) kept`);
    assert.equal(existsSync(other), true);
  } finally {
    await server.app.close();
  }
});
