// Public face of local quantisation: fp32 Whisper ONNX graphs to 8-bit ones (see rewrite.ts for the
// graph layout and folder.ts for the files written).
export { quantizeFolder, type QuantizeFolderOptions, type QuantizeFolderResult, type QuantizedGraph } from './folder.ts';
export { isQuantTarget, quantizeModel, QUANT_TARGETS, type QuantizeOptions, type QuantTarget } from './quantize-model.ts';
export type { RewriteStats } from './rewrite.ts';
