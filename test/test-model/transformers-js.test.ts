// Acceptance: transformers.js (the reference client) loads built folders offline and runs its
// automatic-speech-recognition pipeline on them to the end; and every token it picks is the argmax
// of a cacheless full pass of the same decoder file, so its cached decoding agrees with the graph.
// Also on the If form of the merged decoder (optimum's, as the hub's files are).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { basename, dirname } from 'node:path';
import * as ort from 'onnxruntime-node';
import { env, pipeline, type AutomaticSpeechRecognitionPipeline } from '@huggingface/transformers';
import { testModelDir, type Dtype, type MergedForm, type Preset } from '../../scripts/test-model/index.ts';
import { ALL_DTYPES, argmax, decode, modelDir, row, session } from './support.ts';

env.allowRemoteModels = false;

/** 3 s of a deterministic chirp plus a tone, at 16 kHz. */
const audio = Float32Array.from({ length: 3 * 16000 }, (_, i) => {
  const t = i / 16000;
  return 0.3 * Math.sin(2 * Math.PI * (200 + 300 * t) * t) + 0.1 * Math.sin(2 * Math.PI * 1100 * t);
});
const MAX_NEW = 6;

const cases: { preset: Preset; dtype: Dtype; prompt: number[]; merged?: MergedForm }[] = [
  { preset: 'english', dtype: 'fp32', prompt: [50257, 50362] },
  { preset: 'english', dtype: 'fp32', prompt: [50257, 50362], merged: 'if' },
  { preset: 'multilingual', dtype: 'fp32', prompt: [50258, 50259, 50359, 50363] },
  { preset: 'multilingual', dtype: 'int8', prompt: [50258, 50259, 50359, 50363] },
];

const open: AutomaticSpeechRecognitionPipeline[] = [];
// Feature extraction (a JS STFT over 30 s) is the slow part; the processor is the same for all dtypes.
const featuresOf = new Map<Preset, Promise<{ input_features: { ort_tensor: unknown } }>>();
after(async () => {
  for (const p of open) await p.dispose();
});

for (const { preset, dtype, prompt, merged } of cases) {
  test(`transformers.js transcribes with the ${preset} model (${dtype}${merged ? `, merged decoder: ${merged}` : ''})`, async () => {
    const dir = merged ? testModelDir({ preset, dtypes: ALL_DTYPES, merged }) : modelDir(preset);
    env.localModelPath = dirname(dir);
    const asr = (await pipeline('automatic-speech-recognition', basename(dir), { dtype })) as AutomaticSpeechRecognitionPipeline;
    open.push(asr);
    const language = preset === 'english' ? {} : { language: 'en' };

    const out = (await asr(audio, { max_new_tokens: MAX_NEW, ...language })) as { text: string };
    assert.equal(typeof out.text, 'string');

    // The same decoding through the model's generate(), to see the token ids.
    if (!featuresOf.has(preset)) featuresOf.set(preset, asr.processor(audio));
    const { input_features } = (await featuresOf.get(preset)!) as Awaited<ReturnType<typeof asr.processor>>;
    const generated = (await asr.model.generate({ inputs: input_features, max_new_tokens: MAX_NEW, ...language })) as {
      tolist(): bigint[][];
    };
    const tokens = generated.tolist()[0]!.map(Number);
    assert.deepEqual(tokens.slice(0, prompt.length), prompt);
    assert.equal(tokens.length, prompt.length + MAX_NEW, `stopped early: ${tokens}`);
    assert.equal(out.text.trim(), asr.tokenizer.decode(tokens, { skip_special_tokens: true }).trim());

    // Replay without any cache: each picked token must be the best allowed one of the full pass.
    const gen = JSON.parse(JSON.stringify(asr.model.generation_config)) as {
      suppress_tokens: number[];
      begin_suppress_tokens: number[];
    };
    const suppress = new Set(gen.suppress_tokens);
    const beginSuppress = new Set([...suppress, ...gen.begin_suppress_tokens]);
    const enc = await session(dir, 'encoder', dtype);
    const hidden = (await enc.run({ input_features: input_features.ort_tensor as ort.Tensor })).last_hidden_state!;
    const logits = (await decode(await session(dir, 'decoder', dtype), [tokens.slice(0, -1)], hidden)).logits as ort.Tensor;
    for (let t = prompt.length; t < tokens.length; t++) {
      const r = row(logits, 0, t - 1);
      const best = argmax(r, t === prompt.length ? beginSuppress : suppress);
      // int8/q8 round activations per call, so a cacheless pass may differ within rounding noise.
      const slack = dtype === 'fp32' ? 1e-4 : 0.5;
      assert.ok(r[best]! - r[tokens[t]!]! <= slack, `token ${t}: picked ${tokens[t]}, full pass prefers ${best}`);
    }
  });
}
