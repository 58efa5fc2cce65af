// The cache core's states and transitions, on a fake clock, against a loader whose every answer the test
// releases in the order it chooses. Each reproduction from the field is here as a unit test; the same
// behaviours are proven end to end against the emulator in core.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AwsCallError } from '../src/aws/types.ts';
import {
  type Answer,
  type CacheOptions,
  ItemCache,
  JOIN_LIMIT_MS,
  REFRESH_SHARE_MS,
} from '../src/cache/index.ts';
import { systemClock } from '../src/clock.ts';
import type { ParameterRequest } from '../src/items.ts';
import { type Outcome, PathTooLargeError } from '../src/loader/index.ts';
import {
  listing,
  notFound,
  outcome,
  param,
  paramNotFound,
  plain,
  secret,
  server500,
  setupCache as setup,
  start,
  TTL,
  WAIT,
} from './helpers/cache-harness.ts';
import { body, ScriptedLoader, settle } from './helpers/fake-time.ts';

type Peeked<T> = { state: 'pending' } | { state: 'ok'; value: T } | { state: 'err'; error: unknown };

/** A promise's state right now, without waiting for it. */
async function peek<T>(p: Promise<T>): Promise<Peeked<T>> {
  let out: Peeked<T> = { state: 'pending' };
  p.then(
    (value) => {
      out = { state: 'ok', value };
    },
    (error: unknown) => {
      out = { state: 'err', error };
    },
  );
  await settle();
  return out;
}

const text = (a: Answer | Promise<Answer>) =>
  Promise.resolve(a).then((x) => `${x.body.toString()} ${x.source}`);
const codeOf = (s: Peeked<unknown>) =>
  s.state === 'err' && s.error instanceof AwsCallError ? s.error.code : s.state;

/** Caches `value` under secret `id` (or a String parameter) with one load, and returns the fixture. */
async function cached(value = 'v1', o: Partial<CacheOptions> = {}) {
  const s = setup(o);
  const first = start(() => s.cache.get(secret('k')));
  await settle();
  s.loader.only().resolve(body(value));
  assert.equal(await text(first), `${value} miss`);
  return s;
}

describe('nothing waits forever', () => {
  test('a silent load never blocks its key: a read past the join limit starts a newer one; the hung readers get 504', async () => {
    const long = 100_000;
    const { clock, loader, cache } = setup({ ttlMs: { ssm: long, secretsmanager: long } });
    const a = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 1);
    await clock.advance(JOIN_LIMIT_MS - 1);
    const b = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 1, 'a read inside the join limit joins the load in flight');
    await clock.advance(1);
    const c = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 2, 'a read past the join limit does not join a load that may be hung');
    loader.loads[1]!.resolve(body('v1'));
    assert.equal(await text(c), 'v1 miss');
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit');
    assert.equal((await peek(a)).state, 'pending');
    await clock.advance(WAIT - JOIN_LIMIT_MS);
    assert.equal(codeOf(await peek(a)), 'TimeoutError');
    assert.equal((await peek(b)).state, 'pending', 'every reader has its own deadline');
    await clock.advance(JOIN_LIMIT_MS - 1);
    assert.equal(codeOf(await peek(b)), 'TimeoutError');
    assert.equal(
      loader.loads[0]!.ctx?.signal?.aborted,
      true,
      'superseded and abandoned: its socket is freed',
    );
    loader.loads[0]!.resolve(body('v1'));
    await settle();
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit', 'a late answer that agrees changes nothing');
    assert.equal(loader.loads.length, 2);
  });

  test('a late answer of a superseded load that disagrees drops the entry: the next read fetches anew', async () => {
    const { clock, loader, cache } = setup();
    const a = start(() => cache.get(secret('k')));
    await settle();
    await clock.advance(JOIN_LIMIT_MS);
    const b = start(() => cache.get(secret('k')));
    await settle();
    loader.loads[1]!.resolve(body('newer'));
    assert.equal(await text(b), 'newer miss');
    loader.loads[0]!.resolve(body('other'));
    assert.equal(await text(a), 'other miss', 'it answers the reader that joined it');
    const c = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 3, 'neither value is trusted: a third load decides');
    loader.loads[2]!.resolve(body('decided'));
    assert.equal(await text(c), 'decided miss');
    assert.equal(await text(cache.get(secret('k'))), 'decided hit');
  });

  test('the join limit counts from the last progress: a listing that keeps paging is joined for as long as it pages', async () => {
    const { clock, loader, cache } = setup();
    const p = { path: '/big/', recursive: true, withDecryption: false };
    const reads = [start(() => cache.getPath(p))];
    await settle();
    const load = loader.only();
    // 12 s of pages, 300 ms each, and a read every 2 s: each joins the one listing.
    for (let ms = 300; ms <= 12_000; ms += 300) {
      await clock.advance(300);
      load.ctx?.onProgress?.();
      if (ms % 2000 === 0 || ms === 12_000) reads.push(start(() => cache.getPath(p)));
    }
    await settle();
    assert.equal(loader.loads.length, 1, 'no read started a second listing');
    load.resolve(listing('all of it', [['/big/a', 'A']]));
    for (const r of reads) assert.equal(await text(r), 'all of it miss');
    assert.equal(await text(cache.getPath(p)), 'all of it hit', 'and it was stored');
    // A listing silent for the join limit may be hung: the next read starts another.
    await clock.advance(TTL);
    const late = start(() => cache.getPath(p));
    await settle();
    const second = loader.open[0]!;
    await clock.advance(JOIN_LIMIT_MS);
    const after = start(() => cache.getPath(p));
    await settle();
    assert.equal(loader.open.length, 2);
    loader.open.find((l) => l !== second)!.resolve(listing('new', []));
    assert.equal(await text(after), 'new miss');
    assert.equal((await peek(late)).state, 'pending', 'the expired read waits for the load it joined');
    await clock.advance(WAIT);
    assert.equal(await text(late), 'all of it stale', 'until the wait limit: then its stale value');
  });

  test('a failed attempt is progress: a load that retries is joined past the join limit', async () => {
    const { clock, loader, cache } = setup();
    const a = start(() => cache.get(secret('k')));
    await settle();
    await clock.advance(JOIN_LIMIT_MS - 100);
    loader.only().ctx?.onRetry?.(server500());
    await clock.advance(200);
    const b = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 1);
    loader.only().resolve(body('v'));
    assert.equal(await text(a), 'v miss');
    assert.equal(await text(b), 'v miss');
  });

  test('a load that never settles answers 504 at the wait limit, also when the cache is off', async () => {
    const { clock, loader, cache } = setup({ enabled: false });
    const a = start(() => cache.get(secret('k')));
    await clock.advance(WAIT - 1);
    assert.equal((await peek(a)).state, 'pending');
    await clock.advance(1);
    assert.equal(codeOf(await peek(a)), 'TimeoutError');
    assert.equal(loader.loads.length, 1);
  });
});

describe('newer wins, durably', () => {
  test('refreshNow supersedes a load in flight: the older answers its own readers and is never stored', async () => {
    const { loader, cache } = setup();
    const older = start(() => cache.get(secret('k')));
    const refreshed = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    assert.equal(loader.loads.length, 2, 'refreshNow never joins an older load');
    loader.loads[1]!.resolve(body('new'));
    assert.equal(await text(refreshed), 'new miss');
    loader.loads[0]!.resolve(body('old'));
    assert.equal(await text(older), 'old miss', 'the older load still answers the read that started it');
    const next = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(
      loader.loads.length,
      3,
      'the refreshed value, contradicted by a late answer, is fetched again',
    );
    loader.loads[2]!.resolve(body('new'));
    assert.equal(await text(next), 'new miss');
    assert.equal(await text(cache.get(secret('k'))), 'new hit');
  });

  test('an older load that lands before the refresh it was superseded by: a refresh that says otherwise leaves neither', async () => {
    const { loader, cache } = setup();
    const older = start(() => cache.get(secret('k')));
    const refreshed = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    loader.loads[0]!.resolve(body('old'));
    assert.equal(await text(older), 'old miss');
    assert.equal(
      await text(cache.get(secret('k'))),
      'old hit',
      'until the refresh answers, nobody was told anything newer',
    );
    loader.loads[1]!.resolve(body('new'));
    assert.equal(await text(refreshed), 'new miss');
    // The refresh started before "old" landed and says otherwise: neither is trusted, the next read asks.
    const next = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 3);
    loader.loads[2]!.resolve(body('new'));
    assert.equal(await text(next), 'new miss');
    assert.equal(await text(cache.get(secret('k'))), 'new hit');
  });

  test('an older load that lands before the refresh and agrees with it: the refresh is kept', async () => {
    const { loader, cache } = setup();
    const older = start(() => cache.get(secret('k')));
    const refreshed = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    loader.loads[0]!.resolve(body('same'));
    await older;
    loader.loads[1]!.resolve(body('same'));
    await refreshed;
    assert.equal(await text(cache.get(secret('k'))), 'same hit');
    assert.equal(await text(cache.get(secret('k'), { refresh: true })), 'same hit', 'and shared');
    assert.equal(loader.loads.length, 2);
  });

  test('a failed refreshNow sets no floor: what an older load brings is kept', async () => {
    const { loader, cache } = setup();
    const older = start(() => cache.get(secret('k')));
    const refreshed = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    loader.loads[1]!.reject(server500());
    assert.equal(await outcome(refreshed), 'InternalFailure');
    loader.loads[0]!.resolve(body('old'));
    assert.equal(await text(older), 'old miss');
    assert.equal(await text(cache.get(secret('k'))), 'old hit', 'nobody was told anything newer');
  });

  test('reproduction 1: a refreshNow through one decryption flag is not undone by a load of the other', async () => {
    const { loader, cache } = setup();
    // A plain read of /p whose answer (v1) is slow to come back.
    const held = start(() => cache.get(param('/p')));
    await settle();
    const slow = loader.only();
    // /p becomes v2 upstream; ttl=0 and refreshNow through withDecryption=true answer v2.
    const ttl0 = start(() => cache.get(param('/p', true), { ttlMs: 0 }));
    await settle();
    loader.open.find((l) => l !== slow)!.resolve(plain('v2'));
    assert.equal(await text(ttl0), 'v2 miss');
    assert.equal(
      await text(cache.get(param('/p', true), { refresh: true })),
      'v2 hit',
      'shared: the same second',
    );
    slow.resolve(plain('v1'));
    assert.equal(await text(held), 'v1 miss', 'the held read gets what it read');
    for (const d of [true, false]) {
      const r = start(() => cache.get(param('/p', d)));
      await settle();
      const open = loader.open;
      if (open.length > 0) open[0]!.resolve(plain('v2'));
      assert.match(await text(r), /^v2 /, `withDecryption=${d} never answers v1 again`);
    }
  });

  test('reproduction 1 (joins): a read of the other flag does not join a load older than a refresh answer', async () => {
    const { loader, cache } = setup();
    const held = start(() => cache.get(param('/p')));
    await settle();
    const slow = loader.only();
    const refreshed = start(() => cache.get(param('/p', true), { refresh: true }));
    await settle();
    loader.open.find((l) => l !== slow)!.resolve(plain('v2'));
    assert.equal(await text(refreshed), 'v2 miss');
    assert.equal(await text(cache.get(param('/p'))), 'v2 hit', 'the refresh stored v2 for both flags');
    slow.resolve(plain('v1'));
    assert.equal(await text(held), 'v1 miss');
    const again = start(() => cache.get(param('/p')));
    await settle();
    assert.equal(loader.open.length, 1, 'the disagreeing late answer dropped the entry: fetched again');
    loader.only().resolve(plain('v2'));
    assert.equal(await text(again), 'v2 miss');
  });

  test('reproduction 6b: a refreshNow is not undone by its own late retry', async () => {
    const { clock, loader, cache } = setup();
    const r1 = start(() => cache.get(secret('u'), { refresh: true }));
    await settle();
    const first = loader.only();
    first.ctx?.onRetry?.(server500());
    await clock.advance(1500);
    const r2 = start(() => cache.get(secret('u'), { refresh: true }));
    await settle();
    assert.equal(loader.loads.length, 2, 'past the one-second share: a new refresh');
    loader.loads[1]!.resolve(body('v1'));
    assert.equal(await text(r2), 'v1 miss');
    assert.equal(await text(cache.get(secret('u'))), 'v1 hit');
    // v2 is put upstream; the first refresh's retry reads it and answers R1.
    await clock.advance(8500);
    first.resolve(body('v2'));
    assert.equal(await text(r1), 'v2 miss');
    const plainRead = start(() => cache.get(secret('u')));
    await settle();
    assert.equal(loader.loads.length, 3, 'v1 no longer outlives the newer data R1 was given');
    loader.loads[2]!.resolve(body('v2'));
    assert.equal(await text(plainRead), 'v2 miss');
  });

  test('reproduction 6d: the one-second share is one per object, whichever flag asked', async () => {
    const { loader, cache } = setup();
    const a = start(() => cache.get(param('/w/z'), { refresh: true }));
    await settle();
    loader.only().resolve(plain('v1'));
    assert.equal(await text(a), 'v1 miss');
    const b = start(() => cache.get(param('/w/z', true), { ttlMs: 0 }));
    await settle();
    assert.equal(loader.loads.length, 1, 'within the second: shared, whichever flag');
    assert.equal(await text(b), 'v1 hit');
  });

  test('reproduction 6d (after a second): a refresh through one flag is what the other flag shares', async () => {
    const { clock, loader, cache } = setup();
    const a = start(() => cache.get(param('/w/z'), { refresh: true }));
    await settle();
    loader.only().resolve(plain('v1'));
    await text(a);
    // v2 upstream, past the second: ttl=0 through withDecryption=true reads it.
    await clock.advance(REFRESH_SHARE_MS);
    const b = start(() => cache.get(param('/w/z', true), { ttlMs: 0 }));
    await settle();
    loader.open[0]!.resolve(plain('v2'));
    assert.equal(await text(b), 'v2 miss');
    assert.equal(await text(cache.get(param('/w/z', true), { refresh: true })), 'v2 hit');
    assert.equal(
      await text(cache.get(param('/w/z'), { refresh: true })),
      'v2 hit',
      'the other flag shares the newer refresh, not its own older one',
    );
    assert.equal(loader.loads.length, 2);
  });

  test('an older load that agrees with the newer entry changes nothing', async () => {
    const { loader, cache } = setup();
    const older = start(() => cache.get(secret('k')));
    const refreshed = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    loader.loads[1]!.resolve(body('same'));
    await text(refreshed);
    loader.loads[0]!.resolve(body('same'));
    await text(older);
    assert.equal(await text(cache.get(secret('k'))), 'same hit');
    assert.equal(loader.loads.length, 2);
  });

  test('a path listing never replaces an item a newer load was asked for', async () => {
    const { loader, cache } = setup();
    const list = start(() => cache.getPath({ path: '/a/', recursive: false, withDecryption: false }));
    const item = start(() => cache.get(param('/a/x'), { refresh: true }));
    await settle();
    const [pathLoad, itemLoad] = loader.loads;
    itemLoad!.resolve(plain('x-new'));
    assert.equal(await text(item), 'x-new miss');
    pathLoad!.resolve(listing('listing', [['/a/x', 'x-old']]));
    assert.equal(await text(list), 'listing miss');
    const single = start(() => cache.get(param('/a/x')));
    await settle();
    assert.equal(loader.open.length, 1, 'the older listing contradicts the refresh: both dropped');
    loader.open[0]!.resolve(plain('x-new'));
    assert.equal(await text(single), 'x-new miss');
    const path = start(() => cache.getPath({ path: '/a/', recursive: false, withDecryption: false }));
    await settle();
    assert.equal(loader.open.length, 1, 'the listing that showed x-old was not kept');
    loader.open[0]!.resolve(listing('listing 2', [['/a/x', 'x-new']]));
    assert.equal(await text(path), 'listing 2 miss');
  });

  test('reproduction 2: a deleted parameter stays gone after an older listing lands, also after 1000 other NotFounds', async () => {
    for (const markItems of [1000, 4]) {
      const { loader, cache } = setup({ markBounds: { maxItems: markItems, maxBytes: 1 << 20 } });
      const p = { path: '/a/', recursive: false, withDecryption: false };
      const list = start(() => cache.getPath(p));
      await settle();
      const held = loader.only();
      const gone = start(() => cache.get(param('/a/x')));
      await settle();
      loader.open.find((l) => l !== held)!.reject(paramNotFound());
      assert.equal(await outcome(gone), 'ParameterNotFound');
      for (let i = 0; i < 1000; i++) {
        const other = start(() => cache.get(param(`/other/${i}`)));
        await settle(1);
        loader.open
          .find(
            (l) =>
              l.requests[0]?.service === 'ssm' && (l.requests[0] as ParameterRequest).name === `/other/${i}`,
          )!
          .reject(paramNotFound());
        await other.catch(() => {});
      }
      held.resolve(listing('with x', [['/a/x', 'before-delete']]));
      assert.equal(await text(list), 'with x miss', 'the listing answers the read that asked for it');
      const again = start(() => cache.get(param('/a/x')));
      await settle();
      assert.equal(loader.open.length, 1, `marks of ${markItems}: the old value was not stored`);
      loader.only().reject(paramNotFound());
      assert.equal(await outcome(again), 'ParameterNotFound');
      const path = start(() => cache.getPath(p));
      await settle();
      assert.equal(loader.open.length, 1, 'nor the listing that shows it');
      loader.only().resolve(listing('without x', []));
      assert.equal(await text(path), 'without x miss');
    }
  });

  test('marks live only while an older load runs or a share needs them, and are bounded: past the bound a floor rises', async () => {
    const { clock, loader, cache } = setup({ markBounds: { maxItems: 3, maxBytes: 1 << 20 } });
    const hung = start(() => cache.get(secret('hung')));
    await settle();
    const hungLoad = loader.only();
    for (let i = 0; i < 10; i++) {
      const r = start(() => cache.get(secret(`s${i}`), { refresh: true }));
      await settle();
      loader.open.find((l) => l !== hungLoad)!.resolve(body(`v${i}`));
      await r;
      assert.ok(cache.overhead.marks <= 3, `at most 3 marks (${cache.overhead.marks})`);
    }
    hungLoad.resolve(body('late'));
    assert.equal(await text(hung), 'late miss', 'answered');
    const next = start(() => cache.get(secret('hung')));
    await settle();
    assert.equal(loader.open.length, 1, 'below the floor: not stored (a refetch, never a wrong value)');
    loader.only().resolve(body('late'));
    await next;
    assert.ok(cache.overhead.marks > 0, 'the refreshes are shared for their second: their marks are kept');
    await clock.advance(REFRESH_SHARE_MS);
    assert.equal(cache.overhead.shares, 0);
    assert.equal(cache.overhead.marks, 0, 'nothing runs and nothing is shared: no mark is kept');
    assert.equal(cache.overhead.slots, 0);
  });
});

describe('stale-if-error and stale first', () => {
  test('stale at the join: an expired read that joined a refresh-ahead is served stale when it fails', async () => {
    const { clock, loader, cache } = await cached();
    await clock.advance(TTL * 0.95);
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit');
    const refresh = loader.only();
    assert.equal(refresh.ctx?.attempts, undefined, 'refresh-ahead has its full retries');
    await clock.advance(TTL * 0.1);
    const joined = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 1, 'the expired read joined the refresh in flight');
    assert.equal((await peek(joined)).state, 'pending');
    refresh.ctx?.onRetry?.(server500());
    assert.equal(
      await text(joined),
      'v1 stale',
      'a failed attempt is enough: it does not wait out the retries',
    );
    assert.equal(await text(cache.get(secret('k'))), 'v1 stale', 'while it retries: stale at once');
    refresh.reject(server500());
    await settle();
    assert.equal(await text(cache.get(secret('k'))), 'v1 stale', 'backing off: stale, no new load');
    assert.equal(loader.loads.length, 2);
    await clock.advance(1001);
    const again = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 3, 'after a second: one new load');
    assert.equal(loader.loads[2]!.ctx?.attempts, 1, 'of one attempt: the reader holds a value');
    loader.loads[2]!.resolve(body('v2'));
    assert.equal(await text(again), 'v2 miss');
  });

  test('a joined load that fails without retrying, or outlives the wait limit, also gives the stale value', async () => {
    const { clock, loader, cache } = await cached();
    await clock.advance(TTL + 1);
    const a = start(() => cache.get(secret('k')));
    await settle();
    loader.only().reject(server500());
    assert.equal(await text(a), 'v1 stale');
    await clock.advance(1001);
    const b = start(() => cache.get(secret('k')));
    await clock.advance(WAIT);
    assert.equal(await text(b), 'v1 stale', 'a hung load past the wait limit');
  });

  test('reproduction 4, stale first: while upstream hangs, reads of an expired entry get the stale value after the stale wait', async () => {
    const { clock, loader, cache, background } = await cached('v1', { staleWaitMs: 1000 });
    await clock.advance(TTL + 1);
    const a = start(() => cache.get(secret('k')));
    await clock.advance(999);
    assert.equal((await peek(a)).state, 'pending');
    const b = start(() => cache.get(secret('k')));
    await clock.advance(1);
    assert.equal(await text(a), 'v1 stale', 'at the stale wait, not at the attempt ceiling');
    assert.equal(loader.loads.length, 2, 'b joined the one load');
    assert.equal((await peek(b)).state, 'pending', 'each read has its own stale wait');
    await clock.advance(999);
    assert.equal(await text(b), 'v1 stale');
    // The load finishes in the background: what it brings is stored.
    loader.loads[1]!.resolve(body('v2'));
    await settle();
    assert.equal(await text(cache.get(secret('k'))), 'v2 hit');
    assert.deepEqual(background, []);
  });

  test('stale wait 0: a read with a stale value waits for the load as before', async () => {
    const { clock, loader, cache } = await cached('v1', { staleWaitMs: 0 });
    await clock.advance(TTL + 1);
    const a = start(() => cache.get(secret('k')));
    await clock.advance(5000);
    assert.equal((await peek(a)).state, 'pending');
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await text(a), 'v2 miss');
  });

  test('a load that answers within the stale wait gives its value, not the stale one', async () => {
    const { clock, loader, cache } = await cached('v1', { staleWaitMs: 1000 });
    await clock.advance(TTL + 1);
    const a = start(() => cache.get(secret('k')));
    await clock.advance(500);
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await text(a), 'v2 miss');
    await clock.advance(1000);
    assert.equal(await text(cache.get(secret('k'))), 'v2 hit');
  });

  test('NotFound and AccessDenied evict at once: never stale after them', async () => {
    const { clock, loader, cache } = await cached();
    await clock.advance(TTL + 1);
    const a = start(() => cache.get(secret('k')));
    await settle();
    loader.only().reject(notFound());
    assert.equal(await outcome(a), 'ResourceNotFoundException');
    const b = start(() => cache.get(secret('k')));
    await settle();
    loader.only().reject(server500());
    assert.equal(
      await outcome(b),
      'InternalFailure',
      'the entry is gone: an outage now is an error, not the old value',
    );
  });

  test('a NotFound through one flag evicts both flags of the object', async () => {
    const { clock, loader, cache } = setup();
    for (const d of [false, true]) {
      const r = start(() => cache.get(param('/s', d)));
      await settle();
      loader.only().resolve(body(`secure-${d}`));
      await r;
    }
    await clock.advance(TTL + 1);
    const a = start(() => cache.get(param('/s', true)));
    await settle();
    loader.only().reject(paramNotFound());
    assert.equal(await outcome(a), 'ParameterNotFound');
    const b = start(() => cache.get(param('/s', false)));
    await settle();
    loader.only().reject(server500());
    assert.equal(await outcome(b), 'InternalFailure', 'no stale ciphertext of a deleted parameter');
  });

  test('past the stale window the error is answered', async () => {
    const { clock, loader, cache } = await cached();
    await clock.advance(TTL + 60_001);
    const a = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.only().ctx?.attempts, undefined, 'no stale value to fall back on: full retries');
    loader.only().reject(server500());
    assert.equal(await outcome(a), 'InternalFailure');
  });
});

describe('listings', () => {
  const p = { path: '/r', recursive: true, withDecryption: false };

  async function listed() {
    const s = setup({ staleWaitMs: 1000 });
    const first = start(() => s.cache.getPath(p));
    await settle();
    s.loader.only().resolve(
      listing('a and b', [
        ['/r/a', 'A'],
        ['/r/b', 'B'],
      ]),
    );
    assert.equal(await text(first), 'a and b miss');
    return s;
  }

  test('reproduction 6c: a listing stops showing an item pscache found gone, as a hit and as stale', async () => {
    const { clock, loader, cache } = await listed();
    const gone = start(() => cache.get(param('/r/a'), { refresh: true }));
    await settle();
    loader.only().reject(paramNotFound());
    assert.equal(await outcome(gone), 'ParameterNotFound');
    const again = start(() => cache.getPath(p));
    await settle();
    assert.equal(loader.open.length, 1, 'the listing that showed /r/a is gone');
    loader.only().resolve(listing('b only', [['/r/b', 'B']]));
    assert.equal(await text(again), 'b only miss');
    // Expired, upstream failing: the stale listing is the one without /r/a.
    await clock.advance(TTL + 1);
    const stale = start(() => cache.getPath(p));
    await settle();
    loader.only().reject(server500());
    assert.equal(await text(stale), 'b only stale');
  });

  test('a gone item the listing does not show leaves it alone; one under another path too', async () => {
    const { loader, cache } = await listed();
    for (const name of ['/r/c', '/rx/a', '/other/a']) {
      const r = start(() => cache.get(param(name), { refresh: true }));
      await settle();
      loader.only().reject(paramNotFound());
      await r.catch(() => {});
    }
    assert.equal(await text(cache.getPath(p)), 'a and b hit');
  });

  test('a refreshNow answer drops listings that show the item otherwise, or leave it out in their scope', async () => {
    const { loader, cache } = await listed();
    const same = start(() => cache.get(param('/r/a'), { refresh: true }));
    await settle();
    loader.only().resolve(plain('A'));
    await same;
    assert.equal(await text(cache.getPath(p)), 'a and b hit', 'the same value: kept');
    const changed = start(() => cache.get(param('/r/b'), { refresh: true }));
    await settle();
    loader.only().resolve(plain('B2'));
    await changed;
    const after = start(() => cache.getPath(p));
    await settle();
    assert.equal(loader.open.length, 1, 'a listing that shows B under a refresh of B2 is dropped');
    loader.only().resolve(
      listing('a and b2', [
        ['/r/a', 'A'],
        ['/r/b', 'B2'],
      ]),
    );
    await after;
    const created = start(() => cache.get(param('/r/deep/c'), { refresh: true }));
    await settle();
    loader.only().resolve(plain('C'));
    await created;
    const recursive = start(() => cache.getPath(p));
    await settle();
    assert.equal(
      loader.open.length,
      1,
      'a recursive listing that leaves out a refreshed item below it is dropped',
    );
    loader.only().resolve(
      listing('three', [
        ['/r/a', 'A'],
        ['/r/b', 'B2'],
        ['/r/deep/c', 'C'],
      ]),
    );
    await recursive;
  });

  test('a non-recursive listing leaves out what lies deeper: a refresh there keeps it', async () => {
    const { loader, cache } = setup();
    const np = { path: '/n/', recursive: false, withDecryption: false };
    const first = start(() => cache.getPath(np));
    await settle();
    loader.only().resolve(listing('top', [['/n/a', 'A']]));
    await first;
    const deep = start(() => cache.get(param('/n/sub/x'), { refresh: true }));
    await settle();
    loader.only().resolve(plain('X'));
    await deep;
    assert.equal(await text(cache.getPath(np)), 'top hit');
    const direct = start(() => cache.get(param('/n/b'), { refresh: true }));
    await settle();
    loader.only().resolve(plain('B'));
    await direct;
    start(() => cache.getPath(np));
    await settle();
    assert.equal(loader.open.length, 1, 'a direct child it leaves out: dropped');
  });

  test("a SecureString's refresh compares only with listings of its own decryption flag", async () => {
    const { loader, cache } = setup();
    const dp = { path: '/x', recursive: true, withDecryption: false };
    const first = start(() => cache.getPath(dp));
    await settle();
    loader.only().resolve({
      body: Buffer.from('ciphertext listing'),
      items: [{ request: param('/x/s', false), loaded: body('ciphertext') }],
    });
    await first;
    const r = start(() => cache.get(param('/x/s', true), { refresh: true }));
    await settle();
    loader.only().resolve(body('plaintext'));
    await r;
    assert.equal(await text(cache.getPath(dp)), 'ciphertext listing hit');
  });

  test("a listing's items are stored under their own keys, and a role's listing stays the role's", async () => {
    const { loader, cache } = await listed();
    assert.equal(await text(cache.get(param('/r/a'))), 'A hit');
    assert.equal(await text(cache.get(param('/r/a', true))), 'A hit', 'a String: both flags');
    const role = { ...param('/r/a'), roleArn: 'arn:aws:iam::123456789012:role/x' };
    const asRole = start(() => cache.get(role, { refresh: true }));
    await settle();
    loader.only().reject(paramNotFound());
    await asRole.catch(() => {});
    assert.equal(await text(cache.getPath(p)), 'a and b hit', "a role's NotFound is not the base listing's");
  });
});

describe('too large is an answer too', () => {
  test('a path over the limit is cached for the TTL: repeated reads do not page again', async () => {
    const { clock, loader, cache } = setup();
    const p = { path: '/big/', recursive: true, withDecryption: false };
    const first = start(() => cache.getPath(p));
    await settle();
    loader.only().reject(new PathTooLargeError('/big/', true));
    const s = await peek(first);
    assert.ok(s.state === 'err' && s.error instanceof PathTooLargeError);
    for (let i = 0; i < 3; i++) assert.throws(() => cache.getPath(p), PathTooLargeError);
    assert.equal(loader.loads.length, 1);
    await clock.advance(TTL);
    const later = start(() => cache.getPath(p));
    await settle();
    assert.equal(loader.loads.length, 2, 'after the TTL it is asked again');
    loader.loads[1]!.resolve({ body: Buffer.from('now small'), items: [] });
    assert.equal(await text(later), 'now small miss');
  });
});

describe('refreshNow and ttl', () => {
  test('refreshNow and ttl=0 reads of one key make one load a second, and share it', async () => {
    const { clock, loader, cache } = setup();
    const reads = [
      start(() => cache.get(secret('k'), { refresh: true })),
      start(() => cache.get(secret('k'), { refresh: true })),
      start(() => cache.get(secret('k'), { ttlMs: 0 })),
    ];
    await settle();
    assert.equal(loader.loads.length, 1);
    loader.only().resolve(body('v1'));
    for (const r of reads) assert.equal(await text(r), 'v1 miss');
    await clock.advance(REFRESH_SHARE_MS - 1);
    assert.equal(await text(cache.get(secret('k'), { refresh: true })), 'v1 hit', 'the refresh just made');
    await clock.advance(1);
    const later = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    assert.equal(loader.loads.length, 2, 'a second later, a new refresh');
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await text(later), 'v2 miss');
  });

  test('a NotFound is shared for the second too, and a later NotFound of a plain read replaces the share', async () => {
    const { loader, cache } = setup();
    const a = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    loader.only().reject(notFound());
    assert.equal(await outcome(a), 'ResourceNotFoundException');
    assert.throws(() => cache.get(secret('k'), { refresh: true }), /gone/);
    assert.equal(loader.loads.length, 1);
  });

  test('item 5: the share holds no more than the cache may, and empties itself', async () => {
    const { clock, loader, cache } = setup({ maxItems: 10, maxBytes: 100 * 1024 });
    const big = Buffer.alloc(60 * 1024, 'x');
    for (let i = 0; i < 50; i++) {
      const r = start(() => cache.get(secret(`big/${i}`), { ttlMs: 0 }));
      await settle();
      loader.only().resolve({ body: big });
      await r;
    }
    const o = cache.overhead;
    assert.equal(cache.entries, 0, 'ttl=0 keeps nothing in the cache');
    assert.ok(o.shareBytes <= 100 * 1024, `shares hold ${o.shareBytes} bytes, at most the cache's budget`);
    assert.ok(o.shares <= 10);
    await clock.advance(REFRESH_SHARE_MS);
    assert.equal(cache.overhead.shares, 0, 'a second later the shares are gone, without a read');
    assert.equal(cache.overhead.shareBytes, 0);
  });

  test("a read's ttl caps what it takes for fresh and how long what it loads is kept", async () => {
    const { clock, loader, cache } = await cached();
    await clock.advance(5000);
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit');
    const short = start(() => cache.get(secret('k'), { ttlMs: 2000 }));
    await settle();
    assert.equal(loader.loads.length, 2, 'a 5 s old entry is too old for a read with ttl=2');
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await text(short), 'v2 miss');
    await clock.advance(2001);
    const plainRead = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 3, 'what it loaded lived 2 s, not the service TTL');
    loader.loads[2]!.resolve(body('v3'));
    assert.equal(await text(plainRead), 'v3 miss');
    assert.equal(await text(cache.get(secret('k'), { ttlMs: 86_400_000 })), 'v3 hit');
    await clock.advance(TTL);
    const capped = start(() => cache.get(secret('k'), { ttlMs: 86_400_000 }));
    await settle();
    assert.equal(loader.loads.length, 4, 'a longer ttl never keeps an entry past the service TTL');
    loader.loads[3]!.reject(notFound());
    await peek(capped);
  });
});

describe('labels and counts', () => {
  test('item 8: a refreshNow answered from the share is a hit, counted and labelled so', async () => {
    const { loader, cache } = setup();
    const a = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    loader.only().resolve(body('v'));
    await a;
    const before = { ...cache.stats };
    assert.equal(await text(cache.get(secret('k'), { refresh: true })), 'v hit');
    assert.equal(cache.stats.hits, before.hits + 1);
    assert.equal(cache.stats.misses, before.misses);
  });

  test('item 8: a superseded refresh-ahead cut short is neither an error, a background failure, nor a back-off', async () => {
    const { clock, loader, cache, background } = await cached();
    await clock.advance(TTL * 0.95);
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit');
    const ahead = loader.only();
    const refreshed = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    assert.equal(ahead.ctx?.signal?.aborted, true, 'nobody waits for it: cut short');
    ahead.reject(new AwsCallError('Abandoned', 'nobody waits for this answer any more', 'network'));
    await settle();
    assert.equal(cache.stats.errors, 0);
    assert.deepEqual(background, []);
    loader.open[0]!.resolve(body('v2'));
    await refreshed;
    await clock.advance(TTL * 0.95);
    cache.get(secret('k'));
    assert.equal(loader.open.length, 1, 'no back-off: the next refresh-ahead starts');
  });

  test('a miss, a stale answer and a hit are each counted once', async () => {
    const { clock, loader, cache } = await cached();
    assert.deepEqual([cache.stats.hits, cache.stats.misses, cache.stats.stale], [0, 1, 0]);
    await text(cache.get(secret('k')));
    await clock.advance(TTL + 1);
    const a = start(() => cache.get(secret('k')));
    await settle();
    loader.only().reject(server500());
    assert.equal(await text(a), 'v1 stale');
    assert.deepEqual([cache.stats.hits, cache.stats.misses, cache.stats.stale], [1, 1, 1]);
    assert.equal(cache.stats.errors, 1);
    assert.equal(cache.stats.loads, 2);
  });
});

describe('time', () => {
  test('item 7: intervals are monotonic: a backwards step of the wall clock does not stretch the share', async () => {
    const loader = new ScriptedLoader();
    const cache = new ItemCache({
      enabled: true,
      maxItems: 10,
      maxBytes: 1 << 20,
      ttlMs: { ssm: TTL, secretsmanager: TTL },
      staleIfErrorMs: 0,
      loader,
      waitLimitMs: { ssm: WAIT, secretsmanager: WAIT },
      clock: systemClock,
      jitter: () => 1,
    });
    const realNow = Date.now;
    const a = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    loader.only().resolve(body('v1'));
    await a;
    // The wall clock steps back an hour: a Date.now-based window would now last an hour.
    Date.now = () => realNow() - 3_600_000;
    try {
      const t0 = systemClock.now();
      await new Promise((r) => setTimeout(r, REFRESH_SHARE_MS + 50));
      assert.ok(systemClock.now() - t0 >= REFRESH_SHARE_MS, 'the clock moved on');
      const b = start(() => cache.get(secret('k'), { refresh: true }));
      await settle();
      assert.equal(
        loader.loads.length,
        2,
        'more than a second later: a new refresh, whatever the wall clock says',
      );
      loader.loads[1]!.resolve(body('v2'));
      assert.equal(await text(b), 'v2 miss');
    } finally {
      Date.now = realNow;
    }
  });
});

describe('TTL jitter', () => {
  test('an entry lives its jittered TTL: a plain read past the service TTL but inside TTL × 1.1 is a hit', async () => {
    const { clock, loader, cache } = await cached('v1', { jitter: () => 1.1 });
    await clock.advance(TTL * 1.05);
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit');
    assert.equal(loader.loads.length, 2, 'in the last tenth of its life: refreshed in the background');
  });

  test('clear() draws a new factor', async () => {
    const factors = [1.1, 0.9];
    const { clock, loader, cache } = setup({ jitter: () => factors.shift() ?? 1 });
    cache.clear();
    const a = start(() => cache.get(secret('k')));
    await settle();
    loader.only().resolve(body('v'));
    await a;
    await clock.advance(TTL * 0.85);
    assert.equal(await text(cache.get(secret('k'))), 'v hit');
    assert.equal(loader.loads.length, 2, 'TTL × 0.9 after clear(): in its last tenth already');
  });
});

describe('batches go through the same states', () => {
  test('getMany: fresh items hit, missing ones load together, concurrent single reads join them', async () => {
    const { loader, cache } = await cached('A');
    const many = cache.getMany([secret('k'), secret('b'), secret('c')]);
    await settle();
    const load = loader.only();
    assert.equal(load.kind, 'many');
    assert.deepEqual(
      load.requests.map((r) => (r.service === 'secretsmanager' ? r.secretId : '')),
      ['b', 'c'],
    );
    const single = start(() => cache.get(secret('b')));
    await settle();
    assert.equal(loader.open.length, 1, 'a single read of a batch item joins its load');
    const outcomes: Outcome[] = [
      { ok: true, loaded: body('B') },
      { ok: false, error: notFound() },
    ];
    load.resolve(outcomes);
    const results = await many;
    assert.deepEqual(
      results.map((r) => (r.ok ? `${r.answer.body} ${r.answer.source}` : (r.error as AwsCallError).code)),
      ['A hit', 'B miss', 'ResourceNotFoundException'],
    );
    assert.equal(await text(single), 'B miss');
    assert.equal(await text(cache.get(secret('b'))), 'B hit');
  });

  test('getMany: expired items load with one attempt and fall back to their stale values', async () => {
    const { clock, loader, cache } = setup();
    const first = cache.getMany([secret('a'), secret('b')]);
    await settle();
    loader.only().resolve([
      { ok: true, loaded: body('A') },
      { ok: true, loaded: body('B') },
    ]);
    await first;
    await clock.advance(TTL + 1);
    const again = cache.getMany([secret('a'), secret('b'), secret('c')]);
    await settle();
    assert.equal(loader.open.length, 2, 'stale-eligible items and the rest go in separate calls');
    const staleLoad = loader.open.find((l) => l.ctx?.attempts === 1)!;
    assert.equal(staleLoad.requests.length, 2);
    staleLoad.ctx?.onRetry?.(server500());
    staleLoad.reject(server500());
    loader.open[0]!.resolve([{ ok: true, loaded: body('C') }]);
    const results = await again;
    assert.deepEqual(
      results.map((r) => (r.ok ? `${r.answer.body} ${r.answer.source}` : 'error')),
      ['A stale', 'B stale', 'C miss'],
    );
  });

  /** A getMany of values in hand (prefetch's discovery), answered with what the read outside brought. */
  async function inHand(cache: ItemCache, loader: ScriptedLoader, readAt: number, value: string) {
    const p = cache.getMany([secret('k')], { readAt });
    await settle();
    loader.open.at(-1)!.resolve([{ ok: true, loaded: body(value) }]);
    const [r] = await p;
    return r!.ok ? `${r!.answer.body} ${r!.answer.source}` : (r!.error as AwsCallError).code;
  }

  test('values read outside the cache on a fresh cache are stored (prefetch right after start)', async () => {
    const { loader, cache } = setup();
    const mark = cache.reserve();
    assert.equal(await inHand(cache, loader, mark.readAt, 'P'), 'P miss');
    mark.release();
    assert.equal(await text(cache.get(secret('k'))), 'P hit');
  });

  test('values read outside the cache do not undo a NotFound that landed after they were asked for', async () => {
    const { loader, cache } = setup();
    const mark = cache.reserve();
    // While the listing is read, a read of the item lands NotFound, and nothing else runs.
    const gone = start(() => cache.get(secret('k')));
    await settle();
    loader.only().reject(notFound());
    assert.equal(await outcome(gone), 'ResourceNotFoundException');
    assert.equal(await inHand(cache, loader, mark.readAt, 'P'), 'P miss');
    mark.release();
    const again = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 1, 'the value from before the NotFound was not stored');
    loader.only().reject(notFound());
    assert.equal(await outcome(again), 'ResourceNotFoundException');
  });

  test('what landed before the values were asked for does not stop them', async () => {
    const { loader, cache } = setup();
    // A load of another key stays in flight, so the mark of k's NotFound is kept.
    const other = start(() => cache.get(secret('other')));
    const gone = start(() => cache.get(secret('k')));
    await settle();
    loader.open
      .find((l) => l.requests[0]!.service === 'secretsmanager' && l.requests[0]!.secretId === 'k')!
      .reject(notFound());
    assert.equal(await outcome(gone), 'ResourceNotFoundException');
    const mark = cache.reserve();
    assert.equal(await inHand(cache, loader, mark.readAt, 'P'), 'P miss');
    mark.release();
    assert.equal(await text(cache.get(secret('k'))), 'P hit');
    loader.only().resolve(body('O'));
    assert.equal(await text(other), 'O miss');
  });

  test('values asked for before clear() are not stored after it', async () => {
    const { loader, cache } = setup();
    const mark = cache.reserve();
    cache.clear();
    assert.equal(await inHand(cache, loader, mark.readAt, 'P'), 'P miss');
    mark.release();
    const again = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 1, 'a read after clear() asks again');
    loader.only().resolve(body('Q'));
    assert.equal(await text(again), 'Q miss');
  });

  test('getMany with the cache off for a service: loaded together, kept nowhere', async () => {
    const { loader, cache } = setup({ ttlMs: { ssm: TTL, secretsmanager: 0 } });
    const many = cache.getMany([secret('a'), secret('b')]);
    await settle();
    loader.only().resolve([
      { ok: true, loaded: body('A') },
      { ok: false, error: notFound() },
    ]);
    const results = await many;
    assert.deepEqual(
      results.map((r) => (r.ok ? `${r.answer.body} ${r.answer.source}` : (r.error as AwsCallError).code)),
      ['A miss', 'ResourceNotFoundException'],
    );
    assert.equal(cache.entries, 0);
    const failing = cache.getMany([secret('a')]);
    await settle();
    loader.open[0]!.reject(server500());
    const [r] = await failing;
    assert.equal(r!.ok, false);
  });
});

describe('SnapStart window', () => {
  test('between event/next and the first INVOKE reads bypass the cache with fresh credentials; a load from before never lands', async () => {
    const { loader, cache } = setup();
    const warm = start(() => cache.get(secret('warm')));
    await settle();
    loader.only().resolve(body('from INIT'));
    await text(warm);
    const inFlight = start(() => cache.get(secret('k')));
    await settle();
    const before = loader.only();
    cache.restoreWindow();
    const during = start(() => cache.get(secret('warm')));
    await settle();
    const bypass = loader.open.find((l) => l !== before)!;
    assert.equal(
      typeof bypass.ctx?.credentialsSince,
      'number',
      'signed with credentials fetched after it arrived',
    );
    bypass.resolve(body('after restore'));
    assert.equal(await text(during), 'after restore miss', 'not answered from what INIT cached');
    const batch = cache.getMany([secret('warm')]);
    await settle();
    const batchLoad = loader.open.find((l) => l.kind === 'many')!;
    assert.equal(typeof batchLoad.ctx?.credentialsSince, 'number');
    batchLoad.resolve([{ ok: true, loaded: body('after restore') }]);
    await batch;
    cache.clear();
    before.resolve(body('from before the snapshot'));
    assert.equal(await text(inFlight), 'from before the snapshot miss', 'answered all the same');
    const after = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 1, 'nothing from before INVOKE stayed: a new load');
    loader.only().resolve(body('fresh'));
    assert.equal(await text(after), 'fresh miss');
    assert.equal(await text(cache.get(secret('k'))), 'fresh hit', 'after INVOKE the cache works again');
  });

  test('a load from before INVOKE that fails leaves no back-off and no error behind', async () => {
    const { loader, cache } = setup();
    const a = start(() => cache.get(secret('k')));
    await settle();
    cache.restoreWindow();
    cache.clear();
    loader.only().reject(notFound());
    await a.catch(() => {});
    assert.equal(cache.stats.errors, 0, 'from before the clear: not counted against the new environment');
  });
});

describe('keys stay apart', () => {
  test('a String answer serves both decryption flags; a SecureString only its own', async () => {
    const { loader, cache } = setup();
    const a = start(() => cache.get(param('/s', true)));
    await settle();
    loader.only().resolve(plain('plain'));
    await text(a);
    assert.equal(await text(cache.get(param('/s', false))), 'plain hit');
    const b = start(() => cache.get(param('/x', true)));
    await settle();
    loader.only().resolve(body('secure'));
    await text(b);
    const c = start(() => cache.get(param('/x', false)));
    await settle();
    assert.equal(loader.open.length, 1, 'the decrypted SecureString never answers an undecrypted read');
    loader.only().resolve(body('ciphertext'));
    assert.equal(await text(c), 'ciphertext miss');
    assert.equal(await text(cache.get(param('/x', true))), 'secure hit');
  });

  test('a parameter that became a String is no longer answered from its SecureString entry', async () => {
    const { clock, loader, cache } = setup();
    const a = start(() => cache.get(param('/t', true)));
    await settle();
    loader.only().resolve(body('secure'));
    await a;
    const b = start(() => cache.get(param('/t', true), { refresh: true }));
    await settle();
    loader.only().resolve(plain('now plain'));
    assert.equal(await text(b), 'now plain miss');
    await clock.advance(REFRESH_SHARE_MS);
    assert.equal(await text(cache.get(param('/t', true))), 'now plain hit');
  });

  test('a fault inside pscache reaches the caller as itself, not as an upstream error', async () => {
    const { loader, cache } = setup();
    const a = start(() => cache.get(secret('k')));
    await settle();
    loader.only().reject(new TypeError('a bug'));
    const s = await peek(a);
    assert.ok(s.state === 'err' && s.error instanceof TypeError);
  });

  test('an item larger than the whole budget is answered, not stored', async () => {
    const { loader, cache } = setup({ maxBytes: 1024 });
    const a = start(() => cache.get(secret('big')));
    await settle();
    loader.only().resolve({ body: Buffer.alloc(2048) });
    assert.equal((await a).body.length, 2048);
    assert.equal(cache.entries, 0);
    assert.equal(cache.bytes, 0);
  });
});
