// Streams against the real binary in a process of its own: SIGTERM while someone is speaking must
// give each open stream the final of the audio it has, then its end event, then close 1001, and
// the process exits 0; a frame over the cap must reach a client in another process as close 1009
// (the socket used to be reset before the close frame got out: 1006).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clip, SR } from '../streaming/support.ts';
import { serveChild } from './child-server.ts';
import { metricValue, modelDir } from './helpers.ts';
import { connect, pace, s16le, wsUrl, type Client } from './stream-client.ts';

const append = (c: Client, x: Float32Array): void => c.ws.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: s16le(x).toString('base64') }));

test('SIGTERM mid-utterance: /v1/stream gets its final, done, close 1001; /v1/realtime its completed, close 1001; exit 0', { timeout: 90_000 }, async () => {
  const server = await serveChild(['--model', modelDir('english'), '--threads', '1', '--sample-len', '8', '--stream-partial-interval', '300', '--shutdown-timeout', '30']);
  try {
    // Three seconds into continuous speech: the utterance is still open when the audio stops.
    const speech = (await clip('librispeech_1995-1837-0001')).subarray(0, 3 * SR);
    const native = await connect(wsUrl(server.url, '/v1/stream'));
    native.ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 }));
    await native.next('ready');
    const realtime = await connect(wsUrl(server.url, '/v1/realtime?intent=transcription'));
    realtime.ws.send(JSON.stringify({ type: 'transcription_session.update', session: { input_audio_format: 'pcm16_16khz' } }));
    await realtime.next('transcription_session.updated');
    await Promise.all([pace(speech, SR, 2, (x) => native.ws.send(s16le(x))), pace(speech, SR, 2, (x) => append(realtime, x))]);
    // Each stream handles its messages in order: the answer to an unknown one says all the audio before it is in.
    native.ws.send(JSON.stringify({ type: 'sync' }));
    realtime.ws.send(JSON.stringify({ type: 'sync', event_id: 'sync' }));
    await native.next('error', 30_000);
    await realtime.next('error', 30_000);
    const nativeBefore = native.received.length;
    const realtimeBefore = realtime.received.length;

    server.child.kill('SIGTERM');
    const [nativeClose, realtimeClose] = await Promise.all([native.closed, realtime.closed]);

    assert.equal(nativeClose.code, 1001, `native stream closed ${nativeClose.code}`);
    assert.equal(nativeClose.reason, 'server shutting down');
    const after = native.received.slice(nativeBefore).map((r) => r.msg);
    const final = after.find((m) => m.type === 'final');
    assert.ok(final, `no final after SIGTERM; got ${after.map((m) => m.type).join(', ')}`);
    assert.ok(final.end >= 2.9 && final.end <= 3.01, `the final covers the audio up to its end (${final.end})`);
    assert.equal(after.at(-1)!.type, 'done', 'done is the last message');
    assert.ok(after.indexOf(final) < after.length - 1);

    assert.equal(realtimeClose.code, 1001, `realtime stream closed ${realtimeClose.code}`);
    const rtAfter = realtime.received.slice(realtimeBefore).map((r) => r.msg.type);
    assert.ok(rtAfter.includes('conversation.item.input_audio_transcription.completed'), `no completed after SIGTERM; got ${rtAfter.join(', ')}`);
    assert.ok(rtAfter.indexOf('input_audio_buffer.committed') < rtAfter.indexOf('conversation.item.input_audio_transcription.completed'));

    assert.equal(await server.exited, 0, server.stderr());
  } finally {
    await server.stop();
  }
});

test('a 5 MiB frame (over 4x the 1 MiB message cap) closes the stream with 1009 for a client in another process, on both endpoints', { timeout: 60_000 }, async () => {
  const server = await serveChild(['--model', modelDir('english'), '--threads', '1']);
  try {
    for (const path of ['/v1/stream', '/v1/realtime?intent=transcription']) {
      for (let i = 0; i < 3; i++) {
        const c = await connect(wsUrl(server.url, path));
        c.ws.on('error', () => {}); // a reset shows as an error before the 1006 close
        c.ws.send(Buffer.alloc(5 * 1024 * 1024));
        assert.equal((await c.closed).code, 1009, `${path}, try ${i + 1}`);
      }
    }
    const m = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(metricValue(m, 'earshot_stream_closes_total', { reason: 'message_too_big' }), 6);
    // The server is still fine.
    assert.equal((await fetch(`${server.url}/ready`)).status, 200);
  } finally {
    await server.stop();
  }
});
