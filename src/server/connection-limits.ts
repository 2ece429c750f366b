// Bounds on client connections, at the HTTP server under fastify:
// - at most --max-connections open at once (node's server.maxConnections closes the ones beyond it
//   on arrival, HTTP and WebSocket alike);
// - a request body must keep coming: one that sends less than --body-min-bytes in a
//   --body-timeout window is answered 408 and its connection closed, where node's own timeouts
//   would keep a trickling upload open for the whole --request-timeout.
// Progress is read from the socket's byte count rather than from the request's data events (a
// 'data' listener would take the body from the route that reads it). A window in which the server
// itself is not reading (the route has not asked for the body yet, or holds it back while it
// writes what it has) never counts against the client.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ServerMetrics } from './metrics.ts';

export interface ConnectionLimits {
  maxConnections: number;
  bodyTimeoutS: number;
  /** 0: no rate check. */
  bodyMinBytes: number;
}

const SLOW_BODY = JSON.stringify({
  error: {
    message: 'the request body arrived too slowly: the connection is closed',
    type: 'invalid_request_error',
    param: null,
    code: 'body_timeout',
  },
});

export function limitConnections(server: Server, limits: ConnectionLimits, metrics: ServerMetrics): void {
  server.maxConnections = limits.maxConnections;
  server.on('drop', () => metrics.connectionsRefused.inc());
  server.on('connection', (socket: { once(event: 'close', f: () => void): void }) => {
    metrics.connections.inc();
    socket.once('close', () => metrics.connections.dec());
  });
  if (limits.bodyMinBytes > 0) {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => watchBody(req, res, limits, () => metrics.slowBodies.inc()));
  }
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Closes the connection of `req` when its body stalls (see the header). */
function watchBody(req: IncomingMessage, res: ServerResponse, limits: ConnectionLimits, onSlow: () => void): void {
  if (!hasBody(req)) return;
  const socket = req.socket;
  let mark = socket.bytesRead;
  const timer = setInterval(() => {
    if (req.complete || socket.destroyed) return stop();
    const got = socket.bytesRead - mark;
    mark = socket.bytesRead;
    const serverNotReading = req.readableFlowing !== true || req.readableLength >= req.readableHighWaterMark;
    if (got >= limits.bodyMinBytes || serverNotReading) return;
    stop();
    onSlow();
    if (res.headersSent) {
      socket.destroy();
      return;
    }
    res.writeHead(408, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
    res.end(SLOW_BODY, () => socket.destroy());
  }, limits.bodyTimeoutS * 1000);
  timer.unref();
  // Not stopped by the response's end: a body left trickling after an early answer (a 401, say)
  // would hold the connection just the same. The timer stops itself once the body is complete or
  // the socket gone (a listener on the socket per request would pile up on a kept-alive one).
  const stop = (): void => clearInterval(timer);
}
