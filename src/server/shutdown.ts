// Graceful stop on SIGTERM / SIGINT: stop listening at once (new connections are refused, requests
// on kept-alive connections get 503), let the requests in flight finish for up to the configured
// deadline, release the model, exit 0. Open WebSocket streams are finished inside app.close() (the
// WebSocket plugin's preClose, stream-common.ts): each gets the final of the audio it has, its end
// event and close 1001, before the deadline. Past the deadline the process exits 1 rather than
// hang. A second signal exits at once.
import type { FastifyInstance } from 'fastify';
import { unloadAll } from '../runtime/model-cache.ts';

export function installShutdown(app: FastifyInstance, opts: { timeoutS: number; exit?: (code: number) => void }): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting now');
      exit(1);
      return;
    }
    stopping = true;
    app.log.info({ signal, deadlineS: opts.timeoutS }, 'shutting down: finishing requests in flight');
    const deadline = setTimeout(() => {
      app.log.error({ deadlineS: opts.timeoutS }, 'requests still running at the shutdown deadline: exiting');
      exit(1);
    }, opts.timeoutS * 1000);
    deadline.unref();
    // server.close() only drops the connections idle at that moment; a kept-alive connection whose
    // last response ends later would hold the close open until its keep-alive timeout.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
    sweep.unref();
    // Stop listening now: app.close() finishes the open streams (preClose) before it closes the server.
    app.server.close();
    app
      .close()
      .finally(() => clearInterval(sweep))
      .then(() => unloadAll())
      .then(
        () => {
          clearTimeout(deadline);
          app.log.info('stopped');
          exit(0);
        },
        (e: unknown) => {
          app.log.error({ err: e }, 'error while shutting down');
          exit(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
