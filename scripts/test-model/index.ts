// The test-model builder's public API: build a Whisper model with deterministic random weights in
// the hub's onnx-community layout, or get a cached one for tests.
export { buildTestModel, onnxFileNames, BUILDER_VERSION, type BuildOptions } from './build.ts';
export { testModelDir, publishBuild, cacheKey, DEFAULT_CACHE_ROOT } from './cache.ts';
export {
  resolveOptions,
  DIMS,
  DIMS_NAMES,
  DTYPES,
  DTYPE_SUFFIX,
  MERGED_FORMS,
  PRESETS,
  PRESET_SPECS,
  type Dtype,
  type MergedForm,
  type DimsName,
  type ModelDims,
  type Preset,
  type ResolvedOptions,
  type TestModelOptions,
} from './options.ts';
export { DECODER_DIMS } from './decoder.ts';
export type { TestModelMarker } from './configs.ts';
