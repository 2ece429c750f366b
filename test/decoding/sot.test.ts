// SOT sequences and prompts, checked against the ids in the fixtures' generation_config.json and
// config.json (forced_decoder_ids is HF's spelling of the same sequence).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEarshotError } from '../../src/errors.ts';
import { encodePrompt, initialTokens, sotSequence } from '../../src/decoding/sot.ts';
import { resolveLanguage, languageName } from '../../src/decoding/languages.ts';
import { ourTokenizer, readFixtureJson, referenceTokenizer } from './helpers.ts';

const gen = readFixtureJson('whisper-tiny', 'generation_config.json');
const genEn = readFixtureJson('whisper-tiny.en', 'generation_config.json');

const isCode = (code: string) => (e: unknown) => isEarshotError(e) && e.code === code;

test('multilingual: <|startoftranscript|> <|lang|> <|task|>, English and transcribe by default', async () => {
  const tok = await ourTokenizer('whisper-tiny');
  const start = gen.decoder_start_token_id;
  assert.deepEqual(sotSequence(tok), [start, gen.lang_to_id['<|en|>'], gen.task_to_id.transcribe]);
  assert.deepEqual(sotSequence(tok, { language: 'de', task: 'translate' }), [start, gen.lang_to_id['<|de|>'], gen.task_to_id.translate]);
  assert.deepEqual(sotSequence(tok, { language: 'German' }), [start, gen.lang_to_id['<|de|>'], gen.task_to_id.transcribe]);
  assert.deepEqual(sotSequence(tok, { language: 'castilian' }), [start, gen.lang_to_id['<|es|>'], gen.task_to_id.transcribe]);
  assert.deepEqual(sotSequence(tok, { language: 'haw' }), [start, gen.lang_to_id['<|haw|>'], gen.task_to_id.transcribe]);
});

test('multilingual with <|notimestamps|> equals HF forced_decoder_ids of config.json', async () => {
  const tok = await ourTokenizer('whisper-tiny');
  const config = readFixtureJson('whisper-tiny', 'config.json');
  const forced = (config.forced_decoder_ids as [number, number][]).map(([, id]) => id);
  assert.deepEqual(sotSequence(tok, { language: 'en', withoutTimestamps: true }), [config.decoder_start_token_id, ...forced]);
});

test('English-only: no language or task token; notimestamps as generation_config forces it', async () => {
  const tok = await ourTokenizer('whisper-tiny.en');
  const forced = (genEn.forced_decoder_ids as [number, number][]).map(([, id]) => id);
  assert.deepEqual(sotSequence(tok), [genEn.decoder_start_token_id]);
  assert.deepEqual(sotSequence(tok, { language: 'English', task: 'transcribe' }), [genEn.decoder_start_token_id]);
  assert.deepEqual(sotSequence(tok, { withoutTimestamps: true }), [genEn.decoder_start_token_id, ...forced]);
  assert.throws(() => sotSequence(tok, { language: 'fr' }), isCode('unsupported_language'));
  assert.throws(() => sotSequence(tok, { task: 'translate' }), isCode('unsupported_task'));
});

test('unknown languages and tasks are typed errors', async () => {
  const tok = await ourTokenizer('whisper-tiny');
  assert.throws(() => sotSequence(tok, { language: 'klingon' }), isCode('unknown_language'));
  // Cantonese is a Whisper language (large-v3) but not one of tiny's 99
  assert.throws(() => sotSequence(tok, { language: 'yue' }), isCode('unsupported_language'));
  assert.throws(() => sotSequence(tok, { task: 'summarise' as never }), isCode('unknown_task'));
});

test('language lookup: codes, names and aliases in any case; names back', () => {
  assert.equal(resolveLanguage('EN'), 'en');
  assert.equal(resolveLanguage(' japanese '), 'ja');
  assert.equal(resolveLanguage('Mandarin'), 'zh');
  assert.equal(resolveLanguage('valencian'), 'ca');
  assert.equal(languageName('nl'), 'dutch');
  assert.equal(languageName('xx'), undefined);
  assert.throws(() => resolveLanguage(''), isCode('unknown_language'));
});

test('prompt: leading space, trimmed, encoded as transformers.js encodes it', async () => {
  const [tok, ref] = await Promise.all([ourTokenizer('whisper-tiny'), referenceTokenizer('whisper-tiny')]);
  const ids = encodePrompt(tok, '  Glossary: Kubernetes, PostgreSQL.\n');
  assert.deepEqual(ids, ref.encode(' Glossary: Kubernetes, PostgreSQL.', { add_special_tokens: false }));
  assert.equal(tok.decode(ids), ' Glossary: Kubernetes, PostgreSQL.');
  assert.deepEqual(encodePrompt(tok, ' \n '), []);
});

test('initial tokens: <|startofprev|> + prompt before the SOT sequence', async () => {
  const tok = await ourTokenizer('whisper-tiny');
  const sot = sotSequence(tok, { language: 'fr' });
  const prompt = encodePrompt(tok, 'Bonjour à tous.');
  const r = initialTokens(tok, sot, prompt);
  assert.deepEqual(r.tokens, [gen.prev_sot_token_id, ...prompt, ...sot]);
  assert.equal(r.sotIndex, 1 + prompt.length);
  assert.equal(r.tokens[r.sotIndex], gen.decoder_start_token_id);
  assert.equal(r.sampleBegin, r.tokens.length);

  const none = initialTokens(tok, sot);
  assert.deepEqual(none, { tokens: sot, sampleBegin: sot.length, sotIndex: 0 });
});

test('a long prompt keeps only its last n_text_ctx/2 - 1 tokens', async () => {
  const tok = await ourTokenizer('whisper-tiny.en');
  const nTextCtx = readFixtureJson('whisper-tiny.en', 'config.json').max_target_positions as number;
  const keep = Math.floor(nTextCtx / 2) - 1; // 223
  const prompt = Array.from({ length: 500 }, (_, i) => 1000 + i);
  const sot = sotSequence(tok);
  const r = initialTokens(tok, sot, prompt, nTextCtx);
  assert.equal(r.tokens.length, 1 + keep + sot.length);
  assert.equal(r.tokens[0], tok.sotPrev);
  assert.deepEqual(r.tokens.slice(1, 1 + keep), prompt.slice(500 - keep));
  const short = initialTokens(tok, sot, prompt.slice(0, keep), nTextCtx);
  assert.deepEqual(short.tokens.slice(1, 1 + keep), prompt.slice(0, keep), 'exactly 223 tokens are all kept');
});
