// POST /v1/audio/transcriptions and /v1/audio/translations, as OpenAI's audio API: a multipart
// upload in, the transcript out in the asked response_format (rendered by src/output/formats.ts,
// the CLI's renderer), or with stream=true as server-sent events, one `transcript.text.delta` per
// segment as soon as it is decoded, then `transcript.text.done`.
//
// The decode itself runs inside the model's WorkQueue with the request's abort signal: a client
// that hangs up (or a request past its timeout) leaves the queue at once if it was still waiting,
// and stops between windows if it was running, so no work runs for nobody.
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeAudio, type DecodedAudio } from '../../audio/index.ts';
import type { Segment, Transcription } from '../../decoding/transcription.ts';
import { encodePrompt } from '../../decoding/sot.ts';
import { transcribeWithVad, type VadTranscribeOptions } from '../../decoding/vad-filter.ts';
import { requestPriority } from '../../engine/priority.ts';
import type { Whisper } from '../../runtime/loaded-model.ts';
import { EarshotError } from '../../errors.ts';
import { parseAudioParams, type AudioParams } from '../audio-params.ts';
import type { ServerContext } from '../context.ts';
import { toHttpError } from '../http-errors.ts';
import { assertTaskSupported, CONTENT_TYPES, transcriptBody } from '../transcript-response.ts';
import { receiveUpload } from '../upload.ts';

type Task = 'transcribe' | 'translate';

/** Whisper's encoder reads 50 positions per second of audio: the "audio tokens" of a request. */
const AUDIO_TOKENS_PER_SECOND = 50;

/** Aborts when the client goes away before the response is complete, or when the request times out. */
function requestSignal(reply: FastifyReply, timeoutS: number): AbortSignal {
  const gone = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) gone.abort(new EarshotError('internal', 'client_closed', 'the client closed the connection'));
  });
  return AbortSignal.any([gone.signal, AbortSignal.timeout(timeoutS * 1000)]);
}

const sse = (event: object): string => `data: ${JSON.stringify(event)}\n\n`;

export function audioRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { config, host, metrics } = ctx;

  function record(task: Task, duration: number, started: number, segments: readonly Segment[]): number {
    const tokens = segments.reduce((n, s) => n + s.tokens.length, 0);
    metrics.audioSeconds.inc({ task }, duration);
    metrics.tokens.inc(tokens);
    if (duration > 0) metrics.realTimeFactor.observe((performance.now() - started) / 1000 / duration);
    return tokens;
  }

  async function handle(task: Task, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    host.assertAvailable(); // 503 while no model can serve, before reading an upload we could not use
    host.assertCapacity(); // 429 before reading an upload the queue could not take
    const signal = requestSignal(reply, config.requestTimeoutS);
    const upload = await receiveUpload(request, { maxFileBytes: config.maxUploadBytes }, ctx.uploads, () => metrics.uploadsSpooled.inc());
    try {
      const params = parseAudioParams(upload.fields, task);
      // Counted, so that a hot swap or an idle unload never releases the model under this request.
      const lease = await host.lease(params.model);
      try {
        assertTaskSupported(lease.whisper, task, lease.id);
        const audio = await decodeAudio(upload.file.source, { maxDurationS: config.maxAudioSeconds, signal, ...(params.raw ? { raw: params.raw } : {}) });
        // The raw bytes (or the spool file) are not needed past the decode: give them back now,
        // not when the transcription ends.
        await upload.file.release();
        return await transcribe(task, lease.whisper, lease.id, params, audio, signal, request, reply);
      } finally {
        lease.release();
      }
    } finally {
      await upload.file.release();
    }
  }

  async function transcribe(
    task: Task,
    w: Whisper,
    modelId: string,
    params: AudioParams,
    audio: DecodedAudio,
    signal: AbortSignal,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const options: VadTranscribeOptions = {
      task,
      vadFilter: params.vadFilter ?? config.vadFilter,
      signal,
      sampleLen: config.sampleLen,
      ...(params.language !== undefined ? { language: params.language } : {}),
      ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
      ...(params.prompt !== undefined ? { initialPrompt: params.prompt } : {}),
      ...(params.wordTimestamps ? { wordTimestamps: true } : {}),
    };
    request.log.info(
      { task, model: modelId, audioSeconds: audio.durationS, format: audio.format, responseFormat: params.responseFormat, stream: params.stream },
      'transcription request',
    );
    if (params.stream) return stream(task, w, audio.samples, options, params, signal, request, reply);

    const t = await w.queue.run(
      async (runner) => {
        const started = performance.now();
        const run = await transcribeWithVad({ ...w, runner }, audio.samples, options);
        const segments: Segment[] = [];
        for await (const s of run.segments) {
          signal.throwIfAborted();
          segments.push(s);
        }
        record(task, run.duration, started, segments);
        const { language, languageProbability, duration } = run;
        return { language, languageProbability, duration, task, text: segments.map((s) => s.text).join(''), segments } satisfies Transcription;
      },
      { signal, priority: requestPriority(audio.samples.length) },
    );
    if (config.logContent) request.log.info({ text: t.text }, 'transcript');
    return reply.type(CONTENT_TYPES[params.responseFormat]).send(transcriptBody(t, params.responseFormat, { topLevelWords: params.wordTimestamps }));
  }

  async function stream(
    task: Task,
    w: Whisper,
    samples: Float32Array,
    options: VadTranscribeOptions,
    params: AudioParams,
    signal: AbortSignal,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    await w.queue.run(
      async (runner) => {
        const started = performance.now();
        // Errors up to here (bad language, …) are still ordinary HTTP errors; after the headers go
        // out, an error can only be an event in the stream.
        const run = await transcribeWithVad({ ...w, runner }, samples, options);
        const out = new PassThrough();
        void reply.type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache').send(out);
        const segments: Segment[] = [];
        try {
          for await (const s of run.segments) {
            signal.throwIfAborted();
            segments.push(s);
            if (s.text !== '') out.write(sse({ type: 'transcript.text.delta', delta: s.text }));
          }
          const outputTokens = record(task, run.duration, started, segments);
          const text = segments.map((s) => s.text).join('').trim();
          if (config.logContent) request.log.info({ text }, 'transcript');
          const audioTokens = Math.ceil(run.duration * AUDIO_TOKENS_PER_SECOND);
          const textTokens = params.prompt ? encodePrompt(w.tokenizer, params.prompt).length : 0;
          out.write(
            sse({
              type: 'transcript.text.done',
              text,
              usage: {
                type: 'tokens',
                input_tokens: audioTokens + textTokens,
                input_token_details: { audio_tokens: audioTokens, text_tokens: textTokens },
                output_tokens: outputTokens,
                total_tokens: audioTokens + textTokens + outputTokens,
              },
            }),
          );
        } catch (e) {
          if (!signal.aborted || signal.reason instanceof Error && signal.reason.name === 'TimeoutError') {
            const h = toHttpError(e);
            request.log[h.serverFault ? 'error' : 'info']({ err: e }, 'transcription stream failed');
            out.write(sse(h.body));
          }
        } finally {
          out.end();
        }
      },
      { signal, priority: requestPriority(samples.length) },
    );
    return reply;
  }

  app.post('/v1/audio/transcriptions', (request, reply) => handle('transcribe', request, reply));
  app.post('/v1/audio/translations', (request, reply) => handle('translate', request, reply));
}
