// The server's registry of hosted models: the default one (`--model`, also reachable by the names
// OpenAI clients send: `whisper-1` and the other aliases of model-aliases.ts) and any extra ones
// (`--extra-model`, or loaded later by an operator through the admin API), each a HostedModel
// (hosted-model.ts: versions, hot swap, idle unload). Everything loads in the background after the
// server starts listening, so /health answers at once and /ready says when the default model can
// serve. Requests, streams and jobs take a counted `lease()` of the model they name; `ready()` only
// checks that the default can serve.
// At most `maxLoadedModels` models are loaded, or loading, or idle-unloaded (those come back on
// their own at the next request); a load beyond that is a 409 `max_loaded_models`.
import type { Whisper } from '../runtime/loaded-model.ts';
import { EarshotError } from '../errors.ts';
import { log } from '../log.ts';
import { parseDtypeSpec, parseModelRef, servedModelId } from '../models/index.ts';
import type { ServerConfig } from './config.ts';
import { aliasTable, DEFAULT_MODEL_NAMES, isModelName } from './model-aliases.ts';
import { HostedModel, type HostedModelEnv, type ModelEvent, type ModelLease, type ModelSpec } from './hosted-model.ts';

export type { ModelEvent, ModelLease, ModelSpec } from './hosted-model.ts';
export { HostedModel } from './hosted-model.ts';

/** The default model's state as /ready reports it: `ready` also while it is idle-unloaded (the next request loads it). */
export type HostState = 'loading' | 'ready' | 'failed' | 'unloaded';

export type ModelRegistryConfig = Pick<ServerConfig, 'model' | 'modelId' | 'dtype' | 'device' | 'threads' | 'queueSize'> &
  Partial<Pick<ServerConfig, 'extraModels' | 'modelTtlS' | 'modelAliases'>> & { maxLoadedModels?: number };

export const DEFAULT_MAX_LOADED_MODELS = 4;


const badModelArg = (message: string): EarshotError => new EarshotError('invalid_argument', 'bad_extra_model', message);

/**
 * Reads an `--extra-model` value: `[id=]model[@dtype]`, e.g. `tiny`, `fast=./models/tiny@q8`. The
 * `@dtype` part is only taken as one when it is a valid dtype (so a folder named `x@v2` still works).
 */
export function parseExtraModel(value: string): { id: string; spec: ModelSpec } {
  let rest = value.trim();
  let dtype: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at > 0) {
    try {
      parseDtypeSpec(rest.slice(at + 1));
      dtype = rest.slice(at + 1).trim();
      rest = rest.slice(0, at);
    } catch {
      // not a dtype: part of the model's name
    }
  }
  let id: string | undefined;
  const eq = rest.indexOf('=');
  if (eq >= 0) {
    id = rest.slice(0, eq).trim();
    rest = rest.slice(eq + 1).trim();
    if (id === '') throw badModelArg(`extra model "${value}": empty id before "="`);
  }
  if (rest === '') throw badModelArg(`extra model "${value}": no model given`);
  return { id: id ?? servedModelId({ model: rest }), spec: { model: rest, ...(dtype !== undefined ? { dtype } : {}) } };
}

/** An id a new model may take: printable, no spaces, not a name that already means a model. */
function checkNewId(id: string, names: Iterable<string>): void {
  const taken = [...names];
  if (!isModelName(id) || taken.includes(id)) {
    throw new EarshotError('invalid_argument', 'bad_model_id', `"${id.slice(0, 64)}" cannot be a model id: use up to 200 printable characters without spaces, other than ${taken.map((n) => `"${n}"`).join(', ')}`);
  }
}

export class ModelRegistry {
  /** The default model's id. */
  readonly id: string;
  private readonly hosted = new Map<string, HostedModel>();
  /** Other names a request may use, each for a hosted model's id (model-aliases.ts). */
  private readonly aliases: Map<string, string>;
  private readonly main: HostedModel;
  private readonly env: HostedModelEnv;
  private readonly listeners = new Set<(e: ModelEvent) => void>();
  private readonly firstLoadListeners = new Set<(w: Whisper) => void>();
  private started: Promise<Whisper> | undefined;
  private startedAll: Promise<void> | undefined;
  /** Most models loaded at once (see `loadedCount`). */
  readonly maxLoaded: number;
  /** Ids whose load was admitted and has not settled yet (an unloaded id only turns `loading` once its turn comes). */
  private readonly admitted = new Map<string, number>();

  constructor(private readonly config: ModelRegistryConfig) {
    this.id = servedModelId(config);
    this.env = {
      engine: { device: config.device, intraOpThreads: config.threads },
      queueSize: config.queueSize,
      ttlS: config.modelTtlS ?? 0,
      emit: (e) => this.emit(e),
    };
    this.main = new HostedModel(this.id, { model: config.model, dtype: config.dtype }, this.env);
    this.hosted.set(this.id, this.main);
    for (const value of config.extraModels ?? []) {
      const { id, spec } = parseExtraModel(value);
      checkNewId(id, DEFAULT_MODEL_NAMES);
      if (this.hosted.has(id)) throw badModelArg(`two models with the id "${id}": name one with --extra-model <id>=<model>`);
      this.hosted.set(id, new HostedModel(id, spec, this.env));
    }
    this.aliases = aliasTable(this.id, config.modelAliases ?? [], new Set(this.hosted.keys()));
    this.maxLoaded = config.maxLoadedModels ?? DEFAULT_MAX_LOADED_MODELS;
    if (this.hosted.size > this.maxLoaded) {
      throw badModelArg(`${this.hosted.size} models are configured (--model and --extra-model) but at most ${this.maxLoaded} may be loaded (--max-loaded-models)`);
    }
  }

  // --- the default model, as before several models existed ---

  get state(): HostState {
    const s = this.main.state;
    return this.main.available || s === 'idle' ? 'ready' : s;
  }

  get whisper(): Whisper | undefined {
    return this.main.current?.whisper;
  }

  get error(): unknown {
    return this.main.error;
  }

  /** Called once the default model has first loaded (at once if it already has). */
  onLoaded(listener: (w: Whisper) => void): void {
    const w = this.main.current?.whisper;
    if (w) listener(w);
    else this.firstLoadListeners.add(listener);
  }

  /**
   * Starts loading every configured model (once); resolves with the default one, rejects if it
   * cannot be loaded. An extra model that fails is logged and reported as `failed`.
   */
  load(): Promise<Whisper> {
    if (!this.started) {
      this.started = this.main.load().then((v) => v.whisper);
      const extras = [...this.hosted.values()].filter((h) => h !== this.main).map((h) =>
        h.load().then(
          () => {},
          (e: unknown) => log.error({ err: e, model: h.id }, 'extra model failed to load'),
        ),
      );
      this.startedAll = Promise.all([this.started.catch(() => {}), ...extras]).then(() => {});
    }
    return this.started;
  }

  /** Settles when every configured model has loaded or failed (after `load()`). */
  async settled(): Promise<void> {
    this.load().catch(() => {});
    await this.startedAll;
  }

  /** The default model's serving version, uncounted (a check, or a look at it); `not_ready` (503) while it cannot serve. */
  ready(): Whisper {
    return this.main.now();
  }

  // --- several models ---

  /** The hosted model a request's `model` field names: empty = the default, an alias its model; undefined if none. */
  find(name: string | undefined): HostedModel | undefined {
    const n = name?.trim() ?? '';
    if (n === '') return this.main;
    const byId = this.byId(n);
    if (byId) return byId;
    for (const h of this.hosted.values()) if (h.spec.model === n) return h;
    return undefined;
  }

  /** The hosted model with this id or alias (`whisper-1`: the default), for the admin API. */
  byId(id: string): HostedModel | undefined {
    return this.hosted.get(this.aliases.get(id) ?? id);
  }

  /** Whether `name` is an alias (`whisper-1`, `--model-alias`), not a hosted model's own id. */
  isAlias(name: string): boolean {
    return this.aliases.has(name);
  }

  /** The aliases of a hosted model, in the table's order. */
  aliasesOf(h: HostedModel): string[] {
    return [...this.aliases].filter(([, id]) => id === h.id).map(([name]) => name);
  }

  /** As `find`, but 404 `model_not_found` for a name no hosted model has. */
  get(name: string | undefined): HostedModel {
    const h = this.find(name);
    if (h) return h;
    throw new EarshotError(
      'model_not_found',
      'model_not_found',
      `the model "${name?.slice(0, 100)}" does not exist on this server; the names that work: ${[
        ...[...this.hosted.keys()].map((id) => `"${id}"`),
        ...[...this.aliases].map(([alias, id]) => `"${alias}" (= "${id}")`),
      ].join(', ')}`,
    );
  }

  /** Whether a request's `model` field names a hosted model. */
  serves(name: string): boolean {
    return this.find(name) !== undefined;
  }

  /**
   * A counted use of the model a request names (404 unknown, 503 unloaded or still loading; an
   * idle-unloaded model is loaded again and waited for). Call `release()` when done: a swapped-out
   * or unloaded version is only released after its last lease.
   */
  lease(name?: string): Promise<ModelLease> {
    try {
      return this.get(name).lease();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** 503 when no hosted model can serve (checked before reading an upload); which one is asked comes later. */
  assertAvailable(): void {
    for (const h of this.hosted.values()) if (h.available) return;
    this.main.now();
  }

  /**
   * 429 at once when every loaded model's queue is full, so a refusal costs nothing: without it a
   * request would be read and decoded in full only to be refused when it reaches the queue.
   */
  assertCapacity(): void {
    const queues = this.models().flatMap((h) => (h.current ? [h.current.whisper.queue] : []));
    if (queues.length > 0 && queues.every((q) => q.full)) {
      throw new EarshotError('overloaded', 'queue_full', 'the work queue is full; retry later');
    }
  }

  /** Every hosted model, the default first. */
  models(): HostedModel[] {
    return [...this.hosted.values()];
  }

  isDefault(h: HostedModel): boolean {
    return h === this.main;
  }

  /**
   * Loads (or reloads, reading the files anew) the model under `id` (`whisper-1`: the default),
   * with `spec` or the id's current one; a new id without a spec loads the model the id names.
   * Requests keep using the version already serving until the new one is in; if the load fails,
   * that version stays and the error is thrown.
   */
  async loadModel(id: string, spec: Partial<ModelSpec> = {}): Promise<HostedModel> {
    const existing = this.byId(id);
    if (!existing) checkNewId(id, this.aliases.keys());
    const done = this.admit(existing?.id ?? id);
    try {
      if (existing) {
        await existing.load(spec, { fresh: true });
        return existing;
      }
      const h = new HostedModel(id, { ...spec, model: spec.model ?? id }, this.env);
      this.hosted.set(id, h);
      try {
        await h.load({}, { fresh: true });
      } catch (e) {
        if (!h.current && this.hosted.get(id) === h) this.hosted.delete(id);
        throw e;
      }
      return h;
    } finally {
      done();
    }
  }

  /** Models loaded, loading, admitted to load, or idle-unloaded (they come back on their own). */
  get loadedCount(): number {
    return this.counted().size;
  }

  private counted(): Set<string> {
    const ids = new Set(this.admitted.keys());
    for (const h of this.hosted.values()) if (h.current || h.state === 'loading' || h.state === 'idle') ids.add(h.id);
    return ids;
  }

  /**
   * Admits a load under `id`, or throws 409 `max_loaded_models` when it would make one model more
   * than the limit (a reload or swap of a model that counts already never does). Synchronous, so
   * concurrent loads cannot both take the last place. Returns the release.
   */
  private admit(id: string): () => void {
    const counted = this.counted();
    if (!counted.has(id) && counted.size >= this.maxLoaded) {
      throw new EarshotError(
        'conflict',
        'max_loaded_models',
        `the server already has ${this.maxLoaded} model(s) loaded, its limit (--max-loaded-models): unload one first (DELETE /v1/models/{id})`,
      );
    }
    this.admitted.set(id, (this.admitted.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.admitted.get(id) ?? 1) - 1;
      if (n > 0) this.admitted.set(id, n);
      else this.admitted.delete(id);
    };
  }

  /** Unloads the model under `id` (404 unknown): its requests get 503 until it is loaded again. */
  async unloadModel(id: string): Promise<HostedModel> {
    const h = this.byId(id);
    if (!h) throw new EarshotError('model_not_found', 'model_not_found', `no model "${id}" is hosted on this server`);
    await h.unload('admin');
    return h;
  }

  /** Loads, unloads and releases of every hosted model (metrics). Returns the unsubscribe. */
  onEvent(listener: (e: ModelEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops idle timers (the server is closing). */
  close(): void {
    for (const h of this.hosted.values()) h.close();
  }

  private emit(e: ModelEvent): void {
    if (e.type === 'loaded' && e.id === this.id && this.firstLoadListeners.size > 0) {
      for (const l of this.firstLoadListeners) l(e.whisper);
      this.firstLoadListeners.clear();
    }
    for (const l of this.listeners) l(e);
  }
}
