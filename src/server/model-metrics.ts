// Keeps the model metrics in step with the registry of hosted models: loaded (a gauge by id),
// loads and unloads (counters), the default model's readiness and load time, and the queue gauges
// summed over every loaded model's queue.
import type { ServerMetrics } from './metrics.ts';
import type { ModelRegistry } from './model-registry.ts';

export function trackModels(host: ModelRegistry, metrics: ServerMetrics): void {
  const watched = new Map<string, () => void>();
  const queues = (): void => {
    let waiting = 0;
    let running = 0;
    for (const h of host.models()) {
      const s = h.current?.whisper.queue.stats();
      waiting += s?.waiting ?? 0;
      running += s?.running ?? 0;
    }
    metrics.queueChanged({ waiting, running });
  };
  const refresh = (): void => {
    for (const h of host.models()) metrics.modelsLoaded.set({ model: h.id }, h.current ? 1 : 0);
    metrics.modelReady.set(host.state === 'ready' ? 1 : 0);
    queues();
  };
  host.onEvent((e) => {
    if (e.type === 'loaded') {
      metrics.modelLoads.inc({ model: e.id });
      metrics.modelLoadSeconds.set({ model: e.id }, e.whisper.loadMs / 1000);
      watched.get(e.id)?.();
      watched.set(e.id, e.whisper.queue.onChange(queues));
    } else if (e.type === 'unloaded') {
      metrics.modelUnloads.inc({ model: e.id, reason: e.reason });
      watched.get(e.id)?.();
      watched.delete(e.id);
    }
    refresh();
  });
  refresh();
}
