// The one loader of the server's configuration; each setting is declared once, in settings.ts.
// Four sources, each overriding the one before: built-in defaults < a JSON config file (`--config` / EARSHOT_CONFIG) < EARSHOT_* environment
// variables < command-line flags. Everything is validated once, here, with zod; the rest of the
// server only ever sees a typed ServerConfig. API keys are the exception to "override": keys from
// every source (flags, EARSHOT_API_KEYS, the config file, a keys file) are all accepted together;
// admin keys (--admin-key, EARSHOT_ADMIN_KEYS, adminKeys, an admin keys file) likewise.
import { readFileSync } from 'node:fs';
import { EarshotError } from '../errors.ts';
import { list, SETTINGS, serverConfigSchema, type ServerConfig, type SettingName } from './settings.ts';

export { serverConfigSchema, type ServerConfig } from './settings.ts';

/** The environment variable of each setting (from the one table in settings.ts). */
export const ENV_VARS = Object.fromEntries(Object.entries(SETTINGS).map(([k, s]) => [k, s.env])) as Readonly<Record<SettingName, string>>;
export const CONFIG_FILE_ENV = 'EARSHOT_CONFIG';

export interface ConfigSources {
  /** Values from the command line (undefined = not given). */
  flags?: Partial<Record<keyof ServerConfig, unknown>>;
  env?: NodeJS.ProcessEnv;
  /** A JSON config file; default: $EARSHOT_CONFIG. */
  configFile?: string;
}

function badConfig(message: string, cause?: unknown): EarshotError {
  return new EarshotError('invalid_argument', 'bad_config', message, cause === undefined ? undefined : { cause });
}

function readJsonFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw badConfig(`cannot read config file ${path}: ${(e as Error).message}`, e);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw badConfig(`config file ${path} is not valid JSON: ${(e as Error).message}`, e);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw badConfig(`config file ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Keys in a keys file: one per line, blank lines and `#` comments skipped. */
export function readKeysFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw badConfig(`cannot read API keys file ${path}: ${(e as Error).message}`, e);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Builds the effective configuration from all sources and validates it. Throws an
 * `invalid_argument` EarshotError naming the setting (and where it came from) on the first problem,
 * and refuses a non-loopback address without any API key unless insecureNoAuth is set.
 */
export function loadServerConfig(sources: ConfigSources = {}): ServerConfig {
  const env = sources.env ?? process.env;
  const flags = defined(sources.flags ?? {});
  const filePath = sources.configFile ?? (env[CONFIG_FILE_ENV]?.trim() || undefined);
  const file = filePath ? readJsonFile(filePath) : {};
  const fromEnv: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v !== undefined && v.trim() !== '') fromEnv[key] = v;
  }
  // Each source is checked alone first, so an error can say where the bad value came from.
  const parts: Array<[string, Record<string, unknown>]> = [
    [filePath ? `config file ${filePath}` : 'config file', file],
    ['environment', fromEnv],
    ['command line', flags],
  ];
  for (const [where, values] of parts) {
    const r = serverConfigSchema.partial().safeParse(values);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const key = String(issue.path[0] ?? '');
      const name = where === 'environment' ? (ENV_VARS[key as keyof ServerConfig] ?? key) : key;
      throw badConfig(`invalid setting ${name} (${where}): ${issue.message}`);
    }
  }
  const merged = { ...file, ...fromEnv, ...flags };
  const allKeys = (name: 'apiKeys' | 'adminKeys', fileName: 'apiKeysFile' | 'adminKeysFile'): string[] => {
    const keys = [file[name], fromEnv[name], flags[name]].flatMap((k) => list.parse(k ?? []));
    const keysFile = (merged[fileName] as string | undefined)?.trim();
    if (keysFile) keys.push(...readKeysFile(keysFile));
    return [...new Set(keys)];
  };
  const r = serverConfigSchema.safeParse({ ...merged, apiKeys: allKeys('apiKeys', 'apiKeysFile'), adminKeys: allKeys('adminKeys', 'adminKeysFile') });
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw badConfig(`invalid setting ${issue.path.join('.')}: ${issue.message}`);
  }
  const config = r.data;
  if (!config.tlsCert !== !config.tlsKey) throw badConfig('TLS needs both tlsCert (--tls-cert) and tlsKey (--tls-key)');
  if (!config.localModel && !config.redis) throw badConfig('localModel false (--no-local-model) needs redis (--redis <url>): the requests of a node without a model are decoded by the cluster\'s workers');
  if (!isLoopback(config.host) && config.apiKeys.length + config.adminKeys.length === 0 && !config.insecureNoAuth) {
    throw new EarshotError(
      'invalid_argument',
      'auth_required',
      `refusing to listen on ${config.host} without an API key: give one with --api-key, ${ENV_VARS.apiKeys}, --api-keys-file or --admin-key (or pass --insecure-no-auth to allow anyone who can reach the port)`,
    );
  }
  return config;
}

/** The configuration as it may be logged: each secret setting (keys) replaced by a count. */
export function maskedConfig(config: ServerConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const [name, s] of Object.entries(SETTINGS)) {
    if (!('secret' in s) || !s.secret) continue;
    const v = out[name];
    out[name] = `${Array.isArray(v) ? v.length : v === undefined ? 0 : 1} key(s), masked`;
  }
  return out;
}
