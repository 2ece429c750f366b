// One process owns a data directory at a time. The lock is a small SQLite database (`jobs.lock`)
// held in exclusive locking mode for as long as the server runs; the OS drops it when the process
// dies, however it dies, so a restart after `kill -9` takes over at once. It is taken at startup,
// before the server listens, so a second server on the same directory stops there with one line
// instead of running half-working. A directory that cannot be written stops the server the same way.
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { EarshotError } from '../errors.ts';

export class DataDirLock {
  private constructor(private readonly db: Database.Database) {}

  /** Creates `dataDir` if needed (private: 0700) and takes its lock; throws one clear error otherwise. */
  static acquire(dataDir: string): DataDirLock {
    let db: Database.Database | undefined;
    try {
      makeDir(dataDir);
      chmodSync(dataDir, 0o700);
      db = new Database(join(dataDir, 'jobs.lock'), { timeout: 0 });
      db.pragma('locking_mode = EXCLUSIVE');
      // Takes the lock and keeps it (exclusive mode) without writing a page: an existing lock is
      // taken even on a full disk.
      db.exec('BEGIN EXCLUSIVE; COMMIT;');
      return new DataDirLock(db);
    } catch (e) {
      db?.close();
      const code = String((e as { code?: unknown }).code ?? '');
      if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
        throw new EarshotError('invalid_argument', 'data_dir_in_use', `the data directory ${dataDir} is in use by another earshot process; give this one its own --data-dir`, { cause: e });
      }
      if (/^(EROFS|EACCES|EPERM|SQLITE_READONLY|SQLITE_CANTOPEN)/.test(code)) {
        throw new EarshotError('invalid_argument', 'data_dir_not_writable', `the data directory ${dataDir} cannot be written (${code}); give --data-dir a writable directory`, { cause: e });
      }
      if (/^(ENOSPC|EDQUOT|SQLITE_FULL)$/.test(code)) {
        throw new EarshotError('invalid_argument', 'data_dir_full', `the disk of the data directory ${dataDir} is full (${code}); free some space or give another --data-dir`, { cause: e });
      }
      throw e;
    }
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}

/** mkdir -p, with the real reason when it fails (Node's recursive mkdir says ENOENT on a read-only file system). */
function makeDir(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDir(parent);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as { code?: string }).code !== 'EEXIST') throw e;
  }
}
