// End to end: the bundled daemon as a real process, over real loopback sockets, against the emulator.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Daemons, param, type RunningProcess, secret, sleep, TEST_TOKEN, until } from './helpers/daemon.ts';
import { startHoldingRelay } from './helpers/holding-relay.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);

const q = encodeURIComponent;

const DB_PASSWORD = sensitive('hunter2-db-password-value');
const API_KEY = sensitive('sk_live_api_key_value_0042');
const SECURE_V1 = sensitive('secure-string-plaintext-v1');

before(async () => {
  world = await startWorld();
  await world.putParameter('/app/endpoint', 'https://api.example.com');
  await world.putParameter('/app/secure', SECURE_V1, 'SecureString');
  await world.putParameter('/app/versions', 'first');
  await world.putParameter('/app/versions', 'second');
  await world.label('/app/versions', 1, ['Stable']);
  await world.createSecret('prod/db/password', DB_PASSWORD);
  await world.putSecretValue('prod/db/password', sensitive('hunter2-db-password-v2'));
  await world.createSecret('prod/api/key', API_KEY);
  for (const name of ['a', 'b', 'c', 'd']) await world.putParameter(`/lru/${name}`, `value-${name}`);
});

worldHooks(() => world, daemons);

const calls = (op: string) => world.emu.calls()[op] ?? 0;

describe('cache', () => {
  test('a miss goes upstream once, then hits are served from the cache', async () => {
    const d = await daemons.start();
    const first = await d.get(param('/app/endpoint'));
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-pscache'], 'miss');
    assert.equal(first.headers['content-type'], 'application/json');
    assert.equal(first.headers['cache-control'], 'no-store');
    const body = JSON.parse(first.body);
    assert.equal(body.Parameter.Value, 'https://api.example.com');
    assert.deepEqual(body.ResultMetadata, {});
    assert.equal(body.Parameter.Selector, null);
    assert.match(body.Parameter.LastModifiedDate, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    for (let i = 0; i < 5; i++) {
      const again = await d.get(param('/app/endpoint'));
      assert.equal(again.headers['x-pscache'], 'hit');
      assert.equal(again.body, first.body);
    }
    assert.equal(calls('GetParameter'), 1);
    const { output } = await daemons.stop(d);
    // The serving line is written once.
    assert.equal(
      output.match(/INFO pscache \S+ serving on port \d+ addresses=127\.0\.0\.1:\d+/g)?.length,
      1,
      output,
    );
  });

  test('TTL expiry picks up a changed value', async () => {
    const d = await daemons.start({ SSM_PARAMETER_STORE_TTL: '1' });
    await world.putParameter('/ttl/value', 'old');
    const t0 = Date.now();
    assert.equal(JSON.parse((await d.get(param('/ttl/value'))).body).Parameter.Value, 'old');
    await world.putParameter('/ttl/value', 'new');
    const cached = await d.get(param('/ttl/value'));
    // Stored after t0 for at least 0.9 s (TTL 1 s, -10% jitter at most): a hit if answered before then.
    if (Date.now() < t0 + 900) assert.equal(cached.headers['x-pscache'], 'hit');
    assert.equal(
      JSON.parse(cached.body).Parameter.Value,
      cached.headers['x-pscache'] === 'hit' ? 'old' : 'new',
    );
    await sleep(1250); // TTL 1 s with up to +10% jitter
    const fresh = await d.get(param('/ttl/value'));
    assert.equal(fresh.headers['x-pscache'], 'miss');
    assert.equal(JSON.parse(fresh.body).Parameter.Value, 'new');
    await daemons.stop(d);
  });

  test('CACHE_ENABLED=false goes upstream every time', async () => {
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED: 'false' });
    for (let i = 0; i < 3; i++)
      assert.equal((await d.get(param('/app/endpoint'))).headers['x-pscache'], 'miss');
    assert.equal(calls('GetParameter'), 3);
    await daemons.stop(d);
  });

  test('a TTL of 0 disables caching for that service only', async () => {
    const d = await daemons.start({ SECRETS_MANAGER_TTL: '0' });
    for (let i = 0; i < 3; i++) {
      assert.equal((await d.get(secret('prod/api/key'))).status, 200);
      await d.get(param('/app/endpoint'));
    }
    assert.equal(calls('GetSecretValue'), 3);
    assert.equal(calls('GetParameter'), 1);
    await daemons.stop(d);
  });

  test('CACHE_SIZE=0 disables the cache', async () => {
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE: '0' });
    await d.get(param('/app/endpoint'));
    await d.get(param('/app/endpoint'));
    assert.equal(calls('GetParameter'), 2);
    await daemons.stop(d);
  });

  test('LRU eviction at CACHE_SIZE', async () => {
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE: '2' });
    await d.get(param('/lru/a'));
    await d.get(param('/lru/b'));
    await d.get(param('/lru/a')); // a is now the most recently used
    await d.get(param('/lru/c')); // evicts b
    assert.equal((await d.get(param('/lru/a'))).headers['x-pscache'], 'hit');
    assert.equal((await d.get(param('/lru/c'))).headers['x-pscache'], 'hit');
    assert.equal((await d.get(param('/lru/b'))).headers['x-pscache'], 'miss');
    assert.equal(calls('GetParameter'), 4);
    await daemons.stop(d);
  });

  test('the byte limit (MAX_CACHE_SIZE, MB) evicts the least recently used items', async () => {
    // 20 secrets of 60 KB = 1.2 MB, over a 1 MB budget: the oldest must go, the newest must stay.
    const big = 'x'.repeat(60 * 1024);
    for (let i = 0; i < 20; i++) await world.createSecret(`big/${i}`, `${i}${big}`);
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_MAX_CACHE_SIZE: '1' });
    for (let i = 0; i < 20; i++) assert.equal((await d.get(secret(`big/${i}`))).status, 200);
    world.emu.resetCalls();
    assert.equal((await d.get(secret('big/19'))).headers['x-pscache'], 'hit');
    assert.equal((await d.get(secret('big/0'))).headers['x-pscache'], 'miss');
    assert.equal(calls('GetSecretValue'), 1);
    await daemons.stop(d);
  });

  test('100 concurrent requests for one cold key make exactly one upstream call', async () => {
    const d = await daemons.start();
    world.emu.setFaults([{ operation: 'GetSecretValue', latencyMs: 150 }]);
    const replies = await Promise.all(Array.from({ length: 100 }, () => d.get(secret('prod/api/key'))));
    assert.ok(replies.every((r) => r.status === 200));
    assert.ok(replies.every((r) => JSON.parse(r.body).SecretString === API_KEY));
    assert.equal(calls('GetSecretValue'), 1);
    await daemons.stop(d);
  });

  test('concurrent misses that fail all get the error, and the error is not cached', async () => {
    // The first attempt's answer (a 500) is held until all 20 reads have reached the cache: a read that
    // came after the failed load ended would start a load of its own (and, the faults spent, get a 200).
    // With the failing load held open, every read joins it however the machine schedules their arrival.
    const relay = await startHoldingRelay(world.emu.url);
    try {
      const d = await daemons.start({ AWS_ENDPOINT_URL: relay.url });
      world.emu.setFaults([{ operation: 'GetParameter', error: '500', times: 3 }]);
      relay.holdNext('/app/endpoint');
      const replies = Promise.all(Array.from({ length: 20 }, () => d.get(param('/app/endpoint'))));
      // A read counts as a miss when it waits on a load; the held load cannot end before it is released.
      const misses = async () =>
        Number(/^pscache_cache_misses_total (\d+)$/m.exec((await d.get('/metrics')).body)?.[1] ?? 0);
      await until(async () => relay.held.length === 1 && (await misses()) >= 20, 'the 20 reads to join');
      relay.releaseOne();
      assert.deepEqual(
        (await replies).map((r) => r.status),
        Array.from({ length: 20 }, () => 502),
      );
      assert.equal(calls('GetParameter'), 3); // one coalesced call, three attempts
      const ok = await d.get(param('/app/endpoint'));
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['x-pscache'], 'miss');
      await daemons.stop(d);
    } finally {
      await relay.close();
    }
  });
});

describe('selectors reach upstream and are cached separately', () => {
  test('version, label and withDecryption', async () => {
    const d = await daemons.start();
    const paths = [
      param('/app/versions'),
      param('/app/versions', '&version=1'),
      param('/app/versions', '&label=Stable'),
      param('/app/secure'),
      param('/app/secure', '&withDecryption=true'),
    ];
    const bodies = [];
    for (const p of paths) {
      const r = await d.get(p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers['x-pscache'], 'miss', p);
      bodies.push(JSON.parse(r.body).Parameter);
    }
    assert.equal(bodies[0].Value, 'second');
    assert.equal(bodies[0].Version, 2);
    assert.equal(bodies[1].Value, 'first');
    assert.equal(bodies[1].Selector, ':1');
    assert.equal(bodies[2].Value, 'first');
    assert.equal(bodies[2].Selector, ':Stable');
    assert.notEqual(bodies[3].Value, SECURE_V1, 'without decryption a SecureString is ciphertext');
    assert.equal(bodies[3].Type, 'SecureString');
    assert.equal(bodies[4].Value, SECURE_V1);
    for (const p of paths) assert.equal((await d.get(p)).headers['x-pscache'], 'hit', p);
    assert.equal(calls('GetParameter'), 5);
    await daemons.stop(d);
  });

  test('versionStage and versionId', async () => {
    const d = await daemons.start();
    const current = JSON.parse((await d.get(secret('prod/db/password'))).body);
    const previous = JSON.parse((await d.get(secret('prod/db/password', '&versionStage=AWSPREVIOUS'))).body);
    assert.equal(current.SecretString, 'hunter2-db-password-v2');
    assert.deepEqual(current.VersionStages, ['AWSCURRENT']);
    assert.equal(previous.SecretString, DB_PASSWORD);
    assert.deepEqual(previous.VersionStages, ['AWSPREVIOUS']);
    const byId = await d.get(secret('prod/db/password', `&versionId=${previous.VersionId}`));
    assert.equal(JSON.parse(byId.body).SecretString, DB_PASSWORD);
    assert.equal(byId.headers['x-pscache'], 'miss');
    assert.equal(
      (await d.get(secret('prod/db/password', '&versionStage=AWSPREVIOUS'))).headers['x-pscache'],
      'hit',
    );
    assert.equal(calls('GetSecretValue'), 3);
    await daemons.stop(d);
  });

  test('binary secrets come back as base64 in SecretBinary', async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 252]);
    await world.createSecret('bin/key', bytes);
    const d = await daemons.start();
    const body = JSON.parse((await d.get(secret('bin/key'))).body);
    assert.equal(body.SecretString, null);
    assert.equal(body.SecretBinary, Buffer.from(bytes).toString('base64'));
    await daemons.stop(d);
  });

  test("the source article's aliases /parameters/get and /secrets/get", async () => {
    const d = await daemons.start();
    const p = await d.get(`/parameters/get?name=${q('/app/endpoint')}`);
    assert.equal(JSON.parse(p.body).Parameter.Value, 'https://api.example.com');
    const s = await d.get(`/secrets/get?name=${q('prod/api/key')}`);
    assert.equal(JSON.parse(s.body).SecretString, API_KEY);
    const s2 = await d.get(`/secrets/get?secretId=${q('prod/api/key')}`);
    assert.equal(s2.headers['x-pscache'], 'hit');
    await daemons.stop(d);
  });
});

describe('errors table', () => {
  let d: RunningProcess;
  before(async () => {
    d = await daemons.start();
  });
  after(async () => {
    await daemons.stop(d);
  });
  const expectError = async (path: string, status: number, type?: string, opts = {}) => {
    const r = await d.get(path, opts);
    assert.equal(r.status, status, `${path}: ${r.body}`);
    assert.equal(r.headers['content-type'], 'application/json');
    const body = JSON.parse(r.body);
    assert.equal(typeof body.message, 'string');
    if (type) assert.equal(body.__type, type);
    return r;
  };

  test('400 bad query', async () => {
    await expectError('/systemsmanager/parameters/get', 400, 'BadRequest');
    await expectError('/systemsmanager/parameters/get?name=', 400);
    await expectError(param('/app/endpoint', '&version=abc'), 400);
    await expectError(param('/app/endpoint', '&withDecryption=maybe'), 400);
    await expectError(param('/app/endpoint', '&color=blue'), 400);
    await expectError('/secretsmanager/get?secretId=a&secretId=b', 400);
    await expectError('/systemsmanager/parameters/get?name=%zz', 400);
    await expectError(`/systemsmanager/parameters/get?name=${'a'.repeat(2049)}`, 400);
    assert.equal(calls('GetParameter') + calls('GetSecretValue'), 0, 'bad queries never reach upstream');
  });
  test('401 missing, wrong and empty token', async () => {
    await expectError(param('/app/endpoint'), 401, 'Unauthorized', { token: null });
    await expectError(param('/app/endpoint'), 401, 'Unauthorized', { token: 'wrong' });
    await expectError(param('/app/endpoint'), 401, 'Unauthorized', { token: '' });
    await expectError(param('/app/endpoint'), 401, 'Unauthorized', { token: `${TEST_TOKEN}x` });
    await expectError(param('/app/endpoint'), 401, 'Unauthorized', { token: TEST_TOKEN.slice(0, -1) });
    await expectError('/no/such/route', 401, 'Unauthorized', { token: null });
  });
  test('the token header name is case-insensitive', async () => {
    const r = await d.get(param('/app/endpoint'), {
      token: null,
      headers: { 'x-aws-parameters-secrets-token': TEST_TOKEN },
    });
    assert.equal(r.status, 200);
  });
  test('403 upstream AccessDeniedException', async () => {
    world.emu.deny(['/app/endpoint', 'prod/api/key']);
    await expectError(param('/app/endpoint', '&version=2'), 403, 'AccessDeniedException');
    await expectError(secret('prod/api/key', '&versionStage=AWSCURRENT'), 403, 'AccessDeniedException');
  });
  test('404 ParameterNotFound, ParameterVersionNotFound, ResourceNotFoundException, unknown route', async () => {
    await expectError(param('/does/not/exist'), 404, 'ParameterNotFound');
    await expectError(param('/app/endpoint', '&version=99'), 404, 'ParameterVersionNotFound');
    await expectError(secret('no/such/secret'), 404, 'ResourceNotFoundException');
    await expectError('/systemsmanager/parameters/list', 404, 'NotFound');
  });
  test('405 methods other than GET and HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      await expectError(param('/app/endpoint'), 405, 'MethodNotAllowed', { method });
    }
  });
  test('HEAD gets the status and headers GET would get, and no body', async () => {
    const r = await d.get(param('/app/endpoint'), { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.body, '');
    assert.ok(Number(r.headers['content-length']) > 0);
  });
  test('429 upstream throttling after retries', async () => {
    world.emu.setFaults([{ operation: 'GetParameter', error: 'throttle' }]);
    const r = await expectError(param('/throttled/always'), 429, 'ThrottlingException');
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(calls('GetParameter'), 3);
  });
  test('throttling then success is retried and answered 200', async () => {
    world.emu.setFaults([{ operation: 'GetParameter', error: 'throttle', times: 2 }]);
    const r = await d.get(param('/app/versions', '&version=2'));
    assert.equal(r.status, 200);
    assert.equal(calls('GetParameter'), 3);
  });
  test('502 upstream 5xx, reset and malformed answers', async () => {
    world.emu.setFaults([{ operation: 'GetSecretValue', error: '500' }]);
    await expectError(secret('prod/api/key', '&versionStage=AWSCURRENT'), 502);
    world.emu.setFaults([{ operation: 'GetSecretValue', error: 'reset' }]);
    await expectError(secret('prod/api/key', '&versionStage=AWSCURRENT'), 502);
    world.emu.setFaults([{ operation: 'GetSecretValue', error: 'malformed' }]);
    await expectError(secret('prod/api/key', '&versionStage=AWSCURRENT'), 502, 'MalformedResponse');
    world.emu.clearFaults();
    const ok = await d.get(secret('prod/api/key', '&versionStage=AWSCURRENT'));
    assert.equal(ok.status, 200, 'nothing partial or malformed was cached');
    assert.equal(ok.headers['x-pscache'], 'miss');
  });
  test('504 a slow upstream with a timeout', async () => {
    // Upstream answers after 2 s, each attempt gives up after 150 ms: a 504 is the timeout's, never upstream's.
    // A daemon of its own: the other reads here must not meet a 150 ms timeout on a slow machine.
    const slow = await daemons.start({ SSM_PARAMETER_STORE_TIMEOUT_MILLIS: '150' });
    world.emu.setFaults([{ operation: 'GetParameter', latencyMs: 2000 }]);
    const r = await slow.get(param('/app/endpoint', '&label=Stable'));
    assert.equal(r.status, 504, r.body);
    assert.equal(JSON.parse(r.body).__type, 'TimeoutError');
    await daemons.stop(slow);
  });
  test('400 forwarding headers and non-loopback Host', async () => {
    await expectError(param('/app/endpoint'), 400, 'ForwardedRequest', {
      headers: { 'X-Forwarded-For': '10.0.0.1' },
    });
    await expectError(param('/app/endpoint'), 400, 'ForwardedRequest', {
      headers: { Forwarded: 'for=1.2.3.4' },
    });
    await expectError(param('/app/endpoint'), 400, 'ForwardedRequest', {
      headers: { 'X-Real-IP': '1.2.3.4' },
    });
    await expectError(param('/app/endpoint'), 400, 'BadHost', { host: 'evil.example.com' });
    await expectError('/ping', 400, 'BadHost', { host: '169.254.169.254' });
    assert.equal((await d.get(param('/app/endpoint'), { host: 'localhost:2773' })).status, 200);
  });
  test('/ping and / need no token and reveal nothing', async () => {
    const ping = await d.get('/ping', { token: null });
    assert.equal(ping.status, 200);
    assert.equal(ping.body, 'healthy');
    const root = await d.get('/', { token: null });
    assert.equal(root.status, 200);
    assert.match(root.body, /^healthy\npscache \d+\.\d+\.\d+/);
  });
  test('oversized headers and URLs get a JSON 400, and the daemon stays up', async () => {
    await expectError(param('/app/endpoint'), 400, undefined, { headers: { 'X-Big': 'x'.repeat(20000) } });
    await expectError(`/systemsmanager/parameters/get?name=${'a'.repeat(9000)}`, 400);
    assert.equal((await d.get('/ping', { token: null })).status, 200);
  });
});

describe('limits and lifecycle', () => {
  test('429 beyond the inbound connection limit', async () => {
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_MAX_INBOUND_CONNECTIONS: '2' });
    const idle: Socket[] = [];
    // Connected one after the other: the listener accepts them in that order, before the request's.
    for (let i = 0; i < 2; i++) {
      const s = connect(d.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      idle.push(s);
    }
    const r = await d.get(param('/app/endpoint'));
    assert.equal(r.status, 429);
    assert.equal(JSON.parse(r.body).__type, 'TooManyConnections');
    for (const s of idle) s.destroy();
    // Once the daemon has seen them close (when is up to the scheduler), requests are served again.
    await until(async () => (await d.get(param('/app/endpoint'))).status === 200, 'a request served');
    await daemons.stop(d);
  });

  test('SIGTERM answers in-flight requests and exits 0', async () => {
    const d = await daemons.start();
    world.emu.setFaults([{ operation: 'GetParameter', latencyMs: 300 }]);
    const inflight = d.get(param('/app/endpoint'));
    await until(() => calls('GetParameter') === 1, 'the request to reach upstream');
    const stopped = daemons.stop(d);
    const r = await inflight;
    assert.equal(r.status, 200);
    const { code, output } = await stopped;
    assert.equal(code, 0);
    assert.match(output, /summary .*misses=1 .*upstream_calls=1/);
  });

  test('SIGINT also exits 0; a request left hanging on upstream gets 503 with Retry-After', async () => {
    const d = await daemons.start();
    world.emu.setFaults([{ operation: 'GetParameter', error: 'hang' }]);
    const inflight = d.get(param('/hang/forever'));
    await until(() => calls('GetParameter') === 1, 'the request to reach upstream');
    const stopped = d.stop('SIGINT');
    const r = await inflight;
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal((await stopped).code, 0);
  });

  test('listens on loopback only, IPv4 and IPv6', async () => {
    const d = await daemons.start();
    const { readFileSync } = await import('node:fs');
    const hex = d.port.toString(16).toUpperCase().padStart(4, '0');
    const listening = () =>
      [
        ...readFileSync('/proc/net/tcp', 'utf8').split('\n'),
        ...readFileSync('/proc/net/tcp6', 'utf8').split('\n'),
      ].filter((l) => l.includes(`:${hex} `) && l.trim().split(/\s+/)[3] === '0A');
    // ::1 is bound just after the first request (the /ping that said it was up), on a host that has it: a
    // container without IPv6 gets 127.0.0.1 alone (src/server/listener.ts).
    let v6 = false;
    try {
      v6 = readFileSync('/proc/net/if_inet6', 'utf8').includes('00000000000000000000000000000001');
    } catch {
      // no IPv6 in this kernel at all
    }
    if (v6)
      await until(() => listening().some((r) => r.includes('00000000000000000000000001000000:')), '[::1]');
    const rows = listening();
    assert.ok(
      rows.some((r) => r.includes('0100007F:')),
      'listening on 127.0.0.1',
    );
    if (v6) {
      assert.ok(
        rows.some((r) => r.includes('00000000000000000000000001000000:')),
        'also listening on [::1]',
      );
    }
    for (const row of rows) {
      const local = row.trim().split(/\s+/)[1]!.split(':')[0]!;
      assert.ok(
        local === '0100007F' || local === '00000000000000000000000001000000',
        `listening address ${local} is loopback`,
      );
    }
    await daemons.stop(d);
  });
});

describe('logs', () => {
  test('DEBUG logs a line per request with name and hit/miss, never the values or the token', async () => {
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug' });
    await d.get(secret('prod/db/password'));
    await d.get(secret('prod/db/password'));
    await d.get(param('/app/secure', '&withDecryption=true'));
    await d.get(param('/app/endpoint'), { token: 'wrong-token' });
    const { output } = await daemons.stop(d);
    assert.match(output, /DEBUG request route=secretsmanager name=prod\/db\/password result=miss status=200/);
    assert.match(output, /DEBUG request route=secretsmanager name=prod\/db\/password result=hit status=200/);
    assert.match(output, /upstream_ms=/);
    assert.ok(!output.includes(SECURE_V1));
    assert.ok(!output.includes(DB_PASSWORD));
    assert.ok(!output.includes('hunter2-db-password-v2'));
    assert.ok(!output.includes(TEST_TOKEN));
    assert.ok(!output.includes('wrong-token'));
  });
  test('INFO logs no names', async () => {
    const d = await daemons.start();
    await d.get(secret('prod/db/password'));
    world.emu.setFaults([{ operation: 'GetSecretValue', error: '500' }]);
    await d.get(secret('prod/api/key', '&versionId=abc'));
    const { output } = await daemons.stop(d);
    assert.ok(!output.includes('prod/db/password'));
    assert.ok(!output.includes('prod/api/key'));
    assert.match(output, /WARN upstream request failed/);
  });
  test('JSON log format', async () => {
    const d = await daemons.start({ AWS_LAMBDA_LOG_FORMAT: 'JSON' });
    const { output } = await daemons.stop(d);
    const lines = output.trim().split('\n');
    assert.ok(lines.length >= 2);
    for (const line of lines) {
      const o = JSON.parse(line);
      assert.equal(typeof o.message, 'string');
      assert.match(o.level, /^(INFO|WARN|ERROR|DEBUG)$/);
    }
  });
});
