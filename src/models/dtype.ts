// Weight precision ("dtype") of the two ONNX graphs a Whisper model is made of, and the file-name
// suffix each dtype has in the hub's `onnx/` folder. The names and suffixes are those of the
// onnx-community exports (the same table transformers.js uses), so a model pulled here loads the
// same files transformers.js would.
import { EarshotError } from '../errors.ts';

export const DTYPES = ['fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'] as const;
export type Dtype = (typeof DTYPES)[number];

export const COMPONENTS = ['encoder', 'decoder'] as const;
export type Component = (typeof COMPONENTS)[number];

export type ComponentDtypes = Record<Component, Dtype>;

/** File-name suffix of each dtype: `onnx/encoder_model{suffix}.onnx`. */
export const DTYPE_SUFFIX: Readonly<Record<Dtype, string>> = Object.freeze({
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
});

/** Base name of each component's graph in the hub layout (decoder: the merged with/without-past graph). */
export const COMPONENT_BASENAME: Readonly<Record<Component, string>> = Object.freeze({
  encoder: 'encoder_model',
  decoder: 'decoder_model_merged',
});

export function isDtype(s: string): s is Dtype {
  return (DTYPES as readonly string[]).includes(s);
}

function badSpec(spec: string, why: string): EarshotError {
  return new EarshotError(
    'invalid_argument',
    'bad_dtype',
    `invalid dtype "${spec}": ${why} (expected one of ${DTYPES.join(', ')}, or per component like "encoder=fp32,decoder=q8")`,
  );
}

/**
 * Parses `q8` (both components) or `encoder=fp32,decoder=q8` (per component). A component left out
 * of the per-component form takes its dtype from `fallback`; without a fallback both must be named.
 */
export function parseDtypeSpec(spec: string, fallback?: ComponentDtypes): ComponentDtypes {
  const text = spec.trim();
  if (text === '') throw badSpec(spec, 'empty');
  if (!text.includes('=')) {
    if (!isDtype(text)) throw badSpec(spec, `unknown dtype "${text}"`);
    return { encoder: text, decoder: text };
  }
  const seen: Partial<ComponentDtypes> = {};
  for (const part of text.split(',')) {
    const [rawKey, rawValue, ...rest] = part.split('=');
    const key = (rawKey ?? '').trim();
    const value = (rawValue ?? '').trim();
    if (rest.length > 0 || key === '' || value === '') throw badSpec(spec, `cannot read "${part.trim()}"`);
    if (!(COMPONENTS as readonly string[]).includes(key)) {
      throw badSpec(spec, `unknown component "${key}" (components: ${COMPONENTS.join(', ')})`);
    }
    const component = key as Component;
    if (seen[component] !== undefined) throw badSpec(spec, `"${component}" given twice`);
    if (!isDtype(value)) throw badSpec(spec, `unknown dtype "${value}"`);
    seen[component] = value;
  }
  const encoder = seen.encoder ?? fallback?.encoder;
  const decoder = seen.decoder ?? fallback?.decoder;
  if (encoder === undefined || decoder === undefined) {
    throw badSpec(spec, `no dtype for ${encoder === undefined ? 'encoder' : 'decoder'}`);
  }
  return { encoder, decoder };
}

/** The shortest spec that parses back to `d`: `q8`, or `encoder=fp32,decoder=q8`. */
export function formatDtypeSpec(d: ComponentDtypes): string {
  return d.encoder === d.decoder ? d.encoder : `encoder=${d.encoder},decoder=${d.decoder}`;
}

/** A dtype choice and why it was made, for the logs. */
export interface DtypeChoice {
  dtype: ComponentDtypes;
  reason: string;
}

/**
 * The dtype of a load when none is asked for: on a GPU (webgpu, cuda), fp16 where the model offers
 * it, since half the bytes per weight and per cache entry is what a GPU's memory bandwidth wants
 * (the usual precision of Whisper on GPUs); on the CPU, or for a model without fp16 files, the
 * model's own default. `--dtype fp32` keeps full precision anywhere.
 */
export function defaultDtypeChoice(modelDefault: Dtype, gpu: boolean, offersFp16: boolean): DtypeChoice {
  const own = { encoder: modelDefault, decoder: modelDefault };
  if (!gpu) return { dtype: own, reason: "the model's default" };
  if (offersFp16) return { dtype: { encoder: 'fp16', decoder: 'fp16' }, reason: 'the GPU default (--dtype fp32 for full precision)' };
  return { dtype: own, reason: "the model's default: it has no fp16 files for the GPU default" };
}

/** Repository path of a component's graph, e.g. `onnx/decoder_model_merged_quantized.onnx`. */
export function onnxFile(component: Component, dtype: Dtype): string {
  return `onnx/${COMPONENT_BASENAME[component]}${DTYPE_SUFFIX[dtype]}.onnx`;
}
