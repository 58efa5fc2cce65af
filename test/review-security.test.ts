// Regression tests for the breaks an adversarial review of the security defences (SECURITY.md) found: each
// test is named after the guarantee it keeps and failed while its break was there. Real processes over
// loopback (the bundled daemon, the shell client, `pscache token`, `pscache dev`), fake upstreams and
// proxies on 127.0.0.1 where the case needs a misbehaving one. Waits are polls with generous deadlines and
// counts are bounds that hold however slow the machine is. Nothing real is ever used as a secret: values
// are registered with sensitive().
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, linkSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import {
  BUNDLE,
  Daemons,
  freePort,
  httpGet,
  ROOT,
  type RunningProcess,
  runCommand,
  sleep,
  spawnPscache,
  TEST_CREDENTIALS,
  TEST_TOKEN,
  until,
} from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';
import { sensitive } from './helpers/world.ts';

const SCRIPT = join(ROOT, 'examples/shell/pscache-get.sh');
const daemons = new Daemons(() => 'http://127.0.0.1:9');
after(() => daemons.stopAll());

/** A loopback HTTP server answering with `handler`; closed after the file. */
const servers: Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});
async function serve(handler: (req: IncomingMessage, body: string) => [number, string]): Promise<number> {
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      const [status, text] = handler(req, body);
      res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1' }).end(text);
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return (s.address() as { port: number }).port;
}

/** The environment of a daemon with the test credentials and token, on a free port. */
const base = (port: number, extra: Record<string, string> = {}): Record<string, string> => ({
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
  PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
  ...extra,
});

const rssKb = (child: ChildProcess): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);

describe('/ready', () => {
  test('/ready costs no upstream call per probe: after a credentials failure, unauthenticated probes fetch nothing until its back-off is over', async () => {
    // A container credentials endpoint that fails fast (a task role being set up, a throttled agent).
    let fetches = 0;
    const credsPort = await serve(() => {
      fetches++;
      return [500, 'no'];
    });
    const port = await freePort();
    const d = daemons.track(
      await spawnPscache(
        ['serve'],
        {
          AWS_REGION: 'us-east-1',
          AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${credsPort}/creds`,
          PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
          PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
        },
        { port },
      ),
    );
    // The start-up check (one fetch and its retries) failed: the back-off (5 s) starts.
    await until(() => /no AWS credentials/.test(d.output()), 'the start-up credentials WARN');
    const t0 = Date.now();
    await sleep(200);
    const before = fetches;
    for (let i = 0; i < 50; i++) {
      // No token: what an SSRF, a load balancer or anyone on the host can send.
      const r = await d.get('/ready', { token: null });
      assert.equal(r.status, 503);
      assert.equal((JSON.parse(r.body) as { credentials: string }).credentials, 'failed');
    }
    await sleep(200);
    const during = fetches - before;
    // However slow this machine: one fetch (3 calls with its retries) per 5 s at most (the back-off then
    // doubles), counting one for the WARN having been seen late. Every probe used to cost a whole fetch:
    // 150 calls for these 50 probes.
    const allowed = 3 * (1 + Math.floor((Date.now() - t0) / 5000));
    await daemons.stop(d);
    assert.ok(
      during <= allowed,
      `50 unauthenticated GET /ready made ${during} requests to the container credentials endpoint (at most ${allowed} allowed)`,
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Token sources: the daemon, the Node client and the shell client apply one set of rules.

/** A loopback server standing in for the daemon: records the raw bytes of each token header it gets. */
let recorderPort = 0;
const seen: Buffer[] = [];
before(async () => {
  const s = createServer((req, res) => {
    const i = req.rawHeaders.findIndex(
      (h, k) => k % 2 === 0 && h.toLowerCase() === 'x-aws-parameters-secrets-token',
    );
    if (i !== -1) seen.push(Buffer.from(req.rawHeaders[i + 1]!, 'latin1'));
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"Parameter":{"Value":"v"}}');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  recorderPort = (s.address() as { port: number }).port;
});

/** Runs pscache-get.sh with exactly `env`; what it sent (if anything) and its exit code. */
async function shell(
  env: Record<string, string>,
): Promise<{ code: number | null; sent: Buffer[]; stderr: string }> {
  seen.length = 0;
  const r = await runCommand('sh', [SCRIPT, 'parameter', 'x', '--json'], {
    PSCACHE_RETRIES: '0',
    PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(recorderPort),
    ...env,
  });
  return { code: r.code, sent: [...seen], stderr: r.stderr };
}

/** The daemon's verdict on `env`: its token, or the variable it refuses. */
function daemonToken(env: Record<string, string>): { token?: string; refused?: string } {
  try {
    const c = loadConfig({ AWS_REGION: 'us-east-1', ...env });
    return c.token === undefined ? {} : { token: c.token };
  } catch (e) {
    return { refused: (e as { variable?: string }).variable ?? '?' };
  }
}

describe('token sources', () => {
  test('token files: the shell client refuses control characters (a NUL, /proc/self/environ) as the daemon does, and sends nothing', async () => {
    const dir = tempDir('break-nul');
    const file = join(dir, 'token');
    // A token file with a NUL in it: the daemon and the Node client refuse it (control characters).
    writeFileSync(file, Buffer.from('abcdefghijkl\u0000mnopqrstuvwxyz'));
    chmodSync(file, 0o600);
    const value = `file://${file}`;
    assert.ok(daemonToken({ PARAMETERS_SECRETS_EXTENSION_TOKEN: value }).refused, 'the daemon refuses it');
    const one = await shell({ PARAMETERS_SECRETS_EXTENSION_TOKEN: value });
    // The same rule read through /proc/self/environ: every variable of the client's environment.
    const marker = sensitive('BREAK-SECRET-MARKER-8d1f0c');
    const two = await shell({
      PARAMETERS_SECRETS_EXTENSION_TOKEN: 'file:///proc/self/environ',
      AWS_SECRET_ACCESS_KEY: marker,
    });
    const leaked = two.sent.some((b) => b.includes(marker));
    assert.deepEqual(
      [one.code, one.sent.length, two.code, two.sent.length],
      [3, 0, 3, 0],
      `pscache-get.sh sent a token the daemon refuses: a NUL-bearing file as ${JSON.stringify(one.sent.map(String))}; file:///proc/self/environ as a ${two.sent[0]?.length ?? 0}-byte header${leaked ? ' holding AWS_SECRET_ACCESS_KEY' : ''}`,
    );
  });

  test('token sources: the shell client picks the same variable and file as the daemon (%e9, no-break spaces, UTF-16 length, a blank list)', async () => {
    const dir = tempDir('break-rules');
    // A file whose name is the single byte 0xE9: `%e9` is not UTF-8, so the daemon refuses the URL.
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xe9])]), 'abcdefghijklmnopqrstuvwx');
    const good = 'fallback-token-0123456789';
    const cases: Array<[string, Record<string, string>]> = [
      ['a malformed percent-escape (%e9)', { PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${dir}/%e9` }],
      [
        'a variable holding only a no-break space counts as unset',
        { PARAMETERS_SECRETS_EXTENSION_TOKEN: '\u00a0', AWS_TOKEN: good },
      ],
      [
        'a blank variables list is the default list',
        { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: ' ', AWS_TOKEN: good },
      ],
      ['16 bytes but 8 characters is too short', { PARAMETERS_SECRETS_EXTENSION_TOKEN: '\u00e9'.repeat(8) }],
      [
        'a trailing no-break space is edge whitespace',
        { PARAMETERS_SECRETS_EXTENSION_TOKEN: `${good}\u00a0` },
      ],
    ];
    const differ: string[] = [];
    for (const [what, env] of cases) {
      const d = daemonToken(env);
      const s = await shell(env);
      const daemonSends = d.token !== undefined ? Buffer.from(d.token, 'utf8').toString('hex') : 'nothing';
      const shellSends = s.code === 0 && s.sent.length > 0 ? s.sent[0]!.toString('hex') : 'nothing';
      if (daemonSends !== shellSends) {
        differ.push(
          `${what}: daemon ${d.token !== undefined ? 'takes a token' : `refuses ${d.refused ?? '(no token)'}`}, shell ${shellSends === 'nothing' ? `sends nothing (exit ${s.code})` : 'sends a token'}`,
        );
      }
    }
    assert.deepEqual(differ, [], differ.join('; '));
  });

  test('token sources: a variables list naming a variable that holds configuration (here the list itself) stops serve, exit 2', async () => {
    const list = 'MY_TOKEN,PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES';
    const port = await freePort();
    const env = base(port, { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: list });
    delete env['PARAMETERS_SECRETS_EXTENSION_TOKEN'];
    // MY_TOKEN is not set (a typo, a secret not mounted yet): the next name in the list is the list itself,
    // and its text would be a token anyone reading the task definition knows.
    const r = await runCommand(process.execPath, [BUNDLE, 'serve'], env, { timeoutMs: 30_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^pscache: PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES="MY_TOKEN,PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES" is invalid: PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES holds configuration, not a secret/,
    );
  });

  test('token sources: a token no request can carry (characters beyond Latin-1) stops serve, exit 2, naming the variable', async () => {
    const port = await freePort();
    const env = base(port, { PARAMETERS_SECRETS_EXTENSION_TOKEN: '\u20ac'.repeat(16) });
    // Node reads each header byte as one Latin-1 character: curl's UTF-8 bytes never match, and Node's own
    // client refuses to send the header at all (ERR_INVALID_CHAR).
    const r = await runCommand(process.execPath, [BUNDLE, 'serve'], env, { timeoutMs: 30_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^pscache: PARAMETERS_SECRETS_EXTENSION_TOKEN=\(hidden\) is invalid: the token holds characters beyond Latin-1/,
    );
    assert.ok(!r.stderr.includes('\u20ac'), 'the token is never shown');
  });
});

describe('pscache token --write --if-absent', () => {
  test('--if-absent keeps only a file nobody else knows: one others may read (here a hard link to one), or with a second name, is refused', async () => {
    const dir = tempDir('review-ifabsent');
    // Anyone on the host can read this (a public key, /etc/machine-id, a world-readable config line)...
    const known = join(dir, 'id_ed25519.pub');
    writeFileSync(known, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIbreakbreakbreak user@host\n');
    chmodSync(known, 0o644);
    // ...and a hard link to it sits where the token file goes (planted in a shared directory where
    // fs.protected_hardlinks is 0, or left there): same owner, same mode, link count 2.
    const path = join(dir, 'token');
    linkSync(known, path);
    const r = await runCommand(process.execPath, [BUNDLE, 'token', '--write', path, '--if-absent'], {});
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /exists and is not kept \(--if-absent\): others may read it \(mode 0644\)/);
    // Private to its owner, but with another name elsewhere: whoever planted or can read that one knows it.
    chmodSync(known, 0o600);
    const linked = await runCommand(process.execPath, [BUNDLE, 'token', '--write', path, '--if-absent'], {});
    assert.equal(linked.code, 2, linked.stderr);
    assert.match(linked.stderr, /exists and is not kept \(--if-absent\): it has 2 hard links/);
  });
});

describe('proxies', () => {
  test('proxy credentials are never shown: an HTTP proxy echoing Proxy-Authorization reaches neither the caller nor the log', async () => {
    const password = sensitive('ProxyPassw0rd-never-shown-5d2');
    const proxyPort = await serve((req) => {
      const auth = String(req.headers['proxy-authorization'] ?? '');
      const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString();
      // A proxy (or a captive portal, an error page) that quotes the request it got back.
      return [500, JSON.stringify({ __type: 'InternalFailure', message: `you sent ${auth} (${decoded})` })];
    });
    const port = await freePort();
    const d = daemons.track(
      await spawnPscache(
        ['serve'],
        base(port, {
          // A plain-http endpoint that is not loopback goes through HTTP_PROXY.
          AWS_ENDPOINT_URL: 'http://upstream.invalid',
          HTTP_PROXY: `http://puser:${password}@127.0.0.1:${proxyPort}`,
          PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug',
        }),
        { port },
      ),
    );
    const r = await d.get('/systemsmanager/parameters/get?name=%2Fx');
    const b64 = Buffer.from(`puser:${password}`).toString('base64');
    // stop() also fails the test if the password reached the log.
    const { output } = await daemons.stop(d);
    assert.equal(r.status, 502, r.body);
    assert.ok(!output.includes(b64), 'the base64 of user:password is in the log');
    assert.ok(
      !r.body.includes(password) && !r.body.includes(b64),
      `the ${r.status} answer shows the proxy's user name and password: ${r.body.replace(password, '<password>').replace(b64, '<base64 user:password>')}`,
    );
  });
});

describe('upstream answers bounded', () => {
  test('path answers are capped at 8 MB: a listing over 8 MB is refused (400), paging stops there, and the refusal is cached', async () => {
    // A GetParametersByPath that pages: ten pages of one 4 MB parameter each (each page under 8 MB).
    const big = 'v'.repeat(4_000_000);
    let pages = 0;
    const upstream = await serve((_req, body) => {
      pages++;
      const page = Number((JSON.parse(body || '{}') as { NextToken?: string }).NextToken ?? 0);
      return [
        200,
        JSON.stringify({
          Parameters: [{ Name: `/big/p${page}`, Type: 'String', Value: big, Version: 1, DataType: 'text' }],
          ...(page < 9 ? { NextToken: String(page + 1) } : {}),
        }),
      ];
    });
    const port = await freePort();
    const d = daemons.track(
      await spawnPscache(['serve'], base(port, { AWS_ENDPOINT_URL: `http://127.0.0.1:${upstream}` }), {
        port,
      }),
    );
    const r = await d.get('/systemsmanager/parameters/path?path=%2Fbig', { timeoutMs: 60_000 });
    const again = await d.get('/systemsmanager/parameters/path?path=%2Fbig', { timeoutMs: 60_000 });
    await daemons.stop(d);
    assert.equal(r.status, 400, `${r.status} with ${r.body.length} bytes`);
    assert.match(
      (JSON.parse(r.body) as { message: string }).message,
      /^path \/big holds more than 8388608 bytes of parameters, more than a path answer may hold/,
    );
    // 4 + 4 MB fit; the third page passes the cap: no fourth is asked for, and the refusal is cached.
    assert.equal(pages, 3, `${pages} pages asked for`);
    assert.equal(again.status, 400);
  });
});

describe('the metrics listener', () => {
  let d: RunningProcess;
  let metricsPort = 0;
  before(async () => {
    const port = await freePort();
    metricsPort = await freePort();
    d = daemons.track(
      await spawnPscache(
        ['serve'],
        base(port, {
          AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
          PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
        }),
        { port },
      ),
    );
    assert.equal((await httpGet(metricsPort, '/metrics', { token: null })).status, 200);
  });
  after(() => daemons.stop(d));

  test('the metrics listener bounds pipelining and unread answers as the main listener does', async () => {
    const before = rssKb(d.child);
    const fds = () => readdirSync(`/proc/${d.child.pid}/fd`).length;
    const idle = fds();
    const flood = Buffer.from('GET /metrics HTTP/1.1\r\nHost: scraper\r\n\r\n'.repeat(20_000));
    const socks: Socket[] = [];
    // No token needed, and this listener is the one meant to be reachable from off the host.
    for (let i = 0; i < 32; i++) {
      const s = connect(metricsPort, '127.0.0.1');
      s.on('error', () => {});
      s.pause(); // never reads an answer
      s.write(flood);
      socks.push(s);
    }
    // Each is closed at its first read (more than 33 requests in it): the daemon holds none of them.
    await until(
      () => /closed a client connection/.test(d.output()) && fds() <= idle,
      'the daemon closing every flooding connection',
      30_000,
    );
    const grown = Math.round((rssKb(d.child) - before) / 1024);
    // What each client was sent before its connection was closed: at most 33 answers.
    const answered = await Promise.all(
      socks.map(
        (s) =>
          new Promise<number>((resolve) => {
            let got = '';
            s.on('data', (c: Buffer) => {
              got += c.toString('latin1');
            });
            s.once('close', () => resolve(got.match(/HTTP\/1\.1 200/g)?.length ?? 0));
            s.resume();
          }),
      ),
    );
    assert.ok(
      grown < 64,
      `32 connections pipelining GET /metrics without reading grew the daemon by ${grown} MB (it used to hold ~142 MB)`,
    );
    assert.ok(
      answered.every((n) => n <= 33),
      `answers before the close: ${answered.join(' ')}`,
    );
    assert.equal((await httpGet(metricsPort, '/metrics', { token: null })).status, 200);
  });

  test('the metrics listener drops connections whose headers do not arrive within 5 s', async () => {
    const socks: Socket[] = [];
    for (let i = 0; i < 32; i++) {
      const s = connect(metricsPort, '127.0.0.1');
      s.on('error', () => {});
      s.write('GET /metrics HTTP/1.1\r\nHost: scraper\r\n');
      socks.push(s);
    }
    // A header line every half second, never the end of the headers (slowloris).
    const drip = setInterval(() => {
      for (const s of socks) if (!s.destroyed) s.write('X-Slow: 1\r\n');
    }, 500);
    try {
      // 5 s for the headers, checked every second: well before Node's own 30 s check, even on a slow machine.
      await until(() => socks.every((s) => s.destroyed), 'the slow connections dropped', 20_000);
    } finally {
      clearInterval(drip);
      for (const s of socks) s.destroy();
    }
    assert.equal((await httpGet(metricsPort, '/metrics', { token: null })).status, 200);
  });
});

describe('pscache dev', () => {
  test("pscache dev signs with its own credentials only: the shell's credentials file is not used", async () => {
    const dir = tempDir('break-dev');
    const file = join(dir, 'credentials');
    // The user's real (here: made-up) temporary credentials, as IAM Roles Anywhere writes them.
    const session = sensitive('real-user-session-token-never-sent-7a1');
    writeFileSync(
      file,
      `[default]\naws_access_key_id = ASIAREALUSERKEY00001\naws_secret_access_key = ${sensitive('real/user/secret/key/never-sent-3c9')}\naws_session_token = ${session}\n`,
    );
    chmodSync(file, 0o600);
    const port = await freePort();
    const dev = daemons.track(
      await spawnPscache(
        ['dev', '--port', String(port)],
        {
          PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
          PARAMETERS_SECRETS_EXTENSION_CREDENTIALS_FILE: file,
        },
        { port },
      ),
    );
    const r = await dev.get('/systemsmanager/parameters/get?name=%2Fmyapp%2Fapi-endpoint');
    await daemons.stop(dev);
    assert.equal(
      r.status,
      200,
      `pscache dev signed the read with the credentials file of the user's shell (sending its session token to the emulator): ${r.status} ${r.body}`,
    );
  });
});
