// Uploaded audio of jobs that have not finished, one file per job in a private directory (0700,
// files 0600). A file is written under a temporary name, synced, then renamed, so a crash never
// leaves a half-written file under a job's name; anything in the directory that belongs to no
// unfinished job (a temporary file, the audio of a job that finished just before a crash) is an
// orphan and `sweep` removes it.
import { randomBytes } from 'node:crypto';
import { chmodSync, createReadStream, mkdirSync } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EarshotError } from '../errors.ts';

/** Job ids as `newJobId` makes them: also safe as file names. */
const JOB_ID = /^job_[0-9a-f]{24}$/;

export function newJobId(): string {
  return `job_${randomBytes(12).toString('hex')}`;
}

export function isJobId(s: string): boolean {
  return JOB_ID.test(s);
}

export class JobAudio {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  /** The audio file of job `id`. */
  path(id: string): string {
    if (!isJobId(id)) throw new EarshotError('internal', 'bad_job_id', `not a job id: ${JSON.stringify(id).slice(0, 60)}`);
    return join(this.dir, id);
  }

  /**
   * Writes a job's audio durably (synced before it is renamed into place), from bytes or by copying
   * a file (an upload spooled to disk).
   */
  async save(id: string, audio: Uint8Array | string): Promise<void> {
    const final = this.path(id);
    const temp = `${final}.${randomBytes(4).toString('hex')}.part`;
    const f = await open(temp, 'wx', 0o600);
    try {
      if (typeof audio === 'string') {
        for await (const chunk of createReadStream(audio) as AsyncIterable<Buffer>) await f.write(chunk);
      } else await f.writeFile(audio);
      await f.sync();
    } catch (e) {
      await f.close();
      await rm(temp, { force: true });
      throw e;
    }
    await f.close();
    await rename(temp, final);
  }

  async remove(id: string): Promise<void> {
    await rm(this.path(id), { force: true });
  }

  /** Deletes every file that is not the audio of one of `keep`; returns the names removed. */
  async sweep(keep: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.dir)) {
      if (keep.has(name)) continue;
      await rm(join(this.dir, name), { force: true, recursive: true });
      removed.push(name);
    }
    return removed;
  }

  /** Names in the directory (tests, diagnostics). */
  list(): Promise<string[]> {
    return readdir(this.dir);
  }
}
