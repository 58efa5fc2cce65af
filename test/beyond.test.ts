// Beyond the official extension: batch and path routes, upstream batching, refreshNow, per-request ttl,
// stale-if-error, refresh-ahead, prefetch and /metrics, end to end against the emulator.

import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { before, describe, test } from 'node:test';
import { BatchGetSecretValueCommand, DeleteSecretCommand } from '@aws-sdk/client-secrets-manager';
import { GetParametersByPathCommand, GetParametersCommand } from '@aws-sdk/client-ssm';
import { Daemons, param, printed, secret, sleep } from './helpers/daemon.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);

const q = encodeURIComponent;
const calls = (op: string) => world.emu.calls()[op] ?? 0;

/**
 * `n` distinct cold names, each asked for upstream exactly once, alone (`single`) or in a `batch` call of 2
 * to `limit` ids, however the scheduler grouped them: singles + 2 × batches <= n <= singles + limit × batches.
 */
function askedOnce(n: number, single: string, batch: string, limit: number): void {
  const [s, b] = [calls(single), calls(batch)];
  assert.ok(s + 2 * b <= n && n <= s + limit * b, `${s} ${single} and ${b} ${batch} calls for ${n} names`);
}
const json = (body: string) => JSON.parse(body);

/** The SDK's output shape -> the drop-in shape pscache prints (ISO dates, nulls for absent fields). */
function shapeParameter(p: Record<string, unknown>) {
  return {
    ARN: p['ARN'] ?? null,
    DataType: p['DataType'] ?? null,
    LastModifiedDate: p['LastModifiedDate'] instanceof Date ? p['LastModifiedDate'].toISOString() : null,
    Name: p['Name'],
    Selector: p['Selector'] ?? null,
    SourceResult: p['SourceResult'] ?? null,
    Type: p['Type'],
    Value: p['Value'] ?? null,
    Version: p['Version'] ?? null,
  };
}
function shapeSecret(s: Record<string, unknown>) {
  return {
    ARN: s['ARN'] ?? null,
    CreatedDate: s['CreatedDate'] instanceof Date ? s['CreatedDate'].toISOString() : null,
    Name: s['Name'] ?? null,
    SecretBinary: s['SecretBinary'] ? Buffer.from(s['SecretBinary'] as Uint8Array).toString('base64') : null,
    SecretString: s['SecretString'] ?? null,
    VersionId: s['VersionId'] ?? null,
    VersionStages: s['VersionStages'] ?? null,
  };
}

before(async () => {
  world = await startWorld();
  for (let i = 0; i < 12; i++) await world.putParameter(`/svc/p${String(i).padStart(2, '0')}`, `value-${i}`);
  await world.putParameter('/svc/deep/one', 'deep-1');
  await world.putParameter('/svc/deep/two', sensitive('deep-secure-two'), 'SecureString');
  for (let i = 0; i < 60; i++) await world.putParameter(`/many/m${String(i).padStart(2, '0')}`, `m-${i}`);
  await world.createSecret('batch/a', sensitive('batch-secret-a'));
  await world.createSecret('batch/b', sensitive('batch-secret-b'));
  await world.createSecret('batch/denied', sensitive('batch-secret-denied'));
  await world.createSecret('stale/secret', sensitive('stale-secret-v1'));
});

worldHooks(() => world, daemons);

describe('batch and path routes', () => {
  test('parameter batch: GetParameters shape field by field, sorted, InvalidParameters', async () => {
    const d = await daemons.start();
    const names = ['/svc/p03', '/svc/p01', '/nope/missing', '/svc/deep/two'];
    const r = await d.get(
      `/systemsmanager/parameters/batch?${names.map((n) => `name=${q(n)}`).join('&')}&withDecryption=true`,
    );
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-pscache'], 'miss');
    const body = json(r.body);
    const sdk = await world.ssm.send(new GetParametersCommand({ Names: names, WithDecryption: true }));
    assert.deepEqual(body.InvalidParameters, sdk.InvalidParameters);
    assert.deepEqual(
      body.Parameters,
      sdk.Parameters!.map((p) => shapeParameter(p as Record<string, unknown>)),
    );
    assert.deepEqual(
      body.Parameters.map((p: { Name: string }) => p.Name),
      ['/svc/deep/two', '/svc/p01', '/svc/p03'],
    );
    assert.deepEqual(body.ResultMetadata, {});
    // Every item is now cached for the single route too.
    world.emu.resetCalls();
    const single = await d.get(param('/svc/p01', '&withDecryption=true'));
    assert.equal(single.headers['x-pscache'], 'hit');
    assert.deepEqual(json(single.body).Parameter, body.Parameters[1]);
    const again = await d.get(
      `/systemsmanager/parameters/batch?name=${q('/svc/p01')}&name=${q('/svc/p03')}&withDecryption=true`,
    );
    assert.equal(again.headers['x-pscache'], 'hit');
    assert.equal(calls('GetParameter') + calls('GetParameters'), 0);
    await daemons.stop(d);
  });

  test('cached items are not fetched again by a batch read', async () => {
    const d = await daemons.start();
    assert.equal((await d.get(param('/svc/p05'))).status, 200);
    // Deny the cached name: were it sent upstream, GetParameters would fail as a whole.
    world.emu.deny(['/svc/p05']);
    const r = await d.get(`/systemsmanager/parameters/batch?name=${q('/svc/p05')}&name=${q('/svc/p06')}`);
    assert.equal(r.status, 200);
    assert.deepEqual(
      json(r.body).Parameters.map((p: { Value: string }) => p.Value),
      ['value-5', 'value-6'],
    );
    assert.equal(calls('GetParameters'), 1);
    await daemons.stop(d);
  });

  test('more than 10 names go upstream 10 at a time', async () => {
    const d = await daemons.start();
    const names = Array.from({ length: 12 }, (_, i) => `/svc/p${String(i).padStart(2, '0')}`);
    const r = await d.get(`/systemsmanager/parameters/batch?${names.map((n) => `name=${q(n)}`).join('&')}`);
    assert.equal(json(r.body).Parameters.length, 12);
    assert.equal(calls('GetParameters'), 2);
    await daemons.stop(d);
  });

  test('path: every page of GetParametersByPath, recursive or not, shape field by field', async () => {
    const d = await daemons.start();
    for (const recursive of [false, true]) {
      const r = await d.get(
        `/systemsmanager/parameters/path?path=${q('/svc/')}&recursive=${recursive}&withDecryption=true`,
      );
      assert.equal(r.status, 200);
      const sdkParams: Record<string, unknown>[] = [];
      let NextToken: string | undefined;
      do {
        const page = await world.ssm.send(
          new GetParametersByPathCommand({
            Path: '/svc/',
            Recursive: recursive,
            WithDecryption: true,
            NextToken,
          }),
        );
        sdkParams.push(...((page.Parameters ?? []) as Record<string, unknown>[]));
        NextToken = page.NextToken;
      } while (NextToken);
      const body = json(r.body);
      assert.deepEqual(body.Parameters, sdkParams.map(shapeParameter));
      assert.equal(body.Parameters.length, recursive ? 14 : 12);
      assert.equal(body.NextToken, null);
    }
    world.emu.resetCalls();
    const cached = await d.get(
      `/systemsmanager/parameters/path?path=${q('/svc/')}&recursive=true&withDecryption=true`,
    );
    assert.equal(cached.headers['x-pscache'], 'hit');
    const item = await d.get(param('/svc/deep/two', '&withDecryption=true'));
    assert.equal(item.headers['x-pscache'], 'hit');
    assert.equal(json(item.body).Parameter.Value, 'deep-secure-two');
    assert.equal(calls('GetParametersByPath') + calls('GetParameter'), 0);
    await daemons.stop(d);
  });

  test('path over the item limit: 400 telling the caller to narrow it', async () => {
    const d = await daemons.start();
    // 60 parameters are within the limit (500); 510 are not.
    const ok = await d.get(`/systemsmanager/parameters/path?path=${q('/many/')}`);
    assert.equal(json(ok.body).Parameters.length, 60);
    await Promise.all(
      Array.from({ length: 450 }, (_, i) => world.putParameter(`/many/x${String(i).padStart(3, '0')}`, 'x')),
    );
    const r = await d.get(`/systemsmanager/parameters/path?path=${q('/many/')}&recursive=true`);
    assert.equal(r.status, 400);
    assert.match(json(r.body).message, /more than 500 parameters; narrow the path/);
    await daemons.stop(d);
  });

  test('secret batch: BatchGetSecretValue shape field by field, with Errors', async () => {
    world.emu.deny(['batch/denied']);
    const d = await daemons.start();
    const ids = ['batch/a', 'batch/missing', 'batch/denied', 'batch/b'];
    const r = await d.get(`/secretsmanager/batch?${ids.map((i) => `secretId=${q(i)}`).join('&')}`);
    assert.equal(r.status, 200);
    const body = json(r.body);
    world.emu.resetCalls();
    const sdk = await world.sm.send(new BatchGetSecretValueCommand({ SecretIdList: ids }));
    assert.deepEqual(
      body.SecretValues,
      sdk.SecretValues!.map((s) => shapeSecret(s as Record<string, unknown>)),
    );
    assert.deepEqual(
      body.Errors,
      sdk.Errors!.map((e) => ({ ErrorCode: e.ErrorCode, Message: e.Message, SecretId: e.SecretId })),
    );
    assert.deepEqual(body.Errors.map((e: { ErrorCode: string }) => e.ErrorCode).sort(), [
      'AccessDeniedException',
      'ResourceNotFoundException',
    ]);
    const single = await d.get(secret('batch/b'));
    assert.equal(single.headers['x-pscache'], 'hit');
    assert.equal(calls('GetSecretValue'), 0);
    await daemons.stop(d);
  });

  test('batch and path queries are validated', async () => {
    const d = await daemons.start();
    for (const path of [
      '/systemsmanager/parameters/batch',
      '/systemsmanager/parameters/batch?name=',
      `/systemsmanager/parameters/batch?${Array.from({ length: 101 }, (_, i) => `name=n${i}`).join('&')}`,
      '/systemsmanager/parameters/path?path=no-slash',
      '/systemsmanager/parameters/path?path=/a&recursive=sometimes',
      '/secretsmanager/batch?secretId=a&other=1',
    ]) {
      const r = await d.get(path);
      assert.equal(r.status, 400, path);
      assert.equal(json(r.body).__type, 'BadRequest');
    }
    await daemons.stop(d);
  });
});

// Whether concurrent misses share a call depends on how the scheduler spreads them over the batch window:
// test/batching.test.ts proves the grouping on the test's clock. Here, end to end, only what holds however
// the reads arrive: each answer is the one the read gets alone, and each name is asked for once.
describe('upstream batching', () => {
  test('50 concurrent single misses: each answer byte for byte the unbatched one, each name asked for once, at most 10 a call', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `/many/m${String(i).padStart(2, '0')}`);
    const unbatched = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_BATCH_WINDOW_MILLIS: '0' });
    const alone = await Promise.all(names.map((n) => unbatched.get(param(n))));
    assert.equal(calls('GetParameters'), 0);
    assert.equal(calls('GetParameter'), 50);
    await daemons.stop(unbatched);
    world.emu.resetCalls();
    const d = await daemons.start();
    // 50 clients already connected (as 50 concurrent invocations would be), then all ask at once.
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    await Promise.all(names.map(() => d.get('/ping', { token: null, agent })));
    const together = await Promise.all(names.map((n) => d.get(param(n), { agent })));
    agent.destroy();
    askedOnce(names.length, 'GetParameter', 'GetParameters', 10);
    together.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.body, alone[i]!.body, names[i]);
    });
    await daemons.stop(d);
  });

  test('one missing and one denied item: each request gets the status it would get alone', async () => {
    world.emu.deny(['batch/denied', '/svc/p09']);
    const d = await daemons.start();
    const [a, missing, denied] = await Promise.all([
      d.get(secret('batch/a')),
      d.get(secret('batch/missing')),
      d.get(secret('batch/denied')),
    ]);
    assert.equal(a.status, 200);
    assert.equal(json(a.body).SecretString, 'batch-secret-a');
    assert.equal(missing.status, 404);
    assert.equal(json(missing.body).__type, 'ResourceNotFoundException');
    assert.equal(denied.status, 403);
    assert.equal(json(denied.body).__type, 'AccessDeniedException');
    // Batched or not, the Errors of a BatchGetSecretValue answer each id: none is asked for again.
    askedOnce(3, 'GetSecretValue', 'BatchGetSecretValue', 20);
    // SSM: IAM fails GetParameters as a whole for a denied name, so those fall back to single calls.
    const [p, gone, no] = await Promise.all([
      d.get(param('/svc/p08')),
      d.get(param('/svc/nothing-here')),
      d.get(param('/svc/p09')),
    ]);
    assert.equal(p.status, 200);
    assert.equal(gone.status, 404);
    assert.equal(json(gone.body).__type, 'ParameterNotFound');
    assert.equal(no.status, 403);
    // However the scheduler grouped them, each name was asked for once: alone, after a GetParameters refused
    // for holding the denied name, or in a GetParameters that answered it (only /svc/p08 with the missing
    // name can share one that succeeds: two names answered without GetParameter).
    const batches = world.emu.callLog().filter((c) => c.operation === 'GetParameters');
    assert.ok(batches.length <= 1, `${batches.length} GetParameters calls`);
    const answeredInBatch = batches.filter((c) => c.error === undefined).length * 2;
    assert.equal(calls('GetParameter') + answeredInBatch, 3);
    await daemons.stop(d);
  });

  test('batch permission denied: every read answered by a single call, the refused batch never tried again', async () => {
    world.emu.denyOperations(['GetParameters']);
    const d = await daemons.start();
    const first = await Promise.all(['/svc/p00', '/svc/p01', '/svc/p02'].map((n) => d.get(param(n))));
    assert.deepEqual(
      first.map((r) => [r.status, json(r.body).Parameter.Value]),
      [0, 1, 2].map((i) => [200, `value-${i}`]),
    );
    const second = await Promise.all(['/svc/p03', '/svc/p04'].map((n) => d.get(param(n))));
    assert.deepEqual(
      second.map((r) => [r.status, json(r.body).Parameter.Value]),
      [3, 4].map((i) => [200, `value-${i}`]),
    );
    // Each name read alone exactly once, whether it first shared a refused batch or not; and once one
    // batch was refused none was tried again (three reads can form one batch; the next two come after).
    assert.equal(calls('GetParameter'), 5);
    assert.ok(calls('GetParameters') <= 1, `${calls('GetParameters')} GetParameters calls`);
    const { output } = await daemons.stop(d);
    assert.equal(
      /batch call failed; using single calls/.test(output),
      calls('GetParameters') === 1,
      'the refusal is logged when a batch was refused',
    );
  });

  test('selectors never go into a batch', async () => {
    const d = await daemons.start();
    await Promise.all([d.get(param('/svc/p00', '&version=1')), d.get(param('/svc/p01', '&version=1'))]);
    assert.equal(calls('GetParameters'), 0);
    assert.equal(calls('GetParameter'), 2);
    await daemons.stop(d);
  });
});

// The daemon runs on the machine's clock, so these tests wait real time; the guarantees themselves (one load
// a second, the stale window, refresh-ahead) are proven on a fake clock in test/cache.test.ts and
// test/batching.test.ts. Here a claim that needs the reads to come close together is asserted only when
// the test saw them come close together; what holds however slow the machine is, is asserted always.
describe('refresh, ttl, stale-if-error, refresh-ahead', () => {
  test('refreshNow picks up a changed value; concurrent refreshNow share one load a second', async () => {
    await world.putParameter('/r/value', 'before');
    const d = await daemons.start();
    assert.equal(json((await d.get(param('/r/value'))).body).Parameter.Value, 'before');
    await world.putParameter('/r/value', 'after');
    assert.equal(json((await d.get(param('/r/value'))).body).Parameter.Value, 'before');
    world.emu.resetCalls();
    world.emu.setFaults([{ operation: 'GetParameter', latencyMs: 100 }]);
    const t0 = Date.now();
    const refreshed = await Promise.all(
      Array.from({ length: 10 }, () => d.get(param('/r/value', '&refreshNow=true'))),
    );
    const span = Date.now() - t0;
    assert.ok(refreshed.every((r) => json(r.body).Parameter.Value === 'after'));
    // Loads of one key start at least a second apart, and all of them started within `span`.
    const loads = calls('GetParameter');
    assert.ok(loads >= 1 && loads <= 1 + Math.floor(span / 1000), `${loads} loads in ${span} ms`);
    const after = await d.get(param('/r/value'));
    assert.equal(after.headers['x-pscache'], 'hit');
    assert.equal(json(after.body).Parameter.Value, 'after');
    await daemons.stop(d);
  });

  test('per-request ttl is honoured; ttl=0 goes upstream, one load a second per key, and stores nothing', async (t) => {
    const d = await daemons.start();
    const t0 = Date.now();
    await d.get(secret('batch/a', '&ttl=1'));
    const second = await d.get(secret('batch/a', '&ttl=1'));
    // Stored after t0 for at least 0.9 s (the TTL jitter): a hit if answered before then.
    if (Date.now() < t0 + 900) assert.equal(second.headers['x-pscache'], 'hit');
    else t.diagnostic('the second ttl=1 read came too late to be sure of a hit: not asserted');
    await sleep(1250);
    assert.equal(
      (await d.get(secret('batch/a'))).headers['x-pscache'],
      'miss',
      'the entry lived 1 s, not 300',
    );
    world.emu.resetCalls();
    const t1 = Date.now();
    const sources = [(await d.get(secret('batch/b', '&ttl=0'))).headers['x-pscache']];
    for (let i = 0; i < 3; i++) {
      const r = await d.get(secret('batch/b', '&ttl=0'));
      // A ttl=0 read answered within a second of t1 (before which the first load started) shares that load.
      if (Date.now() < t1 + 1000) assert.equal(r.headers['x-pscache'], 'hit', `ttl=0 read ${i + 2}`);
      sources.push(r.headers['x-pscache']);
    }
    assert.equal(sources[0], 'miss');
    const span = Date.now() - t1;
    const misses = sources.filter((x) => x === 'miss').length;
    assert.equal(calls('GetSecretValue'), misses, 'a hit made no call, each miss one');
    assert.ok(misses <= 1 + Math.floor(span / 1000), `${misses} loads in ${span} ms`);
    // ... and nothing was stored: a plain read goes upstream.
    assert.equal((await d.get(secret('batch/b'))).headers['x-pscache'], 'miss');
    await sleep(1100);
    assert.equal((await d.get(secret('batch/b', '&ttl=0'))).headers['x-pscache'], 'miss');
    assert.equal(calls('GetSecretValue'), misses + 2);
    await daemons.stop(d);
  });

  test('stale served during an outage, in one attempt, and not after the stale limit', async (t) => {
    const d = await daemons.start({
      SECRETS_MANAGER_TTL: '1',
      PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR: '2',
    });
    const sent = Date.now();
    const fresh = await d.get(secret('stale/secret'));
    const storedBy = Date.now();
    await sleep(1200); // past the TTL (1 s, +10% jitter at most)
    world.emu.setFaults([{ operation: 'GetSecretValue', error: '500' }]);
    world.emu.resetCalls();
    const outage = Date.now();
    const stale = await d.get(secret('stale/secret'));
    // The entry was stored after `sent` and is served stale until at least 0.9 s + 2 s after that.
    if (Date.now() < sent + 2900) {
      assert.equal(stale.status, 200);
      assert.equal(stale.headers['x-pscache'], 'stale');
      assert.equal(stale.body, fresh.body);
      assert.equal(
        calls('GetSecretValue'),
        1,
        'one attempt, then the stale value: the caller does not wait out retries',
      );
      // After a failed load the stale value is served without asking upstream for a second; a read after
      // that tries once more, and is still served stale while the window lasts.
      for (let i = 0; i < 5 && Date.now() < sent + 2900; i++) {
        const r = await d.get(secret('stale/secret'));
        if (Date.now() < sent + 2900) assert.equal(r.headers['x-pscache'], 'stale');
      }
      const span = Date.now() - outage;
      assert.ok(
        calls('GetSecretValue') <= 1 + Math.floor(span / 1000),
        `${calls('GetSecretValue')} attempts`,
      );
    } else {
      t.diagnostic('the outage read came too late to be sure of the stale window: not asserted');
    }
    await sleep(Math.max(0, storedBy + 1100 + 2000 + 200 - Date.now()));
    const late = await d.get(secret('stale/secret'));
    assert.equal(late.status, 502, 'past expiry + STALE_IF_ERROR the error is answered');
    world.emu.clearFaults();
    const back = await d.get(secret('stale/secret'));
    assert.equal(back.status, 200);
    assert.equal(back.headers['x-pscache'], 'miss');
    await daemons.stop(d);
  });

  test('stale is never served after access is denied or the secret is deleted', async () => {
    await world.createSecret('stale/doomed', sensitive('doomed-secret-value'));
    const d = await daemons.start({ SSM_PARAMETER_STORE_TTL: '1', SECRETS_MANAGER_TTL: '1' });
    assert.equal((await d.get(param('/svc/p10'))).status, 200);
    assert.equal((await d.get(secret('stale/doomed'))).status, 200);
    await sleep(1200);
    world.emu.deny(['/svc/p10']);
    await world.sm.send(
      new DeleteSecretCommand({ SecretId: 'stale/doomed', ForceDeleteWithoutRecovery: true }),
    );
    assert.equal((await d.get(param('/svc/p10'))).status, 403);
    assert.equal((await d.get(secret('stale/doomed'))).status, 404);
    // The entries are gone: an outage now gives errors, not the old values.
    world.emu.clearDeny();
    world.emu.setFaults([{ error: '500' }]);
    assert.equal((await d.get(param('/svc/p10'))).status, 502);
    assert.equal((await d.get(secret('stale/doomed'))).status, 502);
    await daemons.stop(d);
  });

  test('refresh-ahead: a steadily read key is refreshed in the background; reads close together never wait', async (t) => {
    const d = await daemons.start({ SSM_PARAMETER_STORE_TTL: '1' });
    const first = await d.get(param('/svc/p11'));
    assert.equal(first.headers['x-pscache'], 'miss');
    const firstAt = Date.now();
    const reads: { source: string; gap: number; sent: number }[] = [];
    let last = firstAt;
    while (Date.now() < firstAt + 3000) {
      await sleep(20);
      const sent = Date.now();
      const r = await d.get(param('/svc/p11'));
      assert.equal(r.status, 200);
      assert.equal(json(r.body).Parameter.Value, 'value-11');
      const now = Date.now();
      reads.push({ source: String(r.headers['x-pscache']), gap: now - last, sent });
      last = now;
    }
    // The entry expires 0.9-1.1 s after it is stored and is refreshed by any read in its last tenth: with a
    // read answered every 50 ms at most, one always falls in that window, and every read is a hit.
    const widest = Math.max(...reads.map((r) => r.gap));
    if (widest < 50) assert.deepEqual([...new Set(reads.map((r) => r.source))], ['hit']);
    else t.diagnostic(`reads up to ${widest} ms apart: not asserting that every one was a hit`);
    // However far apart: a read sent past the first expiry (1.1 s at most after the store, before firstAt)
    // found the key fetched again (ahead, or on its miss). Sent, not answered: a read answered after it
    // may have reached the daemon before, as a plain hit.
    if (reads.some((r) => r.sent > firstAt + 1100))
      assert.ok(calls('GetParameter') + calls('GetParameters') >= 2, 'fetched again');
    await daemons.stop(d);
  });
});

describe('prefetch and metrics', () => {
  test('prefetch fills the cache before the first request and coalesces with it', async () => {
    world.emu.setFaults([{ latencyMs: 300 }]);
    const d = await daemons.start({
      PARAMETERS_SECRETS_EXTENSION_PREFETCH: 'ssm:/svc/p07, ssm:/svc/deep/two, secretsmanager:batch/b',
    });
    // Arrives while the prefetch is in flight (or after it): joins it, never calls upstream again.
    const early = await d.get(secret('batch/b'));
    assert.equal(early.status, 200);
    await printed(d, /prefetch done items=3/);
    world.emu.clearFaults();
    const counts = world.emu.calls();
    assert.equal((counts['GetSecretValue'] ?? 0) + (counts['BatchGetSecretValue'] ?? 0), 1);
    assert.equal((counts['GetParameters'] ?? 0) + (counts['GetParameter'] ?? 0), 1, 'two names, one batch');
    world.emu.resetCalls();
    for (const path of [
      param('/svc/p07'),
      param('/svc/p07', '&withDecryption=true'),
      param('/svc/deep/two', '&withDecryption=true'),
      secret('batch/b'),
    ]) {
      assert.equal((await d.get(path)).headers['x-pscache'], 'hit', path);
    }
    assert.equal(
      Object.values(world.emu.calls()).reduce((a, b) => a + b, 0),
      0,
    );
    const { output } = await daemons.stop(d);
    assert.match(output, /prefetch done items=3/);
  });

  test('a prefetch failure is logged, not fatal', async () => {
    world.emu.deny(['/svc/p06']);
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_PREFETCH: 'ssm:/svc/p06,ssm:/no/such' });
    await printed(d, /WARN prefetch incomplete fetched=0 failed=2/);
    assert.equal((await d.get('/ping', { token: null })).status, 200);
    await daemons.stop(d);
  });

  test('metrics: token required; counters match the emulator after a scripted run', async () => {
    const d = await daemons.start();
    assert.equal((await d.get('/metrics', { token: null })).status, 401);
    await d.get(param('/svc/p00')); // miss
    await d.get(param('/svc/p00')); // hit
    await d.get(param('/svc/p00')); // hit
    await d.get(secret('batch/a')); // miss
    await d.get(param('/does/not/exist')); // miss, 404
    world.emu.setFaults([{ operation: 'GetSecretValue', error: 'throttle', times: 1 }]);
    await d.get(secret('batch/b')); // miss, one throttled attempt then ok
    const r = await d.get('/metrics');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const m = new Map<string, number>();
    for (const line of r.body.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      m.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    const sumOf = (prefix: string) =>
      [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);
    const emu = world.emu.calls();
    assert.equal(sumOf('pscache_upstream_calls_total{operation="GetParameter"'), emu['GetParameter'] ?? 0);
    assert.equal(
      sumOf('pscache_upstream_calls_total{operation="GetSecretValue"'),
      emu['GetSecretValue'] ?? 0,
    );
    assert.equal(m.get('pscache_upstream_calls_total{operation="GetSecretValue",outcome="throttled"}'), 1);
    assert.equal(m.get('pscache_cache_hits_total'), 2);
    assert.equal(m.get('pscache_cache_misses_total'), 4);
    assert.equal(m.get('pscache_stale_served_total'), 0);
    assert.equal(m.get('pscache_cache_entries'), 3);
    assert.ok((m.get('pscache_cache_bytes') ?? 0) > 0);
    assert.equal(m.get('pscache_requests_total{route="ssm",status="200"}'), 3);
    assert.equal(m.get('pscache_requests_total{route="ssm",status="404"}'), 1);
    assert.equal(m.get('pscache_requests_total{route="secretsmanager",status="200"}'), 2);
    // Every answered request is in the histogram: the 7 above plus the start-up /ping polls.
    const answered = sumOf('pscache_requests_total{');
    assert.equal(answered, 7 + (m.get('pscache_requests_total{route="ping",status="200"}') ?? 0));
    assert.equal(m.get('pscache_request_duration_seconds_count'), answered);
    assert.equal(m.get('pscache_request_duration_seconds_bucket{le="+Inf"}'), answered);
    assert.ok(!r.body.includes('batch-secret'), 'no values in metrics');
    assert.ok(!r.body.includes('/svc/p00'), 'no names in metrics');
    await daemons.stop(d);
  });
});
