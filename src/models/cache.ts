// What is in the model cache: which catalogue models (and other hub repositories) are there, in
// which dtypes, taking how much disk; and removing a model from it.
import { existsSync, readFileSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EarshotError } from '../errors.ts';
import { approxSizeMB, availableDtypes, CATALOGUE, type CatalogueEntry } from './catalogue.ts';
import { DTYPES, type Dtype } from './dtype.ts';
import { isRepoId } from './ids.ts';
import { cacheDir, DEFAULT_REVISION, modelDir, parseModelRef } from './model-ref.ts';
import { requiredFiles } from './model-files.ts';
import { settingsFromEnv, type StoreSettings } from './settings.ts';

export interface ListedModel {
  /** Catalogue name, or the repository id (`@revision` added when not main). */
  name: string;
  repo: string;
  revision: string;
  inCatalogue: boolean;
  englishOnly?: boolean;
  defaultDtype?: Dtype;
  /** Approximate download size of the default dtype, MB. */
  approxMB?: number;
  /** Dtypes whose files are all in the cache (same dtype for both graphs). */
  cachedDtypes: Dtype[];
  /** Bytes on disk (partial downloads included), 0 when absent. */
  cachedBytes: number;
  dir: string;
}

export async function dirSize(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirSize(p);
    else if (e.isFile()) total += (await stat(p)).size;
  }
  return total;
}

function cachedDtypes(dir: string, entry?: CatalogueEntry): Dtype[] {
  if (!existsSync(join(dir, 'config.json'))) return [];
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch {
    return [];
  }
  const candidates = entry ? availableDtypes(entry, 'encoder').filter((d) => availableDtypes(entry, 'decoder').includes(d)) : DTYPES;
  return candidates.filter((d) =>
    requiredFiles({ encoder: d, decoder: d }, config, entry).every((f) => existsSync(join(dir, f))),
  );
}

/** Repositories present in the cache, as `{repo, revision}`. */
async function cachedRepos(settings: StoreSettings): Promise<Array<{ repo: string; revision: string }>> {
  const root = join(settings.home, 'models');
  const out: Array<{ repo: string; revision: string }> = [];
  let owners;
  try {
    owners = await readdir(root, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const o of owners.filter((e) => e.isDirectory())) {
    for (const n of await readdir(join(root, o.name), { withFileTypes: true })) {
      if (!n.isDirectory()) continue;
      const [name, revision = DEFAULT_REVISION] = n.name.split('@') as [string, string?];
      const repo = `${o.name}/${name}`;
      if (isRepoId(repo)) out.push({ repo, revision });
    }
  }
  return out;
}

/** The catalogue (cached or not), then any other repository found in the cache. */
export async function listModels(settings: StoreSettings = settingsFromEnv()): Promise<ListedModel[]> {
  const rows: ListedModel[] = [];
  for (const entry of CATALOGUE) {
    const dir = cacheDir(settings, entry.repo);
    const approx = approxSizeMB(entry, { encoder: entry.defaultDtype, decoder: entry.defaultDtype });
    rows.push({
      name: entry.name,
      repo: entry.repo,
      revision: DEFAULT_REVISION,
      inCatalogue: true,
      englishOnly: entry.englishOnly,
      defaultDtype: entry.defaultDtype,
      ...(approx !== undefined ? { approxMB: Math.round(approx) } : {}),
      cachedDtypes: cachedDtypes(dir, entry),
      cachedBytes: await dirSize(dir),
      dir,
    });
  }
  for (const { repo, revision } of await cachedRepos(settings)) {
    if (revision === DEFAULT_REVISION && CATALOGUE.some((e) => e.repo === repo)) continue;
    const dir = cacheDir(settings, repo, revision);
    rows.push({
      name: revision === DEFAULT_REVISION ? repo : `${repo}@${revision}`,
      repo,
      revision,
      inCatalogue: false,
      cachedDtypes: cachedDtypes(dir),
      cachedBytes: await dirSize(dir),
      dir,
    });
  }
  return rows;
}

/** Deletes a hub model's cache folder; returns the folder and the bytes freed. */
export async function removeModel(
  spec: string,
  opts: { revision?: string; settings?: StoreSettings } = {},
): Promise<{ dir: string; bytes: number }> {
  const settings = opts.settings ?? settingsFromEnv();
  const ref = parseModelRef(spec, opts.revision);
  if (ref.kind === 'local') {
    throw new EarshotError('invalid_argument', 'not_in_cache', `${ref.dir} is a local folder, not a cached model: earshot only deletes what it downloaded`);
  }
  const dir = modelDir(settings, ref);
  if (!existsSync(dir)) {
    throw new EarshotError('model_not_found', 'not_cached', `model "${ref.label}" is not in the cache (${dir})`);
  }
  const bytes = await dirSize(dir);
  await rm(dir, { recursive: true, force: true });
  return { dir, bytes };
}
