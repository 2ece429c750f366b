// Which repository files a model needs for a dtype choice: the JSON configs, the two ONNX graphs,
// and each graph's external-data files. External data is declared the way transformers.js reads
// it, in config.json's `transformers.js_config.use_external_data_format` (true, a chunk count, or a
// record keyed by full file name or by transformers.js's session name, which for Whisper's encoder
// is `model`, not `encoder_model`); a catalogue entry can add what an older repository's config
// leaves out.
import { COMPONENT_BASENAME, COMPONENTS, DTYPE_SUFFIX, onnxFile, type Component, type ComponentDtypes } from './dtype.ts';
import type { CatalogueEntry } from './catalogue.ts';

/** JSON files every model folder needs; config.json first, as it decides the rest. */
export const CONFIG_FILES = [
  'config.json',
  'generation_config.json',
  'preprocessor_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
] as const;

/** transformers.js's name for each graph's session, the fallback key of a per-file setting. */
export const SESSION_KEY: Readonly<Record<Component, string>> = Object.freeze({
  encoder: 'model',
  decoder: 'decoder_model_merged',
});

/** onnxruntime refuses more chunks than this too; a config asking for more is broken. */
const MAX_EXTERNAL_CHUNKS = 100;

type ExternalDataSetting = boolean | number | Record<string, boolean | number>;

function chunkCount(setting: unknown, fullName: string, sessionKey: string): number {
  if (setting === null || setting === undefined || setting === false) return 0;
  let n: unknown = setting;
  if (typeof setting === 'object') {
    const rec = setting as Record<string, unknown>;
    n = Object.hasOwn(rec, fullName) ? rec[fullName] : Object.hasOwn(rec, sessionKey) ? rec[sessionKey] : 0;
  }
  const count = n === true ? 1 : n === false ? 0 : Number(n);
  return Number.isInteger(count) && count > 0 ? Math.min(count, MAX_EXTERNAL_CHUNKS) : 0;
}

/** `encoder_model.onnx_data`, `encoder_model.onnx_data_1`, ... */
export function externalDataNames(onnxPath: string, chunks: number): string[] {
  return Array.from({ length: chunks }, (_, i) => `${onnxPath}_data${i === 0 ? '' : `_${i}`}`);
}

export function externalDataSetting(config: unknown): ExternalDataSetting | undefined {
  if (typeof config !== 'object' || config === null) return undefined;
  const js = (config as Record<string, unknown>)['transformers.js_config'];
  if (typeof js !== 'object' || js === null) return undefined;
  return (js as Record<string, unknown>).use_external_data_format as ExternalDataSetting | undefined;
}

/** The graph of one component plus its external-data files, as repository paths. */
export function componentFiles(
  component: Component,
  dtypes: ComponentDtypes,
  config: unknown,
  entry?: CatalogueEntry,
): string[] {
  const dtype = dtypes[component];
  const path = onnxFile(component, dtype);
  const fullName = `${COMPONENT_BASENAME[component]}${DTYPE_SUFFIX[dtype]}.onnx`;
  const chunks = Math.max(
    chunkCount(externalDataSetting(config), fullName, SESSION_KEY[component]),
    entry?.externalData?.[component]?.[dtype] ?? 0,
  );
  return [path, ...externalDataNames(path, chunks)];
}

/** Every file the model needs, configs first. */
export function requiredFiles(dtypes: ComponentDtypes, config: unknown, entry?: CatalogueEntry): string[] {
  return [...CONFIG_FILES, ...COMPONENTS.flatMap((c) => componentFiles(c, dtypes, config, entry))];
}
