// Verifies AWS SigV4 request signatures by recomputing them with @smithy/signature-v4.
import { createHash, createHmac, type Hash, type Hmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { AwsError } from './errors.ts';
import { REGION } from './state.ts';
import type { EmulatorCredential } from './types.ts';

type SourceData = string | ArrayBuffer | ArrayBufferView;

const toBuffer = (d: SourceData): Buffer =>
  typeof d === 'string'
    ? Buffer.from(d, 'utf8')
    : ArrayBuffer.isView(d)
      ? Buffer.from(d.buffer, d.byteOffset, d.byteLength)
      : Buffer.from(d);

/** SHA-256 / HMAC-SHA-256 from node:crypto in the shape the signer expects (@smithy/hash-node is not a dependency). */
export class Sha256 {
  private hash: Hash | Hmac;

  constructor(private readonly secret?: SourceData) {
    this.hash = this.make();
  }

  private make(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.secret));
  }

  update(data: Uint8Array): void {
    this.hash.update(data);
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }

  reset(): void {
    this.hash = this.make();
  }
}

const MAX_SKEW_MS = 15 * 60 * 1000;
/** The signer's own region is never used: every check passes the request's signing Region. */
const DEFAULT_SIGNER_REGION = 'us-east-1';

const MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

const incomplete = (m: string) => new AwsError('IncompleteSignatureException', m);
const invalidSignature = (m: string) => new AwsError('InvalidSignatureException', m);
const invalidToken = () =>
  new AwsError('UnrecognizedClientException', 'The security token included in the request is invalid.');

function amzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isNaN(t) ? undefined : t;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export interface SignedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string | string[]>;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface Parsed {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(auth: string): Parsed | AwsError {
  const sp = auth.indexOf(' ');
  const algorithm = sp < 0 ? auth : auth.slice(0, sp);
  if (algorithm !== 'AWS4-HMAC-SHA256') {
    return incomplete(`Unsupported AWS 'algorithm': '${algorithm}'`);
  }
  const fields = new Map<string, string>();
  for (const part of auth.slice(sp + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  for (const [k, v] of [
    ['Credential', credential],
    ['SignedHeaders', signedHeaders],
    ['Signature', signature],
  ] as const) {
    if (!v) return incomplete(`Authorization header requires '${k}' parameter. Authorization=${algorithm}`);
  }
  const scope = credential!.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || !scope[0]) {
    return incomplete(`Credential should be scoped to a valid region, not '${scope[2] ?? ''}'. `);
  }
  return {
    accessKeyId: scope[0],
    date: scope[1]!,
    region: scope[2]!,
    service: scope[3]!,
    signedHeaders: signedHeaders!.split(';').map((h) => h.trim().toLowerCase()),
    signature: signature!,
  };
}

/** The access key id and Region of a request's SigV4 credential scope, whether or not it verifies. */
export function credentialScope(
  headers: IncomingHttpHeaders,
): { accessKeyId: string; region: string } | undefined {
  const auth = header(headers, 'authorization');
  const parsed = auth === undefined ? undefined : parseAuthorization(auth);
  if (parsed === undefined || parsed instanceof AwsError) return undefined;
  return { accessKeyId: parsed.accessKeyId, region: parsed.region };
}

/**
 * Accepted credentials and the check itself. A signer is kept per key so derived keys are cached. Any
 * Region is accepted in the scope: one emulator stands for every Region's endpoint.
 */
export class SigV4Verifier {
  private creds = new Map<string, { cred: EmulatorCredential; signer: SignatureV4 }>();
  private on = false;

  get enabled(): boolean {
    return this.on;
  }

  /** Replaces the accepted credentials and turns verification on or off. */
  set(list: readonly EmulatorCredential[], enabled: boolean): void {
    this.creds.clear();
    this.on = enabled;
    for (const c of list) this.add(c);
  }

  /** Accepts one more credential set (minted ones); leaves verification on or off as it is. */
  add(c: EmulatorCredential): void {
    if (typeof c?.accessKeyId !== 'string' || typeof c.secretAccessKey !== 'string' || !c.accessKeyId) {
      throw new Error('a credential needs string accessKeyId and secretAccessKey');
    }
    const signer = new SignatureV4({
      credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
      region: DEFAULT_SIGNER_REGION,
      service: 'ssm',
      sha256: Sha256,
      applyChecksum: false,
    });
    this.creds.set(c.accessKeyId, { cred: { ...c }, signer });
  }

  /** Forgets a credential set (a minted one long expired). */
  remove(accessKeyId: string): void {
    this.creds.delete(accessKeyId);
  }

  /** Undefined when the request is signed correctly for `service`, else the error AWS would answer. */
  async verify(req: SignedRequest, service: string, now: number): Promise<AwsError | undefined> {
    const auth = header(req.headers, 'authorization');
    if (!auth) return new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    const parsed = parseAuthorization(auth);
    if (parsed instanceof AwsError) return parsed;
    const xAmzDate = header(req.headers, 'x-amz-date');
    if (!xAmzDate || !parsed.signedHeaders.includes('x-amz-date')) {
      return incomplete(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
      );
    }
    const signingDate = parseAmzDate(xAmzDate);
    if (signingDate === undefined)
      return incomplete(`Date must be in ISO-8601 'basic format'. Got '${xAmzDate}'.`);
    if (!parsed.signedHeaders.includes('host')) {
      return invalidSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    }

    const entry = this.creds.get(parsed.accessKeyId);
    if (!entry) return invalidToken();
    const { cred, signer } = entry;
    if (cred.expiresAt !== undefined && now >= cred.expiresAt) {
      return new AwsError('ExpiredTokenException', 'The security token included in the request is expired');
    }
    const token = header(req.headers, 'x-amz-security-token');
    if ((cred.sessionToken ?? undefined) !== token) return invalidToken();
    if (token !== undefined && !parsed.signedHeaders.includes('x-amz-security-token')) return invalidToken();

    if (parsed.service !== service)
      return invalidSignature(`Credential should be scoped to correct service: '${service}'. `);
    if (!REGION.test(parsed.region)) {
      return invalidSignature(`Credential should be scoped to a valid region, not '${parsed.region}'. `);
    }
    if (parsed.date !== xAmzDate.slice(0, 8)) {
      return invalidSignature(
        `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${parsed.date}' != '${xAmzDate.slice(0, 8)}', from '${xAmzDate}'.`,
      );
    }
    if (signingDate < now - MAX_SKEW_MS) {
      return invalidSignature(
        `Signature expired: ${xAmzDate} is now earlier than ${amzDate(now - MAX_SKEW_MS)} (${amzDate(now)} - 15 min.)`,
      );
    }
    if (signingDate > now + MAX_SKEW_MS) {
      return invalidSignature(
        `Signature not yet current: ${xAmzDate} is still later than ${amzDate(now + MAX_SKEW_MS)} (${amzDate(now)} + 15 min.)`,
      );
    }
    const contentSha = header(req.headers, 'x-amz-content-sha256');
    if (contentSha !== undefined && contentSha !== createHash('sha256').update(req.body).digest('hex')) {
      return invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.");
    }

    // Recompute over exactly the headers the client says it signed.
    const headers: Record<string, string> = {};
    for (const name of parsed.signedHeaders) {
      const v = header(req.headers, name);
      if (v === undefined) return invalidSignature(MISMATCH);
      headers[name] = v;
    }
    const request = new HttpRequest({
      method: req.method,
      protocol: 'http:',
      hostname: headers['host'] ?? '127.0.0.1',
      path: req.path,
      query: req.query,
      headers,
      body: req.body,
    });
    let expected: string | undefined;
    try {
      const signed = await signer.sign(request, {
        signingDate: new Date(signingDate),
        signingRegion: parsed.region,
        signingService: parsed.service,
        signableHeaders: new Set(parsed.signedHeaders),
      });
      expected = /Signature=([0-9a-f]+)/.exec(String(signed.headers['authorization']))?.[1];
    } catch {
      expected = undefined;
    }
    const given = Buffer.from(parsed.signature);
    if (!expected || expected.length !== given.length || !timingSafeEqual(Buffer.from(expected), given)) {
      return invalidSignature(MISMATCH);
    }
    return undefined;
  }
}
