// The request pipeline: every request runs these checks in this order, the first that fails answers, so an
// answer never depends on more than it must (docs/http-api.md says the same to users):
//
//   1. inbound connection limit          429 TooManyConnections  (and 503 ShuttingDown once shutdown began)
//   2. HTTP version other than 1.0, 1.1  505 HttpVersionNotSupported
//   3. URL, Host and forwarding headers  400 UriTooLong, BadHost (none in 1.1, more than one, not loopback),
//                                            ForwardedRequest
//   4. /ping, / and /ready               200 (/ready: 503 when not ready; 405 for another method), no token
//   5. token                             401 Unauthorized
//   6. method                            405 MethodNotAllowed
//   7. route                             404 NotFound
//   8. query                             400 BadRequest
//
// then the cache or the collections answer; one metrics sample and (at DEBUG) one log line per request.
// Before any of this the listener may close a connection outright: a pipelining flood, or too many answers
// left unread (see listener.ts).

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { type PartitionRule as Partition, partitionRule } from '../aws/endpoints.ts';
import type { Answer, ItemCache, ReadOptions } from '../cache/index.ts';
import { monotonicMs } from '../clock.ts';
import type { CollectionRequest, Collections } from '../collections.ts';
import { badRequest, describeInternal, HttpError, InternalError, toHttpError } from '../errors.ts';
import type { Readiness } from '../health.ts';
import { type ItemRequest, itemName, outsidePartition } from '../items.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { checkOrigin, HTTP_VERSIONS, hostHeaderCount, TokenCheck } from './checks.ts';
import { overLimit, type RequestHandler } from './listener.ts';
import { findRoute, notFoundRoute, parseQuery } from './routes.ts';

export const MAX_URL_LENGTH = 8192;

/**
 * Parsed single-item requests are kept by their URL, so a function reading the same few names over and
 * over has each URL parsed once: at most MEMO_ENTRIES URLs of at most MEMO_URL_LENGTH characters (~0.5 MB
 * at worst), all dropped when full. Only what parsed without error is kept; the checks before the query's
 * own (token, method) run on every request all the same.
 */
const MEMO_ENTRIES = 512;
const MEMO_URL_LENGTH = 1024;

/** A single-item request as parsed from its URL, kept frozen in the memo. */
interface ParsedItem {
  readonly route: string;
  readonly item: ItemRequest;
  readonly opts: ReadOptions | undefined;
  readonly name: string;
}

export interface PipelineOptions {
  token: string | undefined;
  /** Headers that carry the token; default X-Aws-Parameters-Secrets-Token only. */
  tokenHeaders?: readonly string[];
  /** Prefix of path-style secret reads; default /v1/. */
  pathPrefix?: string;
  /** The partition ARNs must be of (the configured Region's); default aws, us-east-1. */
  partition?: Partition;
  /** Only for the 429 message: the listener enforces it. */
  maxInboundConnections: number;
  cache: ItemCache;
  collections: Collections;
  metrics: Metrics;
  log: Logger;
  version: string;
  /** GET /ready: credentials and upstream reachability. Without it /ready answers ready. */
  ready?: () => Promise<Readiness>;
  /** Told of each answer written after its request's own turn (after upstream). */
  wroteLate?: (res: ServerResponse) => void;
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
  /** True once the request was handed to the cache (errors then carry X-Pscache). */
  upstream: boolean;
  /** The cache answered later, not at once: an error is then a `miss`; one thrown at once, a `hit`. */
  waited: boolean;
}

export class Pipeline implements RequestHandler {
  private readonly tokenCheck: TokenCheck;
  /** Answers waiting on upstream, so shutdown can answer them. */
  private readonly pending = new Set<ServerResponse>();
  private closing = false;
  private readonly parsed = new Map<string, ParsedItem>();
  private readonly pingBody = Buffer.from('healthy');
  private readonly rootBody: Buffer;
  private readonly partition: Partition;

  constructor(private readonly opts: PipelineOptions) {
    this.tokenCheck = new TokenCheck(opts.token, opts.tokenHeaders);
    this.partition = opts.partition ?? partitionRule('us-east-1');
    this.rootBody = Buffer.from(`healthy\npscache ${opts.version}\n`);
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const ctx: Ctx = {
      req,
      res,
      started: monotonicMs(),
      route: 'other',
      name: undefined,
      upstream: false,
      waited: false,
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
      // A URL parsed before is a single-item route whose query was valid: no route lookup, no parse.
      const known = this.parsed.get(url);
      const q = known === undefined ? url.indexOf('?') : -1;
      const route =
        known === undefined ? findRoute(q === -1 ? url : url.slice(0, q), this.opts.pathPrefix) : undefined;
      const isGet = req.method === 'GET' || req.method === 'HEAD';
      if (route?.kind === 'ping' || route?.kind === 'root') {
        ctx.route = route.kind;
        if (!isGet) throw methodNotAllowed();
        this.send(ctx, 200, route.kind === 'ping' ? this.pingBody : this.rootBody, TEXT);
        return;
      }
      if (route?.kind === 'ready') {
        ctx.route = 'ready';
        if (!isGet) throw methodNotAllowed();
        this.readiness(ctx);
        return;
      }
      this.tokenCheck.check(req.headers);
      if (!isGet) throw methodNotAllowed();
      let answer: Answer | Promise<Answer>;
      if (known !== undefined) {
        ctx.route = known.route;
        ctx.name = known.name;
        ctx.upstream = true;
        answer = this.opts.cache.get(known.item, known.opts);
      } else {
        if (!route) throw notFoundRoute();
        if (route.kind === 'metrics') {
          ctx.route = 'metrics';
          this.send(ctx, 200, Buffer.from(this.opts.metrics.render(this.opts.cache)), PROMETHEUS);
          return;
        }
        ctx.route = route.route;
        const query = parseQuery(q === -1 ? '' : url.slice(q + 1));
        if (route.kind === 'item') {
          const { item, opts } = route.parse(query);
          this.checkPartition(item);
          ctx.name = itemName(item);
          if (url.length <= MEMO_URL_LENGTH) this.remember(url, route.route, item, opts, ctx.name);
          ctx.upstream = true;
          answer = this.opts.cache.get(item, opts);
        } else {
          const c = route.parse(query);
          this.checkCollection(c);
          ctx.name =
            c.kind === 'ssm-path'
              ? c.path
              : `${c.kind === 'ssm-batch' ? c.names.length : c.ids.length} items`;
          ctx.upstream = true;
          answer = this.opts.collections.get(c);
        }
      }
      if (answer instanceof Promise) {
        ctx.waited = true;
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

  /** GET /ready: 200 when ready, else 503; the body says which part is not, in words, never a name. */
  private readiness(ctx: Ctx): void {
    const check = this.opts.ready?.() ?? Promise.resolve<Readiness>(READY);
    this.pending.add(ctx.res);
    check.then(
      (r) => {
        const late = this.pending.delete(ctx.res);
        if (ctx.res.writableEnded) return;
        this.send(ctx, r.ready ? 200 : 503, Buffer.from(JSON.stringify(r)), JSON_HEADERS['Content-Type']);
        if (late) this.opts.wroteLate?.(ctx.res);
      },
      (e) => this.fail(ctx, new InternalError(e)),
    );
  }

  /** An ARN of another partition, or naming a Region outside it, is refused before any upstream call. */
  private checkPartition(r: ItemRequest): void {
    if (r.service === 'ssm') this.checkArn(r.name, r.service, 'the parameter name');
    else this.checkArn(r.secretId, r.service, 'the secret id');
    if (r.roleArn !== undefined) this.checkArn(r.roleArn, undefined, 'query parameter roleArn');
  }

  private checkCollection(c: CollectionRequest): void {
    if (c.kind !== 'ssm-path') {
      const [service, param, ids] =
        c.kind === 'ssm-batch'
          ? (['ssm', 'parameter name', c.names] as const)
          : (['secretsmanager', 'secret id', c.ids] as const);
      for (let i = 0; i < ids.length; i++) this.checkArn(ids[i]!, service, `the ${param} (item ${i + 1})`);
    }
    if (c.roleArn !== undefined) this.checkArn(c.roleArn, undefined, 'query parameter roleArn');
  }

  private checkArn(id: string, service: ItemRequest['service'] | undefined, what: string): void {
    const why = outsidePartition(id, service, this.partition);
    if (why !== undefined) throw badRequest(`${what} ${why}`);
  }

  /**
   * One, or for a batch read one per query parameter (about one per item asked for): what it costs to
   * answer, for the listener's pipelining limit. Looked at only for requests pipelined behind another.
   */
  weight(req: IncomingMessage): number {
    const url = req.url ?? '';
    if (!url.startsWith('/secretsmanager/batch') && !url.startsWith('/systemsmanager/parameters/batch'))
      return 1;
    let n = 1;
    for (let i = url.indexOf('&'); i !== -1; i = url.indexOf('&', i + 1)) n++;
    return n;
  }

  private remember(
    url: string,
    route: string,
    item: ItemRequest,
    opts: ReadOptions | undefined,
    name: string,
  ): void {
    if (this.parsed.size >= MEMO_ENTRIES) this.parsed.clear();
    Object.freeze(item);
    if (opts) Object.freeze(opts);
    this.parsed.set(url, Object.freeze({ route, item, opts, name }));
  }

  private answer(ctx: Ctx, a: Answer): void {
    const { req, res } = ctx;
    const late = this.pending.delete(res);
    if (res.writableEnded) return; // already answered 503 by shutdown
    // A hit's answer is one object per cache entry: its headers are made once and kept on it. The same
    // object each time also keeps Node's header loop on one shape (a literal per request cost ~2 µs more
    // with a spread, ~0.3 µs without).
    let headers = a.memo as OutgoingHttpHeaders | undefined;
    if (headers === undefined) {
      headers = {
        'Content-Type': JSON_HEADERS['Content-Type'],
        'Cache-Control': JSON_HEADERS['Cache-Control'],
        'Content-Length': a.body.length,
        'X-Pscache': a.source,
      };
      if (a.source === 'hit') a.memo = headers;
    }
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : a.body);
    if (late) this.opts.wroteLate?.(res);
    this.count(ctx, 200);
    if (this.opts.log.enabled('debug')) {
      this.opts.log.debug('request', {
        route: ctx.route,
        name: ctx.name,
        result: a.source,
        status: 200,
        ms: round(monotonicMs() - ctx.started),
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
      ...(ctx.upstream ? { 'X-Pscache': ctx.waited ? 'miss' : 'hit' } : {}),
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
        ms: round(monotonicMs() - ctx.started),
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
    this.opts.metrics.request(ctx.route, status, (monotonicMs() - ctx.started) / 1000);
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
        started: monotonicMs(),
        route: 'shutdown',
        name: undefined,
        upstream: true,
        waited: true,
      };
      this.fail(ctx, new HttpError(503, 'ShuttingDown', 'pscache is shutting down', { 'Retry-After': '1' }));
    }
    this.pending.clear();
  }
}

const READY: Readiness = { ready: true, credentials: 'ok', upstream: 'unknown' };

const methodNotAllowed = () => new HttpError(405, 'MethodNotAllowed', 'only GET and HEAD are allowed');

const round = (ms: number) => Math.round(ms * 100) / 100;
