// A real loopback HTTP relay between the daemon and the emulator that can hold chosen answers back and
// release them later, in any order: an upstream answer that is slow on its way back (the value was read
// upstream early, the answer arrives late), which the emulator's latency faults (applied before the read)
// cannot produce.
import { createServer, request, type Server } from 'node:http';
import type { Socket } from 'node:net';

interface Held {
  what: string;
  release(): void;
}

export interface HoldingRelay {
  /** The URL to give the daemon as AWS_ENDPOINT_URL. */
  url: string;
  /** Holds the answer to the next request whose body contains `marker`. */
  holdNext(marker: string): void;
  /** Answers held so far and not released. */
  readonly held: Held[];
  /** Releases the oldest held answer. */
  releaseOne(): void;
  close(): Promise<void>;
}

export function startHoldingRelay(target: string): Promise<HoldingRelay> {
  const to = new URL(target);
  const markers: string[] = [];
  const held: Held[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const text = body.toString();
      const i = markers.findIndex((m) => text.includes(m));
      const hold = i !== -1;
      if (hold) markers.splice(i, 1);
      const up = request(
        {
          host: to.hostname,
          port: to.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
          agent: false,
        },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (c: Buffer) => parts.push(c));
          answer.on('end', () => {
            const send = () => {
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              res.end(Buffer.concat(parts));
            };
            if (hold) held.push({ what: text, release: send });
            else send();
          });
        },
      );
      up.on('error', () => req.socket.destroy());
      up.end(body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}`,
        holdNext: (marker) => markers.push(marker),
        held,
        releaseOne: () => held.shift()?.release(),
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
