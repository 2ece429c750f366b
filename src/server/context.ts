// What every route group of one server instance shares: its configuration, the model host, the
// metrics and the API keys. Passed explicitly so that tests can run several servers in one process.
import type { ApiKeys } from './auth.ts';
import type { ServerConfig } from './config.ts';
import type { ServerMetrics } from './metrics.ts';
import type { ModelHost } from './model-host.ts';

export interface ServerContext {
  config: ServerConfig;
  host: ModelHost;
  metrics: ServerMetrics;
  keys: ApiKeys;
}
