// GET /v1/models and /v1/models/{id}, in OpenAI's list shape: the hosted models first (each also
// under its aliases: the default as `whisper-1` and the other names OpenAI clients ask for), then every other model in the local
// cache (`loaded: false`; an operator can load one with the admin routes). Admin routes, for admin
// keys only (auth.ts says who): POST /v1/models/{id}/load (load, or reload/swap under that id,
// optional body `{"model"?, "dtype"?}`) and DELETE /v1/models/{id} (unload). What a load may name
// goes through the model policy (model-policy.ts), and its errors never carry the server's paths.
// Ids may hold a slash (`owner/name`), hence the wildcard routes.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { EarshotError, isEarshotError } from '../../errors.ts';
import { formatDtypeSpec, listModels } from '../../models/index.ts';
import type { ApiNode } from '../../cluster/api-node.ts';
import type { ServerContext } from '../context.ts';
import { servedModelId } from '../../models/index.ts';
import type { HostedModel } from '../model-registry.ts';
import { requestName, withoutPaths } from '../model-policy.ts';

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** earshot's own: whether requests can use it now without waiting for a load. */
  loaded: boolean;
  /** earshot's own, for hosted models: loading, ready, failed, unloaded (by an operator) or idle (unloaded after --model-ttl). */
  state?: string;
  /** earshot's own, for hosted models: what it was loaded from, and the dtype it runs in (while not loaded: the one asked for, absent for the model's default). */
  model?: string;
  dtype?: string;
  /** earshot's own: the default model (the one `whisper-1` means). */
  default?: boolean;
}

const loadBody = z
  .strictObject({
    model: z.string().trim().min(1).optional(),
    dtype: z.string().trim().min(1).optional(),
  })
  .optional();

const LOAD_SUFFIX = '/load';

/** Refusals counted by `earshot_model_loads_refused_total`. */
const REFUSALS = new Set(['max_loaded_models', 'pull_not_allowed']);

/** A load's error as the client may see it: the same kind and code, the server's paths left out. */
function publicError(e: unknown): unknown {
  if (!isEarshotError(e)) return e;
  return new EarshotError(e.kind, e.code, withoutPaths(e.message), { param: e.param });
}

export function modelRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { host, policy, metrics } = ctx;
  // Before the body is read: a caller without the admin role learns nothing more than 401/403.
  const adminOnly = {
    onRequest: async (request: FastifyRequest) => {
      ctx.keys.checkAdmin(request.headers.authorization);
      if (ctx.cluster) throw new EarshotError('conflict', 'no_local_model', 'this node holds no model (--no-local-model): models are loaded by the workers (earshot worker --model)');
    },
  };

  function hostedObject(h: HostedModel, id = h.id): ModelObject {
    const v = h.current;
    const dtype = v ? formatDtypeSpec(v.whisper.resolved.dtype) : h.spec.dtype;
    return {
      id,
      object: 'model',
      created: v?.loadedAt ?? 0,
      owned_by: 'earshot',
      loaded: v !== undefined,
      state: h.state,
      // An operator's folder is shown by its name: the server's paths are not for every key to see.
      model: h.spec.label ?? servedModelId({ model: h.spec.model }),
      ...(dtype !== undefined ? { dtype } : {}),
      default: host.isDefault(h),
    };
  }

  /** On a node without a model: the models the live workers serve. */
  async function clusterModels(cluster: ApiNode): Promise<ModelObject[]> {
    const out: ModelObject[] = [];
    for (const m of await cluster.models()) {
      const shown = (id: string): ModelObject => ({ id, object: 'model', created: 0, owned_by: 'earshot', loaded: true, state: 'ready', default: m.id === cluster.defaultModel });
      out.push(shown(m.id));
      for (const alias of cluster.aliasesOf(m.id)) out.push(shown(alias));
    }
    return out;
  }

  async function all(): Promise<ModelObject[]> {
    if (ctx.cluster) return clusterModels(ctx.cluster);
    const out: ModelObject[] = [];
    for (const h of host.models()) {
      out.push(hostedObject(h));
      for (const alias of host.aliasesOf(h)) out.push(hostedObject(h, alias));
    }
    const seen = new Set(out.map((m) => m.id));
    for (const m of await listModels()) {
      if (m.cachedDtypes.length === 0 || seen.has(m.name)) continue;
      seen.add(m.name);
      out.push({ id: m.name, object: 'model', created: 0, owned_by: m.repo.split('/')[0] ?? 'earshot', loaded: false });
    }
    return out;
  }

  /** 404 for `id`, naming the ids that exist (`known`), as a transcription's unknown model does. */
  const notFound = (id: string, known: readonly string[]) =>
    new EarshotError('model_not_found', 'model_not_found', `the model "${id.slice(0, 100)}" does not exist on this server; its models: ${known.map((k) => `"${k}"`).join(', ') || 'none'}`);

  app.get('/v1/models', async () => ({ object: 'list', data: await all() }));

  app.get<{ Params: { '*': string } }>('/v1/models/*', async (request) => {
    const id = request.params['*'];
    const models = await all();
    const found = models.find((m) => m.id === id);
    if (!found) throw notFound(id, models.map((m) => m.id));
    return found;
  });

  // Answers once the load is done (or failed: the version already serving, if any, stays).
  app.post<{ Params: { '*': string } }>('/v1/models/*', adminOnly, async (request) => {
    const path = request.params['*'];
    if (!path.endsWith(LOAD_SUFFIX) || path.length === LOAD_SUFFIX.length) {
      throw new EarshotError('model_not_found', 'not_found', 'no such route: use POST /v1/models/{id}/load');
    }
    const id = path.slice(0, -LOAD_SUFFIX.length);
    // A hosted id is only a key in the registry; a new one must be a plain name (and, without a
    // body, names the model too).
    const existing = host.byId(id);
    if (!existing) requestName(id, 'model id');
    const parsed = loadBody.safeParse(request.body ?? undefined);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new EarshotError('invalid_argument', 'bad_load_body', `bad body: ${issue.path.join('.') || 'body'}: ${issue.message} (expected {"model"?: string, "dtype"?: string})`);
    }
    const body = parsed.data ?? {};
    const named = body.model ?? (existing ? undefined : id);
    let h: HostedModel;
    try {
      const wanted = named !== undefined ? policy.resolve(named) : {};
      h = await host.loadModel(id, { ...wanted, ...(body.dtype !== undefined ? { dtype: body.dtype } : {}) });
    } catch (e) {
      if (isEarshotError(e) && REFUSALS.has(e.code)) metrics.modelLoadsRefused.inc({ reason: e.code });
      throw publicError(e);
    }
    request.log.info({ model: h.id, spec: h.spec }, 'model loaded by request');
    return hostedObject(h, host.isAlias(id) ? id : h.id);
  });

  app.delete<{ Params: { '*': string } }>('/v1/models/*', adminOnly, async (request) => {
    const id = request.params['*'];
    if (!host.byId(id)) throw notFound(id, host.models().map((h) => h.id));
    const h = await host.unloadModel(id);
    request.log.info({ model: h.id }, 'model unloaded by request');
    return { id, object: 'model', deleted: true, state: h.state };
  });
}
