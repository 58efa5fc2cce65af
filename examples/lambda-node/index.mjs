// A plain Node.js Lambda handler calling pscache (or the official extension) with no dependencies:
// token header, URL encoding, a per-attempt timeout, and retries with backoff on the failures that pass.
// Locally, against `npm start`: node examples/invoke.mjs examples/lambda-node/index.mjs
import { readFileSync } from 'node:fs';
import { request } from 'node:http';

const PORT = Number(process.env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT || 2773);
const TIMEOUT_MS = 1000;
const RETRIES = 2;
/** Worth another try: throttled, upstream failure, not ready or shutting down, upstream timeout. */
const RETRY_STATUS = new Set([429, 502, 503, 504]);

const TOKEN_VARIABLES = [
  'PARAMETERS_SECRETS_EXTENSION_TOKEN',
  'AWS_TOKEN',
  'AWS_SESSION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
];

/** The daemon's order; a file: value (any case) names the file holding the token, never the token itself. */
function token() {
  for (const name of TOKEN_VARIABLES) {
    const value = process.env[name]?.trim();
    if (!value) continue;
    if (!/^file:/i.test(value)) return value;
    const url = new URL(value);
    if (url.host !== '' || url.search !== '' || url.hash !== '' || /[?#]/.test(value)) {
      throw new Error(`${name}: a token file URL must be file:///path (no host, query or fragment)`);
    }
    return readFileSync(url, 'utf8').replace(/\r?\n$/, '');
  }
  throw new Error(
    'no token: set PARAMETERS_SECRETS_EXTENSION_TOKEN (inside Lambda, AWS_SESSION_TOKEN is used)',
  );
}

/** One GET; resolves { status, headers, body } or rejects on connection errors and the timeout. */
function once(path, headers) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: PORT, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', reject);
    });
    // A timer for the whole attempt; req.setTimeout would only measure idle time.
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    req.on('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GET with retries; returns the parsed JSON body, or throws an Error with .status and .type. */
async function call(path, params) {
  // URLSearchParams encodes `/`, `:`, `&`, `+`, spaces and non-ASCII; interpolating names does not.
  const target = `${path}?${new URLSearchParams(params)}`;
  const headers = { 'X-Aws-Parameters-Secrets-Token': token() };
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await once(target, headers);
    } catch (e) {
      if (attempt === RETRIES)
        throw Object.assign(new Error(`pscache unreachable: ${e.message}`), { status: 0 });
      await sleep(100 * 2 ** attempt * (0.5 + Math.random() / 2));
      continue;
    }
    if (res.status === 200) return JSON.parse(res.body);
    if (RETRY_STATUS.has(res.status) && attempt < RETRIES) {
      const retryAfter = Number(res.headers['retry-after']) * 1000 || 0;
      await sleep(Math.max(retryAfter, 100 * 2 ** attempt * (0.5 + Math.random() / 2)));
      continue;
    }
    // pscache answers {"__type","message"}; the official extension a plain text: never assume JSON.
    let detail = { __type: `HTTP${res.status}`, message: `HTTP ${res.status}` };
    try {
      detail = { ...detail, ...JSON.parse(res.body) };
    } catch {}
    throw Object.assign(new Error(detail.message), { status: res.status, type: detail.__type });
  }
}

export async function getParameter(name, { decrypt = false } = {}) {
  const doc = await call('/systemsmanager/parameters/get', { name, withDecryption: String(decrypt) });
  return doc.Parameter.Value;
}

/** SecretString as a string, SecretBinary as a Buffer. */
export async function getSecret(secretId) {
  const doc = await call('/secretsmanager/get', { secretId });
  return doc.SecretString ?? Buffer.from(doc.SecretBinary, 'base64');
}

export const handler = async (_event) => {
  const [apiEndpoint, dbPassword, credentials] = await Promise.all([
    getParameter('/myapp/api-endpoint'),
    getSecret('prod/db/password'),
    getSecret('prod/api/credentials').then((s) => JSON.parse(s)),
  ]);
  // Use the values; never log or return secrets.
  return {
    statusCode: 200,
    body: JSON.stringify({ apiEndpoint, apiUser: credentials.username, dbPasswordLength: dbPassword.length }),
  };
};
