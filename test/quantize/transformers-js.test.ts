// Acceptance: transformers.js (the reference client) loads a locally quantised folder offline and
// runs its automatic-speech-recognition pipeline on it, and the tokens it generates are those that
// earshot's own greedy decoding of the same file picks (same features, same suppression rules).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { basename, dirname } from 'node:path';
import { env, pipeline, type AutomaticSpeechRecognitionPipeline, type Tensor } from '@huggingface/transformers';
import { loadWhisper, unloadAll } from '../../src/runtime/model-cache.ts';
import { quantizedCopy } from './support.ts';

env.allowRemoteModels = false;

/** 3 s of a chirp plus a tone at 16 kHz. */
const audio = Float32Array.from({ length: 3 * 16000 }, (_, i) => {
  const t = i / 16000;
  return 0.3 * Math.sin(2 * Math.PI * (200 + 300 * t) * t) + 0.1 * Math.sin(2 * Math.PI * 1100 * t);
});
const MAX_NEW = 6;
const PROMPT = [50257, 50362];

const open: AutomaticSpeechRecognitionPipeline[] = [];
after(async () => {
  for (const p of open) await p.dispose();
  await unloadAll();
});

for (const [to, perChannel] of [['int8', false], ['q8', true]] as const) {
  test(`transformers.js runs its ASR pipeline on a quantised folder (${to}${perChannel ? ', per-channel' : ''})`, async () => {
    const q = quantizedCopy('english', to, { perChannel });
    env.localModelPath = dirname(q.outDir);
    const asr = (await pipeline('automatic-speech-recognition', basename(q.outDir), { dtype: to })) as AutomaticSpeechRecognitionPipeline;
    open.push(asr);
    const out = (await asr(audio, { max_new_tokens: MAX_NEW })) as { text: string };

    const { input_features } = (await asr.processor(audio)) as { input_features: Tensor };
    const generated = (await asr.model.generate({ inputs: input_features, max_new_tokens: MAX_NEW })) as { tolist(): bigint[][] };
    const tokens = generated.tolist()[0]!.map(Number);
    assert.deepEqual(tokens.slice(0, PROMPT.length), PROMPT);
    assert.equal(tokens.length, PROMPT.length + MAX_NEW, `stopped early: ${tokens}`);
    assert.equal(out.text.trim(), asr.tokenizer.decode(tokens, { skip_special_tokens: true }).trim());

    // earshot on the same file and features, with transformers.js's suppression, picks the same tokens.
    const gen = JSON.parse(JSON.stringify(asr.model.generation_config)) as { suppress_tokens: number[]; begin_suppress_tokens: number[] };
    const whisper = await loadWhisper(q.outDir, { dtype: to });
    const encoded = await whisper.model.encode(input_features.data as Float32Array, 1);
    let step = await whisper.model.decode(BigInt64Array.from(PROMPT, BigInt), 1, encoded, null);
    for (let i = PROMPT.length; i < tokens.length; i++) {
      const skip = new Set([...gen.suppress_tokens, ...(i === PROMPT.length ? gen.begin_suppress_tokens : [])]);
      let best = -1;
      step.logits.forEach((v, k) => {
        if (!skip.has(k) && (best < 0 || v > step.logits[best]!)) best = k;
      });
      assert.equal(best, tokens[i], `token ${i}`);
      step = await whisper.model.decode(BigInt64Array.of(BigInt(tokens[i]!)), 1, encoded, step.cache);
    }
  });
}
