// Errors as HTTP answers, in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.
// Everything thrown while handling a request comes through `toHttpError`: typed EarshotErrors by
// their kind (the one kind → status table below), fastify's and @fastify/multipart's own errors by
// their code, timeouts as 504; anything else is a 500 whose details stay in the log.
import { EarshotError, isEarshotError, type ErrorKind } from '../errors.ts';

export const STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  invalid_argument: 400,
  invalid_audio: 400,
  audio_too_long: 400,
  model_not_found: 404,
  model_unavailable: 503,
  integrity: 500,
  unauthorized: 401,
  forbidden: 403,
  payload_too_large: 413,
  overloaded: 429,
  not_ready: 503,
  not_found: 404,
  conflict: 409,
  insufficient_storage: 507,
  internal: 500,
};

/** OpenAI's `error.type` for each status class. */
function errorType(status: number): string {
  if (status === 401) return 'invalid_request_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status < 500) return 'invalid_request_error';
  return 'server_error';
}

export interface HttpError {
  status: number;
  body: { error: { message: string; type: string; param: string | null; code: string } };
  headers: Record<string, string>;
  /** Whether the cause is ours (logged as an error) rather than the client's. */
  serverFault: boolean;
}

/** An EarshotError that names the request parameter it is about. */
export function paramError(kind: ErrorKind, code: string, param: string, message: string): EarshotError {
  return new EarshotError(kind, code, message, { param });
}

/** fastify / @fastify/multipart error codes that are the client's doing, as typed errors. */
function fromFrameworkError(e: { code?: string; message: string; statusCode?: number; validation?: unknown }): EarshotError | undefined {
  switch (e.code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return new EarshotError('payload_too_large', 'file_too_large', 'the uploaded file is larger than the server accepts');
    case 'FST_FILES_LIMIT':
      return new EarshotError('invalid_argument', 'too_many_files', 'send exactly one file, in the "file" field');
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new EarshotError('payload_too_large', 'too_many_fields', 'the form has more fields than the server accepts');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new EarshotError('payload_too_large', 'body_too_large', 'the request body is larger than the server accepts');
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new EarshotError('invalid_argument', 'not_multipart', 'the request must be multipart/form-data');
    case 'FST_PROTO_VIOLATION':
      return new EarshotError('invalid_argument', 'bad_field_name', 'a form field has a forbidden name');
  }
  if (e.validation !== undefined) return new EarshotError('invalid_argument', 'bad_request', e.message);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new EarshotError(e.statusCode === 413 ? 'payload_too_large' : 'invalid_argument', 'bad_request', e.message);
  }
  // busboy's own complaints about a malformed body.
  if (/multipart|boundary|terminated early|Unexpected end of form/i.test(e.message)) {
    return new EarshotError('invalid_argument', 'bad_multipart', `malformed multipart body: ${e.message}`);
  }
  return undefined;
}

export function toHttpError(e: unknown, opts: { retryAfterS?: number } = {}): HttpError {
  let typed: EarshotError | undefined;
  let status: number;
  if (isEarshotError(e)) typed = e;
  else if (e instanceof Error && e.name === 'TimeoutError') {
    typed = new EarshotError('internal', 'timeout', 'the request took longer than the server allows');
  } else if (e instanceof Error) typed = fromFrameworkError(e as Error & { code?: string });
  if (!typed) {
    typed = new EarshotError('internal', 'internal_error', 'internal server error');
    status = 500;
  } else {
    status = typed.code === 'timeout' ? 504 : STATUS_BY_KIND[typed.kind];
  }
  const headers: Record<string, string> = {};
  if (status === 429 || status === 503) headers['retry-after'] = String(Math.max(1, Math.ceil(opts.retryAfterS ?? 1)));
  if (status === 401) headers['www-authenticate'] = 'Bearer';
  return {
    status,
    headers,
    serverFault: status >= 500 && status !== 503,
    body: {
      error: {
        message: typed.message,
        type: errorType(status),
        param: typed.param ?? null,
        code: typed.code,
      },
    },
  };
}
