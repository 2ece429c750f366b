// Where the model store lives and how it reaches the hub, read from the environment: EARSHOT_HOME,
// HF_ENDPOINT, HF_TOKEN, EARSHOT_OFFLINE / HF_HUB_OFFLINE. Read on each call (not at import) so a
// caller or a test can pass its own environment.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { EarshotError } from '../errors.ts';

export interface StoreSettings {
  /** Root of earshot's cache; models are under `<home>/models`. */
  home: string;
  /** Hub base URL, without a trailing slash. */
  endpoint: string;
  /** Bearer token for private or gated repositories. */
  token?: string;
  /** Never touch the network. */
  offline: boolean;
}

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

function truthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.trim().toLowerCase());
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): StoreSettings {
  const home = env.EARSHOT_HOME ? resolve(env.EARSHOT_HOME) : join(homedir(), '.cache', 'earshot');
  const endpoint = (env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new EarshotError('invalid_argument', 'bad_endpoint', `HF_ENDPOINT is not a URL: "${endpoint}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new EarshotError('invalid_argument', 'bad_endpoint', `HF_ENDPOINT must be http(s): "${endpoint}"`);
  }
  const token = env.HF_TOKEN?.trim() || undefined;
  return {
    home,
    endpoint,
    offline: truthy(env.EARSHOT_OFFLINE) || truthy(env.HF_HUB_OFFLINE),
    ...(token ? { token } : {}),
  };
}
