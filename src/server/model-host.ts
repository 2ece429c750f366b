// The server's default model: loaded in the background after the server starts listening (so
// /health answers at once and /ready says when transcription can start), and the lookup of the
// `model` a request names. `whisper-1` (what OpenAI clients send) and the served id both mean the
// loaded model.
import { basename } from 'node:path';
import { loadWhisper, type Whisper } from '../decoding/whisper.ts';
import { WorkQueue } from '../engine/work-queue.ts';
import { EarshotError } from '../errors.ts';
import { log } from '../log.ts';
import { parseModelRef } from '../models/index.ts';
import type { ServerConfig } from './config.ts';

export const OPENAI_MODEL_ALIAS = 'whisper-1';

/** Queues whose bound a server has already set. */
const boundQueues = new WeakSet<WorkQueue>();

export type HostState = 'loading' | 'ready' | 'failed';

export type ModelHostConfig = Pick<ServerConfig, 'model' | 'modelId' | 'dtype' | 'device' | 'threads' | 'queueSize'>;

/** The id clients see: the given modelId, else the catalogue name / repository id, else the folder's name. */
export function servedModelId(config: Pick<ServerConfig, 'model' | 'modelId'>): string {
  if (config.modelId) return config.modelId;
  try {
    const ref = parseModelRef(config.model);
    return ref.kind === 'hub' ? ref.label : basename(ref.dir);
  } catch {
    return config.model;
  }
}

export class ModelHost {
  readonly id: string;
  state: HostState = 'loading';
  whisper: Whisper | undefined;
  error: unknown;
  /** Unix seconds when the model finished loading. */
  loadedAt = 0;
  private loading: Promise<Whisper> | undefined;
  private readonly listeners = new Set<(w: Whisper) => void>();

  constructor(private readonly config: ModelHostConfig) {
    this.id = servedModelId(config);
  }

  /** Called once the model is loaded (at once if it already is). */
  onLoaded(listener: (w: Whisper) => void): void {
    if (this.whisper) listener(this.whisper);
    else this.listeners.add(listener);
  }

  /** Loads the model (once); rejects if it cannot be loaded. */
  load(): Promise<Whisper> {
    this.loading ??= (async () => {
      try {
        const w = await loadWhisper(this.config.model, {
          ...(this.config.dtype !== undefined ? { dtype: this.config.dtype } : {}),
          engine: { device: this.config.device, intraOpThreads: this.config.threads },
        });
        this.boundQueue(w);
        this.whisper = w;
        this.state = 'ready';
        this.loadedAt = Math.floor(Date.now() / 1000);
        for (const l of this.listeners) l(w);
        this.listeners.clear();
        return w;
      } catch (e) {
        this.state = 'failed';
        this.error = e;
        throw e;
      }
    })();
    return this.loading;
  }

  /**
   * Gives the model's one queue the configured bound before any request uses it. loadWhisper
   * shares one instance per model in the process, so only the first server to load it sets the
   * bound, and only while the queue is idle: a queue in use is never split in two.
   */
  private boundQueue(w: Whisper): void {
    if (boundQueues.has(w.queue)) {
      if (w.queue.maxWaiting !== this.config.queueSize) {
        log.warn({ queueSize: w.queue.maxWaiting, asked: this.config.queueSize }, 'model already shared with its own queue bound; keeping it');
      }
      return;
    }
    const s = w.queue.stats();
    if (w.queue.maxWaiting !== this.config.queueSize && s.running === 0 && s.waiting === 0) {
      w.queue = new WorkQueue({ maxWaiting: this.config.queueSize, concurrency: w.queue.concurrency });
    }
    boundQueues.add(w.queue);
  }

  /** The loaded model, or `not_ready` while it loads. */
  ready(): Whisper {
    if (this.whisper) return this.whisper;
    if (this.state === 'failed') {
      throw new EarshotError('not_ready', 'model_failed', `model "${this.id}" failed to load: ${(this.error as Error)?.message ?? this.error}`);
    }
    throw new EarshotError('not_ready', 'model_loading', `model "${this.id}" is still loading; retry shortly`);
  }

  /** Whether a request's `model` field names the served model. */
  serves(name: string): boolean {
    const n = name.trim();
    return n === OPENAI_MODEL_ALIAS || n === this.id || n === this.config.model;
  }

  /** The model a request asked for (default: the served one); 404 for any other name. */
  forRequest(name: string | undefined): Whisper {
    if (name !== undefined && name.trim() !== '' && !this.serves(name)) {
      throw new EarshotError(
        'model_not_found',
        'model_not_found',
        `the model "${name}" does not exist on this server: it serves "${this.id}" (also reachable as "${OPENAI_MODEL_ALIAS}")`,
      );
    }
    return this.ready();
  }
}
