// HTTP plumbing shared by the AWS side and the control API: bodies, answers, the Host check, secrets.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const MAX_BODY = 1024 * 1024;

export type Body = Buffer | 'too-large' | 'aborted';

/** Reads a request body, keeping at most `limit` bytes (the rest is read and dropped). */
export function readBody(req: IncomingMessage, limit = MAX_BODY): Promise<Body> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    let done = false;
    const finish = (b: Body) => {
      if (!done) {
        done = true;
        resolve(b);
      }
    };
    if (declared > limit) finish('too-large');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        finish('too-large');
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => finish(Buffer.concat(chunks, size)));
    req.on('error', () => finish('aborted'));
    req.on('close', () => finish('aborted'));
  });
}

export function parseQuery(url: string): Record<string, string | string[]> {
  const q = url.indexOf('?');
  const out: Record<string, string | string[]> = {};
  if (q < 0) return out;
  for (const [k, v] of new URLSearchParams(url.slice(q + 1))) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

export const alive = (res: ServerResponse) => !res.destroyed && !res.writableEnded;

export function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Record<string, string | number>,
): void {
  if (!alive(res) || res.headersSent) return;
  const data = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, 'content-length': data.length });
  res.end(data);
}

/** A control API answer: JSON, or nothing for 204. */
export function sendJson(res: ServerResponse, status: number, doc: unknown): void {
  send(res, status, status === 204 ? '' : JSON.stringify(doc), { 'content-type': 'application/json' });
}

/** Waits for the response to drain, or to close (a client gone away never drains). */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export const LOOPBACK_ONLY =
  'the Host header must name a loopback address (localhost, *.localhost, 127.0.0.0/8 or [::1], with an optional port)';

/**
 * localhost, *.localhost, 127.0.0.0/8 and [::1], each with an optional port. A page a browser loaded
 * from another name (DNS rebinding) sends that name, so it never gets past this.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end === -1 || !validPort(h.slice(end + 1))) return false;
    const name = h.slice(1, end);
    return name === '::1' || name === '0:0:0:0:0:0:0:1';
  }
  const colon = h.indexOf(':');
  const name = colon === -1 ? h : h.slice(0, colon);
  if (colon !== -1 && !validPort(h.slice(colon))) return false;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(name);
  return m?.slice(1).every((o) => Number(o) <= 255) ?? false;
}

function validPort(rest: string): boolean {
  return rest === '' || (/^:\d{1,5}$/.test(rest) && Number(rest.slice(1)) <= 65535);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Compares digests, so neither the length nor a matching prefix of the expected secret shows in timing. */
export function sameSecret(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  return timingSafeEqual(digest(given), digest(expected));
}
