// The cache core's guarantees end to end: the bundled daemon as a real process against the emulator, each
// reproduction from the field (a hung upstream call, a refreshNow undone by an older fetch, stale-if-error
// skipped for a read that joined a fetch, an oversize path paging on every read, a batch id given as a
// partial ARN) as the user would meet it.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { Daemons, param, secret, sleep } from './helpers/daemon.ts';
import { startHoldingRelay } from './helpers/holding-relay.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);
const calls = (op: string) => world.emu.calls()[op] ?? 0;
const q = encodeURIComponent;

before(async () => {
  world = await startWorld();
});
worldHooks(() => world, daemons);

describe('nothing waits forever', () => {
  test('a hung upstream call (no timeout configured) does not block its key: answered once the attempt ceiling passes', async () => {
    await world.putParameter('/core/hung', sensitive('core-hung-value-0451'));
    const d = await daemons.start();
    world.emu.setFaults([{ operation: 'GetParameter', name: '/core/hung', error: 'hang', times: 1 }]);
    const t0 = Date.now();
    const first = d.get(param('/core/hung'), { timeoutMs: 40_000 });
    await sleep(500);
    const joined = d.get(param('/core/hung'), { timeoutMs: 40_000 });
    const [a, b] = await Promise.all([first, joined]);
    const took = Date.now() - t0;
    for (const r of [a, b]) {
      assert.equal(r.status, 200, r.body.slice(0, 200));
      assert.equal(JSON.parse(r.body).Parameter.Value, 'core-hung-value-0451');
    }
    assert.ok(
      took >= 9_500 && took < 20_000,
      `answered after ${took} ms: the hung attempt was abandoned at 10 s`,
    );
    assert.equal(calls('GetParameter'), 2, 'the hung attempt, then one retry');
    assert.equal((await d.get(param('/core/hung'))).headers['x-pscache'], 'hit');
    await daemons.stop(d);
  });
});

describe('newer wins', () => {
  test('refreshNow is never undone by an older fetch landing after it', async () => {
    await world.createSecret('core/rotating', sensitive('core-rotating-v1-old'));
    const relay = await startHoldingRelay(world.emu.url);
    try {
      const d = await daemons.start({ AWS_ENDPOINT_URL: relay.url });
      // A plain miss whose answer (the value before the rotation) is slow to come back.
      relay.holdNext('core/rotating');
      const slow = d.get(secret('core/rotating'));
      while (relay.held.length === 0) await sleep(5);
      await world.putSecretValue('core/rotating', sensitive('core-rotating-v2-new'));
      const refreshed = await d.get(secret('core/rotating', '&refreshNow=true'));
      assert.equal(JSON.parse(refreshed.body).SecretString, 'core-rotating-v2-new');
      relay.releaseOne();
      const old = await slow;
      assert.equal(
        JSON.parse(old.body).SecretString,
        'core-rotating-v1-old',
        'it still answers its own reader',
      );
      for (let i = 0; i < 3; i++) {
        const r = await d.get(secret('core/rotating'));
        assert.equal(
          JSON.parse(r.body).SecretString,
          'core-rotating-v2-new',
          'the older fetch was not stored',
        );
        assert.equal(r.headers['x-pscache'], 'hit');
      }
      await daemons.stop(d);
    } finally {
      await relay.close();
    }
  });
});

describe('stale where the caller joins', () => {
  test('reads of an expired entry that join a failing refresh-ahead get the stale value, never 502', async () => {
    await world.createSecret('core/stale', sensitive('core-stale-value-77'));
    const d = await daemons.start({
      SECRETS_MANAGER_TTL: '2',
      PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR: '60',
    });
    const t0 = Date.now();
    assert.equal((await d.get(secret('core/stale'))).status, 200);
    // From now on every upstream answer is a 500 that takes 1.5 s to come.
    world.emu.setFaults([{ operation: 'GetSecretValue', latencyMs: 1500, error: '500' }]);
    await sleep(Math.max(0, t0 + 1500 - Date.now()));
    const seen = new Map<string, number>();
    const pending: Array<Promise<void>> = [];
    while (Date.now() - t0 < 4800) {
      pending.push(
        d.get(secret('core/stale')).then((r) => {
          const k = `${r.status} ${r.headers['x-pscache']}`;
          seen.set(k, (seen.get(k) ?? 0) + 1);
          if (r.status === 200) assert.equal(JSON.parse(r.body).SecretString, 'core-stale-value-77');
        }),
      );
      await sleep(50);
    }
    await Promise.all(pending);
    const statuses = [...seen.keys()];
    assert.deepEqual(
      statuses.filter((s) => !s.startsWith('200')),
      [],
      `every read answered 200: ${JSON.stringify(Object.fromEntries(seen))}`,
    );
    assert.ok((seen.get('200 stale') ?? 0) > 0, 'the entry expired meanwhile and was served stale');
    await daemons.stop(d);
  });
});

describe('too large is an answer too', () => {
  test('an oversize path pages once, then answers 400 from the cache until the TTL', async () => {
    const names = Array.from({ length: 520 }, (_, i) => `/core/big/p${String(i).padStart(3, '0')}`);
    for (let i = 0; i < names.length; i += 40) {
      await Promise.all(names.slice(i, i + 40).map((n) => world.putParameter(n, 'x')));
    }
    const d = await daemons.start();
    world.emu.resetCalls();
    for (let i = 0; i < 3; i++) {
      const r = await d.get(`/systemsmanager/parameters/path?path=${q('/core/big/')}`);
      assert.equal(r.status, 400);
      assert.match(JSON.parse(r.body).message, /more than 500 parameters; narrow the path/);
    }
    // 10 a page: the listing is known to be too large after 51 pages, and nothing is paged again.
    assert.equal(calls('GetParametersByPath'), 51);
    await daemons.stop(d);
  });
});

describe('one way to match a batch answer to the id asked', () => {
  test('a secret asked for by partial ARN in a batch read is answered, as the batched single read is', async () => {
    await world.createSecret('core/partial', sensitive('core-partial-value-99'));
    const { ARN } = await world.sm.send(new DescribeSecretCommand({ SecretId: 'core/partial' }));
    // The full ARN without its random suffix (`-` and 6 characters).
    const partial = ARN!.slice(0, -7);
    const d = await daemons.start();
    const batch = await d.get(`/secretsmanager/batch?secretId=${q(partial)}&secretId=${q('core/none')}`);
    assert.equal(batch.status, 200);
    const body = JSON.parse(batch.body);
    assert.deepEqual(
      body.SecretValues.map((v: { SecretString: string }) => v.SecretString),
      ['core-partial-value-99'],
    );
    assert.deepEqual(
      body.Errors.map((e: { SecretId: string }) => e.SecretId),
      ['core/none'],
    );
    const [single, other] = await Promise.all([d.get(secret(partial)), d.get(secret('core/none'))]);
    assert.equal(JSON.parse(single.body).SecretString, 'core-partial-value-99');
    assert.equal(other.status, 404);
    await daemons.stop(d);
  });
});
