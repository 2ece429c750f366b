// Validation of the names that end up in cache paths and hub URLs: repository ids, revisions and
// repository file paths. Everything that comes from a user, a config file or the network goes
// through here before it touches the file system, so `../` or an absolute path can never escape
// the cache.
import { EarshotError } from '../errors.ts';

// The hub's own rule for each half of `owner/name`: letters, digits, `-`, `_`, `.`; no `--` or
// `..`; not starting or ending with `-` or `.`; at most 96 characters.
const REPO_PART = /^(?![-.])(?!.*(--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![-.])$/;

export function isRepoId(s: string): boolean {
  const parts = s.split('/');
  return parts.length === 2 && parts.every((p) => REPO_PART.test(p));
}

export function validateRepoId(s: string): string {
  if (!isRepoId(s)) {
    throw new EarshotError(
      'invalid_argument',
      'bad_repo_id',
      `invalid model repository id "${s}": expected "owner/name" made of letters, digits, "-", "_" and "."`,
    );
  }
  return s;
}

/** A branch, tag or commit. Kept to a safe character set because it becomes part of a folder name. */
export function validateRevision(s: string): string {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(s) || s.includes('..')) {
    throw new EarshotError(
      'invalid_argument',
      'bad_revision',
      `invalid revision "${s}": use a branch, tag or commit made of letters, digits, "-", "_" and "."`,
    );
  }
  return s;
}

/** A relative, forward-slash path inside a repository, with no `.`/`..`/empty segments. */
export function validateRepoFilePath(s: string): string {
  const segments = s.split('/');
  const ok =
    s.length > 0 &&
    s.length <= 512 &&
    !s.startsWith('/') &&
    !/^[A-Za-z]:/.test(s) &&
    !/[\\\0]/.test(s) &&
    segments.every((seg) => seg !== '' && seg !== '.' && seg !== '..' && /^[A-Za-z0-9_.+=@-]+$/.test(seg));
  if (!ok) {
    throw new EarshotError('invalid_argument', 'bad_file_path', `invalid model file path "${s}"`);
  }
  return s;
}
