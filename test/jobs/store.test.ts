// The job store on its own (a real SQLite file in a temporary directory): state transitions,
// atomic windows, per-key visibility and pagination, retention purge, recovery after a crash,
// the audio directory's modes and orphan sweep, and the one-process lock. (Which crashes count
// against a job: attempts.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Segment } from '../../src/decoding/transcription.ts';
import { isEarshotError } from '../../src/errors.ts';
import { JobAudio, newJobId } from '../../src/jobs/audio-files.ts';
import { DataDirLock } from '../../src/jobs/lock.ts';
import { recoverJobs } from '../../src/jobs/recovery.ts';
import { purgeExpired } from '../../src/jobs/retention.ts';
import { JobStore } from '../../src/jobs/store.ts';
import type { JobRequest } from '../../src/jobs/types.ts';

const REQUEST: JobRequest = { task: 'transcribe', responseFormat: 'json', vadFilter: false, language: 'en' };

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'earshot-jobs-'));
}

function seg(seek: number, text: string): Segment {
  return { id: 99, seek, start: seek / 100, end: seek / 100 + 1, text, tokens: [1, 2], temperature: 0, avg_logprob: -0.1, compression_ratio: 1, no_speech_prob: 0 };
}

function add(store: JobStore, owner: string, createdAt = Date.now()): string {
  const id = newJobId();
  store.create({ id, owner, model: 'm', filename: 'a.wav', request: REQUEST, createdAt });
  return id;
}

test('a job goes queued → running → completed, windows stored atomically with their resume point', () => {
  const store = JobStore.open(tempDir());
  try {
    const id = add(store, 'k1');
    assert.equal(store.get(id)!.status, 'queued');
    assert.deepEqual(store.get(id)!.request, REQUEST);
    const claimed = store.claimNext(1000)!;
    assert.equal(claimed.id, id);
    assert.equal(claimed.status, 'running');
    assert.equal(claimed.interruptions, 0);
    assert.equal(claimed.inWindow, false, 'claimed, not yet decoding');
    assert.equal(claimed.startedAt, 1000);
    assert.equal(store.claimNext(1001), undefined, 'nothing else queued');
    assert.ok(store.setAudioInfo(id, { duration: 70, language: 'en', languageProbability: 0.9 }));
    assert.ok(store.saveWindow(id, [seg(0, ' a'), seg(0, ' b')], { seek: 2900, previousTokens: [5, 6] }, 29));
    let j = store.get(id)!;
    assert.deepEqual([j.nextSeek, j.previousTokens, j.doneSeconds], [2900, [5, 6], 29]);
    assert.ok(store.complete(id, 2000, [seg(2900, ' c')]));
    j = store.get(id)!;
    assert.equal(j.status, 'completed');
    assert.equal(j.finishedAt, 2000);
    assert.equal(j.doneSeconds, 70);
    assert.deepEqual(store.segments(id).map((s) => [s.id, s.seek, s.text]), [[0, 0, ' a'], [1, 0, ' b'], [2, 2900, ' c']]);
    // Finished is final: no transition out of it.
    assert.equal(store.fail(id, { code: 'x', message: 'y' }, 3000), false);
    assert.equal(store.requeue(id), false);
    assert.equal(store.saveWindow(id, [seg(5000, ' d')], { seek: 6000, previousTokens: [] }, 60), false);
    assert.equal(store.segments(id).length, 3);
  } finally {
    store.close();
  }
});

test('failures keep their reason; a queued job can fail; the oldest queued job is claimed first', () => {
  const store = JobStore.open(tempDir());
  try {
    const first = add(store, 'k');
    const second = add(store, 'k');
    assert.ok(store.fail(second, { code: 'not_audio', message: 'not audio' }, 5));
    assert.deepEqual(store.get(second)!.error, { code: 'not_audio', message: 'not audio' });
    assert.equal(store.get(second)!.status, 'failed');
    assert.equal(store.claimNext(1)!.id, first);
    assert.ok(store.enterWindow(first));
    assert.ok(store.requeue(first));
    assert.deepEqual([store.get(first)!.status, store.get(first)!.inWindow, store.get(first)!.interruptions], ['queued', false, 0]);
    assert.equal(store.claimNext(2)!.id, first);
  } finally {
    store.close();
  }
});

test('cancel while queued and while running: the row and its segments go, a running run is told to stop', () => {
  const store = JobStore.open(tempDir());
  try {
    const queued = add(store, 'k');
    const running = add(store, 'k');
    assert.equal(store.claimNext(1)!.id, queued);
    // queued: here the first is running, so cancel the second while still queued.
    assert.equal(store.remove(running, 'someone-else'), undefined, 'another key cannot cancel it');
    assert.equal(store.remove(running, 'k')!.status, 'queued');
    assert.equal(store.get(running), undefined);
    // running, with a stored window
    assert.ok(store.saveWindow(queued, [seg(0, ' x')], { seek: 3000, previousTokens: [1] }, 30));
    assert.equal(store.remove(queued, 'k')!.status, 'running');
    assert.equal(store.segments(queued).length, 0, 'segments deleted with the job');
    // What the runner then tries is refused, so the run stops and nothing is recreated.
    assert.equal(store.saveWindow(queued, [seg(3000, ' y')], { seek: 6000, previousTokens: [] }, 60), false);
    assert.equal(store.complete(queued, 9), false);
    assert.equal(store.segments(queued).length, 0);
    assert.equal(store.countUnfinished(), 0);
  } finally {
    store.close();
  }
});

test('each key sees only its own jobs, newest first, paginated with limit and after', () => {
  const store = JobStore.open(tempDir());
  try {
    const mine = Array.from({ length: 5 }, () => add(store, 'mine'));
    const theirs = add(store, 'theirs');
    assert.equal(store.get(theirs, 'mine'), undefined);
    assert.equal(store.get(mine[0]!, 'theirs'), undefined);
    assert.equal(store.get(theirs, 'theirs')!.id, theirs);
    const p1 = store.list('mine', { limit: 2 })!;
    assert.deepEqual(p1.jobs.map((j) => j.id), [mine[4], mine[3]]);
    assert.equal(p1.hasMore, true);
    const p2 = store.list('mine', { limit: 2, after: mine[3] })!;
    assert.deepEqual(p2.jobs.map((j) => j.id), [mine[2], mine[1]]);
    const p3 = store.list('mine', { limit: 2, after: mine[1] })!;
    assert.deepEqual(p3.jobs.map((j) => j.id), [mine[0]]);
    assert.equal(p3.hasMore, false);
    assert.equal(store.list('mine', { limit: 2, after: theirs }), undefined, 'a cursor of another key is unknown');
    assert.deepEqual(store.list('theirs', { limit: 10 })!.jobs.map((j) => j.id), [theirs]);
  } finally {
    store.close();
  }
});

test('retention purges finished jobs past their time, never unfinished ones', async () => {
  const dir = tempDir();
  const store = JobStore.open(dir);
  const audio = new JobAudio(join(dir, 'audio'));
  try {
    const old = add(store, 'k');
    const recent = add(store, 'k');
    const failedOld = add(store, 'k');
    const waiting = add(store, 'k', 0);
    store.claimNext(0);
    store.complete(old, 1_000);
    store.claimNext(0);
    store.complete(recent, 9_000);
    store.fail(failedOld, { code: 'x', message: 'y' }, 2_000);
    await audio.save(waiting, new Uint8Array([1, 2, 3]));
    const purged = await purgeExpired(store, audio, 5_000, 10_000);
    assert.deepEqual(purged.sort(), [old, failedOld].sort());
    assert.equal(store.get(old), undefined);
    assert.equal(store.get(recent)!.status, 'completed');
    assert.equal(store.get(waiting)!.status, 'queued');
    assert.deepEqual(await audio.list(), [waiting]);
  } finally {
    store.close();
  }
});

test('recovery requeues interrupted jobs with their progress and sweeps orphan files; files and dirs are private', async () => {
  const dir = join(tempDir(), 'data');
  const lock = DataDirLock.acquire(dir); // creates the directory, private
  let store = JobStore.open(dir);
  let audio = new JobAudio(join(dir, 'audio'));
  const a = add(store, 'k');
  const b = add(store, 'k');
  await audio.save(a, new Uint8Array(10));
  await audio.save(b, new Uint8Array(10));
  const done = newJobId();
  await audio.save(done, new Uint8Array(10)); // audio of a job whose row says finished
  writeFileSync(join(dir, 'audio', `${a}.1234.part`), 'half'); // a write cut by a crash
  store.claimNext(1);
  store.saveWindow(a, [seg(0, ' hi')], { seek: 3000, previousTokens: [7] }, 30);
  assert.equal(statSync(join(dir, 'audio')).mode & 0o777, 0o700);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(audio.path(a)).mode & 0o777, 0o600);
  store.close(); // as if the process had died: the row still says running

  store = JobStore.open(dir);
  audio = new JobAudio(join(dir, 'audio'));
  try {
    const r = await recoverJobs(store, audio);
    assert.deepEqual(r.requeued, [a]);
    assert.deepEqual(r.failed, []);
    assert.deepEqual(r.orphans.sort(), [done, `${a}.1234.part`].sort());
    assert.deepEqual((await audio.list()).sort(), [a, b].sort());
    const j = store.get(a)!;
    assert.equal(j.status, 'queued');
    assert.deepEqual([j.nextSeek, j.previousTokens, j.interruptions], [3000, [7], 0], 'claimed but never in a window: not charged');
    assert.deepEqual(store.segments(a).map((s) => s.text), [' hi']);
  } finally {
    store.close();
    lock.release();
  }
});

test('one process at a time: a second lock on the same directory is refused until the first is released', () => {
  const dir = tempDir();
  const first = DataDirLock.acquire(dir);
  assert.throws(() => DataDirLock.acquire(dir), (e) => isEarshotError(e) && e.code === 'data_dir_in_use');
  first.release();
  const second = DataDirLock.acquire(dir);
  second.release();
});
