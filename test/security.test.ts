// Security properties end to end: no token or value in any log line or error body at any log level,
// loopback-only sockets, withDecryption and selectors kept apart in the cache, a malicious upstream
// answer contained, nothing from before the first SnapStart INVOKE cached, /metrics and /ping bare.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, before, describe, test } from 'node:test';
import {
  assertNothingSensitive,
  Daemons,
  daemonEnv,
  freePort,
  param,
  printed,
  type Reply,
  type RunningProcess,
  runPscache,
  SENSITIVE,
  secret,
  sleep,
  spawnPscache,
  TEST_CREDENTIALS,
  TEST_TOKEN,
  until,
} from './helpers/daemon.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);

const q = encodeURIComponent;
const calls = (...ops: string[]) => ops.reduce((n, op) => n + (world.emu.calls()[op] ?? 0), 0);
const json = (r: Reply) => JSON.parse(r.body) as Record<string, unknown>;
const valueFor = (r: Reply) => (json(r)['Parameter'] as Record<string, unknown>)['Value'];

const SECURE = sensitive('sec-plaintext-of-the-securestring-v2');
const SECURE_V1 = sensitive('sec-plaintext-of-the-securestring-v1');
const SECRET = sensitive('sec-secret-string-value-current');
const ROTATED_OLD = sensitive('sec-rotated-old-value-v1');
const ROTATED_NEW = sensitive('sec-rotated-new-value-v2');

/** Near misses of the token: were any of them logged, most of the token would be. */
const NEAR_MISSES = [
  TEST_TOKEN.slice(0, -1),
  `${TEST_TOKEN}x`,
  TEST_TOKEN.toUpperCase(),
  `${TEST_TOKEN.slice(0, -1)}X`,
  ` ${TEST_TOKEN}x `,
].map((t) => sensitive(t.trim()));

before(async () => {
  world = await startWorld();
  await world.putParameter('/sec/secure', SECURE_V1, 'SecureString');
  await world.putParameter('/sec/secure', SECURE, 'SecureString');
  await world.putParameter('/sec/plain', 'sec-plain-not-secret');
  await world.putParameter('/sec/rotated', ROTATED_OLD);
  await world.putParameter('/sec/rotated', ROTATED_NEW);
  await world.label('/sec/rotated', 1, ['Old']);
  await world.createSecret('sec/secret', SECRET);
});

worldHooks(() => world, daemons);

describe('nothing sensitive in logs or error bodies', () => {
  /** Requests that log at every level: reads, misses, denials, faults, wrong tokens in every place. */
  async function battery(d: RunningProcess): Promise<Reply[]> {
    const replies: Reply[] = [];
    const go = async (path: string, opts: Parameters<RunningProcess['get']>[1] = {}) => {
      replies.push(await d.get(path, opts));
    };
    await go(param('/sec/secure', '&withDecryption=true'));
    await go(param('/sec/secure'));
    await go(secret('sec/secret'));
    await go(
      `/systemsmanager/parameters/batch?name=${q('/sec/secure')}&name=${q('/nope')}&withDecryption=true`,
    );
    await go(`/systemsmanager/parameters/path?path=${q('/sec/')}&withDecryption=true`);
    await go(`/secretsmanager/batch?secretId=${q('sec/secret')}&secretId=nope`);
    await go('/metrics');
    await go(param('/does/not/exist'));
    world.emu.deny(['/sec/plain']);
    await go(param('/sec/plain', '&version=1'));
    world.emu.clearDeny();
    for (const error of ['500', 'throttle', 'malformed', 'reset'] as const) {
      world.emu.setFaults([{ error, times: 3 }]);
      await go(secret('sec/secret', `&versionStage=AWSCURRENT&ttl=0`));
    }
    world.emu.clearFaults();
    // Wrong tokens, and the token where it does not belong, on every kind of route.
    for (const wrong of [...NEAR_MISSES, '']) {
      await go(param('/sec/secure', '&withDecryption=true'), { token: wrong });
      await go('/metrics', { token: wrong });
    }
    await go(param(TEST_TOKEN), { token: NEAR_MISSES[0]! });
    await go(`/${TEST_TOKEN}`, { token: null });
    await go(`/systemsmanager/parameters/get?${TEST_TOKEN}=1`, { token: `${TEST_TOKEN}x` });
    await go(param('/sec/secure'), { token: null, headers: { Authorization: TEST_TOKEN } });
    await go(param('/sec/secure'), { headers: { 'X-Forwarded-For': TEST_TOKEN } });
    await go(param('/sec/secure'), { host: TEST_TOKEN });
    await go(param('/sec/secure'), { token: `${TEST_TOKEN}, ${TEST_TOKEN}` });
    await go(param('/sec/secure'), { method: 'POST' });
    await go(`/systemsmanager/parameters/get?name=${'x'.repeat(9000)}`, { token: NEAR_MISSES[1]! });
    await go(param('/sec/secure'), { headers: { 'X-Big': TEST_TOKEN.repeat(700) } });
    return replies;
  }

  for (const [level, format] of [
    ['debug', 'Text'],
    ['debug', 'JSON'],
    ['info', 'Text'],
    ['error', 'Text'],
    ['none', 'Text'],
  ] as const) {
    test(`log level ${level}, ${format} format`, async () => {
      const d = await daemons.start({
        PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: level,
        AWS_LAMBDA_LOG_FORMAT: format,
      });
      const replies = await battery(d);
      for (const r of replies) {
        for (const s of [TEST_TOKEN, ...NEAR_MISSES, TEST_CREDENTIALS.secretAccessKey]) {
          assert.ok(!r.body.includes(s), `status ${r.status}: an answer holds the token or a near miss`);
        }
        if (r.status !== 200)
          assert.ok(!r.body.includes('sec-'), `status ${r.status}: an error body holds a value`);
      }
      assert.ok(replies.some((r) => r.status === 401) && replies.some((r) => r.status === 502));
      // stop() fails on any registered value, the token and its near misses anywhere in the output.
      const { output } = await daemons.stop(d);
      if (level === 'debug') assert.match(output, /DEBUG/);
      if (level === 'none') assert.equal(output, '');
      for (const line of output.split('\n')) assert.ok(line.length < 4096, 'a log line over 4 KB');
    });
  }

  test('configuration errors name the variable, never a token or key given alongside or in it', async () => {
    const session = sensitive('config-session-token-value-5ab2');
    const env = {
      AWS_REGION: 'us-east-1',
      PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_SESSION_TOKEN: session,
    };
    const { AWS_ACCESS_KEY_ID: _, ...noKeyId } = env;
    for (const [what, e] of [
      ['bad port', { ...env, PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '99999' }],
      ['secret key without key id', noKeyId],
      ['bad region', { ...env, AWS_REGION: 'Not A Region' }],
      ['token file missing', { ...env, PARAMETERS_SECRETS_EXTENSION_TOKEN: 'file:///nonexistent/token' }],
      ['bad log level', { ...env, PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'verbose' }],
      ['bad endpoint', { ...env, AWS_ENDPOINT_URL: 'ftp://example.com' }],
    ] as const) {
      const r = await runPscache(['serve'], e);
      assert.equal(r.code, 2, `${what}: exit code`);
      assert.ok(r.stderr.length > 0, `${what}: says why`);
      assert.doesNotThrow(() => assertNothingSensitive(r.stdout + r.stderr), what);
    }
  });

  test('every string the suite marks sensitive is long enough to be scanned for', () => {
    for (const s of SENSITIVE) assert.ok(s.length >= 6, 'too short to scan reliably');
    assert.ok(SENSITIVE.has(TEST_TOKEN) && SENSITIVE.has(SECURE));
  });
});

describe('a malicious upstream answer', () => {
  let evil: Server;
  let evilUrl: string;
  const SESSION = sensitive('upstream-echoed-session-token-1f2e3d');
  const seen: IncomingMessage[] = [];
  let answer: (req: IncomingMessage, body: string, res: ServerResponse) => void = () => {};

  before(async () => {
    evil = createServer((req, res) => {
      seen.push(req);
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => answer(req, body, res));
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const a = evil.address();
    evilUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  after(async () => {
    evil.closeAllConnections();
    await new Promise((r) => evil.close(r));
  });

  test('an error that echoes the credentials and forges log lines is scrubbed and contained', async () => {
    answer = (req, body, res) => {
      const echo = JSON.stringify({ headers: req.headers, body });
      res.writeHead(400, { 'Content-Type': 'application/x-amz-json-1.1' });
      res.end(
        JSON.stringify({
          __type: 'ValidationException\n[pscache] ERROR forged line',
          message: `you sent ${echo} with ${TEST_CREDENTIALS.secretAccessKey}\n[pscache] ERROR forged too`,
        }),
      );
    };
    // No PARAMETERS_SECRETS_EXTENSION_TOKEN: the session token is also the HTTP token, as in Lambda.
    const port = await freePort();
    const d = await spawnPscache(
      ['serve'],
      {
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        AWS_SESSION_TOKEN: SESSION,
        AWS_ENDPOINT_URL: evilUrl,
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
        PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug',
      },
      { port },
    );
    daemons.track(d);
    for (const path of [
      param('/evil/x'),
      secret('evil/y'),
      `/systemsmanager/parameters/batch?name=a&name=b`,
    ]) {
      const r = await d.get(path, { token: SESSION });
      assert.ok(r.status === 400 || r.status === 502, `${r.status}`);
      assert.ok(!r.body.includes(SESSION), 'the session token echoed back to the caller');
      assert.ok(!r.body.includes(TEST_CREDENTIALS.secretAccessKey), 'the secret key echoed back');
      assert.ok(JSON.parse(r.body).message.length <= 1100, 'the message is bounded');
    }
    assert.ok(
      seen.some((r) => r.headers['x-amz-security-token'] === SESSION),
      'the upstream did get the token',
    );
    const { output } = await daemons.stop(d);
    assert.doesNotMatch(output, /^\[pscache\] ERROR forged/m, 'a forged log line');
  });

  test('a 200 that is not what was asked: wrong shapes are 502 and never cached', async () => {
    const bodies = [
      '{"Parameter":{"Name":42,"Type":"String","Value":"x"}}',
      '{"Parameter":{"Name":"/evil/x","Type":"String","Value":{"nested":"object"}}}',
      '{"Parameter":null}',
      '[1,2,3]',
      '{"__proto__":{"polluted":"yes"},"Parameter":{"__proto__":{"polluted":"yes"}}}',
      '{"SecretString":7}',
    ];
    let i = 0;
    answer = (_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.1' });
      res.end(bodies[i % bodies.length]);
    };
    const port = await freePort();
    const d = await spawnPscache(['serve'], daemonEnv(evilUrl, port), { port });
    daemons.track(d);
    for (; i < bodies.length; i++) {
      const r = await d.get(i === bodies.length - 1 ? secret('evil/y') : param('/evil/x'));
      assert.equal(r.status, 502, `body ${i}: ${r.status} ${r.body.slice(0, 200)}`);
      assert.equal(JSON.parse(r.body).__type, 'MalformedResponse');
    }
    // Then a good answer: a miss, so none of the bad ones was cached.
    answer = (_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.1' });
      res.end('{"Parameter":{"Name":"/evil/x","Type":"String","Value":"fine","Version":1}}');
    };
    const ok = await d.get(param('/evil/x'));
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-pscache'], 'miss');
    assert.equal((await d.get('/ping', { token: null })).status, 200);
    await daemons.stop(d);
  });
});

describe('sockets', () => {
  /** Every TCP/UDP socket the process holds, from /proc: local address, port and state. */
  function socketsOf(pid: number): Array<{ proto: string; local: string; port: number; state: string }> {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
    const out: Array<{ proto: string; local: string; port: number; state: string }> = [];
    for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
      let text = '';
      try {
        text = readFileSync(`/proc/net/${proto}`, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length < 10 || !inodes.has(f[9]!)) continue;
        const [addr, port] = f[1]!.split(':');
        out.push({ proto, local: addr!, port: Number.parseInt(port!, 16), state: f[3]! });
      }
    }
    return out;
  }
  const LOOPBACK = (a: string) =>
    /^[0-9A-F]{6}7F$/.test(a) ||
    a === '00000000000000000000000001000000' ||
    /^0000000000000000FFFF0000[0-9A-F]{6}7F$/.test(a);

  test('the daemon listens on loopback only, IPv4 and IPv6, and on nothing else', async (t) => {
    const d = await daemons.start();
    await d.get('/ping', { token: null }); // ::1 is bound after the first request
    const v6 = readFileSync('/proc/net/if_inet6', 'utf8').includes('00000000000000000000000000000001');
    const listeners = () => socketsOf(d.child.pid!).filter((s) => s.state === '0A');
    if (v6) await until(() => listeners().some((s) => s.proto === 'tcp6'), 'the [::1] listener');
    const socks = socketsOf(d.child.pid!);
    const listening = socks.filter((s) => s.state === '0A');
    assert.ok(
      listening.some((s) => s.proto === 'tcp' && s.local === '0100007F' && s.port === d.port),
      '127.0.0.1',
    );
    if (v6)
      assert.ok(
        listening.some((s) => s.proto === 'tcp6' && s.port === d.port),
        '::1',
      );
    for (const s of listening) assert.ok(LOOPBACK(s.local), `${s.proto} listening on ${s.local}:${s.port}`);
    assert.equal(listening.length, v6 ? 2 : 1, 'no other listening socket');
    for (const s of socks.filter((x) => x.proto.startsWith('udp')))
      assert.ok(LOOPBACK(s.local), `udp on ${s.local}`);
    // From another address of this host, the port is closed.
    const other = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && !i.internal && i.family === 'IPv4');
    if (!other) {
      t.diagnostic('no non-loopback IPv4 address on this host: remote connection check skipped');
    } else {
      const refused = await new Promise<string>((resolve) => {
        const s = connect(d.port, other.address);
        s.once('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      assert.equal(refused, 'ECONNREFUSED', `connecting via ${other.address}`);
    }
    await daemons.stop(d);
  });

  /** Holds host:port with a process that is not pscache, as a squatter would. */
  async function squat(port: number, host: string): Promise<NetServer | undefined> {
    const s = createNetServer((c) => c.destroy());
    return new Promise((resolve) => {
      s.once('error', () => resolve(undefined));
      s.listen({ port, host, exclusive: true }, () => resolve(s));
    });
  }

  test('a port already taken on 127.0.0.1: pscache refuses to start rather than share it', async () => {
    const port = await freePort();
    const squatter = (await squat(port, '127.0.0.1'))!;
    try {
      const r = await runPscache(['serve'], daemonEnv(world.emu.url, port));
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`port ${port} .*already in use`));
      assertNothingSensitive(r.stdout + r.stderr);
    } finally {
      squatter.close();
    }
  });

  test('a port already taken on ::1: pscache must not keep serving while another process answers localhost', async (t) => {
    const port = await freePort();
    const squatter = await squat(port, '::1');
    if (!squatter) {
      t.skip('no IPv6 loopback here');
      return;
    }
    try {
      // Either it refuses to start, or it stops once it finds [::1] taken (bound after the first request).
      const d = await spawnPscache(['serve'], daemonEnv(world.emu.url, port), { port }).catch(
        () => undefined,
      );
      if (d) {
        daemons.track(d);
        await d.get('/ping', { token: null }).catch(() => undefined);
        // It finds [::1] taken as soon as it binds it; 15 s is a bound for never, not a deadline.
        const exited = await Promise.race([d.exited.then(() => true), sleep(15_000).then(() => false)]);
        const { code, output } = await daemons.stop(d);
        assert.ok(exited, 'pscache kept serving on 127.0.0.1 alone while [::1] answers for another process');
        assert.notEqual(code, 0);
        assert.match(output, /ERROR port \d+ on ::1 is already in use/);
      }
    } finally {
      squatter.close();
    }
  });

  test('pscache dev (daemon and emulator in one process) listens on loopback only', async () => {
    const port = await freePort();
    const emulatorPort = await freePort();
    const d = await spawnPscache(
      ['dev', '--port', String(port), '--emulator-port', String(emulatorPort)],
      { PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN },
      { port },
    );
    daemons.track(d);
    await d.get('/ping', { token: null });
    await sleep(100);
    const listening = socketsOf(d.child.pid!).filter((s) => s.state === '0A');
    assert.ok(
      listening.some((s) => s.port === emulatorPort),
      'the emulator is in this process',
    );
    for (const s of listening) assert.ok(LOOPBACK(s.local), `${s.proto} listening on ${s.local}:${s.port}`);
    await daemons.stop(d);
  });
});

describe('the cache keeps what must differ apart', () => {
  test('a SecureString read without decryption never returns the plaintext, whatever was read before', async () => {
    const d = await daemons.start();
    const plain = await d.get(param('/sec/secure', '&withDecryption=true'));
    assert.equal(valueFor(plain), SECURE);
    const cipher = await d.get(param('/sec/secure'));
    assert.equal(cipher.headers['x-pscache'], 'miss', 'its own entry');
    assert.notEqual(valueFor(cipher), SECURE);
    assert.ok(!cipher.body.includes(SECURE) && !cipher.body.includes(SECURE_V1));
    for (const path of [
      param('/sec/secure', '&withDecryption=false'),
      param('/sec/secure', '&withDecryption=FALSE'),
      `/parameters/get?name=${q('/sec/secure')}`,
      `/systemsmanager/parameters/batch?name=${q('/sec/secure')}`,
      `/systemsmanager/parameters/path?path=${q('/sec/')}`,
      param('/sec/secure', '&version=1'),
      param('/sec/secure', '&label=nothing'),
    ]) {
      const r = await d.get(path);
      assert.ok(
        !r.body.includes(SECURE) && !r.body.includes(SECURE_V1),
        `${path}: plaintext without decryption`,
      );
    }
    assert.equal(valueFor(await d.get(param('/sec/secure', '&withDecryption=TRUE'))), SECURE);
    await daemons.stop(d);
  });

  test('decrypted batch, path and prefetch answers do not serve undecrypted reads', async () => {
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_PREFETCH: 'ssm:/sec/secure' });
    await printed(d, /prefetch done/);
    const path = await d.get(`/systemsmanager/parameters/path?path=${q('/sec/')}&withDecryption=true`);
    assert.ok(path.body.includes(SECURE));
    const batch = await d.get(
      `/systemsmanager/parameters/batch?name=${q('/sec/secure')}&withDecryption=true`,
    );
    assert.equal(batch.headers['x-pscache'], 'hit');
    world.emu.resetCalls();
    // The first undecrypted read of each kind goes upstream; later ones may hit what those stored.
    for (const [p, source] of [
      [`/systemsmanager/parameters/batch?name=${q('/sec/secure')}`, 'miss'],
      [`/systemsmanager/parameters/path?path=${q('/sec/')}`, 'miss'],
      [param('/sec/secure'), 'hit'],
    ] as const) {
      const r = await d.get(p);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-pscache'], source, p);
      assert.ok(!r.body.includes(SECURE), `${p}: plaintext from a decrypted entry`);
    }
    assert.equal(calls('GetParameters', 'GetParametersByPath'), 2);
    await daemons.stop(d);
  });

  test('a batch read of name:version or name:label never replaces the latest version in the cache', async () => {
    const d = await daemons.start();
    for (const sel of ['/sec/rotated:1', '/sec/rotated:Old']) {
      const b = await d.get(`/systemsmanager/parameters/batch?name=${q(sel)}`);
      assert.equal(b.status, 200);
      assert.ok(b.body.includes(ROTATED_OLD), 'the batch answers the version asked for');
      const latest = await d.get(param('/sec/rotated'));
      assert.equal(
        valueFor(latest),
        ROTATED_NEW,
        `after a batch read of ${sel}, the plain name answers an old version`,
      );
      assert.equal((json(latest)['Parameter'] as Record<string, unknown>)['Selector'], null);
    }
    // Both at once: two answers, each with its own selector.
    const both = await d.get(
      `/systemsmanager/parameters/batch?name=${q('/sec/rotated')}&name=${q('/sec/rotated:1')}`,
    );
    const values = (json(both)['Parameters'] as Array<Record<string, unknown>>).map((p) => p['Value']).sort();
    assert.deepEqual(values, [ROTATED_NEW, ROTATED_OLD].sort());
    await daemons.stop(d);
  });
});

describe('SnapStart', () => {
  /** Just enough of the Lambda Extensions API: register, event/next held until an event is delivered. */
  class RuntimeApi {
    readonly server = createServer((req, res) => this.handle(req, res));
    nexts = 0;
    private waiting: ServerResponse | undefined;
    private queued: object[] = [];
    async start(): Promise<string> {
      await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
      const a = this.server.address();
      return `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
    }
    deliver(event: object): void {
      if (this.waiting) {
        const res = this.waiting;
        this.waiting = undefined;
        res.writeHead(200, { 'Content-Type': 'application/json', 'Lambda-Extension-Event-Identifier': 'e' });
        res.end(JSON.stringify(event));
      } else this.queued.push(event);
    }
    private handle(req: IncomingMessage, res: ServerResponse): void {
      req.resume();
      if (req.url?.endsWith('/register')) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Lambda-Extension-Identifier': 'ext-1' });
        res.end(JSON.stringify({ functionName: 'f', functionVersion: '$LATEST', handler: 'h' }));
      } else if (req.url?.endsWith('/event/next')) {
        this.nexts++;
        this.waiting = res;
        const next = this.queued.shift();
        if (next) this.deliver(next);
      } else {
        res.writeHead(202);
        res.end('{}');
      }
    }
    close(): Promise<void> {
      this.server.closeAllConnections();
      return new Promise((r) => this.server.close(() => r()));
    }
  }

  test('batch and path reads in flight at the first INVOKE leave nothing in the cache', async () => {
    const api = new RuntimeApi();
    const runtimeApi = await api.start();
    await world.putParameter('/snap/a', sensitive('snap-value-a-before-invoke'));
    await world.putParameter('/snap/b', sensitive('snap-value-b-before-invoke'));
    await world.createSecret('snap/s', sensitive('snap-secret-before-invoke'));
    const d = await daemons.start({
      AWS_LAMBDA_RUNTIME_API: runtimeApi,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'snap-start',
    });
    try {
      await until(() => api.nexts >= 1, 'the first event/next');
      world.emu.setFaults([{ latencyMs: 400 }]);
      const inFlight = [
        d.get(`/systemsmanager/parameters/batch?name=${q('/snap/a')}&name=${q('/snap/b')}`),
        d.get(`/systemsmanager/parameters/path?path=${q('/snap/')}`),
        d.get(`/secretsmanager/batch?secretId=${q('snap/s')}`),
      ];
      await until(
        () => calls('GetParameters', 'GetParametersByPath', 'BatchGetSecretValue') >= 3,
        'the fetches',
      );
      api.deliver({ eventType: 'INVOKE', requestId: 'r1', deadlineMs: Date.now() + 60_000 });
      await until(() => api.nexts >= 2, 'the INVOKE to be taken');
      for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200, 'answered all the same');
      world.emu.clearFaults();
      for (const p of [param('/snap/a'), param('/snap/b'), secret('snap/s')]) {
        const r = await d.get(p);
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-pscache'], 'miss', `${p}: fetched before the first INVOKE, still cached`);
      }
      const path = await d.get(`/systemsmanager/parameters/path?path=${q('/snap/')}`);
      assert.equal(path.headers['x-pscache'], 'miss', 'the path listing from before INVOKE');
    } finally {
      api.deliver({ eventType: 'SHUTDOWN', shutdownReason: 'spindown', deadlineMs: Date.now() + 2000 });
      // SHUTDOWN and SIGTERM together (daemons.stop signals at once): exit 0 whichever comes first.
      const { code, output } = await daemons.stop(d);
      await api.close();
      assert.equal(code, 0, output);
    }
  });
});

describe('/ping, / and /metrics reveal nothing', () => {
  test('after every kind of request, health answers are constant and metrics hold no name or value', async () => {
    const d = await daemons.start();
    const names = ['/sec/secure', '/sec/plain', '/sec/rotated', '/no/such/name'];
    for (const n of names) {
      await d.get(param(n, '&withDecryption=true'));
      await d.get(param(n), { token: 'wrong-token-value' });
    }
    await d.get(secret('sec/secret'));
    await d.get(`/systemsmanager/parameters/path?path=${q('/sec/')}`);
    await d.get(`/secretsmanager/batch?secretId=${q('sec/secret')}`);
    await d.get(`/${'sec/secret'}`);
    const ping = await d.get('/ping', { token: null });
    assert.equal(ping.body, 'healthy');
    const root = await d.get('/', { token: null });
    assert.match(root.body, /^healthy\npscache \d+\.\d+\.\d+[^\n]*\n$/);
    // Same answers with a valid token: nothing more is told to the token holder either.
    assert.equal((await d.get('/ping')).body, 'healthy');
    const metrics = await d.get('/metrics');
    assert.equal(metrics.status, 200);
    for (const s of [
      ...names,
      'sec/secret',
      '/sec/',
      SECURE,
      SECRET,
      ROTATED_NEW,
      TEST_TOKEN,
      'wrong-token-value',
    ]) {
      assert.ok(
        !metrics.body.includes(s),
        `metrics mention ${s.startsWith('/') || s.startsWith('sec/') ? s : 'a value'}`,
      );
    }
    for (const line of metrics.body.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      // Fixed metric names; labels are route names, operations, outcomes, statuses and bucket bounds.
      assert.match(
        line,
        /^pscache_[a-z_]+(\{[a-z_]+="[A-Za-z0-9.+-]+"(,[a-z_]+="[A-Za-z0-9.+-]+")*\})? [0-9.e+-]+$/,
        line,
      );
    }
    assert.equal((await d.get('/metrics', { token: null })).status, 401);
    await daemons.stop(d);
  });
});
