// Durable async transcription jobs: POST /v1/jobs takes the same multipart form as
// /v1/audio/transcriptions (parsed and validated by the same code), stores the upload and answers
// 202 with the job at once; GET /v1/jobs/{id} gives its status, progress and, once completed, the
// result in any response_format; GET /v1/jobs lists the caller's jobs; DELETE /v1/jobs/{id}
// cancels and deletes one. Jobs belong to the API key that created them: another key gets 404.
// The work itself is a JobQueue (src/jobs/queue.ts) the app builds once (app.ts's jobServiceFor)
// and opens when the server starts: the SQLite queue of src/jobs/ (a data directory in use or not
// writable stops the server there) or, with --redis, the cluster's (src/cluster/redis-jobs.ts).
// These routes do not know which.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { languageName } from '../../decoding/languages.ts';
import type { Transcription } from '../../decoding/transcription.ts';
import { EarshotError, isEarshotError } from '../../errors.ts';
import type { Pause } from '../../jobs/runner.ts';
import type { Job, JobRequest, JobStatus } from '../../jobs/types.ts';
import { RESPONSE_FORMATS } from '../../output/formats.ts';
import { parseAudioParams } from '../audio-params.ts';
import type { ServerContext } from '../context.ts';
import { paramError } from '../http-errors.ts';
import { assertTaskSupported } from '../../runtime/transcriber.ts';
import { CONTENT_TYPES, transcriptBody } from '../transcript-response.ts';
import { type ReceivedUpload, receiveUpload } from '../upload.ts';

const MAX_PAGE = 100;

const taskField = z.enum(['transcribe', 'translate'], { error: 'expected transcribe or translate' });
const getQuery = z.object({ response_format: z.enum(RESPONSE_FORMATS, { error: `expected one of ${RESPONSE_FORMATS.join(', ')}` }).optional() });
const listQuery = z.object({
  limit: z.coerce.number({ error: `expected a whole number from 1 to ${MAX_PAGE}` }).int().min(1).max(MAX_PAGE).default(20),
  after: z.string().min(1).max(200).optional(),
});

function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.output<S> {
  const r = schema.safeParse(query ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const name = String(issue.path[0] ?? 'query');
    throw paramError('invalid_argument', 'invalid_value', name, `invalid ${name}: ${issue.message}`);
  }
  return r.data;
}

const seconds = (ms: number | null): number | null => (ms === null ? null : Math.floor(ms / 1000));
const pausedView = (p: Pause | undefined) => (p ? { code: p.code, message: p.message, since: seconds(p.since) } : null);

export function jobRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { config, host, keys, jobs } = ctx;
  const retentionMs = config.jobRetentionS * 1000;

  const owner = (request: FastifyRequest): string => keys.owner(request.headers.authorization);

  function view(job: Job, status: JobStatus = job.status): Record<string, unknown> {
    return {
      id: job.id,
      object: 'transcription.job',
      status,
      model: job.model,
      task: job.request.task,
      filename: job.filename,
      response_format: job.request.responseFormat,
      created_at: seconds(job.createdAt),
      started_at: seconds(job.startedAt),
      finished_at: seconds(job.finishedAt),
      expires_at: job.finishedAt === null ? null : seconds(job.finishedAt + retentionMs),
      progress: { done_seconds: job.doneSeconds, total_seconds: job.duration },
      // A name, as verbose_json gives it (the store keeps the code: a resumed run decodes with it).
      language: job.language === null ? null : (languageName(job.language) ?? job.language),
      error: job.error,
      // Set while a storage fault (a full disk, an I/O error) holds a running job.
      paused: pausedView(status === 'running' ? jobs.pauseOf(job.id) : undefined),
    };
  }

  async function transcription(job: Job): Promise<Transcription> {
    const segments = await jobs.segments(job);
    return {
      language: job.language ?? 'en',
      languageProbability: job.languageProbability ?? 0,
      duration: job.duration ?? 0,
      task: job.request.task,
      text: segments.map((s) => s.text).join(''),
      segments,
    };
  }

  app.post('/v1/jobs', async (request, reply) => {
    const upload = await receiveUpload(request, { maxFileBytes: config.maxUploadBytes }, ctx.uploads, () => ctx.metrics.uploadsSpooled.inc());
    try {
      return await submit(request, reply, upload);
    } finally {
      await upload.file.release();
    }
  });

  async function submit(request: FastifyRequest, reply: FastifyReply, upload: ReceivedUpload): Promise<FastifyReply> {
    const rawTask = upload.fields.get('task');
    let task: JobRequest['task'] = 'transcribe';
    if (rawTask) {
      const r = taskField.safeParse(rawTask.length === 1 ? rawTask[0]!.trim().toLowerCase() : '');
      if (!r.success) throw paramError('invalid_argument', 'invalid_value', 'task', 'invalid task: expected one "transcribe" or "translate"');
      task = r.data;
    }
    const params = parseAudioParams(upload.fields, task);
    if (params.stream) throw paramError('invalid_argument', 'unsupported_value', 'stream', 'a job is not streamed: poll GET /v1/jobs/{id} for its progress');
    const hosted = host.get(params.model); // 404 for a model this server does not host
    try {
      assertTaskSupported(hosted.now(), task, hosted.id);
    } catch (e) {
      // While the model loads, a job is still accepted: it waits in the store until the model is in.
      if (!(isEarshotError(e) && e.code === 'model_loading')) throw e;
    }
    if (upload.file.size === 0) throw paramError('invalid_argument', 'empty_file', 'file', 'the uploaded file is empty');
    const job = await jobs.submit({
      owner: owner(request),
      model: hosted.id,
      filename: upload.file.filename.slice(0, 255),
      audio: upload.file.source,
      request: {
        task,
        responseFormat: params.responseFormat,
        vadFilter: params.vadFilter ?? config.vadFilter,
        ...(params.language !== undefined ? { language: params.language } : {}),
        ...(params.prompt !== undefined ? { prompt: params.prompt } : {}),
        ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
        ...(params.raw ? { raw: params.raw } : {}),
      },
    });
    request.log.info({ jobId: job.id, task, bytes: upload.file.size }, 'job queued');
    return reply.code(202).send(view(job));
  }

  app.get('/v1/jobs', async (request) => {
    const q = parseQuery(listQuery, request.query);
    const page = await jobs.list(owner(request), q.after === undefined ? { limit: q.limit } : { limit: q.limit, after: q.after });
    const data = page.jobs.map((j) => view(j));
    return { object: 'list', data, first_id: page.jobs[0]?.id ?? null, last_id: page.jobs.at(-1)?.id ?? null, has_more: page.hasMore };
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (request, reply: FastifyReply) => {
    const q = parseQuery(getQuery, request.query);
    const job = await jobs.get(request.params.id, owner(request));
    if (q.response_format === undefined) {
      if (job.status !== 'completed') return view(job);
      const format = job.request.responseFormat;
      const body = transcriptBody(await transcription(job), format);
      return { ...view(job), result: format === 'json' || format === 'verbose_json' ? (JSON.parse(body) as unknown) : body };
    }
    if (job.status !== 'completed') {
      throw new EarshotError('conflict', 'job_not_completed', `job ${job.id} is ${job.status}: its result exists once it is completed`);
    }
    return reply.type(CONTENT_TYPES[q.response_format]).send(transcriptBody(await transcription(job), q.response_format));
  });

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (request) => {
    const job = await jobs.cancel(request.params.id, owner(request));
    const unfinished = job.status === 'queued' || job.status === 'running';
    request.log.info({ jobId: job.id, was: job.status }, unfinished ? 'job cancelled' : 'job deleted');
    return { ...view(job, unfinished ? 'cancelled' : job.status), deleted: true };
  });
}
