// The Whisper models earshot knows by short name, with the dtypes each repository holds and their
// approximate download sizes. Checked against the hub's file listings (mid 2025):
// - onnx-community/whisper-{tiny,base,small}{,.en} hold every dtype of the Transformers.js v3
//   export (fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4), all in single files.
// - onnx-community/whisper-large-v3-turbo holds the same, except that its fp32 and bnb4 merged
//   decoders were deleted; its fp32 encoder (2.5 GB) is split into encoder_model.onnx plus
//   encoder_model.onnx_data.
// - There is no onnx-community repository for medium or large-v3; Xenova/whisper-medium(.en) and
//   Xenova/whisper-large-v3 are the same layout (an earlier export by the same author) with fp32,
//   fp16 and q8 only (large-v3: fp32 and q8; both fp32 graphs with an `.onnx_data` file).
// Sizes are MB per graph: fp32, fp16 and q8 are read from the listings, the others estimated from
// the ratios below. Repositories whose config.json declares `use_external_data_format` need no
// entry in `externalData`: model-files.ts reads the config.
import { EarshotError } from '../errors.ts';
import { COMPONENTS, DTYPES, type Component, type Dtype } from './dtype.ts';

export interface CatalogueEntry {
  /** Short name: `tiny`, `tiny.en`, `large-v3-turbo`. */
  name: string;
  repo: string;
  englishOnly: boolean;
  /** Used when no --dtype is given: fp32 where it is small enough to be the sensible default. */
  defaultDtype: Dtype;
  /** Approximate download size in MB of each graph, for every dtype the repository holds. */
  sizesMB: Record<Component, Partial<Record<Dtype, number>>>;
  /** External-data files (`*.onnx_data`, `*.onnx_data_1`, ...) a graph has, when the repository's
   *  config.json does not say so itself. */
  externalData?: Partial<Record<Component, Partial<Record<Dtype, number>>>>;
}

const RATIO: Record<Component, Record<Dtype, number>> = {
  encoder: { fp32: 1, fp16: 0.5, q8: 0.3, int8: 0.3, uint8: 0.3, q4: 0.23, q4f16: 0.15, bnb4: 0.21 },
  // The decoder keeps its large token embedding in full precision in the 4-bit exports.
  decoder: { fp32: 1, fp16: 0.5, q8: 0.26, int8: 0.26, uint8: 0.26, q4: 0.6, q4f16: 0.35, bnb4: 0.6 },
};

type Measured = Partial<Record<Dtype, number>> & { fp32: number };

function sizes(component: Component, measured: Measured, only: readonly Dtype[] = DTYPES): Partial<Record<Dtype, number>> {
  const out: Partial<Record<Dtype, number>> = {};
  for (const d of only) out[d] = measured[d] ?? Math.round(measured.fp32 * RATIO[component][d] * 10) / 10;
  return out;
}

function family(
  size: string,
  repoOwner: string,
  enc: Measured,
  dec: Measured,
  opts: { en: boolean; defaultDtype: Dtype; only?: readonly Dtype[] },
): CatalogueEntry[] {
  const names = opts.en ? [size, `${size}.en`] : [size];
  return names.map((name) => ({
    name,
    repo: `${repoOwner}/whisper-${name}`,
    englishOnly: name.endsWith('.en'),
    defaultDtype: opts.defaultDtype,
    sizesMB: { encoder: sizes('encoder', enc, opts.only), decoder: sizes('decoder', dec, opts.only) },
  }));
}

export const CATALOGUE: readonly CatalogueEntry[] = Object.freeze([
  ...family('tiny', 'onnx-community', { fp32: 32.9, fp16: 16.5, q8: 10.1 }, { fp32: 119, fp16: 59.6, q8: 30.7 }, { en: true, defaultDtype: 'fp32' }),
  ...family('base', 'onnx-community', { fp32: 82.5, fp16: 41.3, q8: 23.2 }, { fp32: 209, fp16: 105, q8: 53.7 }, { en: true, defaultDtype: 'fp32' }),
  ...family('small', 'onnx-community', { fp32: 353, fp16: 177, q8: 92.3 }, { fp32: 615, fp16: 309, q8: 157 }, { en: true, defaultDtype: 'fp32' }),
  ...family('medium', 'Xenova', { fp32: 1230, fp16: 615, q8: 313 }, { fp32: 1830, fp16: 916, q8: 463 }, { en: true, defaultDtype: 'q8', only: ['fp32', 'fp16', 'q8'] }),
  {
    name: 'large-v3',
    repo: 'Xenova/whisper-large-v3',
    englishOnly: false,
    defaultDtype: 'q8',
    sizesMB: { encoder: { fp32: 2550, q8: 645 }, decoder: { fp32: 3630, q8: 915 } },
    externalData: { encoder: { fp32: 1 }, decoder: { fp32: 1 } },
  },
  {
    name: 'large-v3-turbo',
    repo: 'onnx-community/whisper-large-v3-turbo',
    englishOnly: false,
    defaultDtype: 'q8',
    sizesMB: {
      encoder: sizes('encoder', { fp32: 2550, fp16: 1270, q8: 645 }),
      decoder: sizes('decoder', { fp32: 690, fp16: 345, q8: 175 }, ['fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16']),
    },
    externalData: { encoder: { fp32: 1 } },
  },
]);

/** Finds an entry by short name (`tiny.en`), `whisper-` name (`whisper-tiny.en`) or repository id. */
export function findCatalogueEntry(spec: string): CatalogueEntry | undefined {
  const s = spec.trim();
  const lower = s.toLowerCase();
  const short = lower.startsWith('whisper-') ? lower.slice('whisper-'.length) : lower;
  return CATALOGUE.find((e) => e.name === short || e.repo.toLowerCase() === lower);
}

/** The dtypes an entry holds for a component. */
export function availableDtypes(entry: CatalogueEntry, component: Component): Dtype[] {
  return DTYPES.filter((d) => entry.sizesMB[component][d] !== undefined);
}

/** Throws a clear error when the entry's repository has no graph in the requested dtype. */
export function checkDtypesAvailable(entry: CatalogueEntry, dtypes: Record<Component, Dtype>): void {
  for (const c of COMPONENTS) {
    if (entry.sizesMB[c][dtypes[c]] === undefined) {
      throw new EarshotError(
        'invalid_argument',
        'dtype_unavailable',
        `model "${entry.name}" (${entry.repo}) has no ${dtypes[c]} ${c}; available: ${availableDtypes(entry, c).join(', ')}`,
      );
    }
  }
}

/** Approximate download size in MB for a dtype choice (graphs only; the JSON files add ~3 MB). */
export function approxSizeMB(entry: CatalogueEntry, dtypes: Record<Component, Dtype>): number | undefined {
  const e = entry.sizesMB.encoder[dtypes.encoder];
  const d = entry.sizesMB.decoder[dtypes.decoder];
  return e === undefined || d === undefined ? undefined : e + d;
}
