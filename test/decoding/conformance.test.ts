// Greedy decoding against the reference: our decoder and transformers.js's generate() on the same
// test model and the same log-mel features must choose identical token ids.
//
// With timestamps, openai/whisper (which we follow) has two rules transformers.js lacks: timestamps
// never decrease, and the first timestamp is at most 1.0 s. The reference gets exactly those two
// rules as an extra logits processor (OpenaiTimestampRules below), placed where openai applies them:
// after token suppression and before the forced-timestamp check. Everything else is the reference's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, basename } from 'node:path';
import { AutoModelForSpeechSeq2Seq, env, LogitsProcessor, LogitsProcessorList, Tensor } from '@huggingface/transformers';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import { decodeWindow } from '../../src/decoding/decode-window.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { SHARED_AUDIO } from '../audio/support.ts';

const CLIPS = ['real-en/jfk.wav', 'real-en/harvard_spk1_snt1.wav', 'synth-zh/synth_zh_01.wav'];
/** Token budget: random weights rarely emit <|endoftext|>, so both sides stop here. */
const BUDGET = 40;

class OpenaiTimestampRules extends LogitsProcessor {
  constructor(
    private readonly tsBegin: number,
    private readonly sampleBegin: number,
    private readonly maxInitialIndex: number,
  ) {
    super();
  }

  _call(inputIds: bigint[][], logits: Tensor): Tensor {
    inputIds.forEach((ids, i) => {
      const row = (logits as unknown as Tensor[])[i]!.data as Float32Array;
      const sampled = ids.slice(this.sampleBegin).map(Number);
      if (sampled.length === 0) {
        row.fill(-Infinity, this.tsBegin + this.maxInitialIndex + 1);
        return;
      }
      const stamps = sampled.filter((t) => t >= this.tsBegin);
      if (stamps.length === 0) return;
      const lastWas = sampled.at(-1)! >= this.tsBegin;
      const penultimateWas = sampled.length < 2 || sampled.at(-2)! >= this.tsBegin;
      const last = stamps.at(-1)!;
      row.fill(-Infinity, this.tsBegin, lastWas && !penultimateWas ? last : last + 1);
    });
    return logits;
  }
}

for (const preset of ['english', 'multilingual'] as const) {
  test(`greedy token ids match transformers.js (${preset} preset)`, async (t) => {
    const dir = testModelDir({ preset });
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${dirname(dir)}/`;
    const reference = await AutoModelForSpeechSeq2Seq.from_pretrained(basename(dir), { dtype: 'fp32', local_files_only: true });
    const w = await loadWhisper(dir);
    const tok = w.tokenizer;
    const langOpts = preset === 'english' ? {} : { language: 'en', task: 'transcribe' };

    for (const clip of CLIPS) {
      const audio = await decodeAudio(SHARED_AUDIO + clip);
      const features = w.features.window(audio.samples);
      const encoded = await w.model.encode(features, 1);
      for (const timestamps of [false, true]) {
        await t.test(`${clip}, ${timestamps ? 'with' : 'without'} timestamps`, async () => {
          const ours = await decodeWindow(w.model, tok, encoded, {
            temperature: 0,
            sampleLen: BUDGET,
            withoutTimestamps: !timestamps,
            language: preset === 'english' ? undefined : 'en',
          });
          const processors = new LogitsProcessorList();
          const sampleBegin = preset === 'english' ? 1 : 3;
          if (timestamps) processors.push(new OpenaiTimestampRules(tok.timestampBegin, sampleBegin, 50));
          const out = (await reference.generate({
            inputs: new Tensor('float32', features, [1, w.model.dims.nMels, 3000]),
            max_new_tokens: BUDGET,
            return_timestamps: timestamps,
            logits_processor: processors,
            ...langOpts,
          } as never)) as Tensor;
          const theirs = (out.tolist() as bigint[][])[0]!.map(Number);
          const initial = theirs.length - BUDGET;
          assert.ok(initial >= 1, 'the reference produced its whole budget');
          assert.equal(ours.tokens.length, BUDGET, 'no <|endoftext|> within the budget on random weights');
          assert.deepEqual(ours.tokens, theirs.slice(initial));
          if (timestamps) assert.ok(ours.tokens.some((id) => id >= tok.timestampBegin), 'timestamps were sampled');
        });
      }
    }
    await reference.dispose();
  });
}
