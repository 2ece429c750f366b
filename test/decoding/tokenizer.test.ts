// The Whisper tokenizer against transformers.js's WhisperTokenizer (same tokenizer.json, loaded
// offline) and against the reference data in the fixtures' config files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isEarshotError } from '../../src/errors.ts';
import { loadWhisperTokenizer, timestampText, TIMESTAMP_COUNT } from '../../src/decoding/tokenizer.ts';
import { LANGUAGES } from '../../src/decoding/languages.ts';
import { MODELS, fixtureDir, ourTokenizer, readFixtureJson, referenceTokenizer } from './helpers.ts';

const TEXTS = [
  'Hello world',
  ' Hello world',
  '   three leading spaces, two trailing  ',
  'Hello, world! How are you? (Fine.) "Quoted" — em-dash; semi: colon…',
  "Don't stop: it's 3:45 p.m., isn't it? We'll see; they'd've known.",
  'Numbers: 0 7 42 1234567890 3.14159 -2.5e10 1,000,000 $19.99 50%',
  '你好，世界。今天天气很好，我们去公园散步吧！',
  'こんにちは、世界。カタカナとひらがなと漢字。',
  '안녕하세요 세계',
  'Привет, мир! Ёлка.',
  'مرحبا بالعالم',
  'Emoji 😀🎉 👍🏽 👨‍👩‍👧 and ♪ music ♪ ♫',
  'Ünïcödé façade naïve coöperate Straße',
  'tabs\tand\nnew\nlines\n\n  indented',
  '[MUSIC] (laughs) <<hello>> -- {{x}} 「quote」',
  'mixed 中文 English 日本語 123 한국어',
  ' ',
  'a',
  'Supercalifragilisticexpialidocious antidisestablishmentarianism',
  '<|notatoken|> and a <| b |> are plain text',
];

/** Deterministic pseudo-random strings mixing scripts, spaces and punctuation. */
function randomTexts(count: number, seed: number): string[] {
  const pools = ['abcdefghij XYZ', '0123456789.,', ' \t\n', '中文字漢語', 'ひらがなカタ', 'éüßøå', '!?;:\'"()-', '😀🎉🏽♪'];
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    let t = '';
    const len = 1 + Math.floor(next() * 30);
    for (let i = 0; i < len; i++) {
      const pool = [...pools[Math.floor(next() * pools.length)]!];
      t += pool[Math.floor(next() * pool.length)];
    }
    out.push(t);
  }
  return out;
}

const ALL_TEXTS = [...TEXTS, ...randomTexts(150, 7)];

for (const m of MODELS) {
  test(`${m}: encode gives transformers.js's ids`, async () => {
    const [ours, ref] = await Promise.all([ourTokenizer(m), referenceTokenizer(m)]);
    for (const text of ALL_TEXTS) {
      assert.deepEqual(ours.encode(text), ref.encode(text, { add_special_tokens: false }), JSON.stringify(text));
    }
    assert.deepEqual(ours.encode(''), []);
  });

  test(`${m}: decode gives transformers.js's text and round-trips exactly`, async () => {
    const [ours, ref] = await Promise.all([ourTokenizer(m), referenceTokenizer(m)]);
    for (const text of ALL_TEXTS) {
      const ids = ours.encode(text);
      const expected = ref.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
      assert.equal(ours.decode(ids), expected, JSON.stringify(text));
      assert.equal(ours.decode(ids), text, 'byte-level BPE decodes to the exact input');
    }
  });

  test(`${m}: decode with special tokens matches transformers.js, kept or skipped`, async () => {
    const [ours, ref] = await Promise.all([ourTokenizer(m), referenceTokenizer(m)]);
    const prefix = ours.isMultilingual ? [ours.sot, ours.languageTokens.get('de')!, ours.translate] : [ours.sot];
    for (const text of TEXTS) {
      const ids = [ours.sotPrev, ...ours.encode(' prior'), ...prefix, ours.noTimestamps, ...ours.encode(text), ours.eot];
      for (const skip of [false, true]) {
        const expected = ref.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
        assert.equal(ours.decode(ids, { skipSpecialTokens: skip }), expected, `${JSON.stringify(text)} skip=${skip}`);
      }
    }
    // every special id renders as transformers.js renders it alone
    for (let id = ours.eot; id < ours.timestampBegin; id++) {
      assert.equal(ours.decode([id], { skipSpecialTokens: false }), ref.decode([id]));
      assert.equal(ours.decode([id]), '');
    }
  });

  test(`${m}: timestamps decode to <|t.tt|> as transformers.js, or are dropped`, async () => {
    const [ours, ref] = await Promise.all([ourTokenizer(m), referenceTokenizer(m)]);
    const T = ours.timestampBegin;
    const a = ours.encode(' And so my fellow Americans,');
    const b = ours.encode(' ask not what your country can do for you.');
    // transformers.js's decode_with_timestamps needs text between timestamps (it throws on empty runs)
    const ids = [...a, T + 54, ...b, T + 1500, ...a];
    const expected = ref.decode(ids, {
      decode_with_timestamps: true,
      skip_special_tokens: false,
      clean_up_tokenization_spaces: false,
    } as Record<string, unknown>);
    assert.equal(ours.decode(ids, { timestamps: true }), expected);
    assert.ok(expected.includes('<|1.08|>') && expected.includes('<|30.00|>'));
    assert.equal(ours.decode(ids), ours.decode([...a, ...b, ...a]), 'timestamps dropped by default');
    assert.equal(ours.decode([ours.vocabSize - 1], { timestamps: true }), '<|30.00|>');
    assert.equal(ours.decode([T], { timestamps: true }), '<|0.00|>');
    if (ours.isMultilingual) {
      // here the timestamps are (non-special) tokens of tokenizer.json itself: full sequences compare
      const full = [ours.sot, ours.languageTokens.get('en')!, ours.transcribe, T, ...a, T + 54, T + 54, ...b, T + 99, ours.eot];
      for (const skip of [false, true]) {
        const exp = ref.decode(full, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
        assert.equal(ours.decode(full, { timestamps: true, skipSpecialTokens: skip }), exp);
      }
    }
  });

  test(`${m}: special and timestamp ids agree with the config files`, async () => {
    const [ours, ref] = await Promise.all([ourTokenizer(m), referenceTokenizer(m)]);
    const gen = readFixtureJson(m, 'generation_config.json');
    const config = readFixtureJson(m, 'config.json');
    const id = (s: string): number | undefined => ref._tokenizer.token_to_id(s) as number | undefined;
    assert.equal(ours.eot, gen.eos_token_id);
    assert.equal(ours.sot, gen.decoder_start_token_id);
    assert.equal(ours.noTimestamps, gen.no_timestamps_token_id);
    assert.equal(ours.timestampBegin, gen.no_timestamps_token_id + 1);
    assert.equal(ours.vocabSize, config.vocab_size);
    assert.equal(ours.isMultilingual, gen.is_multilingual);
    assert.equal(ours.translate, id('<|translate|>'));
    assert.equal(ours.transcribe, id('<|transcribe|>'));
    assert.equal(ours.sotLm, id('<|startoflm|>'));
    assert.equal(ours.sotPrev, id('<|startofprev|>'));
    assert.equal(ours.noSpeech, id('<|nocaptions|>'));
    if (gen.prev_sot_token_id !== undefined) assert.equal(ours.sotPrev, gen.prev_sot_token_id);
    if (gen.task_to_id) assert.deepEqual([ours.transcribe, ours.translate], [gen.task_to_id.transcribe, gen.task_to_id.translate]);
    assert.equal(ours.timestampSeconds(ours.timestampBegin + 54), 54 * 0.02);
    assert.equal(ours.isTimestamp(ours.timestampBegin - 1), false);
    assert.equal(ours.isTimestamp(ours.vocabSize - 1), true);
  });

  test(`${m}: the non-speech set plus control tokens is HF's suppress_tokens; blank+EOT its begin_suppress_tokens`, async () => {
    const ours = await ourTokenizer(m);
    const gen = readFixtureJson(m, 'generation_config.json');
    const ours88 = new Set([...ours.nonSpeechTokens(), ours.transcribe, ours.translate, ours.sot, ours.sotPrev, ours.sotLm, ours.noSpeech]);
    assert.deepEqual([...ours88].sort((a, b) => a - b), gen.suppress_tokens);
    assert.deepEqual([...ours.encode(' '), ours.eot], gen.begin_suppress_tokens);
  });

  test(`${m}: encode refuses text that spells a special or timestamp token`, async () => {
    const ours = await ourTokenizer(m);
    for (const bad of ['<|endoftext|>', 'say <|startofprev|> now', 'at <|1.08|>', '<|30.00|>', '<|en|>', '<|nospeech|>']) {
      assert.throws(() => ours.encode(bad), (e) => isEarshotError(e) && e.code === 'special_token_in_text', bad);
    }
  });

  test(`${m}: decode rejects ids outside the vocabulary with a typed error`, async () => {
    const ours = await ourTokenizer(m);
    for (const bad of [-1, ours.vocabSize, 1.5, Number.NaN]) {
      assert.throws(() => ours.decode([1, bad]), (e) => isEarshotError(e) && e.code === 'bad_token_id', String(bad));
    }
  });
}

test('timestamp texts equal the <|t.tt|> tokens of the multilingual tokenizer.json', () => {
  const tj = readFixtureJson('whisper-tiny', 'tokenizer.json');
  const gen = readFixtureJson('whisper-tiny', 'generation_config.json');
  const byId = new Map<number, string>(tj.added_tokens.map((t: { id: number; content: string }) => [t.id, t.content]));
  for (let i = 0; i < TIMESTAMP_COUNT; i++) assert.equal(timestampText(i), byId.get(gen.no_timestamps_token_id + 1 + i));
});

test('language tokens follow openai order: the i-th language code is the i-th token after SOT', async () => {
  const ours = await ourTokenizer('whisper-tiny');
  const codes = [...LANGUAGES.keys()];
  assert.equal(ours.languageTokens.size, 99);
  for (const [code, id] of ours.languageTokens) assert.equal(codes.indexOf(code), id - ours.sot - 1, code);
  assert.equal((await ourTokenizer('whisper-tiny.en')).languageTokens.size, 0);
});

test('decode leaves spaces before punctuation alone (openai), unlike HF clean-up', async () => {
  const [ours, ref] = await Promise.all([ourTokenizer('whisper-tiny'), referenceTokenizer('whisper-tiny')]);
  const text = " Hello , world . I 'm here !";
  const ids = ours.encode(text);
  assert.equal(ours.decode(ids), text);
  assert.notEqual(ref.decode(ids, { skip_special_tokens: true }), text, 'HF default cleans up: the difference is real');
});

test('loading reports missing or malformed files as typed errors', async () => {
  const dir = mkdtempSync(`${tmpdir()}/earshot-tok-`);
  await assert.rejects(loadWhisperTokenizer(dir), (e) => isEarshotError(e) && e.kind === 'model_not_found');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(`${fixtureDir('whisper-tiny')}/${f}`, `${dir}/${f}`);
  writeFileSync(`${dir}/generation_config.json`, '{ not json');
  await assert.rejects(loadWhisperTokenizer(dir), (e) => isEarshotError(e) && e.code === 'bad_json');
  writeFileSync(`${dir}/generation_config.json`, JSON.stringify({ decoder_start_token_id: 'x' }));
  await assert.rejects(loadWhisperTokenizer(dir), (e) => isEarshotError(e) && e.code === 'bad_generation_config');
  // tiny.en's generation config with the multilingual tokenizer: ids disagree
  copyFileSync(`${fixtureDir('whisper-tiny.en')}/generation_config.json`, `${dir}/generation_config.json`);
  await assert.rejects(loadWhisperTokenizer(dir), (e) => isEarshotError(e) && e.code === 'bad_tokenizer');
});
