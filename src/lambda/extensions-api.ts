// Client for the Lambda Extensions API (register, event/next, init/error, exit/error), one connection per
// call (src/lambda/http1.ts).
import type { Socket } from 'node:net';
import { type Answer, exchange, WireError } from './http1.ts';

const BASE = '/2020-01-01/extension';
/** Events and register answers are a few hundred bytes; anything far larger is not the Runtime API. */
const MAX_BODY_BYTES = 1024 * 1024;
/** init/error and exit/error precede an exit: never let a silent Runtime API hold the process. */
const REPORT_TIMEOUT_MS = 1000;

/** Why a call failed. `status` carries the HTTP status; `garbage` an answer that is not what the API sends. */
export type ApiFailure = 'status' | 'garbage' | 'network';

export class ExtensionsApiError extends Error {
  constructor(
    message: string,
    readonly kind: ApiFailure,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ExtensionsApiError';
  }
}

export interface Registration {
  /** Lambda-Extension-Identifier: sent back on every later call. */
  id: string;
  functionName: string | undefined;
  functionVersion: string | undefined;
}

export type ExtensionEvent =
  | { eventType: 'INVOKE'; requestId: string | undefined; deadlineMs: number | undefined }
  | { eventType: 'SHUTDOWN'; shutdownReason: string; deadlineMs: number | undefined };

export interface ErrorReport {
  /** `Category.Reason`, sent as Lambda-Extension-Function-Error-Type and as errorType. */
  type: string;
  message: string;
}

/** `host:port` as Lambda sets it; anything else would send our calls somewhere unexpected. */
export function parseRuntimeApi(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new ExtensionsApiError(
      `AWS_LAMBDA_RUNTIME_API=${JSON.stringify(value.slice(0, 100))} is not host:port`,
      'garbage',
    );
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A value we may echo into a header and a log line: visible ASCII, bounded. */
const safeToken = (v: string | undefined): v is string => v !== undefined && /^[\x21-\x7e]{1,256}$/.test(v);

function parseJson(body: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ExtensionsApiError(`${what} answered 200 with a body that is not JSON`, 'garbage', 200);
  }
  if (!isObject(doc))
    throw new ExtensionsApiError(
      `${what} answered 200 with a body that is not a JSON object`,
      'garbage',
      200,
    );
  return doc;
}

export class ExtensionsApi {
  private readonly host: string;
  private readonly port: number;
  // The connections of calls in flight (event/next blocks until the next event, possibly for hours with
  // freezes in between, and has no timeout): close() ends them. None is kept between calls, so none can
  // go stale while the environment is frozen.
  private readonly sockets = new Set<Socket>();
  private id: string | undefined;

  constructor(runtimeApi: string) {
    ({ host: this.host, port: this.port } = parseRuntimeApi(runtimeApi));
  }

  /** POST register. Throws ExtensionsApiError on anything but 200 with an identifier and a JSON object. */
  async register(name: string, events: readonly string[]): Promise<Registration> {
    const r = await this.call('POST', '/register', { 'Lambda-Extension-Name': name }, { events });
    if (r.status !== 200) throw statusError('register', r);
    const id = r.headers['lambda-extension-identifier'];
    if (!safeToken(id)) {
      throw new ExtensionsApiError(
        'register answered 200 without a usable Lambda-Extension-Identifier header',
        'garbage',
        200,
      );
    }
    const doc = parseJson(r.body, 'register');
    this.id = id;
    return { id, functionName: str(doc['functionName']), functionVersion: str(doc['functionVersion']) };
  }

  /** GET event/next: blocks until Lambda has an event for us. No timeout, by the API's rules. */
  async next(onSent?: () => void): Promise<ExtensionEvent> {
    const r = await this.call('GET', '/event/next', this.idHeader(), undefined, 0, onSent);
    if (r.status !== 200) throw statusError('event/next', r);
    const doc = parseJson(r.body, 'event/next');
    const type = str(doc['eventType'])?.toUpperCase();
    const deadlineMs = num(doc['deadlineMs']);
    if (type === 'INVOKE') return { eventType: 'INVOKE', requestId: str(doc['requestId']), deadlineMs };
    if (type === 'SHUTDOWN') {
      return { eventType: 'SHUTDOWN', shutdownReason: str(doc['shutdownReason']) ?? '', deadlineMs };
    }
    // We registered for INVOKE and SHUTDOWN only: anything else means we are not talking to Lambda.
    throw new ExtensionsApiError(
      `event/next answered an event of unknown type ${JSON.stringify(String(doc['eventType']).slice(0, 40))}`,
      'garbage',
      200,
    );
  }

  /** POST init/error: the extension failed to start; Lambda fails the INIT phase with this type. */
  initError(report: ErrorReport): Promise<void> {
    return this.report('/init/error', report);
  }

  /** POST exit/error: the extension is about to exit because of an error. */
  exitError(report: ErrorReport): Promise<void> {
    return this.report('/exit/error', report);
  }

  /** Ends the calls in flight, so that nothing of ours holds the process open. */
  close(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private async report(path: string, { type, message }: ErrorReport): Promise<void> {
    const r = await this.call(
      'POST',
      path,
      { ...this.idHeader(), 'Lambda-Extension-Function-Error-Type': type },
      { errorMessage: message, errorType: type, stackTrace: [] },
      REPORT_TIMEOUT_MS,
    );
    if (r.status !== 202 && r.status !== 200) throw statusError(path.slice(1), r);
  }

  private idHeader(): Record<string, string> {
    if (this.id === undefined) throw new Error('not registered with the Extensions API');
    return { 'Lambda-Extension-Identifier': this.id };
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body?: unknown,
    timeoutMs = 0,
    onSent?: () => void,
  ): Promise<Answer> {
    try {
      return await exchange({
        host: this.host,
        port: this.port,
        method,
        path: `${BASE}${path}`,
        headers,
        body: body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
        maxBody: MAX_BODY_BYTES,
        timeoutMs,
        ...(onSent ? { onSent } : {}),
        track: (socket, open) => (open ? this.sockets.add(socket) : this.sockets.delete(socket)),
      });
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      throw new ExtensionsApiError(`${path.slice(1)}: ${e.message}`, e.kind);
    }
  }
}

function statusError(what: string, r: Answer): ExtensionsApiError {
  // The API's error bodies are {"errorMessage","errorType"}; show them (bounded), they hold no secrets.
  let detail = '';
  try {
    const doc: unknown = JSON.parse(r.body.toString('utf8'));
    if (isObject(doc)) {
      detail = [str(doc['errorType']), str(doc['errorMessage'])].filter(Boolean).join(': ').slice(0, 300);
    }
  } catch {
    // not JSON: the status alone says enough
  }
  const meaning =
    r.status === 500
      ? ' (container error: not recoverable)'
      : r.status === 403
        ? ' (forbidden)'
        : r.status === 400
          ? ' (bad request)'
          : '';
  return new ExtensionsApiError(
    `${what} answered HTTP ${r.status}${meaning}${detail ? `: ${detail}` : ''}`,
    'status',
    r.status,
  );
}
