// Worker process for `bench/transcribe.ts`, earshot's side: loads the model with N intra-op threads,
// times transcribeAll with the bench's equal-work settings, and measures the decode loop's cost per
// token against a bare loop over the very same onnxruntime decoder session.
import '../../src/engine/telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import ort from 'onnxruntime-node';
import { decodeWindow, type WindowDecodeOptions } from '../../src/decoding/decode-window.ts';
import { sotSequence } from '../../src/decoding/sot.ts';
import { transcribeAll } from '../../src/decoding/transcribe.ts';
import { loadModelHere, type Whisper } from '../../src/runtime/loaded-model.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import type { WhisperModel } from '../../src/engine/whisper-model.ts';
import { serve } from './child.ts';
import {
  type LoadRequest,
  type LoadResult,
  readSamples,
  type StepsRequest,
  type StepsResult,
  type TranscribeRequest,
  type TranscribeResult,
} from './transcribe-protocol.ts';

let w: Whisper | undefined;
let threads = 0;
let device: LoadRequest['device'] = 'cpu';
/** The decode-loop timing compares decodeWindow on the bare model with a bare onnxruntime loop: both on this thread. */
let here: Promise<WhisperModel> | undefined;

function loaded(): Whisper {
  if (!w) throw new Error('load first');
  return w;
}

async function load(r: LoadRequest): Promise<LoadResult> {
  const started = performance.now();
  w = await loadWhisper(r.modelDir, { engine: { intraOpThreads: r.threads, device: r.device } });
  threads = r.threads;
  device = r.device;
  return { loadMs: performance.now() - started };
}

async function transcribe(r: TranscribeRequest): Promise<TranscribeResult> {
  const samples = readSamples(r.input);
  const started = performance.now();
  const out = await transcribeAll(loaded(), samples, {
    language: 'en',
    temperature: 0,
    compressionRatioThreshold: null,
    logprobThreshold: null,
    noSpeechThreshold: null,
    withoutTimestamps: true,
    // transformers.js feeds no previous text; a growing prompt would give earshot more work.
    conditionOnPreviousText: false,
    sampleLen: r.budget,
  });
  const ms = performance.now() - started;
  return {
    ms,
    windows: out.segments.length,
    tokens: out.segments.reduce((n, s) => n + s.tokens.length, 0),
    text: out.text,
  };
}

/**
 * The reference loop: the prompt through the decoder once, then one call per token with the last
 * call's present self-attention K/V fed back as past (fetching only what a step needs), nothing else. The decoder session is private to WhisperModel;
 * this reaches it on purpose so both loops run on one session (one thread pool, one arena).
 */
async function bareLoop(model: WhisperModel, prompt: readonly number[], next: readonly number[], encoded: ort.Tensor): Promise<number> {
  const session = (model as unknown as { decoder: ort.InferenceSession }).decoder;
  const { decoderLayers, decoderHeads, dModel } = model.dims;
  const layers = Array.from({ length: decoderLayers }, (_, l) => l);
  const empty = new ort.Tensor('float32', new Float32Array(0), [1, decoderHeads, 0, dModel / decoderHeads]);
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(prompt, BigInt), [1, prompt.length]),
    use_cache_branch: new ort.Tensor('bool', new Uint8Array([0]), [1]),
    encoder_hidden_states: encoded,
  };
  for (const l of layers) {
    for (const kind of ['decoder', 'encoder']) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kind}.${kv}`] = empty;
    }
  }
  let out = await session.run(feeds);
  let calls = 1;
  feeds.use_cache_branch = new ort.Tensor('bool', new Uint8Array([1]), [1]);
  feeds.encoder_hidden_states = new ort.Tensor('float32', new Float32Array(0), [1, 0, dModel]);
  for (const l of layers) {
    for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.encoder.${kv}`] = out[`present.${l}.encoder.${kv}`]!;
  }
  // The least a cached step must fetch: the logits and the grown self-attention cache.
  const fetches = ['logits', ...layers.flatMap((l) => ['key', 'value'].map((kv) => `present.${l}.decoder.${kv}`))];
  for (const token of next) {
    feeds.input_ids = new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1, 1]);
    for (const l of layers) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.decoder.${kv}`] = out[`present.${l}.decoder.${kv}`]!;
    }
    out = await session.run(feeds, fetches);
    calls++;
  }
  return calls;
}

async function steps(r: StepsRequest): Promise<StepsResult> {
  const { tokenizer, features } = loaded();
  here ??= loadModelHere(loaded(), { intraOpThreads: threads, device });
  const model = await here;
  const encoded = await model.encode(features.window(readSamples(r.input).subarray(0, 30 * 16000)), 1);
  const options: WindowDecodeOptions = { language: 'en', temperature: 0, withoutTimestamps: true, sampleLen: r.budget };
  const prompt = sotSequence(tokenizer, options);

  // One untimed run, counting earshot's decoder calls through an instance-level wrapper.
  let earshotCalls = 0;
  const decode = model.decode;
  model.decode = function (...args: Parameters<WhisperModel['decode']>) {
    earshotCalls++;
    return decode.apply(this, args);
  };
  const { tokens } = await decodeWindow(model, tokenizer, encoded, options);
  delete (model as Partial<Pick<WhisperModel, 'decode'>>).decode;
  if (tokens.length !== r.budget) throw new Error(`earshot generated ${tokens.length} tokens, not the budget ${r.budget}`);
  // The bare loop feeds earshot's own choices, so both decoders see identical inputs.
  const next = tokens.slice(0, -1);
  const bareCalls = await bareLoop(model, prompt, next, encoded);

  const earshotMsPerToken: number[] = [];
  const bareMsPerToken: number[] = [];
  const timeEarshot = async () => {
    const t = performance.now();
    await decodeWindow(model, tokenizer, encoded, options);
    earshotMsPerToken.push((performance.now() - t) / tokens.length);
  };
  const timeBare = async () => {
    const t = performance.now();
    await bareLoop(model, prompt, next, encoded);
    bareMsPerToken.push((performance.now() - t) / tokens.length);
  };
  // Pairs run back to back, in alternating order (ABBA…), so that a pair shares the machine's load.
  for (let i = 0; i < r.reps; i++) {
    for (const f of i % 2 === 0 ? [timeEarshot, timeBare] : [timeBare, timeEarshot]) await f();
  }
  return { earshotMsPerToken, bareMsPerToken, tokens: tokens.length, earshotCalls, bareCalls };
}

serve(async (m) => {
  switch (m.op) {
    case 'load':
      return load(m as unknown as LoadRequest);
    case 'transcribe':
      return transcribe(m as unknown as TranscribeRequest);
    case 'steps':
      return steps(m as unknown as StepsRequest);
    default:
      throw new Error(`unknown request ${String(m.op)}`);
  }
});
