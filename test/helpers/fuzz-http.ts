// Raw HTTP/1.1 over loopback sockets for fuzzing and soak: a response reader that copes with pipelining,
// interim 1xx answers, chunked bodies and HEAD, a connection wrapper, a pipelining flooder that never reads,
// and the child's RSS from /proc.
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

/** Every status the errors table of docs/http-api.md allows pscache to answer with. */
export const STATUS_TABLE: ReadonlySet<number> = new Set([
  200, 400, 401, 403, 404, 405, 429, 502, 503, 504, 505,
]);

export interface ParsedResponse {
  status: number;
  /** Lower-cased names; repeated headers keep every value. */
  headers: Map<string, string[]>;
  body: Buffer;
}

export const header = (r: ParsedResponse, name: string): string | undefined => r.headers.get(name)?.[0];

const HEAD_END = Buffer.from('\r\n\r\n');
/** A status line and headers larger than this are not a sane answer from pscache. */
const MAX_HEAD = 64 * 1024;

/**
 * Whether the i-th answer has headers only (a HEAD's). `maybe`: a HEAD the parser may have refused, whose
 * 400 then carries a body. Told apart by the Date header: Node adds one to every answer it writes for a
 * request it parsed, the raw answer to a refused request has none.
 */
export type IsHead = (index: number) => boolean | 'maybe';

/** Parses the byte stream of one connection into responses. Anything that is not HTTP/1.x is recorded in `error`. */
export class ResponseReader {
  readonly responses: ParsedResponse[] = [];
  error: string | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private untilClose: { status: number; headers: Map<string, string[]> } | undefined;

  constructor(private readonly isHead: IsHead) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.parse();
  }

  /** The peer closed: a body delimited by the close is complete, anything else left over is an error. */
  end(): void {
    if (this.untilClose) {
      this.responses.push({ ...this.untilClose, body: this.buf });
      this.untilClose = undefined;
      this.buf = Buffer.alloc(0);
    } else if (this.buf.length > 0 && this.error === undefined) {
      this.error = `connection closed inside a response (${this.buf.length} bytes left over)`;
    }
  }

  private parse(): void {
    while (this.error === undefined && !this.untilClose && this.buf.length > 0) {
      const end = this.buf.indexOf(HEAD_END);
      if (end === -1) {
        if (this.buf.length > MAX_HEAD) this.error = 'response head larger than 64 KB';
        return;
      }
      const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
      if (!m) {
        this.error = `not an HTTP/1.x status line: ${JSON.stringify(lines[0]!.slice(0, 80))}`;
        return;
      }
      const status = Number(m[1]);
      const headers = new Map<string, string[]>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon <= 0) {
          this.error = `malformed response header line ${JSON.stringify(line.slice(0, 80))}`;
          return;
        }
        const name = line.slice(0, colon).trim().toLowerCase();
        const list = headers.get(name) ?? [];
        list.push(line.slice(colon + 1).trim());
        headers.set(name, list);
      }
      let rest = this.buf.subarray(end + 4);
      if (status >= 100 && status < 200) {
        // 100 Continue and friends precede the real answer.
        this.buf = rest;
        continue;
      }
      let body: Buffer;
      const te = headers.get('transfer-encoding')?.join(',').toLowerCase();
      const cl = headers.get('content-length');
      const head = this.isHead(this.responses.length);
      if ((head === 'maybe' ? headers.has('date') : head) || status === 204 || status === 304) {
        body = Buffer.alloc(0);
      } else if (te?.includes('chunked')) {
        const r = dechunk(rest);
        if (r === 'incomplete') return;
        if (r === 'bad') {
          this.error = 'malformed chunked body';
          return;
        }
        body = r.body;
        rest = r.rest;
      } else if (cl !== undefined) {
        if (cl.length !== 1 || !/^\d+$/.test(cl[0]!)) {
          this.error = `bad Content-Length ${JSON.stringify(cl)}`;
          return;
        }
        const n = Number(cl[0]);
        if (rest.length < n) return;
        body = rest.subarray(0, n);
        rest = rest.subarray(n);
      } else {
        this.untilClose = { status, headers };
        this.buf = rest;
        return;
      }
      this.responses.push({ status, headers, body });
      this.buf = rest;
    }
  }
}

function dechunk(b: Buffer): { body: Buffer; rest: Buffer } | 'incomplete' | 'bad' {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol === -1) return 'incomplete';
    const size = Number.parseInt(b.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
    if (!Number.isFinite(size) || size < 0) return 'bad';
    at = eol + 2;
    if (size === 0) {
      // No trailers from pscache: the terminating CRLF follows at once.
      if (b.length < at + 2) return 'incomplete';
      return { body: Buffer.concat(parts), rest: b.subarray(at + 2) };
    }
    if (b.length < at + size + 2) return 'incomplete';
    parts.push(b.subarray(at, at + size));
    at += size + 2;
  }
}

/** One client connection: write raw bytes, wait for a number of responses or the close. */
export class Conn {
  readonly reader: ResponseReader;
  closed = false;
  /** Set when the server reset the connection rather than closing it. */
  resetByPeer = false;
  private readonly socket: Socket;
  private wake: (() => void) | undefined;
  private readonly connected: Promise<void>;

  constructor(port: number, isHead: IsHead, host = '127.0.0.1') {
    this.reader = new ResponseReader(isHead);
    this.socket = connect({ port, host, noDelay: true });
    this.connected = new Promise<void>((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.on('data', (c: Buffer) => {
      this.reader.push(c);
      this.wake?.();
    });
    this.socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') this.resetByPeer = true;
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.reader.end();
      this.wake?.();
    });
  }

  ready(): Promise<void> {
    return this.connected;
  }

  write(data: Buffer | string): void {
    if (!this.closed && !this.socket.destroyed && this.socket.writable) this.socket.write(data);
  }

  /** Half-close: no more requests from us, answers still welcome. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves once `count` responses arrived, the peer closed, or `timeoutMs` passed (then false). */
  waitFor(count: number, timeoutMs: number): Promise<boolean> {
    return this.waitUntil(
      () => this.reader.responses.length >= count || this.closed || this.reader.error !== undefined,
      timeoutMs,
    );
  }

  /** Resolves when the peer closes, or after `timeoutMs` (then false). */
  waitClosed(timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.closed, timeoutMs);
  }

  /** Sleeps until `done()` holds (re-checked whenever data or a close wakes us), or the deadline passes. */
  private async waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return true;
  }
}

/**
 * A client that pipelines `total` copies of one request and never reads an answer, as the probe did.
 * It notices a close only while it writes, or once it reads (`resume`).
 */
export class Flooder {
  closed = false;
  closedAt = Number.NaN;
  private readonly socket: Socket;
  private readonly started = performance.now();

  constructor(port: number, request: string, total: number) {
    const per = Math.min(total, 1000);
    const batch = Buffer.from(request.repeat(per));
    this.socket = connect({ port, host: '127.0.0.1' });
    this.socket.pause();
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.closedAt = performance.now() - this.started;
    });
    let sent = 0;
    const pump = () => {
      while (sent < total && !this.socket.destroyed) {
        sent += per;
        if (!this.socket.write(batch)) {
          this.socket.once('drain', pump);
          return;
        }
      }
    };
    this.socket.once('connect', pump);
  }

  /** Starts reading (and dropping) the answers, so a close that came meanwhile shows. */
  resume(): void {
    this.socket.on('data', () => {});
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Resident set size of a process in KiB (VmRSS from /proc), or NaN where /proc is not available. */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Open file descriptors of a process (sockets included), or NaN where /proc is not available. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}
