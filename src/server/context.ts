// What every route group of one server instance shares: its configuration, the model host, the
// metrics, the API keys (and their roles), what a request may load (the model policy) and the jobs. Passed
// explicitly so that tests can run several servers in one process.
import type { ApiNode } from '../cluster/api-node.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { Transcriber } from '../runtime/transcriber.ts';
import type { ApiKeys } from './auth.ts';
import type { ServerConfig } from './config.ts';
import type { ServerMetrics } from './metrics.ts';
import type { ModelRegistry } from './model-registry.ts';
import type { ModelPolicy } from './model-policy.ts';
import type { UploadMemory } from './upload.ts';

export interface ServerContext {
  config: ServerConfig;
  host: ModelRegistry;
  metrics: ServerMetrics;
  keys: ApiKeys;
  /** The durable job system (its routes are routes/jobs.ts; /ready asks it for problems). */
  jobs: JobQueue;
  policy: ModelPolicy;
  /** The cap on upload bytes held in memory, shared by every route that takes an upload. */
  uploads: UploadMemory;
  /** What the audio routes transcribe with: the local models, or the cluster's workers. */
  transcriber: Transcriber;
  /** On a node without a model (--no-local-model): the cluster it sends requests to. */
  cluster?: ApiNode;
}
