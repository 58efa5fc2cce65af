// Raw HTTP for emulator tests: plain requests and hand-signed AWS JSON 1.1 calls, without the SDK.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { type IncomingHttpHeaders, request } from 'node:http';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RawOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs?: number;
}

/** One HTTP request on a fresh connection; rejects on network errors and on timeout. */
export function rawRequest(baseUrl: string, opts: RawOptions = {}): Promise<RawResponse> {
  const url = new URL(opts.path ?? '/', baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'POST',
        headers: opts.headers ?? {},
        agent: false,
        timeout: opts.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** An unsigned AWS JSON 1.1 call. */
export function awsCall(baseUrl: string, target: string, body: unknown): Promise<RawResponse> {
  return rawRequest(baseUrl, {
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

class Sha256 {
  private h: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.h = this.make();
  }
  private make(): Hash | Hmac {
    if (this.secret === undefined) return createHash('sha256');
    const key =
      typeof this.secret === 'string'
        ? this.secret
        : ArrayBuffer.isView(this.secret)
          ? Buffer.from(this.secret.buffer, this.secret.byteOffset, this.secret.byteLength)
          : Buffer.from(this.secret);
    return createHmac('sha256', key);
  }
  update(d: Uint8Array): void {
    this.h.update(d);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.make();
  }
}

export interface SignedCallOptions {
  target: string;
  body: unknown;
  /** Signing name put in the credential scope. */
  service: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  region?: string;
  signingDate?: Date;
  /** Body actually sent, to tamper after signing. */
  sendBody?: string;
}

/** Signs and sends a POST to `/` with the given headers and body. */
async function signedPost(
  baseUrl: string,
  o: Omit<SignedCallOptions, 'target' | 'body'>,
  headers: Record<string, string>,
  body: string,
): Promise<RawResponse> {
  const url = new URL(baseUrl);
  const signer = new SignatureV4({
    credentials: o.credentials,
    region: o.region ?? 'us-east-1',
    service: o.service,
    sha256: Sha256,
  });
  const req = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    headers: { host: url.host, ...headers },
    body,
  });
  const signed = await signer.sign(req, o.signingDate ? { signingDate: o.signingDate } : {});
  const sent: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) sent[k] = String(v);
  return rawRequest(baseUrl, { headers: sent, body: o.sendBody ?? body });
}

/** A SigV4-signed AWS JSON 1.1 call, signed here rather than by the SDK so tests can bend the rules. */
export function signedCall(baseUrl: string, o: SignedCallOptions): Promise<RawResponse> {
  return signedPost(
    baseUrl,
    o,
    { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': o.target },
    JSON.stringify(o.body),
  );
}

/** A SigV4-signed AWS Query call (STS): `params` form-encoded, Version 2011-06-15. */
export function signedQuery(
  baseUrl: string,
  o: Omit<SignedCallOptions, 'target' | 'body' | 'service'> & { params: Record<string, string> },
): Promise<RawResponse> {
  const body = new URLSearchParams({ Version: '2011-06-15', ...o.params }).toString();
  return signedPost(
    baseUrl,
    { ...o, service: 'sts' },
    { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  );
}
