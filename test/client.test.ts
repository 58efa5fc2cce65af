// pscache/client end to end: every function against the bundled daemon and the emulator over loopback,
// typed errors, retries proven with injected faults, timeouts, transforms, tokens and name encoding.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import {
  AccessDeniedError,
  BadRequestError,
  type ClientOptions,
  createClient,
  ExtensionUnavailableError,
  getParameter,
  getParameters,
  getParametersByPath,
  getSecret,
  getSecrets,
  NotFoundError,
  ParameterNotFoundError,
  PscacheError,
  ThrottledError,
  Transform,
  TransformError,
  UnauthorizedError,
  UpstreamError,
} from '../src/client/index.ts';
import { type Fault, type FaultProxy, startFaultProxy } from './helpers/client-proxy.ts';
import { type ClientWorld, EXOTIC, startClientWorld, VALUES } from './helpers/client-world.ts';
import { freePort, TEST_TOKEN } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

let cw: ClientWorld;
const proxies = new Set<FaultProxy>();

before(async () => {
  cw = await startClientWorld();
});

after(async () => {
  await Promise.all([...proxies].map((p) => p.close()));
  await cw.close();
});

/** A client of the daemon (through `port`, default the daemon's), fast backoff so retries cost little. */
function client(o: ClientOptions = {}) {
  return createClient({ port: cw.port, token: TEST_TOKEN, retryBaseMs: 10, retryMaxDelayMs: 40, ...o });
}

async function proxy(...faults: Fault[]): Promise<FaultProxy> {
  const p = await startFaultProxy(cw.port);
  proxies.add(p);
  p.fail(...faults);
  return p;
}

/** Asserts the promise rejects with an instance of `Class`, and returns the error. */
async function rejects<E extends Error>(p: Promise<unknown>, Class: new (...a: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof Class, `expected ${Class.name}, got ${inspect(e)}`);
    return e;
  }
  assert.fail(`expected ${Class.name}, but the call succeeded`);
}

const elapsed = async <T>(f: () => Promise<T>): Promise<{ ms: number; result: T }> => {
  const t = performance.now();
  const result = await f();
  return { ms: performance.now() - t, result };
};

describe('reads', () => {
  test('getParameter: a value, a SecureString decrypted or not, a version, a label', async () => {
    const c = client();
    assert.equal(await c.getParameter('/app/endpoint'), VALUES.endpoint);
    assert.equal(await c.getParameter('/app/db/password', { decrypt: true }), VALUES.dbPassword);
    const cipher = await c.getParameter('/app/db/password');
    assert.notEqual(cipher, VALUES.dbPassword, 'without decrypt a SecureString stays ciphertext');
    assert.equal(await c.getParameter('/app/config'), VALUES.v2);
    assert.equal(await c.getParameter('/app/config', { version: 1 }), VALUES.v1);
    assert.equal(await c.getParameter('/app/config', { version: '2' }), VALUES.v2);
    assert.equal(await c.getParameter('/app/config', { label: 'stable' }), VALUES.v1);
    assert.equal(await c.getParameter('/app/flags'), 'a,b,c');
    c.close();
  });

  test('getParameter: forceFetch/refresh bypass the daemon cache; maxAge/ttl 0 skips it', async () => {
    const c = client();
    // One parameter per option: the daemon shares refreshes of one key for a second.
    const options = [{ forceFetch: true }, { refresh: true }, { maxAge: 0 }, { ttl: 0 }] as const;
    for (const [i, o] of options.entries()) {
      const name = `/app/changing/${i}`;
      await cw.world.putParameter(name, 'one');
      assert.equal(await c.getParameter(name), 'one');
      await cw.world.putParameter(name, 'two');
      assert.equal(await c.getParameter(name), 'one', 'still cached by the daemon');
      assert.equal(await c.getParameter(name, o), 'two', JSON.stringify(o));
    }
    c.close();
  });

  test('getParameters: values by the names asked for (name, name:version, ARN), missing ones typed', async () => {
    const c = client();
    const arn = 'arn:aws:ssm:us-east-1:123456789012:parameter/app/endpoint';
    const got = await c.getParameters(['/app/endpoint', '/app/flags', '/app/config:1', arn, '/app/endpoint']);
    assert.deepEqual(got, {
      '/app/endpoint': VALUES.endpoint,
      '/app/flags': 'a,b,c',
      '/app/config:1': VALUES.v1,
      [arn]: VALUES.endpoint,
    });
    assert.deepEqual(await c.getParameters(['/app/db/password'], { decrypt: true }), {
      '/app/db/password': VALUES.dbPassword,
    });
    const e = await rejects(
      c.getParameters(['/app/endpoint', '/app/missing-1', '/app/missing-2']),
      ParameterNotFoundError,
    );
    assert.equal(e.status, 404);
    assert.match(e.message, /\/app\/missing-1, \/app\/missing-2/);
    assert.deepEqual(await c.getParameters(['/app/endpoint', '/app/missing-1'], { throwOnError: false }), {
      '/app/endpoint': VALUES.endpoint,
    });
    assert.deepEqual(await c.getParameters([]), {});
    c.close();
  });

  test('getParameters: more than 100 names are split into several requests', async () => {
    const names = Array.from({ length: 130 }, (_, i) => `/bulk/p${i}`);
    await Promise.all(
      names.map((n, i) =>
        cw.world.ssm.send(
          new PutParameterCommand({ Name: n, Value: `v${i}`, Type: 'String', Overwrite: true }),
        ),
      ),
    );
    const p = await proxy();
    const c = client({ port: p.port });
    const got = await c.getParameters(names);
    assert.equal(Object.keys(got).length, 130);
    assert.equal(got['/bulk/p129'], 'v129');
    assert.equal(p.requests.length, 2);
    c.close();
  });

  test('getParametersByPath: keys relative to the path, recursive, decrypt', async () => {
    const c = client();
    const flat = await c.getParametersByPath('/app/db');
    assert.deepEqual(Object.keys(flat).sort(), ['password', 'settings']);
    assert.notEqual(flat['password'], VALUES.dbPassword);
    const deep = await c.getParametersByPath('/app/db/', { recursive: true, decrypt: true });
    assert.deepEqual(deep, {
      'deep/level': 'deep-value',
      password: VALUES.dbPassword,
      settings: VALUES.json,
    });
    assert.deepEqual(await c.getParametersByPath('/nothing/here'), {});
    c.close();
  });

  test('getSecret: a string, bytes for SecretBinary, by stage and by version id', async () => {
    const c = client();
    assert.equal(await c.getSecret('svc/plain'), VALUES.dbPassword);
    const bytes = await c.getSecret('svc/binary');
    assert.ok(bytes instanceof Uint8Array);
    assert.deepEqual([...bytes], [...VALUES.binary]);
    assert.equal(await c.getSecret(EXOTIC.secret, { versionStage: 'AWSCURRENT' }), VALUES.exoticCurrent);
    await cw.world.createSecret('svc/rotating', 'first');
    const versionId = await cw.world.putSecretValue('svc/rotating', 'second');
    assert.equal(await c.getSecret('svc/rotating', { versionId }), 'second');
    assert.equal(await c.getSecret('svc/rotating', { versionStage: 'AWSPREVIOUS' }), 'first');
    c.close();
  });

  test('getSecret: forceFetch picks up a rotation the cache would hide', async () => {
    const c = client();
    await cw.world.createSecret('svc/rotated', 'before');
    assert.equal(await c.getSecret('svc/rotated'), 'before');
    await cw.world.putSecretValue('svc/rotated', 'after');
    assert.equal(await c.getSecret('svc/rotated'), 'before');
    assert.equal(await c.getSecret('svc/rotated', { forceFetch: true }), 'after');
    c.close();
  });

  test('getSecrets: values by id, missing and denied ones typed, or left out', async () => {
    const c = client();
    const arn = (await cw.world.sm.send(new DescribeSecretCommand({ SecretId: 'svc/plain' }))).ARN!;
    assert.deepEqual(await c.getSecrets(['svc/plain', 'svc/json', arn]), {
      'svc/plain': VALUES.dbPassword,
      'svc/json': VALUES.json,
      [arn]: VALUES.dbPassword,
    });
    const missing = await rejects(c.getSecrets(['svc/plain', 'svc/nope']), ParameterNotFoundError);
    assert.equal(missing.item, 'svc/nope');
    assert.equal(missing.__type, 'ResourceNotFoundException');
    cw.world.emu.deny(['svc/forbidden']);
    try {
      await cw.world.createSecret('svc/forbidden', 'x');
      const denied = await rejects(c.getSecrets(['svc/forbidden']), AccessDeniedError);
      assert.equal(denied.status, 403);
      assert.equal(denied.item, 'svc/forbidden');
    } finally {
      cw.world.emu.clearDeny();
    }
    assert.deepEqual(await c.getSecrets(['svc/nope', 'svc/plain'], { throwOnError: false }), {
      'svc/plain': VALUES.dbPassword,
    });
    c.close();
  });

  test('the module-level functions use the environment for the port and the token', async () => {
    const saved = Object.fromEntries(Object.keys(cw.env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, cw.env);
    try {
      assert.equal(await getParameter('/app/endpoint'), VALUES.endpoint);
      assert.deepEqual(await getParameters(['/app/flags']), { '/app/flags': 'a,b,c' });
      assert.deepEqual(Object.keys(await getParametersByPath('/app/db')).sort(), ['password', 'settings']);
      assert.equal(await getSecret('svc/plain'), VALUES.dbPassword);
      assert.deepEqual(await getSecrets(['svc/plain']), { 'svc/plain': VALUES.dbPassword });
      // Read at each call, not at first use.
      process.env['PARAMETERS_SECRETS_EXTENSION_TOKEN'] = 'not-the-token';
      await rejects(getParameter('/app/endpoint'), UnauthorizedError);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('names', () => {
  test('/, +, =, @ in a secret name, : in ARNs, and & : + spaces and non-ASCII in a stage round-trip', async () => {
    const c = client();
    assert.equal(await c.getSecret(EXOTIC.secret), VALUES.exoticCurrent);
    assert.equal(await c.getSecret(EXOTIC.secret, { versionStage: EXOTIC.stage }), VALUES.exoticStaged);
    assert.deepEqual(await c.getSecrets([EXOTIC.secret]), { [EXOTIC.secret]: VALUES.exoticCurrent });
    const arn = 'arn:aws:ssm:us-east-1:123456789012:parameter/app/config';
    assert.equal(await c.getParameter(arn, { label: 'stable' }), VALUES.v1);
    c.close();
  });

  test('a name SSM refuses comes back quoted in the error exactly as sent', async () => {
    const c = client();
    const e = await rejects(c.getParameter(EXOTIC.badParameter), BadRequestError);
    assert.equal(e.status, 400);
    assert.ok(e.message.includes(EXOTIC.badParameter), e.message);
    const stage = await rejects(
      c.getSecret(EXOTIC.secret, { versionStage: `${EXOTIC.stage}?#%` }),
      ParameterNotFoundError,
    );
    assert.ok(stage.message.includes(`${EXOTIC.stage}?#%`), stage.message);
    c.close();
  });
});

describe('errors', () => {
  test('404s are NotFoundError with the upstream __type; ParameterNotFoundError is its deprecated alias', async () => {
    const c = client();
    const p = await rejects(c.getParameter('/app/absent'), ParameterNotFoundError);
    assert.deepEqual([p.status, p.__type, p.item, p.attempts], [404, 'ParameterNotFound', '/app/absent', 1]);
    const v = await rejects(c.getParameter('/app/config', { version: 99 }), ParameterNotFoundError);
    assert.equal(v.__type, 'ParameterVersionNotFound');
    const s = await rejects(c.getSecret('svc/absent'), ParameterNotFoundError);
    assert.equal(s.__type, 'ResourceNotFoundException');
    assert.ok(s instanceof PscacheError && s instanceof Error);
    assert.equal(s.name, 'NotFoundError');
    assert.ok(s instanceof NotFoundError);
    assert.equal(ParameterNotFoundError, NotFoundError, 'code that catches the old name still catches it');
    c.close();
  });

  test('403 is AccessDeniedError', async () => {
    cw.world.emu.deny(['/app/secret-area/*']);
    try {
      await cw.world.putParameter('/app/secret-area/x', 'x');
      const e = await rejects(client().getParameter('/app/secret-area/x'), AccessDeniedError);
      assert.deepEqual([e.status, e.__type], [403, 'AccessDeniedException']);
    } finally {
      cw.world.emu.clearDeny();
    }
  });

  test('a wrong token is UnauthorizedError naming where the token came from', async () => {
    const e = await rejects(
      createClient({ port: cw.port, token: 'wrong' }).getParameter('/app/endpoint'),
      UnauthorizedError,
    );
    assert.equal(e.status, 401);
    assert.match(e.message, /createClient\(\{ token \}\)/);
    const fromEnv = createClient({ port: cw.port, env: { AWS_SESSION_TOKEN: 'also-wrong-0123456789' } });
    const e2 = await rejects(fromEnv.getParameter('/app/endpoint'), UnauthorizedError);
    assert.match(e2.message, /came from AWS_SESSION_TOKEN/);
    assert.match(e2.message, /PARAMETERS_SECRETS_EXTENSION_TOKEN/);
    assert.ok(!e2.message.includes('also-wrong'), 'the token is never in a message');
    // A token the daemon would refuse is refused here too, naming why, and nothing is sent.
    const short = createClient({ port: cw.port, env: { AWS_SESSION_TOKEN: 'short' } });
    const e3 = await rejects(short.getParameter('/app/endpoint'), UnauthorizedError);
    assert.equal(e3.__type, 'InvalidTokenSource');
    assert.match(
      e3.message,
      /^AWS_SESSION_TOKEN=\(hidden\) is invalid: the token is too short \(5 characters\)/,
    );
  });

  test('no token at all: UnauthorizedError saying which variable to set, and nothing sent', async () => {
    const p = await proxy();
    const e = await rejects(
      createClient({ port: p.port, env: {} }).getSecret('svc/plain'),
      UnauthorizedError,
    );
    assert.equal(e.status, 401);
    assert.equal(e.__type, 'MissingToken');
    assert.match(e.message, /set PARAMETERS_SECRETS_EXTENSION_TOKEN/);
    assert.match(e.message, /AWS_SESSION_TOKEN/);
    assert.equal(p.requests.length, 0);
  });

  test("the token is taken in the daemon's order, and file:///path is read", async () => {
    const dir = tempDir('client-token');
    const file = join(dir, 'token');
    writeFileSync(file, `${TEST_TOKEN}\n`);
    const read = (env: Record<string, string>) => createClient({ port: cw.port, env }).getSecret('svc/plain');
    assert.equal(await read({ PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${file}` }), VALUES.dbPassword);
    const other = 'another-token-0123456789';
    assert.equal(
      await read({ PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN, AWS_SESSION_TOKEN: other }),
      VALUES.dbPassword,
    );
    assert.equal(await read({ AWS_TOKEN: TEST_TOKEN, AWS_SESSION_TOKEN: other }), VALUES.dbPassword);
    assert.equal(
      await read({ AWS_SESSION_TOKEN: TEST_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN: other }),
      VALUES.dbPassword,
    );
    assert.equal(await read({ AWS_CONTAINER_AUTHORIZATION_TOKEN: TEST_TOKEN }), VALUES.dbPassword);
    await rejects(
      read({ AWS_SESSION_TOKEN: other, AWS_CONTAINER_AUTHORIZATION_TOKEN: TEST_TOKEN }),
      UnauthorizedError,
    );
    const gone = await rejects(
      read({ PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${dir}/missing` }),
      UnauthorizedError,
    );
    assert.match(gone.message, /could not be opened \(ENOENT\)/);
  });

  test('the port comes from PARAMETERS_SECRETS_EXTENSION_HTTP_PORT; a bad one is named', async () => {
    const env = {
      PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(cw.port),
    };
    assert.equal(await createClient({ env }).getParameter('/app/endpoint'), VALUES.endpoint);
    const bad = createClient({ env: { ...env, PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '99999' } });
    await assert.rejects(
      bad.getParameter('/app/endpoint'),
      /PARAMETERS_SECRETS_EXTENSION_HTTP_PORT="99999" is invalid/,
    );
  });

  test('throttling that outlasts the daemon is ThrottledError (429)', async () => {
    await cw.world.putParameter('/app/throttled', 'x');
    cw.world.emu.setFaults([{ name: '/app/throttled', error: 'throttle' }]);
    try {
      const e = await rejects(client({ retries: 0 }).getParameter('/app/throttled'), ThrottledError);
      assert.deepEqual([e.status, e.__type], [429, 'ThrottlingException']);
    } finally {
      cw.world.emu.clearFaults();
    }
  });

  test('an upstream failure is UpstreamError (502) after the client retried', async () => {
    cw.world.emu.setFaults([{ name: '/app/broken', error: '500' }]);
    try {
      const e = await rejects(client({ retries: 1 }).getParameter('/app/broken'), UpstreamError);
      assert.equal(e.status, 502);
      assert.equal(e.attempts, 2);
    } finally {
      cw.world.emu.clearFaults();
    }
  });

  test('bad calls: TypeError/RangeError before anything is sent; a query the daemon refuses is BadRequestError', async () => {
    const p = await proxy();
    const c = client({ port: p.port });
    await assert.rejects(c.getParameter('/app/config', { version: 1, label: 'stable' }), TypeError);
    await assert.rejects(c.getParameter(''), TypeError);
    await assert.rejects(c.getParameters('/app' as unknown as string[]), /use getParametersByPath/);
    await assert.rejects(c.getParameter('/app/endpoint', { maxAge: -1 }), RangeError);
    await assert.rejects(c.getParameter('/app/endpoint', { transform: 'yaml' as 'json' }), TypeError);
    assert.equal(p.requests.length, 1, 'only the bad transform went out (it applies to the answer)');
    const e = await rejects(c.getParameter('/app/endpoint', { maxAge: 100_000 }), BadRequestError);
    assert.equal(e.status, 400);
    assert.equal(p.requests.length, 2, 'a 400 is not retried');
    assert.throws(() => createClient({ port: 70000 }), RangeError);
    assert.throws(() => createClient({ timeoutMs: 0 }), RangeError);
  });
});

describe('retries', () => {
  for (const [label, faults] of [
    ['503, 503', [{ status: 503 }, { status: 503 }]],
    ['reset, reset', ['reset', 'reset']],
    ['503, reset', [{ status: 503 }, 'reset']],
    ['502, 504', [{ status: 502 }, { status: 504 }]],
    ['429, reset', [{ status: 429 }, 'reset']],
  ] as Array<[string, Fault[]]>) {
    test(`first two attempts fail (${label}), the third succeeds`, async () => {
      const p = await proxy(...faults);
      const c = client({ port: p.port, retries: 2 });
      assert.equal(await c.getSecret('svc/plain'), VALUES.dbPassword);
      assert.equal(p.requests.length, 3);
      c.close();
    });
  }

  test('retries run out: the last error is thrown, with the number of attempts', async () => {
    const p = await proxy();
    p.failAlways({ status: 503 });
    const e = await rejects(
      client({ port: p.port, retries: 2 }).getParameter('/app/endpoint'),
      ExtensionUnavailableError,
    );
    assert.deepEqual([e.status, e.__type, e.attempts, p.requests.length], [503, 'Injected503', 3, 3]);
  });

  for (const [status, Class] of [
    [400, BadRequestError],
    [401, UnauthorizedError],
    [403, AccessDeniedError],
    [404, ParameterNotFoundError],
  ] as const) {
    test(`${status} is never retried`, async () => {
      const p = await proxy({ status });
      const e = await rejects<PscacheError>(
        client({ port: p.port, retries: 3 }).getParameter('/app/endpoint'),
        Class,
      );
      assert.equal(e.status, status);
      assert.equal(p.requests.length, 1);
    });
  }

  test('a real 404 from the daemon is not retried either', async () => {
    const p = await proxy();
    await rejects(client({ port: p.port, retries: 3 }).getSecret('svc/absent'), ParameterNotFoundError);
    assert.equal(p.requests.length, 1);
  });

  test('Retry-After is honoured', async () => {
    const p = await proxy({ status: 429, retryAfter: '1' });
    const { ms, result } = await elapsed(() => client({ port: p.port }).getParameter('/app/endpoint'));
    assert.equal(result, VALUES.endpoint);
    assert.ok(ms >= 950, `waited ${ms} ms`);
    assert.equal(p.requests.length, 2);
  });

  test('a Retry-After beyond 10 s is not waited out', async () => {
    const p = await proxy({ status: 503, retryAfter: '120' });
    const { ms } = await elapsed(() =>
      rejects(client({ port: p.port }).getParameter('/app/endpoint'), ExtensionUnavailableError),
    );
    // Waited out, it would take 120 s (or the 10 s cap and a second request).
    assert.ok(ms < 10_000, `took ${ms} ms`);
    assert.equal(p.requests.length, 1);
  });

  test('connection refused is retried until the daemon listens (the cold-start race)', async () => {
    const port = await freePort();
    // Retries spanning seconds: however slowly the listener comes up after 150 ms, one of them meets it.
    const c = client({ port, retries: 30, retryBaseMs: 100, retryMaxDelayMs: 400 });
    let started: FaultProxy | undefined;
    const timer = setTimeout(async () => {
      started = await startFaultProxy(cw.port, port);
      proxies.add(started);
    }, 150);
    try {
      assert.equal(await c.getParameter('/app/endpoint'), VALUES.endpoint);
      assert.ok(started, 'the answer came through the late listener');
    } finally {
      clearTimeout(timer);
      c.close();
    }
  });

  test('connection refused with retries exhausted is ExtensionUnavailableError', async () => {
    const port = await freePort();
    const e = await rejects(client({ port, retries: 1 }).getSecret('svc/plain'), ExtensionUnavailableError);
    assert.deepEqual([e.status, e.__type, e.attempts], [0, 'ConnectionRefused', 2]);
    assert.match(e.message, /is pscache running/);
  });

  test('a pooled socket found dead is resent at once, without spending a retry', async () => {
    const p = await proxy();
    const c = client({ port: p.port, retries: 0 });
    assert.equal(await c.getParameter('/app/endpoint'), VALUES.endpoint);
    p.fail('reset');
    assert.equal(await c.getParameter('/app/endpoint'), VALUES.endpoint);
    assert.equal(p.requests.length, 3);
    c.close();
  });
});

describe('timeouts', () => {
  test('each attempt is bounded by timeoutMs; retries get fresh attempts', async () => {
    const p = await proxy('hang');
    const { ms, result } = await elapsed(() =>
      client({ port: p.port, timeoutMs: 1000, retries: 1 }).getParameter('/app/endpoint'),
    );
    // The first attempt hangs for good: the answer came from the second, after the first was cut at 1 s
    // (long enough for the second to finish in, however loaded the machine).
    assert.equal(result, VALUES.endpoint);
    assert.ok(ms >= 1000, `took ${ms} ms`);
    assert.equal(p.requests.length, 2);
  });

  test('the default is 1 s per attempt', async () => {
    const p = await proxy();
    p.failAlways('hang');
    const { ms, result: e } = await elapsed(() =>
      rejects(client({ port: p.port, retries: 0 }).getParameter('/app/endpoint'), ExtensionUnavailableError),
    );
    assert.equal(e.__type, 'Timeout');
    assert.equal(e.status, 0);
    assert.match(e.message, /did not answer within 1000 ms/);
    assert.ok(ms >= 990, `took ${ms} ms`);
  });

  test('a slow upstream: the retry joins the daemon call already in flight (one upstream call)', async () => {
    await cw.world.putParameter('/app/slow', 'slow-value');
    cw.world.emu.setFaults([{ name: '/app/slow', latencyMs: 700 }]);
    cw.world.emu.resetCalls();
    try {
      const quick = client({ timeoutMs: 250, retries: 0 });
      const e = await rejects(quick.getParameter('/app/slow'), ExtensionUnavailableError);
      assert.equal(e.__type, 'Timeout');
      // Attempts cut at 300 ms, retried for seconds: one of them gets the answer of the call in flight.
      const patient = client({ timeoutMs: 300, retries: 30, retryBaseMs: 50, retryMaxDelayMs: 50 });
      assert.equal(await patient.getParameter('/app/slow'), 'slow-value');
      const calls = cw.world.emu.calls();
      assert.equal((calls['GetParameter'] ?? 0) + (calls['GetParameters'] ?? 0), 1);
    } finally {
      cw.world.emu.clearFaults();
    }
  });
});

describe('transforms', () => {
  test("'json' parses; a failure is a TransformError naming the item and never showing the value", async () => {
    const c = client();
    assert.deepEqual(
      await c.getParameter('/app/db/settings', { transform: 'json' }),
      JSON.parse(VALUES.json),
    );
    assert.deepEqual(await c.getSecret('svc/json', { transform: Transform.JSON }), JSON.parse(VALUES.json));
    assert.deepEqual(await c.getSecret('svc/json-bytes', { transform: 'json' }), JSON.parse(VALUES.json));
    for (const call of [
      () => c.getParameter('/app/not-json', { transform: 'json' }),
      () => c.getSecret('svc/not-json', { transform: 'json' }),
      () => c.getSecrets(['svc/json', 'svc/not-json'], { transform: 'json' }),
    ]) {
      const e = await rejects(call(), TransformError);
      assert.match(e.message, /not-json is not valid JSON/);
      assert.ok(e.item?.endsWith('not-json'));
      assert.equal(e.__type, 'TransformError');
      assert.ok(!inspect(e).includes(VALUES.notJson), 'the value never shows, not even via a cause');
    }
    c.close();
  });

  test("'json' on batch and path reads, failing on the one bad item", async () => {
    const c = client();
    assert.deepEqual(await c.getParameters(['/json/one'], { transform: 'json' }), { '/json/one': { n: 1 } });
    const e = await rejects(c.getParametersByPath('/json', { transform: 'json' }), TransformError);
    assert.equal(e.item, '/json/two');
    assert.deepEqual(await c.getSecrets(['svc/json'], { transform: 'json' }), {
      'svc/json': JSON.parse(VALUES.json),
    });
    c.close();
  });

  test("'binary' decodes base64 to bytes; bad base64 is a TransformError", async () => {
    const c = client();
    const fromParam = await c.getParameter('/app/blob', { transform: 'binary' });
    assert.ok(fromParam instanceof Uint8Array);
    assert.deepEqual([...fromParam], [...VALUES.binary]);
    assert.deepEqual([...(await c.getSecret('svc/b64-string', { transform: 'binary' }))], [...VALUES.binary]);
    assert.deepEqual([...(await c.getSecret('svc/binary', { transform: 'binary' }))], [...VALUES.binary]);
    const bytes = await c.getParameters(['/app/blob'], { transform: 'binary' });
    assert.deepEqual([...bytes['/app/blob']!], [...VALUES.binary]);
    const e = await rejects(c.getParameter('/app/endpoint', { transform: 'binary' }), TransformError);
    assert.match(e.message, /\/app\/endpoint is not valid base64/);
    assert.ok(!e.message.includes(VALUES.endpoint));
    c.close();
  });
});

test('clients are independent and destructurable', async () => {
  const { getParameter: get, close } = client();
  assert.equal(await get('/app/endpoint'), VALUES.endpoint);
  close();
});
