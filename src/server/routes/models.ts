// GET /v1/models and /v1/models/{id}, in OpenAI's list shape: the loaded model first (with the
// `whisper-1` alias OpenAI clients ask for), then every model in the local cache. Only the loaded
// one can be used for transcription; the others are listed so an operator sees what is on disk.
import type { FastifyInstance } from 'fastify';
import { EarshotError } from '../../errors.ts';
import { listModels } from '../../models/index.ts';
import type { ServerContext } from '../context.ts';
import { OPENAI_MODEL_ALIAS } from '../model-host.ts';

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** earshot's own: whether requests can use it now. */
  loaded: boolean;
}

export function modelRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { host } = ctx;

  async function all(): Promise<ModelObject[]> {
    const loaded = host.state === 'ready';
    const created = host.loadedAt;
    const out: ModelObject[] = [
      { id: host.id, object: 'model', created, owned_by: 'earshot', loaded },
      { id: OPENAI_MODEL_ALIAS, object: 'model', created, owned_by: 'earshot', loaded },
    ];
    const seen = new Set(out.map((m) => m.id));
    for (const m of await listModels()) {
      if (m.cachedDtypes.length === 0 || seen.has(m.name)) continue;
      seen.add(m.name);
      out.push({ id: m.name, object: 'model', created: 0, owned_by: m.repo.split('/')[0] ?? 'earshot', loaded: false });
    }
    return out;
  }

  app.get('/v1/models', async () => ({ object: 'list', data: await all() }));

  // A wildcard, because hub ids hold a slash (`owner/name`).
  app.get<{ Params: { '*': string } }>('/v1/models/*', async (request) => {
    const id = request.params['*'];
    const found = (await all()).find((m) => m.id === id);
    if (!found) throw new EarshotError('model_not_found', 'model_not_found', `the model "${id}" does not exist on this server`);
    return found;
  });
}
