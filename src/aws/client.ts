// One AWS service endpoint: signed POSTs over a small keep-alive socket pool, with retries, per-attempt
// timeouts and a cap on response size. Speaks AWS JSON 1.1 (SSM, Secrets Manager) unless given another
// wire protocol (STS's Query protocol, src/aws/sts.ts). No AWS SDK code runs here.

import type { IncomingHttpHeaders } from 'node:http';
import { monotonicMs } from '../clock.ts';
import { type Logger, silentLogger } from '../log.ts';
import { VERSION } from '../version.ts';
import type { AwsCredentials, CredentialSource } from './credentials.ts';
import { signRequest } from './signer.ts';
import { type Transport, Transports } from './transport.ts';
import { AwsCallError, type AwsService, type CallObserver, type FailureKind } from './types.ts';

/** How requests and answers look on the wire: everything that differs between JSON 1.1 and Query. */
export interface Protocol {
  /** Content-Type and the other headers (besides Host, User-Agent, Content-Length) an operation sends. */
  headers(operation: string): Record<string, string>;
  body(operation: string, input: unknown): string;
  /** A 2xx body -> the answer, or what is wrong with it. */
  success(operation: string, text: string): { value: Record<string, unknown> } | { malformed: string };
  /** An error body -> the code and message it names, where it names them. */
  error(text: string): { code?: string; message?: string };
}

export interface AwsJsonClientOptions {
  /** The signing name, and what logs and metrics call the service. */
  service: AwsService;
  /** Default: AWS JSON 1.1 with X-Amz-Target (SSM, Secrets Manager). */
  protocol?: Protocol;
  /** Base URL; may carry a port and a path prefix, and may be http:// (emulator, LocalStack). */
  endpoint: string;
  /** Signing Region. */
  region: string;
  credentials: CredentialSource;
  /** Most sockets open to this endpoint at once (when the client makes its own Transports). */
  maxConnections: number;
  /** Socket pools shared with other clients (createUpstream's); default: the client's own. */
  transports?: Transports;
  /** Per attempt, covering queueing, connect, response and body; 0 = none of the user's (ATTEMPT_CEILING_MS). */
  timeoutMs: number;
  /** Attempts per call, the first included. Default 3, as the AWS SDKs' standard retry mode. */
  maxAttempts?: number;
  observer?: CallObserver;
  log?: Logger;
  /** Default `pscache/<version>`. */
  userAgent?: string;
}

/** Per-call overrides. */
export interface CallOptions {
  /** Attempts for this call (stale-if-error refetches use 1: the caller is served the old value instead). */
  maxAttempts?: number;
  /** Abandons the call: the attempt in flight is destroyed and no other is made. */
  signal?: AbortSignal;
  /** Told when an attempt failed and another follows: a caller holding a stale value stops waiting. */
  onRetry?: (error: AwsCallError) => void;
  /** Sign only with credentials fetched at or after this time (Date.now ms): the SnapStart restore window. */
  credentialsSince?: number;
}

/** Larger bodies are cut off: no answer of these operations comes close (a secret is at most 64 KB). */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * No attempt lives longer than this, whatever *_TIMEOUT_MILLIS says (0 included): a hung socket (a peer
 * that accepted and went silent, a connection frozen with the Lambda environment) must never hold a key.
 */
export const ATTEMPT_CEILING_MS = 10_000;

const TARGET_PREFIX: Record<string, string> = { ssm: 'AmazonSSM', secretsmanager: 'secretsmanager' };
const BACKOFF_BASE_MS = 100;
/** The longest pause between two attempts of a call. */
export const BACKOFF_CAP_MS = 1500;
/** Attempts per call unless told otherwise, as the AWS SDKs' standard retry mode. */
const DEFAULT_ATTEMPTS = 3;

/** What one attempt may take: the user's `*_TIMEOUT_MILLIS` (0: none of theirs) capped at the ceiling. */
export const attemptTimeoutMs = (timeoutMs: number): number =>
  timeoutMs > 0 ? Math.min(timeoutMs, ATTEMPT_CEILING_MS) : ATTEMPT_CEILING_MS;

/**
 * How long a load may show no progress and still be joined: an attempt to its ceiling and the backoff
 * before it. A load silent for longer may be hung (a fault of pscache's own): a read starts a newer one.
 */
export const joinLimitMs = (timeoutMs: number): number => attemptTimeoutMs(timeoutMs) + BACKOFF_CAP_MS;
export const JOIN_LIMIT_MS = joinLimitMs(0);

/**
 * Longest a read waits on upstream before it is answered 504: every attempt to its ceiling, the backoffs
 * between them, and a credentials fetch. Loads are bounded by the same sum, so this only ever fires on a
 * fault of pscache's own; it is there so that nothing waits forever.
 */
export function waitLimitMs(timeoutMs: number): number {
  return DEFAULT_ATTEMPTS * attemptTimeoutMs(timeoutMs) + (DEFAULT_ATTEMPTS - 1) * BACKOFF_CAP_MS + 3000;
}
const MAX_MESSAGE_CHARS = 1000;

// The throttling codes the AWS SDKs retry (smithy's THROTTLING_ERROR_CODES, less the non-JSON services').
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'RequestThrottled',
  'SlowDown',
  'PriorRequestNotComplete',
]);
const TIMEOUT_CODES = new Set(['RequestTimeout', 'RequestTimeoutException']);
const EXPIRED_CREDENTIALS = new Set(['ExpiredTokenException', 'ExpiredToken']);
/** Connection failures worth another try. ENOTFOUND is not one: a name that does not resolve will not. */
const RETRYABLE_NETWORK = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  // A proxy answered CONNECT with 502, 503 or 504 (src/aws/proxy.ts).
  'ProxyUnavailable',
]);

type Attempt =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; error: AwsCallError; retryable: boolean; staleSocket?: boolean };

/** `com.amazon.coral.service#ParameterNotFound:http://...` -> `ParameterNotFound`, as the SDKs do. */
export function sanitizeErrorCode(raw: unknown): string | undefined {
  if (typeof raw === 'number') raw = String(raw);
  if (typeof raw !== 'string') return undefined;
  let v = raw.split(',')[0]!;
  v = v.split(':')[0]!;
  if (v.includes('#')) v = v.split('#')[1]!;
  v = v.trim();
  return v === '' ? undefined : v;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** AWS JSON 1.1: `X-Amz-Target: <prefix>.<operation>`, JSON both ways, `__type` or `code` for errors. */
function jsonProtocol(service: AwsService): Protocol {
  const prefix = TARGET_PREFIX[service];
  if (prefix === undefined) throw new TypeError(`${service} does not speak AWS JSON 1.1 here`);
  return {
    headers: (operation) => ({
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': `${prefix}.${operation}`,
    }),
    body: (_operation, input) => JSON.stringify(input ?? {}),
    success(_operation, text) {
      let doc: unknown;
      try {
        doc = text.trim() === '' ? {} : JSON.parse(text);
      } catch {
        return { malformed: 'the answer body is not JSON' };
      }
      return isObject(doc) ? { value: doc } : { malformed: 'the answer body is not a JSON object' };
    },
    error(text) {
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        return {};
      }
      if (!isObject(doc)) return {};
      const codeKey = Object.keys(doc).find((k) => k.toLowerCase() === 'code');
      const code =
        (codeKey !== undefined ? sanitizeErrorCode(doc[codeKey]) : undefined) ??
        sanitizeErrorCode(doc['__type']);
      const message = [doc['message'], doc['Message'], doc['errorMessage']].find(
        (m) => typeof m === 'string',
      ) as string | undefined;
      return { ...(code !== undefined ? { code } : {}), ...(message !== undefined ? { message } : {}) };
    },
  };
}

function codeForStatus(status: number): string {
  if (status === 503) return 'ServiceUnavailable';
  if (status >= 500) return 'InternalFailure';
  if (status === 429) return 'TooManyRequestsException';
  return 'UnknownError';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A call nobody waits for any more (superseded by a newer read, or pscache is stopping). */
const abandoned = () => new AwsCallError('Abandoned', 'nobody waits for this answer any more', 'network');

export class AwsJsonClient {
  readonly service: AwsService;
  private readonly url: URL;
  private readonly path: string;
  private readonly protocol: Protocol;
  private readonly region: string;
  private readonly credentials: CredentialSource;
  private readonly maxConnections: number;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly observer: CallObserver | undefined;
  private readonly log: Logger;
  private readonly userAgent: string;
  private readonly transports: Transports;
  /** False when the pools are shared: closing this client then leaves them to their owner. */
  private readonly ownsTransports: boolean;
  private closed = false;

  constructor(opts: AwsJsonClientOptions) {
    this.service = opts.service;
    this.url = new URL(opts.endpoint);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') {
      throw new TypeError(`endpoint must be an http:// or https:// URL, got ${this.url.protocol}`);
    }
    // Operations POST to `/`; an endpoint path is a prefix (proxies, LocalStack-style gateways).
    this.path = `${this.url.pathname.replace(/\/+$/, '')}/`;
    this.protocol = opts.protocol ?? jsonProtocol(opts.service);
    this.region = opts.region;
    this.credentials = opts.credentials;
    this.maxConnections = Math.max(1, opts.maxConnections);
    this.timeoutMs = attemptTimeoutMs(opts.timeoutMs);
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? DEFAULT_ATTEMPTS);
    this.observer = opts.observer;
    this.log = opts.log ?? silentLogger;
    this.userAgent = opts.userAgent ?? `pscache/${VERSION}`;
    this.ownsTransports = opts.transports === undefined;
    this.transports =
      opts.transports ??
      // One host: the cap over all hosts (one above what Node is told, see transport.ts) is the host's.
      new Transports({ maxConnections: this.maxConnections, maxTotal: this.maxConnections + 1 });
  }

  /** Calls `operation` with `input` as its body; resolves to the object answered. */
  async call<T>(operation: string, input: unknown, opts: CallOptions = {}): Promise<T> {
    const body = this.protocol.body(operation, input);
    const maxAttempts = Math.max(1, opts.maxAttempts ?? this.maxAttempts);
    let attempt = 0;
    let staleRetryLeft = true;
    let credentialRetryLeft = true;
    for (;;) {
      if (this.closed) throw new AwsCallError('ClientClosed', 'pscache is shutting down', 'network');
      if (opts.signal?.aborted) throw abandoned();
      attempt++;
      const started = monotonicMs();
      let r: Attempt;
      try {
        r = await this.attempt(operation, body, opts);
      } catch (e) {
        // Anything but an AwsCallError is a fault of pscache's own: it must surface as one, not as a 502.
        if (!(e instanceof AwsCallError)) throw e;
        // Credentials could not be had: the provider did its own retries, so ours would only add delay.
        r = { ok: false, error: e, retryable: false };
      }
      this.observe(operation, r, monotonicMs() - started, attempt);
      if (r.ok) return r.value as T;
      const { error } = r;
      if (r.staleSocket && staleRetryLeft) {
        // A pooled socket the peer closed while we were not looking (Lambda freeze/thaw, an idle timeout
        // on the far side). The request almost surely never reached the service, and these reads are
        // idempotent anyway: try again at once, without spending an attempt.
        staleRetryLeft = false;
        attempt--;
        this.log.debug('upstream stale socket, retrying', {
          service: this.service,
          operation,
          code: error.code,
        });
        continue;
      }
      if (
        EXPIRED_CREDENTIALS.has(error.code) &&
        credentialRetryLeft &&
        attempt < maxAttempts &&
        this.credentials.invalidate()
      ) {
        credentialRetryLeft = false;
        this.log.info('upstream says the credentials expired; fetching new ones', { service: this.service });
        continue;
      }
      if (!r.retryable || attempt >= maxAttempts || opts.signal?.aborted) throw error;
      opts.onRetry?.(error);
      // Full jitter (AWS architecture blog "Exponential Backoff And Jitter").
      const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
      this.log.debug('upstream retry', {
        service: this.service,
        operation,
        attempt,
        code: error.code,
        delay_ms: Math.round(delay),
      });
      await sleep(delay);
    }
  }

  /** Fails later calls, and closes every pooled socket unless the pools are shared. For shutdown. */
  close(): void {
    this.closed = true;
    if (this.ownsTransports) this.transports.destroy();
  }

  private observe(operation: string, r: Attempt, ms: number, attempt: number): void {
    if (!this.observer) return;
    const outcome = r.ok ? 'ok' : r.error.kind === 'aws' ? 'error' : r.error.kind;
    try {
      this.observer({ service: this.service, operation, outcome, ms, attempt });
    } catch {
      // A broken metrics hook must not fail the call.
    }
  }

  /** node:https (and with it TLS) loads on first use: start-up only pays for what it serves. */
  private transport(): Promise<Transport> {
    return this.transports.for(this.url.protocol);
  }

  /**
   * One attempt: credentials, then the request, within one deadline. A credential source that never
   * answers fails the attempt at the deadline (a timeout, stale-eligible) instead of holding the call.
   */
  private async attempt(operation: string, body: string, opts: CallOptions): Promise<Attempt> {
    const deadline = monotonicMs() + this.timeoutMs;
    const [transport, creds] = await Promise.all([this.transport(), this.credentialsBefore(deadline, opts)]);
    const headers: Record<string, string> = {
      Host: this.url.host,
      ...this.protocol.headers(operation),
      'User-Agent': this.userAgent,
      'Content-Length': String(Buffer.byteLength(body)),
    };
    signRequest(
      { method: 'POST', path: this.path, headers, body },
      { credentials: creds, region: this.region, service: this.service },
    );
    return this.send(transport, operation, headers, body, creds, opts.signal, deadline);
  }

  private credentialsBefore(deadline: number, opts: CallOptions): Promise<AwsCredentials> {
    const pending = this.credentials.get(
      opts.credentialsSince !== undefined ? { since: opts.credentialsSince } : undefined,
    );
    const signal = opts.signal;
    return new Promise<AwsCredentials>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        done();
        reject(abandoned());
      };
      const timer = setTimeout(
        () => {
          done();
          reject(
            new AwsCallError(
              'CredentialsProviderError',
              `no credentials from the ${this.credentials.name} source within ${this.timeoutMs} ms`,
              'timeout',
            ),
          );
        },
        Math.max(1, deadline - monotonicMs()),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      pending.then(
        (c) => {
          done();
          resolve(c);
        },
        (e: unknown) => {
          done();
          reject(e);
        },
      );
    });
  }

  private send(
    transport: Transport,
    operation: string,
    headers: Record<string, string>,
    body: string,
    creds: AwsCredentials,
    signal: AbortSignal | undefined,
    deadline: number,
  ): Promise<Attempt> {
    // Abandoned while its credentials were on their way: nothing is sent.
    if (signal?.aborted) return Promise.resolve({ ok: false, error: abandoned(), retryable: false });
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      let responded = false;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => fail({ ok: false, error: abandoned(), retryable: false });
      const finish = (r: Attempt) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const req = transport.request({
        protocol: this.url.protocol,
        hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
        port: this.url.port || undefined,
        path: this.path,
        method: 'POST',
        headers,
        agent: transport.agent,
      });
      const fail = (r: Attempt) => {
        finish(r);
        req.destroy();
      };
      // The socket is destroyed with the request: a hung connection never returns to the pool.
      timer = setTimeout(
        () => {
          fail({
            ok: false,
            error: new AwsCallError(
              'TimeoutError',
              `no complete answer within ${this.timeoutMs} ms`,
              'timeout',
            ),
            retryable: true,
          });
        },
        Math.max(1, deadline - monotonicMs()),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'NetworkingError';
        const hangUp = err.message === 'socket hang up';
        finish({
          ok: false,
          error: new AwsCallError(
            code,
            scrub(err.message, creds, this.transports.secrets) || code,
            'network',
          ),
          retryable: RETRYABLE_NETWORK.has(code) || hangUp,
          // Node's own advice for keep-alive races: a reused socket that fails before any answer.
          staleSocket:
            req.reusedSocket && !responded && (code === 'ECONNRESET' || code === 'EPIPE' || hangUp),
        });
      });
      req.on('response', (res) => {
        responded = true;
        const status = res.statusCode ?? 0;
        const tooBig = () =>
          fail({
            ok: false,
            error: new AwsCallError(
              'MalformedResponse',
              `the answer is larger than ${MAX_RESPONSE_BYTES / 1024 / 1024} MB`,
              'malformed',
              status,
              header(res.headers, 'x-amzn-requestid'),
            ),
            retryable: false,
          });
        const declared = Number(header(res.headers, 'content-length'));
        if (declared > MAX_RESPONSE_BYTES) return tooBig();
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) return tooBig();
          chunks.push(chunk);
        });
        res.on('end', () =>
          finish(
            interpret(this.protocol, operation, status, res.headers, Buffer.concat(chunks, size), [
              creds.secretAccessKey,
              creds.sessionToken,
              ...this.transports.secrets,
            ]),
          ),
        );
        res.on('error', () => {});
        res.on('close', () => {
          if (!res.complete) {
            finish({
              ok: false,
              error: new AwsCallError(
                'ECONNRESET',
                'the connection closed before the answer was complete',
                'network',
              ),
              retryable: true,
            });
          }
        });
      });
      req.end(body);
    });
  }
}

/**
 * Upstream messages are shown to callers and logged: make sure no credential rides along, the signing
 * credentials' nor a proxy's (a proxy or an error page in between may quote the request it got).
 */
function scrub(message: string, creds: AwsCredentials, proxy: readonly string[]): string {
  return redact(message, [creds.secretAccessKey, creds.sessionToken, ...proxy]);
}

function redact(message: string, secrets: readonly (string | undefined)[]): string {
  let m = message;
  for (const s of secrets) {
    if (s) m = m.split(s).join('(redacted)');
  }
  return m.length > MAX_MESSAGE_CHARS ? `${m.slice(0, MAX_MESSAGE_CHARS)}...` : m;
}

function interpret(
  protocol: Protocol,
  operation: string,
  status: number,
  headers: IncomingHttpHeaders,
  body: Buffer,
  secrets: readonly (string | undefined)[],
): Attempt {
  // The code and request id are shown too: one that holds a credential is no code (nor id) at all.
  const clean = (v: string | undefined) =>
    v !== undefined && secrets.some((s) => s && v.includes(s)) ? undefined : v;
  const requestId = clean(header(headers, 'x-amzn-requestid'));
  const text = body.toString('utf8');
  if (status >= 200 && status < 300) {
    const out = protocol.success(operation, text);
    if ('value' in out) return { ok: true, value: out.value };
    return {
      ok: false,
      error: new AwsCallError('MalformedResponse', out.malformed, 'malformed', status, requestId),
      retryable: false,
    };
  }
  const named = protocol.error(text);
  const code =
    clean(sanitizeErrorCode(header(headers, 'x-amzn-errortype'))) ??
    clean(named.code) ??
    codeForStatus(status);
  const message = redact(named.message ?? code, secrets) || code;
  let kind: FailureKind;
  let retryable = true;
  if (THROTTLING.has(code) || status === 429) kind = 'throttled';
  else if (status >= 500) kind = 'server';
  else if (TIMEOUT_CODES.has(code)) kind = 'timeout';
  else if (status >= 400) {
    kind = 'aws';
    retryable = false;
  } else {
    // 1xx/3xx: a proxy or a wrong endpoint, not the service.
    kind = 'malformed';
    retryable = false;
  }
  return { ok: false, error: new AwsCallError(code, message, kind, status, requestId), retryable };
}
