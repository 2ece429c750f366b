// The model store's entry point: resolve a `--model` (catalogue name, hub repository or local
// folder) plus a dtype to a folder holding every file the engine needs, fetching what is missing
// from the hub unless offline. Offline, nothing touches the network and a missing file is reported
// by name together with the command that would fetch it; a hub that cannot be reached, together
// with the three ways forward (a local folder, a mirror, a cache copied from a connected machine).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EarshotError, isEarshotError } from '../errors.ts';
import { checkDtypesAvailable } from './catalogue.ts';
import { downloadFile, type FileProgress } from './download.ts';
import { COMPONENTS, defaultDtypeChoice, type DtypeChoice, formatDtypeSpec, onnxFile, parseDtypeSpec, type ComponentDtypes } from './dtype.ts';
import { validateRepoFilePath } from './ids.ts';
import { checkModelFolder, DEFAULT_REVISION, modelDir, parseModelRef, type ModelRef } from './model-ref.ts';
import { requiredFiles } from './model-files.ts';
import { settingsFromEnv, type StoreSettings } from './settings.ts';

export interface ResolveOptions {
  /** `q8` or `encoder=fp32,decoder=q8`, or already parsed; default: see `gpu`, else the catalogue entry's, else fp32. */
  dtype?: string | ComponentDtypes;
  /** The model will run on a GPU (webgpu, cuda): with no dtype asked, fp16 where the model offers it (dtype.ts). */
  gpu?: boolean;
  revision?: string;
  /** Fetch missing files (default true). Offline mode never fetches, whatever this says. */
  download?: boolean;
  settings?: StoreSettings;
  onProgress?: (p: FileProgress) => void;
  /** Called once per file actually fetched from the hub. */
  onFetched?: (file: string) => void;
  retries?: number;
}

export interface ResolvedModel {
  ref: ModelRef;
  /** Folder that holds the files at their repository paths. */
  dir: string;
  dtype: ComponentDtypes;
  /** Why that dtype: asked for, or which default (for the logs). */
  dtypeReason: string;
  /** Absolute paths of the two graphs (their external data sits beside them). */
  encoderPath: string;
  decoderPath: string;
  /** Every file the model needs, as repository paths relative to `dir`. */
  files: string[];
}

/** The dtype used when none is asked for. */
export function defaultDtype(ref: ModelRef): ComponentDtypes {
  const d = (ref.kind === 'hub' && ref.entry?.defaultDtype) || 'fp32';
  return { encoder: d, decoder: d };
}

/**
 * Whether the model has fp16 graphs for both components: a catalogue entry's repository holds
 * them, or the folder (a local one, or the hub cache) has both files already.
 */
export function offersFp16(ref: ModelRef, dir: string): boolean {
  if (ref.kind === 'hub' && ref.entry) return COMPONENTS.every((c) => ref.entry!.sizesMB[c].fp16 !== undefined);
  return COMPONENTS.every((c) => existsSync(join(dir, onnxFile(c, 'fp16'))));
}

/** The dtype asked for, or the default for where the model runs (defaultDtypeChoice), and why. */
function chooseDtype(ref: ModelRef, dir: string, opts: ResolveOptions): DtypeChoice {
  const own = defaultDtype(ref);
  if (typeof opts.dtype === 'object') return { dtype: opts.dtype, reason: 'asked' };
  if (opts.dtype !== undefined) return { dtype: parseDtypeSpec(opts.dtype, own), reason: 'asked' };
  return defaultDtypeChoice(own.decoder, opts.gpu ?? false, (opts.gpu ?? false) && offersFp16(ref, dir));
}

function pullCommand(ref: ModelRef, dtype: ComponentDtypes): string {
  const rev = ref.kind === 'hub' && ref.revision !== DEFAULT_REVISION ? ` --revision ${ref.revision}` : '';
  return `earshot models pull ${ref.label} --dtype ${formatDtypeSpec(dtype)}${rev}`;
}

function readConfig(dir: string): unknown {
  const path = join(dir, 'config.json');
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new EarshotError('invalid_argument', 'bad_config', `${path} is not valid JSON: ${(e as Error).message}`);
  }
}

export async function resolveModel(spec: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const settings = opts.settings ?? settingsFromEnv();
  const ref = parseModelRef(spec, opts.revision);
  const dir = modelDir(settings, ref);
  const { dtype, reason: dtypeReason } = chooseDtype(ref, dir, opts);
  if (ref.kind === 'hub' && ref.entry) checkDtypesAvailable(ref.entry, dtype);
  const done = (files: string[]): ResolvedModel => ({
    ref,
    dir,
    dtype,
    dtypeReason,
    encoderPath: join(dir, onnxFile('encoder', dtype.encoder)),
    decoderPath: join(dir, onnxFile('decoder', dtype.decoder)),
    files,
  });

  if (ref.kind === 'local') {
    checkModelFolder(dir);
    const files = requiredFiles(dtype, readConfig(dir));
    const missing = files.filter((f) => !existsSync(join(dir, f)));
    if (missing.length > 0) {
      throw new EarshotError(
        'model_not_found',
        'missing_file',
        `model folder ${dir} lacks ${missing.join(', ')} (needed for dtype ${formatDtypeSpec(dtype)})`,
      );
    }
    return done(files);
  }

  const canFetch = !settings.offline && opts.download !== false;
  const missingError = (missing: string[]): EarshotError => {
    const why = settings.offline ? 'earshot is offline (EARSHOT_OFFLINE / HF_HUB_OFFLINE)' : 'downloads are off';
    return new EarshotError(
      'model_unavailable',
      settings.offline ? 'offline_missing' : 'not_cached',
      `model "${ref.label}" is not fully cached and ${why}: missing ${missing.join(', ')} in ${dir}. Fetch it with: ${pullCommand(ref, dtype)}`,
    );
  };
  // A first run without internet: say what to do, not only what failed.
  const unreachable = (e: EarshotError): EarshotError =>
    new EarshotError(
      'model_unavailable',
      'hub_unreachable',
      `model "${ref.label}" is not in the cache (${dir}) and ${e.message}. Either give a local model folder (--model ./dir), ` +
        `or set HF_ENDPOINT to a reachable hub mirror, or run \`${pullCommand(ref, dtype)}\` on a connected machine and copy the folder it fills (\`earshot models path ${ref.label}\` prints it) to ${dir} here`,
      { cause: e },
    );
  const fetchFile = async (file: string): Promise<void> => {
    validateRepoFilePath(file);
    try {
      await downloadFile({
        endpoint: settings.endpoint,
        repo: ref.repo,
        revision: ref.revision,
        file,
        dest: join(dir, file),
        ...(settings.token ? { token: settings.token } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
      });
    } catch (e) {
      throw isEarshotError(e) && e.code === 'hub_unreachable' ? unreachable(e) : e;
    }
    opts.onFetched?.(file);
  };

  // config.json first: it says whether the graphs have external-data files.
  if (!existsSync(join(dir, 'config.json'))) {
    if (!canFetch) throw missingError(['config.json', ...requiredFiles(dtype, undefined, ref.entry).slice(1)]);
    await fetchFile('config.json');
  }
  const files = requiredFiles(dtype, readConfig(dir), ref.entry);
  const missing = files.filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0 && !canFetch) throw missingError(missing);
  for (const f of missing) await fetchFile(f);
  return done(files);
}
