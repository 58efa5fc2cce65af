// The sockets: loopback binding (::1 late, squatting fatal), the inbound connection cap, Node's HTTP edge cases
// answered in JSON, and shutdown with a grace period. What a request means is the pipeline's business.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log.ts';

export const MAX_HEADER_BYTES = 16384;
/** Longest wait before the addresses after the first are bound, if no request comes first. */
const LATE_BIND_MS = 100;

/** What the listener needs from whoever answers the requests. */
export interface RequestHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Requests still waiting for their answer (on upstream). */
  inFlight(): number;
  /** Shutdown has begun: refuse what comes from now on. */
  stopAccepting(): void;
  /** The grace period is over: answer whatever still waits. */
  abandon(): void;
}

export interface ListenerOptions {
  port: number;
  /** Listen on these addresses; default 127.0.0.1 and ::1 (when the host has IPv6). */
  hosts?: string[];
  maxInboundConnections: number;
  log: Logger;
}

const OVER_LIMIT = Symbol('pscache.overLimit');

type CountedSocket = Socket & { [OVER_LIMIT]?: boolean };

/** True when the request came on a connection beyond the inbound limit (it is answered 429). */
export const overLimit = (req: IncomingMessage): boolean =>
  (req.socket as CountedSocket)[OVER_LIMIT] === true;

/** A whole answer written straight to a socket Node's HTTP server no longer (or never did) handle. */
function rawAnswer(status: string, type: string, message: string): string {
  const body = JSON.stringify({ __type: type, message });
  return `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

export class Listener {
  private readonly servers: Server[] = [];
  private connections = 0;
  private closing = false;
  /** Called when the server cannot go on (a loopback address taken by another process); the owner stops. */
  onFatal: (e: Error) => void = (e) => {
    throw e;
  };
  /** Binds the remaining addresses; set until they are bound (see listen). */
  private bindLate: (() => void) | undefined;
  private lateBound: Promise<void> | undefined;

  constructor(
    private readonly opts: ListenerOptions,
    private readonly handler: RequestHandler,
  ) {}

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

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.bindLate) setImmediate(this.bindLate);
    this.handler.handle(req, res);
  };

  private makeServer(): Server {
    const server = createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        keepAliveTimeout: 5000,
        // Node enforces headersTimeout/requestTimeout only when it checks, every 30 s by default.
        connectionsCheckingInterval: 1000,
        // A missing Host gets our JSON 400 (the pipeline), not Node's bare one.
        requireHostHeader: false,
      },
      this.onRequest,
    );
    // Slowloris: headers must arrive within 5 s, a whole request within 10 s.
    server.headersTimeout = 5000;
    server.requestTimeout = 10000;
    // A client that half-closes after its request still gets the answer (Node would drop pending ones).
    (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    // Expect: answer with the final status at once. Never Node's bare 417, nor a 100 Continue: no route
    // reads a body, and Node writes that interim answer into the middle of pipelined responses.
    server.on('checkContinue', this.onRequest);
    server.on('checkExpectation', this.onRequest);
    // CONNECT never reaches the request handler: answer it 405 like any other method.
    server.on('connect', (_req, socket: Socket) => {
      socket.on('error', () => {});
      // Destroyed once written: Node hands the socket over paused, so a peer's close would go unseen.
      socket.end(
        rawAnswer('405 Method Not Allowed', 'MethodNotAllowed', 'only GET and HEAD are allowed'),
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
        socket.end(
          rawAnswer(
            '400 Bad Request',
            tooBig ? 'RequestHeaderTooLarge' : 'BadRequest',
            tooBig ? `request headers exceed ${MAX_HEADER_BYTES} bytes` : 'malformed HTTP request',
          ),
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

  /**
   * Stops accepting, lets in-flight requests finish for up to graceMs, then has the handler answer whatever
   * is still waiting (on a hanging upstream, say) and closes every connection.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.handler.stopAccepting();
    this.bindLate?.();
    await this.lateBound;
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.servers) s.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.handler.inFlight() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    this.handler.abandon();
    for (const s of this.servers) s.closeAllConnections();
    await closed;
  }
}
