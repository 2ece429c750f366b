// RedisJobs, the cluster's job queue, on a real redis-server, below the HTTP routes: a job an API
// node recorded but died before queueing in BullMQ (so before its 202) is removed by the next
// node's sweep, freeing its place and bytes under the bounds, while queued jobs are left alone;
// a job ends once, and its upload goes with it, whichever run tries to end it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { JobRecords } from '../../src/cluster/job-records.ts';
import { connectRedis } from '../../src/cluster/redis.ts';
import { RedisJobs } from '../../src/cluster/redis-jobs.ts';
import { hasUpload, putUpload } from '../../src/cluster/uploads.ts';
import type { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { log } from '../../src/log.ts';

log.level = 'error';

let redis: RedisServer;
let client: Redis;
let jobs: RedisJobs;
let records: JobRecords;

const request = { task: 'transcribe' as const, responseFormat: 'json' as const, vadFilter: false };

before(async () => {
  redis = await startRedis();
  client = connectRedis(redis.url, 'test');
  records = new JobRecords(client);
  jobs = new RedisJobs({ redisUrl: redis.url, retentionS: 60, maxUnfinished: 10, maxQueuedBytes: 10_000 });
  await jobs.start();
});
after(async () => {
  await jobs.close();
  client.disconnect();
  await redis.stop();
});

test('a job recorded but never queued is swept after a minute; a queued one stays', async () => {
  const queued = await jobs.submit({ owner: 'o', model: 'm', filename: 'a.wav', request, audio: new Uint8Array(100) });
  // What a node that died between the record and the BullMQ add leaves behind.
  const orphan = 'job_000000000000000000000001';
  await putUpload(client, orphan, new Uint8Array(200), 60_000);
  const created = await records.create({ id: orphan, owner: 'o', model: 'm', filename: 'b.wav', request, createdAt: Date.now() }, 200, 60_000, { maxUnfinished: 10, maxBytes: 10_000 });
  assert.ok('job' in created);
  assert.deepEqual(await records.unfinished(), { jobs: 2, bytes: 300 });

  assert.deepEqual(await jobs.sweepUnqueued(), [], 'nothing is swept within the minute');
  assert.deepEqual(await jobs.sweepUnqueued(Date.now() + 61_000), [orphan]);
  await assert.rejects(jobs.get(orphan, 'o'), (e: { code?: string }) => e.code === 'job_not_found');
  assert.equal(await hasUpload(client, orphan), false);
  assert.equal((await jobs.get(queued.id, 'o')).status, 'queued');
  assert.deepEqual(await records.unfinished(), { jobs: 1, bytes: 100 });
});

test('a job ends once: only the run holding its token can end it, and its upload goes with it', async () => {
  const job = await jobs.submit({ owner: 'p', model: 'm', filename: 'c.wav', request, audio: new Uint8Array(50) });
  assert.equal(await records.claim(job.id, 'run-1', 3), 'run');
  // Another worker took it over (the first one's lock expired).
  assert.equal(await records.claim(job.id, 'run-2', 3), 'run');
  assert.equal(await records.finish(job.id, 'run-1', { status: 'completed', segments: [] }), false, 'the old run cannot end it');
  assert.equal(await records.saveWindow(job.id, 'run-1', [], { seek: 3000, previousTokens: [] }, 30), false, 'nor store a window');
  assert.equal(await records.finish(job.id, 'run-2', { status: 'completed', segments: [] }), true);
  assert.equal(await records.finish(job.id, 'run-2', { status: 'completed', segments: [] }), false, 'ended once');
  assert.equal(await hasUpload(client, job.id), false);
  const done = await jobs.get(job.id, 'p');
  assert.equal(done.status, 'completed');
  assert.ok((await client.pttl(`earshot:job:${job.id}`)) > 0, 'kept for the retention time only');
});
