// The ONNX protobuf types as onnx-proto (protobufjs) generates them, and the few helpers every step
// of the quantiser needs to read and make tensors, attributes and nodes.
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type Model = onnxProto.onnx.IModelProto;
export type Graph = onnxProto.onnx.IGraphProto;
export type Node = onnxProto.onnx.INodeProto;
export type Tensor = onnxProto.onnx.ITensorProto;
export type Attribute = onnxProto.onnx.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;
const AttrType = onnx.AttributeProto.AttributeType;

/** A protobuf int64 (a Long object when the `long` package is present) as a JS number. */
export function num(v: unknown): number {
  return Number(v);
}

export function dimsOf(t: Tensor): number[] {
  return (t.dims ?? []).map(num);
}

export function elementCount(t: Tensor): number {
  return dimsOf(t).reduce((a, b) => a * b, 1);
}

/** The float32 values of a tensor stored in `raw_data` or `float_data` (external data must be inlined first). */
export function floatValues(t: Tensor): Float32Array {
  const n = elementCount(t);
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    if (raw.length !== n * 4) throw new RangeError(`tensor ${t.name}: ${raw.length} bytes for ${n} float32 values`);
    // Copy into a fresh, aligned buffer: protobuf fields may sit at any byte offset.
    return new Float32Array(Uint8Array.from(raw).buffer);
  }
  const values = Float32Array.from(t.floatData ?? []);
  if (values.length !== n) throw new RangeError(`tensor ${t.name}: ${values.length} float values for ${n} elements`);
  return values;
}

type Data = Float32Array | Int8Array | Uint8Array | BigInt64Array;

const TYPE_OF: Record<string, number> = {
  Float32Array: DataType.FLOAT,
  Int8Array: DataType.INT8,
  Uint8Array: DataType.UINT8,
  BigInt64Array: DataType.INT64,
};

/** An initializer holding `data` (its element type follows the typed array's). */
export function makeTensor(name: string, dims: readonly number[], data: Data): Tensor {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new RangeError(`tensor ${name}: ${data.length} values for dims [${dims}]`);
  return {
    name,
    dataType: TYPE_OF[data.constructor.name]!,
    dims: [...dims],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

export function attrInt(node: Node, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a ? num(a.i) : fallback;
}

export function attrFloat(node: Node, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a ? Number(a.f) : fallback;
}

export function intAttr(name: string, i: number): Attribute {
  return { name, type: AttrType.INT, i };
}

export function intsAttr(name: string, ints: number[]): Attribute {
  return { name, type: AttrType.INTS, ints };
}

/** The subgraphs held by a node's attributes (If branches, Loop and Scan bodies). */
export function subgraphs(node: Node): Graph[] {
  return (node.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]);
}
