// Keeps the model metrics in step with the registry of hosted models: loaded (a gauge by id),
// loads and unloads (counters), the default model's readiness and load time, the queue gauges
// summed over every loaded model's queue, the device each model runs on, and each loaded version's
// batched runs (the engine reports them to whoever subscribes: RemoteRunner.onBatch), and the
// tensors each keeps on its device (asked of its worker at each scrape).
import type { DeviceTensorStats } from '../engine/device-refs.ts';
import type { Whisper } from '../runtime/loaded-model.ts';
import type { ServerMetrics } from './metrics.ts';
import type { ModelRegistry } from './model-registry.ts';

export function trackModels(host: ModelRegistry, metrics: ServerMetrics): void {
  const watched = new Map<string, () => void>();
  // Per loaded version: a version swapped out still serves its leases until it is released.
  const observing = new Map<Whisper, () => void>();
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
      metrics.deviceChanged(e.id, e.whisper.model.device);
      const id = e.id;
      observing.set(e.whisper, e.whisper.model.onBatch((run) => metrics.batchObserved(id, run)));
    } else if (e.type === 'unloaded') {
      metrics.modelUnloads.inc({ model: e.id, reason: e.reason });
      metrics.deviceChanged(e.id, null);
      watched.get(e.id)?.();
      watched.delete(e.id);
    } else if (e.type === 'released') {
      observing.get(e.whisper)?.();
      observing.delete(e.whisper);
    }
    refresh();
  });
  refresh();
  metrics.watchDeviceTensors(async () => {
    const out = new Map<string, DeviceTensorStats>();
    await Promise.all(
      host.models().map(async (h) => {
        const w = h.current?.whisper;
        const s = w && (await within(STATS_TIMEOUT_MS, w.model.stats()).catch(() => null));
        if (s) out.set(h.id, s.deviceTensors);
      }),
    );
    return out;
  });
}

/** How long a scrape waits for a model's worker (busy in a long run, it answers after it); then that model is left out. */
const STATS_TIMEOUT_MS = 2000;

/** `p`, or null once `ms` have passed. */
function within<T>(ms: number, p: Promise<T>): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
