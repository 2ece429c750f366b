// Chinese output script (`--zh`, and the server's `zh` field later): both directions through
// OpenCC's Taiwan standard, applied to the full text and to every segment, only for Chinese, and
// the option's parsing. Also: CER scoring does not count a script difference as an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Segment, Transcription } from '../../src/decoding/transcription.ts';
import { scoreTexts } from '../../src/eval/evaluate.ts';
import { convertChinese, convertTranscription, parseZhScript, ZH_SCRIPTS } from '../../src/output/chinese.ts';
import { parseTranscribeOptions } from '../../src/cli/transcribe-options.ts';

const segment = (id: number, text: string): Segment => ({
  id, seek: 0, start: id, end: id + 1, text, tokens: [], temperature: 0, avg_logprob: -0.1, compression_ratio: 1, no_speech_prob: 0,
});
const transcription = (language: string, texts: string[]): Transcription => ({
  language, languageProbability: 1, duration: texts.length, task: 'transcribe', text: texts.join(''), segments: texts.map((t, i) => segment(i, t)),
});

test('traditional → simplified', async () => {
  assert.equal(await convertChinese('我們說漢語，頭髮很長。', 'simplified'), '我们说汉语，头发很长。');
  assert.equal(await convertChinese('臺灣的裡面', 'simplified'), '台湾的里面', 'Taiwan variants (臺, 裡) are read');
});

test('simplified → traditional, Taiwan standard', async () => {
  assert.equal(await convertChinese('我们说汉语，头发很长。', 'traditional'), '我們說漢語，頭髮很長。');
  assert.equal(await convertChinese('台湾的里面', 'traditional'), '臺灣的裡面', 'Taiwan forms, not Hong Kong 台灣/裏面');
  assert.equal(await convertChinese('干净的干部', 'traditional'), '乾淨的幹部', 'one simplified character, two traditional ones, by phrase');
});

test('as-is changes nothing; text that is not Chinese passes through', async () => {
  assert.equal(await convertChinese('我們说漢语', 'as-is'), '我們说漢语');
  assert.equal(await convertChinese('Hello, world 123', 'simplified'), 'Hello, world 123');
});

test('a transcription: full text and every segment converted, other fields kept', async () => {
  const t = transcription('zh', ['我們說', '漢語，', '頭髮']);
  const s = await convertTranscription(t, 'simplified');
  assert.equal(s.text, '我们说汉语，头发');
  assert.deepEqual(s.segments.map((x) => x.text), ['我们说', '汉语，', '头发']);
  assert.deepEqual(s.segments.map((x) => [x.id, x.start, x.end]), t.segments.map((x) => [x.id, x.start, x.end]));
  assert.equal(t.text, '我們說漢語，頭髮', 'the input is not modified');
  const back = await convertTranscription(s, 'traditional');
  assert.equal(back.text, '我們說漢語，頭髮');
  assert.deepEqual(back.segments.map((x) => x.text), ['我們說', '漢語，', '頭髮']);
  const yue = await convertTranscription(transcription('yue', ['佢哋講廣東話']), 'simplified');
  assert.equal(yue.text, '佢哋讲广东话', 'Cantonese too');
});

test('Japanese (and any other language) is left as the model wrote it', async () => {
  const ja = transcription('ja', ['漢字と學校']);
  assert.equal(await convertTranscription(ja, 'simplified'), ja);
  const asIs = transcription('zh', ['漢語']);
  assert.equal(await convertTranscription(asIs, 'as-is'), asIs);
});

test('the option: three names, as-is by default, a clear error otherwise', () => {
  assert.deepEqual([...ZH_SCRIPTS], ['as-is', 'simplified', 'traditional']);
  assert.equal(parseZhScript(' Simplified '), 'simplified');
  assert.throws(() => parseZhScript('klingon'), { name: 'EarshotError', code: 'bad_zh', message: /klingon.*as-is, simplified, traditional/ });
  const base = { model: 'tiny', language: 'auto', task: 'transcribe', format: 'txt', device: 'cpu', maxDuration: '60', conditionOnPreviousText: true, vadFilter: true };
  assert.equal(parseTranscribeOptions({ ...base, zh: 'as-is' }).zh, 'as-is');
  assert.equal(parseTranscribeOptions({ ...base, zh: 'traditional' }).zh, 'traditional');
  assert.throws(() => parseTranscribeOptions({ ...base, zh: 'cantonese' }), { code: 'bad_option', message: /^invalid --zh "cantonese": expected one of as-is, simplified, traditional$/ });
});

test('CER scoring: the same words in the other script are no error', async () => {
  const s = await scoreTexts('广州市房地产中介协会分析', '廣州市房地產中介協會分析。', 'zh');
  assert.deepEqual([s.metric, s.units, s.errors, s.rate], ['cer', 12, 0, 0]);
  const one = await scoreTexts('广州市房地产', '廣州市房地', 'zh');
  assert.deepEqual([one.deletions, one.units], [1, 6]);
});
