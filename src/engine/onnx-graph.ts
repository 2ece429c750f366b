// A thin builder over onnx-proto's message types: named inputs, outputs, initializers and nodes, and
// serialisation to the bytes of an .onnx file. Subgraphs (the branches of an If) share the model's
// names, constants and initializers. It knows nothing about Whisper.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** A tensor dimension: a number, or a symbolic name such as 'batch_size'. */
export type Dim = number | string;
export type ElemType = 'float' | 'float16' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool';

const DATA_TYPE: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

export type TensorData = Float32Array | Uint16Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

/** Node attributes; integers and floats are told apart explicitly, as ONNX types them; `g` is a subgraph. */
export type Attr = { i: number } | { f: number } | { ints: number[] } | { s: string } | { g: GraphBuilder };

/** ONNX opset and IR version the files declare (opset 17: LayerNormalization, LessOrEqual). */
export const OPSET = 17;
export const IR_VERSION = 8;

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function valueInfo(name: string, type: ElemType, shape: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in a) return { name, type: T.INT, i: a.i };
  if ('f' in a) return { name, type: T.FLOAT, f: a.f };
  if ('ints' in a) return { name, type: T.INTS, ints: a.ints };
  if ('g' in a) return { name, type: T.GRAPH, g: a.g.toGraph() };
  return { name, type: T.STRING, s: new TextEncoder().encode(a.s) };
}

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  /** The model's top graph, which holds every initializer and the names in use; this one if it is the top. */
  private readonly root: GraphBuilder;
  private readonly used = new Set<string>();
  private readonly constants = new Map<string, string>();
  private readonly initializerNames = new Set<string>();
  private count = 0;

  constructor(
    readonly name: string,
    parent?: GraphBuilder,
  ) {
    this.root = parent?.root ?? this;
  }

  /**
   * A graph for a node attribute (an If's branch). Its nodes may read any value of the enclosing
   * graphs; its initializers and constants go to the top graph, where one name is one tensor
   * (asking again for an initializer already there returns it: both branches share the weights).
   */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, this);
  }

  input(name: string, type: ElemType, shape: readonly Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Exposes `value` as graph output `name` (an Identity node, which onnxruntime removes). */
  output(value: string, name: string, type: ElemType, shape: readonly Dim[]): void {
    this.claim(name);
    this.nodes.push({ opType: 'Identity', name: `${name}_identity`, input: [value], output: [name] });
    this.outputs.push(valueInfo(name, type, shape));
  }

  initializer(name: string, type: ElemType, dims: readonly number[], data: TensorData): string {
    if (this.root !== this) return this.root.initializerNames.has(name) ? name : this.root.initializer(name, type, dims, data);
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims}]`);
    this.claim(name);
    this.initializers.push({ name, dataType: DATA_TYPE[type], dims: [...dims], rawData: bytesOf(data) });
    this.initializerNames.add(name);
    return name;
  }

  /** A small int64 constant (shapes, axes, indices), shared between all nodes that use it. */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant('int64', dims, values, () => BigInt64Array.from(values, (v) => BigInt(v)));
  }

  /** A float32 constant; dims [] gives a scalar. */
  float(values: readonly number[], dims: readonly number[] = []): string {
    return this.constant('float', dims, values, () => Float32Array.from(values));
  }

  /** Adds a node and returns its output names (`outputs` of them). */
  op(opType: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, outputs = 1): string[] {
    const name = `${opType}_${this.root.count++}`;
    const outs = Array.from({ length: outputs }, (_, i) => {
      const out = this.unique(`${name}_o${i}`);
      this.claim(out);
      return out;
    });
    this.nodes.push({
      opType,
      name,
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** `op` for the usual single-output node. */
  op1(opType: string, inputs: readonly string[], attrs: Record<string, Attr> = {}): string {
    return this.op(opType, inputs, attrs, 1)[0]!;
  }

  /** The graph as an ONNX message (a subgraph's, for its attribute). */
  toGraph(): onnxProto.onnx.IGraphProto {
    return { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs };
  }

  toBytes(producer: string): Uint8Array {
    if (this.root !== this) throw new Error(`${this.name} is a subgraph: serialise the top graph`);
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: producer,
      graph: this.toGraph(),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  private constant(type: ElemType, dims: readonly number[], values: readonly number[], make: () => TensorData): string {
    const root = this.root;
    const key = `${type}:${dims.join('x')}:${values.join(',')}`;
    const known = root.constants.get(key);
    if (known) return known;
    const name = root.initializer(root.unique(`const_${root.constants.size}`), type, dims, make());
    root.constants.set(key, name);
    return name;
  }

  /** Names are unique across the whole model, subgraphs included. */
  private claim(name: string): void {
    const used = this.root.used;
    if (used.has(name)) throw new Error(`duplicate tensor name ${name}`);
    used.add(name);
  }

  private unique(base: string): string {
    const used = this.root.used;
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    return name;
  }
}
