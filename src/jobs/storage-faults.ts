// What the job system does when its disk fails it: SQLite's and the file system's errors (a full
// disk, an I/O error, a read-only remount, a damaged database file) become typed errors with a
// stable code, so a submission gets a clear answer (507, or 503 for a damaged store) and a running
// job pauses instead of the error escaping and taking the whole process down.
// Messages never name a path: they reach API clients.
import { EarshotError } from '../errors.ts';

/** Codes a job's `paused` field and an error body can carry. */
export type StorageFaultCode = 'storage_full' | 'storage_error' | 'job_store_damaged';

const FULL = new Set(['SQLITE_FULL', 'ENOSPC', 'EDQUOT']);

/** Whether `e` says the disk is full (SQLite's or the file system's own code). */
export function diskFull(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && FULL.has(code);
}
const DAMAGED = /^SQLITE_(CORRUPT|NOTADB)/;
const IO = /^(SQLITE_(IOERR|READONLY|CANTOPEN|PROTOCOL)|EIO$|EROFS$|EACCES$|EPERM$)/;

/** The typed error for `e` if it is a storage fault (undefined for anything else). */
export function storageFault(e: unknown): EarshotError | undefined {
  if (e instanceof EarshotError) return isFaultCode(e.code) ? e : undefined;
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return undefined;
  if (diskFull(e)) {
    return new EarshotError('insufficient_storage', 'storage_full', 'the disk that holds the job store is full; free some space', { cause: e });
  }
  if (DAMAGED.test(code)) return damagedStore(`SQLite reports ${code}`, e);
  if (IO.test(code)) {
    return new EarshotError('insufficient_storage', 'storage_error', `the job store cannot write to its disk (${code})`, { cause: e });
  }
  return undefined;
}

/** The error for a job store that failed its integrity check or reads as corrupt. */
export function damagedStore(detail: string, cause?: unknown): EarshotError {
  return new EarshotError(
    'not_ready',
    'job_store_damaged',
    `the job store (jobs.db in the data directory) is damaged: ${detail}; stop the server, move jobs.db aside or restore a backup, and restart`,
    cause === undefined ? undefined : { cause },
  );
}

function isFaultCode(code: string): code is StorageFaultCode {
  return code === 'storage_full' || code === 'storage_error' || code === 'job_store_damaged';
}
