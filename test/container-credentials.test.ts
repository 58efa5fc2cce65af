// The container credentials endpoint (ECS, EKS Pod Identity, Lambda SnapStart): AWS_CONTAINER_AUTHORIZATION_
// TOKEN_FILE read by the token files' rules (a regular file, size cap, deadline; a link followed, as EKS
// lays it out), and the request never sent through a proxy Node picks from the environment (Node 24's
// NODE_USE_ENV_PROXY). Real sockets on loopback; the Node 24 case runs the real bundle under the pinned Node 24.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HOST_ARCH, LTS, nodeBinary } from '../scripts/node-dist.mjs';
import { fetchContainerCredentials } from '../src/aws/container-credentials.ts';
import { BUNDLE, freePort, SENSITIVE, TEST_CREDENTIALS, TEST_TOKEN, until } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

const dir = tempDir('container-credentials');
const TOKEN_A = 'container-auth-token-a-5f1e9c-never-logged';
const TOKEN_B = 'container-auth-token-b-0a7d33-never-logged';
for (const s of [TOKEN_A, TOKEN_B]) SENSITIVE.add(s);

/** A container credentials endpoint on loopback: records the Authorization of each request. */
let endpoint: Server;
let url = '';
const seen: Array<string | undefined> = [];
const answer = JSON.stringify({
  AccessKeyId: TEST_CREDENTIALS.accessKeyId,
  SecretAccessKey: TEST_CREDENTIALS.secretAccessKey,
  Token: 'session',
  Expiration: new Date(Date.now() + 3_600_000).toISOString(),
});
before(async () => {
  endpoint = createServer((req: IncomingMessage, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(answer);
  });
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(endpoint.address() as { port: number }).port}/creds`;
});
after(() => new Promise<void>((r) => endpoint.close(() => r())));

const fetchWith = (authTokenFile: string) =>
  fetchContainerCredentials({ fullUri: url, authTokenFile }, { timeoutMs: 2000, retries: 0 });

describe('AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', () => {
  test('read again at each fetch (EKS rotates it), through a link as EKS lays it out', async () => {
    // A projected volume: the file is a link into ..data, which the kubelet swaps atomically.
    mkdirSync(join(dir, '..2024_01'), { recursive: true });
    writeFileSync(join(dir, '..2024_01', 'eks-pod-identity-token'), `${TOKEN_A}\n`);
    symlinkSync('..2024_01', join(dir, '..data'));
    symlinkSync('..data/eks-pod-identity-token', join(dir, 'eks-pod-identity-token'));
    const file = join(dir, 'eks-pod-identity-token');
    seen.length = 0;
    assert.equal((await fetchWith(file)).accessKeyId, TEST_CREDENTIALS.accessKeyId);
    writeFileSync(join(dir, '..2024_01', 'eks-pod-identity-token'), TOKEN_B);
    await fetchWith(file);
    assert.deepEqual(seen, [TOKEN_A, TOKEN_B]);
  });

  test('a FIFO, /dev/zero or a file larger than a header could carry: refused at once, nothing sent', async () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    writeFileSync(join(dir, 'huge'), 'x'.repeat(16 * 1024 + 1));
    seen.length = 0;
    for (const [file, why] of [
      [
        join(dir, 'fifo'),
        /^AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \S+fifo is a FIFO: it must be a regular file$/,
      ],
      ['/dev/zero', /^AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \/dev\/zero is a character device/],
      [join(dir, 'huge'), /is larger than 16384 bytes/],
    ] as const) {
      const t0 = Date.now();
      const e = await fetchWith(file).then(
        () => new Error('fetched'),
        (x: Error) => x,
      );
      assert.match(e.message, why);
      assert.ok(Date.now() - t0 < 2000, `${file}: refused within 2 s`);
    }
    assert.deepEqual(seen, [], 'no request was sent');
  });
});

describe('never through a proxy from the environment', () => {
  let node24: string | undefined;
  before(async () => {
    const version = LTS[24];
    if (HOST_ARCH && version !== undefined) node24 = await nodeBinary(version);
  });

  test('Node 24 with NODE_USE_ENV_PROXY=1 and HTTP_PROXY: the credentials request goes to the endpoint itself', async (t) => {
    if (!node24) return t.skip('no pinned Node 24 for this machine');
    const proxied: string[] = [];
    const proxy = createServer((req, res) => {
      proxied.push(`${req.method} ${req.url}`);
      res.writeHead(502).end();
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = await freePort();
    const child = spawn(node24, [BUNDLE, 'serve'], {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        AWS_REGION: 'us-east-1',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: url,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: TOKEN_A,
        PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
        NODE_USE_ENV_PROXY: '1',
        HTTP_PROXY: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    seen.length = 0;
    try {
      // The start-up check fetches the credentials once.
      await until(() => seen.length > 0 || proxied.length > 0, `a credentials fetch; output: ${out}`);
      assert.deepEqual(proxied, [], 'nothing went to the proxy');
      assert.deepEqual(seen, [TOKEN_A]);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await new Promise<void>((r) => proxy.close(() => r()));
    }
    assert.ok(!out.includes(TOKEN_A), 'the token never reaches the output');
  });
});
