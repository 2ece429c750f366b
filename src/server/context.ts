// What every route group of one server instance shares: its configuration, the model host, the
// metrics, the API keys (and their roles) and what a request may load (the model policy). Passed
// explicitly so that tests can run several servers in one process.
import type { ApiKeys } from './auth.ts';
import type { ServerConfig } from './config.ts';
import type { ServerMetrics } from './metrics.ts';
import type { ModelRegistry } from './model-registry.ts';
import type { ModelPolicy } from './model-policy.ts';

export interface ServerContext {
  config: ServerConfig;
  host: ModelRegistry;
  metrics: ServerMetrics;
  keys: ApiKeys;
  /** The job system, once the job routes are registered: why it cannot serve, for /ready. */
  jobs?: { problem(): string | undefined };
  policy: ModelPolicy;
}
