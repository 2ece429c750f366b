// POST /v1/audio/transcriptions and /v1/audio/translations, as OpenAI's audio API: a multipart
// upload in, the transcript out in the asked response_format (rendered by src/output/formats.ts,
// the CLI's renderer), or with stream=true as server-sent events, one `transcript.text.delta` per
// segment as soon as it is decoded, then `transcript.text.done`.
//
// The decode runs behind ctx.transcriber (runtime/transcriber.ts): in this process, or on a worker
// through Redis on a node without a model; this route does not know which. It gets the request's
// abort signal: a client that hangs up (or a request past its timeout) leaves the queue at once if
// it was still waiting, and stops between windows if it was running, so no work runs for nobody.
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeAudio, type DecodedAudio } from '../../audio/index.ts';
import type { Segment } from '../../decoding/transcription.ts';
import type { RequestOptions, RunResult, TranscriptionTarget } from '../../runtime/transcriber.ts';
import { EarshotError } from '../../errors.ts';
import { parseAudioParams, type AudioParams } from '../audio-params.ts';
import type { ServerContext } from '../context.ts';
import { toHttpError } from '../http-errors.ts';
import { CONTENT_TYPES, transcriptBody } from '../transcript-response.ts';
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
  const { config, metrics, transcriber } = ctx;

  function record(task: Task, r: RunResult): number {
    const { duration, segments } = r.transcription;
    const tokens = segments.reduce((n, s) => n + s.tokens.length, 0);
    metrics.audioSeconds.inc({ task }, duration);
    metrics.tokens.inc(tokens);
    if (duration > 0) metrics.realTimeFactor.observe(r.processingS / duration);
    return tokens;
  }

  async function handle(task: Task, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    await transcriber.admit(); // 503 / 429 before reading an upload we could not use
    const signal = requestSignal(reply, config.requestTimeoutS);
    const upload = await receiveUpload(request, { maxFileBytes: config.maxUploadBytes }, ctx.uploads, () => metrics.uploadsSpooled.inc());
    try {
      const params = parseAudioParams(upload.fields, task);
      // A local lease is counted, so that a hot swap or an idle unload never releases the model under this request.
      const target = await transcriber.open(params.model, task);
      try {
        const audio = await decodeAudio(upload.file.source, { maxDurationS: config.maxAudioSeconds, signal, ...(params.raw ? { raw: params.raw } : {}) });
        // The raw bytes (or the spool file) are not needed past the decode: give them back now,
        // not when the transcription ends.
        await upload.file.release();
        return await transcribe(task, target, params, audio, signal, request, reply);
      } finally {
        target.release();
      }
    } finally {
      await upload.file.release();
    }
  }

  async function transcribe(
    task: Task,
    target: TranscriptionTarget,
    params: AudioParams,
    audio: DecodedAudio,
    signal: AbortSignal,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const options: RequestOptions = {
      task,
      vadFilter: params.vadFilter ?? config.vadFilter,
      sampleLen: config.sampleLen,
      ...(params.language !== undefined ? { language: params.language } : {}),
      ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
      ...(params.prompt !== undefined ? { initialPrompt: params.prompt } : {}),
      ...(params.wordTimestamps ? { wordTimestamps: true } : {}),
    };
    request.log.info(
      { task, model: target.id, audioSeconds: audio.durationS, format: audio.format, responseFormat: params.responseFormat, stream: params.stream },
      'transcription request',
    );
    if (params.stream) return stream(task, target, audio.samples, options, signal, request, reply);

    const r = await target.run(audio.samples, options, { signal });
    record(task, r);
    const t = r.transcription;
    if (config.logContent) request.log.info({ text: t.text }, 'transcript');
    return reply.type(CONTENT_TYPES[params.responseFormat]).send(transcriptBody(t, params.responseFormat, { topLevelWords: params.wordTimestamps }));
  }

  async function stream(
    task: Task,
    target: TranscriptionTarget,
    samples: Float32Array,
    options: RequestOptions,
    signal: AbortSignal,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    // Errors up to the decode's start (bad language, …) are still ordinary HTTP errors; after the
    // headers go out, an error can only be an event in the stream.
    let out: PassThrough | undefined;
    const open = (): PassThrough => {
      out = new PassThrough();
      void reply.type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache').send(out);
      return out;
    };
    try {
      const r = await target.run(samples, options, {
        signal,
        onStart: open,
        onSegment: (s: Segment) => {
          if (s.text !== '') out?.write(sse({ type: 'transcript.text.delta', delta: s.text }));
        },
      });
      const outputTokens = record(task, r);
      const text = r.transcription.segments.map((s) => s.text).join('').trim();
      if (config.logContent) request.log.info({ text }, 'transcript');
      const audioTokens = Math.ceil(r.transcription.duration * AUDIO_TOKENS_PER_SECOND);
      const textTokens = r.promptTokens;
      (out ?? open()).write(
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
      if (!out) throw e;
      if (!signal.aborted || signal.reason instanceof Error && signal.reason.name === 'TimeoutError') {
        const h = toHttpError(e);
        request.log[h.serverFault ? 'error' : 'info']({ err: e }, 'transcription stream failed');
        out.write(sse(h.body));
      }
    } finally {
      out?.end();
    }
    return reply;
  }

  app.post('/v1/audio/transcriptions', (request, reply) => handle('transcribe', request, reply));
  app.post('/v1/audio/translations', (request, reply) => handle('translate', request, reply));
}
