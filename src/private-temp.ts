// earshot's private temporary directories (an upload spooled to disk, a file ffmpeg must seek in),
// and the sweep of those a dead earshot process left behind. Each holds a client's audio, so none
// may outlive its use: a process deletes its own as soon as it is done, and a process killed
// before that (kill -9, a crash, a power cut) leaves them to the next earshot that starts on the
// machine. The directory's name carries the pid of the process that made it, so the sweep removes
// only those whose process is gone, never a live server's. Hand-written: Node's mkdtemp and rm do
// the work; what is ours is the naming rule and the liveness check.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a private directory is for: the second word of its name. */
export type TempKind = 'upload' | 'audio';

const NAME = /^earshot-(upload|audio)-(\d+)-/;

/** The name prefix of this process's directories of `kind` (tests look for leftovers by it). */
export function tempPrefix(kind: TempKind, pid = process.pid): string {
  return `earshot-${kind}-${pid}-`;
}

/** A fresh 0700 directory in the system's temporary directory, named for `kind` and this process. */
export function makePrivateDir(kind: TempKind): Promise<string> {
  return mkdtemp(join(tmpdir(), tempPrefix(kind)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the pid is another user's live process; only ESRCH says it is gone.
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Deletes the private directories of earshot processes that no longer run (and are this user's),
 * in the system's temporary directory. Returns how many it deleted.
 */
export async function sweepDeadLeftovers(): Promise<number> {
  const root = tmpdir();
  const names = await readdir(root).catch(() => [] as string[]);
  const uid = process.getuid?.();
  let swept = 0;
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m || alive(Number(m[2]))) continue;
    const path = join(root, name);
    const st = await stat(path).catch(() => null);
    if (!st?.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
    await rm(path, { recursive: true, force: true });
    swept++;
  }
  return swept;
}
