// The HTTP front: listens on loopback only, runs the request checks in SPEC.md's order, and answers
// from the cache. Check order: inbound limit (429), forwarding/Host (400), /ping and /, token (401),
// method (405), route (404), query (400).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Answer, ItemCache } from '../cache.ts';
import { HttpError, toHttpError } from '../errors.ts';
import { type ItemRequest, itemName } from '../items.ts';
import type { Logger } from '../log.ts';
import { checkOrigin, TokenCheck } from './checks.ts';
import { findRoute, notFoundRoute, parseQuery } from './routes.ts';

export const MAX_URL_LENGTH = 8192;
export const MAX_HEADER_BYTES = 16384;

export interface ServerOptions {
  port: number;
  token: string | undefined;
  maxInboundConnections: number;
  cache: ItemCache;
  log: Logger;
  version: string;
  /** Listen on these addresses; default 127.0.0.1 and ::1 (when the host has IPv6). */
  hosts?: string[];
}

export interface RequestStats {
  requests: number;
  byStatus: Map<number, number>;
}

const JSON_HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' } as const;
const OVER_LIMIT = Symbol('pscache.overLimit');

type CountedSocket = Socket & { [OVER_LIMIT]?: boolean };

export class PscacheServer {
  readonly stats: RequestStats = { requests: 0, byStatus: new Map() };
  private readonly servers: Server[] = [];
  private readonly tokenCheck: TokenCheck;
  private connections = 0;
  private readonly pending = new Set<ServerResponse>();
  private closing = false;
  private readonly pingBody = Buffer.from('healthy');
  private readonly rootBody: Buffer;

  constructor(private readonly opts: ServerOptions) {
    this.tokenCheck = new TokenCheck(opts.token);
    this.rootBody = Buffer.from(`healthy\npscache ${opts.version}\n`);
  }

  /** Binds every loopback address; fails if the IPv4 one cannot be bound. */
  async listen(): Promise<void> {
    const hosts = this.opts.hosts ?? ['127.0.0.1', '::1'];
    for (const host of hosts) {
      const server = this.makeServer();
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port: this.opts.port, host, exclusive: true }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        this.servers.push(server);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // No IPv6 on this host: 127.0.0.1 alone is fine.
        if (host === '::1' && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) continue;
        await this.close(0);
        if (code === 'EADDRINUSE') {
          throw new Error(
            `port ${this.opts.port} on ${host} is already in use; set PARAMETERS_SECRETS_EXTENSION_HTTP_PORT to a free port`,
          );
        }
        throw e;
      }
    }
  }

  private makeServer(): Server {
    const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, keepAliveTimeout: 5000 }, (req, res) =>
      this.handle(req, res),
    );
    // Slowloris: headers must arrive within 5 s, a whole request within 10 s.
    server.headersTimeout = 5000;
    server.requestTimeout = 10000;
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
    const started = performance.now();
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
      checkOrigin(req.headers);
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      const route = findRoute(path);
      const isGet = req.method === 'GET' || req.method === 'HEAD';
      if (route?.kind === 'ping' || route?.kind === 'root') {
        if (!isGet) throw methodNotAllowed();
        this.send(
          req,
          res,
          200,
          route.kind === 'ping' ? this.pingBody : this.rootBody,
          'text/plain; charset=utf-8',
        );
        return;
      }
      this.tokenCheck.check(req.headers);
      if (!isGet) throw methodNotAllowed();
      if (!route) throw notFoundRoute();
      const item = route.parse(parseQuery(q === -1 ? '' : url.slice(q + 1)));
      const answer = this.opts.cache.get(item);
      if (answer instanceof Promise) {
        this.pending.add(res);
        answer.then(
          (a) => this.answer(req, res, item, route.route, a, started),
          (e) => this.fail(req, res, toHttpError(e), item, route.route, started),
        );
      } else {
        this.answer(req, res, item, route.route, answer, started);
      }
    } catch (e) {
      this.fail(req, res, toHttpError(e), undefined, undefined, started);
    }
  }

  private answer(
    req: IncomingMessage,
    res: ServerResponse,
    item: ItemRequest,
    route: string,
    a: Answer,
    started: number,
  ): void {
    this.pending.delete(res);
    if (res.writableEnded) return; // already answered 503 by shutdown
    this.count(200);
    res.writeHead(200, {
      ...JSON_HEADERS,
      'Content-Length': a.body.length,
      'X-Pscache': a.source,
    });
    res.end(req.method === 'HEAD' ? undefined : a.body);
    if (this.opts.log.enabled('debug')) {
      this.opts.log.debug('request', {
        route,
        name: itemName(item),
        result: a.source,
        status: 200,
        ms: round(performance.now() - started),
        upstream_ms: a.upstreamMs === undefined ? undefined : round(a.upstreamMs),
      });
    }
  }

  private fail(
    req: IncomingMessage,
    res: ServerResponse,
    e: HttpError,
    item: ItemRequest | undefined,
    route: string | undefined,
    started: number,
  ): void {
    this.pending.delete(res);
    if (res.writableEnded || res.headersSent) return;
    this.count(e.status);
    const body = Buffer.from(JSON.stringify({ __type: e.type, message: e.message }));
    res.writeHead(e.status, {
      ...JSON_HEADERS,
      ...e.headers,
      'Content-Length': body.length,
      ...(item ? { 'X-Pscache': 'miss' } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    const log = this.opts.log;
    if (item && e.status >= 500) {
      log.warn('upstream request failed', { route, status: e.status, code: e.type });
    }
    if (log.enabled('debug')) {
      log.debug('request', {
        route: route ?? req.url?.split('?')[0]?.slice(0, 100),
        name: item ? itemName(item) : undefined,
        status: e.status,
        code: e.type,
        ms: round(performance.now() - started),
      });
    }
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, body: Buffer, type: string): void {
    this.count(status);
    res.writeHead(status, {
      'Content-Type': type,
      'Cache-Control': 'no-store',
      'Content-Length': body.length,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private count(status: number): void {
    this.stats.requests++;
    this.stats.byStatus.set(status, (this.stats.byStatus.get(status) ?? 0) + 1);
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to graceMs, then answers whatever is still
   * waiting (on a hanging upstream, say) with 503 and closes every connection.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.servers) s.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.pending.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const res of this.pending) {
      this.fail(
        res.req,
        res,
        new HttpError(503, 'ShuttingDown', 'pscache is shutting down', { 'Retry-After': '1' }),
        undefined,
        undefined,
        0,
      );
    }
    this.pending.clear();
    for (const s of this.servers) s.closeAllConnections();
    await closed;
  }
}

const methodNotAllowed = () => new HttpError(405, 'MethodNotAllowed', 'only GET and HEAD are allowed');

const round = (ms: number) => Math.round(ms * 100) / 100;
