// What a request may ask the server to load: the one gate between a client's model name (an id in
// POST /v1/models/{id}/load, or its body's `model`) and the model store. A request names a
// catalogue model, a hub repository the operator allows (`--allow-pull` glob patterns; the
// catalogue's repositories always; any other repository only from the cache, never fetched), or a
// folder under `--models-dir` by its name there. Never a path: a name is checked at every
// percent-decoding step, and the refusal is the same whatever exists on disk. The operator's own
// --model / --extra-model are not requests and do not come through here.
import { existsSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { EarshotError } from '../errors.ts';
import { CATALOGUE, findCatalogueEntry, settingsFromEnv } from '../models/index.ts';
import { isRepoId } from '../models/ids.ts';
import { cacheDir } from '../models/model-ref.ts';

/** A model as a request may load it: what to hand the store, what to show, whether it may be fetched. */
export interface RequestedModel {
  model: string;
  label: string;
  download: boolean;
}

export interface ModelPolicyOptions {
  /** Hub repositories a request may make the server download, as glob patterns (`owner/whisper-*`). */
  allowPull?: readonly string[];
  /** The folder whose sub-folders a request may load by name. */
  modelsDir?: string | undefined;
}

const MAX_NAME = 200;
/** Rounds of percent-decoding tried before a name counts as hostile. */
const MAX_DECODES = 8;
/** One segment of a name: what catalogue names, hub ids and folder names are made of. */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.+=@-]*$/;

/** Anything a path could be made of, in one decoded form of a name. */
function pathLike(s: string): boolean {
  return (
    s.startsWith('/') ||
    s.startsWith('~') ||
    /[\\\0-\u001f\u007f:~]/.test(s) ||
    s.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')
  );
}

/**
 * A model name or id from a request, or a 400 `bad_model_name`. Every percent-decoding of it
 * (fastify decodes a route's wildcard once; this goes on until the name is stable) is checked for
 * `..`, `.`, empty segments, a leading `/` or `~`, backslashes, colons and control characters, and
 * the name itself must be plain segments of letters, digits and `_.+=@-` with no `%` left. The
 * message never repeats the name, so what exists on the server does not change the answer.
 */
export function requestName(raw: string, what: 'model' | 'model id'): string {
  const bad = (): EarshotError =>
    new EarshotError(
      'invalid_argument',
      'bad_model_name',
      `the ${what} is not a valid name: use a catalogue name, a hub repository "owner/name" or a folder name under the server's models dir, made of letters, digits and "_.+=@-" (no paths)`,
    );
  const name = raw.trim();
  if (name === '' || name.length > MAX_NAME) throw bad();
  let s = name;
  for (let round = 0; ; round++) {
    if (pathLike(s)) throw bad();
    if (!s.includes('%')) break;
    if (round >= MAX_DECODES) throw bad();
    let next: string;
    try {
      next = decodeURIComponent(s);
    } catch {
      throw bad();
    }
    if (next === s) break;
    s = next;
  }
  if (!name.split('/').every((seg) => SEGMENT.test(seg))) throw bad();
  return name;
}

/** A glob over repository ids: `*` any run of characters within one part, `?` one character. */
function globRegExp(pattern: string): RegExp {
  const body = pattern
    .trim()
    .split('')
    .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'i');
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * An error's message without the server's absolute paths (a missing file in a folder, a cache
 * location): the client learns what went wrong, not where things live.
 */
export function withoutPaths(message: string): string {
  return message.replace(/(^|[\s"'(=,])(?:[A-Za-z]:)?[\\/][^\s"'),;]*/g, '$1<path>');
}

export class ModelPolicy {
  private readonly allow: RegExp[];
  private readonly modelsDir: string | undefined;

  constructor(opts: ModelPolicyOptions = {}) {
    this.allow = (opts.allowPull ?? []).filter((p) => p.trim() !== '').map(globRegExp);
    this.modelsDir = opts.modelsDir ? resolve(opts.modelsDir) : undefined;
  }

  /** Whether a request may make the server fetch `repo` from the hub. */
  allowsPull(repo: string): boolean {
    return findCatalogueEntry(repo) !== undefined || this.allow.some((r) => r.test(repo));
  }

  /**
   * What a request's model name loads: a catalogue model, a folder under the models dir, or a hub
   * repository (fetched only when allowed, else only from the cache). 400 for a name that is not
   * one (see `requestName`), 403 `pull_not_allowed` for a repository not allowed and not cached,
   * 404 for a plain name that is none of them.
   */
  resolve(raw: string): RequestedModel {
    const name = requestName(raw, 'model');
    if (findCatalogueEntry(name)) return { model: name, label: name, download: true };
    if (this.modelsDir) {
      const dir = join(this.modelsDir, name);
      // requestName already keeps `dir` inside; this says so where it matters.
      if (dir.startsWith(this.modelsDir + sep) && isDir(dir)) return { model: dir, label: name, download: false };
    }
    if (isRepoId(name)) {
      if (this.allowsPull(name)) return { model: name, label: name, download: true };
      if (existsSync(join(cacheDir(settingsFromEnv(), name), 'config.json'))) return { model: name, label: name, download: false };
      throw new EarshotError(
        'forbidden',
        'pull_not_allowed',
        `the hub repository "${name}" is not on this server's pull allow-list (--allow-pull) and is not in its cache`,
      );
    }
    throw new EarshotError(
      'model_not_found',
      'unknown_model',
      `unknown model "${name}": name a catalogue model (${CATALOGUE.map((e) => e.name).join(', ')}), a hub repository the server allows, or a folder under its models dir`,
    );
  }
}
