// Typed errors of pscache/client: one class per thing a caller would branch on, each with the HTTP status
// and the daemon's `__type`. Messages never hold a value or the token.

/** Every error the client throws (besides TypeError/RangeError for a wrong call) is a PscacheError. */
export class PscacheError extends Error {
  // Spelled out in each class, not taken from the constructor (minifiers rename classes); distinct
  // literal types also keep `instanceof` narrowing apart between otherwise identical classes.
  override name: string = 'PscacheError';
  /** HTTP status pscache answered with; 0 when no HTTP answer arrived (refused, reset, timed out). */
  readonly status: number;
  /** The daemon's `__type` (the upstream error code where there is one), or a client-side code. */
  readonly __type: string;
  /** The parameter name, secret id or path the error is about, when there is one. */
  readonly item: string | undefined;
  /** HTTP attempts made before giving up (1 when no retry happened; 0 when nothing was sent). */
  readonly attempts: number;

  constructor(
    message: string,
    init: { status: number; type: string; item?: string | undefined; attempts?: number },
  ) {
    super(message);
    this.status = init.status;
    this.__type = init.type;
    this.item = init.item;
    this.attempts = init.attempts ?? 0;
  }
}

/** 400: pscache refused the request (bad name, version, label, ttl...). Never retried. */
export class BadRequestError extends PscacheError {
  override name = 'BadRequestError' as const;
}
/** 401: no token, or not the daemon's token. The message says which variable to set. Never retried. */
export class UnauthorizedError extends PscacheError {
  override name = 'UnauthorizedError' as const;
}
/** 403: AWS denied the read (IAM, KMS, expired credentials). Never retried. */
export class AccessDeniedError extends PscacheError {
  override name = 'AccessDeniedError' as const;
}
/** 404: no such parameter, parameter version, label or secret (`__type` tells which). Never retried. */
export class NotFoundError extends PscacheError {
  override name = 'NotFoundError' as const;
}
/**
 * @deprecated The same class as NotFoundError, which it was named before secrets were read too: it is
 * thrown for missing secrets as well as parameters. Use NotFoundError.
 */
export const ParameterNotFoundError = NotFoundError;
/** @deprecated Use NotFoundError. */
export type ParameterNotFoundError = NotFoundError;
/** 429: too many connections to pscache, or AWS throttling that outlasted the daemon's and our retries. */
export class ThrottledError extends PscacheError {
  override name = 'ThrottledError' as const;
}
/** 502 or 504: AWS failed or timed out behind pscache, after the daemon's and our retries. */
export class UpstreamError extends PscacheError {
  override name = 'UpstreamError' as const;
}
/** 503 or no answer at all: pscache is not running, not ready, shutting down, or too slow. */
export class ExtensionUnavailableError extends PscacheError {
  override name = 'ExtensionUnavailableError' as const;
}
/** A `transform` could not be applied. Names the item, never shows the value. */
export class TransformError extends PscacheError {
  override name = 'TransformError' as const;
}

/** Upstream error codes the daemon maps to 404 and 403, for the per-item errors of batch answers. */
const NOT_FOUND = new Set(['ParameterNotFound', 'ParameterVersionNotFound', 'ResourceNotFoundException']);
const DENIED = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'KMSAccessDeniedException',
  'KMSDisabledException',
  'KMSInvalidStateException',
  'DecryptionFailure',
  'InvalidKeyId',
]);

type ErrorClass = new (
  message: string,
  init: { status: number; type: string; item?: string | undefined; attempts?: number },
) => PscacheError;

function classFor(status: number): ErrorClass {
  switch (status) {
    case 400:
      return BadRequestError;
    case 401:
      return UnauthorizedError;
    case 403:
      return AccessDeniedError;
    case 404:
      return NotFoundError;
    case 429:
      return ThrottledError;
    case 502:
    case 504:
      return UpstreamError;
    case 503:
      return ExtensionUnavailableError;
    default:
      return PscacheError;
  }
}

/** The error for a non-200 answer of the daemon. */
export function errorForStatus(
  status: number,
  type: string,
  message: string,
  item: string | undefined,
  attempts: number,
): PscacheError {
  const Class = classFor(status);
  return new Class(message, { status, type, item, attempts });
}

/** The error for one failed item of a batch answer (the HTTP answer itself was 200). */
export function errorForCode(code: string, message: string, item: string): PscacheError {
  const status = NOT_FOUND.has(code) ? 404 : DENIED.has(code) ? 403 : code.includes('Throttl') ? 429 : 502;
  return errorForStatus(status, code, message, item, 1);
}
