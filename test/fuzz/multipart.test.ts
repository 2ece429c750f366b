// Fuzzing the upload path of /v1/audio/transcriptions through app.inject (the whole app: hooks,
// multipart parsing, field validation, audio decoding, the model): random bodies, and valid
// OpenAI-style multipart bodies (a small WAV or junk as the file, real and odd field values)
// damaged by the shared mutator, under a few content types. Every answer must be 200 or a 4xx
// with OpenAI's error body, never a 500, and come back within the per-input time bound.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildApp, type BuiltApp } from '../../src/server/app.ts';
import { loadServerConfig } from '../../src/server/config.ts';
import { isolateHome, jfkClip, modelDir } from '../server/helpers.ts';
import { fuzzParams, mutated } from './support.ts';

const PER_INPUT_MS = 5000;
const BOUNDARY = '----earshotfuzzboundary';

let built: BuiltApp;
before(async () => {
  isolateHome();
  const config = loadServerConfig({ env: {}, flags: { model: modelDir('english'), threads: 1, sampleLen: 2, maxUploadBytes: 64 * 1024 } });
  built = await buildApp(config);
  await built.ctx.host.load();
});
after(async () => built.app.close());

function multipart(parts: Array<{ name: string; value: Uint8Array | string; filename?: string }>): Uint8Array {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    const type = p.filename !== undefined ? '\r\nContent-Type: audio/wav' : '';
    chunks.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}${type}\r\n\r\n`), Buffer.from(p.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

const fieldValue = fc.oneof(
  fc.constantFrom('whisper-1', 'json', 'text', 'srt', 'verbose_json', 'vtt', 'en', 'auto', '0', '0.4', '1', 'true', 'false', 'segment', 'word', '', '../../etc', '/abs', '..%2F'),
  fc.string({ maxLength: 40 }),
);
const fieldName = fc.oneof(
  fc.constantFrom('model', 'response_format', 'language', 'temperature', 'prompt', 'stream', 'timestamp_granularities[]', 'vad_filter', '__proto__', 'constructor', 'file'),
  fc.string({ maxLength: 12 }),
);
const wav = jfkClip(0.2);
const fileBytes = fc.oneof(fc.constant(wav), fc.uint8Array({ maxLength: 200 }), mutated(wav, 3));

const validBody = fc
  .record({
    fields: fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 5 }),
    file: fileBytes,
    filename: fc.oneof(fc.constantFrom('clip.wav', '../../etc/passwd', '/etc/passwd', '..\\..\\x.wav', ''), fc.string({ maxLength: 20 })),
    fileFirst: fc.boolean(),
  })
  .map(({ fields, file, filename, fileFirst }) => {
    const f = [{ name: 'file', value: file, filename: filename.replace(/["\r\n]/g, '') }];
    const rest = fields.map(([name, value]) => ({ name: name.replace(/["\r\n]/g, ''), value }));
    return multipart(fileFirst ? [...f, ...rest] : [...rest, ...f]);
  });

const body = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 2, arbitrary: validBody },
  { weight: 5, arbitrary: validBody.chain((b) => mutated(b, 4)) },
);
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant(`multipart/form-data; boundary=${BOUNDARY}`) },
  { weight: 1, arbitrary: fc.constantFrom('multipart/form-data', 'multipart/form-data; boundary=', 'application/json', 'text/plain', 'application/octet-stream', `multipart/form-data; boundary="${BOUNDARY}"`, 'multipart/mixed; boundary=x') },
);

test('uploads: every random or damaged multipart body gets 200 or a 4xx with an OpenAI error, never a 500', { timeout: 240_000 }, async () => {
  const seen = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(body, contentType, fc.constantFrom('/v1/audio/transcriptions', '/v1/audio/translations'), async (payload, type, url) => {
      const t0 = performance.now();
      const res = await built.app.inject({ method: 'POST', url, payload: Buffer.from(payload), headers: { 'content-type': type } });
      const ms = performance.now() - t0;
      seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
      assert.ok(ms < PER_INPUT_MS, `took ${ms.toFixed(0)} ms`);
      assert.ok(res.statusCode === 200 || (res.statusCode >= 400 && res.statusCode < 500), `status ${res.statusCode}: ${res.body.slice(0, 300)}`);
      if (res.statusCode !== 200) {
        const e = (JSON.parse(res.body) as { error: { message: unknown; type: unknown; code: unknown } }).error;
        assert.equal(typeof e.message, 'string');
        assert.equal(e.type, 'invalid_request_error', res.body);
        assert.equal(typeof e.code, 'string');
      }
    }),
    // Half the count of the in-process targets: each input is a whole request (~7 ms), so 10^4 would pass a minute here.
    fuzzParams(0.5),
  );
  if (process.env.EARSHOT_FUZZ_DEBUG) console.log(JSON.stringify([...seen]));
  // The generator must reach both sides: bodies that transcribe and bodies that are refused.
  assert.ok((seen.get(200) ?? 0) > 0, `statuses ${JSON.stringify([...seen])}`);
  assert.ok((seen.get(400) ?? 0) > 0, `statuses ${JSON.stringify([...seen])}`);
  const q = built.ctx.host.ready().queue.stats();
  assert.equal(q.running + q.waiting, 0);
});
