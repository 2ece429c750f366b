// Model names as clients send them. OpenAI's clients are configured with OpenAI's model names
// (`whisper-1`, `gpt-4o-transcribe`, `gpt-4o-mini-transcribe`), and some with `default`: all of
// them mean the server's default model, so such a client works unchanged. `--model-alias
// name=id` adds more names, or points one of these at another hosted model (e.g.
// `gpt-4o-mini-transcribe=fast`, an `--extra-model` with the id `fast`).
import { EarshotError } from '../errors.ts';

/** Names that mean the default model unless `--model-alias` points them elsewhere; `whisper-1` first. */
export const DEFAULT_MODEL_NAMES = ['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe', 'default'] as const;

const badAlias = (message: string): EarshotError => new EarshotError('invalid_argument', 'bad_model_alias', message);

/** A name a request may use: up to 200 printable characters without spaces. */
export function isModelName(name: string): boolean {
  return name !== '' && name.length <= 200 && !/[\s\u0000-\u001f]/.test(name);
}

/** Reads `--model-alias` values (`name=id`, repeatable) into name -> id; a name given twice is refused. */
export function parseModelAliases(values: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const value of values) {
    const eq = value.indexOf('=');
    const name = eq < 0 ? '' : value.slice(0, eq).trim();
    const id = eq < 0 ? '' : value.slice(eq + 1).trim();
    if (!isModelName(name) || !isModelName(id)) {
      throw badAlias(`model alias "${value.slice(0, 100)}": expected name=id, both without spaces (e.g. gpt-4o-mini-transcribe=fast)`);
    }
    if (out.has(name)) throw badAlias(`model alias "${name}" is given twice`);
    out.set(name, id);
  }
  return out;
}

/**
 * The server's name -> model id table: DEFAULT_MODEL_NAMES for `defaultId`, then the configured
 * aliases (which may re-point those). Every alias must name a hosted model's id (`hostedIds`), and
 * no alias may shadow a hosted id: either would be a request that silently reaches another model.
 */
export function aliasTable(defaultId: string, configured: readonly string[], hostedIds: ReadonlySet<string>): Map<string, string> {
  const table = new Map<string, string>(DEFAULT_MODEL_NAMES.filter((n) => !hostedIds.has(n)).map((n) => [n, defaultId]));
  for (const [name, id] of parseModelAliases(configured)) {
    if (hostedIds.has(name)) throw badAlias(`model alias "${name}" is already the id of a hosted model`);
    if (!hostedIds.has(id)) {
      throw badAlias(`model alias "${name}=${id}": no hosted model has the id "${id}" (hosted: ${[...hostedIds].map((i) => `"${i}"`).join(', ')})`);
    }
    table.set(name, id);
  }
  return table;
}
