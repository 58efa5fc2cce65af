// AWS Signature Version 4 for the JSON POSTs pscache sends, on node:crypto alone.
// Not @smithy/signature-v4: bundled it adds ~140 kB and ~50 ms / ~6 MB on first use, for what is four
// HMACs and a hash here. test/aws.test.ts checks every signature against @smithy/signature-v4.
import { nodeCrypto } from '../builtins.ts';

export interface SigningCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface SignableRequest {
  method: string;
  /** The path as sent on the wire (percent-encoded), without a query string. */
  path: string;
  /** Header name -> value. Every header here is signed except the ones SigV4 never signs. */
  headers: Record<string, string>;
  body: string;
}

export interface SigningParams {
  credentials: SigningCredentials;
  region: string;
  /** Signing name: `ssm` or `secretsmanager`. */
  service: string;
  date?: Date;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** Headers a proxy or the HTTP stack may change on the way; SigV4 implementations leave them out. */
const UNSIGNED = new Set(['authorization', 'user-agent', 'content-length', 'connection', 'expect']);

// Deriving the signing key takes four HMACs; it only changes once a day or with new credentials.
let keyCache: { id: string; key: Buffer } | undefined;

function signingKey(secret: string, shortDate: string, region: string, service: string): Buffer {
  const id = `${secret}\u0000${shortDate}\u0000${region}\u0000${service}`;
  if (keyCache?.id === id) return keyCache.key;
  const kDate = nodeCrypto().createHmac('sha256', `AWS4${secret}`).update(shortDate).digest();
  const kRegion = nodeCrypto().createHmac('sha256', kDate).update(region).digest();
  const kService = nodeCrypto().createHmac('sha256', kRegion).update(service).digest();
  const key = nodeCrypto().createHmac('sha256', kService).update('aws4_request').digest();
  keyCache = { id, key };
  return key;
}

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Normalised, then encoded once more: the rule for every service but S3. */
function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const trailing = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return uriEscape(`/${segments.join('/')}${trailing}`).replace(/%2F/g, '/');
}

/** `20240316T005724Z` */
function longDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/**
 * Adds X-Amz-Date, X-Amz-Security-Token (temporary credentials) and Authorization to `req.headers`.
 * The secret key never leaves this function; the session token goes only into its header.
 */
export function signRequest(req: SignableRequest, params: SigningParams): void {
  const { credentials, region, service } = params;
  const amzDate = longDate(params.date ?? new Date());
  const shortDate = amzDate.slice(0, 8);
  req.headers['X-Amz-Date'] = amzDate;
  if (credentials.sessionToken) req.headers['X-Amz-Security-Token'] = credentials.sessionToken;

  const canonical = new Map<string, string>();
  for (const [name, value] of Object.entries(req.headers)) {
    const lower = name.toLowerCase();
    if (UNSIGNED.has(lower)) continue;
    canonical.set(
      lower,
      value
        .replace(/[\r\n]/g, ' ')
        .replace(/[ \t]+/g, ' ')
        .trim(),
    );
  }
  const names = [...canonical.keys()].sort();
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalPath(req.path),
    '',
    ...names.map((n) => `${n}:${canonical.get(n)}`),
    '',
    signedHeaders,
    nodeCrypto().createHash('sha256').update(req.body, 'utf8').digest('hex'),
  ].join('\n');

  const scope = `${shortDate}/${region}/${service}/aws4_request`;
  const stringToSign = [
    ALGORITHM,
    amzDate,
    scope,
    nodeCrypto().createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  const signature = nodeCrypto()
    .createHmac('sha256', signingKey(credentials.secretAccessKey, shortDate, region, service))
    .update(stringToSign, 'utf8')
    .digest('hex');
  req.headers['Authorization'] =
    `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}
