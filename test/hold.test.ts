// The port held before the Lambda lifecycle builds the daemon (src/server/hold.ts): its connections are
// the daemon's once taken over, so they are made as node:http's server makes its own; let go unused, they
// are answered 503 ShuttingDown, as a shutdown answers what is left.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { holdPort, release } from '../src/server/hold.ts';
import { freePort, until } from './helpers/daemon.ts';

/** Connects, sends `request` (if any), and resolves with every byte received until the server closes. */
function client(
  port: number,
  request: string | undefined,
): { socket: Promise<Socket>; got: Promise<string> } {
  let got = '';
  const c = connect(port, '127.0.0.1');
  const socket = new Promise<Socket>((resolve, reject) => {
    c.once('connect', () => {
      if (request !== undefined) c.write(request);
      resolve(c);
    });
    c.once('error', reject);
  });
  c.on('data', (d) => {
    got += d.toString('latin1');
  });
  return { socket, got: new Promise((resolve) => c.on('close', () => resolve(got))) };
}

describe('holdPort', () => {
  test("its connections get the socket options node:http's server gives its own", async () => {
    const held = await holdPort(await freePort());
    assert.ok(held);
    const http = createHttpServer();
    try {
      for (const option of [
        'allowHalfOpen',
        'noDelay',
        'keepAlive',
        'keepAliveInitialDelay',
        'highWaterMark',
      ]) {
        const get = (s: object) => (s as Record<string, unknown>)[option];
        assert.equal(get(held.server), get(http), option);
      }
    } finally {
      await release(held);
    }
  });

  test('a port it cannot bind: undefined, so that the listener tries and says why', async () => {
    const taken = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      assert.equal(await holdPort(port), undefined);
    } finally {
      taken.close();
    }
  });

  test('released unused: each connection held is answered 503 ShuttingDown and closed; the port is let go', async () => {
    const port = await freePort();
    const held = await holdPort(port);
    assert.ok(held);
    const asked = client(
      port,
      'GET /systemsmanager/parameters/get?name=a HTTP/1.1\r\nHost: localhost\r\n\r\n',
    );
    const silent = client(port, undefined);
    await Promise.all([asked.socket, silent.socket]);
    await until(() => held.sockets.length === 2, 'both connections held');
    await release(held);
    for (const got of [await asked.got, await silent.got]) {
      assert.match(got, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(got, /\r\nRetry-After: 1\r\n/);
      const body = got.slice(got.indexOf('\r\n\r\n') + 4);
      assert.deepEqual(JSON.parse(body), { __type: 'ShuttingDown', message: 'pscache is shutting down' });
    }
    assert.equal(held.sockets.length, 0);
    // Let go: the port can be bound again.
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(port, '127.0.0.1', resolve);
    });
    again.close();
    // Once released (or taken over), releasing again does nothing.
    await release(held);
  });
});
