// Fetches credentials from the container credentials endpoint (Lambda SnapStart, ECS, EKS Pod Identity).
// Hand-written rather than @aws-sdk/credential-provider-http: bundled, that package added ~200 KB to the
// one-file bundle and ~20 ms to every cold start (measured), for one GET and a JSON parse.
import type { Agent } from 'node:http';
import { nodeHttp, nodeHttps } from '../builtins.ts';
import { MAX_TOKEN_LENGTH, readTokenFile } from '../client/token-source.ts';
import type { AwsCredentials } from './types.ts';

export interface ContainerEndpoint {
  fullUri?: string;
  relativeUri?: string;
  authToken?: string;
  authTokenFile?: string;
}

/** The ECS agent's fixed address for AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. */
const ECS_HOST = 'http://169.254.170.2';
/** Plain-http hosts the SDKs accept for a full URI: loopback, the ECS agent and EKS Pod Identity. */
const HTTP_HOSTS = new Set(['localhost', '169.254.170.2', '169.254.170.23', '[fd00:ec2::23]', '[::1]']);

/** Where to ask, refusing plain-http URIs off the host (the answer is a credential). */
export function containerUrl(e: ContainerEndpoint): URL {
  const url = new URL(e.fullUri ?? `${ECS_HOST}${e.relativeUri ?? ''}`);
  if (url.protocol === 'https:') return url;
  if (url.protocol !== 'http:')
    throw new Error(`unsupported protocol ${url.protocol} in the container credentials URI`);
  const host = url.hostname.toLowerCase();
  if (!HTTP_HOSTS.has(host) && !/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
    throw new Error(
      `plain http to ${host} is not allowed for container credentials (loopback, ECS or EKS only)`,
    );
  }
  return url;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One fetch with up to `retries` more tries on failure; throws an Error without the token in it. */
export async function fetchContainerCredentials(
  e: ContainerEndpoint,
  opts: { timeoutMs: number; retries: number },
): Promise<AwsCredentials> {
  const url = containerUrl(e);
  let last: unknown;
  for (let attempt = 0; attempt <= opts.retries; attempt++) {
    if (attempt > 0) await sleep(50 * 2 ** (attempt - 1));
    try {
      // The token file is re-read on every fetch: EKS rotates it.
      const token = e.authTokenFile !== undefined ? readAuthTokenFile(e.authTokenFile) : e.authToken;
      return parse(await get(url, token, opts.timeoutMs));
    } catch (err) {
      last = err;
      if (err instanceof ClientError) break; // a 4xx will not change on a retry
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

class ClientError extends Error {}

/**
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, by the token files' rules (src/client/token-source.ts): a regular
 * file only (a FIFO or /dev/zero is refused at once, never read), at most MAX_TOKEN_LENGTH bytes (what a
 * header can carry), read within the deadline. Unlike a token file it may be a symbolic link: EKS Pod
 * Identity mounts it in a projected volume, where each file is a link into `..data`, and names it itself.
 */
function readAuthTokenFile(path: string): string {
  return readTokenFile(path, 'daemon', {
    followLinks: true,
    maxBytes: MAX_TOKEN_LENGTH,
    what: 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  }).token.trim();
}

/**
 * Agents of pscache's own, never Node's global ones: with NODE_USE_ENV_PROXY (Node 24) those send requests
 * through HTTP_PROXY, and the proxy would get the authorization token and the credentials in the answer.
 * The endpoint is on the host or link-local, always reached directly. No keep-alive: a fetch is rare.
 */
const agents: { http?: Agent; https?: Agent } = {};

async function get(url: URL, token: string | undefined, timeoutMs: number): Promise<string> {
  let request: typeof import('node:http').request;
  let agent: Agent;
  if (url.protocol === 'https:') {
    const https = nodeHttps();
    request = https.request;
    agent = agents.https ??= new https.Agent({ keepAlive: false });
  } else {
    const http = nodeHttp();
    request = http.request;
    agent = agents.http ??= new http.Agent({ keepAlive: false });
  }
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'GET',
      headers: token ? { Authorization: token } : {},
      timeout: timeoutMs,
      agent,
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 64 * 1024) req.destroy(new Error('the answer is larger than 64 KB'));
        else chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(Buffer.concat(chunks).toString());
        else if (status >= 400 && status < 500)
          reject(new ClientError(`the endpoint answered HTTP ${status}`));
        else reject(new Error(`the endpoint answered HTTP ${status}`));
      });
    });
    req.end();
  });
}

function parse(text: string): AwsCredentials {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('the answer is not JSON');
  }
  const d = doc as Record<string, unknown>;
  if (typeof d['AccessKeyId'] !== 'string' || typeof d['SecretAccessKey'] !== 'string') {
    throw new Error('the answer has no AccessKeyId and SecretAccessKey');
  }
  const expiration = typeof d['Expiration'] === 'string' ? new Date(d['Expiration']) : undefined;
  if (expiration && Number.isNaN(expiration.getTime()))
    throw new Error('the answer has an invalid Expiration');
  return {
    accessKeyId: d['AccessKeyId'],
    secretAccessKey: d['SecretAccessKey'],
    ...(typeof d['Token'] === 'string' && d['Token'] !== '' ? { sessionToken: d['Token'] } : {}),
    ...(expiration ? { expiration } : {}),
  };
}
