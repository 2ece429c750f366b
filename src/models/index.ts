// Public face of the model store, for the engine, server and CLI.
export { CATALOGUE, findCatalogueEntry, availableDtypes, approxSizeMB, type CatalogueEntry } from './catalogue.ts';
export {
  COMPONENTS,
  DTYPES,
  DTYPE_SUFFIX,
  defaultDtypeChoice,
  formatDtypeSpec,
  onnxFile,
  parseDtypeSpec,
  type Component,
  type ComponentDtypes,
  type Dtype,
} from './dtype.ts';
export { downloadFile, type FileProgress } from './download.ts';
export { parseModelRef, servedModelId, type ModelRef } from './model-ref.ts';
export { requiredFiles } from './model-files.ts';
export { settingsFromEnv, type StoreSettings } from './settings.ts';
export { defaultDtype, offersFp16, resolveModel, type ResolveOptions, type ResolvedModel } from './store.ts';
export { listModels, removeModel, type ListedModel } from './cache.ts';
