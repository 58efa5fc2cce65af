// The sockets: loopback binding (::1 late, squatting fatal), the inbound connection cap, pipelining and unread
// answers bounded, Node's HTTP edge cases answered in JSON, and shutdown with a grace period. What a request
// means is the pipeline's business.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { nodeHttp } from '../builtins.ts';
import type { Logger } from '../log.ts';
import { HTTP_VERSIONS, MAX_HEADER_BYTES } from './checks.ts';
import type { Held } from './hold.ts';
import { rawAnswer } from './raw-answer.ts';

/** Longest wait before the addresses after the first are bound, if no request comes first. */
const LATE_BIND_MS = 100;

/**
 * What the requests one read from a connection carries after the first may weigh; more and the connection
 * is closed. A request weighs one, a batch read one per item it asks for (RequestHandler.weight): three
 * pipelined batches of 100 cost the work of 300 reads, not 3.
 * A client that waits for each answer sends one request per read, a pipelining one at most its window
 * (benchmark tools use up to 16). A client that pipelines without reading fills every 64 KB read with ~1800
 * `GET /`, and Node answered each until the kernel's socket buffers were full: ~23 000 answers and ~40 MB
 * per connection. Node keeps a read's answers until the first of them is written (~3 KB each), so this also
 * bounds what a flood holds per connection. Not Node's maxRequestsPerSocket: that closes a keep-alive
 * connection after N requests however politely they came, so a function doing thousands of sequential reads
 * would have to reconnect every N.
 */
const MAX_PIPELINED = 32;
/**
 * Answers queued in pscache's memory, over all connections, for clients that do not read them: what the
 * kernel's socket buffer would not take, and pipelined answers Node holds back until the one before is
 * written. Past it, the connections that stopped reading first are closed. Well above any single answer
 * (upstream answers are capped at 8 MB): a client slow to read one big answer is never cut off for it.
 */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** A connection with less than this queued is not counted (Node's own high-water mark: it reads on below it). */
const QUEUED_FLOOR = 16 * 1024;
/** Closed connections are logged at most this often (a flood would otherwise flood the log too). */
const CUT_LOG_MS = 60_000;

/** What the listener needs from whoever answers the requests. */
export interface RequestHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** What a request pipelined behind another in one read weighs against the limit (see MAX_PIPELINED). */
  weight(req: IncomingMessage): number;
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
  /** Cap on answers left unread over all connections (MAX_QUEUED_BYTES unless given). */
  maxQueuedBytes?: number;
  log: Logger;
  /**
   * 127.0.0.1:port bound earlier by holdPort(), with the connections it held (paused) until now: taken
   * over instead of binding that address again (src/lambda/lifecycle.ts).
   */
  adopt?: Held;
}

const OVER_LIMIT = Symbol('pscache.overLimit');
/** socket.bytesRead when the last request was handed on: the same value means the same read. */
const LAST_READ = Symbol('pscache.lastRead');
const PIPELINED = Symbol('pscache.pipelined');
/** Whether the listener watches this socket's drain and close (it did once have answers queued). */
const WATCHED = Symbol('pscache.watched');
/** Answers written while queued behind an unfinished one: Node holds their bytes, not the socket. */
const HELD = Symbol('pscache.held');
/**
 * A connection taken over from a held port (ListenerOptions.adopt), not counted yet: it is counted against
 * the inbound limit at its first request. Held unread, one whose client already left looks alive until
 * read, and would count against the limit in the place of a live one.
 */
const UNCOUNTED = Symbol('pscache.uncounted');

/** Every field set when the connection opens, so all sockets keep one shape on the hit path. */
type CountedSocket = Socket & {
  [OVER_LIMIT]: boolean;
  [LAST_READ]: number;
  [PIPELINED]: number;
  [WATCHED]: boolean;
  [HELD]: ServerResponse[] | undefined;
  [UNCOUNTED]: boolean;
};

/** True when the request came on a connection beyond the inbound limit (it is answered 429). */
export const overLimit = (req: IncomingMessage): boolean =>
  (req.socket as CountedSocket)[OVER_LIMIT] === true;

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
  /** Sockets with QUEUED_FLOOR or more queued -> bytes queued when last looked; oldest backlog first. */
  private readonly backlog = new Map<CountedSocket, number>();
  private backlogBytes = 0;
  private cuts = 0;
  private lastCutLog = Number.NEGATIVE_INFINITY;
  private readonly maxQueued: number;
  /** Set while the connections of a held port are handed to the server (see UNCOUNTED). */
  private adopting = false;
  /** Whether connections were taken over from a held port (see close()). */
  private adopted = false;

  constructor(
    private readonly opts: ListenerOptions,
    private readonly handler: RequestHandler,
  ) {
    this.maxQueued = opts.maxQueuedBytes ?? MAX_QUEUED_BYTES;
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

  private async bind(host: string, required: boolean): Promise<void> {
    const server = this.makeServer();
    const adopt = host === '127.0.0.1' ? this.opts.adopt : undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        const listening = () => {
          server.off('error', reject);
          resolve();
        };
        // The bound socket itself: Node's listen(handle) takes its accepts over from here on.
        if (adopt) server.listen(adopt.server, listening);
        else server.listen({ port: this.opts.port, host, exclusive: true }, listening);
      });
      if (adopt) {
        adopt.taken = true;
        adopt.server.removeAllListeners('connection');
        this.adopted = true;
        this.adopting = true;
        try {
          for (const socket of adopt.sockets.splice(0)) {
            if (socket.destroyed) continue;
            server.emit('connection', socket);
            socket.resume();
          }
        } finally {
          this.adopting = false;
        }
      }
      if (this.closing) server.close();
      else this.servers.push(server);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const inUse = `port ${this.opts.port} on ${host} is already in use; set PARAMETERS_SECRETS_EXTENSION_HTTP_PORT to a free port`;
      if (required) {
        if (code !== 'EADDRINUSE') throw e;
        // The code stays, so a command with its own flag for the port (dev --port) can say so instead.
        throw Object.assign(new Error(inUse), { code, port: this.opts.port });
      }
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
    const socket = req.socket as CountedSocket;
    if (socket[UNCOUNTED]) this.countNow(socket);
    // Cut off earlier in this same read: Node still parses the rest of it, which goes unanswered.
    if (socket.destroyed) return;
    const read = socket.bytesRead;
    if (read !== socket[LAST_READ]) {
      socket[LAST_READ] = read;
      socket[PIPELINED] = 0;
    } else {
      socket[PIPELINED] += this.handler.weight(req);
      if (socket[PIPELINED] > MAX_PIPELINED) {
        this.cut(socket, 'pipelining flood');
        return;
      }
    }
    this.handler.handle(req, res);
    this.account(socket, res);
  };

  /** The owner calls this for each answer written after its request's own turn (after upstream). */
  wrote(res: ServerResponse): void {
    this.account(res.req.socket as CountedSocket, res);
  }

  /**
   * Counts what an answer left queued on its connection. On the hit path (one request at a time, read as
   * it comes) nothing is queued and this reads three fields.
   */
  private account(socket: CountedSocket, res: ServerResponse): void {
    if (res.socket === null && res.writableEnded) {
      const held = socket[HELD];
      if (held) held.push(res);
      else socket[HELD] = [res];
    }
    if (socket.writableNeedDrain || socket[HELD] !== undefined) this.count(socket);
  }

  /** Bytes queued on a connection: in the socket's buffer, and in answers Node still holds back. */
  private queued(socket: CountedSocket): number {
    let bytes = socket.writableLength;
    const held = socket[HELD];
    if (held) {
      let n = 0;
      // Once Node gives an answer the socket, its bytes are in the socket's buffer (or sent).
      for (const r of held) {
        if (r.socket !== null || r.writableFinished || r.destroyed) continue;
        held[n++] = r;
        bytes += r.writableLength;
      }
      held.length = n;
      if (n === 0) socket[HELD] = undefined;
    }
    return bytes;
  }

  private count(socket: CountedSocket): void {
    const bytes = this.queued(socket);
    const before = this.backlog.get(socket);
    if (bytes < QUEUED_FLOOR) {
      this.forget(socket);
      return;
    }
    if (!socket[WATCHED]) {
      // A reading client drains; what it has read is counted off then.
      socket[WATCHED] = true;
      socket.on('drain', () => this.count(socket));
      socket.once('close', () => this.forget(socket));
    }
    // Map.set keeps an existing key's place: the order stays that of the oldest backlog.
    this.backlog.set(socket, bytes);
    this.backlogBytes += bytes - (before ?? 0);
    if (this.backlogBytes > this.maxQueued) this.shed();
  }

  private forget(socket: CountedSocket): void {
    const bytes = this.backlog.get(socket);
    if (bytes === undefined) return;
    this.backlog.delete(socket);
    this.backlogBytes -= bytes;
  }

  /** Over MAX_QUEUED_BYTES: closes the connections whose clients stopped reading first. */
  private shed(): void {
    // The counts may be stale: clients read without telling (no drain below the high-water mark).
    let total = 0;
    for (const s of this.backlog.keys()) {
      const bytes = this.queued(s);
      if (bytes < QUEUED_FLOOR) {
        this.backlog.delete(s);
        continue;
      }
      this.backlog.set(s, bytes);
      total += bytes;
    }
    this.backlogBytes = total;
    for (const s of this.backlog.keys()) {
      if (this.backlogBytes <= this.maxQueued) break;
      this.cut(s, 'answers left unread');
    }
  }

  private cut(socket: CountedSocket, reason: string): void {
    this.forget(socket);
    // Node goes on parsing the rest of the read after a destroy, and keeps a request and an answer object
    // for each until the socket's close (50 flooding connections held ~200 MB). Its parser hands each
    // request to parser.onIncoming, a Node internal since 0.x: when it is there, drop them unmade.
    const parser = (socket as Socket & { parser?: { onIncoming?: unknown } }).parser;
    if (parser && typeof parser.onIncoming === 'function') parser.onIncoming = () => 0;
    socket.destroy();
    this.cuts++;
    const now = Date.now();
    if (now - this.lastCutLog >= CUT_LOG_MS) {
      this.lastCutLog = now;
      this.opts.log.warn('closed a client connection', { reason, closed_so_far: this.cuts });
    }
  }

  private makeServer(): Server {
    const server = nodeHttp().createServer(
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
      socket[UNCOUNTED] = this.adopting;
      socket[OVER_LIMIT] = false;
      if (!this.adopting) this.countNow(socket);
      socket[LAST_READ] = -1;
      socket[PIPELINED] = 0;
      socket[WATCHED] = false;
      socket[HELD] = undefined;
      socket.once('close', () => {
        if (!socket[UNCOUNTED]) this.connections--;
      });
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Malformed HTTP, oversized headers, timeouts: answer with a JSON 400 when the socket still can; a
      // request line with a version the parser does not take (HTTP/1.2, HTTP/3.0) gets 505.
      if (socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
        socket.end(
          err.code === 'HPE_HEADER_OVERFLOW'
            ? rawAnswer(
                '400 Bad Request',
                'RequestHeaderTooLarge',
                `request headers exceed ${MAX_HEADER_BYTES} bytes`,
              )
            : err.code === 'HPE_INVALID_VERSION'
              ? rawAnswer(
                  '505 HTTP Version Not Supported',
                  'HttpVersionNotSupported',
                  `this HTTP version is not supported; ${HTTP_VERSIONS}`,
                )
              : rawAnswer('400 Bad Request', 'BadRequest', 'malformed HTTP request'),
        );
      }
      socket.destroy();
    });
    return server;
  }

  /** Counts a connection against the inbound limit; beyond it, its requests are answered 429. */
  private countNow(socket: CountedSocket): void {
    socket[UNCOUNTED] = false;
    this.connections++;
    socket[OVER_LIMIT] = this.connections > this.opts.maxInboundConnections;
  }

  /** Settles once every address is bound, or found unavailable (the first request, or LATE_BIND_MS). */
  bound(): Promise<void> {
    return this.lateBound ?? Promise.resolve();
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
    // Connections taken over from a held port may not have been read yet (a stop right after the daemon
    // was built): one turn of the event loop reads their requests, which are answered (503, as they come
    // after shutdown began), rather than taken for idle connections and closed unanswered.
    if (this.adopted) await new Promise((r) => setImmediate(r));
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
