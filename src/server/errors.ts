/**
 * Errors as OpenAI's API returns them, `{"error": {"message", "type", "param", "code"}}`, with the HTTP
 * status each one goes out with. Every way a request can fail becomes one of these; nothing else reaches
 * a client, and nothing a client sends can end the process.
 */

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'unavailable_error' | 'server_error';

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly type: ErrorType = 'invalid_request_error',
              readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** a field of the request body that is missing, of the wrong type or out of range: 400 naming it */
export function badField(param: string, message: string): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, 'invalid_value');
}

/** what anything thrown while handling a request becomes (fastify's own errors carry a statusCode) */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = e as { statusCode?: number; code?: string; message?: string };
  const status = typeof err?.statusCode === 'number' ? err.statusCode : 500;
  if (status === 413) return new ApiError(413, `the request body is larger than the server accepts (${err.message ?? ''})`, 'invalid_request_error', null, 'request_too_large');
  if (err?.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err?.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || (status === 400 && /JSON/i.test(err?.message ?? ''))) {
    return new ApiError(400, `the request body is not valid JSON: ${err.message}`, 'invalid_request_error', null, 'invalid_json');
  }
  if (err?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ApiError(415, `unsupported content type: send application/json (${err.message})`, 'invalid_request_error', null, 'unsupported_media_type');
  if (status >= 400 && status < 500) return new ApiError(status, err.message ?? 'bad request', 'invalid_request_error', null, err.code ?? null);
  return new ApiError(500, `internal error: ${err?.message ?? String(e)}`, 'server_error');
}
