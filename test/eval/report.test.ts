// The eval report (totals from the rows, the table) and the comparison of two reports, on reports
// built by hand: rates before → after, deltas, files in only one run, repeated paths, a file whose
// metric changed, and an empty reference compared by its insertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareReports, renderComparison } from '../../src/eval/compare.ts';
import { score } from '../../src/eval/metrics.ts';
import { buildReport, type FileResult, parseStoredReport, renderReport } from '../../src/eval/report.ts';

function row(path: string, language: string, ref: string, hyp: string, durationS = 2, processingS = 1): FileResult {
  const metric = language === 'zh' ? 'cer' : 'wer';
  const { alignment: _a, ...s } = score(ref, hyp, metric);
  return { path, language, reference: ref, hypothesis: hyp, normalizedReference: ref, normalizedHypothesis: hyp, ...s, durationS, processingS, rtf: processingS / durationS };
}
const meta = { model: 'tiny', dtype: 'fp32', options: {}, skipped: 1, loadS: 0.5 };

test('totals per metric come from the rows; the table shows each row and an empty reference\'s insertions', () => {
  const r = buildReport(meta, [row('a.wav', 'en', 'a b c d', 'a x c d'), row('s.wav', 'en', '', 'thank you'), row('z.wav', 'zh', '你好世界', '你好')], [{ path: 'bad.wav', error: 'not audio' }]);
  assert.deepEqual([r.totals.wer!.files, r.totals.wer!.units, r.totals.wer!.errors, r.totals.wer!.rate], [2, 4, 3, 3 / 4]);
  assert.deepEqual([r.totals.cer!.files, r.totals.cer!.units, r.totals.cer!.errors, r.totals.cer!.rate], [1, 4, 2, 0.5]);
  assert.deepEqual([r.run.audioS, r.run.processingS, r.run.rtf], [6, 3, 0.5]);
  const lines = renderReport(r).split('\n');
  assert.match(lines[0]!, /^FILE\s+LANG\s+METRIC\s+REF\s+SUB\s+DEL\s+INS\s+RATE\s+RTF$/);
  assert.match(lines[1]!, /^a\.wav\s+en\s+WER\s+4\s+1\s+0\s+0\s+25\.0%\s+0\.500$/);
  assert.match(lines[2]!, /^s\.wav\s+en\s+WER\s+0\s+0\s+0\s+2\s+-\s+0\.500$/);
  assert.match(lines[3]!, /^z\.wav\s+zh\s+CER\s+4\s+0\s+2\s+0\s+50\.0%/);
  assert.match(lines[4]!, /^WER total \(2 files\)\s+4\s+1\s+0\s+2\s+75\.0%$/);
  assert.match(lines[5]!, /^CER total \(1 file\)\s+4\s+0\s+2\s+0\s+50\.0%$/);
  assert.ok(lines.includes('WER: 75.0% micro-averaged (3 errors / 4 reference units), 25.0% macro-averaged'));
  assert.ok(lines.includes('skipped: 1 line with no reference'));
  assert.ok(lines.includes('failed: 1 file (bad.wav)'));
  // What --json writes reads back for --compare.
  assert.equal(parseStoredReport(JSON.stringify(r), 'r.json').files.length, 3);
  assert.throws(() => parseStoredReport('{"files": []}', 'x.json'), { code: 'bad_report', message: /x\.json is not an earshot eval --json report/ });
  assert.throws(() => parseStoredReport('nope', 'y.json'), { code: 'bad_report' });
});

test('comparison: per-file rates and deltas, totals, RTF, unmatched and repeated files', () => {
  const before = buildReport(meta, [
    row('a.wav', 'en', 'a b c d', 'a x c d', 2, 1), // 25%
    row('dup.wav', 'en', 'x y', 'x y'), // 0%
    row('dup.wav', 'en', 'x y', 'z'), // 100%
    row('s.wav', 'en', '', 'thank you'), // 2 insertions
    row('gone.wav', 'en', 'a', 'a'),
    row('lang.wav', 'en', 'ni hao', 'ni hao'),
  ], []);
  const after = buildReport({ ...meta, model: 'small' }, [
    row('a.wav', 'en', 'a b c d', 'a b c d', 2, 0.5), // 0%
    row('dup.wav', 'en', 'x y', 'x'), // 50%
    row('dup.wav', 'en', 'x y', 'x y'), // 0%
    row('s.wav', 'en', '', ''),
    row('new.wav', 'en', 'a b', 'a'),
    row('lang.wav', 'zh', '你好', '你好'),
  ], []);
  const c = compareReports(before, after);
  const byPath = new Map(c.files.map((f) => [f.path, f]));
  assert.deepEqual([byPath.get('a.wav')!.before, byPath.get('a.wav')!.after, byPath.get('a.wav')!.delta], [0.25, 0, -0.25]);
  assert.deepEqual([byPath.get('dup.wav')!.before, byPath.get('dup.wav')!.after, byPath.get('dup.wav')!.delta], [0, 0.5, 0.5]);
  assert.deepEqual([byPath.get('dup.wav#2')!.before, byPath.get('dup.wav#2')!.after, byPath.get('dup.wav#2')!.delta], [1, 0, -1]);
  assert.deepEqual([byPath.get('s.wav')!.delta, byPath.get('s.wav')!.insertionsBefore, byPath.get('s.wav')!.insertionsAfter], [null, 2, 0]);
  assert.deepEqual([byPath.get('lang.wav')!.metricChanged, byPath.get('lang.wav')!.delta], [true, null]);
  assert.deepEqual(c.onlyBefore, ['gone.wav']);
  assert.deepEqual(c.onlyAfter, ['new.wav']);
  assert.equal(c.totals.wer!.before, before.totals.wer!.rate);
  assert.equal(c.totals.wer!.after, after.totals.wer!.rate);
  assert.equal(c.totals.wer!.delta, after.totals.wer!.rate! - before.totals.wer!.rate!);
  assert.deepEqual([c.totals.cer!.before, c.totals.cer!.after], [null, 0]);
  assert.equal(c.rtf.delta, after.run.rtf! - before.run.rtf!);

  const lines = renderComparison(c).split('\n');
  assert.equal(lines[0], 'before: tiny  after: small');
  assert.match(lines[1]!, /^FILE\s+METRIC\s+BEFORE\s+AFTER\s+DELTA$/);
  assert.ok(lines.some((l) => /^a\.wav\s+WER\s+25\.0%\s+0\.0%\s+-25\.0$/.test(l)));
  assert.ok(lines.some((l) => /^dup\.wav#2\s+WER\s+100\.0%\s+0\.0%\s+-100\.0$/.test(l)));
  assert.ok(lines.some((l) => /^s\.wav\s+WER\s+2 ins\s+0 ins\s+-2 ins$/.test(l)));
  assert.ok(lines.some((l) => /^lang\.wav\s+CER\*\s+0\.0%\s+0\.0%\s+-$/.test(l)));
  assert.ok(lines.some((l) => /^WER total\s+/.test(l)));
  assert.ok(lines.includes('only before: gone.wav'));
  assert.ok(lines.includes('only after: new.wav'));
});
