// Worker process for `bench/transcribe.ts`, the baseline's side: transformers.js's
// automatic-speech-recognition pipeline, offline, on the same model folder, with the same thread
// count, cut into back-to-back 30 s chunks (no stride) and the same token budget per chunk.
import '../../src/engine/telemetry-off.ts'; // first: transformers.js loads onnxruntime-node
import { basename, dirname } from 'node:path';
import { type AutomaticSpeechRecognitionPipeline, env, LogLevel, pipeline } from '@huggingface/transformers';
import { resolveDevice } from '../../src/engine/execution.ts';
import { serve } from './child.ts';
import { type LoadRequest, type LoadResult, readSamples, type TranscribeRequest, type TranscribeResult } from './transcribe-protocol.ts';

let asr: AutomaticSpeechRecognitionPipeline | undefined;
/** Counters fed by the generate() wrapper below. */
let windows = 0;
let tokens = 0;

async function load(r: LoadRequest): Promise<LoadResult> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(r.modelDir)}/`;
  env.logLevel = LogLevel.ERROR;
  const started = performance.now();
  asr = (await pipeline('automatic-speech-recognition', basename(r.modelDir), {
    dtype: 'fp32',
    // transformers.js names the devices as earshot does; auto is earshot's own choice, made here alike.
    device: r.device === 'auto' ? resolveDevice('auto') : r.device,
    local_files_only: true,
    session_options: { intraOpNumThreads: r.threads },
  })) as AutomaticSpeechRecognitionPipeline;
  const loadMs = performance.now() - started;

  // The pipeline returns text only; count windows and generated tokens where it calls generate().
  const model = asr.model as unknown as { generate: (...a: unknown[]) => Promise<{ tolist(): bigint[][] }> };
  const noTimestamps = BigInt((asr.model.generation_config as unknown as { no_timestamps_token_id: number }).no_timestamps_token_id);
  const generate = model.generate.bind(model);
  model.generate = async (...args) => {
    const out = await generate(...args);
    for (const seq of out.tolist()) {
      windows++;
      tokens += seq.length - (seq.indexOf(noTimestamps) + 1); // after <|sot|> <|en|> <|transcribe|> <|notimestamps|>
    }
    return out;
  };
  return { loadMs };
}

async function transcribe(r: TranscribeRequest): Promise<TranscribeResult> {
  if (!asr) throw new Error('load first');
  const samples = readSamples(r.input);
  windows = 0;
  tokens = 0;
  const started = performance.now();
  let text: string;
  try {
    const out = (await asr(samples, {
      chunk_length_s: 30,
      stride_length_s: 0,
      max_new_tokens: r.budget,
      return_timestamps: false,
      language: 'en',
      task: 'transcribe',
    })) as { text: string };
    text = out.text;
  } catch (e) {
    // Random weights can generate only special tokens in a window; the pipeline's text merge then
    // throws after all the decoding is done. The time and tokens still count; the text is empty.
    if (!String((e as Error)?.message).includes('token_ids must be a non-empty array')) throw e;
    text = '';
  }
  return { ms: performance.now() - started, windows, tokens, text };
}

serve(async (m) => {
  switch (m.op) {
    case 'load':
      return load(m as unknown as LoadRequest);
    case 'transcribe':
      return transcribe(m as unknown as TranscribeRequest);
    default:
      throw new Error(`unknown request ${String(m.op)}`);
  }
});
