// testModelDir: builds a model once per option set and builder version into a cache folder under the
// OS temp dir, so every test file can just ask for one. Builds go to a private temp folder that is
// renamed into place, so a folder that exists is complete, and two processes building the same model
// at once both end up with the same finished folder. Folders sit under one folder per builder version;
// those of other versions are removed once they are an hour old (a checkout with other builder code
// may still be using a fresh one).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILDER_VERSION, buildTestModel } from './build.ts';
import { resolveOptions, type ResolvedOptions, type TestModelOptions } from './options.ts';

export const DEFAULT_CACHE_ROOT = join(tmpdir(), 'earshot-test-models');

const STALE_MS = 60 * 60 * 1000;

/** Folder of an option set, relative to the cache root: builder version / readable prefix + digest. */
export function cacheKey(o: ResolvedOptions): string {
  const digest = createHash('sha256').update(JSON.stringify(o)).digest('hex');
  return join(BUILDER_VERSION, `${o.preset}-${o.dims}-${digest.slice(0, 16)}`);
}

function pruneOtherVersions(root: string): void {
  for (const name of readdirSync(root)) {
    if (name === BUILDER_VERSION) continue;
    const path = join(root, name);
    try {
      if (Date.now() - statSync(path).mtimeMs > STALE_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // Another process pruned it first.
    }
  }
}

/**
 * Moves a finished build into place. If another process got there first, its folder wins and ours
 * is discarded; either way `finalDir` is complete afterwards.
 */
export function publishBuild(buildDir: string, finalDir: string): string {
  try {
    renameSync(buildDir, finalDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !existsSync(finalDir)) throw e;
    rmSync(buildDir, { recursive: true, force: true });
  }
  return finalDir;
}

/** Returns the folder of a built model for `options`, building it first if no cached copy exists. */
export function testModelDir(options: TestModelOptions, root: string = DEFAULT_CACHE_ROOT): string {
  const o = resolveOptions(options);
  const finalDir = join(root, cacheKey(o));
  if (existsSync(finalDir)) return finalDir;
  const versionDir = join(root, BUILDER_VERSION);
  mkdirSync(versionDir, { recursive: true });
  pruneOtherVersions(root);
  const buildDir = mkdtempSync(join(versionDir, '.building-'));
  try {
    buildTestModel({ ...o, outDir: buildDir });
  } catch (e) {
    rmSync(buildDir, { recursive: true, force: true });
    throw e;
  }
  return publishBuild(buildDir, finalDir);
}
