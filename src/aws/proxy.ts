// A CONNECT tunnel through an HTTP(S) proxy to an AWS endpoint, as a stream the TLS socket runs over. The
// stream exists at once (the socket pool counts it as any other socket) and holds what TLS writes until the
// proxy has answered 200. Loaded only when HTTPS_PROXY or HTTP_PROXY is set.
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { type SecureContext, connect as tlsConnect } from 'node:tls';
import { explainCertificate, type NetworkConfig, type ProxyUrl } from './network.ts';

/** The proxy's answer to CONNECT is a status line and headers: a few hundred bytes, never this many. */
const MAX_ANSWER_BYTES = 16 * 1024;

/** An error from the proxy leg, with the code the client decides retries on. Never holds the credentials. */
export function proxyError(code: string, message: string): NodeJS.ErrnoException {
  const e = new Error(message) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

export interface TunnelOptions {
  proxy: ProxyUrl;
  /** The endpoint, as `host:port` goes in the CONNECT line. */
  host: string;
  port: number;
  /** For a TLS connection to an https:// proxy: Node's roots plus AWS_CA_BUNDLE. */
  secureContext: SecureContext | undefined;
  /** For the message when the proxy's own certificate is not trusted. */
  caBundle: NetworkConfig['caBundle'];
  /** No CONNECT answer within this long: ETIMEDOUT. */
  timeoutMs: number;
}

/**
 * A Duplex that is the byte stream to `host:port` through the proxy. Writes wait until the proxy said 200;
 * any other answer, a timeout or a failure to reach the proxy destroys it with an error naming the proxy.
 */
export function tunnel(o: TunnelOptions): Duplex {
  const { proxy } = o;
  const authority = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  let raw: Socket;
  let open = false;
  const held: Array<[Buffer, (e?: Error | null) => void]> = [];
  const stream = new Duplex({
    write(chunk: Buffer, _encoding, done) {
      if (open) raw.write(chunk, done);
      else held.push([chunk, done]);
    },
    read() {
      if (open) raw.resume();
    },
    final(done) {
      if (open) raw.end();
      done();
    },
    destroy(err, done) {
      raw.destroy();
      done(err);
    },
  });
  const fail = (e: NodeJS.ErrnoException) => {
    if (!stream.destroyed) stream.destroy(e);
  };
  raw =
    proxy.protocol === 'https:'
      ? tlsConnect({
          host: proxy.hostname,
          port: proxy.port,
          ...(isIP(proxy.hostname) === 0 ? { servername: proxy.hostname } : {}),
          ...(o.secureContext ? { secureContext: o.secureContext } : {}),
        })
      : netConnect({ host: proxy.hostname, port: proxy.port });
  raw.setTimeout(o.timeoutMs, () =>
    fail(proxyError('ETIMEDOUT', `the proxy ${proxy.shown} did not answer CONNECT within ${o.timeoutMs} ms`)),
  );
  raw.on('error', (e: NodeJS.ErrnoException) => {
    if (!open) {
      // The proxy leg: the error is the proxy's, whatever the endpoint (its certificate, if https).
      explainCertificate(e, `the proxy ${proxy.shown}`, o.caBundle);
      if (!e.message.includes(proxy.shown)) e.message = `the proxy ${proxy.shown}: ${e.message}`;
    }
    fail(e);
  });
  raw.once('close', () => {
    if (!open) {
      fail(
        proxyError('ECONNRESET', `the proxy ${proxy.shown} closed the connection before answering CONNECT`),
      );
    } else if (!stream.destroyed) {
      stream.push(null);
      stream.destroy();
    }
  });
  raw.once(proxy.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
    const auth = proxy.authorization ? `Proxy-Authorization: ${proxy.authorization}\r\n` : '';
    raw.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
  });
  let answer = Buffer.alloc(0);
  const onAnswer = (chunk: Buffer) => {
    answer = Buffer.concat([answer, chunk]);
    const end = answer.indexOf('\r\n\r\n');
    if (end === -1) {
      if (answer.length > MAX_ANSWER_BYTES) {
        fail(
          proxyError('ProxyConnectFailed', `the proxy ${proxy.shown} sent an oversized answer to CONNECT`),
        );
      }
      return;
    }
    raw.removeListener('data', onAnswer);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(answer.toString('latin1', 0, Math.min(end, 64)));
    const code = status ? Number(status[1]) : 0;
    if (code !== 200) {
      const why =
        code === 407
          ? proxy.authorization
            ? ': it refused the user name and password in the URL'
            : ': it wants a user name and password (http://user:password@host:port)'
          : code === 0
            ? ': that is not an HTTP answer'
            : '';
      fail(
        proxyError(
          // The proxy could not reach the endpoint just now: worth another attempt, unlike a refusal.
          code === 502 || code === 503 || code === 504 ? 'ProxyUnavailable' : 'ProxyConnectFailed',
          `the proxy ${proxy.shown} answered ${code || 'garbage'} to CONNECT ${authority}${why}`,
        ),
      );
      return;
    }
    open = true;
    raw.setTimeout(0);
    const rest = answer.subarray(end + 4);
    if (rest.length > 0) stream.push(rest);
    raw.on('data', (c: Buffer) => {
      if (!stream.push(c)) raw.pause();
    });
    for (const [chunk, done] of held.splice(0)) raw.write(chunk, done);
  };
  raw.on('data', onAnswer);
  return stream;
}
