// The wire: GET requests to the daemon on loopback over a keep-alive agent, with a per-attempt timeout and
// retries (capped exponential backoff with jitter, Retry-After honoured) on the failures that pass.
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { type Env, PORT_VARIABLE, resolvePort, resolveToken, wrongTokenHint } from './env.ts';
import { ExtensionUnavailableError, errorForStatus, PscacheError } from './errors.ts';

export interface TransportOptions {
  /** Fixed port; undefined reads PARAMETERS_SECRETS_EXTENSION_HTTP_PORT at each call. */
  port?: number | undefined;
  /** Fixed token; undefined reads the environment at each call (the daemon's order). */
  token?: string | undefined;
  /** Per-attempt limit, from sending the request to the last byte of the answer. */
  timeoutMs: number;
  /** Attempts after the first one. */
  retries: number;
  /** First backoff step; doubles each retry. */
  retryBaseMs: number;
  /** Most backoff between two attempts. */
  retryMaxDelayMs: number;
  env: Env;
}

export interface Answer {
  status: number;
  body: string;
  /** The X-Pscache header: hit, miss or stale. */
  cache: string | undefined;
  attempts: number;
}

/** Statuses worth another attempt: throttled, upstream failure, not ready/shutting down, upstream timeout. */
const RETRY_STATUS = new Set([429, 502, 503, 504]);
/** A Retry-After longer than this is not waited out: the error is thrown at once instead. */
const MAX_RETRY_AFTER_MS = 10_000;
/** Answers larger than this are refused (the biggest legitimate one, 500 parameters, is ~5 MB). */
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const HOST = '127.0.0.1';

/** A failure before any HTTP answer: kind decides whether to retry and what `__type` to report. */
class WireError extends Error {
  constructor(
    readonly kind:
      | 'ConnectionRefused'
      | 'ConnectionReset'
      | 'Timeout'
      | 'ConnectionError'
      | 'ResponseTooLarge',
    message: string,
    /** The request went out on a pooled socket that turned out dead (closed while idle, or frozen). */
    readonly staleSocket: boolean,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Transport {
  /** Keep-alive: a warm call then costs one write and one read on an open loopback socket. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8 });

  constructor(readonly opts: TransportOptions) {}

  port(): number {
    return this.opts.port ?? resolvePort(this.opts.env);
  }

  /**
   * GET path?query with retries. Returns 200 answers; throws a typed PscacheError for everything else.
   * `item` names what the error is about.
   */
  async get(path: string, query: Array<[string, string]>, item: string | undefined): Promise<Answer> {
    const { token, source } =
      this.opts.token !== undefined
        ? { token: this.opts.token, source: 'createClient({ token })' }
        : resolveToken(this.opts.env);
    const port = this.port();
    // encodeURIComponent leaves no `&`, `=`, `+`, `/`, `:` or space unescaped; non-ASCII goes as UTF-8.
    const target = `${path}?${query.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`;
    let staleRetryUsed = false;
    for (let attempt = 1; ; attempt++) {
      const last = attempt > this.opts.retries;
      let res: { status: number; headers: IncomingHttpHeaders; body: string };
      try {
        res = await this.once(port, target, token);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        // A pooled socket that died while idle is not the daemon failing: resend at once, free of charge.
        if (e.staleSocket && !staleRetryUsed) {
          staleRetryUsed = true;
          attempt--;
          continue;
        }
        if (e.kind === 'ResponseTooLarge') {
          throw new PscacheError(e.message, { status: 0, type: e.kind, item, attempts: attempt });
        }
        if (last) {
          throw new ExtensionUnavailableError(`${e.message} (${attempt} attempt${attempt > 1 ? 's' : ''})`, {
            status: 0,
            type: e.kind,
            item,
            attempts: attempt,
          });
        }
        await sleep(this.backoff(attempt));
        continue;
      }
      if (res.status === 200) {
        const cache = res.headers['x-pscache'];
        return {
          status: 200,
          body: res.body,
          cache: typeof cache === 'string' ? cache : undefined,
          attempts: attempt,
        };
      }
      const error = this.errorFor(res, item, attempt, source);
      if (last || !RETRY_STATUS.has(res.status)) throw error;
      const retryAfter = retryAfterMs(res.headers['retry-after']);
      if (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_MS) throw error;
      await sleep(Math.max(this.backoff(attempt), retryAfter ?? 0));
    }
  }

  /** Capped exponential backoff with "equal jitter": never near zero, so a starting daemon gets time. */
  private backoff(attempt: number): number {
    const step = Math.min(this.opts.retryMaxDelayMs, this.opts.retryBaseMs * 2 ** (attempt - 1));
    return step / 2 + Math.random() * (step / 2);
  }

  private errorFor(
    res: { status: number; body: string },
    item: string | undefined,
    attempts: number,
    tokenSource: string,
  ): PscacheError {
    let type = `HTTP${res.status}`;
    let message = `pscache answered HTTP ${res.status}`;
    try {
      const doc = JSON.parse(res.body) as { __type?: unknown; message?: unknown };
      if (typeof doc.__type === 'string') type = doc.__type;
      if (typeof doc.message === 'string' && doc.message !== '') message = doc.message;
    } catch {
      // Not pscache's JSON (a proxy, another program on the port): keep the generic text, never the body.
    }
    if (res.status === 401) message = `${message}: ${wrongTokenHint(tokenSource)}`;
    if (item !== undefined && !message.includes(item)) message = `${item}: ${message}`;
    return errorForStatus(res.status, type, message, item, attempts);
  }

  /** One attempt; rejects with a WireError when no complete HTTP answer arrives in time. */
  private once(
    port: number,
    target: string,
    token: string,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const req = request({
        host: HOST,
        port,
        path: target,
        method: 'GET',
        agent: this.agent,
        headers: { 'X-Aws-Parameters-Secrets-Token': token },
      });
      const fail = (e: WireError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(e);
      };
      // One timer for the whole attempt (connect, headers, body): socket timeouts only measure idleness.
      const timer = setTimeout(
        () =>
          fail(
            new WireError(
              'Timeout',
              `pscache on ${HOST}:${port} did not answer within ${this.opts.timeoutMs} ms`,
              false,
            ),
          ),
        this.opts.timeoutMs,
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        const reused = req.reusedSocket;
        if (e.code === 'ECONNREFUSED') {
          fail(
            new WireError(
              'ConnectionRefused',
              `nothing listens on ${HOST}:${port}: is pscache running (the layer attached, or \`pscache serve\` started) and is ${PORT_VARIABLE} the same for both?`,
              false,
            ),
          );
        } else if (e.code === 'ECONNRESET' || e.code === 'EPIPE') {
          fail(
            new WireError(
              'ConnectionReset',
              `pscache on ${HOST}:${port} closed the connection without an answer`,
              reused,
            ),
          );
        } else {
          fail(
            new WireError(
              'ConnectionError',
              `could not reach pscache on ${HOST}:${port} (${e.code ?? 'error'})`,
              false,
            ),
          );
        }
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            fail(new WireError('ResponseTooLarge', `pscache sent more than ${MAX_BODY_BYTES} bytes`, false));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', () =>
          fail(
            new WireError(
              'ConnectionReset',
              `pscache on ${HOST}:${port} closed the connection mid-answer`,
              false,
            ),
          ),
        );
        res.on('aborted', () =>
          fail(
            new WireError(
              'ConnectionReset',
              `pscache on ${HOST}:${port} closed the connection mid-answer`,
              false,
            ),
          ),
        );
      });
      req.end();
    });
  }

  /** Closes pooled sockets (tests, or a process that wants to exit at once). */
  close(): void {
    this.agent.destroy();
  }
}

/** Retry-After as seconds or an HTTP date -> milliseconds; undefined when absent or unreadable. */
function retryAfterMs(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
