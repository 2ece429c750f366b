// Real small file systems for the storage-fault tests and the faults bench: a tmpfs of a given
// size (a disk that fills) or a read-only one, mounted with mount(8). That needs root (CI runs as
// root); where mount is refused, the caller re-runs itself inside a user and mount namespace
// (`unshare -Urm`, runInMountNamespace), where the process is root over its own mounts.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  dir: string;
  /** Unmounts it and removes the mount point. */
  remove(): void;
}

/** Mounts a fresh tmpfs of `bytes` (read-only with `readOnly`) on a new directory. */
export function mountTmpfs(bytes: number, opts: { readOnly?: boolean } = {}): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755${opts.readOnly ? ',ro' : ''}`, 'tmpfs', dir], { stdio: 'pipe' });
  return {
    dir,
    remove: () => {
      spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether this process may mount a tmpfs. */
export function canMount(): boolean {
  try {
    mountTmpfs(1 << 20).remove();
    return true;
  } catch {
    return false;
  }
}

/** Whether the caller must run in a mount namespace of its own (mount refused, and not already in one). */
export function needsNamespace(): boolean {
  return process.env.EARSHOT_IN_MOUNT_NS !== '1' && !canMount();
}

/** Runs `argv` inside `unshare -Urm` (with EARSHOT_IN_MOUNT_NS=1): its exit status and output. */
export function runInMountNamespace(argv: string[], timeoutMs: number): { status: number | null; output: string } {
  // Without NODE_TEST_CONTEXT a nested `node --test` runs and reports as a top-level one.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = spawnSync('unshare', ['-Urm', ...argv], { env: { ...env, EARSHOT_IN_MOUNT_NS: '1' }, encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** Fills the file system of `dir` with a file until writes fail with ENOSPC; returns the file. */
export function fill(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  try {
    for (const size of [1 << 20, 4096, 512]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return file;
}
