// Upstream faults, end to end through the emulator: every fault kind on both services and on the batch
// and path routes, stale-if-error through each of them, throttling storms, DNS failure and expiring
// container credentials. The status must follow the errors table of docs/http-api.md, retries stay bounded, nothing partial is
// cached, and NotFound/AccessDenied are never answered from a stale entry.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { DeleteParameterCommand } from '@aws-sdk/client-ssm';
import type { FaultKind } from '../packages/emulator/index.ts';
import {
  Daemons,
  param,
  type Reply,
  type RunningProcess,
  secret,
  sleep,
  TEST_TOKEN,
} from './helpers/daemon.ts';
import { rssKiB } from './helpers/fuzz-http.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);

/** A daemon environment whose only credentials come from the emulator's container credentials endpoint. */
const containerEnv = (authToken: string) => ({
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL: world.emu.url,
  AWS_CONTAINER_CREDENTIALS_FULL_URI: `${world.emu.url}/__emulator/container-credentials`,
  AWS_CONTAINER_AUTHORIZATION_TOKEN: authToken,
  PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
});

/** Stops a daemon and asserts it exited cleanly after the faults it went through. */
async function stopClean(d: RunningProcess) {
  const r = await daemons.stop(d);
  assert.equal(r.code, 0, 'exits cleanly after the faults');
  return r;
}

const q = encodeURIComponent;
/** Upstream attempts of `operation` the daemon counted, from its /metrics answer. */
function upstreamAttempts(metrics: Reply, operation: string): number {
  const re = new RegExp(`^pscache_upstream_calls_total\\{operation="${operation}",[^}]*\\} (\\d+)$`, 'gm');
  return [...metrics.body.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
}
const calls = (...ops: string[]) => ops.reduce((n, op) => n + (world.emu.calls()[op] ?? 0), 0);
const json = (r: Reply) => JSON.parse(r.body) as Record<string, unknown>;

type Service = 'ssm' | 'secretsmanager';
interface Kind {
  error: FaultKind;
  status: number;
  type?: RegExp;
  /** Attempts the emulator may see for one request: up to 3, plus one free retry on a stale keep-alive socket. */
  attempts: [number, number];
}
const KINDS: Kind[] = [
  { error: 'throttle', status: 429, type: /^ThrottlingException$/, attempts: [3, 3] },
  { error: '500', status: 502, attempts: [3, 3] },
  { error: '503', status: 502, type: /^ServiceUnavailable$/, attempts: [3, 3] },
  { error: 'reset', status: 502, attempts: [3, 4] },
  { error: 'reset-mid-body', status: 502, attempts: [3, 4] },
  { error: 'malformed', status: 502, type: /^MalformedResponse$/, attempts: [1, 1] },
  { error: 'wrong-content-type', status: 502, type: /^MalformedResponse$/, attempts: [1, 1] },
  { error: 'huge', status: 502, type: /^MalformedResponse$/, attempts: [1, 1] },
  { error: 'endless', status: 502, type: /^MalformedResponse$/, attempts: [1, 1] },
  { error: 'hang', status: 504, type: /^TimeoutError$/, attempts: [3, 3] },
];
/**
 * Per-attempt timeout of the daemon that meets `hang`: what turns it into a 504. The other kinds go to a
 * daemon without one (the 10 s ceiling), so that however slow the machine, reading 8 MB of `endless` is
 * never cut short by a timeout instead of the size cap.
 */
const HANG_TIMEOUT_MS = 300;
const TIMEOUTS = {
  SSM_PARAMETER_STORE_TIMEOUT_MILLIS: String(HANG_TIMEOUT_MS),
  SECRETS_MANAGER_TIMEOUT_MILLIS: String(HANG_TIMEOUT_MS),
};

const OP: Record<Service, string> = { ssm: 'GetParameter', secretsmanager: 'GetSecretValue' };
/** The kinds run on a service: a hang (the slowest case) only on SSM, the client code is shared. */
const kindsFor = (service: Service) => KINDS.filter((k) => service === 'ssm' || k.error !== 'hang');
const nameOf = (service: Service, kind: string) => (service === 'ssm' ? `/faults/${kind}` : `faults/${kind}`);
const expectedValue = (service: Service, kind: string) => `fault-value-${service}-${kind}-0042`;
const pathOf = (service: Service, kind: string) =>
  service === 'ssm' ? param(nameOf(service, kind)) : secret(nameOf(service, kind));
const valueIn = (service: Service, r: Reply) => {
  const b = json(r);
  return service === 'ssm' ? (b['Parameter'] as Record<string, unknown>)['Value'] : b['SecretString'];
};

/** What every failed answer must look like: the status, JSON {__type, message}, no value, a miss. */
function assertFailure(r: Reply, status: number, type: RegExp | undefined, what: string): void {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.body.slice(0, 200)}`);
  assert.equal(r.headers['content-type'], 'application/json', what);
  const b = json(r);
  assert.equal(typeof b['__type'], 'string', what);
  assert.equal(typeof b['message'], 'string', what);
  if (type) assert.match(String(b['__type']), type, what);
  assert.ok(!r.body.includes('fault-value-'), `${what}: no value in an error`);
  assert.equal(r.headers['x-pscache'], 'miss', what);
  if (status === 429) assert.equal(r.headers['retry-after'], '1', what);
}

before(async () => {
  world = await startWorld();
  for (const service of ['ssm', 'secretsmanager'] as const) {
    for (const k of kindsFor(service)) {
      const value = sensitive(expectedValue(service, k.error));
      if (service === 'ssm') await world.putParameter(nameOf(service, k.error), value);
      else await world.createSecret(nameOf(service, k.error), value);
    }
  }
});

worldHooks(() => world, daemons);

describe('every fault kind on both services', () => {
  test('status per the errors table, bounded attempts, nothing cached; the next read is a miss with the right body', async (t) => {
    const other = await daemons.start();
    const hang = await daemons.start(TIMEOUTS);
    const injected: Record<string, number> = {};
    for (const service of ['ssm', 'secretsmanager'] as const) {
      for (const k of kindsFor(service)) {
        const d = k.error === 'hang' ? hang : other;
        const pid = d.child.pid!;
        const what = `${service} ${k.error}`;
        const name = nameOf(service, k.error);
        world.emu.resetCalls();
        world.emu.setFaults([{ operation: OP[service], name, error: k.error }]);
        const rssBefore = rssKiB(pid);
        const r = await d.get(pathOf(service, k.error));
        assertFailure(r, k.status, k.type, what);
        const n = calls(OP[service]);
        injected[k.error] = (injected[k.error] ?? 0) + n;
        assert.ok(
          n >= k.attempts[0] && n <= k.attempts[1],
          `${what}: ${n} attempts, not ${k.attempts.join('-')}`,
        );
        // Bounded in time too, whatever the machine's speed: a hang is answered TimeoutError (504) after
        // exactly 3 attempts, so each attempt was cut off by its timeout (test/aws.test.ts times them).
        if (k.error === 'huge' || k.error === 'endless') {
          // The body is refused at 8 MB (at once for the 50 MB one with its Content-Length): never buffered whole.
          assert.ok(rssKiB(pid) - rssBefore < 40 * 1024, `${what}: RSS grew ${rssKiB(pid) - rssBefore} KiB`);
        }
        world.emu.clearFaults();
        const again = await d.get(pathOf(service, k.error));
        assert.equal(again.status, 200, `${what}: after the fault clears`);
        assert.equal(again.headers['x-pscache'], 'miss', `${what}: the failure left nothing in the cache`);
        assert.equal(valueIn(service, again), expectedValue(service, k.error), what);
        assert.equal((await d.get(pathOf(service, k.error))).headers['x-pscache'], 'hit', what);
        assert.equal((await d.get('/ping', { token: null })).status, 200, `${what}: still up`);
      }
    }
    t.diagnostic(`upstream attempts answered with a fault, by kind: ${JSON.stringify(injected)}`);
    await stopClean(other);
    await stopClean(hang);
  });

  test('batch and path routes: a fault fails the whole answer and caches none of its items', async () => {
    const d = await daemons.start();
    const cases: Array<[FaultKind, number]> = [
      ['reset-mid-body', 502],
      ['malformed', 502],
      ['endless', 502],
      ['throttle', 429],
    ];
    for (const op of ['GetParameters', 'GetParametersByPath', 'BatchGetSecretValue'] as const) {
      for (const [error, status] of cases) {
        const what = `${op} ${error}`;
        // Fresh items per case, so every case starts cold.
        const prefix = `/fb/${op}/${error}/`;
        const items = ['a', 'b', 'c'].map((x) => `${prefix}${x}`);
        for (const n of items) {
          const value = sensitive(`fault-value-${op}-${error}-${n.slice(-1)}`);
          if (op === 'BatchGetSecretValue') await world.createSecret(n.slice(1), value);
          else await world.putParameter(n, value);
        }
        const path =
          op === 'GetParameters'
            ? `/systemsmanager/parameters/batch?${items.map((n) => `name=${q(n)}`).join('&')}`
            : op === 'GetParametersByPath'
              ? `/systemsmanager/parameters/path?path=${q(prefix)}`
              : `/secretsmanager/batch?${items.map((n) => `secretId=${q(n.slice(1))}`).join('&')}`;
        world.emu.resetCalls();
        world.emu.setFaults([{ operation: op, error }]);
        assertFailure(await d.get(path), status, undefined, what);
        assert.ok(calls(op) <= 4, `${what}: ${calls(op)} attempts`);
        world.emu.clearFaults();
        world.emu.resetCalls();
        // Not one item landed in the cache: each single read goes upstream.
        const single = (n: string) => (op === 'BatchGetSecretValue' ? secret(n.slice(1)) : param(n));
        const first = await d.get(single(items[0]!));
        assert.equal(first.headers['x-pscache'], 'miss', `${what}: an item of the failed answer was cached`);
        assert.ok(first.body.includes(`fault-value-${op}-${error}-a`), what);
        const ok = await d.get(path);
        assert.equal(ok.status, 200, what);
        for (const x of ['a', 'b', 'c'])
          assert.ok(ok.body.includes(`fault-value-${op}-${error}-${x}`), `${what}: whole`);
        for (const n of items)
          assert.equal((await d.get(single(n))).headers['x-pscache'], 'hit', `${what}: ${n}`);
      }
    }
    await stopClean(d);
  });
});

describe('stale-if-error', () => {
  test('an expired entry is served stale, whole, in one attempt, through every transient fault kind', async () => {
    const d = await daemons.start({
      ...TIMEOUTS,
      SSM_PARAMETER_STORE_TTL: '1',
      SECRETS_MANAGER_TTL: '1',
      PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR: '60',
    });
    const fresh = new Map<string, string>();
    for (const service of ['ssm', 'secretsmanager'] as const) {
      for (const k of kindsFor(service))
        fresh.set(`${service} ${k.error}`, (await d.get(pathOf(service, k.error))).body);
    }
    await sleep(1200); // TTL 1 s + 10% jitter
    for (const service of ['ssm', 'secretsmanager'] as const) {
      for (const k of kindsFor(service)) {
        const what = `${service} ${k.error}`;
        world.emu.resetCalls();
        world.emu.setFaults([{ operation: OP[service], name: nameOf(service, k.error), error: k.error }]);
        const r = await d.get(pathOf(service, k.error));
        assert.equal(r.status, 200, `${what}: ${r.body.slice(0, 200)}`);
        assert.equal(r.headers['x-pscache'], 'stale', what);
        assert.equal(r.body, fresh.get(what), `${what}: the old body, byte for byte`);
        assert.ok(calls(OP[service]) <= 2, `${what}: ${calls(OP[service])} attempts before serving stale`);
        world.emu.clearFaults();
      }
    }
    // The failures replaced nothing: once upstream is back (and the 1 s stale hold is over), a fresh miss.
    await sleep(1100);
    for (const service of ['ssm', 'secretsmanager'] as const) {
      for (const k of kindsFor(service)) {
        const r = await d.get(pathOf(service, k.error));
        assert.equal(r.headers['x-pscache'], 'miss');
        assert.equal(valueIn(service, r), expectedValue(service, k.error));
      }
    }
    await stopClean(d);
  });

  test('while serving stale, a NotFound or AccessDenied evicts at once: later outages answer 502, not the old value', async () => {
    await world.putParameter('/stale/deleted', sensitive('stale-deleted-parameter-value'));
    await world.createSecret('stale/revoked', sensitive('stale-revoked-secret-value'));
    const d = await daemons.start({
      SSM_PARAMETER_STORE_TTL: '1',
      SECRETS_MANAGER_TTL: '1',
      PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR: '60',
    });
    assert.equal((await d.get(param('/stale/deleted'))).status, 200);
    assert.equal((await d.get(secret('stale/revoked'))).status, 200);
    await sleep(1200);
    world.emu.setFaults([{ error: '500' }]);
    assert.equal((await d.get(param('/stale/deleted'))).headers['x-pscache'], 'stale');
    assert.equal((await d.get(secret('stale/revoked'))).headers['x-pscache'], 'stale');
    world.emu.clearFaults();
    await world.ssm.send(new DeleteParameterCommand({ Name: '/stale/deleted' }));
    world.emu.deny(['stale/revoked']);
    await sleep(1100); // past the 1 s during which stale is served without asking
    const gone = await d.get(param('/stale/deleted'));
    assert.equal(gone.status, 404);
    assert.equal(json(gone)['__type'], 'ParameterNotFound');
    const denied = await d.get(secret('stale/revoked'));
    assert.equal(denied.status, 403);
    assert.equal(json(denied)['__type'], 'AccessDeniedException');
    world.emu.clearDeny();
    world.emu.setFaults([{ error: '500' }]);
    for (const p of [param('/stale/deleted'), secret('stale/revoked')]) {
      const r = await d.get(p);
      assert.equal(r.status, 502, `${p}: the entry was evicted`);
      assert.ok(!r.body.includes('stale-'), 'no old value');
    }
    await stopClean(d);
  });

  test('refreshNow that meets NotFound evicts the fresh entry too', async () => {
    await world.putParameter('/stale/refreshed', sensitive('stale-refreshed-parameter-value'));
    const d = await daemons.start();
    assert.equal((await d.get(param('/stale/refreshed'))).status, 200);
    assert.equal((await d.get(param('/stale/refreshed'))).headers['x-pscache'], 'hit');
    await world.ssm.send(new DeleteParameterCommand({ Name: '/stale/refreshed' }));
    assert.equal((await d.get(param('/stale/refreshed', '&refreshNow=true'))).status, 404);
    world.emu.setFaults([{ error: '500' }]);
    const r = await d.get(param('/stale/refreshed'));
    assert.equal(r.status, 502, 'no longer served from the cache');
    await stopClean(d);
  });
});

describe('storms', () => {
  // Which reads of a name share a call depends on when they arrive: test/storms.test.ts fixes that order on
  // the test's clock, and `npm run bench` measures a real-time storm against a rate limit. Here the names
  // throttled are chosen, and only what holds however the 60 reads interleave is asserted.
  test('a throttling storm: 429 with Retry-After or the right value, 3 attempts per throttled call, at most one call per read, nothing cached from it', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `/storm/p${String(i).padStart(2, '0')}`);
    await Promise.all(names.map((n, i) => world.putParameter(n, `storm-value-${i}`)));
    const throttled = new Set(names.filter((_, i) => i % 3 === 0));
    // Batching off: 30 distinct single calls.
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_BATCH_WINDOW_MILLIS: '0' });
    world.emu.resetCalls();
    world.emu.setFaults(
      [...throttled].map((name) => ({ operation: 'GetParameter', name, error: 'throttle' as const })),
    );
    // 60 concurrent requests, two per name.
    const replies = await Promise.all([...names, ...names].map((n) => d.get(param(n))));
    replies.forEach((r, i) => {
      const n = names[i % 30]!;
      if (throttled.has(n)) assertFailure(r, 429, /^ThrottlingException$/, n);
      else {
        assert.equal(r.status, 200, `${n}: ${r.body.slice(0, 200)}`);
        assert.equal((json(r)['Parameter'] as Record<string, unknown>)['Value'], `storm-value-${i % 30}`);
      }
    });
    // Each read joins its name's call, is a hit after it, or (after it failed) makes one of its own.
    const log = world.emu.callLog().filter((c) => c.operation === 'GetParameter');
    const failedAttempts = log.filter((c) => c.error !== undefined).length;
    const served = names.length - throttled.size;
    assert.equal(failedAttempts % 3, 0, `${failedAttempts} throttled attempts: 3 for every throttled call`);
    assert.ok(
      failedAttempts >= 3 * throttled.size && failedAttempts <= 3 * 2 * throttled.size,
      `${failedAttempts} throttled attempts for ${throttled.size} names read twice each`,
    );
    const okAttempts = log.length - failedAttempts;
    assert.ok(okAttempts >= served && okAttempts <= 2 * served, `${okAttempts} calls for ${served} names`);
    // The storm passes: what was throttled is fetched now (nothing was cached from it), the rest is a hit.
    world.emu.clearFaults();
    for (const [i, n] of names.entries()) {
      const r = await d.get(param(n));
      assert.equal(r.status, 200, n);
      assert.equal((json(r)['Parameter'] as Record<string, unknown>)['Value'], `storm-value-${i}`);
      assert.equal(r.headers['x-pscache'], throttled.has(n) ? 'miss' : 'hit', n);
    }
    await stopClean(d);
  });

  test('every call throttled: 40 distinct misses at once make at most 3 attempts per call', async () => {
    const d = await daemons.start();
    world.emu.setFaults([{ error: 'throttle' }]);
    const names = Array.from({ length: 40 }, (_, i) => `/storm/throttled/${i}`);
    const replies = await Promise.all(names.map((n) => d.get(param(n))));
    for (const r of replies) assertFailure(r, 429, /Throttling/, 'storm');
    const attempts = calls('GetParameter', 'GetParameters');
    assert.ok(attempts >= 3 && attempts <= 3 * names.length, `${attempts} attempts`);
    assert.equal((await d.get('/ping', { token: null })).status, 200);
    await stopClean(d);
  });
});

describe('endpoint and credentials', () => {
  test('DNS failure for the endpoint: 502 after one attempt, every time, and the daemon stays up', async () => {
    const d = await daemons.start({ AWS_ENDPOINT_URL: 'http://does-not-exist.invalid:1' });
    for (let i = 0; i < 3; i++) {
      const r = await d.get(param('/app/anything', `&version=${i + 1}`));
      assertFailure(r, 502, /^(ENOTFOUND|EAI_AGAIN|ConnectionError)$/, 'dns');
    }
    // A name that does not resolve is not retried (EAI_AGAIN, a resolver hiccup, is: up to 3 attempts).
    const attempts = upstreamAttempts(await d.get('/metrics'), 'GetParameter');
    assert.ok(attempts >= 3 && attempts <= 9, `${attempts} attempts for 3 reads`);
    if (!/EAI_AGAIN/.test(d.output())) assert.equal(attempts, 3, 'ENOTFOUND: one attempt a read');
    const s = await d.get(secret('any/secret'));
    assertFailure(s, 502, undefined, 'dns secret');
    assert.equal((await d.get('/ping', { token: null })).status, 200);
    await stopClean(d);
  });

  test('container credentials expiring every second: requests keep working across several expiries', async () => {
    const authToken = sensitive('container-auth-token-7d1e55-never-logged');
    await world.putParameter('/creds/value', sensitive('creds-parameter-value-1337'));
    world.emu.setContainerCredentials({ authToken, ttlSeconds: 1 });
    try {
      // SSM caching off: every request goes upstream, signed with whatever credentials are current.
      const d = await daemons.start(
        {},
        { env: { ...containerEnv(authToken), SSM_PARAMETER_STORE_TTL: '0' } },
      );
      world.emu.resetCalls();
      let requests = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < 3000) {
        const r = await d.get(param('/creds/value'));
        assert.equal(r.status, 200, `after ${Date.now() - t0} ms: ${r.status} ${r.body.slice(0, 200)}`);
        requests++;
        await sleep(100);
      }
      // Idle past an expiry, then straight back.
      await sleep(1300);
      const late = await d.get(param('/creds/value'));
      assert.equal(late.status, 200, late.body.slice(0, 200));
      const fetches = calls('ContainerCredentials');
      assert.ok(fetches >= 3, `${fetches} credential fetches over ${Date.now() - t0} ms of 1 s credentials`);
      assert.ok(
        fetches <= 12,
        `${fetches} credential fetches for ${requests + 1} requests: fetched ahead, not per request`,
      );
      // A request signed just before its credentials' last tenth can still reach the emulator after
      // they expired (on a slow machine): then, and only then, it is tried again with fresh ones.
      // test/aws.test.ts proves on a fake clock that new credentials are in use before the old expire.
      const retried = world.emu
        .callLog()
        .filter((c) => c.operation === 'GetParameter' && c.error !== undefined);
      assert.deepEqual(
        [...new Set(retried.map((c) => c.error))].filter((e) => e !== 'ExpiredTokenException'),
        [],
        'no other failure',
      );
      assert.equal(
        calls('GetParameter'),
        requests + 1 + retried.length,
        'each failed attempt was tried again once',
      );
      await stopClean(d);
    } finally {
      world.emu.setContainerCredentials(undefined);
    }
  });

  test('a wrong container authorization token: 403, bounded fetches, the token never shown', async () => {
    world.emu.setContainerCredentials({
      authToken: sensitive('the-right-container-token-0099'),
      ttlSeconds: 60,
    });
    const wrong = sensitive('a-wrong-container-token-4411');
    try {
      const d = await daemons.start({}, { env: containerEnv(wrong) });
      world.emu.resetCalls();
      for (let i = 0; i < 3; i++) {
        const r = await d.get(param('/creds/value', `&version=1&ttl=${i}`));
        assertFailure(r, 403, /^CredentialsProviderError$/, 'wrong container token');
        assert.ok(!r.body.includes(wrong));
      }
      assert.ok(
        calls('ContainerCredentials') <= 3,
        `${calls('ContainerCredentials')} fetches for 3 requests`,
      );
      assert.equal(calls('GetParameter'), 0, 'nothing unsigned went upstream');
      await stopClean(d);
    } finally {
      world.emu.setContainerCredentials(undefined);
    }
  });
});
