// The job settings in the one config loader: retention as seconds or with a unit, from each source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEarshotError } from '../../src/errors.ts';
import { loadServerConfig } from '../../src/server/config.ts';

test('job settings: defaults, retention with units from env and flags, bad values named', () => {
  const d = loadServerConfig({ env: {} });
  assert.equal(d.jobRetentionS, 7 * 86400);
  assert.equal(d.jobConcurrency, 1);
  assert.equal(d.jobQueueSize, 1000);
  assert.equal(d.dataDir, undefined);
  assert.equal(loadServerConfig({ env: { EARSHOT_JOB_RETENTION: '12h' } }).jobRetentionS, 43200);
  assert.equal(loadServerConfig({ env: { EARSHOT_JOB_RETENTION: '90' } }).jobRetentionS, 90);
  assert.equal(loadServerConfig({ env: { EARSHOT_JOB_RETENTION: '12h' }, flags: { jobRetentionS: '30m' } }).jobRetentionS, 1800);
  assert.equal(loadServerConfig({ env: {}, flags: { jobRetentionS: '1.5d' } }).jobRetentionS, 129600);
  const c = loadServerConfig({ env: { EARSHOT_DATA_DIR: '/srv/earshot', EARSHOT_JOB_CONCURRENCY: '3', EARSHOT_JOB_QUEUE_SIZE: '10' } });
  assert.deepEqual([c.dataDir, c.jobConcurrency, c.jobQueueSize], ['/srv/earshot', 3, 10]);
  for (const [env, name] of [
    [{ EARSHOT_JOB_RETENTION: '5 weeks' }, 'EARSHOT_JOB_RETENTION'],
    [{ EARSHOT_JOB_RETENTION: '0' }, 'EARSHOT_JOB_RETENTION'],
    [{ EARSHOT_JOB_CONCURRENCY: '0' }, 'EARSHOT_JOB_CONCURRENCY'],
  ] as const) {
    assert.throws(() => loadServerConfig({ env }), (e) => isEarshotError(e) && e.code === 'bad_config' && e.message.includes(name));
  }
});
