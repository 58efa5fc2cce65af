// The few HTTP/1.1 exchanges the Lambda Extensions API needs, over a plain node:net socket: one request
// per connection (`Connection: close`), the answer read to its end by its framing (Content-Length, chunked,
// or the connection's close). Not node:http's client: its first request (agent, ClientRequest, the parser)
// costs ~5 ms of every cold start, before the first event/next, and the Extensions API needs none of it
// (docs/benchmarks.md, "Fifth pass").
import type { Socket } from 'node:net';
import { nodeNet } from '../builtins.ts';

export interface Answer {
  status: number;
  /** Lower-cased names; the first value of a repeated header. */
  headers: Record<string, string>;
  body: Buffer;
}

export interface Exchange {
  host: string;
  port: number;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** The largest body accepted (decoded); a larger one is refused as garbage. */
  maxBody: number;
  /** 0: wait as long as it takes (event/next blocks until the next event). */
  timeoutMs: number;
  /** Called with the socket once it exists, and with undefined once it is closed: for close(). */
  track?: (socket: Socket, open: boolean) => void;
  /** Called once the request's bytes are handed to the kernel. */
  onSent?: () => void;
}

/** `garbage`: bytes that are not an HTTP answer, or one too large; `network`: no complete answer came. */
export class WireError extends Error {
  constructor(
    message: string,
    readonly kind: 'garbage' | 'network',
  ) {
    super(message);
    this.name = 'WireError';
  }
}

/** The most a status line and headers may take; the Runtime API's are a few hundred bytes. */
const MAX_HEAD_BYTES = 16 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What a header value may hold: visible ASCII, spaces, tabs and obs-text; never CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const HTTP_PREFIX = Buffer.from('HTTP/1.', 'latin1');

/** The request's bytes. Throws (a plain Error: our bug or our caller's input) on a header that would split. */
export function requestBytes(
  x: Pick<Exchange, 'host' | 'port' | 'method' | 'path' | 'headers' | 'body'>,
): Buffer {
  const host = x.host.includes(':') ? `[${x.host}]` : x.host;
  let head = `${x.method} ${x.path} HTTP/1.1\r\nHost: ${host}:${x.port}\r\nConnection: close\r\n`;
  for (const [name, value] of Object.entries(x.headers)) {
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      throw new Error(
        `header ${JSON.stringify(name.slice(0, 60))} cannot be sent: it holds characters HTTP does not allow`,
      );
    }
    head += `${name}: ${value}\r\n`;
  }
  if (x.body) head += `Content-Type: application/json\r\nContent-Length: ${x.body.length}\r\n`;
  head += '\r\n';
  const bytes = Buffer.from(head, 'latin1');
  return x.body ? Buffer.concat([bytes, x.body]) : bytes;
}

/**
 * Reads an answer from the bytes received so far. Returns it once complete, undefined while more bytes
 * are needed (`ended`: the connection closed, so nothing more comes); throws WireError on bytes that are
 * not HTTP/1.x, or on a body over `maxBody`.
 */
export function parseAnswer(data: Buffer, ended: boolean, maxBody: number): Answer | undefined {
  let at = 0;
  for (;;) {
    const prefix = data.subarray(at, at + HTTP_PREFIX.length);
    if (!HTTP_PREFIX.subarray(0, prefix.length).equals(prefix))
      throw new WireError('the answer is not HTTP', 'garbage');
    const end = data.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) {
      if (data.length - at > MAX_HEAD_BYTES) throw new WireError('the answer is not HTTP', 'garbage');
      if (ended)
        throw new WireError(at === data.length ? 'socket hang up' : 'the answer ended early', 'network');
      return undefined;
    }
    if (end - at > MAX_HEAD_BYTES) throw new WireError('the answer is not HTTP', 'garbage');
    const lines = data.toString('latin1', at, end).split('\r\n');
    const status = /^HTTP\/1\.[01] ([1-5]\d\d)(?: [^\r\n]*)?$/.exec(lines[0]!);
    if (!status) throw new WireError('the answer is not HTTP', 'garbage');
    const headers: Record<string, string> = {};
    const lengths = new Set<string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      if (colon <= 0 || !TOKEN.test(name)) throw new WireError('the answer is not HTTP', 'garbage');
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') lengths.add(value);
      if (!(name in headers)) headers[name] = value;
    }
    const code = Number(status[1]);
    at = end + 4;
    // An interim answer (100 Continue, 103 Early Hints): the real one follows.
    if (code >= 100 && code < 200 && code !== 101) continue;
    if (code === 101) throw new WireError('the answer is not HTTP', 'garbage');
    const rest = data.subarray(at);
    if (code === 204 || code === 304) return { status: code, headers, body: Buffer.alloc(0) };
    const te = headers['transfer-encoding'];
    if (te !== undefined) {
      if (/(?:^|,)\s*chunked\s*$/i.test(te)) {
        const body = dechunk(rest, maxBody);
        if (body) return { status: code, headers, body };
        if (ended) throw new WireError('the answer ended early', 'network');
        return undefined;
      }
    } else if (lengths.size > 0) {
      const length = lengths.size === 1 ? [...lengths][0]! : '';
      if (!/^\d{1,15}$/.test(length)) throw new WireError('the answer is not HTTP', 'garbage');
      const n = Number(length);
      if (n > maxBody) throw new WireError(`answer larger than ${maxBody} bytes`, 'garbage');
      if (rest.length >= n) return { status: code, headers, body: Buffer.from(rest.subarray(0, n)) };
      if (ended) throw new WireError('the answer ended early', 'network');
      return undefined;
    }
    // No length: the body is what comes until the connection closes.
    if (rest.length > maxBody) throw new WireError(`answer larger than ${maxBody} bytes`, 'garbage');
    return ended ? { status: code, headers, body: Buffer.from(rest) } : undefined;
  }
}

/** A chunked body, once its last chunk and trailers are in; undefined while incomplete. */
function dechunk(data: Buffer, maxBody: number): Buffer | undefined {
  const parts: Buffer[] = [];
  let size = 0;
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at, 'latin1');
    if (eol < 0) {
      if (data.length - at > 1024) throw new WireError('the answer is not HTTP', 'garbage');
      return undefined;
    }
    const m = /^([0-9a-fA-F]{1,8})[ \t]*(?:;[^\r\n]*)?$/.exec(data.toString('latin1', at, eol));
    if (!m) throw new WireError('the answer is not HTTP', 'garbage');
    const n = Number.parseInt(m[1]!, 16);
    at = eol + 2;
    if (n === 0) {
      // Trailers, if any, up to an empty line.
      for (;;) {
        const t = data.indexOf('\r\n', at, 'latin1');
        if (t < 0) return undefined;
        if (t === at) return Buffer.concat(parts, size);
        at = t + 2;
      }
    }
    size += n;
    if (size > maxBody) throw new WireError(`answer larger than ${maxBody} bytes`, 'garbage');
    if (data.length < at + n + 2) return undefined;
    if (data[at + n] !== 13 || data[at + n + 1] !== 10)
      throw new WireError('the answer is not HTTP', 'garbage');
    parts.push(data.subarray(at, at + n));
    at += n + 2;
  }
}

/** Sends one request on a fresh connection and reads its answer. Rejects with WireError only. */
export function exchange(x: Exchange): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let bytes: Buffer;
    try {
      bytes = requestBytes(x);
    } catch (e) {
      reject(e);
      return;
    }
    const socket = nodeNet().connect({ host: x.host, port: x.port, noDelay: true });
    x.track?.(socket, true);
    let data: Buffer = Buffer.alloc(0);
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (e: Error | undefined, a?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (e) reject(e);
      else resolve(a!);
    };
    const read = (ended: boolean) => {
      try {
        const a = parseAnswer(data, ended, x.maxBody);
        if (a) settle(undefined, a);
        else if (ended) settle(new WireError('the answer ended early', 'network'));
      } catch (e) {
        settle(e as Error);
      }
    };
    if (x.timeoutMs > 0) {
      timer = setTimeout(
        () => settle(new WireError(`no answer within ${x.timeoutMs} ms`, 'network')),
        x.timeoutMs,
      );
    }
    socket.on('data', (c: Buffer) => {
      data = data.length === 0 ? c : Buffer.concat([data, c]);
      read(false);
    });
    socket.on('end', () => read(true));
    socket.on('error', (e: NodeJS.ErrnoException) => settle(new WireError(e.code ?? e.message, 'network')));
    socket.on('close', () => {
      x.track?.(socket, false);
      settle(new WireError('socket hang up', 'network'));
    });
    // Not end(): a server may take a half-closed connection for a client that left, and drop a long poll.
    socket.write(bytes, x.onSent && (() => x.onSent?.()));
  });
}
