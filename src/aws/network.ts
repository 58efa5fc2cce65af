// How pscache reaches AWS through a corporate network: which proxy an endpoint goes through (HTTPS_PROXY,
// HTTP_PROXY, NO_PROXY, read as Go's net/http does, like the official extension) and the extra CAs of
// AWS_CA_BUNDLE. Parsing and matching only: the CONNECT tunnel is in proxy.ts, loaded when a proxy is used.
import { nodeUrl } from '../builtins.ts';

/** A proxy from HTTPS_PROXY or HTTP_PROXY. `shown` is safe to log: it never holds the credentials. */
export interface ProxyUrl {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number;
  /** `Basic ...` when the URL holds a user name (and password). */
  authorization: string | undefined;
  /**
   * The forms of its credentials a proxy (or an error page in between) could echo: the header value, its
   * base64, `user:password`, the password as given and decoded. Scrubbed from every upstream message.
   */
  secrets: readonly string[];
  /** `http://proxy.example.com:3128 (HTTPS_PROXY)`: no user name, no password. Safe to log. */
  shown: string;
}

/** One NO_PROXY entry, as Go's golang.org/x/net/http/httpproxy understands it. */
export type NoProxyRule =
  | { kind: 'all' }
  | { kind: 'cidr'; bits: number; network: bigint; v6: boolean }
  | { kind: 'ip'; ip: string; port: number | undefined }
  | { kind: 'domain'; name: string; subdomainsOnly: boolean; port: number | undefined }
  /** An entry that names no host, domain, address or range: kept to be named in a warning, never matched. */
  | { kind: 'unusable'; entry: string };

export interface ProxyConfig {
  /** For https:// endpoints (HTTPS_PROXY, https_proxy). */
  https: ProxyUrl | undefined;
  /** For http:// endpoints (HTTP_PROXY, http_proxy). */
  http: ProxyUrl | undefined;
  noProxy: readonly NoProxyRule[];
}

export interface NetworkConfig {
  /** Undefined when neither HTTPS_PROXY nor HTTP_PROXY is set. */
  proxy: ProxyConfig | undefined;
  /** AWS_CA_BUNDLE: its path (for messages) and PEM text, added to Node's own roots. */
  caBundle: { path: string; pem: string } | undefined;
}

export const NO_NETWORK_OPTIONS: NetworkConfig = { proxy: undefined, caBundle: undefined };

/** Every proxy credential of `config`, longest first: what no message shown or logged may hold. */
export function proxySecrets(config: NetworkConfig | undefined): string[] {
  const all = [...(config?.proxy?.https?.secrets ?? []), ...(config?.proxy?.http?.secrets ?? [])];
  return [...new Set(all)].sort((a, b) => b.length - a.length);
}

/** Thrown by the parsers below; the message completes "VAR=... is invalid: ". */
export class NetworkSettingError extends Error {}

/**
 * A proxy URL as Go reads one: no scheme means http://; http and https proxies only; the port defaults
 * to the scheme's. `variable` names it in what is logged. Never echoes the value (it may hold a password).
 */
export function parseProxyUrl(raw: string, variable = 'HTTPS_PROXY'): ProxyUrl {
  const text = raw.trim();
  const withScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new NetworkSettingError('must be a proxy URL such as http://proxy.example.com:3128');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new NetworkSettingError(
      `the ${url.protocol.slice(0, -1)} scheme is not supported: use an http:// or https:// proxy (CONNECT)`,
    );
  }
  if (url.hostname === '') throw new NetworkSettingError('must name the proxy host');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new NetworkSettingError('must be scheme://[user:password@]host[:port] with no path or query');
  }
  const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  let authorization: string | undefined;
  const secrets: string[] = [];
  if (url.username !== '' || url.password !== '') {
    let user: string;
    let password: string;
    try {
      user = decodeURIComponent(url.username);
      password = decodeURIComponent(url.password);
    } catch {
      throw new NetworkSettingError('the user name or password has a malformed percent-encoding');
    }
    const basic = Buffer.from(`${user}:${password}`).toString('base64');
    authorization = `Basic ${basic}`;
    // Longest first: a shorter form inside a longer one must not leave the rest of the longer one.
    secrets.push(authorization, basic, `${user}:${password}`, `${url.username}:${url.password}`);
    secrets.push(password, url.password);
    // A proxy that takes a token as the user name alone (http://TOKEN@proxy): the name is the secret. A
    // name under 12 characters (`proxy`, `alice`) is no token, and scrubbing it would cut pscache's own
    // messages (`http://proxy.corp`) and codes wherever those letters appear.
    if (password === '') secrets.push(...[user, url.username].filter((u) => u.length >= 12));
  }
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const host = hostname.includes(':') ? `[${hostname}]` : hostname;
  return {
    protocol: url.protocol,
    hostname,
    port,
    authorization,
    secrets: [...new Set(secrets.filter((x) => x !== ''))].sort((a, b) => b.length - a.length),
    shown: `${url.protocol}//${host}:${port} (${variable})`,
  };
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** An IPv4 or IPv6 address as a number, or undefined if `s` is neither. */
function ipValue(s: string): { value: bigint; v6: boolean } | undefined {
  const m = IPV4.exec(s);
  if (m) {
    // Go's net.ParseIP refuses leading zeros (010.0.0.1 could be read as octal): not an address.
    if (m.slice(1).some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    const parts = m.slice(1).map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return { value: BigInt(parts.reduce((a, p) => a * 256 + p, 0)), v6: false };
  }
  if (!s.includes(':') || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let text = s;
  // An embedded IPv4 tail (::ffff:1.2.3.4) as two groups: a group of its own, after a colon (Go's netip
  // refuses ::a1.2.3.4).
  const tail = /(?<=:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(text);
  if (!tail && text.includes('.')) return undefined;
  if (tail) {
    const v4 = ipValue(tail[1]!);
    if (!v4) return undefined;
    const n = Number(v4.value);
    text = `${text.slice(0, -tail[1]!.length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return { value: all.reduce((a, g) => (a << 16n) + BigInt(Number.parseInt(g, 16)), 0n), v6: true };
}

/**
 * An address as Go's net.IP compares it: an IPv4-mapped IPv6 address (::ffff:10.1.2.3) is its IPv4
 * address, so NO_PROXY's 10.1.2.3 and 10.0.0.0/8 match it, as they do for the official extension.
 */
function hostIp(s: string): { value: bigint; v6: boolean } | undefined {
  const ip = ipValue(s);
  if (ip?.v6 && ip.value >> 32n === 0xffffn) return { value: ip.value & 0xffffffffn, v6: false };
  return ip;
}

/** `host` and `port` of `host:port` or `[v6]:port`; the port undefined when absent. */
function splitPort(entry: string): { host: string; port: number | undefined } | undefined {
  // As Go's net.SplitHostPort: brackets only around a host that has a port ([fd00::1]:443); a bracketed
  // host alone is no entry it can match. Go compares ports as text, so one written with a leading zero
  // (0443) never matches either.
  const bracketed = /^\[([^\]]+)\]:([1-9]\d{0,4})$/.exec(entry);
  if (bracketed)
    return Number(bracketed[2]) > 65535 ? undefined : { host: bracketed[1]!, port: Number(bracketed[2]) };
  if (entry.startsWith('[')) return undefined;
  const colon = entry.lastIndexOf(':');
  // A bare IPv6 address has several colons and no port.
  if (colon === -1 || entry.indexOf(':') !== colon) return { host: entry, port: undefined };
  const port = entry.slice(colon + 1);
  if (!/^[1-9]\d{0,4}$/.test(port) || Number(port) > 65535) return undefined;
  return { host: entry.slice(0, colon), port: Number(port) };
}

/** A host name, or a name written with the root's trailing dot (`example.com.`), which Go keeps as written. */
const DOMAIN = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/;

/**
 * A domain entry as Go's httpproxy keeps it: lower case, an international name in its ASCII (punycode)
 * form; undefined when it is not a host name at all.
 */
function domainName(name: string): string | undefined {
  if (DOMAIN.test(name)) return name;
  // Only letters, digits, marks, dots and hyphens go to the IDNA conversion, which parses its input as a
  // URL's host: `ü@evil.com` would be evil.com, `a.corp\\ü` or `a.corp?ü` a.corp. An address spelled in
  // other digits (full-width １０.１) is no domain either.
  if (!/[^\p{ASCII}]/u.test(name) || !/^[\p{L}\p{N}\p{M}._-]+$/u.test(name)) return undefined;
  const ascii = nodeUrl().domainToASCII(name);
  return DOMAIN.test(ascii) && ipValue(ascii) === undefined && !/^[\d.]+$/.test(ascii) ? ascii : undefined;
}

/**
 * NO_PROXY: a comma list of `*`, IP addresses, CIDR ranges and domains, each optionally with `:port`. As
 * Go's httpproxy, no entry is refused: one that names none of these (`10.*`, `<local>`, `host:abc`) never
 * matches, and is kept as `unusable` so that start-up can name it in a warning.
 */
export function parseNoProxy(raw: string): NoProxyRule[] {
  const rules: NoProxyRule[] = [];
  for (const part of raw.split(',')) {
    const entry = part.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') {
      rules.push({ kind: 'all' });
      continue;
    }
    const slash = entry.indexOf('/');
    if (slash !== -1) {
      const ip = ipValue(entry.slice(0, slash));
      const bits = entry.slice(slash + 1);
      const width = ip?.v6 ? 128 : 32;
      if (!ip || !/^\d{1,3}$/.test(bits) || Number(bits) > width) {
        rules.push({ kind: 'unusable', entry });
        continue;
      }
      const n = Number(bits);
      // Go's IPNet.Contains reads an IPv4-mapped range (::ffff:10.0.0.0/104) as the IPv4 range it maps
      // (10.0.0.0/8): hosts are compared as IPv4 too (hostIp).
      if (ip.v6 && n >= 96 && ip.value >> 32n === 0xffffn) {
        const v4bits = n - 96;
        const v4mask = ((1n << BigInt(v4bits)) - 1n) << BigInt(32 - v4bits);
        rules.push({ kind: 'cidr', bits: v4bits, network: ip.value & 0xffffffffn & v4mask, v6: false });
        continue;
      }
      const mask = ((1n << BigInt(n)) - 1n) << BigInt(width - n);
      rules.push({ kind: 'cidr', bits: n, network: ip.value & mask, v6: ip.v6 });
      continue;
    }
    const split = splitPort(entry);
    if (!split) {
      rules.push({ kind: 'unusable', entry });
      continue;
    }
    const { host, port } = split;
    if (ipValue(host)) {
      rules.push({ kind: 'ip', ip: canonicalIp(host), port });
      continue;
    }
    // Go reads "*.example.com" as ".example.com": subdomains only.
    const subdomainsOnly = host.startsWith('.') || host.startsWith('*.');
    const name = domainName(host.replace(/^\*?\./, ''));
    if (name === undefined) {
      rules.push({ kind: 'unusable', entry });
      continue;
    }
    rules.push({ kind: 'domain', name, subdomainsOnly, port });
  }
  return rules;
}

const canonicalIp = (s: string): string => {
  const ip = hostIp(s)!;
  return `${ip.v6 ? 6 : 4}:${ip.value.toString(16)}`;
};

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const ip = ipValue(host);
  if (!ip) return false;
  if (!ip.v6) return ip.value >> 24n === 127n;
  // ::1, or 127.0.0.0/8 mapped into IPv6 (::ffff:127.0.0.1).
  return ip.value === 1n || (ip.value >> 32n === 0xffffn && (ip.value & 0xffffffffn) >> 24n === 127n);
}

/**
 * The proxy a request to `protocol//host:port` goes through, or undefined for a direct connection. As Go:
 * localhost and loopback addresses never go through a proxy; NO_PROXY `*` turns proxies off; a domain
 * matches itself and its subdomains (`.example.com` only its subdomains); a port in an entry must match.
 */
export function proxyFor(
  config: ProxyConfig | undefined,
  protocol: string,
  hostname: string,
  port: number,
): ProxyUrl | undefined {
  const proxy = protocol === 'https:' ? config?.https : protocol === 'http:' ? config?.http : undefined;
  if (!proxy || !config) return undefined;
  // Matched as written, as Go matches it: `s3.corp.` is not `s3.corp` to NO_PROXY's `corp`. Only the
  // loopback test drops the root's dot (`localhost.` is still this host).
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isLoopback(host.replace(/\.$/, ''))) return undefined;
  const ip = hostIp(host);
  const ipKey = ip ? `${ip.v6 ? 6 : 4}:${ip.value.toString(16)}` : undefined;
  for (const rule of config.noProxy) {
    switch (rule.kind) {
      case 'all':
        return undefined;
      case 'cidr': {
        if (!ip || ip.v6 !== rule.v6) break;
        const width = rule.v6 ? 128 : 32;
        const mask = ((1n << BigInt(rule.bits)) - 1n) << BigInt(width - rule.bits);
        if ((ip.value & mask) === rule.network) return undefined;
        break;
      }
      case 'ip':
        if (ipKey === rule.ip && (rule.port === undefined || rule.port === port)) return undefined;
        break;
      case 'domain': {
        if (rule.port !== undefined && rule.port !== port) break;
        if (host.endsWith(`.${rule.name}`)) return undefined;
        if (!rule.subdomainsOnly && host === rule.name) return undefined;
        break;
      }
      case 'unusable':
        break;
    }
  }
  return proxy;
}

/** What OpenSSL and Node call a certificate they do not trust, or one made out to another name. */
const CERTIFICATE_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'CERT_CHAIN_TOO_LONG',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  // The certificate itself, whoever signed it:
  'INVALID_PURPOSE',
  'CERT_REVOKED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
/** Failures no CA can mend: the certificate is out of date, revoked or not made for a TLS server. */
const UNUSABLE_CERTIFICATE = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'INVALID_PURPOSE',
  'CERT_REVOKED',
]);
const EXPLAINED = Symbol('pscache.certificateExplained');

/**
 * Rewrites the message of a certificate failure (in place: it is on its way to the request) to say whose
 * certificate it was and what to do: AWS_CA_BUNDLE for a private CA or a TLS-inspecting proxy. The code
 * stays, so the failure keeps its name in answers and logs. Other errors pass unchanged.
 */
export function explainCertificate(
  e: NodeJS.ErrnoException,
  whose: string,
  caBundle: NetworkConfig['caBundle'],
): void {
  const code = e.code ?? '';
  if (!CERTIFICATE_ERRORS.has(code) || (e as { [EXPLAINED]?: boolean })[EXPLAINED]) return;
  (e as { [EXPLAINED]?: boolean })[EXPLAINED] = true;
  const fix =
    code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH'
      ? 'it is made out to another name: check the endpoint (AWS_ENDPOINT_URL*) and any proxy in between'
      : UNUSABLE_CERTIFICATE.has(code)
        ? 'the certificate itself is out of date, revoked or not made for a TLS server: the endpoint or the proxy in between must present another (AWS_CA_BUNDLE cannot mend this)'
        : caBundle
          ? `no CA of AWS_CA_BUNDLE (${caBundle.path}) nor of Node's own roots signed it`
          : 'if a private CA or a TLS-inspecting proxy signs it, set AWS_CA_BUNDLE to a PEM file holding that CA';
  e.message = `the TLS certificate of ${whose} is not trusted: ${e.message} (${code}); ${fix}`;
}
