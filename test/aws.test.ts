// The upstream layer (src/aws) against real loopback HTTP servers: signing, retries, limits, credentials.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '../packages/emulator/src/sigv4.ts';
import { AwsJsonClient, type AwsJsonClientOptions } from '../src/aws/client.ts';
import {
  type AwsCredentials,
  type CredentialSource,
  createCredentialSource,
  staticCredentials,
} from '../src/aws/credentials.ts';
import { resolveEndpoint } from '../src/aws/endpoints.ts';
import { createUpstream } from '../src/aws/index.ts';
import { batchGetSecretValue, getSecretValue } from '../src/aws/secretsmanager.ts';
import { signRequest } from '../src/aws/signer.ts';
import { getParameter, getParameters, getParametersByPath } from '../src/aws/ssm.ts';
import { AwsCallError, type CallObserver } from '../src/aws/types.ts';
import { type AwsConfig, ConfigError, loadConfig } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import { until } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

const CREDS: AwsCredentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE/SESSION+TOKEN==',
};

// ---- a loopback server that keeps score --------------------------------------------------------------

interface Ctx {
  /** Requests seen on this socket, this one included. */
  onSocket: number;
  /** Requests seen by the server, this one included. */
  n: number;
}
type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string, ctx: Ctx) => void;

interface TestServer {
  url: string;
  requests: number;
  connections: number;
  open: number;
  maxOpen: number;
  /** Resolves when no socket is open (at once if none is). */
  allClosed(): Promise<void>;
  close(): Promise<void>;
}

async function serve(handler: Handler): Promise<TestServer> {
  const perSocket = new WeakMap<Socket, number>();
  const idle: (() => void)[] = [];
  const state: TestServer = {
    url: '',
    requests: 0,
    connections: 0,
    open: 0,
    maxOpen: 0,
    allClosed: () =>
      state.open === 0 ? Promise.resolve() : new Promise<void>((resolve) => idle.push(resolve)),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const onSocket = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, onSocket);
      state.requests++;
      handler(req, res, Buffer.concat(chunks).toString('utf8'), { onSocket, n: state.requests });
    });
  });
  server.on('connection', (socket) => {
    state.connections++;
    state.open++;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    socket.on('close', () => {
      state.open--;
      if (state.open === 0) for (const w of idle.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

function json(res: http.ServerResponse, status: number, doc: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'x-amzn-requestid': 'req-1',
    ...headers,
  });
  res.end(JSON.stringify(doc));
}

const PARAM = {
  Name: '/app/db',
  Type: 'SecureString',
  Value: 'v',
  Version: 3,
  LastModifiedDate: 1582657288.8,
};

interface Recorder {
  events: Parameters<CallObserver>[0][];
  observer: CallObserver;
}
function recorder(): Recorder {
  const events: Parameters<CallObserver>[0][] = [];
  return { events, observer: (e) => events.push(e) };
}

function client(url: string, extra: Partial<AwsJsonClientOptions> = {}): AwsJsonClient {
  return new AwsJsonClient({
    service: 'ssm',
    endpoint: url,
    region: 'eu-west-1',
    credentials: staticCredentials(CREDS),
    maxConnections: 3,
    timeoutMs: 0,
    ...extra,
  });
}

async function rejection(p: Promise<unknown>): Promise<AwsCallError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof AwsCallError, `expected AwsCallError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the call to fail');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- signature check with the SDK's own signer ----------------------------------------------------------

/** Re-signs the received request with @smithy/signature-v4 and compares the Authorization headers. */
async function verify(
  req: http.IncomingMessage,
  body: string,
  creds: AwsCredentials,
  region: string,
  service: string,
): Promise<boolean> {
  const auth = req.headers.authorization ?? '';
  const signed = /SignedHeaders=([^,]+)/.exec(auth)?.[1]?.split(';') ?? [];
  const headers: Record<string, string> = {};
  for (const h of signed) headers[h] = String(req.headers[h]);
  const amz = String(req.headers['x-amz-date']);
  const date = new Date(
    `${amz.slice(0, 4)}-${amz.slice(4, 6)}-${amz.slice(6, 8)}T${amz.slice(9, 11)}:${amz.slice(11, 13)}:${amz.slice(13, 15)}Z`,
  );
  // applyChecksum off: pscache, like the SDKs for JSON services, sends no x-amz-content-sha256.
  const signer = new SignatureV4({
    credentials: creds,
    region,
    service,
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: false,
  });
  const request = new HttpRequest({
    method: req.method ?? 'POST',
    protocol: 'http:',
    hostname: String(req.headers.host),
    path: req.url ?? '/',
    headers,
    body,
  });
  const out = await signer.sign(request, { signingDate: date });
  return out.headers['authorization'] === auth;
}

// ---- tests ------------------------------------------------------------------------------------------------

test('the signer reproduces the AWS SigV4 test suite (get-vanilla, post-vanilla)', () => {
  const suite = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
  const sign = (method: string) => {
    const headers: Record<string, string> = { Host: 'example.amazonaws.com' };
    signRequest(
      { method, path: '/', headers, body: '' },
      { credentials: suite, region: 'us-east-1', service: 'service', date: new Date('2015-08-30T12:36:00Z') },
    );
    assert.equal(headers['X-Amz-Date'], '20150830T123600Z');
    return headers['Authorization'];
  };
  const prefix =
    'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=';
  assert.equal(sign('GET'), `${prefix}5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31`);
  assert.equal(sign('POST'), `${prefix}5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b`);
});

test('requests are AWS JSON 1.1 POSTs whose SigV4 signature @smithy/signature-v4 reproduces', async (t) => {
  const seen: {
    target: string;
    type: string;
    token: string;
    ua: string;
    path: string;
    ok: boolean;
    body: string;
  }[] = [];
  const srv = await serve(async (req, res, body) => {
    seen.push({
      target: String(req.headers['x-amz-target']),
      type: String(req.headers['content-type']),
      token: String(req.headers['x-amz-security-token']),
      ua: String(req.headers['user-agent']),
      path: req.url ?? '',
      ok: await verify(req, body, CREDS, 'eu-west-1', 'ssm'),
      body,
    });
    json(res, 200, { Parameter: PARAM });
  });
  const c = client(`${srv.url}/some/prefix`);
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const p = await getParameter(c, { name: '/app/dé jà', version: 3, withDecryption: true });
  assert.deepEqual(p, PARAM);
  await getParameter(c, { name: 'plain', withDecryption: false });
  assert.equal(seen.length, 2);
  for (const s of seen) {
    assert.equal(s.ok, true, 'signature matches');
    assert.equal(s.target, 'AmazonSSM.GetParameter');
    assert.equal(s.type, 'application/x-amz-json-1.1');
    assert.equal(s.token, CREDS.sessionToken);
    assert.match(s.ua, /^pscache\//);
    assert.equal(s.path, '/some/prefix/');
  }
  assert.deepEqual(JSON.parse(seen[0]!.body), { Name: '/app/dé jà:3', WithDecryption: true });
});

test('a wrong signature is caught by the check (the check is not vacuous)', async (t) => {
  let ok: boolean | undefined;
  const srv = await serve(async (req, res, body) => {
    ok = await verify(req, body, { ...CREDS, secretAccessKey: 'another' }, 'eu-west-1', 'ssm');
    json(res, 200, { Parameter: PARAM });
  });
  const c = client(srv.url);
  t.after(async () => {
    c.close();
    await srv.close();
  });
  await getParameter(c, { name: 'x', withDecryption: false });
  assert.equal(ok, false);
});

test('createUpstream: environment credentials, per-service endpoints, targets and signing names', async (t) => {
  const seen: string[] = [];
  const handler =
    (service: string): Handler =>
    async (req, res, body) => {
      const noToken = { accessKeyId: 'AKIDENV', secretAccessKey: 'env/secret/key' };
      const ok = await verify(req, body, noToken, 'ap-southeast-2', service);
      seen.push(
        `${service} ${req.headers['x-amz-target']} ${ok} ${req.headers['x-amz-security-token'] ?? '-'}`,
      );
      if (service === 'ssm') json(res, 200, { Parameter: PARAM });
      else json(res, 200, { Name: 'db', ARN: 'arn:x', SecretString: 's', VersionStages: ['AWSCURRENT'] });
    };
  const ssm = await serve(handler('ssm'));
  const sm = await serve(handler('secretsmanager'));
  const config = loadConfig({
    AWS_REGION: 'ap-southeast-2',
    AWS_ACCESS_KEY_ID: 'AKIDENV',
    AWS_SECRET_ACCESS_KEY: 'env/secret/key',
    AWS_ENDPOINT_URL_SSM: ssm.url,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
  });
  const up = createUpstream(config, silentLogger);
  t.after(async () => {
    up.close();
    await ssm.close();
    await sm.close();
  });
  assert.equal(up.credentials.name, 'environment');
  await getParameter(up.ssm, { name: 'a', withDecryption: false });
  const s = await getSecretValue(up.secretsmanager, { secretId: 'db', versionStage: 'AWSCURRENT' });
  assert.equal(s.SecretString, 's');
  assert.deepEqual(seen, [
    'ssm AmazonSSM.GetParameter true -',
    'secretsmanager secretsmanager.GetSecretValue true -',
  ]);
});

test('createUpstream: no Region is a ConfigError naming AWS_REGION unless every endpoint is overridden', async (t) => {
  const keys = { AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'k' };
  assert.throws(
    () => createUpstream(loadConfig(keys), silentLogger),
    (e: unknown) => e instanceof ConfigError && /AWS_REGION/.test(e.message),
  );
  assert.throws(
    () => createUpstream(loadConfig({ ...keys, AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:1' }), silentLogger),
    ConfigError,
  );
  let scope = '';
  const srv = await serve((req, res) => {
    scope = /Credential=[^/]+\/\d{8}\/([^,]+),/.exec(String(req.headers.authorization))?.[1] ?? '';
    json(res, 200, { Parameter: PARAM });
  });
  const up = createUpstream(loadConfig({ ...keys, AWS_ENDPOINT_URL: srv.url }), silentLogger);
  t.after(async () => {
    up.close();
    await srv.close();
  });
  await getParameter(up.ssm, { name: 'a', withDecryption: false });
  assert.equal(scope, 'us-east-1/ssm/aws4_request');
});

test('error codes are sanitised as the SDKs do; message or Message; header X-Amzn-ErrorType', async (t) => {
  const srv = await serve((_req, res, body) => {
    const name = JSON.parse(body).Name as string;
    if (name === 'coral')
      json(res, 400, {
        __type:
          'com.amazon.coral.service#ParameterNotFound:http://internal.amazon.com/coral/com.amazon.coral.service/',
      });
    else if (name === 'header')
      json(res, 400, { message: 'from header' }, { 'x-amzn-errortype': 'AccessDeniedException:http://x/' });
    else if (name === 'Message') json(res, 400, { __type: 'InvalidKeyId', Message: 'capital M' });
    else if (name === 'message') json(res, 400, { __type: 'ValidationException', message: 'small m' });
    else {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end('<html>oops</html>');
    }
  });
  const rec = recorder();
  const c = client(srv.url, { observer: rec.observer });
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const get = (name: string) => rejection(getParameter(c, { name, withDecryption: false }));

  const coral = await get('coral');
  assert.equal(coral.code, 'ParameterNotFound');
  assert.equal(coral.message, 'ParameterNotFound', 'no message: the code stands in');
  assert.equal(coral.kind, 'aws');
  assert.equal(coral.httpStatus, 400);
  assert.equal(coral.requestId, 'req-1');

  const h = await get('header');
  assert.equal(h.code, 'AccessDeniedException');
  assert.equal(h.message, 'from header');

  const m1 = await get('Message');
  assert.deepEqual([m1.code, m1.message, m1.kind], ['InvalidKeyId', 'capital M', 'aws']);
  const m2 = await get('message');
  assert.deepEqual([m2.code, m2.message, m2.kind], ['ValidationException', 'small m', 'aws']);

  const html = await get('html');
  assert.deepEqual([html.code, html.kind, html.httpStatus], ['InternalFailure', 'server', 500]);
  // 4 single-attempt 4xx calls, then 3 attempts at the 500.
  assert.equal(srv.requests, 7);
  assert.deepEqual(
    rec.events.map((e) => `${e.outcome}:${e.attempt}`),
    ['error:1', 'error:1', 'error:1', 'error:1', 'server:1', 'server:2', 'server:3'],
  );
});

test('throttled twice, then answered: the result, after exactly 3 attempts', async (t) => {
  const srv = await serve((_req, res, _body, { n }) => {
    if (n <= 2) json(res, 400, { __type: 'ThrottlingException', message: 'Rate exceeded' });
    else json(res, 200, { Parameter: PARAM });
  });
  const rec = recorder();
  const c = client(srv.url, { observer: rec.observer });
  t.after(async () => {
    c.close();
    await srv.close();
  });
  assert.deepEqual(await getParameter(c, { name: 'a', withDecryption: false }), PARAM);
  assert.equal(srv.requests, 3);
  assert.deepEqual(
    rec.events.map((e) => e.outcome),
    ['throttled', 'throttled', 'ok'],
  );
});

test('throttled on every attempt: kind throttled; 429 without a code counts as throttling', async (t) => {
  const srv = await serve((_req, res, _body, { n }) => {
    if (n <= 3) json(res, 400, { __type: 'TooManyRequestsException' });
    else {
      res.writeHead(429);
      res.end();
    }
  });
  const c = client(srv.url, { maxAttempts: 3 });
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const e = await rejection(getParameter(c, { name: 'a', withDecryption: false }));
  assert.deepEqual([e.code, e.kind], ['TooManyRequestsException', 'throttled']);
  const e2 = await rejection(c.call('GetParameter', {}));
  assert.deepEqual([e2.code, e2.kind, e2.httpStatus], ['TooManyRequestsException', 'throttled', 429]);
  assert.equal(srv.requests, 6);
});

test('500 on every attempt: kind server after exactly 3 attempts', async (t) => {
  const srv = await serve((_req, res) => json(res, 500, { __type: 'InternalServerError', message: 'boom' }));
  const c = client(srv.url);
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const e = await rejection(getParameter(c, { name: 'a', withDecryption: false }));
  assert.deepEqual([e.code, e.message, e.kind, e.httpStatus], ['InternalServerError', 'boom', 'server', 500]);
  assert.equal(srv.requests, 3);
});

test('400 ValidationException is not retried', async (t) => {
  const srv = await serve((_req, res) =>
    json(res, 400, { __type: 'ValidationException', message: 'bad name' }),
  );
  const c = client(srv.url);
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const e = await rejection(getParameter(c, { name: 'a b', withDecryption: false }));
  assert.deepEqual([e.code, e.kind], ['ValidationException', 'aws']);
  assert.equal(srv.requests, 1);
});

test('a hanging server: kind timeout after 3 attempts of timeoutMs each', async (t) => {
  const srv = await serve(() => {});
  const c = client(srv.url, { timeoutMs: 150 });
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const started = Date.now();
  const e = await rejection(getParameter(c, { name: 'a', withDecryption: false }));
  const elapsed = Date.now() - started;
  assert.deepEqual([e.code, e.kind], ['TimeoutError', 'timeout']);
  assert.equal(srv.requests, 3);
  // Each attempt waited its full timeout (a slower machine only adds to this); that it ended at all is
  // the TimeoutError: the server never answers.
  assert.ok(elapsed >= 450, `took ${elapsed} ms`);
});

test('a connection reset is retried (and counts as an attempt)', async (t) => {
  const srv = await serve((req, res, _body, { n }) => {
    if (n === 1) req.socket.destroy();
    else json(res, 200, { Parameter: PARAM });
  });
  const rec = recorder();
  const c = client(srv.url, { observer: rec.observer });
  t.after(async () => {
    c.close();
    await srv.close();
  });
  assert.deepEqual(await getParameter(c, { name: 'a', withDecryption: false }), PARAM);
  assert.deepEqual(
    rec.events.map((e) => `${e.outcome}:${e.attempt}`),
    ['network:1', 'ok:2'],
  );
  // With one attempt allowed, a reset on a fresh socket is final: only reused sockets get a free retry.
  const srv2 = await serve((req) => req.socket.destroy());
  const one = client(srv2.url, { maxAttempts: 1 });
  t.after(async () => {
    one.close();
    await srv2.close();
  });
  const e = await rejection(one.call('GetParameter', {}));
  assert.equal(e.kind, 'network');
  assert.equal(srv2.requests, 1);
});

test('a kept-alive socket closed by the far side (freeze/thaw) is retried at once, without using an attempt', async (t) => {
  // The server kills any socket on its second request: exactly what a thawed Lambda meets when the far
  // side closed the idle connection while the process was frozen.
  const srv = await serve((req, res, _body, { onSocket }) => {
    if (onSocket > 1) req.socket.destroy();
    else json(res, 200, { Parameter: PARAM });
  });
  const rec = recorder();
  const c = client(srv.url, { maxAttempts: 1, observer: rec.observer });
  t.after(async () => {
    c.close();
    await srv.close();
  });
  await getParameter(c, { name: 'a', withDecryption: false });
  await sleep(20); // let the socket go back to the pool
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await getParameter(c, { name: 'a', withDecryption: false }), PARAM);
    await sleep(20);
  }
  assert.equal(srv.connections, 4);
  assert.deepEqual(
    rec.events.map((e) => `${e.outcome}:${e.attempt}`),
    ['ok:1', 'network:1', 'ok:1', 'network:1', 'ok:1', 'network:1', 'ok:1'],
  );
});

test('maxConnections caps the sockets open to one service', async (t) => {
  const srv = await serve((_req, res) => setTimeout(() => json(res, 200, { Parameter: PARAM }), 120));
  const c = client(srv.url, { maxConnections: 2 });
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) => getParameter(c, { name: `p${i}`, withDecryption: false })),
  );
  assert.equal(results.length, 6);
  assert.equal(srv.requests, 6);
  assert.equal(srv.maxOpen, 2);
  assert.equal(srv.connections, 2, 'sockets are reused');
});

test('an endless answer is cut off at 8 MB: malformed, not a timeout, little more than 8 MB sent', async (t) => {
  let written = 0;
  const srv = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let stopped = false;
    res.on('close', () => {
      stopped = true;
    });
    const pump = () => {
      while (!stopped) {
        written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  const c = client(srv.url);
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const e = await rejection(getParameter(c, { name: 'a', withDecryption: false }));
  // Read to the end it would never finish (the attempt ceiling would make it a timeout).
  assert.deepEqual([e.code, e.kind, e.httpStatus], ['MalformedResponse', 'malformed', 200]);
  assert.equal(srv.requests, 1, 'not retried');
  // What the server got out before the socket closed: the 8 MB read, plus what the socket buffers held.
  assert.ok(written < 64 * 1024 * 1024, `${written} bytes sent`);
});

test('a declared 50 MB answer is refused before reading it', async (t) => {
  const srv = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': String(50 * 1024 * 1024) });
    res.write('{"Parameter":');
  });
  const c = client(srv.url);
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const e = await rejection(c.call('GetParameter', {}));
  // Refused on the header: waiting for the body would have ended in a timeout, not 'malformed'.
  assert.equal(e.kind, 'malformed');
  assert.match(e.message, /larger than 8 MB/);
});

test('2xx answers that are not a JSON object, or lack the expected shape, are malformed', async (t) => {
  const bodies: Record<string, string> = {
    notjson: '{"Parameter": {"Name": ',
    array: '[1,2]',
    empty: '{}',
    wrongtype: '{"Parameter": {"Name": 5, "Type": "String"}}',
    html: '<html>captive portal</html>',
  };
  const srv = await serve((_req, res, body) => {
    const which = JSON.parse(body).Name as string;
    res.writeHead(200, { 'content-type': which === 'html' ? 'text/html' : 'application/x-amz-json-1.1' });
    res.end(bodies[which]);
  });
  const c = client(srv.url);
  t.after(async () => {
    c.close();
    await srv.close();
  });
  for (const name of Object.keys(bodies)) {
    const e = await rejection(getParameter(c, { name, withDecryption: false }));
    assert.deepEqual([name, e.code, e.kind], [name, 'MalformedResponse', 'malformed']);
  }
  assert.equal(srv.requests, Object.keys(bodies).length, 'never retried');
});

test('SSM and Secrets Manager wrappers: request bodies and answer shapes', async (t) => {
  const calls: string[] = [];
  const srv = await serve((req, res, body) => {
    const target = String(req.headers['x-amz-target']);
    const input = JSON.parse(body);
    calls.push(`${target} ${body}`);
    switch (target) {
      case 'AmazonSSM.GetParameter':
        return json(res, 200, { Parameter: { ...PARAM, Name: input.Name } });
      case 'AmazonSSM.GetParameters':
        return json(res, 200, {
          Parameters: input.Names.filter((n: string) => n.startsWith('/ok')).map((n: string) => ({
            ...PARAM,
            Name: n,
          })),
          InvalidParameters: input.Names.filter((n: string) => !n.startsWith('/ok')),
        });
      case 'AmazonSSM.GetParametersByPath':
        return json(
          res,
          200,
          input.NextToken ? { Parameters: [PARAM] } : { Parameters: [], NextToken: 'page2' },
        );
      case 'secretsmanager.GetSecretValue':
        return json(
          res,
          200,
          input.SecretId === 'bad' ? { VersionId: 'x' } : { Name: input.SecretId, SecretBinary: 'AAE=' },
        );
      case 'secretsmanager.BatchGetSecretValue':
        return json(res, 200, {
          SecretValues: [{ Name: 'a', SecretString: 'x', CreatedDate: 1.5e9, VersionStages: ['AWSCURRENT'] }],
          Errors: [{ SecretId: 'b', ErrorCode: 'ResourceNotFoundException', Message: 'nope' }],
        });
      default:
        return json(res, 400, { __type: 'UnknownOperationException' });
    }
  });
  const ssm = client(srv.url);
  const sm = client(srv.url, { service: 'secretsmanager' });
  t.after(async () => {
    ssm.close();
    sm.close();
    await srv.close();
  });
  assert.equal(
    (await getParameter(ssm, { name: '/a', label: 'prod', withDecryption: true })).Name,
    '/a:prod',
  );
  assert.deepEqual(await getParameters(ssm, ['/ok/1', '/missing'], false), {
    Parameters: [{ ...PARAM, Name: '/ok/1' }],
    InvalidParameters: ['/missing'],
  });
  await assert.rejects(getParameters(ssm, [], false), RangeError);
  assert.deepEqual(
    await getParametersByPath(ssm, { path: '/app/', recursive: true, withDecryption: false }),
    {
      Parameters: [],
      NextToken: 'page2',
    },
  );
  assert.deepEqual(
    await getParametersByPath(ssm, {
      path: '/app/',
      recursive: true,
      withDecryption: false,
      nextToken: 'page2',
      maxResults: 10,
    }),
    { Parameters: [PARAM] },
  );
  assert.deepEqual(await getSecretValue(sm, { secretId: 'bin', versionId: 'v1' }), {
    Name: 'bin',
    SecretBinary: 'AAE=',
  });
  const bad = await rejection(getSecretValue(sm, { secretId: 'bad' }));
  assert.equal(bad.kind, 'malformed');
  const batch = await batchGetSecretValue(sm, ['a', 'b']);
  assert.equal(batch.SecretValues[0]?.SecretString, 'x');
  assert.deepEqual(batch.Errors, [
    { SecretId: 'b', ErrorCode: 'ResourceNotFoundException', Message: 'nope' },
  ]);
  assert.deepEqual(
    calls.map((c) => c.replace(/ .*/, '')),
    [
      'AmazonSSM.GetParameter',
      'AmazonSSM.GetParameters',
      'AmazonSSM.GetParametersByPath',
      'AmazonSSM.GetParametersByPath',
      'secretsmanager.GetSecretValue',
      'secretsmanager.GetSecretValue',
      'secretsmanager.BatchGetSecretValue',
    ],
  );
  assert.deepEqual(JSON.parse(calls[3]!.replace(/^\S+ /, '')), {
    Path: '/app/',
    Recursive: true,
    WithDecryption: false,
    MaxResults: 10,
    NextToken: 'page2',
  });
  assert.deepEqual(JSON.parse(calls[4]!.replace(/^\S+ /, '')), { SecretId: 'bin', VersionId: 'v1' });
  assert.deepEqual(JSON.parse(calls[6]!.replace(/^\S+ /, '')), { SecretIdList: ['a', 'b'] });
});

const baseAws: AwsConfig = {
  region: 'eu-west-1',
  envCredentials: undefined,
  containerCredentials: undefined,
  endpoints: { ssm: undefined, secretsmanager: undefined, sts: undefined },
  roleSessionName: 'pscache-test',
  useFips: false,
  useDualstack: false,
  profile: undefined,
};

/** A container credentials endpoint handing out numbered keys that live `lifetimeMs`. */
async function containerEndpoint(lifetimeMs: number, token = 'container-token', now = Date.now) {
  let issued = 0;
  const srv = await serve((req, res) => {
    if (req.headers.authorization !== token) {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ Code: 'AccessDenied', Message: `bad token ${req.headers.authorization}` }));
      return;
    }
    issued++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        AccessKeyId: `AKIDC${issued}`,
        SecretAccessKey: `container-secret-${issued}`,
        Token: `container-session-${issued}`,
        Expiration: new Date(now() + lifetimeMs).toISOString(),
      }),
    );
  });
  return { srv, issued: () => issued };
}

/** An SSM endpoint that checks each signature against the numbered container keys. */
async function keyCheckingSsm(reject?: (keyId: string) => boolean) {
  const used: string[] = [];
  const srv = await serve(async (req, res, body) => {
    const keyId = /Credential=([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? '';
    const n = keyId.replace('AKIDC', '');
    const creds = {
      accessKeyId: keyId,
      secretAccessKey: `container-secret-${n}`,
      sessionToken: `container-session-${n}`,
    };
    const ok =
      (await verify(req, body, creds, 'eu-west-1', 'ssm')) &&
      req.headers['x-amz-security-token'] === creds.sessionToken;
    used.push(`${keyId}${ok ? '' : ' BAD SIGNATURE'}`);
    if (reject?.(keyId))
      json(res, 400, {
        __type: 'ExpiredTokenException',
        message: 'The security token included in the request is expired',
      });
    else json(res, 200, { Parameter: PARAM });
  });
  return { srv, used };
}

test('container credentials: Authorization header sent, refreshed before expiry, new key used', async (t) => {
  // The credentials' time is the test's: it moves only when the test says so.
  let now = Date.now();
  const clock = () => now;
  const container = await containerEndpoint(2000, 'container-token', clock);
  const ssm = await keyCheckingSsm();
  const source = createCredentialSource(
    {
      ...baseAws,
      containerCredentials: { fullUri: `${container.srv.url}/v1/credentials`, authToken: 'container-token' },
    },
    silentLogger,
    { now: clock },
  );
  assert.equal(source.name, 'container');
  const c = client(ssm.srv.url, { credentials: source });
  t.after(async () => {
    c.close();
    await container.srv.close();
    await ssm.srv.close();
  });
  await Promise.all([1, 2, 3].map(() => getParameter(c, { name: 'a', withDecryption: false })));
  assert.equal(container.issued(), 1, 'concurrent first fetches coalesced');
  now += 1100; // past the refresh point (half of a 2 s lifetime), before the last tenth
  await getParameter(c, { name: 'a', withDecryption: false });
  // The read was answered with the current key; the refresh it started runs in the background.
  // The container answers the refresh before the source holds what it answered: wait for the source.
  await until(
    async () => (await source.get()).accessKeyId === 'AKIDC2',
    'the background refresh to land in the source',
  );
  await getParameter(c, { name: 'a', withDecryption: false });
  assert.equal(container.issued(), 2, 'refreshed once');
  // On the credentials' clock the old key had 0.9 s left: the new one was in use before it expired.
  assert.deepEqual(ssm.used, ['AKIDC1', 'AKIDC1', 'AKIDC1', 'AKIDC1', 'AKIDC2']);
});

test('ExpiredTokenException makes the client fetch new credentials and try again', async (t) => {
  const container = await containerEndpoint(3_600_000);
  const ssm = await keyCheckingSsm((keyId) => keyId === 'AKIDC1');
  const source = createCredentialSource(
    { ...baseAws, containerCredentials: { fullUri: container.srv.url, authToken: 'container-token' } },
    silentLogger,
  );
  const c = client(ssm.srv.url, { credentials: source });
  t.after(async () => {
    c.close();
    await container.srv.close();
    await ssm.srv.close();
  });
  assert.deepEqual(await getParameter(c, { name: 'a', withDecryption: false }), PARAM);
  assert.deepEqual(ssm.used, ['AKIDC1', 'AKIDC2']);
});

test('credential failures are CredentialsProviderError, kind aws or network, never showing the token', async (t) => {
  const container = await containerEndpoint(3_600_000, 'the-right-token');
  const dead = await serve(() => {});
  const deadUrl = dead.url;
  await dead.close();
  const ssm = await serve((_req, res) => json(res, 200, { Parameter: PARAM }));
  t.after(async () => {
    await container.srv.close();
    await ssm.close();
  });
  const wrong = createCredentialSource(
    { ...baseAws, containerCredentials: { fullUri: container.srv.url, authToken: 'wrong-token-value' } },
    silentLogger,
    { containerRetries: 0 },
  );
  const refused = createCredentialSource(
    { ...baseAws, containerCredentials: { fullUri: deadUrl, authToken: 'wrong-token-value' } },
    silentLogger,
    { containerRetries: 0 },
  );
  const rec = recorder();
  const c1 = client(ssm.url, { credentials: wrong, observer: rec.observer });
  const c2 = client(ssm.url, { credentials: refused });
  t.after(() => {
    c1.close();
    c2.close();
  });
  const e1 = await rejection(getParameter(c1, { name: 'a', withDecryption: false }));
  assert.deepEqual([e1.code, e1.kind], ['CredentialsProviderError', 'aws']);
  assert.match(e1.message, /container credentials endpoint/);
  assert.doesNotMatch(e1.message, /wrong-token-value/);
  const e2 = await rejection(getParameter(c2, { name: 'a', withDecryption: false }));
  assert.deepEqual([e2.code, e2.kind], ['CredentialsProviderError', 'network']);
  assert.doesNotMatch(e2.message, /wrong-token-value/);
  assert.equal(ssm.requests, 0, 'nothing unsigned went out');
  assert.deepEqual(
    rec.events.map((e) => e.outcome),
    ['error'],
  );
});

test('upstream error messages never carry the secret key or the session token', async (t) => {
  // A misbehaving upstream (or proxy) that echoes what it was sent.
  const srv = await serve((req, res) =>
    json(res, 403, {
      __type: 'UnrecognizedClientException',
      message: `token ${req.headers['x-amz-security-token']} secret ${CREDS.secretAccessKey} auth ${req.headers.authorization}`,
    }),
  );
  const c = client(srv.url);
  t.after(async () => {
    c.close();
    await srv.close();
  });
  const e = await rejection(getParameter(c, { name: 'a', withDecryption: false }));
  assert.equal(e.code, 'UnrecognizedClientException');
  for (const text of [e.message, String(e), JSON.stringify(e), e.stack ?? '']) {
    assert.ok(!text.includes(CREDS.secretAccessKey), 'no secret key');
    assert.ok(!text.includes(CREDS.sessionToken!), 'no session token');
  }
  assert.match(e.message, /\(redacted\)/);
});

test('close() shuts the pool and fails later calls', async (t) => {
  const srv = await serve((_req, res) => json(res, 200, { Parameter: PARAM }));
  t.after(() => srv.close());
  const c = client(srv.url);
  await getParameter(c, { name: 'a', withDecryption: false });
  assert.equal(srv.open, 1, 'the socket of the first call is pooled');
  const started = performance.now();
  c.close();
  const e = await rejection(getParameter(c, { name: 'a', withDecryption: false }));
  assert.equal(e.code, 'ClientClosed');
  // The server sees the pooled socket close when its FIN arrives, however long that takes under load; left
  // alone, the client's idle timeout (4 s) would close it too, so close() must beat that by far.
  await srv.allClosed();
  assert.ok(performance.now() - started < 3000, 'the pooled socket was closed by close(), not by idling');
});

test('endpoint resolution: override, default, FIPS, dual-stack, China, GovCloud', () => {
  const r = (
    service: 'ssm' | 'secretsmanager',
    region: string,
    useFips = false,
    useDualstack = false,
    override?: string,
  ) => resolveEndpoint(service, { region, useFips, useDualstack, override });
  assert.equal(r('ssm', 'eu-west-1', true, true, 'http://localhost:4566/'), 'http://localhost:4566/');
  assert.equal(r('ssm', 'eu-west-1'), 'https://ssm.eu-west-1.amazonaws.com');
  assert.equal(r('ssm', 'us-east-1', true), 'https://ssm-fips.us-east-1.amazonaws.com');
  assert.equal(r('ssm', 'us-east-1', false, true), 'https://ssm.us-east-1.api.aws');
  assert.equal(r('ssm', 'us-east-1', true, true), 'https://ssm-fips.us-east-1.api.aws');
  assert.equal(r('ssm', 'cn-north-1'), 'https://ssm.cn-north-1.amazonaws.com.cn');
  assert.equal(r('ssm', 'cn-north-1', false, true), 'https://ssm.cn-north-1.api.amazonwebservices.com.cn');
  assert.equal(r('ssm', 'us-gov-west-1', true), 'https://ssm.us-gov-west-1.amazonaws.com');
  assert.equal(
    resolveEndpoint('sts', { region: 'eu-west-1', useFips: false, useDualstack: false }),
    'https://sts.eu-west-1.amazonaws.com',
  );
  assert.equal(
    resolveEndpoint('sts', { region: 'us-east-1', useFips: true, useDualstack: false }),
    'https://sts-fips.us-east-1.amazonaws.com',
  );
  assert.equal(r('secretsmanager', 'eu-west-1'), 'https://secretsmanager.eu-west-1.amazonaws.com');
  assert.equal(r('secretsmanager', 'us-east-1', true), 'https://secretsmanager-fips.us-east-1.amazonaws.com');
  // Secrets Manager's regular hosts are already dual-stack in the aws partition.
  assert.equal(
    r('secretsmanager', 'us-east-1', false, true),
    'https://secretsmanager.us-east-1.amazonaws.com',
  );
  assert.equal(
    r('secretsmanager', 'cn-northwest-1'),
    'https://secretsmanager.cn-northwest-1.amazonaws.com.cn',
  );
  assert.equal(
    r('secretsmanager', 'cn-north-1', true, true),
    'https://secretsmanager-fips.cn-north-1.api.amazonwebservices.com.cn',
  );
});

test('endpoint resolution matches the AWS SDK v3 resolvers (SSM, Secrets Manager, STS) for every partition and flag', async () => {
  const { SSMClient } = await import('@aws-sdk/client-ssm');
  const { SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  const { STSClient } = await import('@aws-sdk/client-sts');
  const opts = { region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } };
  const sdk = {
    ssm: new SSMClient(opts),
    secretsmanager: new SecretsManagerClient(opts),
    sts: new STSClient(opts),
  };
  const regions = [
    'us-east-1',
    'eu-central-2',
    'ap-southeast-7',
    'il-central-1',
    'cn-north-1',
    'cn-northwest-1',
    'us-gov-west-1',
    'us-gov-east-1',
    'us-iso-east-1',
    'us-isob-east-1',
    'eu-isoe-west-1',
    'us-isof-south-1',
    'eusc-de-east-1',
    'xx-future-9',
  ];
  let compared = 0;
  for (const service of ['ssm', 'secretsmanager', 'sts'] as const) {
    const provider = sdk[service].config.endpointProvider as (p: object) => { url: URL };
    for (const region of regions) {
      for (const useFips of [false, true]) {
        for (const useDualstack of [false, true]) {
          // STS: its regional endpoints, as the SDKs v3 use by default (UseGlobalEndpoint false).
          const want = provider({
            Region: region,
            UseFIPS: useFips,
            UseDualStack: useDualstack,
            ...(service === 'sts' ? { UseGlobalEndpoint: false } : {}),
          }).url.href;
          const got = resolveEndpoint(service, { region, useFips, useDualstack });
          assert.equal(`${got}/`, want, `${service} ${region} fips=${useFips} dualstack=${useDualstack}`);
          compared++;
        }
      }
    }
    sdk[service].destroy();
  }
  assert.equal(compared, 3 * regions.length * 4);
});

test('default credential chain is only a fallback: env and container sources win', () => {
  const env = createCredentialSource(
    {
      ...baseAws,
      envCredentials: { accessKeyId: 'A', secretAccessKey: 'S' },
      containerCredentials: { fullUri: 'http://127.0.0.1:1/' },
    },
    silentLogger,
  );
  assert.equal(env.name, 'environment');
  const container = createCredentialSource(
    { ...baseAws, containerCredentials: { relativeUri: '/v2/x' } },
    silentLogger,
  );
  assert.equal(container.name, 'container');
  const chain: CredentialSource = createCredentialSource(baseAws, silentLogger);
  assert.equal(chain.name, 'default chain');
});

test('the SDK default chain (loaded on first use) reads a named profile', async (t) => {
  const dir = tempDir('aws', t);
  const saved = { ...process.env };
  t.after(() => {
    for (const k of ['AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE', 'AWS_EC2_METADATA_DISABLED']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  writeFileSync(
    join(dir, 'credentials'),
    '[pscache-test]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile/secret\n',
  );
  writeFileSync(join(dir, 'config'), '');
  // The SDK's chain reads these itself; pscache passes only the profile name.
  process.env['AWS_SHARED_CREDENTIALS_FILE'] = join(dir, 'credentials');
  process.env['AWS_CONFIG_FILE'] = join(dir, 'config');
  process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
  const source = createCredentialSource({ ...baseAws, profile: 'pscache-test' }, silentLogger);
  assert.equal(source.name, 'default chain');
  const creds = await source.get();
  assert.equal(creds.accessKeyId, 'AKIDPROFILE');
  assert.equal(creds.secretAccessKey, 'profile/secret');
  assert.equal(await source.get(), creds, 'cached');
});
