// The request pipeline: every request runs these checks in this order, the first that fails answers, so an
// answer never depends on more than it must (docs/http-api.md says the same to users):
//
//   1. inbound connection limit          429 TooManyConnections  (and 503 ShuttingDown once shutdown began)
//   2. HTTP version other than 1.0, 1.1  505 HttpVersionNotSupported
//   3. URL, Host and forwarding headers  400 UriTooLong, BadHost (none in 1.1, more than one, not loopback),
//                                            ForwardedRequest
//   4. /ping and /                       200 (405 for another method), no token needed
//   5. token                             401 Unauthorized
//   6. method                            405 MethodNotAllowed
//   7. route                             404 NotFound
//   8. query                             400 BadRequest
//
// then the cache or the collections answer; one metrics sample and (at DEBUG) one log line per request.
// Before any of this the listener may close a connection outright: a pipelining flood, or too many answers
// left unread (see listener.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Answer, ItemCache } from '../cache/index.ts';
import type { Collections } from '../collections.ts';
import { describeInternal, HttpError, InternalError, toHttpError } from '../errors.ts';
import { itemName } from '../items.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { checkOrigin, HTTP_VERSIONS, hostHeaderCount, TokenCheck } from './checks.ts';
import { overLimit, type RequestHandler } from './listener.ts';
import { findRoute, notFoundRoute, parseQuery } from './routes.ts';

export const MAX_URL_LENGTH = 8192;

export interface PipelineOptions {
  token: string | undefined;
  /** Headers that carry the token; default X-Aws-Parameters-Secrets-Token only. */
  tokenHeaders?: readonly string[];
  /** Prefix of path-style secret reads; default /v1/. */
  pathPrefix?: string;
  /** Only for the 429 message: the listener enforces it. */
  maxInboundConnections: number;
  cache: ItemCache;
  collections: Collections;
  metrics: Metrics;
  log: Logger;
  version: string;
  /** Told of each answer written after its request's own turn (after upstream). */
  wroteLate?: (res: ServerResponse) => void;
}

export interface RequestStats {
  requests: number;
}

const JSON_HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' } as const;
const TEXT = 'text/plain; charset=utf-8';
const PROMETHEUS = 'text/plain; version=0.0.4; charset=utf-8';

/** One request on its way through the pipeline. */
interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  started: number;
  /** Route label for metrics and logs: a fixed string from the route table, never a name. */
  route: string;
  /** What the request is about, for DEBUG logs only. */
  name: string | undefined;
  /** True once the request was handed to the cache (errors then carry X-Pscache: miss). */
  upstream: boolean;
}

export class Pipeline implements RequestHandler {
  readonly stats: RequestStats = { requests: 0 };
  private readonly tokenCheck: TokenCheck;
  /** Answers waiting on upstream, so shutdown can answer them. */
  private readonly pending = new Set<ServerResponse>();
  private closing = false;
  private readonly pingBody = Buffer.from('healthy');
  private readonly rootBody: Buffer;

  constructor(private readonly opts: PipelineOptions) {
    this.tokenCheck = new TokenCheck(opts.token, opts.tokenHeaders);
    this.rootBody = Buffer.from(`healthy\npscache ${opts.version}\n`);
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const ctx: Ctx = {
      req,
      res,
      started: performance.now(),
      route: 'other',
      name: undefined,
      upstream: false,
    };
    try {
      if (overLimit(req)) {
        throw new HttpError(
          429,
          'TooManyConnections',
          `more than ${this.opts.maxInboundConnections} concurrent connections; retry shortly`,
          { 'Retry-After': '1', Connection: 'close' },
        );
      }
      if (this.closing) {
        throw new HttpError(503, 'ShuttingDown', 'pscache is shutting down', {
          'Retry-After': '1',
          Connection: 'close',
        });
      }
      // Node's parser takes HTTP/0.9 and HTTP/2.0 request lines (other versions never get here, see the
      // listener); either would skip the Host rules below, which are HTTP/1.1's.
      if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) {
        throw new HttpError(
          505,
          'HttpVersionNotSupported',
          `HTTP/${req.httpVersion} is not supported; ${HTTP_VERSIONS}`,
          {
            Connection: 'close',
          },
        );
      }
      const url = req.url ?? '/';
      if (url.length > MAX_URL_LENGTH)
        throw new HttpError(400, 'UriTooLong', `URL longer than ${MAX_URL_LENGTH}`);
      const hosts = hostHeaderCount(req.rawHeaders);
      if (hosts > 1) throw new HttpError(400, 'BadHost', 'a request may carry only one Host header');
      if (hosts === 0 && req.httpVersionMinor === 1) {
        throw new HttpError(400, 'BadHost', 'an HTTP/1.1 request needs a Host header');
      }
      checkOrigin(req.headers);
      const q = url.indexOf('?');
      const route = findRoute(q === -1 ? url : url.slice(0, q), this.opts.pathPrefix);
      const isGet = req.method === 'GET' || req.method === 'HEAD';
      if (route?.kind === 'ping' || route?.kind === 'root') {
        ctx.route = route.kind;
        if (!isGet) throw methodNotAllowed();
        this.send(ctx, 200, route.kind === 'ping' ? this.pingBody : this.rootBody, TEXT);
        return;
      }
      this.tokenCheck.check(req.headers);
      if (!isGet) throw methodNotAllowed();
      if (!route) throw notFoundRoute();
      if (route.kind === 'metrics') {
        ctx.route = 'metrics';
        this.send(ctx, 200, Buffer.from(this.opts.metrics.render(this.opts.cache)), PROMETHEUS);
        return;
      }
      ctx.route = route.route;
      const query = parseQuery(q === -1 ? '' : url.slice(q + 1));
      let answer: Answer | Promise<Answer>;
      if (route.kind === 'item') {
        const { item, opts } = route.parse(query);
        ctx.name = itemName(item);
        ctx.upstream = true;
        answer = this.opts.cache.get(item, opts);
      } else {
        const c = route.parse(query);
        ctx.name =
          c.kind === 'ssm-path' ? c.path : `${c.kind === 'ssm-batch' ? c.names.length : c.ids.length} items`;
        ctx.upstream = true;
        answer = this.opts.collections.get(c);
      }
      if (answer instanceof Promise) {
        this.pending.add(res);
        answer.then(
          (a) => this.answer(ctx, a),
          (e) => this.fail(ctx, toHttpError(e)),
        );
      } else {
        this.answer(ctx, answer);
      }
    } catch (e) {
      this.fail(ctx, toHttpError(e));
    }
  }

  private answer(ctx: Ctx, a: Answer): void {
    const { req, res } = ctx;
    const late = this.pending.delete(res);
    if (res.writableEnded) return; // already answered 503 by shutdown
    // A literal, not {...JSON_HEADERS, ...}: spreading an object with these keys costs ~2 µs a request in
    // Node 20 (measured, CHANGELOG.md), a twentieth of the whole hit path.
    res.writeHead(200, {
      'Content-Type': JSON_HEADERS['Content-Type'],
      'Cache-Control': JSON_HEADERS['Cache-Control'],
      'Content-Length': a.body.length,
      'X-Pscache': a.source,
    });
    res.end(req.method === 'HEAD' ? undefined : a.body);
    if (late) this.opts.wroteLate?.(res);
    this.count(ctx, 200);
    if (this.opts.log.enabled('debug')) {
      this.opts.log.debug('request', {
        route: ctx.route,
        name: ctx.name,
        result: a.source,
        status: 200,
        ms: round(performance.now() - ctx.started),
        upstream_ms: a.upstreamMs === undefined ? undefined : round(a.upstreamMs),
      });
    }
  }

  private fail(ctx: Ctx, e: HttpError): void {
    const { req, res } = ctx;
    const late = this.pending.delete(res);
    if (res.writableEnded || res.headersSent) return;
    const body = Buffer.from(JSON.stringify({ __type: e.type, message: e.message }));
    res.writeHead(e.status, {
      ...JSON_HEADERS,
      ...e.headers,
      'Content-Length': body.length,
      ...(ctx.upstream ? { 'X-Pscache': 'miss' } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    if (late) this.opts.wroteLate?.(res);
    this.count(ctx, e.status);
    const log = this.opts.log;
    if (e instanceof InternalError) {
      // Logged once, here, with where it happened; never a value (describeInternal drops quoted text).
      log.error('internal error', { route: ctx.route, ...describeInternal(e.fault) });
    } else if (ctx.upstream && e.status >= 500) {
      log.warn('upstream request failed', { route: ctx.route, status: e.status, code: e.type });
    }
    if (log.enabled('debug')) {
      log.debug('request', {
        route: ctx.route,
        name: ctx.name,
        status: e.status,
        code: e.type,
        ms: round(performance.now() - ctx.started),
      });
    }
  }

  private send(ctx: Ctx, status: number, body: Buffer, type: string): void {
    ctx.res.writeHead(status, {
      'Content-Type': type,
      'Cache-Control': 'no-store',
      'Content-Length': body.length,
    });
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
    this.count(ctx, status);
  }

  private count(ctx: Ctx, status: number): void {
    this.stats.requests++;
    this.opts.metrics.request(ctx.route, status, (performance.now() - ctx.started) / 1000);
  }

  inFlight(): number {
    return this.pending.size;
  }

  stopAccepting(): void {
    this.closing = true;
  }

  /** Answers 503 to every request still waiting on upstream. */
  abandon(): void {
    for (const res of this.pending) {
      const ctx: Ctx = {
        req: res.req,
        res,
        started: performance.now(),
        route: 'shutdown',
        name: undefined,
        upstream: true,
      };
      this.fail(ctx, new HttpError(503, 'ShuttingDown', 'pscache is shutting down', { 'Retry-After': '1' }));
    }
    this.pending.clear();
  }
}

const methodNotAllowed = () => new HttpError(405, 'MethodNotAllowed', 'only GET and HEAD are allowed');

const round = (ms: number) => Math.round(ms * 100) / 100;
