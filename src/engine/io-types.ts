// The element types a model's sessions take and give, read once at load from their metadata, and
// the host conversions between them. Everything above the engine speaks float32 (features in,
// logits and attention weights out); a model may not: the hub's fp16 files converted with
// keep_io_types keep float32 I/O, while an fp16 conversion without it (and onnxruntime-genai's
// exports, whose caches transformers.js builds as float16: `kv_cache_dtype`) takes and gives
// float16 features, encoder states, K/V caches and logits. So the engine never assumes a type: it
// feeds each input the type its session declares and turns float16 outputs to float32 on the host.
// onnxruntime-node 1.30 carries float16 data as the bits in a Uint16Array (Node 20 has no Float16Array).
import './telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import ort from 'onnxruntime-node';
import { Float16Array } from '@petamoriken/float16';
import { EarshotError } from '../errors.ts';

type Tensor = ort.Tensor;

/** The float types a Whisper graph's I/O can have. */
export type FloatType = 'float32' | 'float16';

/** Every float type earshot feeds to or reads from a model's two sessions. */
export interface ModelIoTypes {
  /** Encoder input `input_features`. */
  features: FloatType;
  /** Encoder output `last_hidden_state`. */
  encoded: FloatType;
  /** Decoder input `encoder_hidden_states` (the encoder's type when the decoder has none). */
  hidden: FloatType;
  /** Decoder inputs `past_key_values.*` and outputs `present.*`: one type for all. */
  cache: FloatType;
  /** Decoder output `logits`. */
  logits: FloatType;
  /** Decoder outputs `cross_attentions.N` (word timing), when it has them. */
  crossAttentions: FloatType;
}

type Io = Pick<ort.InferenceSession, 'inputMetadata' | 'outputMetadata'>;

function floatType(dir: string, what: string, meta: ort.InferenceSession.ValueMetadata): FloatType {
  const type = meta.isTensor ? meta.type : 'not a tensor';
  if (type === 'float32' || type === 'float16') return type;
  throw new EarshotError('model_not_found', 'bad_model', `${dir}: the ${what} ${meta.name} is ${type}; earshot feeds and reads float32 or float16 only`);
}

/** The types of `names` in `metas` (all one type), or `fallback` when none is there. */
function oneType(dir: string, what: string, metas: readonly ort.InferenceSession.ValueMetadata[], match: (name: string) => boolean, fallback?: FloatType): FloatType {
  const types = new Set(metas.filter((m) => match(m.name)).map((m) => floatType(dir, what, m)));
  if (types.size > 1) throw new EarshotError('model_not_found', 'bad_model', `${dir}: the decoder's ${what}s mix float32 and float16`);
  const [type] = types;
  if (type) return type;
  if (fallback) return fallback;
  throw new EarshotError('model_not_found', 'bad_model', `${dir}: the model has no ${what}`);
}

/** The I/O types of a model's encoder and decoder sessions (thrown: a typed error naming what is off). */
export function readIoTypes(dir: string, encoder: Io, decoder: Io): ModelIoTypes {
  const encoded = oneType(dir, 'encoder output', encoder.outputMetadata, (n) => n === 'last_hidden_state');
  const past = oneType(dir, 'cache input', decoder.inputMetadata, (n) => n.startsWith('past_key_values.'));
  const present = oneType(dir, 'cache output', decoder.outputMetadata, (n) => n.startsWith('present.'));
  // A step feeds what the last one gave: the two must agree, or every step would need a cast.
  if (past !== present) throw new EarshotError('model_not_found', 'bad_model', `${dir}: the decoder takes ${past} caches but gives ${present} ones`);
  const logits = oneType(dir, 'logits output', decoder.outputMetadata, (n) => n === 'logits');
  return {
    features: oneType(dir, 'encoder input', encoder.inputMetadata, (n) => n === 'input_features'),
    encoded,
    hidden: oneType(dir, 'encoder_hidden_states input', decoder.inputMetadata, (n) => n === 'encoder_hidden_states', encoded),
    cache: past,
    logits,
    crossAttentions: oneType(dir, 'cross-attention output', decoder.outputMetadata, (n) => n.startsWith('cross_attentions.'), logits),
  };
}

/** float16 bits -> float32, by table: 256 KiB once, then one load per value (a step's logits go through it). */
let halfTable: Float32Array | undefined;
function halfToFloat(bits: Uint16Array): Float32Array {
  const table = (halfTable ??= Float32Array.from(new Float16Array(Uint16Array.from({ length: 65536 }, (_, i) => i).buffer)));
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}

/** float32 -> the bits of float16 (round to nearest even). */
function floatToHalf(values: Float32Array): Uint16Array {
  const half = new Float16Array(values);
  return new Uint16Array(half.buffer, half.byteOffset, half.length);
}

/** A host tensor's data as float32: the data itself when it is float32, a converted copy of float16. */
export function hostFloat32(t: Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return halfToFloat(t.data as Uint16Array);
  throw new TypeError(`a ${t.type} tensor is not float data`);
}

/** A host tensor of `type` holding `values` (float32 values, rounded when `type` is float16). */
export function floatTensor(type: FloatType, values: Float32Array, dims: readonly number[]): Tensor {
  return type === 'float32' ? new ort.Tensor('float32', values, dims) : new ort.Tensor('float16', floatToHalf(values), dims);
}

/** An empty (zero-sized) tensor of `type`. */
export function emptyTensor(type: FloatType, dims: readonly number[]): Tensor {
  return type === 'float32' ? new ort.Tensor('float32', new Float32Array(0), dims) : new ort.Tensor('float16', new Uint16Array(0), dims);
}

/** Host tensor `t` as `type`: `t` itself when it already is. */
export function castHost(t: Tensor, type: FloatType): Tensor {
  return t.type === type ? t : floatTensor(type, hostFloat32(t), t.dims);
}
