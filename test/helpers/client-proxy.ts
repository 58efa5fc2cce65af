// A real loopback HTTP server in front of the daemon that answers the next N requests with a fault (a
// status, a dropped connection, or silence) and forwards the rest, so client retries can be tested where
// the daemon itself would retry upstream and succeed.
import { createServer, request, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** A status to answer with (optionally with Retry-After), `reset` (close without an answer), or `hang`. */
export type Fault = { status: number; retryAfter?: string } | 'reset' | 'hang';

export interface FaultProxy {
  port: number;
  /** Every request target received, faulted or forwarded, in order. */
  readonly requests: string[];
  /** Queues faults for the next requests (one each). */
  fail(...faults: Fault[]): void;
  /** Faults every request from now on. */
  failAlways(fault: Fault): void;
  close(): Promise<void>;
}

/** Listens on `port` (0: any free port) and forwards to the daemon on `target`. */
export function startFaultProxy(target: number, port = 0): Promise<FaultProxy> {
  const queue: Fault[] = [];
  let always: Fault | undefined;
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const fault = queue.shift() ?? always;
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === 'hang') return; // the socket is destroyed on close()
    if (fault !== undefined) {
      const body = JSON.stringify({
        __type: `Injected${fault.status}`,
        message: 'fault injected by the test proxy',
      });
      res.writeHead(fault.status, {
        'Content-Type': 'application/json',
        ...(fault.retryAfter !== undefined ? { 'Retry-After': fault.retryAfter } : {}),
      });
      res.end(body);
      return;
    }
    const upstream = request(
      {
        host: '127.0.0.1',
        port: target,
        path: req.url,
        method: req.method,
        headers: req.headers,
        agent: false,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      resolve({
        port: typeof a === 'object' && a ? a.port : 0,
        requests,
        fail: (...faults) => queue.push(...faults),
        failAlways: (fault) => {
          always = fault;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
