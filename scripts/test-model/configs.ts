// The JSON side of a built model: the real Whisper config/tokenizer files from test/fixtures, with
// the builder's dimensions patched in so that any client sizes its tensors from them correctly.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIMS, PRESET_SPECS, type ResolvedOptions } from './options.ts';

export const FIXTURES_DIR = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

/** Files copied unchanged from the fixture folder when it has them (the hub repos carry them too). */
const VERBATIM = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'normalizer.json',
];

type Json = Record<string, unknown>;

function readJson(dir: string, file: string): Json {
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as Json;
}

/** Marker saying what built the folder (a real model has no such key). */
export interface TestModelMarker {
  preset: string;
  dims: string;
  seed: number;
  builder: string;
  /** Present (true) on models whose decoder outputs cross-attention weights. */
  timestamped?: true;
  /** Present on models whose merged decoder is optimum's If form. */
  merged?: 'if';
}

/** Keeps the fixture's alignment heads when they fit the layer/head counts, else uses every head of the last layer. */
function alignmentHeads(original: unknown, layers: number, heads: number): number[][] {
  const pairs = Array.isArray(original) ? (original as number[][]) : [];
  const fits = pairs.length > 0 && pairs.every(([l, h]) => l! < layers && h! < heads);
  return fits ? pairs : Array.from({ length: heads }, (_, h) => [layers - 1, h]);
}

/** file name -> contents, for every JSON file of the folder. */
export function configFiles(o: ResolvedOptions, builderVersion: string): Map<string, string> {
  const spec = PRESET_SPECS[o.preset];
  const dims = DIMS[o.dims];
  const dir = join(FIXTURES_DIR, spec.fixture);
  const files = new Map<string, string>();
  const put = (name: string, json: Json) => files.set(name, `${JSON.stringify(json, null, 2)}\n`);

  const marker: TestModelMarker = {
    preset: o.preset,
    dims: o.dims,
    seed: o.seed,
    builder: builderVersion,
    ...(o.timestamped ? { timestamped: true as const } : {}),
    ...(o.merged === 'if' ? { merged: 'if' as const } : {}),
  };
  put('config.json', {
    ...readJson(dir, 'config.json'),
    _name_or_path: `earshot/test-whisper-${o.preset}-${o.dims}${o.timestamped ? '_timestamped' : ''}`,
    d_model: dims.dModel,
    encoder_layers: dims.encoderLayers,
    decoder_layers: dims.decoderLayers,
    num_hidden_layers: dims.encoderLayers,
    encoder_attention_heads: dims.heads,
    decoder_attention_heads: dims.heads,
    encoder_ffn_dim: dims.ffnDim,
    decoder_ffn_dim: dims.ffnDim,
    num_mel_bins: spec.nMels,
    vocab_size: spec.vocabSize,
    max_source_positions: dims.sourcePositions,
    max_target_positions: dims.targetPositions,
    earshot_test_model: marker,
  });

  const generation = readJson(dir, 'generation_config.json');
  put('generation_config.json', {
    ...generation,
    alignment_heads: alignmentHeads(generation.alignment_heads, dims.decoderLayers, dims.heads),
  });

  const { mel_filters: melFilters, ...preprocessor } = readJson(dir, 'preprocessor_config.json');
  // The fixture's filters are for 80 bands: with another band count a client must compute its own.
  put('preprocessor_config.json', {
    ...preprocessor,
    ...(spec.nMels === 80 ? { mel_filters: melFilters } : {}),
    feature_size: spec.nMels,
  });

  for (const name of VERBATIM) {
    const path = join(dir, name);
    if (existsSync(path)) files.set(name, readFileSync(path, 'utf8'));
  }
  return files;
}
