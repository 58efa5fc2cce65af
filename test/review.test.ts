// The cache core against an independent review's 19 breaks of its guarantees (docs/architecture.md, "What
// you can rely on"): each test is the reviewer's sequence, fixed, and asserts what the guarantee says. Same
// fake-clock style as test/cache.test.ts; the reference model in test/model.test.ts generates their kind.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { AwsJsonClient, type CallOptions } from '../src/aws/client.ts';
import { type AwsCredentials, type CredentialSource, RefreshingCredentials } from '../src/aws/credentials.ts';
import type { Upstream } from '../src/aws/index.ts';
import { AwsCallError } from '../src/aws/types.ts';
import { type Answer, ItemCache, REFRESH_SHARE_MS } from '../src/cache/index.ts';
import { Collections } from '../src/collections.ts';
import type { ItemRequest, Loaded, ParameterRequest } from '../src/items.ts';
import { createLoader, type LoadContext } from '../src/loader/index.ts';
import { createLogger, silentLogger } from '../src/log.ts';
import { Metrics } from '../src/metrics.ts';
import { PscacheServer } from '../src/server/index.ts';
import {
  listing,
  notFound,
  outcome,
  param,
  paramNotFound,
  plain,
  readNow,
  secret,
  setupCache as setup,
  start,
  TTL,
  throttled,
  WAIT,
} from './helpers/cache-harness.ts';
import { httpGet } from './helpers/daemon.ts';
import { body, FakeClock, ScriptedLoader, settle } from './helpers/fake-time.ts';

const text = (a: Answer | Promise<Answer>) =>
  Promise.resolve(a).then((x) => `${x.body.toString()} ${x.source}`);

describe('newer wins, durably', () => {
  test('1: a load of the other flag that started before a refreshNow answered cannot store its older value after it', async () => {
    const { loader, cache } = setup();
    // refreshNow of the String /p through withDecryption=false: its first attempt is throttled, it retries.
    const refreshed = start(() => cache.get(param('/p'), { refresh: true }));
    await settle();
    const r = loader.only();
    r.ctx?.onRetry?.(throttled());
    // Meanwhile a plain read through withDecryption=true (another slot) makes its own load and reads v1.
    const other = start(() => cache.get(param('/p', true)));
    await settle();
    const l = loader.open.find((x) => x !== r)!;
    // /p becomes v2; the refresh's retry reads v2 and answers.
    r.resolve(plain('v2'));
    assert.equal(await text(refreshed), 'v2 miss');
    // The other flag's answer (v1, read before the update) comes back after the refresh answered.
    l.resolve(plain('v1'));
    assert.equal(await text(other), 'v1 miss', 'it answers the read that started it (allowed)');
    // A read arriving after the refresh answered must not get the older v1.
    for (const d of [false, true]) {
      const got = await readNow(
        loader,
        () => cache.get(param('/p', d)),
        (x) => x.resolve(plain('v2')),
      );
      assert.match(got, /^v2 /, `withDecryption=${d}: the refresh answered v2, yet a later read got ${got}`);
    }
  });

  test('2: a listing that started before a refreshNow answered cannot store the older item value after it', async () => {
    const { loader, cache } = setup();
    const refreshed = start(() => cache.get(param('/a/x'), { refresh: true }));
    await settle();
    const r = loader.only();
    r.ctx?.onRetry?.(throttled());
    const p = { path: '/a', recursive: false, withDecryption: false };
    const list = start(() => cache.getPath(p));
    await settle();
    const pl = loader.open.find((x) => x !== r)!;
    r.resolve(plain('x-new'));
    assert.equal(await text(refreshed), 'x-new miss');
    pl.resolve(listing('listing shows x-old', [['/a/x', 'x-old']]));
    await list;
    const got = await readNow(
      loader,
      () => cache.get(param('/a/x')),
      (x) => x.resolve(plain('x-new')),
    );
    assert.match(got, /^x-new /, `after the refresh answered x-new, a plain read got ${got}`);
  });

  test('3: once a refreshNow finds a SecureString became a String, neither flag hits the SecureString entries', async () => {
    const { clock, loader, cache } = setup();
    // /t is a SecureString: both flags cached (ciphertext and plaintext).
    for (const [d, v] of [
      [false, 'ciphertext'],
      [true, 'old plaintext'],
    ] as const) {
      const a = start(() => cache.get(param('/t', d)));
      await settle();
      loader.only().resolve(body(v));
      await a;
    }
    // /t is now a String "now plain"; refreshNow through withDecryption=true says so.
    const b = start(() => cache.get(param('/t', true), { refresh: true }));
    await settle();
    loader.only().resolve(plain('now plain'));
    assert.equal(await text(b), 'now plain miss');
    await clock.advance(REFRESH_SHARE_MS);
    // "for a String, either flag": a later read through withDecryption=false must not get the old value.
    const got = await readNow(
      loader,
      () => cache.get(param('/t', false)),
      (x) => x.resolve(plain('now plain')),
    );
    assert.match(got, /^now plain /, `withDecryption=false got ${got} after the refresh answered the String`);
  });

  test('4: once a refreshNow finds a String became a SecureString, the other flag no longer hits the String value', async () => {
    const { clock, loader, cache } = setup();
    const a = start(() => cache.get(param('/u')));
    await settle();
    loader.only().resolve(plain('old string'));
    await a;
    // /u is now a SecureString; refreshNow through withDecryption=true reads its plaintext.
    const b = start(() => cache.get(param('/u', true), { refresh: true }));
    await settle();
    loader.only().resolve(body('new plaintext'));
    assert.equal(await text(b), 'new plaintext miss');
    await clock.advance(REFRESH_SHARE_MS);
    const got = await readNow(
      loader,
      () => cache.get(param('/u', false)),
      (x) => x.resolve(body('new ciphertext')),
    );
    assert.doesNotMatch(got, /^old string/, 'the value from before the refresh answered');
  });
});

describe('never stale after NotFound/AccessDenied', () => {
  test('5: a value the other flag read before a NotFound, landing after it, is neither stored nor served', async () => {
    const { loader, cache } = setup();
    // Two plain reads of the String /q, one per flag: two loads (two slots).
    const a = start(() => cache.get(param('/q', false)));
    const b = start(() => cache.get(param('/q', true)));
    await settle();
    const [la, lb] = loader.loads;
    // lb read v1 upstream; /q was then deleted; la read NotFound and answers first.
    la!.reject(paramNotFound());
    assert.equal(await outcome(a), 'ParameterNotFound');
    lb!.resolve(plain('v1'));
    assert.equal(await text(b), 'v1 miss', 'it answers its own reader (allowed)');
    for (const d of [false, true]) {
      const got = await readNow(
        loader,
        () => cache.get(param('/q', d)),
        (x) => x.reject(paramNotFound()),
      );
      assert.equal(got, 'ParameterNotFound', `withDecryption=${d}: after NotFound answered, got ${got}`);
    }
  });

  test('6: a listing that read the item before a NotFound and lands after it is not stored', async () => {
    const { loader, cache } = setup();
    const p = { path: '/g/', recursive: true, withDecryption: false };
    const a = start(() => cache.get(param('/g/x')));
    await settle();
    const la = loader.only();
    const list = start(() => cache.getPath(p));
    await settle();
    const pl = loader.open.find((x) => x !== la)!;
    la.reject(paramNotFound());
    assert.equal(await outcome(a), 'ParameterNotFound');
    pl.resolve(listing('listing shows x', [['/g/x', 'before delete']]));
    await list;
    const single = await readNow(
      loader,
      () => cache.get(param('/g/x')),
      (x) => x.reject(paramNotFound()),
    );
    assert.equal(single, 'ParameterNotFound', `a single read after the NotFound got ${single}`);
    const again = await readNow(
      loader,
      () => cache.getPath(p),
      (x) => x.resolve(listing('listing without x', [])),
    );
    assert.equal(again, 'listing without x miss', `the listing showing /g/x was served: ${again}`);
  });

  test('7: a NotFound of a secret by name drops its versionStage=AWSCURRENT entry too', async () => {
    const { loader, cache } = setup();
    const current = secret('s', { versionStage: 'AWSCURRENT' });
    const a = start(() => cache.get(current));
    await settle();
    // As the loader answers it: with the ids the secret is known by.
    loader.only().resolve({
      body: Buffer.from('s value'),
      ids: ['s', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf'],
    });
    await a;
    // The secret is deleted: a refreshNow of it by name answers NotFound.
    const gone = start(() => cache.get(secret('s'), { refresh: true }));
    await settle();
    loader.only().reject(notFound());
    assert.equal(await outcome(gone), 'ResourceNotFoundException');
    const got = await readNow(
      loader,
      () => cache.get(current),
      (x) => x.reject(notFound()),
    );
    assert.equal(got, 'ResourceNotFoundException', `the deleted secret, read as AWSCURRENT, answered ${got}`);
  });
  test('8: a parameter found gone by name is gone when read by its ARN too', async () => {
    const { loader, cache } = setup();
    const arn = param('arn:aws:ssm:us-east-1:123456789012:parameter/app/x');
    const a = start(() => cache.get(arn));
    await settle();
    loader.only().resolve({
      body: Buffer.from('old'),
      plain: true,
      ids: ['/app/x', 'arn:aws:ssm:us-east-1:123456789012:parameter/app/x'],
    });
    await a;
    const gone = start(() => cache.get(param('/app/x'), { refresh: true }));
    await settle();
    loader.only().reject(paramNotFound());
    assert.equal(await outcome(gone), 'ParameterNotFound');
    const got = await readNow(
      loader,
      () => cache.get(arn),
      (x) => x.reject(paramNotFound()),
    );
    assert.equal(got, 'ParameterNotFound', `the same parameter read by ARN answered ${got}`);
  });
});

describe('listings that show an item otherwise are not served', () => {
  test('9 (model seed 777): a path read after a refreshNow answered does not join an older listing load', async () => {
    const { loader, cache } = setup();
    const p = { path: '/', recursive: true, withDecryption: true };
    // A listing starts (it reads /p as v1), then /p becomes v2 and a refreshNow answers v2.
    const first = start(() => cache.getPath(p));
    await settle();
    const pl = loader.only();
    const refreshed = start(() => cache.get(param('/p'), { refresh: true }));
    await settle();
    loader.open.find((x) => x !== pl)!.resolve(plain('v2'));
    assert.equal(await text(refreshed), 'v2 miss');
    // A path read that arrives now must not be answered a listing showing v1.
    const second = start(() => cache.getPath(p));
    await settle();
    const joined = loader.open.length === 1;
    pl.resolve(listing('shows /p v1', [['/p', 'v1']], true));
    await first;
    if (!joined) loader.open[0]!.resolve(listing('shows /p v2', [['/p', 'v2']], true));
    const got = await outcome(second);
    assert.equal(got, 'shows /p v2 miss');
    assert.ok(!joined, `it joined the listing load that started before the refresh answered: ${got}`);
  });

  test('10: a path read after a NotFound answered does not join an older listing load that shows the item', async () => {
    const { loader, cache } = setup();
    const p = { path: '/d', recursive: false, withDecryption: false };
    const first = start(() => cache.getPath(p));
    await settle();
    const pl = loader.only();
    const gone = start(() => cache.get(param('/d/x')));
    await settle();
    loader.open.find((x) => x !== pl)!.reject(paramNotFound());
    assert.equal(await outcome(gone), 'ParameterNotFound');
    const second = start(() => cache.getPath(p));
    await settle();
    const joined = loader.open.length === 1;
    pl.resolve(listing('shows /d/x', [['/d/x', 'before delete']]));
    await first;
    if (!joined) loader.open[0]!.resolve(listing('empty', []));
    const got = await outcome(second);
    assert.equal(got, 'empty miss');
    assert.ok(!joined, `joined the older listing after the NotFound answered: ${got}`);
  });
});

describe('bounded memory beside the cache', () => {
  test('11: a share is purged when its second ends, also when an earlier-set share lasts longer', async () => {
    const { clock, loader, cache } = setup();
    // Refresh A starts at t0 and answers late; refresh B starts at t0+500 and answers first.
    const a = start(() => cache.get(secret('a'), { refresh: true }));
    await settle();
    const la = loader.only();
    await clock.advance(500);
    const b = start(() => cache.get(secret('b'), { refresh: true }));
    await settle();
    const lb = loader.open.find((x) => x !== la)!;
    await clock.advance(100);
    lb.resolve(body('B')); // share B: its second ends at t0+1500; the purge timer is set for then
    await b;
    await clock.advance(100);
    la.resolve(body('A')); // share A: its second ends at t0+1000
    await a;
    assert.equal(cache.overhead.shares, 2);
    await clock.advance(400); // t0+1100: A's second is over
    assert.equal(cache.overhead.shares, 1, "A's share outlives its second (purged only at B's end)");
  });

  test('12: a loader that throws at once fails its read with the fault, leaks no slot and holds nothing', async () => {
    class Throwing extends ScriptedLoader {
      throwNext = true;
      override one(r: ItemRequest, ctx?: LoadContext): Promise<Loaded> {
        if (this.throwNext) {
          this.throwNext = false;
          throw new TypeError('a bug in the loader');
        }
        return super.one(r, ctx);
      }
    }
    const loader = new Throwing();
    const { clock, cache } = setup({}, loader);
    const first = start(() => cache.get(secret('k')));
    assert.equal(
      await outcome(first),
      'TypeError: a bug in the loader',
      'the fault reaches the caller as itself',
    );
    // Nothing runs any more: the next read must make its own load.
    const next = start(() => cache.get(secret('k')));
    await settle();
    const started = loader.loads.length;
    if (started === 1) loader.only().resolve(body('v'));
    await settle();
    await clock.advance(WAIT);
    const got = await outcome(next);
    assert.equal(got, 'v miss', `the next read joined a load that never existed: ${got} after ${WAIT} ms`);
    assert.equal(cache.overhead.slots, 0, `slots left after every load settled: ${cache.overhead.slots}`);
  });
});

describe('marks, and it actually caches', () => {
  test('13: marks are dropped once no older load runs, also while newer loads overlap', async () => {
    const { loader, cache } = setup();
    // Loads overlap like a busy server's: each starts before the previous one ends, so some load always runs.
    let prev = start(() => cache.get(secret('k0')));
    await settle();
    let prevLoad = loader.only();
    for (let i = 1; i <= 20; i++) {
      const next = start(() => cache.get(secret(`k${i}`)));
      await settle();
      const nextLoad = loader.open.find((x) => x !== prevLoad)!;
      prevLoad.resolve(body(`v${i - 1}`));
      await prev;
      [prev, prevLoad] = [next, nextLoad];
    }
    // The one load running now (k20) is newer than every mark: they stop nothing. (Refreshes keep theirs
    // for the second their answers are shared: test/cache.test.ts.)
    assert.ok(
      cache.overhead.marks <= 1,
      `marks held while only a newer load runs: ${cache.overhead.marks} (grows with traffic up to max(1000, CACHE_SIZE))`,
    );
    prevLoad.resolve(body('v20'));
    await prev;
  });

  test('14: a listing is not evicted by its own items: with CACHE_SIZE items under the path it is still a hit', async () => {
    const { loader, cache } = setup({ maxItems: 3 });
    const p = { path: '/e', recursive: false, withDecryption: false };
    for (let round = 0; round < 2; round++) {
      const got = await readNow(
        loader,
        () => cache.getPath(p),
        (x) =>
          x.resolve(
            listing('three items', [
              ['/e/a', 'A'],
              ['/e/b', 'B'],
              ['/e/c', 'C'],
            ]),
          ),
      );
      if (round === 1) assert.equal(got, 'three items hit', 'the listing just stored answers the next read');
    }
  });
});

describe('credentials within the attempt', () => {
  test('15: how long a credential fetch has been in flight is measured on a monotonic clock', async () => {
    let wall = 1_700_000_000_000;
    let tick = 1000;
    const fetches: Array<(c: AwsCredentials) => void> = [];
    const source = new RefreshingCredentials(
      'test',
      () => new Promise<AwsCredentials>((resolve) => fetches.push(resolve)),
      silentLogger,
      () => wall,
      () => tick,
    );
    source.get().catch(() => {});
    await settle();
    assert.equal(fetches.length, 1);
    // 15 s pass, during which NTP steps the wall clock back an hour.
    tick += 15_000;
    wall += 15_000 - 3_600_000;
    source.get().catch(() => {});
    await settle();
    assert.equal(fetches.length, 2, 'a fetch in flight for 15 s must not be joined');
    // And a step forward of an hour, 1 s later, does not abandon the fetch in flight.
    tick += 1000;
    wall += 3_600_000;
    source.get().catch(() => {});
    await settle();
    assert.equal(fetches.length, 2, 'a fetch in flight for 1 s is joined, whatever the wall clock did');
  });

  test('16: a credential source that does not answer within the attempt fails the call at once (a timeout), not three times over', async () => {
    let gets = 0;
    const never: CredentialSource = {
      name: 'test',
      get: () => {
        gets++;
        return new Promise<AwsCredentials>(() => {});
      },
      invalidate: () => false,
    };
    const client = new AwsJsonClient({
      service: 'secretsmanager',
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      credentials: never,
      maxConnections: 1,
      timeoutMs: 20,
      maxAttempts: 3,
    });
    const retries: string[] = [];
    const e = await client
      .call('GetSecretValue', { SecretId: 'x' }, { onRetry: (x) => retries.push(x.code) })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    client.close();
    assert.ok(e instanceof AwsCallError && e.kind === 'timeout', String(e));
    // The provider retries on its own, and a fetch in flight is joined for 10 s: another attempt would
    // only wait on the same fetch. A reader holding a stale value gets it when the call fails.
    assert.equal(gets, 1, 'credentials are asked once per call');
    assert.deepEqual(retries, []);
  });
});

describe('counters and the superseded refresh-ahead', () => {
  test('17: a superseded refresh-ahead that shared a batch-window call is neither an error nor a background error when the batch fails', async () => {
    // The real loader (batch window 2 ms) over a scripted AWS client.
    const clock = new FakeClock();
    interface Call {
      operation: string;
      opts: CallOptions | undefined;
      resolve(v: unknown): void;
      reject(e: unknown): void;
    }
    const calls: Call[] = [];
    const aws = {
      call: (operation: string, _input: unknown, opts?: CallOptions) =>
        new Promise((resolve, reject) => calls.push({ operation, opts, resolve, reject })),
    } as unknown as AwsJsonClient;
    const upstream = {
      ssm: aws,
      secretsmanager: aws,
      region: 'us-east-1',
      client: () => aws,
    } as unknown as Upstream;
    const loader = createLoader(upstream, { batchWindowMs: 2, log: silentLogger, clock });
    const background: unknown[] = [];
    const cache = new ItemCache({
      enabled: true,
      maxItems: 100,
      maxBytes: 1 << 20,
      ttlMs: { ssm: TTL, secretsmanager: TTL },
      staleIfErrorMs: 60_000,
      loader,
      waitLimitMs: { ssm: WAIT, secretsmanager: WAIT },
      clock,
      jitter: () => 1,
      onBackgroundError: (e) => background.push(e),
    });
    const sv = (name: string, v: string) => ({ Name: name, ARN: `arn:x:${name}`, SecretString: v });
    // k is cached.
    const first = start(() => cache.get(secret('k')));
    await clock.advance(2);
    calls[0]!.resolve(sv('k', 'v1'));
    await first;
    // In the last tenth of its TTL a hit starts a refresh-ahead; a miss of another secret shares its window.
    await clock.advance(TTL * 0.95);
    assert.equal((await cache.get(secret('k'))).source, 'hit');
    const other = start(() => cache.get(secret('other')));
    await clock.advance(2);
    const batch = calls.find((c) => c.operation === 'BatchGetSecretValue')!;
    assert.ok(batch, 'the refresh-ahead and the miss share one batch call');
    // A refreshNow supersedes the refresh-ahead (nobody waits for it: aborted), and answers v2.
    const refreshed = start(() => cache.get(secret('k'), { refresh: true }));
    await clock.advance(2);
    assert.equal(
      batch.opts?.signal,
      undefined,
      'the batch call carries no abort signal: the abort of the refresh-ahead never reaches it',
    );
    calls
      .filter((c) => c.operation === 'GetSecretValue')
      .pop()!
      .resolve(sv('k', 'v2'));
    assert.equal((await refreshed).source, 'miss');
    // The shared batch call, which the abort never reached, is throttled.
    batch.reject(throttled());
    assert.equal(await outcome(other), 'ThrottlingException');
    await settle();
    assert.equal(cache.stats.errors, 1, 'only the miss of "other" failed');
    assert.deepEqual(background, [], 'the superseded refresh-ahead is not a background error');
  });

  test('18: a refreshNow answered from a NotFound share (or a cached PathTooLarge) is labelled and counted a hit', async () => {
    const TOKEN = 'break-test-token';
    const { loader, cache } = setup();
    const server = new PscacheServer({
      port: 0,
      hosts: ['127.0.0.1'],
      token: TOKEN,
      maxInboundConnections: 16,
      cache,
      collections: new Collections(cache),
      metrics: new Metrics(),
      log: createLogger('info', 'text', () => {}),
      version: 'test',
    });
    after(() => server.close(0));
    await server.listen();
    const port = Number(server.addresses[0]!.split(':').pop());
    const url = '/secretsmanager/get?secretId=gone&refreshNow=true';
    const first = httpGet(port, url, { token: TOKEN });
    for (let i = 0; i < 1000 && loader.loads.length === 0; i++) await new Promise((r) => setImmediate(r));
    loader.only().reject(notFound());
    const a = await first;
    const b = await httpGet(port, url, { token: TOKEN });
    assert.equal(loader.loads.length, 1, 'the second refreshNow shared the NotFound');
    const labels = [a.headers['x-pscache'], b.headers['x-pscache']];
    const counted = { hit: cache.stats.hits, miss: cache.stats.misses };
    const labelled = {
      hit: labels.filter((x) => x === 'hit').length,
      miss: labels.filter((x) => x === 'miss').length,
    };
    assert.deepEqual(
      counted,
      labelled,
      `labels ${JSON.stringify(labels)} (statuses ${a.status}, ${b.status})`,
    );
  });
});

describe('one upstream refresh a second per object', () => {
  test("19: a String's refresh through one flag is shared by a refresh through the other within the second", async () => {
    const { loader, cache } = setup();
    const a = start(() => cache.get(param('/two'), { refresh: true }));
    await settle();
    loader.only().resolve(plain('v'));
    assert.equal(await outcome(a), 'v miss');
    assert.equal(await outcome(start(() => cache.get(param('/two', true), { refresh: true }))), 'v hit');
    assert.equal(loader.loads.length, 1, 'one load for both flags once the answer says it is a String');
    // Before an answer says what the parameter is, each flag's first refresh loads: a SecureString's
    // flags answer differently.
    const b = start(() => cache.get(param('/sec'), { refresh: true }));
    const c = start(() => cache.get(param('/sec', true), { refresh: true }));
    await settle();
    assert.equal(loader.open.length, 2);
    for (const l of loader.open)
      l.resolve(body(`secure ${String((l.requests[0] as ParameterRequest).withDecryption)}`));
    assert.equal(await outcome(b), 'secure false miss');
    assert.equal(await outcome(c), 'secure true miss');
  });
});
