// Request checks that guard the cache: SSRF/DNS-rebinding defences and the token, compared in constant time.
import type { IncomingHttpHeaders } from 'node:http';
import { nodeCrypto } from '../builtins.ts';
import { HttpError } from '../errors.ts';

/** The official extension's token header; the daemon also accepts X-Vault-Token unless configured otherwise. */
export const TOKEN_HEADER = 'X-Aws-Parameters-Secrets-Token';

const FORWARDING = ['x-forwarded-for', 'forwarded', 'x-real-ip'] as const;

/** The end of every 505 message. */
export const HTTP_VERSIONS = 'pscache speaks HTTP/1.1 and HTTP/1.0 only';

let lastLoopbackHost: string | undefined;

/** Rejects requests relayed by a proxy or aimed at a non-loopback name (DNS rebinding). */
export function checkOrigin(headers: IncomingHttpHeaders): void {
  for (const h of FORWARDING) {
    if (headers[h] !== undefined) {
      throw new HttpError(400, 'ForwardedRequest', `requests carrying a ${h} header are refused`);
    }
  }
  const host = headers.host;
  if (host === undefined || host === lastLoopbackHost) return;
  if (isLoopbackHost(host)) {
    // Clients send the same Host on every request: the last one found good is not parsed again.
    lastLoopbackHost = host;
  } else {
    throw new HttpError(
      400,
      'BadHost',
      'the Host header must name a loopback address (localhost, 127.0.0.1, [::1])',
    );
  }
}

/**
 * How many Host headers a request carries. Node keeps the first in `headers.host` and drops the others, so a
 * loopback first Host would hide a second one naming another host; RFC 9112 (3.2) says answer 400.
 */
export function hostHeaderCount(rawHeaders: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') n++;
  }
  return n;
}

/** localhost, *.localhost, 127.0.0.0/8 and [::1], each with an optional port. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  let name: string;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end === -1) return false;
    name = h.slice(1, end);
    if (!validPort(h.slice(end + 1))) return false;
    return name === '::1' || name === '0:0:0:0:0:0:0:1';
  }
  const colon = h.indexOf(':');
  name = colon === -1 ? h : h.slice(0, colon);
  if (colon !== -1 && !validPort(h.slice(colon))) return false;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(name);
  return m?.slice(1).every((o) => Number(o) <= 255) ?? false;
}

function validPort(rest: string): boolean {
  if (rest === '') return true;
  return /^:\d{1,5}$/.test(rest) && Number(rest.slice(1)) <= 65535;
}

/**
 * The token may come in any of the configured headers (any case). Every one a request carries must hold the
 * token: a request with one right and one wrong token header is refused, so no header can smuggle a guess
 * past another. An empty header counts as absent.
 *
 * Constant time without a hash per request: the given value is written (UTF-8) into a scratch buffer larger
 * than any header Node accepts, whose first bytes are then compared with the token's in constant time.
 * Writing takes a time that depends on the given value alone, the comparison always covers the token's
 * length, so neither the length nor a matching prefix of the expected token shows in timing (`npm run soak`
 * measures the prefix; test/checks.test.ts proves the answers).
 */
export class TokenCheck {
  private expected: Buffer | undefined;
  /** Where each given value is written; its first expected.length bytes are `head`. */
  private scratch: Buffer | undefined;
  private head: Buffer | undefined;
  /** Lower-case, as Node keys incoming headers. */
  private readonly keys: string[];
  private readonly missing: string;

  constructor(
    private readonly token: string | undefined,
    private readonly headers: readonly string[] = [TOKEN_HEADER],
  ) {
    this.keys = headers.map((h) => h.toLowerCase());
    const [first, ...rest] = headers;
    this.missing = `missing ${first} header${rest.length > 0 ? ` (or ${rest.join(', ')})` : ''}`;
  }

  check(headers: IncomingHttpHeaders): void {
    let present = 0;
    let ok = true;
    let wrong: string | undefined;
    for (let i = 0; i < this.keys.length; i++) {
      const raw = headers[this.keys[i]!];
      // Node joins repeated custom headers with ", " (so a repeated token never matches); an array would
      // only come from set-cookie-like headers.
      const given = Array.isArray(raw) ? raw.join(', ') : raw;
      if (given === undefined || given === '') continue;
      present++;
      if (this.token === undefined) continue;
      if (!this.matches(given)) {
        ok = false;
        wrong ??= this.headers[i];
      }
    }
    if (present === 0) throw new HttpError(401, 'Unauthorized', this.missing);
    if (this.token === undefined) throw new HttpError(401, 'Unauthorized', 'no token is configured');
    if (!ok) throw new HttpError(401, 'Unauthorized', `the ${wrong} header is not valid`);
  }

  /** True when `given` is the token. */
  matches(given: string): boolean {
    if (this.token === undefined) return false;
    let expected = this.expected;
    let scratch = this.scratch;
    let head = this.head;
    if (expected === undefined || scratch === undefined || head === undefined) {
      // Made on first use, so node:crypto loads with the first request, not at start-up.
      expected = this.expected = Buffer.from(this.token, 'utf8');
      // Node's headers are decoded as latin1 (at most 2 UTF-8 bytes a character) and capped at
      // MAX_HEADER_BYTES; the 8 spare bytes after the token mean a longer value always writes past it.
      scratch = this.scratch = Buffer.alloc(Math.max(2 * MAX_HEADER_BYTES, expected.length) + 8);
      head = this.head = scratch.subarray(0, expected.length);
    }
    // write() never splits a character: a value longer than the token writes at least one byte more than
    // the token's length, so `written === expected.length` holds only for a value of exactly that length,
    // and then `head` holds nothing but its bytes (a shorter value leaves an earlier one's bytes in `head`,
    // but fails on `written`).
    const written = scratch.write(given, 0, 'utf8');
    const same = nodeCrypto().timingSafeEqual(head, expected);
    return same && written === expected.length;
  }
}

/** Node's cap on a request's headers (the listener passes it to http.createServer). */
export const MAX_HEADER_BYTES = 16384;
