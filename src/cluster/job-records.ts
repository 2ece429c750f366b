// The cluster's durable record of jobs, in Redis beside BullMQ's queues: what GET /v1/jobs shows
// (state, progress, language, error), each finished window's segments with the point a later run
// resumes from, the per-key listing, and the bounds on unfinished jobs and their queued bytes. The
// BullMQ job (queue `jobs-<model id>`) only says which worker runs it when; this record is the
// truth of the job. Every change is one Lua script, atomic in Redis, so a window's segments and its
// resume point are stored together, and a run that lost its job (cancelled, or taken over by another
// worker after its lock expired) changes nothing: each run has a token, and the record only takes
// writes from the run whose token it holds. The job ends (completed or failed) exactly once, and
// its upload is deleted in the same script.
//
// Keys (prefix earshot): job:<id> (hash), job:<id>:segments (list), job-index:owner:<owner>
// (sorted set by submission order), job-index:unfinished (hash id -> bytes), job-index:bytes (their
// sum), job-index:seq (the submission counter).
import type { Redis } from 'ioredis';
import type { ResumePoint } from '../decoding/transcribe.ts';
import type { Segment } from '../decoding/transcription.ts';
import type { Job, NewJob, StoredStatus } from '../jobs/types.ts';
import { KEY_PREFIX } from './redis.ts';

/** Where workers hear that a job they run was cancelled (its id is the message). */
export const JOB_CANCEL_CHANNEL = `${KEY_PREFIX}:job-cancel`;

/** The BullMQ queue of a model's jobs (BullMQ names may not hold ':'; ids are encoded). */
export const jobQueueName = (modelId: string): string => `jobs-${encodeURIComponent(modelId)}`;

const jobKey = (id: string): string => `${KEY_PREFIX}:job:${id}`;
const segmentsKey = (id: string): string => `${KEY_PREFIX}:job:${id}:segments`;
const ownerKey = (owner: string): string => `${KEY_PREFIX}:job-index:owner:${owner}`;
const UNFINISHED = `${KEY_PREFIX}:job-index:unfinished`;
const BYTES = `${KEY_PREFIX}:job-index:bytes`;
const SEQ = `${KEY_PREFIX}:job-index:seq`;
const uploadHead = (id: string): string => `${KEY_PREFIX}:upload:${id}`;

// Deletes the upload whose head is KEYS[k] (its chunks are <head>:0..n-1).
const DROP_UPLOAD = `
local function drop_upload(head)
  local h = redis.call('GET', head)
  if h then
    local n = tonumber(string.match(h, '^(%d+)'))
    for i = 0, n - 1 do redis.call('DEL', head .. ':' .. i) end
    redis.call('DEL', head)
  end
end
-- An unfinished job leaves the bounds' counts (once).
local function unqueue(id)
  local b = redis.call('HGET', KEYS_UNFINISHED, id)
  if b then
    redis.call('HDEL', KEYS_UNFINISHED, id)
    redis.call('DECRBY', KEYS_BYTES, b)
  end
end
`;
const withCommon = (body: string): string => `local KEYS_UNFINISHED = '${UNFINISHED}'\nlocal KEYS_BYTES = '${BYTES}'\n${DROP_UPLOAD}\n${body}`;

// A run's guard: the job exists, is running and is this run's (ARGV[1] = its token).
const OWNED = `
local st = redis.call('HMGET', KEYS[1], 'status', 'run')
if st[1] ~= 'running' or st[2] ~= ARGV[1] then return 0 end
`;

const SCRIPTS = {
  // KEYS: job, owner index. ARGV: id, maxUnfinished, maxBytes, bytes, field/value pairs...
  jobCreate: {
    keys: 2,
    lua: withCommon(`
if redis.call('HLEN', KEYS_UNFINISHED) >= tonumber(ARGV[2]) then return -1 end
local total = tonumber(redis.call('GET', KEYS_BYTES) or '0')
if total + tonumber(ARGV[4]) > tonumber(ARGV[3]) then return -2 end
local seq = redis.call('INCR', '${SEQ}')
redis.call('HSET', KEYS_UNFINISHED, ARGV[1], ARGV[4])
redis.call('INCRBY', KEYS_BYTES, ARGV[4])
redis.call('HSET', KEYS[1], 'seq', seq, unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], seq, ARGV[1])
return seq`),
  },
  // A run takes the job. KEYS: job. ARGV: token, now, maxInterruptions.
  // 0: not to be run (gone or finished); 1: run it; 2: interrupted too often, fail it.
  jobClaim: {
    keys: 1,
    lua: `
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'queued' and st ~= 'running' then return 0 end
local n = tonumber(redis.call('HGET', KEYS[1], 'interruptions'))
-- Left decoding a window: the run that had it died (or lost its lock) and cost the job that window.
if redis.call('HGET', KEYS[1], 'inWindow') == '1' then n = n + 1 end
redis.call('HSET', KEYS[1], 'status', 'running', 'inWindow', '0', 'run', ARGV[1], 'interruptions', n)
if redis.call('HGET', KEYS[1], 'startedAt') == '' then redis.call('HSET', KEYS[1], 'startedAt', ARGV[2]) end
if n > tonumber(ARGV[3]) then return 2 end
return 1`,
  },
  // KEYS: job. ARGV: token, field/value pairs...
  jobSet: { keys: 1, lua: `${OWNED}\nredis.call('HSET', KEYS[1], unpack(ARGV, 2))\nreturn 1` },
  // KEYS: job. ARGV: token, duration, language, probability.
  jobAudioInfo: {
    keys: 1,
    lua: `${OWNED}
redis.call('HSET', KEYS[1], 'duration', ARGV[2])
if redis.call('HGET', KEYS[1], 'language') == '' then redis.call('HSET', KEYS[1], 'language', ARGV[3], 'languageProbability', ARGV[4]) end
return 1`,
  },
  // KEYS: job, segments. ARGV: token, nextSeek, previousTokens, doneSeconds, segments...
  jobWindow: {
    keys: 2,
    lua: `${OWNED}
redis.call('HSET', KEYS[1], 'nextSeek', ARGV[2], 'previousTokens', ARGV[3], 'doneSeconds', ARGV[4], 'interruptions', 0)
if #ARGV > 4 then redis.call('RPUSH', KEYS[2], unpack(ARGV, 5)) end
return 1`,
  },
  // The job ends. KEYS: job, segments, upload head. ARGV: token ('' = any run, for a queued job),
  // now, status, errorCode, errorMessage, segments...
  jobFinish: {
    keys: 3,
    lua: withCommon(`
local st = redis.call('HMGET', KEYS[1], 'status', 'run')
if not (st[1] == 'running' and st[2] == ARGV[1]) and not (ARGV[1] == '' and st[1] == 'queued') then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'finishedAt', ARGV[2], 'errorCode', ARGV[4], 'errorMessage', ARGV[5], 'previousTokens', '', 'inWindow', '0', 'run', '')
if ARGV[3] == 'completed' then
  local d = redis.call('HGET', KEYS[1], 'duration')
  if d ~= '' then redis.call('HSET', KEYS[1], 'doneSeconds', d) end
end
if #ARGV > 5 then redis.call('RPUSH', KEYS[2], unpack(ARGV, 6)) end
local keep = tonumber(redis.call('HGET', KEYS[1], 'retentionMs'))
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
unqueue(string.sub(KEYS[1], ${jobKey('').length + 1}))
drop_upload(KEYS[3])
return 1`),
  },
  // A run hands its job back (shutdown): queued again with its stored windows. KEYS: job. ARGV: token.
  jobRequeue: {
    keys: 1,
    lua: `${OWNED}\nredis.call('HSET', KEYS[1], 'status', 'queued', 'inWindow', '0', 'run', '')\nreturn 1`,
  },
  // Cancel (delete) a job of ARGV[1]'s. KEYS: job, segments, owner index, upload head. Returns the record or nil.
  jobRemove: {
    keys: 4,
    lua: withCommon(`
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return nil end
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
unqueue(ARGV[2])
drop_upload(KEYS[4])
return all`),
  },
} as const;

type Script = keyof typeof SCRIPTS;
type Call = (...args: Array<string | number>) => Promise<unknown>;

/** Registers the scripts on a connection (once per connection; ioredis sends each by its hash). */
function scripted(redis: Redis): Record<Script, Call> {
  for (const [name, s] of Object.entries(SCRIPTS)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: s.keys, lua: s.lua });
  }
  return redis as unknown as Record<Script, Call>;
}

const nullable = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);
const num = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v));
const segmentJson = (s: Segment): string => JSON.stringify({ ...s, id: 0 });

function toJob(h: Record<string, string>): Job {
  return {
    id: h.id!,
    owner: h.owner!,
    status: h.status as StoredStatus,
    model: h.model!,
    filename: h.filename!,
    request: JSON.parse(h.request!) as Job['request'],
    createdAt: Number(h.createdAt),
    startedAt: num(h.startedAt),
    finishedAt: num(h.finishedAt),
    interruptions: Number(h.interruptions ?? 0),
    inWindow: h.inWindow === '1',
    duration: num(h.duration),
    doneSeconds: Number(h.doneSeconds ?? 0),
    language: nullable(h.language),
    languageProbability: num(h.languageProbability),
    nextSeek: Number(h.nextSeek ?? 0),
    previousTokens: h.previousTokens ? (JSON.parse(h.previousTokens) as number[]) : null,
    error: h.errorCode ? { code: h.errorCode, message: h.errorMessage ?? '' } : null,
  };
}

function pairsToRecord(a: unknown): Record<string, string> | undefined {
  if (!Array.isArray(a) || a.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < a.length; i += 2) out[String(a[i])] = String(a[i + 1]);
  return out;
}

export type CreateOutcome = { job: Job } | { refused: 'queue_full' | 'bytes_full' };

/** The job records on one connection. */
export class JobRecords {
  private readonly s: Record<Script, Call>;

  constructor(readonly redis: Redis) {
    this.s = scripted(redis);
  }

  /** Records a queued job unless a bound is reached; the bounds' counts and the record change together. */
  async create(job: NewJob, bytes: number, retentionMs: number, bounds: { maxUnfinished: number; maxBytes: number }): Promise<CreateOutcome> {
    const fields: Record<string, string | number> = {
      id: job.id,
      owner: job.owner,
      model: job.model,
      filename: job.filename,
      request: JSON.stringify(job.request),
      createdAt: job.createdAt,
      bytes,
      retentionMs,
      status: 'queued',
      startedAt: '',
      finishedAt: '',
      interruptions: 0,
      inWindow: 0,
      duration: '',
      doneSeconds: 0,
      language: '',
      languageProbability: '',
      nextSeek: 0,
      previousTokens: '',
      errorCode: '',
      errorMessage: '',
      run: '',
    };
    const r = Number(await this.s.jobCreate(jobKey(job.id), ownerKey(job.owner), job.id, bounds.maxUnfinished, bounds.maxBytes, bytes, ...Object.entries(fields).flat()));
    if (r === -1) return { refused: 'queue_full' };
    if (r === -2) return { refused: 'bytes_full' };
    return { job: (await this.get(job.id))! };
  }

  /** The job, if it exists and (when `owner` is given) is that owner's. */
  async get(id: string, owner?: string): Promise<Job | undefined> {
    const h = await this.redis.hgetall(jobKey(id));
    if (!h.id || (owner !== undefined && h.owner !== owner)) return undefined;
    return toJob(h);
  }

  /** The segments stored so far, numbered from 0. */
  async segments(id: string): Promise<Segment[]> {
    const rows = await this.redis.lrange(segmentsKey(id), 0, -1);
    return rows.map((r, i) => ({ ...(JSON.parse(r) as Segment), id: i }));
  }

  /**
   * An owner's jobs, newest first; undefined when `after` names no job of theirs. Index entries of
   * jobs whose record expired (the retention time) are dropped on the way.
   */
  async list(owner: string, opts: { limit: number; after?: string }): Promise<{ jobs: Job[]; hasMore: boolean } | undefined> {
    const index = ownerKey(owner);
    let max = '+inf';
    if (opts.after !== undefined) {
      const seq = await this.redis.zscore(index, opts.after);
      if (seq === null || !(await this.get(opts.after, owner))) return undefined;
      max = `(${seq}`;
    }
    const jobs: Job[] = [];
    for (;;) {
      const want = opts.limit + 1 - jobs.length;
      const ids = await this.redis.zrevrangebyscore(index, max, '-inf', 'WITHSCORES', 'LIMIT', 0, want);
      if (ids.length === 0) break;
      const p = this.redis.pipeline();
      for (let i = 0; i < ids.length; i += 2) p.hgetall(jobKey(ids[i]!));
      const rows = (await p.exec()) ?? [];
      const gone: string[] = [];
      rows.forEach(([, h], k) => {
        const rec = h as Record<string, string>;
        if (rec?.id) jobs.push(toJob(rec));
        else gone.push(ids[k * 2]!);
      });
      if (gone.length > 0) await this.redis.zrem(index, ...gone);
      max = `(${ids.at(-1)}`;
      if (jobs.length > opts.limit || ids.length / 2 < want) break;
    }
    return { jobs: jobs.slice(0, opts.limit), hasMore: jobs.length > opts.limit };
  }

  /** Deletes a job of `owner` with its segments and upload; returns it as it was. */
  async remove(id: string, owner: string): Promise<Job | undefined> {
    const r = pairsToRecord(await this.s.jobRemove(jobKey(id), segmentsKey(id), ownerKey(owner), uploadHead(id), owner, id));
    return r ? toJob(r) : undefined;
  }

  /** Run `token` takes the job: 'run', 'skip' (gone or finished) or 'exhausted' (fail it: too many interruptions). */
  async claim(id: string, token: string, maxInterruptions: number): Promise<'run' | 'skip' | 'exhausted'> {
    const r = Number(await this.s.jobClaim(jobKey(id), token, Date.now(), maxInterruptions));
    return r === 1 ? 'run' : r === 2 ? 'exhausted' : 'skip';
  }

  async enterWindow(id: string, token: string): Promise<boolean> {
    return Number(await this.s.jobSet(jobKey(id), token, 'inWindow', 1)) === 1;
  }

  async setAudioInfo(id: string, token: string, info: { duration: number; language: string; languageProbability: number }): Promise<boolean> {
    return Number(await this.s.jobAudioInfo(jobKey(id), token, info.duration, info.language, info.languageProbability)) === 1;
  }

  async saveWindow(id: string, token: string, segments: readonly Segment[], resume: ResumePoint, doneSeconds: number): Promise<boolean> {
    const r = await this.s.jobWindow(jobKey(id), segmentsKey(id), token, resume.seek, JSON.stringify(resume.previousTokens), doneSeconds, ...segments.map(segmentJson));
    return Number(r) === 1;
  }

  /** running (this run's; or queued, with token '') → completed or failed; the upload goes. False if it was not. */
  async finish(id: string, token: string, end: { status: 'completed'; segments: readonly Segment[] } | { status: 'failed'; error: { code: string; message: string } }): Promise<boolean> {
    const args =
      end.status === 'completed'
        ? ['completed', '', '', ...end.segments.map(segmentJson)]
        : ['failed', end.error.code, end.error.message];
    return Number(await this.s.jobFinish(jobKey(id), segmentsKey(id), uploadHead(id), token, Date.now(), ...args)) === 1;
  }

  /** This run's job goes back to the queue with its stored windows (nothing counted against it). */
  async requeue(id: string, token: string): Promise<boolean> {
    return Number(await this.s.jobRequeue(jobKey(id), token)) === 1;
  }

  /**
   * Queued jobs recorded before `before` (unix ms) whose BullMQ job does not exist: an API node died
   * between recording a job and queueing it, before its 202 (HSCAN over the unfinished jobs).
   */
  async unqueued(before: number): Promise<Array<{ id: string; owner: string }>> {
    const found: Array<{ id: string; owner: string }> = [];
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(UNFINISHED, cursor, 'COUNT', 500);
      cursor = next;
      const ids = flat.filter((_, i) => i % 2 === 0);
      if (ids.length === 0) continue;
      const p = this.redis.pipeline();
      for (const id of ids) p.hmget(jobKey(id), 'status', 'model', 'owner', 'createdAt');
      const rows = ((await p.exec()) ?? []).map(([, r]) => r as Array<string | null>);
      const old = ids.map((id, k) => ({ id, row: rows[k]! })).filter(({ row }) => row[0] === 'queued' && Number(row[3]) < before);
      if (old.length === 0) continue;
      const q = this.redis.pipeline();
      for (const { id, row } of old) q.exists(`${KEY_PREFIX}:${jobQueueName(row[1]!)}:${id}`);
      const exists = ((await q.exec()) ?? []).map(([, n]) => Number(n));
      old.forEach(({ id, row }, k) => {
        if (exists[k] === 0) found.push({ id, owner: row[2]! });
      });
    } while (cursor !== '0');
    return found;
  }

  /** Jobs queued or running, and their upload bytes (metrics, tests). */
  async unfinished(): Promise<{ jobs: number; bytes: number }> {
    const [jobs, bytes] = await Promise.all([this.redis.hlen(UNFINISHED), this.redis.get(BYTES)]);
    return { jobs, bytes: Number(bytes ?? 0) };
  }
}
