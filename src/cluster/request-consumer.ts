// The worker's side of synchronous requests: one BullMQ consumer per served model on its
// `requests-<model id>` queue (requests.ts has the protocol). Each request is decoded by
// runtime/transcriber.ts's runOnWhisper, the code a one-process server runs, through the model's
// work queue at a request's priority, so on a worker that also runs jobs, requests go first
// (engine/priority.ts). The answer goes to the request's API node on its reply channel.
//
// A request stops decoding when its client leaves: the API node broadcasts a cancellation, or its
// reply channel has no listener any more (the API node itself is gone): a publish that reaches
// nobody, or the channel's subscriber count, read every LISTENER_CHECK_MS while it decodes (a plain
// request publishes nothing between its start and its answer). Its BullMQ job then fails and is
// removed, and no answer is sent.
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { EarshotError } from '../errors.ts';
import { log as rootLog } from '../log.ts';
import type { Whisper } from '../runtime/loaded-model.ts';
import { runOnWhisper } from '../runtime/transcriber.ts';
import { connectRedis, KEY_PREFIX, redisOptions, subscribeTo } from './redis.ts';
import { deleteUpload, readUpload } from './uploads.ts';
import { bytesToSamples, CANCEL_CHANNEL, errorReply, replyChannel, requestQueueName, type Reply, type RequestData } from './requests.ts';

export type RequestOutcome = 'completed' | 'failed' | 'cancelled';

export interface RequestConsumerOptions {
  redisUrl: string;
  /** The models this worker serves, by the id requests name them. */
  models: ReadonlyArray<{ id: string; whisper: Whisper }>;
  /** Requests taken at once per model (default: as many as the model's work queue runs at once). */
  concurrency?: number;
  /** Called when a request ends here, with its model, outcome and seconds of audio. */
  onFinished?: (model: string, outcome: RequestOutcome, audioSeconds: number) => void;
  /** Called with the number of requests being decoded whenever it changes. */
  onRunning?: (running: number) => void;
}

const log = rootLog.child({ component: 'requests' });

/**
 * A request's lock, and how often a worker looks for requests whose lock lapsed (ms): a client is
 * waiting, so a dead worker's request moves to another worker within about 2 × this, not BullMQ's
 * 30 s + 30 s default that durable jobs keep (`--lock-duration`). The lock is renewed every half of
 * it by the worker's event loop, which the model's thread never blocks.
 */
export const REQUEST_LOCK_MS = 5000;

/** How often a running request checks that its API node still listens (ms). */
export const LISTENER_CHECK_MS = 1000;
const CANCELLED = (): EarshotError => new EarshotError('internal', 'client_closed', 'the client closed the connection');

export class RequestConsumer {
  private readonly workers: Worker<RequestData, void>[] = [];
  private running = 0;

  private constructor(
    private readonly opts: RequestConsumerOptions,
    private readonly redis: Redis,
    private readonly cancels: Redis,
  ) {}

  static async start(opts: RequestConsumerOptions): Promise<RequestConsumer> {
    const redis = connectRedis(opts.redisUrl, 'earshot-worker-requests');
    // Subscribed before taking any request, so no cancellation of one it runs can be missed.
    let c: RequestConsumer | undefined;
    const cancels = await subscribeTo(opts.redisUrl, 'earshot-worker-cancels', CANCEL_CHANNEL, (id) => {
      for (const w of c?.workers ?? []) w.cancelJob(id, 'client_closed');
    });
    c = new RequestConsumer(opts, redis, cancels);
    for (const { id, whisper } of opts.models) {
      const worker = new Worker<RequestData, void>(
        requestQueueName(id),
        // Three parameters: BullMQ hands the signal only to a processor that declares it.
        (job: Job<RequestData, void>, _token: string | undefined, signal: AbortSignal | undefined) => c.process(id, whisper, job, signal),
        {
          connection: redisOptions(opts.redisUrl),
          prefix: KEY_PREFIX,
          concurrency: opts.concurrency ?? whisper.queue.concurrency,
          lockDuration: REQUEST_LOCK_MS,
          stalledInterval: REQUEST_LOCK_MS,
        },
      );
      worker.on('error', (e) => log.warn({ err: e, model: id }, 'request consumer error'));
      c.workers.push(worker);
    }
    await Promise.all(c.workers.map((w) => w.waitUntilReady()));
    return c;
  }

  /** Total requests taken at once, all models together (what the heartbeat announces). */
  get concurrency(): number {
    return this.workers.reduce((n, w) => n + w.concurrency, 0);
  }

  private setRunning(delta: number): void {
    this.running += delta;
    this.opts.onRunning?.(this.running);
  }

  private async process(model: string, whisper: Whisper, job: Job<RequestData, void>, jobSignal: AbortSignal | undefined): Promise<void> {
    const id = job.id!;
    const gone = new AbortController();
    const signal = jobSignal ? AbortSignal.any([jobSignal, gone.signal]) : gone.signal;
    const channel = replyChannel(id);
    // Published in order on one connection; a publish that reaches no subscriber means the API
    // node no longer waits: stop.
    const send = (r: Reply): Promise<void> =>
      this.redis.publish(channel, JSON.stringify(r)).then((receivers) => {
        if (receivers === 0) gone.abort(CANCELLED());
      });
    // The API node deletes the audio when its client leaves: a request found without it was cancelled.
    let samples: Float32Array;
    try {
      samples = bytesToSamples(await readUpload(this.redis, id));
    } catch (e) {
      if (!(e instanceof EarshotError && e.code === 'upload_missing')) throw e;
      this.opts.onFinished?.(model, 'cancelled', 0);
      throw CANCELLED();
    }
    const audioSeconds = samples.length / 16000;
    this.setRunning(1);
    const watch = setInterval(() => {
      void this.redis.pubsub('NUMSUB', channel).then(
        (r) => {
          if (Number((r as [string, number])[1]) === 0) gone.abort(CANCELLED());
        },
        () => {}, // Redis away: the lock, not this check, decides then
      );
    }, LISTENER_CHECK_MS);
    try {
      const result = await runOnWhisper(whisper, samples, job.data.options, {
        signal,
        onStart: () => void send({ type: 'start' }).catch(() => {}),
        ...(job.data.stream ? { onSegment: (segment) => void send({ type: 'segment', segment }).catch(() => {}) } : {}),
      });
      await send({ type: 'done', result });
      this.opts.onFinished?.(model, 'completed', audioSeconds);
    } catch (e) {
      if (signal.aborted) {
        this.opts.onFinished?.(model, 'cancelled', audioSeconds);
        log.info({ request: id, model }, 'request cancelled: its client left');
        throw CANCELLED();
      }
      this.opts.onFinished?.(model, 'failed', audioSeconds);
      await send(errorReply(e)).catch(() => {});
      throw e;
    } finally {
      clearInterval(watch);
      this.setRunning(-1);
      await deleteUpload(this.redis, id).catch(() => {});
    }
  }

  /** Stops taking requests and waits for those running to finish (SIGTERM). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    this.cancels.disconnect();
    this.redis.disconnect();
  }
}
