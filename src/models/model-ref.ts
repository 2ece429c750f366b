// Turns a `--model` argument into what it names: a catalogue model (`tiny`, `whisper-tiny.en`), any
// hub repository (`owner/name`), or a model folder on disk (`./my-model`, `/abs/path`, `~/m`), and
// says where its files live. Hub models live in the cache at `<home>/models/<owner>/<name>`
// (`<name>@<revision>` for a revision other than main).
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { EarshotError } from '../errors.ts';
import { CATALOGUE, findCatalogueEntry, type CatalogueEntry } from './catalogue.ts';
import { isRepoId, validateRevision } from './ids.ts';
import type { StoreSettings } from './settings.ts';

export const DEFAULT_REVISION = 'main';

export type ModelRef =
  | { kind: 'hub'; label: string; repo: string; revision: string; entry?: CatalogueEntry }
  | { kind: 'local'; label: string; dir: string };

function looksLikePath(spec: string): boolean {
  return isAbsolute(spec) || /^(\.{1,2}|~)([/\\]|$)/.test(spec) || spec.includes('\\');
}

function expandHome(spec: string): string {
  return spec === '~' || spec.startsWith('~/') ? join(homedir(), spec.slice(1)) : spec;
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function parseModelRef(spec: string, revision: string = DEFAULT_REVISION): ModelRef {
  const s = spec.trim();
  if (s === '') throw new EarshotError('invalid_argument', 'bad_model', 'no model given');
  validateRevision(revision);
  if (looksLikePath(s)) return { kind: 'local', label: s, dir: resolve(expandHome(s)) };
  const entry = findCatalogueEntry(s);
  if (entry) return { kind: 'hub', label: entry.name, repo: entry.repo, revision, entry };
  if (isRepoId(s)) return { kind: 'hub', label: s, repo: s, revision };
  if (isDir(s)) return { kind: 'local', label: s, dir: resolve(s) };
  throw new EarshotError(
    'model_not_found',
    'unknown_model',
    `unknown model "${s}": use a catalogue name (${CATALOGUE.map((e) => e.name).join(', ')}), a hub repository id "owner/name", or a model folder path such as ./my-model`,
  );
}

/** Cache folder of a hub repository at a revision. */
export function cacheDir(settings: StoreSettings, repo: string, revision: string = DEFAULT_REVISION): string {
  const [owner, name] = repo.split('/') as [string, string];
  return join(settings.home, 'models', owner, revision === DEFAULT_REVISION ? name : `${name}@${revision}`);
}

export function modelDir(settings: StoreSettings, ref: ModelRef): string {
  return ref.kind === 'local' ? ref.dir : cacheDir(settings, ref.repo, ref.revision);
}

/** A local folder must exist and hold a config.json; what else it needs depends on the dtype. */
export function checkModelFolder(dir: string): void {
  if (!existsSync(dir)) {
    throw new EarshotError('model_not_found', 'no_such_folder', `model folder ${dir} does not exist`);
  }
  if (!isDir(dir) || !existsSync(join(dir, 'config.json'))) {
    throw new EarshotError(
      'invalid_argument',
      'not_a_model_folder',
      `${dir} is not a model folder: expected config.json, tokenizer.json and onnx/*.onnx (the layout of the onnx-community/whisper-* repositories)`,
    );
  }
}

/** The id clients see: the given modelId, else the catalogue name / repository id, else the folder's name. */
export function servedModelId(config: { model: string; modelId?: string }): string {
  if (config.modelId) return config.modelId;
  try {
    const ref = parseModelRef(config.model);
    return ref.kind === 'hub' ? ref.label : basename(ref.dir);
  } catch {
    return config.model;
  }
}
