// The port held before the daemon exists: the Lambda lifecycle binds it before it registers and builds the
// daemon only after its first event/next (src/lambda/lifecycle.ts); the daemon's listener then takes it
// over (ListenerOptions.adopt). Its own module, so that holding the port does not load the listener.
import type { Server, Socket } from 'node:net';
import { nodeNet } from '../builtins.ts';

/** A bound port whose connections wait, unread, for the daemon: see holdPort(). */
export interface Held {
  server: Server;
  sockets: Socket[];
  /** Set once a listener has taken it over (it then closes it with its own). */
  taken: boolean;
}

/**
 * Binds 127.0.0.1:port as the listener would, and holds every connection, unread, until a Listener takes
 * the port over. Undefined when the port cannot be bound: the listener then tries itself, and says why.
 */
export function holdPort(port: number): Promise<Held | undefined> {
  return new Promise((resolve) => {
    const server = nodeNet().createServer({ pauseOnConnect: true });
    const held: Held = { server, sockets: [], taken: false };
    // Paused: nothing is read from them (nor can fail) until the listener resumes them.
    server.on('connection', (socket: Socket) => held.sockets.push(socket));
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(held));
  });
}

/** Lets a held port go, and the connections it held, unless a listener took it over. */
export function release(held: Held): void {
  if (held.taken) return;
  held.server.close();
  for (const socket of held.sockets.splice(0)) socket.destroy();
}
