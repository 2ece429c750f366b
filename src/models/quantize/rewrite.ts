// The node rewrite of dynamic quantisation, laid out as onnxruntime's `quantize_dynamic` lays it out:
//   MatMul(x, W)      -> DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast
//                        -> Mul(., x_scale * W_scale)
//   Gemm(x, W, C)     -> the same (W^T through a Transpose of W_q when transB, which onnxruntime
//                        folds once at load), then alpha and + beta*C
//   Conv(x, W, B)     -> the same with ConvInteger, then + B reshaped to [channels, 1, ...]
//   Gather(T, ids)    -> Gather(T_q, ids) -> DequantizeLinear(., T_scale, T_zp)
// One DynamicQuantizeLinear per activation and graph serves every weight it multiplies (q, k, v).
// Weights are per tensor or, with `perChannel`, one scale and zero point per output column of
// MatMul/Gemm (MatMulInteger takes a per-column zero point). Conv stays per tensor with uint8
// weights: onnxruntime's CPU ConvInteger takes neither int8 weights nor per-channel zero points.
// A table used both by a Gather and as a MatMul/Gemm weight (Whisper's tied token embedding and
// output projection) is stored once, 8-bit, per tensor; the lookup dequantises the rows it gathers,
// so no float copy of the largest matrix is kept. Untied Gather tables are quantised only when large
// (token embeddings); small ones (position tables) stay float, they cost little and are summed
// unscaled into every activation.
import { quantizeChannels, quantizeTensor, type WeightType } from './weights.ts';
import {
  attrFloat,
  attrInt,
  DataType,
  dimsOf,
  floatValues,
  intAttr,
  intsAttr,
  makeTensor,
  subgraphs,
  type Graph,
  type Node,
  type Tensor,
} from './onnx.ts';
import { allGraphs, Names, Scope } from './scope.ts';

export interface RewriteOptions {
  /** Weight type of MatMul/Gemm/Gather weights; Conv weights are always uint8. */
  weightType: WeightType;
  perChannel: boolean;
}

export interface RewriteStats {
  matmul: number;
  gemm: number;
  conv: number;
  gather: number;
  /** Float initializers replaced by 8-bit ones. */
  weights: number;
  /** Nodes with a float weight that were left as they are, and why. */
  skipped: string[];
}

/** Untied Gather tables at least this large are quantised (a vocabulary, not a position table). */
export const LARGE_TABLE = 1 << 20;

const DEFAULT_DOMAIN = new Set(['', 'ai.onnx']);

interface QWeight {
  q: string;
  scale: string;
  zeroPoint: string;
}

interface Variant {
  type: WeightType;
  /** Per-channel axis of the 2-D weight; undefined: per tensor. */
  axis?: 0 | 1;
}

function isFloatMatrix(t: Tensor | undefined): t is Tensor {
  return t !== undefined && t.dataType === DataType.FLOAT && dimsOf(t).length === 2;
}

class Rewriter {
  readonly stats: RewriteStats = { matmul: 0, gemm: 0, conv: 0, gather: 0, weights: 0, skipped: [] };
  private readonly names: Names;
  private readonly root: Scope;
  private readonly weights = new Map<string, QWeight>();
  private readonly constants = new Map<string, string>();
  /** Float initializers that now have an 8-bit copy: removed at the end when nothing reads them. */
  readonly replaced = new Set<Tensor>();

  constructor(
    graph: Graph,
    private readonly opts: RewriteOptions,
    /** Names of Gather tables to quantise (see the file header). */
    private readonly tables: ReadonlySet<string>,
  ) {
    this.names = new Names(graph);
    this.root = new Scope(graph);
  }

  run(): void {
    this.rewriteGraph(this.root);
  }

  private rewriteGraph(scope: Scope): void {
    const activations = new Map<string, [string, string, string]>();
    const out: Node[] = [];
    for (const node of scope.graph.node ?? []) {
      for (const g of subgraphs(node)) this.rewriteGraph(new Scope(g, scope));
      const replacement = DEFAULT_DOMAIN.has(node.domain ?? '') ? this.rewrite(scope, node, activations) : undefined;
      out.push(...(replacement ?? [node]));
    }
    scope.graph.node = out;
  }

  private rewrite(scope: Scope, node: Node, acts: Map<string, [string, string, string]>): Node[] | undefined {
    const [a, b, c] = node.input ?? [];
    const weight = b ? scope.find(b) : undefined;
    switch (node.opType) {
      case 'MatMul': {
        if (!isFloatMatrix(weight?.tensor) || (a && scope.find(a))) return undefined;
        this.stats.matmul++;
        const w = this.weight(weight!.scope, weight!.tensor, this.matrixVariant(b!, 1));
        return this.integerMatMul(node, acts, a!, w, false, node.output![0]!);
      }
      case 'Gemm': {
        if (!isFloatMatrix(weight?.tensor) || (a && scope.find(a))) return undefined;
        if (attrInt(node, 'transA', 0) !== 0) {
          this.stats.skipped.push(`${node.name || 'Gemm'}: transA`);
          return undefined;
        }
        this.stats.gemm++;
        const transB = attrInt(node, 'transB', 0) !== 0;
        const w = this.weight(weight!.scope, weight!.tensor, this.matrixVariant(b!, transB ? 0 : 1));
        const alpha = attrFloat(node, 'alpha', 1);
        const beta = attrFloat(node, 'beta', 1);
        const hasC = c !== undefined && c !== '';
        const result = node.output![0]!;
        const product = alpha !== 1 || hasC ? this.names.fresh(`${result}_product`) : result;
        const nodes = this.integerMatMul(node, acts, a!, w, transB, product);
        let y = product;
        if (alpha !== 1) {
          const scaled = hasC ? this.names.fresh(`${result}_alpha`) : result;
          nodes.push(this.node('Mul', [y, this.floatConst(alpha)], [scaled]));
          y = scaled;
        }
        if (hasC) {
          const bias = beta === 1 ? c : this.names.fresh(`${c}_beta`);
          if (beta !== 1) nodes.push(this.node('Mul', [c, this.floatConst(beta)], [bias]));
          nodes.push(this.node('Add', [y, bias], [result]));
        }
        return nodes;
      }
      case 'Conv': {
        const t = weight?.tensor;
        if (!t || t.dataType !== DataType.FLOAT || dimsOf(t).length < 3 || (a && scope.find(a))) return undefined;
        this.stats.conv++;
        const w = this.weight(weight!.scope, t, { type: 'uint8' });
        const [xq, xs, xzp, dq] = this.activation(acts, a!);
        const acc = this.names.fresh(`${node.output![0]}_output_quantized`);
        const conv: Node = { ...this.node('ConvInteger', [xq, w.q, xzp, w.zeroPoint], [acc]), attribute: node.attribute ?? [] };
        const hasBias = c !== undefined && c !== '';
        const scaledOut = hasBias ? this.names.fresh(`${node.output![0]}_unbiased`) : node.output![0]!;
        const nodes = [...dq, conv, ...this.rescale(acc, xs, w.scale, scaledOut)];
        if (hasBias) {
          // [C] -> [C, 1, ...] so that it adds along the channel axis of [batch, C, ...].
          const shape = this.int64Const([-1, ...Array<number>(dimsOf(t).length - 2).fill(1)]);
          const biasShaped = this.names.fresh(`${c}_reshaped`);
          nodes.push(this.node('Reshape', [c, shape], [biasShaped]), this.node('Add', [scaledOut, biasShaped], [node.output![0]!]));
        }
        return nodes;
      }
      case 'Gather': {
        const table = a ? scope.find(a) : undefined;
        if (!isFloatMatrix(table?.tensor) || !this.tables.has(a!) || attrInt(node, 'axis', 0) !== 0) return undefined;
        this.stats.gather++;
        const w = this.weight(table!.scope, table!.tensor, { type: this.opts.weightType });
        const rows = this.names.fresh(`${node.output![0]}_quantized`);
        return [
          { ...this.node('Gather', [w.q, b!], [rows]), attribute: node.attribute ?? [] },
          this.node('DequantizeLinear', [rows, w.scale, w.zeroPoint], [node.output![0]!]),
        ];
      }
      default:
        return undefined;
    }
  }

  /** A tied table is stored per tensor for its Gather; other weights follow `perChannel`. */
  private matrixVariant(name: string, axis: 0 | 1): Variant {
    return this.opts.perChannel && !this.tables.has(name) ? { type: this.opts.weightType, axis } : { type: this.opts.weightType };
  }

  /** x @ W as MatMulInteger, W_q transposed first when `transpose`. */
  private integerMatMul(
    node: Node,
    acts: Map<string, [string, string, string]>,
    x: string,
    w: QWeight,
    transpose: boolean,
    out: string,
  ): Node[] {
    const [xq, xs, xzp, dq] = this.activation(acts, x);
    const nodes = [...dq];
    let b = w.q;
    if (transpose) {
      b = this.names.fresh(`${w.q}_transposed`);
      nodes.push({ ...this.node('Transpose', [w.q], [b]), attribute: [intsAttr('perm', [1, 0])] });
    }
    const acc = this.names.fresh(`${node.output![0]}_output_quantized`);
    nodes.push(this.node('MatMulInteger', [xq, b, xzp, w.zeroPoint], [acc]));
    return [...nodes, ...this.rescale(acc, xs, w.scale, out)];
  }

  /** int32 accumulator -> float32, times x_scale * w_scale. */
  private rescale(acc: string, xScale: string, wScale: string, out: string): Node[] {
    const asFloat = this.names.fresh(`${acc}_cast_output`);
    const scale = this.names.fresh(`${acc}_scales_mul`);
    return [
      { ...this.node('Cast', [acc], [asFloat]), attribute: [intAttr('to', DataType.FLOAT)] },
      this.node('Mul', [xScale, wScale], [scale]),
      this.node('Mul', [asFloat, scale], [out]),
    ];
  }

  /** The quantised activation (made on first use in this graph): [x_q, x_scale, x_zp, nodes to add]. */
  private activation(acts: Map<string, [string, string, string]>, x: string): [string, string, string, Node[]] {
    const known = acts.get(x);
    if (known) return [...known, []];
    const outs: [string, string, string] = [
      this.names.fresh(`${x}_quantized`),
      this.names.fresh(`${x}_scale`),
      this.names.fresh(`${x}_zero_point`),
    ];
    acts.set(x, outs);
    return [...outs, [this.node('DynamicQuantizeLinear', [x], [...outs])]];
  }

  /** The 8-bit copy of a float initializer, made once per variant and kept in the scope that owns it. */
  private weight(owner: Scope, t: Tensor, v: Variant): QWeight {
    const key = `${t.name}\u0000${v.type}\u0000${v.axis ?? ''}`;
    const known = this.weights.get(key);
    if (known) return known;
    const dims = dimsOf(t);
    const values = floatValues(t);
    const base = t.name ?? 'weight';
    let made: { data: Int8Array | Uint8Array; scale: Float32Array; zeroPoint: Int8Array | Uint8Array; scaleDims: number[] };
    if (v.axis === undefined) {
      const q = quantizeTensor(values, v.type);
      const zp = v.type === 'int8' ? Int8Array.of(q.zeroPoint) : Uint8Array.of(q.zeroPoint);
      made = { data: q.data, scale: Float32Array.of(q.scale), zeroPoint: zp, scaleDims: [] };
    } else {
      const q = quantizeChannels(values, dims[0]!, dims[1]!, v.axis, v.type);
      made = { data: q.data, scale: q.scales, zeroPoint: q.zeroPoints, scaleDims: [q.scales.length] };
    }
    const w: QWeight = {
      q: owner.addInitializer(makeTensor(this.names.fresh(`${base}_quantized`), dims, made.data)),
      scale: owner.addInitializer(makeTensor(this.names.fresh(`${base}_scale`), made.scaleDims, made.scale)),
      zeroPoint: owner.addInitializer(makeTensor(this.names.fresh(`${base}_zero_point`), made.scaleDims, made.zeroPoint)),
    };
    this.weights.set(key, w);
    this.replaced.add(t);
    this.stats.weights++;
    return w;
  }

  private node(opType: string, input: string[], output: string[]): Node {
    return { opType, name: this.names.fresh(`${output[0]}_${opType}`), input, output };
  }

  private floatConst(v: number): string {
    return this.constant(`f:${v}`, () => makeTensor(this.names.fresh('quantize_const'), [], Float32Array.of(v)));
  }

  private int64Const(values: number[]): string {
    return this.constant(`i:${values}`, () =>
      makeTensor(this.names.fresh('quantize_shape'), [values.length], BigInt64Array.from(values, (x) => BigInt(x))),
    );
  }

  private constant(key: string, make: () => Tensor): string {
    let name = this.constants.get(key);
    if (!name) {
      name = this.root.addInitializer(make());
      this.constants.set(key, name);
    }
    return name;
  }
}

/**
 * Rewrites `graph` (and its subgraphs) in place and drops the float initializers that nothing reads
 * any more. `tables` names the Gather tables to quantise.
 */
export function rewriteGraph(graph: Graph, opts: RewriteOptions, tables: ReadonlySet<string>): RewriteStats {
  const r = new Rewriter(graph, opts, tables);
  r.run();
  const read = new Set<string>();
  const graphs = allGraphs(graph);
  for (const g of graphs) {
    for (const n of g.node ?? []) for (const i of n.input ?? []) read.add(i);
    for (const o of g.output ?? []) read.add(o.name ?? '');
  }
  for (const g of graphs) {
    const dropped = new Set(
      (g.initializer ?? []).filter((t) => r.replaced.has(t) && !read.has(t.name ?? '')).map((t) => t.name ?? ''),
    );
    g.initializer = (g.initializer ?? []).filter((t) => !dropped.has(t.name ?? ''));
    // Models from IR < 4 also list initializers as graph inputs.
    g.input = (g.input ?? []).filter((i) => !dropped.has(i.name ?? ''));
  }
  return r.stats;
}
