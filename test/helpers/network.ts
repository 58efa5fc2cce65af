// The corporate network in miniature, on loopback: a private CA made with openssl, a TLS front (an https
// server with that CA's certificate) relaying to the emulator, and a forward proxy that speaks CONNECT and
// absolute-form HTTP, records what it was asked and sends every host to a port of the test's choosing.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './temp.ts';

export interface PrivateCa {
  dir: string;
  /** The CA's certificate (what AWS_CA_BUNDLE points to). */
  caFile: string;
  /** A server key and certificate signed by the CA, for `names` (DNS) and 127.0.0.1. */
  key: Buffer;
  cert: Buffer;
  remove(): void;
}

/** A throw-away CA and one server certificate it signed; openssl runs in a `pscache-ca-` temp directory. */
export function makePrivateCa(names: string[]): PrivateCa {
  const dir = tempDir('ca');
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = ['-newkey', 'rsa:2048', '-nodes'];
  run([
    'req',
    '-x509',
    ...key,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=pscache test CA',
  ]);
  run([
    'req',
    '-new',
    ...key,
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=pscache test server',
  ]);
  writeFileSync(
    join(dir, 'ext.cnf'),
    `subjectAltName=${[...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',')}\n`,
  );
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  ]);
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'server.key')),
    cert: readFileSync(join(dir, 'server.pem')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Sends one request on to `target` (an http:// URL) and its answer back. */
function relay(target: URL, req: IncomingMessage, res: ServerResponse, path = req.url ?? '/'): void {
  const up = request(
    {
      host: target.hostname,
      port: target.port,
      path,
      method: req.method,
      headers: req.headers,
      agent: false,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  req.pipe(up);
}

export interface Front {
  url: string;
  port: number;
  /** Requests it relayed. */
  readonly requests: number;
  close(): Promise<void>;
}

/** An https server with the CA's certificate that relays every request to `target` (the emulator). */
export async function startTlsFront(ca: PrivateCa, target: string): Promise<Front> {
  const to = new URL(target);
  let requests = 0;
  const server = createHttpsServer({ key: ca.key, cert: ca.cert }, (req, res) => {
    requests++;
    relay(to, req, res);
  });
  const port = await listen(server);
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests;
    },
    close: () => close(server),
  };
}

export interface ProxyCall {
  /** `CONNECT` or the method of an absolute-form request. */
  method: string;
  /** `host:port` for CONNECT, the absolute URL otherwise. */
  target: string;
  authorization: string | undefined;
}

export interface ForwardProxy {
  url: string;
  port: number;
  readonly calls: ProxyCall[];
  close(): Promise<void>;
}

export interface ProxyOptions {
  /** Where a CONNECT to `host:port` really goes: the port of the TLS front, whatever the name. */
  connectTo: (authority: string) => number;
  /** Where an absolute-form request really goes (an http:// URL, the emulator). */
  forwardTo?: string;
  /** `user:password` the proxy demands (407 without it). */
  credentials?: string;
}

/** A forward proxy on loopback: CONNECT tunnels and absolute-form requests, every call recorded. */
export async function startForwardProxy(opts: ProxyOptions): Promise<ForwardProxy> {
  const calls: ProxyCall[] = [];
  const sockets = new Set<Socket>();
  const expected = opts.credentials ? `Basic ${Buffer.from(opts.credentials).toString('base64')}` : undefined;
  const allowed = (req: IncomingMessage) =>
    expected === undefined || req.headers['proxy-authorization'] === expected;
  const server = createServer((req, res) => {
    calls.push({
      method: req.method ?? '',
      target: req.url ?? '',
      authorization: req.headers['proxy-authorization'],
    });
    if (!allowed(req)) {
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="test"' });
      res.end();
      return;
    }
    if (!opts.forwardTo || !/^http:\/\//.test(req.url ?? '')) {
      res.writeHead(400);
      res.end();
      return;
    }
    const url = new URL(req.url!);
    relay(new URL(opts.forwardTo), req, res, `${url.pathname}${url.search}`);
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    calls.push({
      method: 'CONNECT',
      target: req.url ?? '',
      authorization: req.headers['proxy-authorization'],
    });
    client.on('error', () => {});
    if (!allowed(req)) {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n',
      );
      return;
    }
    const upstream = connect(opts.connectTo(req.url ?? ''), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    calls,
    close: async () => {
      for (const s of sockets) s.destroy();
      await close(server);
    },
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
