// Errors pscache answers with: an HTTP status and a JSON body {"__type", "message"} (docs/http-api.md, Errors).
import { AwsCallError, RefusedError } from './aws/types.ts';
import { PathTooLargeError } from './loader/types.ts';

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

/** A batch whose answer would be larger than `limit` bytes (collections.ts, MAX_BATCH_ANSWER_BYTES). */
export class AnswerTooLargeError extends Error {
  constructor(bytes: number, items: number, limit: number) {
    super(
      `the answer would be ${bytes} bytes, more than the ${limit} a batch answer may hold; ask for these ${items} items in smaller batches`,
    );
    this.name = 'AnswerTooLargeError';
  }
}

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
export function fromUpstream(e: AwsCallError): HttpError {
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

/** A fault inside pscache itself (a bug): never disguised as an upstream failure. */
export class InternalError extends HttpError {
  constructor(readonly fault: unknown) {
    super(500, 'InternalError', 'pscache failed on this request (a bug: its log has the details)');
  }
}

/** Any thrown value -> HttpError; anything unexpected is an InternalError (500), whose cause the owner logs. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof AwsCallError) return fromUpstream(e);
  if (e instanceof PathTooLargeError) return badRequest(e.message);
  if (e instanceof AnswerTooLargeError) return new HttpError(400, 'AnswerTooLarge', e.message);
  // A role beyond max_roles, a Region beyond the limit: MaxRolesExceeded as the provider names it.
  if (e instanceof RefusedError) return new HttpError(400, e.code, e.message);
  return new InternalError(e);
}

/**
 * An unexpected error for a log line: its name, message and stack frames. Quoted parts of the message go:
 * JSON.parse and friends quote their input, which could be a secret value.
 */
export function describeInternal(e: unknown): { error: string; stack: string } {
  if (!(e instanceof Error)) return { error: typeof e, stack: '' };
  const message = e.message.replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '"..."').slice(0, 300);
  const frames = (e.stack ?? '')
    .split('\n')
    .filter((l) => l.trimStart().startsWith('at '))
    .map((l) => l.trim())
    .slice(0, 12);
  return { error: `${e.name}: ${message}`, stack: frames.join(' | ') };
}
