// quantizeModel: one fp32 ONNX model in, its dynamically quantised 8-bit version out (in place).
// Refuses models that are already quantised or hold no float weights to quantise, so a mistaken
// second run or an fp16 export fails with a clear message instead of writing a useless file.
import { EarshotError } from '../../errors.ts';
import { inlineExternalData } from './external-data.ts';
import { DataType, dimsOf, elementCount, num, type Model } from './onnx.ts';
import { LARGE_TABLE, rewriteGraph, type RewriteStats } from './rewrite.ts';
import { allGraphs } from './scope.ts';
import type { WeightType } from './weights.ts';

/** What `--to` accepts: the transformers.js dtype names of 8-bit weights. q8 and uint8 differ only in file name. */
export const QUANT_TARGETS = ['int8', 'uint8', 'q8'] as const;
export type QuantTarget = (typeof QUANT_TARGETS)[number];

export function isQuantTarget(s: string): s is QuantTarget {
  return (QUANT_TARGETS as readonly string[]).includes(s);
}

export function weightTypeOf(to: QuantTarget): WeightType {
  return to === 'int8' ? 'int8' : 'uint8';
}

export interface QuantizeOptions {
  to: QuantTarget;
  /** One scale per output column of MatMul/Gemm weights instead of one per tensor. */
  perChannel?: boolean;
}

/** Operators that only appear in an already quantised graph. */
const QUANTISED_OPS = new Set([
  'DynamicQuantizeLinear',
  'QuantizeLinear',
  'DequantizeLinear',
  'MatMulInteger',
  'ConvInteger',
  'QLinearMatMul',
  'QLinearConv',
  'DynamicQuantizeMatMul',
  'MatMulIntegerToFloat',
  'MatMulNBits',
  'GatherBlockQuantized',
]);

/** DynamicQuantizeLinear and MatMulInteger/ConvInteger exist from opset 10/11. */
const MIN_OPSET = 11;

export const METADATA_KEY = 'earshot.quantization';

function opsetOf(model: Model): number | undefined {
  const entry = (model.opsetImport ?? []).find((o) => o.domain === '' || o.domain === 'ai.onnx' || !o.domain);
  return entry ? num(entry.version) : undefined;
}

/**
 * Quantises `model` in place. `dir` is the folder of its .onnx file (for external data); `label`
 * names it in errors.
 */
export function quantizeModel(model: Model, dir: string, label: string, opts: QuantizeOptions): RewriteStats {
  const graph = model.graph;
  if (!graph) throw new EarshotError('invalid_argument', 'bad_model', `${label} holds no graph`);
  const graphs = allGraphs(graph);
  const quantised = graphs.flatMap((g) => g.node ?? []).find((n) => QUANTISED_OPS.has(n.opType ?? ''));
  const marked = (model.metadataProps ?? []).some((p) => p.key === METADATA_KEY);
  if (quantised || marked) {
    throw new EarshotError(
      'invalid_argument',
      'already_quantized',
      `${label} is already quantised (it has ${quantised ? `${quantised.opType} nodes` : 'earshot quantisation metadata'}); quantise the fp32 export instead`,
    );
  }
  const opset = opsetOf(model);
  if (opset !== undefined && opset < MIN_OPSET) {
    throw new EarshotError('invalid_argument', 'old_opset', `${label} uses ONNX opset ${opset}; quantisation needs opset ${MIN_OPSET} or later`);
  }
  inlineExternalData(model, dir);

  // Gather tables to quantise: tied ones (also a MatMul/Gemm weight) and large ones.
  const nodes = graphs.flatMap((g) => g.node ?? []);
  const matmulWeights = new Set(nodes.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm').map((n) => n.input?.[1] ?? ''));
  const floatInits = new Map(
    graphs.flatMap((g) => g.initializer ?? []).filter((t) => t.dataType === DataType.FLOAT && dimsOf(t).length === 2).map((t) => [t.name ?? '', t]),
  );
  const tables = new Set(
    nodes
      .filter((n) => n.opType === 'Gather')
      .map((n) => n.input?.[0] ?? '')
      .filter((name) => floatInits.has(name) && (matmulWeights.has(name) || elementCount(floatInits.get(name)!) >= LARGE_TABLE)),
  );

  const stats = rewriteGraph(graph, { weightType: weightTypeOf(opts.to), perChannel: opts.perChannel ?? false }, tables);
  if (stats.weights === 0) {
    throw new EarshotError(
      'invalid_argument',
      'nothing_to_quantize',
      `${label} has no float32 MatMul, Gemm or Conv weights to quantise (is it an fp16 export?)`,
    );
  }
  model.metadataProps = [
    ...(model.metadataProps ?? []),
    { key: METADATA_KEY, value: JSON.stringify({ to: opts.to, perChannel: opts.perChannel ?? false }) },
  ];
  return stats;
}
