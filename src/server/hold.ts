// The port held before the daemon exists: the Lambda lifecycle binds it before it registers and builds the
// daemon only after its first event/next (src/lambda/lifecycle.ts); the daemon's listener then takes it
// over (ListenerOptions.adopt). Its own module, so that holding the port does not load the listener.
import type { Server, Socket } from 'node:net';
import { nodeNet } from '../builtins.ts';
import { rawAnswer } from './raw-answer.ts';

/** A bound port whose connections wait, unread, for the daemon: see holdPort(). */
export interface Held {
  server: Server;
  sockets: Socket[];
  /** Set once a listener has taken it over (it then closes it with its own), or once it is released. */
  taken: boolean;
}

/**
 * Binds 127.0.0.1:port as the listener would, and holds every connection, unread, until a Listener takes
 * the port over. Undefined when the port cannot be bound: the listener then tries itself, and says why.
 */
export function holdPort(port: number): Promise<Held | undefined> {
  return new Promise((resolve) => {
    // The socket options node:http's server gives its connections, which these become once taken over: a
    // client may half-close after its request and still get the answer, and no answer waits on Nagle.
    const server = nodeNet().createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true });
    const held: Held = { server, sockets: [], taken: false };
    // Paused: nothing is read from them (nor can fail) until the listener resumes them.
    server.on('connection', (socket: Socket) => held.sockets.push(socket));
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(held));
  });
}

/** What a held connection is told when pscache stops before the daemon takes it: a shutdown's 503. */
const STOPPING = rawAnswer(
  '503 Service Unavailable',
  'ShuttingDown',
  'pscache is shutting down',
  'Retry-After: 1\r\n',
);

/** How long a held connection may take to read its 503 and close once the port is let go. */
const RELEASE_GRACE_MS = 250;

/**
 * Lets a held port go, unless a listener took it over. The connections it held are answered 503
 * ShuttingDown, as a shutdown answers what is left; resolves once they are closed (or after
 * RELEASE_GRACE_MS). What they sent is read and dropped first: a socket closed with unread bytes sends a
 * reset, which can overtake the answer.
 */
export async function release(held: Held): Promise<void> {
  if (held.taken) return;
  held.taken = true;
  held.server.close();
  const closing = held.sockets.splice(0).map(
    (socket) =>
      new Promise<void>((resolve) => {
        if (socket.destroyed) return resolve();
        const timer = setTimeout(() => socket.destroy(), RELEASE_GRACE_MS);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.on('error', () => socket.destroy());
        socket.resume();
        socket.end(STOPPING);
      }),
  );
  await Promise.all(closing);
}
