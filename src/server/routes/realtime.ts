// GET /v1/realtime (WebSocket): OpenAI's Realtime API, transcription sessions, in both of its
// protocols (src/server/realtime/): today's (GA: `session.update` with `type: "transcription"`)
// and the beta one (`transcription_session.update`). `?model=…` (how OpenAI's SDK connects) opens
// a GA session: `session.created` first, with that model when the server serves one of that name;
// `?intent=transcription` alone, or an `OpenAI-Beta: realtime=v1` header, opens with the beta
// `transcription_session.created`. Either way the client may update in either protocol, and is
// answered in the one it used. Anything else is refused: an error event and close 1008.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { EarshotError } from '../../errors.ts';
import type { ServerContext } from '../context.ts';
import { betaDialect } from '../realtime/beta-protocol.ts';
import { refuseRealtime, serveRealtime } from '../realtime/connection.ts';
import { gaDialect } from '../realtime/ga-protocol.ts';
import { CLOSE_POLICY } from './stream-common.ts';

export function realtimeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/realtime', { websocket: true }, (socket: WebSocket, request: FastifyRequest) => {
    const q = request.query as Record<string, unknown>;
    const model = typeof q.model === 'string' && q.model !== '' ? q.model : undefined;
    const intent = q.intent;
    if ((intent === undefined && model === undefined) || (intent !== undefined && intent !== 'transcription')) {
      const e = new EarshotError('invalid_argument', 'unsupported_intent', 'earshot serves transcription sessions only: connect to /v1/realtime?intent=transcription or ?model=…', {
        param: 'intent',
      });
      return refuseRealtime(socket, e, CLOSE_POLICY, 'intent=transcription required');
    }
    const beta = /\brealtime=v1\b/.test(String(request.headers['openai-beta'] ?? '')) || model === undefined;
    serveRealtime(ctx, socket, request.log, {
      dialect: beta ? betaDialect : gaDialect,
      model: model !== undefined && ctx.host.serves(model) ? model : ctx.host.id,
    });
  });
}
