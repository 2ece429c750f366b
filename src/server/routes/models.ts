// GET /v1/models and /v1/models/{id}, in OpenAI's list shape: the hosted models first (the default
// one also as `whisper-1`, the id OpenAI clients ask for), then every other model in the local
// cache (`loaded: false`; an operator can load one with the admin routes). Admin routes, behind
// the API key like everything else: POST /v1/models/{id}/load (load, or reload/swap under that
// id, optional body `{"model"?, "dtype"?}`) and DELETE /v1/models/{id} (unload). Ids may hold a
// slash (`owner/name`), hence the wildcard routes.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { EarshotError } from '../../errors.ts';
import { listModels } from '../../models/index.ts';
import type { ServerContext } from '../context.ts';
import { type HostedModel, OPENAI_MODEL_ALIAS } from '../model-host.ts';

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** earshot's own: whether requests can use it now without waiting for a load. */
  loaded: boolean;
  /** earshot's own, for hosted models: loading, ready, failed, unloaded (by an operator) or idle (unloaded after --model-ttl). */
  state?: string;
  /** earshot's own, for hosted models: what it was loaded from, and the dtype asked for (absent: the model's default). */
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

export function modelRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { host } = ctx;

  function hostedObject(h: HostedModel, id = h.id): ModelObject {
    const v = h.current;
    return {
      id,
      object: 'model',
      created: v?.loadedAt ?? 0,
      owned_by: 'earshot',
      loaded: v !== undefined,
      state: h.state,
      model: h.spec.model,
      ...(h.spec.dtype !== undefined ? { dtype: h.spec.dtype } : {}),
      default: host.isDefault(h),
    };
  }

  async function all(): Promise<ModelObject[]> {
    const out: ModelObject[] = [];
    for (const h of host.models()) {
      out.push(hostedObject(h));
      if (host.isDefault(h)) out.push(hostedObject(h, OPENAI_MODEL_ALIAS));
    }
    const seen = new Set(out.map((m) => m.id));
    for (const m of await listModels()) {
      if (m.cachedDtypes.length === 0 || seen.has(m.name)) continue;
      seen.add(m.name);
      out.push({ id: m.name, object: 'model', created: 0, owned_by: m.repo.split('/')[0] ?? 'earshot', loaded: false });
    }
    return out;
  }

  const notFound = (id: string) => new EarshotError('model_not_found', 'model_not_found', `the model "${id}" does not exist on this server`);

  app.get('/v1/models', async () => ({ object: 'list', data: await all() }));

  app.get<{ Params: { '*': string } }>('/v1/models/*', async (request) => {
    const id = request.params['*'];
    const found = (await all()).find((m) => m.id === id);
    if (!found) throw notFound(id);
    return found;
  });

  // Answers once the load is done (or failed: the version already serving, if any, stays).
  app.post<{ Params: { '*': string } }>('/v1/models/*', async (request) => {
    const path = request.params['*'];
    if (!path.endsWith(LOAD_SUFFIX) || path.length === LOAD_SUFFIX.length) {
      throw new EarshotError('model_not_found', 'not_found', `no route for POST /v1/models/${path}: use POST /v1/models/{id}/load`);
    }
    const id = path.slice(0, -LOAD_SUFFIX.length);
    const parsed = loadBody.safeParse(request.body ?? undefined);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new EarshotError('invalid_argument', 'bad_load_body', `bad body: ${issue.path.join('.') || 'body'}: ${issue.message} (expected {"model"?: string, "dtype"?: string})`);
    }
    const spec = parsed.data ?? {};
    const h = await host.loadModel(id, { ...(spec.model !== undefined ? { model: spec.model } : {}), ...(spec.dtype !== undefined ? { dtype: spec.dtype } : {}) });
    request.log.info({ model: h.id, spec: h.spec }, 'model loaded by request');
    return hostedObject(h, id === OPENAI_MODEL_ALIAS ? id : h.id);
  });

  app.delete<{ Params: { '*': string } }>('/v1/models/*', async (request) => {
    const id = request.params['*'];
    if (!host.byId(id)) throw notFound(id);
    const h = await host.unloadModel(id);
    request.log.info({ model: h.id }, 'model unloaded by request');
    return { id, object: 'model', deleted: true, state: h.state };
  });
}
