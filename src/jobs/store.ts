// The durable record of async transcription jobs: one SQLite database (better-sqlite3, WAL mode)
// in the data directory. Every state change is one statement or one transaction, so a crash at any
// point leaves each job either before or after a change, never half-way: a window's segments and
// the seek after it are written together, so a resumed run never repeats or skips a window.
//
// The caller holds the data directory's lock (lock.ts) while the store is open. Opening runs
// SQLite's quick integrity check: a damaged file is reported as such (`job_store_damaged`) rather
// than failing every later call.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Segment } from '../decoding/transcription.ts';
import type { ResumePoint } from '../decoding/transcribe.ts';
import { EarshotError } from '../errors.ts';
import { damagedStore, storageFault } from './storage-faults.ts';
import type { Job, JobRequest, NewJob, StoredStatus } from './types.ts';

const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
  model TEXT NOT NULL,
  filename TEXT NOT NULL,
  request TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  interruptions INTEGER NOT NULL DEFAULT 0,
  in_window INTEGER NOT NULL DEFAULT 0,
  duration REAL,
  done_seconds REAL NOT NULL DEFAULT 0,
  language TEXT,
  language_probability REAL,
  next_seek INTEGER NOT NULL DEFAULT 0,
  previous_tokens TEXT,
  error_code TEXT,
  error_message TEXT
);
CREATE INDEX jobs_by_owner ON jobs (owner, seq);
CREATE INDEX jobs_by_status ON jobs (status, seq);
CREATE TABLE job_segments (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  segment TEXT NOT NULL,
  PRIMARY KEY (job_id, idx)
);
`;

/**
 * Version 1 counted every run started (\`attempts\`), whatever stopped it; version 2 counts only the
 * crashes that cost a job its window since its last progress (\`interruptions\`), and marks the
 * job whose window is being decoded (\`in_window\`). Old counts meant something else: they restart at 0.
 */
const MIGRATE_1_TO_2 = `
ALTER TABLE jobs RENAME COLUMN attempts TO interruptions;
UPDATE jobs SET interruptions = 0;
ALTER TABLE jobs ADD COLUMN in_window INTEGER NOT NULL DEFAULT 0;
`;

interface Row {
  seq: number;
  id: string;
  owner: string;
  status: StoredStatus;
  model: string;
  filename: string;
  request: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  interruptions: number;
  in_window: number;
  duration: number | null;
  done_seconds: number;
  language: string | null;
  language_probability: number | null;
  next_seek: number;
  previous_tokens: string | null;
  error_code: string | null;
  error_message: string | null;
}

function toJob(r: Row): Job {
  return {
    id: r.id,
    owner: r.owner,
    status: r.status,
    model: r.model,
    filename: r.filename,
    request: JSON.parse(r.request) as JobRequest,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    interruptions: r.interruptions,
    inWindow: r.in_window === 1,
    duration: r.duration,
    doneSeconds: r.done_seconds,
    language: r.language,
    languageProbability: r.language_probability,
    nextSeek: r.next_seek,
    previousTokens: r.previous_tokens === null ? null : (JSON.parse(r.previous_tokens) as number[]),
    error: r.error_code === null ? null : { code: r.error_code, message: r.error_message ?? '' },
  };
}

export interface ListOptions {
  limit: number;
  /** A job id: list the jobs created before it (the next page). */
  after?: string;
}

export class JobStore {
  private constructor(private readonly db: Database.Database) {}

  /**
   * Opens (creating if needed) `jobs.db` in `dataDir`, after a quick integrity check; the caller
   * holds the directory's lock. Throws `job_store_damaged` for a damaged file, a storage fault
   * (storage-faults.ts) for a disk that fails.
   */
  static open(dataDir: string): JobStore {
    const file = join(dataDir, 'jobs.db');
    let db: Database.Database | undefined;
    try {
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      // FULL: a job acknowledged with 202 survives a power cut, not only a crash of the process.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      // quick_check reads every page (not the indexes' agreement with their tables): milliseconds
      // for a store of thousands of jobs.
      const found = (db.pragma('quick_check(3)') as Array<{ quick_check: string }>).map((r) => r.quick_check);
      if (found.join() !== 'ok') throw damagedStore(`its integrity check failed (${found.join('; ').slice(0, 300)})`);
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version === 0) {
        db.transaction(() => {
          db!.exec(SCHEMA);
          db!.pragma(`user_version = ${SCHEMA_VERSION}`);
        })();
      } else if (version === 1) {
        db.transaction(() => {
          db!.exec(MIGRATE_1_TO_2);
          db!.pragma(`user_version = ${SCHEMA_VERSION}`);
        })();
      } else if (version !== SCHEMA_VERSION) {
        throw new EarshotError('invalid_argument', 'bad_job_store', `the job store ${file} has schema version ${version}; this earshot knows ${SCHEMA_VERSION}`);
      }
      return new JobStore(db);
    } catch (e) {
      db?.close();
      throw storageFault(e) ?? e;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Queues `job` if fewer than `maxUnfinished` jobs are waiting or running, else returns undefined.
   * The count and the insert are one transaction, so concurrent submissions cannot overshoot the bound.
   */
  create(job: NewJob, maxUnfinished = Number.POSITIVE_INFINITY): Job | undefined {
    return this.db.transaction(() => {
      if (this.countUnfinished() >= maxUnfinished) return undefined;
      this.db
        .prepare('INSERT INTO jobs (id, owner, status, model, filename, request, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(job.id, job.owner, 'queued', job.model, job.filename, JSON.stringify(job.request), job.createdAt);
      return this.get(job.id)!;
    }).immediate();
  }

  /** The job, if it exists and (when `owner` is given) belongs to that owner. */
  get(id: string, owner?: string): Job | undefined {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    if (!r || (owner !== undefined && r.owner !== owner)) return undefined;
    return toJob(r);
  }

  /** An owner's jobs, newest first; `undefined` when `after` names no job of theirs. */
  list(owner: string, opts: ListOptions): { jobs: Job[]; hasMore: boolean } | undefined {
    let before = Number.MAX_SAFE_INTEGER;
    if (opts.after !== undefined) {
      const r = this.db.prepare('SELECT seq FROM jobs WHERE id = ? AND owner = ?').get(opts.after, owner) as { seq: number } | undefined;
      if (!r) return undefined;
      before = r.seq;
    }
    const rows = this.db
      .prepare('SELECT * FROM jobs WHERE owner = ? AND seq < ? ORDER BY seq DESC LIMIT ?')
      .all(owner, before, opts.limit + 1) as Row[];
    return { jobs: rows.slice(0, opts.limit).map(toJob), hasMore: rows.length > opts.limit };
  }

  /** Jobs waiting or running (every owner): what the submission bound counts. */
  countUnfinished(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running')").get() as { n: number }).n;
  }

  /** Ids of the jobs whose audio must be kept. */
  unfinishedIds(): Set<string> {
    const rows = this.db.prepare("SELECT id FROM jobs WHERE status IN ('queued', 'running')").all() as Array<{ id: string }>;
    return new Set(rows.map((r) => r.id));
  }

  /** Moves the oldest queued job to running and returns it (nothing is counted against it yet: see `enterWindow`). */
  claimNext(now: number): Job | undefined {
    return this.db.transaction(() => {
      const r = this.db.prepare("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1").get() as { id: string } | undefined;
      if (!r) return undefined;
      this.db
        .prepare("UPDATE jobs SET status = 'running', in_window = 0, started_at = coalesce(started_at, ?) WHERE id = ?")
        .run(now, r.id);
      return this.get(r.id);
    })();
  }

  /**
   * Marks the job as decoding its windows: from here until it stops, a crash of the process costs it
   * the window in progress and counts against it (`recoverInterrupted`). False if it is no longer running.
   */
  enterWindow(id: string): boolean {
    return this.db.prepare("UPDATE jobs SET in_window = 1 WHERE id = ? AND status = 'running'").run(id).changes === 1;
  }

  /** Records what decoding the audio and detecting the language gave; false if the job is no longer running. */
  setAudioInfo(id: string, info: { duration: number; language: string; languageProbability: number }): boolean {
    return (
      this.db
        .prepare("UPDATE jobs SET duration = ?, language = coalesce(language, ?), language_probability = coalesce(language_probability, ?) WHERE id = ? AND status = 'running'")
        .run(info.duration, info.language, info.languageProbability, id).changes === 1
    );
  }

  /**
   * Stores one window's segments with the point after it, atomically. That is progress: the job's
   * count of interruptions starts again from 0. False (nothing written) when the job is no longer
   * running: it was cancelled, and the run should stop.
   */
  saveWindow(id: string, segments: readonly Segment[], resume: ResumePoint, doneSeconds: number): boolean {
    return this.db.transaction(() => {
      const changed = this.db
        .prepare("UPDATE jobs SET next_seek = ?, previous_tokens = ?, done_seconds = ?, interruptions = 0 WHERE id = ? AND status = 'running'")
        .run(resume.seek, JSON.stringify(resume.previousTokens), doneSeconds, id).changes;
      if (changed !== 1) return false;
      this.appendSegments(id, segments);
      return true;
    })();
  }

  /** The segments stored so far, in order, numbered from 0. */
  segments(id: string): Segment[] {
    const rows = this.db.prepare('SELECT segment FROM job_segments WHERE job_id = ? ORDER BY idx').all(id) as Array<{ segment: string }>;
    return rows.map((r) => JSON.parse(r.segment) as Segment);
  }

  /** running → completed, storing the last `segments` not yet stored; false (nothing written) if the job was not running. */
  complete(id: string, now: number, segments: readonly Segment[] = []): boolean {
    return this.db.transaction(() => {
      const changed = this.db
        .prepare("UPDATE jobs SET status = 'completed', finished_at = ?, done_seconds = coalesce(duration, done_seconds), previous_tokens = NULL, in_window = 0 WHERE id = ? AND status = 'running'")
        .run(now, id).changes;
      if (changed !== 1) return false;
      this.appendSegments(id, segments);
      return true;
    })();
  }

  private appendSegments(id: string, segments: readonly Segment[]): void {
    const next = (this.db.prepare('SELECT count(*) AS n FROM job_segments WHERE job_id = ?').get(id) as { n: number }).n;
    const insert = this.db.prepare('INSERT INTO job_segments (job_id, idx, segment) VALUES (?, ?, ?)');
    segments.forEach((s, i) => insert.run(id, next + i, JSON.stringify({ ...s, id: next + i })));
  }

  /** queued or running → failed, with the reason; false if the job was already finished or gone. */
  fail(id: string, error: { code: string; message: string }, now: number): boolean {
    return (
      this.db
        .prepare("UPDATE jobs SET status = 'failed', finished_at = ?, error_code = ?, error_message = ?, previous_tokens = NULL, in_window = 0 WHERE id = ? AND status IN ('queued', 'running')")
        .run(now, error.code, error.message, id).changes === 1
    );
  }

  /** running → queued (shutdown, model busy): the progress stored so far is kept for the next run, nothing is counted. */
  requeue(id: string): boolean {
    return this.db.prepare("UPDATE jobs SET status = 'queued', in_window = 0 WHERE id = ? AND status = 'running'").run(id).changes === 1;
  }

  /**
   * At startup, for the jobs a process that died left running: each one that was decoding a window
   * (`in_window`) is charged one interruption; those charged more than `maxInterruptions` times
   * since their last progress are failed (`too_many_attempts`), the others go back to the queue with
   * their stored windows. A job that was only claimed (waiting for its model, reading its audio) is
   * requeued uncharged. One transaction.
   */
  recoverInterrupted(maxInterruptions: number, now: number): { requeued: string[]; failed: string[] } {
    return this.db.transaction(() => {
      const rows = this.db
        .prepare("UPDATE jobs SET status = 'queued', interruptions = interruptions + in_window, in_window = 0 WHERE status = 'running' RETURNING id, interruptions")
        .all() as Array<{ id: string; interruptions: number }>;
      const failed: string[] = [];
      const fail = this.db.prepare(
        "UPDATE jobs SET status = 'failed', finished_at = ?, error_code = 'too_many_attempts', error_message = ?, previous_tokens = NULL WHERE id = ?",
      );
      for (const r of rows) {
        if (r.interruptions <= maxInterruptions) continue;
        fail.run(now, `the server stopped ${r.interruptions} times while decoding this job, without a window finished in between; it is not tried again`, r.id);
        failed.push(r.id);
      }
      return { requeued: rows.filter((r) => !failed.includes(r.id)).map((r) => r.id), failed };
    })();
  }

  /** Deletes a job and its segments; returns it as it was, or undefined if it is not the owner's. */
  remove(id: string, owner?: string): Job | undefined {
    return this.db.transaction(() => {
      const job = this.get(id, owner);
      if (job) this.db.prepare('DELETE FROM jobs WHERE id = ?').run(id);
      return job;
    })();
  }

  /** Deletes the jobs that finished before `cutoff` (unix ms); returns their ids. */
  purgeFinishedBefore(cutoff: number): string[] {
    const rows = this.db
      .prepare("DELETE FROM jobs WHERE status IN ('completed', 'failed') AND finished_at < ? RETURNING id")
      .all(cutoff) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }
}
