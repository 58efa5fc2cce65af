// The HTTP front: listens on loopback only, runs the request checks in the order docs/http-api.md gives, and answers
// from the cache. Check order: inbound limit (429), forwarding/Host (400), /ping and /, token (401),
// method (405), route (404), query (400).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Answer, ItemCache } from '../cache/index.ts';
import type { Collections } from '../collections.ts';
import { describeInternal, HttpError, InternalError, toHttpError } from '../errors.ts';
import { itemName } from '../items.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { checkOrigin, TokenCheck } from './checks.ts';
import { findRoute, notFoundRoute, parseQuery } from './routes.ts';

export const MAX_URL_LENGTH = 8192;
/** Longest wait before the addresses after the first are bound, if no request comes first. */
const LATE_BIND_MS = 100;
export const MAX_HEADER_BYTES = 16384;

export interface ServerOptions {
  port: number;
  token: string | undefined;
  /** Headers that carry the token; default X-Aws-Parameters-Secrets-Token only. */
  tokenHeaders?: readonly string[];
  /** Prefix of path-style secret reads; default /v1/. */
  pathPrefix?: string;
  maxInboundConnections: number;
  cache: ItemCache;
  collections: Collections;
  metrics: Metrics;
  log: Logger;
  version: string;
  /** Listen on these addresses; default 127.0.0.1 and ::1 (when the host has IPv6). */
  hosts?: string[];
}

export interface RequestStats {
  requests: number;
}

const JSON_HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' } as const;
const TEXT = 'text/plain; charset=utf-8';
const PROMETHEUS = 'text/plain; version=0.0.4; charset=utf-8';

/** One request on its way through the server. */
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
const OVER_LIMIT = Symbol('pscache.overLimit');

type CountedSocket = Socket & { [OVER_LIMIT]?: boolean };

export class PscacheServer {
  readonly stats: RequestStats = { requests: 0 };
  private readonly servers: Server[] = [];
  private readonly tokenCheck: TokenCheck;
  private connections = 0;
  private readonly pending = new Set<ServerResponse>();
  private closing = false;
  private readonly pingBody = Buffer.from('healthy');
  /** Called when the server cannot go on (a loopback address taken by another process); the owner stops. */
  onFatal: (e: Error) => void = (e) => {
    throw e;
  };
  /** Binds the remaining addresses; set until they are bound (see listen). */
  private bindLate: (() => void) | undefined;
  private lateBound: Promise<void> | undefined;
  private readonly rootBody: Buffer;

  constructor(private readonly opts: ServerOptions) {
    this.tokenCheck = new TokenCheck(opts.token, opts.tokenHeaders);
    this.rootBody = Buffer.from(`healthy\npscache ${opts.version}\n`);
  }

  /**
   * Binds the first loopback address (127.0.0.1) and resolves: from then on requests are served. The other
   * addresses (::1) are bound right after the first request is answered, or after LATE_BIND_MS: Node's
   * first IPv6 address check costs ~7 ms of start-up (measured), and clients that resolve localhost to ::1
   * first fall back to 127.0.0.1 meanwhile.
   */
  async listen(): Promise<void> {
    const [first, ...rest] = this.opts.hosts ?? ['127.0.0.1', '::1'];
    await this.bind(first!, true);
    if (rest.length === 0) return;
    this.lateBound = new Promise<void>((resolve) => {
      let started = false;
      const timer = setTimeout(() => this.bindLate?.(), LATE_BIND_MS);
      this.bindLate = () => {
        if (started) return;
        started = true;
        this.bindLate = undefined;
        clearTimeout(timer);
        if (this.closing) return resolve();
        Promise.all(rest.map((h) => this.bind(h, false))).then(() => resolve());
      };
    });
  }

  /** Settles once every address is bound (or given up on). */
  whenAllBound(): Promise<void> {
    this.bindLate?.();
    return this.lateBound ?? Promise.resolve();
  }

  private async bind(host: string, required: boolean): Promise<void> {
    const server = this.makeServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: this.opts.port, host, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      if (this.closing) server.close();
      else this.servers.push(server);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const inUse = `port ${this.opts.port} on ${host} is already in use; set PARAMETERS_SECRETS_EXTENSION_HTTP_PORT to a free port`;
      if (required) throw code === 'EADDRINUSE' ? new Error(inUse) : e;
      // No IPv6 on this host: 127.0.0.1 alone is fine.
      if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') return;
      if (code === 'EADDRINUSE') {
        // Someone else holds [::1]:port: clients that try ::1 first for "localhost" would hand them the
        // token. Stop rather than serve half the addresses.
        this.onFatal(new Error(inUse));
        return;
      }
      this.opts.log.warn(`could not listen on ${host}`, { code });
    }
  }

  private makeServer(): Server {
    const server = createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        keepAliveTimeout: 5000,
        // Node enforces headersTimeout/requestTimeout only when it checks, every 30 s by default.
        connectionsCheckingInterval: 1000,
        // A missing Host gets our JSON 400 (handle), not Node's bare one.
        requireHostHeader: false,
      },
      (req, res) => this.handle(req, res),
    );
    // Slowloris: headers must arrive within 5 s, a whole request within 10 s.
    server.headersTimeout = 5000;
    server.requestTimeout = 10000;
    // A client that half-closes after its request still gets the answer (Node would drop pending ones).
    (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    // Expect: answer with the final status at once. Never Node's bare 417, nor a 100 Continue: no route
    // reads a body, and Node writes that interim answer into the middle of pipelined responses.
    server.on('checkContinue', (req, res) => this.handle(req, res));
    server.on('checkExpectation', (req, res) => this.handle(req, res));
    // CONNECT never reaches the request handler: answer it 405 like any other method.
    server.on('connect', (_req, socket: Socket) => {
      const body = JSON.stringify({ __type: 'MethodNotAllowed', message: 'only GET and HEAD are allowed' });
      socket.on('error', () => {});
      // Destroyed once written: Node hands the socket over paused, so a peer's close would go unseen.
      socket.end(
        `HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        () => socket.destroy(),
      );
    });
    server.on('connection', (socket: CountedSocket) => {
      this.connections++;
      if (this.connections > this.opts.maxInboundConnections) socket[OVER_LIMIT] = true;
      socket.once('close', () => {
        this.connections--;
      });
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Malformed HTTP, oversized headers, timeouts: answer with a JSON 400 when the socket still can.
      if (socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
        const tooBig = err.code === 'HPE_HEADER_OVERFLOW';
        const body = JSON.stringify({
          __type: tooBig ? 'RequestHeaderTooLarge' : 'BadRequest',
          message: tooBig ? `request headers exceed ${MAX_HEADER_BYTES} bytes` : 'malformed HTTP request',
        });
        socket.end(
          `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      }
      socket.destroy();
    });
    return server;
  }

  get addresses(): string[] {
    return this.servers.map((s) => {
      const a = s.address();
      return typeof a === 'object' && a
        ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
        : '';
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.bindLate) setImmediate(this.bindLate);
    const ctx: Ctx = {
      req,
      res,
      started: performance.now(),
      route: 'other',
      name: undefined,
      upstream: false,
    };
    try {
      if ((req.socket as CountedSocket)[OVER_LIMIT]) {
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
      const url = req.url ?? '/';
      if (url.length > MAX_URL_LENGTH)
        throw new HttpError(400, 'UriTooLong', `URL longer than ${MAX_URL_LENGTH}`);
      if (req.headers.host === undefined && req.httpVersionMinor >= 1) {
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
    this.pending.delete(res);
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
    this.pending.delete(res);
    if (res.writableEnded || res.headersSent) return;
    const body = Buffer.from(JSON.stringify({ __type: e.type, message: e.message }));
    res.writeHead(e.status, {
      ...JSON_HEADERS,
      ...e.headers,
      'Content-Length': body.length,
      ...(ctx.upstream ? { 'X-Pscache': 'miss' } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
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

  /**
   * Stops accepting, lets in-flight requests finish for up to graceMs, then answers whatever is still
   * waiting (on a hanging upstream, say) with 503 and closes every connection.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.bindLate?.();
    await this.lateBound;
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.servers) s.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.pending.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
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
    for (const s of this.servers) s.closeAllConnections();
    await closed;
  }
}

const methodNotAllowed = () => new HttpError(405, 'MethodNotAllowed', 'only GET and HEAD are allowed');

const round = (ms: number) => Math.round(ms * 100) / 100;
