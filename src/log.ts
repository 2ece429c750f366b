// The one logger of the process (pino). Logs go to stderr so that stdout stays clean for
// transcripts and machine-readable output. Secrets never reach a line: API keys travel in
// `Authorization` headers, in `?api_key=` on WebSocket URLs and in `openai-insecure-api-key.<key>`
// subprotocols, so the request serializer masks URL secrets, `redact` censors the headers and key
// settings wherever they are logged as objects, and every other string of a line (the message,
// fields, error messages) is scrubbed of those three shapes too. fastify's own request logs go
// through this logger's serializers, refused requests included.
import { pino } from 'pino';

const REDACTED = '[redacted]';

/** Query parameters that carry a secret. */
const SECRET_PARAMS = /([?&;](?:api[_-]?key|access[_-]?token|token|key|secret|password|auth)=)[^&#\s"']*/gi;
const BEARER = /(\bBearer[ \t]+)[^\s"',;]+/gi;
const KEY_PROTOCOL = /(openai-insecure-api-key\.)[^\s"',;]+/gi;

/** `text` with every API key it may carry (URL parameter, bearer token, key subprotocol) censored. */
export function redactSecrets(text: string): string {
  if (!/[=.]|bearer/i.test(text)) return text;
  return text.replace(SECRET_PARAMS, `$1${REDACTED}`).replace(BEARER, `$1${REDACTED}`).replace(KEY_PROTOCOL, `$1${REDACTED}`);
}

/** Plain objects and arrays with their strings scrubbed, a few levels deep; anything else as it is (serializers handle those). */
function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth >= 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v, depth + 1)]));
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

/** fastify's request serializer, with the URL's secrets masked. */
function req(r: LoggedRequest): Record<string, unknown> {
  return {
    method: r.method,
    url: typeof r.url === 'string' ? redactSecrets(r.url) : r.url,
    host: r.host,
    remoteAddress: r.ip,
    remotePort: r.socket?.remotePort,
  };
}

/** pino's error serializer, with the message and stack scrubbed (a URL in an error carries its query). */
function err(e: Error): unknown {
  return scrub({ ...pino.stdSerializers.err(e) });
}

/** Headers that carry a key, as redact paths under a headers object. */
const HEADERS = ['authorization', '["proxy-authorization"]', '["sec-websocket-protocol"]', 'cookie'];
const under = (parent: string, h: string): string => (h.startsWith('[') ? `${parent}${h}` : `${parent}.${h}`);

export const log = pino(
  {
    level: process.env.EARSHOT_LOG_LEVEL ?? 'info',
    base: undefined,
    serializers: { req, err },
    redact: {
      paths: [
        ...HEADERS.flatMap((h) => ['headers', 'req.headers', 'request.headers'].map((p) => under(p, h))),
        'authorization',
        'apiKeys',
        'adminKeys',
        'config.apiKeys',
        'config.adminKeys',
      ],
      censor: REDACTED,
    },
    formatters: { log: (o) => scrub(o) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)) as Parameters<typeof method>);
      },
    },
  },
  pino.destination(2),
);
