// The counted side of loadWhisper's cache, which the server's model registry relies on for hot
// swaps and unloads: acquire/release share one instance and close it with the last holder, a
// fresh acquire gives a new instance while the old one's holders keep theirs, and a plain
// loadWhisper holder (which never says when it is done) is never closed under it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { type Whisper } from '../../src/runtime/loaded-model.ts';
import { acquireWhisper, loadWhisper, releaseWhisper, unloadAll } from '../../src/runtime/model-cache.ts';

const dir = testModelDir({ preset: 'english', dtypes: ['fp32', 'q8'] });
const engine = { intraOpThreads: 1 };

/** Whether the instance's sessions still run (a released session refuses). */
async function runs(w: Whisper): Promise<boolean> {
  const { nMels, chunkFrames } = w.features.config;
  const features = new Float32Array(nMels * chunkFrames);
  try {
    await w.model.encode(features, 1);
    return true;
  } catch {
    return false;
  }
}

after(() => unloadAll());

test('acquire twice shares one instance; the last release closes it', async () => {
  const a = await acquireWhisper(dir, { dtype: 'q8', engine });
  const b = await acquireWhisper(dir, { dtype: 'q8', engine });
  assert.equal(a, b);
  assert.equal(await releaseWhisper(a), false, 'one holder left');
  assert.ok(await runs(b));
  assert.equal(await releaseWhisper(b), true);
  assert.equal(await runs(b), false);
  const c = await acquireWhisper(dir, { dtype: 'q8', engine });
  assert.notEqual(c, a, 'a closed instance is never handed out again');
  assert.ok(await runs(c));
  await releaseWhisper(c);
  await assert.rejects(releaseWhisper(c), /not held/);
});

test('a fresh acquire gives a new instance; the old one lives until its holder releases it', async () => {
  const old = await acquireWhisper(dir, { dtype: 'q8', engine });
  const fresh = await acquireWhisper(dir, { dtype: 'q8', engine, fresh: true });
  assert.notEqual(fresh, old);
  assert.equal(await acquireWhisper(dir, { dtype: 'q8', engine }), fresh, 'later loads get the fresh one');
  await releaseWhisper(fresh);
  assert.ok(await runs(old));
  assert.equal(await releaseWhisper(old), true);
  assert.equal(await runs(old), false);
  assert.ok(await runs(fresh), 'releasing the old instance leaves the new one alone');
  assert.equal(await releaseWhisper(fresh), true);
});

test('an instance a plain loadWhisper caller holds is never closed by releases', async () => {
  const held = await acquireWhisper(dir, { engine });
  const plain = await loadWhisper(dir, { engine });
  assert.equal(plain, held);
  assert.equal(await releaseWhisper(held), false);
  assert.ok(await runs(plain));
  await unloadAll();
  assert.equal(await runs(plain), false, 'unloadAll still closes it');
});
