// A Whisper model's dimensions, as its config.json gives them (the hub's names).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EarshotError } from '../errors.ts';

export interface WhisperDims {
  nMels: number;
  dModel: number;
  decoderLayers: number;
  decoderHeads: number;
  vocabSize: number;
  /** Encoder frames per 30 s window (1500). */
  nAudioCtx: number;
  /** Longest decoder sequence the model was trained on (448). */
  nTextCtx: number;
}

export function readDims(modelDir: string): WhisperDims {
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8'));
  } catch (e) {
    throw new EarshotError('model_not_found', 'bad_config', `cannot read ${join(modelDir, 'config.json')}: ${(e as Error).message}`);
  }
  const num = (k: string, fallback?: number): number => {
    const v = cfg[k] ?? fallback;
    if (typeof v !== 'number') {
      throw new EarshotError('model_not_found', 'bad_config', `config.json has no numeric "${k}"`);
    }
    return v;
  };
  return {
    nMels: num('num_mel_bins'),
    dModel: num('d_model'),
    decoderLayers: num('decoder_layers'),
    decoderHeads: num('decoder_attention_heads'),
    vocabSize: num('vocab_size'),
    nAudioCtx: num('max_source_positions', 1500),
    nTextCtx: num('max_target_positions', 448),
  };
}
