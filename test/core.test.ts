// The cache core's guarantees end to end: the bundled daemon as a real process against the emulator, each
// reproduction from the field as the user would meet it (a hung upstream call, a refreshNow undone by an
// older fetch or across decryption flags or by its own retry, stale-if-error skipped for a read that
// joined a fetch, stale answers slow while upstream hangs, a deleted parameter brought back by an older
// listing, a listing showing what was found gone, a slow listing never cached, shares holding memory, a
// hung credential source, an oversize path paging on every read, a batch id given as a partial ARN).
// Real processes, real time: each test asserts only what holds however the machine schedules them.
import assert from 'node:assert/strict';
import { Agent, createServer, type Server } from 'node:http';
import { before, describe, test } from 'node:test';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { DeleteParameterCommand } from '@aws-sdk/client-ssm';
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
      // The late answer disagrees with the stored one: pscache trusts neither and asks again, once.
      for (let i = 0; i < 3; i++) {
        const r = await d.get(secret('core/rotating'));
        assert.equal(
          JSON.parse(r.body).SecretString,
          'core-rotating-v2-new',
          'the older fetch was not stored',
        );
        if (i > 0) assert.equal(r.headers['x-pscache'], 'hit');
      }
      await daemons.stop(d);
    } finally {
      await relay.close();
    }
  });
});

describe('stale where the caller joins', () => {
  test('reads of an expired entry that join a failing refresh-ahead get the stale value, never 502', async (t) => {
    await world.createSecret('core/stale', sensitive('core-stale-value-77'));
    const d = await daemons.start({
      SECRETS_MANAGER_TTL: '2',
      PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR: '60',
    });
    const t0 = Date.now();
    assert.equal((await d.get(secret('core/stale'))).status, 200);
    const storedBy = Date.now();
    // From now on every upstream answer is a 500 that takes 1.5 s to come.
    world.emu.setFaults([{ operation: 'GetSecretValue', latencyMs: 1500, error: '500' }]);
    await sleep(Math.max(0, t0 + 1500 - Date.now()));
    const seen = new Map<string, number>();
    const pending: Array<Promise<void>> = [];
    let lastSent = 0;
    while (Date.now() - t0 < 4800) {
      lastSent = Date.now();
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
    // The entry expires at most 2.2 s (TTL 2 s, +10% jitter) after it was stored, before `storedBy`: a read
    // sent after that finds it expired, and upstream only fails. On a machine so slow that the first read
    // took most of the 4.8 s, no read may have come that late.
    if (lastSent > storedBy + 2200) {
      assert.ok((seen.get('200 stale') ?? 0) > 0, 'the entry expired meanwhile and was served stale');
    } else {
      t.diagnostic(`the last read was sent ${lastSent - storedBy} ms after the store: expiry not asserted`);
    }
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

/** The value and version a single parameter read answered. */
const parameterOf = (body: string) => JSON.parse(body).Parameter as { Value: string; Version: number };
const deleteParameter = (name: string) => world.ssm.send(new DeleteParameterCommand({ Name: name }));
const metric = async (d: { get: (p: string) => Promise<{ body: string }> }, name: string) => {
  const m = (await d.get('/metrics')).body.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : Number.NaN;
};

describe('newer wins, durably (issue reproductions)', () => {
  test('1: a refreshNow through one decryption flag is not undone by a held load of the other', async () => {
    await world.putParameter('/core/flags/p', 'flags-v1');
    const relay = await startHoldingRelay(world.emu.url);
    try {
      const d = await daemons.start({ AWS_ENDPOINT_URL: relay.url });
      relay.holdNext('/core/flags/p');
      const held = d.get(param('/core/flags/p'));
      while (relay.held.length === 0) await sleep(5);
      await world.putParameter('/core/flags/p', 'flags-v2');
      const ttl0 = await d.get(param('/core/flags/p', '&withDecryption=true&ttl=0'));
      assert.equal(parameterOf(ttl0.body).Value, 'flags-v2');
      const refreshed = await d.get(param('/core/flags/p', '&withDecryption=true&refreshNow=true'));
      assert.equal(parameterOf(refreshed.body).Value, 'flags-v2');
      relay.releaseOne();
      assert.equal(parameterOf((await held).body).Value, 'flags-v1', 'the held read gets what it read');
      for (const flag of ['&withDecryption=true', '&withDecryption=false', '', '&withDecryption=true']) {
        const r = await d.get(param('/core/flags/p', flag));
        assert.equal(parameterOf(r.body).Value, 'flags-v2', `${flag || 'no flag'}: never v1 again`);
      }
      await daemons.stop(d);
    } finally {
      await relay.close();
    }
  });

  test('6b: a refreshNow is not undone by its own late retry', async () => {
    await world.putParameter('/core/retry/u', 'retry-v1');
    const relay = await startHoldingRelay(world.emu.url);
    try {
      // An attempt is abandoned after 2 s: R1's first attempt, held, is retried and reads upstream again.
      const d = await daemons.start({
        AWS_ENDPOINT_URL: relay.url,
        SSM_PARAMETER_STORE_TIMEOUT_MILLIS: '2000',
      });
      relay.holdNext('/core/retry/u');
      const r1 = d.get(param('/core/retry/u', '&refreshNow=true'), { timeoutMs: 30_000 });
      while (relay.held.length === 0) await sleep(5);
      await sleep(1100);
      const r2 = await d.get(param('/core/retry/u', '&refreshNow=true'));
      await world.putParameter('/core/retry/u', 'retry-v2');
      const [a1, a2] = [parameterOf((await r1).body), parameterOf(r2.body)];
      // Whatever the order the machine ran them in: no read after both answered is older than either.
      const newest = Math.max(a1.Version, a2.Version);
      for (let i = 0; i < 3; i++) {
        const r = await d.get(param('/core/retry/u'));
        assert.ok(
          parameterOf(r.body).Version >= newest,
          `a plain read answered version ${parameterOf(r.body).Version} after refreshNow answered ${newest}`,
        );
      }
      relay.releaseOne();
      await daemons.stop(d);
    } finally {
      await relay.close();
    }
  });

  test('6d: refreshNow and ttl=0 through either flag never answer older than what the other answered', async () => {
    await world.putParameter('/core/share/z', 'share-v1');
    const d = await daemons.start();
    const answered: number[] = [];
    const read = async (extra: string) => {
      const r = await d.get(param('/core/share/z', extra));
      const v = parameterOf(r.body).Version;
      assert.ok(v >= Math.max(0, ...answered), `${extra}: version ${v} after ${Math.max(...answered)}`);
      answered.push(v);
    };
    await read('&refreshNow=true');
    await world.putParameter('/core/share/z', 'share-v2');
    await read('&withDecryption=true&ttl=0');
    await read('&withDecryption=true&refreshNow=true');
    await read('&refreshNow=true');
    await read('');
    await daemons.stop(d);
  });

  test('2: a deleted parameter stays gone after an older listing lands, also after 1000 other NotFounds', async () => {
    await world.putParameter('/core/del/x', sensitive('core-del-before-delete-31'));
    const relay = await startHoldingRelay(world.emu.url);
    try {
      const d = await daemons.start({ AWS_ENDPOINT_URL: relay.url });
      relay.holdNext('"Path":"/core/del/"');
      const listing = d.get(`/systemsmanager/parameters/path?path=${q('/core/del/')}`);
      while (relay.held.length === 0) await sleep(5);
      await deleteParameter('/core/del/x');
      assert.equal((await d.get(param('/core/del/x'))).status, 404);
      const agent = new Agent({ keepAlive: true, maxSockets: 50 });
      for (let i = 0; i < 1000; i += 100) {
        const batch = Array.from({ length: 100 }, (_, k) =>
          d.get(param(`/core/del/missing-${i + k}`), { agent }),
        );
        for (const r of await Promise.all(batch)) assert.equal(r.status, 404);
      }
      agent.destroy();
      relay.releaseOne();
      assert.equal((await listing).status, 200);
      const again = await d.get(param('/core/del/x'));
      assert.equal(
        again.status,
        404,
        `the value from before the deletion came back: ${again.headers['x-pscache']}`,
      );
      const path = await d.get(`/systemsmanager/parameters/path?path=${q('/core/del/')}`);
      assert.deepEqual(JSON.parse(path.body).Parameters, [], 'nor does the listing show it');
      await daemons.stop(d);
    } finally {
      await relay.close();
    }
  });

  test('6c: a listing stops showing a parameter pscache found gone, as a hit and as stale', async () => {
    await world.putParameter('/core/list/a', 'list-a');
    await world.putParameter('/core/list/b', 'list-b');
    const d = await daemons.start({
      SSM_PARAMETER_STORE_TTL: '1',
      PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR: '60',
    });
    const names = async () => {
      const r = await d.get(`/systemsmanager/parameters/path?path=${q('/core/list/')}`);
      assert.equal(r.status, 200, r.body);
      return {
        names: JSON.parse(r.body).Parameters.map((p: { Name: string }) => p.Name),
        source: r.headers['x-pscache'],
      };
    };
    assert.deepEqual((await names()).names, ['/core/list/a', '/core/list/b']);
    await deleteParameter('/core/list/a');
    assert.equal((await d.get(param('/core/list/a', '&refreshNow=true'))).status, 404);
    assert.deepEqual((await names()).names, ['/core/list/b'], 'the listing that showed it is not served');
    world.emu.setFaults([{ operation: 'GetParametersByPath', error: '500' }]);
    await sleep(1200);
    const stale = await names();
    assert.equal(stale.source, 'stale');
    assert.deepEqual(stale.names, ['/core/list/b'], 'nor served stale');
    await daemons.stop(d);
  });

  test('3: a listing slower than the join limit is joined by the reads that come while it pages, and cached', async () => {
    const names = Array.from({ length: 250 }, (_, i) => `/core/slow/p${String(i).padStart(3, '0')}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n) => world.putParameter(n, 'x')));
    }
    // An attempt may take 2 s, so a load silent for 3.5 s may be hung; the listing takes 25 pages of
    // 200 ms, 5 s or more, but is never silent that long.
    const d = await daemons.start({ SSM_PARAMETER_STORE_TIMEOUT_MILLIS: '2000' });
    world.emu.resetCalls();
    world.emu.setFaults([{ operation: 'GetParametersByPath', latencyMs: 200 }]);
    const path = `/systemsmanager/parameters/path?path=${q('/core/slow/')}`;
    const reads = [d.get(path, { timeoutMs: 60_000 })];
    const t0 = Date.now();
    while (Date.now() - t0 < 4500) {
      await sleep(1000);
      reads.push(d.get(path, { timeoutMs: 60_000 }));
    }
    for (const r of await Promise.all(reads)) {
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).Parameters.length, 250);
    }
    const pages = calls('GetParametersByPath');
    assert.ok(pages >= 25 && pages < 50, `one listing for ${reads.length} reads: ${pages} pages`);
    const after = await d.get(path);
    assert.equal(after.headers['x-pscache'], 'hit', 'and it was stored');
    assert.equal(calls('GetParametersByPath'), pages);
    await daemons.stop(d);
  });
});

describe('stale first (issue reproduction 4)', () => {
  test('while upstream hangs, reads of an expired entry answer the stale value long before an attempt could end', async () => {
    await world.putParameter('/core/hang/p', sensitive('core-hang-stale-value-58'));
    const d = await daemons.start({
      SSM_PARAMETER_STORE_TTL: '1',
      PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR: '60',
    });
    assert.equal((await d.get(param('/core/hang/p'))).status, 200);
    world.emu.setFaults([{ operation: 'GetParameter', error: 'hang' }]);
    await sleep(1100);
    const took: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      const r = await d.get(param('/core/hang/p'), { timeoutMs: 40_000 });
      took.push(Date.now() - t);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-pscache'], 'stale');
      assert.equal(parameterOf(r.body).Value, 'core-hang-stale-value-58');
      await sleep(100);
    }
    // The attempt ceiling is 10 s: a read that waited for the hung attempt would take that long.
    assert.ok(Math.max(...took) < 9000, `stale answers took ${took.join(', ')} ms`);
    world.emu.clearFaults();
    await daemons.stop(d);
  });
});

describe('bounded memory (issue reproduction 5)', () => {
  test('ttl=0 reads of large secrets hold no more than the cache budget beside it, and nothing a second later', async () => {
    const big = sensitive(`core-big-${'y'.repeat(60 * 1024)}`);
    await Promise.all(Array.from({ length: 40 }, (_, i) => world.createSecret(`core/big/${i}`, big)));
    const d = await daemons.start({
      PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE: '10',
      PARAMETERS_SECRETS_EXTENSION_MAX_CACHE_SIZE: '1',
    });
    for (let round = 0; round < 3; round++) {
      const rs = await Promise.all(
        Array.from({ length: 40 }, (_, i) => d.get(secret(`core/big/${i}`, '&ttl=0'))),
      );
      for (const r of rs) assert.equal(r.status, 200);
    }
    assert.ok((await metric(d, 'pscache_cache_share_bytes')) <= 1024 * 1024, 'at most MAX_CACHE_SIZE shared');
    assert.equal(await metric(d, 'pscache_cache_entries'), 0, 'ttl=0 keeps nothing');
    await sleep(1500);
    assert.equal(await metric(d, 'pscache_cache_share_bytes'), 0, 'a second later, nothing is held');
    assert.equal(await metric(d, 'pscache_cache_marks'), 0);
    assert.equal(await metric(d, 'pscache_loads_in_flight'), 0);
    await daemons.stop(d);
  });
});

describe('a hung credential source (issue reproduction 6)', () => {
  test('reads fail at the attempt deadline instead of waiting forever, and succeed once credentials come', async () => {
    await world.createSecret('core/creds', sensitive('core-creds-value-62'));
    let answering = false;
    const held: Array<() => void> = [];
    const server: Server = createServer((_req, res) => {
      const answer = () =>
        res.end(
          JSON.stringify({
            AccessKeyId: 'AKIAPSCACHETEST00001',
            SecretAccessKey: 'pscache/test/secret/access/key/never-logged',
            Expiration: new Date(Date.now() + 3_600_000).toISOString(),
          }),
        );
      if (answering) answer();
      else held.push(() => res.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const d = await daemons.start({
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${port}/creds`,
        SECRETS_MANAGER_TIMEOUT_MILLIS: '1000',
      });
      const reads = await Promise.all(
        Array.from({ length: 5 }, (_, i) => d.get(secret(`core/creds-${i}`), { timeoutMs: 40_000 })),
      );
      for (const r of reads) {
        assert.equal(r.status, 504, r.body);
        assert.match(JSON.parse(r.body).message, /credentials/);
      }
      assert.equal(await metric(d, 'pscache_loads_in_flight'), 0, 'no load slot is left behind');
      answering = true;
      for (const h of held.splice(0)) h();
      // The hung fetch is no longer joined past its deadline: a new one is made, and answers.
      let r = await d.get(secret('core/creds'), { timeoutMs: 40_000 });
      for (let i = 0; i < 20 && r.status !== 200; i++) {
        await sleep(500);
        r = await d.get(secret('core/creds'), { timeoutMs: 40_000 });
      }
      assert.equal(r.status, 200, r.body);
      await daemons.stop(d);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('labels and counts (issue reproduction 8)', () => {
  test('a refreshNow answered from the one-second share says hit and is counted a hit', async () => {
    await world.createSecret('core/label', sensitive('core-label-value-17'));
    const d = await daemons.start();
    const first = await d.get(secret('core/label', '&refreshNow=true'));
    assert.equal(first.headers['x-pscache'], 'miss');
    const hitsBefore = await metric(d, 'pscache_cache_hits_total');
    const missesBefore = await metric(d, 'pscache_cache_misses_total');
    const second = await d.get(secret('core/label', '&refreshNow=true'));
    const label = second.headers['x-pscache'];
    // Inside the second it is shared (a hit); on a machine slow enough to pass the second, a new load (a miss).
    assert.ok(label === 'hit' || label === 'miss', String(label));
    assert.equal(await metric(d, 'pscache_cache_hits_total'), hitsBefore + (label === 'hit' ? 1 : 0));
    assert.equal(await metric(d, 'pscache_cache_misses_total'), missesBefore + (label === 'miss' ? 1 : 0));
    await daemons.stop(d);
  });
});
