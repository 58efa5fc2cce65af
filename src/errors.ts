// Errors pscache answers with: an HTTP status and a JSON body {"__type", "message"} (docs/http-api.md, Errors).
import { UpstreamError } from './aws/types.ts';

/** A failure with the status and body the client gets. Messages never hold secret values or the token. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    /** Extra response headers (Retry-After). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string) => new HttpError(400, 'BadRequest', message);

const FORBIDDEN = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'MissingAuthenticationTokenException',
  'IncompleteSignature',
  'InvalidClientTokenId',
  'KMSAccessDeniedException',
  'KMSDisabledException',
  'KMSInvalidStateException',
  'DecryptionFailure',
  'InvalidKeyId',
  'CredentialsProviderError',
]);
const NOT_FOUND = new Set(['ParameterNotFound', 'ParameterVersionNotFound', 'ResourceNotFoundException']);

/** Maps an upstream failure onto the status table in docs/http-api.md (Errors). */
export function fromUpstream(e: UpstreamError): HttpError {
  const message = e.message || e.code;
  switch (e.kind) {
    case 'throttled':
      return new HttpError(429, e.code, message, { 'Retry-After': '1' });
    case 'timeout':
      return new HttpError(504, e.code || 'TimeoutError', message);
    case 'network':
    case 'malformed':
    case 'server':
      return new HttpError(502, e.code, message);
    default:
      if (FORBIDDEN.has(e.code)) return new HttpError(403, e.code, message);
      if (NOT_FOUND.has(e.code)) return new HttpError(404, e.code, message);
      if (e.httpStatus !== undefined && e.httpStatus >= 500) return new HttpError(502, e.code, message);
      return new HttpError(400, e.code, message);
  }
}

/** Any thrown value -> HttpError; unknown errors are a 502 without internal detail. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof UpstreamError) return fromUpstream(e);
  return new HttpError(502, 'InternalError', 'pscache could not complete the request');
}
