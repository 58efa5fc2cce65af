// Findings of an independent security probe that concern the cache, end to end against the emulator: a
// request's ttl never keeps a value past the operator's TTL (and so past a revocation), refreshNow and
// ttl=0 floods cannot multiply upstream calls, and batch items are stored only under the key asked for.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { Daemons, param, secret, sleep } from './helpers/daemon.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);
const calls = (op: string) => world.emu.calls()[op] ?? 0;
const q = encodeURIComponent;

before(async () => {
  world = await startWorld();
});
worldHooks(() => world, daemons);

describe("a request's ttl", () => {
  test('cannot keep a value past the service TTL: a revocation takes effect at the next refresh, for plain and batch reads', async () => {
    await world.createSecret('hard/revoked', sensitive('hard-revoked-value-31'));
    const d = await daemons.start({ SECRETS_MANAGER_TTL: '2' });
    const t0 = Date.now();
    const first = await d.get(secret('hard/revoked', '&ttl=86400'));
    assert.equal(first.status, 200);
    const second = await d.get(secret('hard/revoked', '&ttl=86400'));
    // Stored after t0 for at least 1.8 s (the service TTL, -10% jitter at most): a hit if answered before.
    if (Date.now() < t0 + 1800) assert.equal(second.headers['x-pscache'], 'hit');
    world.emu.deny(['hard/revoked']);
    await sleep(2500); // the service TTL (2 s, +10% jitter at most), not the 86400 asked for
    const plain = await d.get(secret('hard/revoked', '&ttl=86400'));
    assert.equal(plain.status, 403, plain.body.slice(0, 200));
    assert.ok(!plain.body.includes('hard-revoked-value-31'));
    const batch = await d.get(`/secretsmanager/batch?secretId=${q('hard/revoked')}`);
    assert.equal(batch.status, 200);
    const body = JSON.parse(batch.body);
    assert.deepEqual(body.SecretValues, []);
    assert.equal(body.Errors[0].ErrorCode, 'AccessDeniedException');
    await daemons.stop(d);
  });
});

describe('refreshNow and ttl=0 floods', () => {
  for (const extra of ['&refreshNow=true', '&ttl=0']) {
    test(`300 sequential ${extra.slice(1)} reads of one key make at most one upstream call a second`, async () => {
      await world.putParameter('/hard/flood', sensitive('hard-flood-value-55'));
      const d = await daemons.start();
      world.emu.resetCalls();
      const t0 = Date.now();
      for (let i = 0; i < 300; i++) {
        const r = await d.get(param('/hard/flood', extra));
        assert.equal(r.status, 200);
      }
      const seconds = (Date.now() - t0) / 1000;
      const made = calls('GetParameter');
      assert.ok(
        made >= 1 && made <= Math.ceil(seconds) + 1,
        `${made} upstream calls in ${seconds.toFixed(2)} s`,
      );
      await daemons.stop(d);
    });
  }
});

describe('batch items are stored only under the key asked for', () => {
  test('a parameter read by ARN in a batch answers later reads by that ARN, never reads by its bare name', async () => {
    await world.putParameter('/hard/by-arn', sensitive('hard-by-arn-value-17'));
    const { Parameter } = await world.ssm.send(new GetParameterCommand({ Name: '/hard/by-arn' }));
    const arn = Parameter!.ARN!;
    const d = await daemons.start();
    const batch = await d.get(`/systemsmanager/parameters/batch?name=${q(arn)}`);
    assert.equal(batch.status, 200);
    assert.equal(JSON.parse(batch.body).Parameters[0].Value, 'hard-by-arn-value-17');
    assert.equal((await d.get(param(arn))).headers['x-pscache'], 'hit', 'the key asked for');
    world.emu.resetCalls();
    assert.equal(
      (await d.get(param('/hard/by-arn'))).headers['x-pscache'],
      'miss',
      'not the name the answer gave',
    );
    assert.equal(calls('GetParameter') + calls('GetParameters'), 1);
    await daemons.stop(d);
  });
});

describe('names are normalised before the key is built', () => {
  test('spaces around a parameter name make no new key and no new upstream call, on every route', async () => {
    await world.putParameter('/hard/spaced', sensitive('hard-spaced-value-23'));
    const d = await daemons.start();
    world.emu.resetCalls();
    const first = await d.get(param('/hard/spaced'));
    for (let n = 1; n <= 20; n++) {
      const spaces = '%20'.repeat(n);
      const r = await d.get(
        `/systemsmanager/parameters/get?name=${spaces}${q('/hard/spaced')}${n % 2 ? spaces : ''}`,
      );
      assert.equal(r.status, 200);
      assert.equal(r.body, first.body);
      assert.equal(r.headers['x-pscache'], 'hit');
    }
    const batch = await d.get(
      `/systemsmanager/parameters/batch?name=${q('/hard/spaced')}%20%20&name=%20${q('/hard/spaced')}`,
    );
    assert.equal(JSON.parse(batch.body).Parameters.length, 1, 'one parameter, asked for twice');
    assert.equal(batch.headers['x-pscache'], 'hit');
    assert.equal(calls('GetParameter') + calls('GetParameters'), 1);
    await daemons.stop(d);
  });

  test('a secret id with whitespace around it is refused, on every route', async () => {
    const d = await daemons.start();
    for (const path of [
      `/secretsmanager/get?secretId=${q('hard/id ')}`,
      `/secretsmanager/get?secretId=${q(' hard/id')}`,
      `/secrets/get?name=${q('hard/id ')}`,
      `/secretsmanager/batch?secretId=${q('hard/id ')}`,
      `/v1/${q('hard/id ')}`,
      `/v1/${q('\u00a0hard/id')}`,
    ]) {
      const r = await d.get(path);
      assert.equal(r.status, 400, path);
      assert.match(JSON.parse(r.body).message, /whitespace/, path);
    }
    assert.equal(calls('GetSecretValue') + calls('BatchGetSecretValue'), 0);
    await daemons.stop(d);
  });
});
