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

const notHttp = () => new WireError('the answer is not HTTP', 'garbage');
const trailersTooLarge = () =>
  new WireError(`the answer's trailers take more than ${MAX_HEAD_BYTES} bytes`, 'garbage');
const headTooLarge = () =>
  new WireError(`the answer's status line and headers take more than ${MAX_HEAD_BYTES} bytes`, 'garbage');
const EMPTY = Buffer.alloc(0);

type Phase = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'close' | 'done';

/**
 * Reads one answer as its bytes come, in one pass: push() each packet, end() when the connection closes.
 * Bounded whatever the server sends: the status lines and headers of every answer (interim ones
 * included) together, and the trailers, at MAX_HEAD_BYTES; a chunk-size line at 1 KiB; the body at
 * `maxBody`; all bytes on the wire at 8 × `maxBody` (1-byte chunks take 6 bytes each). Throws WireError:
 * `garbage` for bytes that are not HTTP/1.x or an answer over its bounds, `network` for one cut short.
 */
export class AnswerReader {
  private pending: Buffer = EMPTY;
  private phase: Phase = 'head';
  private headBytes = 0;
  private trailerBytes = 0;
  private wire = 0;
  private status = 0;
  private headers: Record<string, string> = {};
  private readonly parts: Buffer[] = [];
  private size = 0;
  /** Bytes left of the current chunk, or of a Content-Length body. */
  private remaining = 0;

  constructor(private readonly maxBody: number) {}

  /** Takes the next bytes; the answer once it is complete (bytes after it are ignored). */
  push(chunk: Buffer): Answer | undefined {
    if (this.phase === 'done') return this.answer();
    this.wire += chunk.length;
    if (this.wire > 8 * this.maxBody + 2 * MAX_HEAD_BYTES) throw this.tooLarge();
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    return this.run(chunk.length);
  }

  /** The connection closed: the answer, if its framing ends with the close; else why not. */
  end(): Answer {
    if (this.phase === 'close' || this.phase === 'done') return this.answer();
    if (this.phase === 'head' && this.headBytes === 0 && this.pending.length === 0) {
      throw new WireError('socket hang up', 'network');
    }
    throw new WireError('the answer ended early', 'network');
  }

  private answer(): Answer {
    this.phase = 'done';
    return { status: this.status, headers: this.headers, body: Buffer.concat(this.parts) };
  }

  private tooLarge(): WireError {
    return new WireError(`answer larger than ${this.maxBody} bytes`, 'garbage');
  }

  private take(n: number): void {
    const part = this.pending.subarray(0, n);
    this.parts.push(part);
    this.pending = this.pending.subarray(n);
  }

  private run(fresh: number): Answer | undefined {
    for (;;) {
      const data = this.pending;
      switch (this.phase) {
        case 'head': {
          const prefix = data.subarray(0, HTTP_PREFIX.length);
          if (!HTTP_PREFIX.subarray(0, prefix.length).equals(prefix)) throw notHttp();
          // Only the new bytes (and the 3 before them) can complete the blank line.
          const end = data.indexOf('\r\n\r\n', Math.max(0, data.length - fresh - 3), 'latin1');
          if (end < 0) {
            if (this.headBytes + data.length > MAX_HEAD_BYTES) throw headTooLarge();
            return undefined;
          }
          this.headBytes += end + 4;
          if (this.headBytes > MAX_HEAD_BYTES) throw headTooLarge();
          this.head(data.toString('latin1', 0, end));
          this.pending = data.subarray(end + 4);
          fresh = this.pending.length;
          break;
        }
        case 'length':
        case 'chunk-data': {
          const n = Math.min(this.remaining, data.length);
          this.take(n);
          this.remaining -= n;
          if (this.remaining > 0) return undefined;
          if (this.phase === 'length') return this.answer();
          this.phase = 'chunk-end';
          break;
        }
        case 'chunk-end': {
          if (data.length < 2) return undefined;
          if (data[0] !== 13 || data[1] !== 10) throw notHttp();
          this.pending = data.subarray(2);
          this.phase = 'chunk-size';
          break;
        }
        case 'chunk-size': {
          const eol = data.indexOf('\r\n', 0, 'latin1');
          if (eol < 0) {
            if (data.length > 1024) throw notHttp();
            return undefined;
          }
          // Leading zeros are allowed; past eight digits the size would not fit anyway.
          const m = /^0*([0-9a-fA-F]{1,8})[ \t]*(?:;[^\r\n]*)?$/.exec(
            data.toString('latin1', 0, Math.min(eol, 1025)),
          );
          if (!m || eol > 1024) throw notHttp();
          const n = Number.parseInt(m[1]!, 16);
          this.pending = data.subarray(eol + 2);
          if (n === 0) {
            this.phase = 'trailers';
            break;
          }
          this.size += n;
          if (this.size > this.maxBody) throw this.tooLarge();
          this.remaining = n;
          this.phase = 'chunk-data';
          break;
        }
        case 'trailers': {
          // Trailers, if any, up to an empty line.
          const eol = data.indexOf('\r\n', 0, 'latin1');
          if (eol < 0) {
            if (this.trailerBytes + data.length > MAX_HEAD_BYTES) throw trailersTooLarge();
            return undefined;
          }
          if (eol === 0) return this.answer();
          this.trailerBytes += eol + 2;
          if (this.trailerBytes > MAX_HEAD_BYTES) throw trailersTooLarge();
          this.pending = data.subarray(eol + 2);
          break;
        }
        case 'close': {
          this.size += data.length;
          if (this.size > this.maxBody) throw this.tooLarge();
          this.take(data.length);
          return undefined;
        }
        case 'done':
          return this.answer();
      }
    }
  }

  /** A status line and headers: the framing of the body that follows, or an interim answer. */
  private head(text: string): void {
    const lines = text.split('\r\n');
    const status = /^HTTP\/1\.[01] ([1-5]\d\d)(?: [^\r\n]*)?$/.exec(lines[0]!);
    if (!status) throw notHttp();
    const headers: Record<string, string> = {};
    const lengths = new Set<string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      if (colon <= 0 || !TOKEN.test(name)) throw notHttp();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') lengths.add(value);
      // Transfer-Encoding lines make one list, as HTTP says; any other repeated header: its first value.
      if (name === 'transfer-encoding' && name in headers) headers[name] += `, ${value}`;
      else if (!(name in headers)) headers[name] = value;
    }
    const code = Number(status[1]);
    if (code === 101) throw notHttp();
    // An interim answer (100 Continue, 103 Early Hints): the real one follows.
    if (code < 200) return;
    this.status = code;
    this.headers = headers;
    if (code === 204 || code === 304) {
      this.phase = 'done';
      return;
    }
    const te = headers['transfer-encoding'];
    if (te !== undefined) {
      // Chunked last: read chunk by chunk; any other coding: the body runs until the close.
      this.phase = /(?:^|,)\s*chunked\s*$/i.test(te) ? 'chunk-size' : 'close';
      return;
    }
    if (lengths.size === 0) {
      this.phase = 'close';
      return;
    }
    const length = lengths.size === 1 ? [...lengths][0]! : '';
    if (!/^\d{1,15}$/.test(length)) throw notHttp();
    this.remaining = Number(length);
    if (this.remaining > this.maxBody) throw this.tooLarge();
    this.phase = 'length';
  }
}

/**
 * Reads an answer from all the bytes received so far, at once (AnswerReader, for tests and one-off use):
 * the answer once complete, undefined while more bytes are needed (`ended`: the connection closed, so
 * nothing more comes).
 */
export function parseAnswer(data: Buffer, ended: boolean, maxBody: number): Answer | undefined {
  const reader = new AnswerReader(maxBody);
  const a = reader.push(data);
  if (a || !ended) return a;
  return reader.end();
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
    const reader = new AnswerReader(x.maxBody);
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
    const read = (next: () => Answer | undefined) => {
      try {
        const a = next();
        if (a) settle(undefined, a);
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
    socket.on('data', (c: Buffer) => read(() => reader.push(c)));
    socket.on('end', () => read(() => reader.end()));
    socket.on('error', (e: NodeJS.ErrnoException) => settle(new WireError(e.code ?? e.message, 'network')));
    socket.on('close', () => {
      x.track?.(socket, false);
      settle(new WireError('socket hang up', 'network'));
    });
    // Not end(): a server may take a half-closed connection for a client that left, and drop a long poll.
    // onSent only once the bytes are handed over (a failed write calls back with its error).
    socket.write(bytes, (e) => {
      if (!e && !settled) x.onSent?.();
    });
  });
}
