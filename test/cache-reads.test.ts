// The read paths of the cache core on a fake clock: what is kept and for how long (LRU order, the tables
// beside the entries, the TTL multiplier), the edges of fresh, refresh-ahead, back-off and the stale
// window, what evicts, what is counted, and the reads made with the cache off.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AwsCallError } from '../src/aws/types.ts';
import { type Answer, type ItemCache, REFRESH_SHARE_MS } from '../src/cache/index.ts';
import type { ItemRequest, Loaded, PathRequest } from '../src/items.ts';
import {
  listing,
  outcome,
  param,
  plain,
  STALE,
  secret,
  server500,
  setupCache as setup,
  start,
  TTL,
} from './helpers/cache-harness.ts';
import { body, settle } from './helpers/fake-time.ts';
import { collectionsWhile } from './helpers/gc-count.ts';

const path = (p: string): PathRequest => ({ path: p, recursive: false, withDecryption: false });

/** Reads `r` once, answering its load with `value`. */
async function fill(s: ReturnType<typeof setup>, r: ItemRequest, value: Loaded = body('v1')) {
  const p = start(() => s.cache.get(r));
  await settle();
  s.loader.open.at(-1)!.resolve(value);
  await p;
}

describe('what is kept, and for how long', () => {
  test('a fresh hit counts as a use: the least recently read entry is the one evicted', async () => {
    const s = setup({ maxItems: 2 });
    await fill(s, secret('a'));
    await fill(s, secret('b'));
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit');
    await fill(s, secret('c'));
    assert.equal(s.cache.entries, 2);
    const loads = s.loader.loads.length;
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit', 'a, read after b, outlived it');
    assert.equal(s.loader.loads.length, loads);
    const b = start(() => s.cache.get(secret('b')));
    await settle();
    assert.equal(s.loader.loads.length, loads + 1, 'b was the one evicted');
    s.loader.only().resolve(body('v1'));
    await b;
  });

  test('a hit on a String parameter read with the other flag counts as a use of its entry', async () => {
    const s = setup({ maxItems: 2 });
    await fill(s, param('/a', true), plain('v1'));
    await fill(s, secret('b'));
    assert.equal(await outcome(s.cache.get(param('/a', false))), 'v1 hit');
    await fill(s, secret('c'));
    const loads = s.loader.loads.length;
    assert.equal(await outcome(s.cache.get(param('/a', true))), 'v1 hit', '/a outlived b');
    assert.equal(s.loader.loads.length, loads);
  });

  test('a fresh listing hit counts as a use too', async () => {
    const s = setup({ maxItems: 2 });
    const first = start(() => s.cache.getPath(path('/p')));
    await settle();
    s.loader.only().resolve(listing('L', []));
    await first;
    await fill(s, secret('b'));
    assert.equal(await outcome(s.cache.getPath(path('/p'))), 'L hit');
    await fill(s, secret('c'));
    const loads = s.loader.loads.length;
    assert.equal(await outcome(s.cache.getPath(path('/p'))), 'L hit', 'the listing outlived b');
    assert.equal(s.loader.loads.length, loads);
  });

  test('LRU evictions are counted; an entry replaced or dropped is not an eviction', async () => {
    const s = setup({ maxItems: 2 });
    await fill(s, secret('a'));
    await fill(s, secret('b'));
    const again = start(() => s.cache.get(secret('a'), { refresh: true }));
    await settle();
    s.loader.only().resolve(body('v2'));
    assert.equal(await outcome(again), 'v2 miss');
    assert.equal(s.cache.stats.evictions, 0, 'replaced, not evicted');
    await fill(s, secret('c'));
    assert.equal(s.cache.stats.evictions, 1);
    await fill(s, secret('d'));
    assert.equal(s.cache.stats.evictions, 2);
    s.cache.clear();
    assert.equal(s.cache.stats.evictions, 2, 'cleared, not evicted');
  });

  test('the index of entries by id holds only ids of entries still stored', async () => {
    const s = setup({ maxItems: 2 });
    await fill(s, secret('a'));
    await fill(s, secret('b'));
    assert.equal(s.cache.overhead.ids, 2);
    await fill(s, secret('c'));
    assert.equal(s.cache.overhead.ids, 2, "the evicted entry's id is forgotten");
    s.cache.clear();
    assert.equal(s.cache.overhead.ids, 0);
  });

  test('an id two entries answer for stays indexed while one of them is', async () => {
    const s = setup({ maxItems: 2 });
    // A SecureString: one entry per flag, both known by its name.
    await fill(s, param('/x', true), body('dec'));
    await fill(s, param('/x', false), body('enc'));
    assert.equal(s.cache.overhead.ids, 1);
    await fill(s, secret('c'));
    assert.equal(s.cache.entries, 2);
    assert.equal(s.cache.overhead.ids, 2, "/x's id stays: its other entry is still stored");
  });

  test('the index of listings forgets a listing evicted', async () => {
    const s = setup({ maxItems: 2 });
    const first = start(() => s.cache.getPath(path('/p')));
    await settle();
    s.loader.only().resolve(listing('L', []));
    await first;
    assert.equal(s.cache.overhead.listings, 1);
    await fill(s, secret('b'));
    await fill(s, secret('c'));
    assert.equal(s.cache.overhead.listings, 0);
  });

  test('a listing too large to store is not indexed: the index never outgrows the cache', async () => {
    const s = setup({ maxBytes: 1000 });
    for (const p of ['/big1', '/big2', '/big3']) {
      const read = start(() => s.cache.getPath(path(p)));
      await settle();
      s.loader.only().resolve(listing('L'.repeat(2000), []));
      assert.equal((await read).source, 'miss', 'the listing is answered');
    }
    assert.equal(s.cache.entries, 0, 'nothing this large is stored');
    assert.equal(s.cache.overhead.listings, 0, 'and nothing of it is indexed');
  });

  test('marks are kept for at least 1000 keys while an older load runs, even for a smaller cache, and no more', async () => {
    const s = setup({ maxItems: 10 });
    const old = start(() => s.cache.get(secret('old')));
    await settle();
    for (let i = 0; i < 1100; i++) {
      const p = start(() => s.cache.get(secret(`k${i}`)));
      await settle(1);
      s.loader.open.at(-1)!.resolve(body('v'));
      await p;
    }
    assert.equal(s.cache.overhead.marks, 1000);
    s.loader.loads[0]!.resolve(body('v'));
    await old;
  });

  test('the default TTL multiplier is drawn from [0.9, 1.1)', async (t) => {
    const random = Math.random;
    t.after(() => {
      Math.random = random;
    });
    Math.random = () => 0.5;
    const s = setup({ jitter: undefined });
    await fill(s, secret('a'));
    await s.clock.advance(TTL * 0.89);
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit');
    assert.equal(s.loader.open.length, 0, 'fresh, not yet due for refresh');
    await s.clock.advance(TTL * 0.11);
    const late = start(() => s.cache.get(secret('a')));
    await settle();
    assert.equal(s.loader.open.length, 1, 'expired at the TTL times 1.0');
    s.loader.only().resolve(body('v2'));
    assert.equal(await outcome(late), 'v2 miss');
  });
});

describe('the cache off', () => {
  for (const [what, o] of [
    ['disabled', { enabled: false }],
    ['of size 0', { maxItems: 0 }],
  ] as const) {
    test(`a cache ${what} keeps nothing: every read goes upstream, counted as a miss and a load`, async () => {
      const s = setup(o);
      for (let i = 1; i <= 2; i++) {
        const p = start(() => s.cache.get(secret('a')));
        await settle();
        assert.equal(s.loader.loads.length, i);
        await s.clock.advance(250);
        s.loader.only().resolve(body(`v${i}`));
        const a = await p;
        assert.equal(`${a.body} ${a.source}`, `v${i} miss`);
        assert.equal(a.upstreamMs, 250);
      }
      assert.equal(s.cache.entries, 0);
      assert.equal(s.cache.bytes, 0);
      assert.deepEqual(
        { misses: s.cache.stats.misses, loads: s.cache.stats.loads, errors: s.cache.stats.errors },
        { misses: 2, loads: 2, errors: 0 },
      );
      const failed = start(() => s.cache.get(secret('a')));
      await settle();
      s.loader.only().reject(server500());
      assert.equal(await outcome(failed), 'InternalFailure');
      assert.equal(s.cache.stats.errors, 1);
      const listed = start(() => s.cache.getPath(path('/p')));
      await settle();
      s.loader.only().resolve(listing('L', []));
      assert.equal(await outcome(listed), 'L miss');
      s.cache.clear();
      assert.equal(s.cache.entries, 0);
    });
  }

  test('a batch with the cache off is one upstream call; each item counted, its errors its own', async () => {
    const s = setup({ enabled: false });
    const p = s.cache.getMany([secret('a'), secret('b'), secret('c')]);
    await settle();
    const load = s.loader.only();
    assert.equal(load.requests.length, 3);
    await s.clock.advance(300);
    load.resolve([
      { ok: true, loaded: body('va') },
      { ok: false, error: server500() },
      { ok: true, loaded: body('vc') },
    ]);
    const rs = await p;
    assert.deepEqual(
      rs.map((x) => (x.ok ? `${x.answer.body} ${x.answer.source} ${x.answer.upstreamMs}` : 'error')),
      ['va miss 300', 'error', 'vc miss 300'],
    );
    assert.deepEqual(
      { misses: s.cache.stats.misses, loads: s.cache.stats.loads, errors: s.cache.stats.errors },
      { misses: 3, loads: 3, errors: 1 },
    );
    const q = s.cache.getMany([secret('a'), secret('b')]);
    await settle();
    s.loader.only().reject(server500());
    const failed = await q;
    assert.deepEqual(
      failed.map((x) => x.ok),
      [false, false],
    );
    assert.equal(s.cache.stats.errors, 3, 'a failed call fails each of its items');
  });

  test('a batch answer of the wrong shape fails each item with cache off; nobody hangs', async () => {
    const s = setup({ enabled: false });
    const p = s.cache.getMany([secret('a'), secret('b')]);
    await settle();
    s.loader.only().resolve([]);
    let got: Array<{ ok: boolean }> | undefined;
    p.then((x) => {
      got = x;
    });
    await settle();
    assert.deepEqual(
      got?.map((x) => x.ok),
      [false, false],
    );
  });

  test('with the SSM TTL 0, listings are not kept nor shared: each read goes upstream', async () => {
    const s = setup({ ttlMs: { ssm: 0, secretsmanager: TTL } });
    const a = start(() => s.cache.getPath(path('/p')));
    const b = start(() => s.cache.getPath(path('/p')));
    await settle();
    assert.equal(s.loader.open.length, 2);
    for (const l of s.loader.open) l.resolve(listing('L', []));
    assert.equal(await outcome(a), 'L miss');
    assert.equal(await outcome(b), 'L miss');
  });

  test("SnapStart's window: a fresh listing is not answered from the cache", async () => {
    const s = setup();
    const first = start(() => s.cache.getPath(path('/p')));
    await settle();
    s.loader.only().resolve(listing('L', []));
    await first;
    s.cache.restoreWindow();
    const p = start(() => s.cache.getPath(path('/p')));
    await settle();
    assert.equal(s.loader.open.length, 1);
    s.loader.only().resolve(listing('L2', []));
    assert.equal(await outcome(p), 'L2 miss');
  });
});

describe('the edges of fresh, refresh-ahead and the stale window', () => {
  test("a read's own ttl: fresh strictly before stored + ttl", async () => {
    const s = setup();
    await fill(s, secret('a'));
    await s.clock.advance(2000);
    const p = start(() => s.cache.get(secret('a'), { ttlMs: 2000 }));
    await settle();
    assert.equal(s.loader.open.length, 1, 'at stored + ttl the entry is no longer fresh for this read');
    s.loader.only().resolve(body('v2'));
    assert.equal(await outcome(p), 'v2 miss');
  });

  test('refresh-ahead starts at 90% of the TTL exactly, once while its load runs', async () => {
    const s = setup();
    await fill(s, secret('a'));
    await s.clock.advance(TTL * 0.9);
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit');
    assert.equal(s.loader.open.length, 1);
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit');
    assert.equal(s.loader.open.length, 1, 'the refresh in flight is not doubled');
    s.loader.only().resolve(body('v2'));
    await settle();
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v2 hit');
  });

  test('a listing is refreshed ahead at 90% of its TTL exactly', async () => {
    const s = setup();
    const first = start(() => s.cache.getPath(path('/p')));
    await settle();
    s.loader.only().resolve(listing('L', []));
    await first;
    await s.clock.advance(TTL * 0.9);
    assert.equal(await outcome(s.cache.getPath(path('/p'))), 'L hit');
    assert.equal(s.loader.open.length, 1);
  });

  test('a failed refresh-ahead pauses refreshes of the key for 1 s exactly', async () => {
    const long = 100_000;
    const s = setup({ ttlMs: { ssm: long, secretsmanager: long } });
    await fill(s, secret('a'));
    await s.clock.advance(long * 0.9);
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit');
    s.loader.only().reject(server500());
    await settle();
    assert.equal(s.background.length, 1, 'reported');
    assert.equal(s.background[0]!.name, 'a');
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit');
    await s.clock.advance(999);
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit');
    assert.equal(s.loader.open.length, 0, 'no new refresh within the second');
    await s.clock.advance(1);
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit');
    assert.equal(s.loader.open.length, 1, 'a second later it refreshes again');
  });

  test('a refresh-ahead started before clear() fails unreported', async () => {
    const s = setup();
    await fill(s, secret('a'));
    await s.clock.advance(TTL * 0.9);
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 hit');
    s.cache.clear();
    s.loader.only().reject(server500());
    await settle();
    assert.equal(s.background.length, 0);
  });

  test('backing off: the stale value at once, counted stale', async () => {
    const s = setup();
    await fill(s, secret('a'));
    await s.clock.advance(TTL);
    const p = start(() => s.cache.get(secret('a')));
    await settle();
    s.loader.only().reject(server500());
    assert.equal(await outcome(p), 'v1 stale');
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v1 stale');
    assert.equal(s.loader.open.length, 0);
    assert.equal(s.cache.stats.stale, 2);
  });

  test('backing off lasts 1 s exactly after the failure', async () => {
    const s = setup();
    await fill(s, secret('a'));
    await s.clock.advance(TTL);
    const p = start(() => s.cache.get(secret('a')));
    await settle();
    s.loader.only().reject(server500());
    assert.equal(await outcome(p), 'v1 stale');
    await s.clock.advance(1000);
    const q = start(() => s.cache.get(secret('a')));
    await settle();
    assert.equal(s.loader.open.length, 1, 'a second after the failure a read loads again');
    s.loader.only().resolve(body('v2'));
    assert.equal(await outcome(q), 'v2 miss');
  });

  test('while backing off, a read joins a refreshNow load in flight rather than take the stale value', async () => {
    const s = setup();
    await fill(s, secret('a'));
    await s.clock.advance(TTL);
    const p = start(() => s.cache.get(secret('a')));
    await settle();
    s.loader.only().reject(server500());
    assert.equal(await outcome(p), 'v1 stale');
    const fresh = start(() => s.cache.get(secret('a'), { refresh: true }));
    await settle();
    const q = start(() => s.cache.get(secret('a')));
    await settle();
    assert.equal(s.loader.open.length, 1);
    s.loader.only().resolve(body('v2'));
    assert.equal(await outcome(fresh), 'v2 miss');
    assert.equal(await outcome(q), 'v2 miss', 'it waited for the load in flight');
  });

  test('the stale window ends at staleIfError after expiry, inclusive', async () => {
    const s = setup();
    await fill(s, secret('a'));
    await s.clock.advance(TTL + STALE);
    const p = start(() => s.cache.get(secret('a')));
    await settle();
    s.loader.only().reject(server500());
    assert.equal(await outcome(p), 'v1 stale', 'on the last millisecond of the window');
    const t = setup();
    await fill(t, secret('a'));
    await t.clock.advance(TTL + STALE + 1);
    const q = start(() => t.cache.get(secret('a')));
    await settle();
    assert.equal(t.cache.entries, 0, 'past the window the entry is dropped at once');
    t.loader.only().reject(server500());
    assert.equal(await outcome(q), 'InternalFailure', 'and never served');
  });

  test('with staleIfError 0 an expired entry is never served, and goes once past expiry', async () => {
    const s = setup({ staleIfErrorMs: 0 });
    await fill(s, secret('a'));
    await s.clock.advance(TTL);
    const p = start(() => s.cache.get(secret('a')));
    await settle();
    assert.equal(s.cache.entries, 1, 'at expiry it is not yet past it');
    s.loader.only().reject(server500());
    assert.equal(await outcome(p), 'InternalFailure');
    await s.clock.advance(1);
    const q = start(() => s.cache.get(secret('a')));
    await settle();
    assert.equal(s.cache.entries, 0);
    s.loader.only().reject(server500());
    assert.equal(await outcome(q), 'InternalFailure');
  });

  for (const [code, r] of [
    ['ParameterNotFound', param('/a')],
    ['ParameterVersionNotFound', param('/a')],
    ['ResourceNotFoundException', secret('a')],
    ['AccessDeniedException', secret('a')],
    ['KMSAccessDeniedException', secret('a')],
    ['DecryptionFailure', secret('a')],
  ] as const) {
    test(`${code} evicts the entry: never served stale after it`, async () => {
      const s = setup();
      await fill(s, r);
      await s.clock.advance(TTL);
      const p = start(() => s.cache.get(r));
      await settle();
      s.loader.only().reject(new AwsCallError(code, 'no', 'aws', 400));
      assert.equal(await outcome(p), code);
      assert.equal(s.cache.entries, 0);
      const q = start(() => s.cache.get(r));
      await settle();
      s.loader.only().reject(server500());
      assert.equal(await outcome(q), 'InternalFailure');
    });
  }
});

describe('refreshNow', () => {
  test('a refreshNow joins a refresh load in flight for less than a second, not one a second old', async () => {
    const s = setup();
    const a = start(() => s.cache.get(secret('a'), { refresh: true }));
    await settle();
    await s.clock.advance(REFRESH_SHARE_MS - 1);
    const b = start(() => s.cache.get(secret('a'), { refresh: true }));
    await settle();
    assert.equal(s.loader.open.length, 1);
    await s.clock.advance(1);
    const c = start(() => s.cache.get(secret('a'), { refresh: true }));
    await settle();
    assert.equal(s.loader.open.length, 2);
    s.loader.loads[1]!.resolve(body('v2'));
    s.loader.loads[0]!.resolve(body('v1'));
    assert.equal(await outcome(c), 'v2 miss');
    assert.equal(await outcome(a), 'v1 miss');
    assert.equal(await outcome(b), 'v1 miss');
  });
});

describe('refreshNow within the second of another', () => {
  test('answers the entry a load started after the shared one stored (here: the type changed)', async () => {
    const s = setup();
    const first = start(() => s.cache.get(param('/p'), { refresh: true }));
    await settle();
    s.loader.only().resolve(plain('v1'));
    assert.equal(await outcome(first), 'v1 miss');
    await s.clock.advance(1);
    // A read that takes nothing older than 1 ms loads again: /p is a SecureString now.
    const later = start(() => s.cache.get(param('/p'), { ttlMs: 1 }));
    await settle();
    s.loader.only().resolve(body('enc'));
    assert.equal(await outcome(later), 'enc miss');
    const loads = s.loader.loads.length;
    assert.equal(await outcome(s.cache.get(param('/p'), { refresh: true })), 'enc hit');
    assert.equal(s.loader.loads.length, loads, 'no load: the newer entry is the answer');
  });

  test('answers nothing from the cache when a refresh through the other flag landed since: it loads', async () => {
    const s = setup();
    const first = start(() => s.cache.get(param('/p'), { refresh: true }));
    await settle();
    s.loader.only().resolve(plain('v1'));
    assert.equal(await outcome(first), 'v1 miss');
    await s.clock.advance(1);
    const later = start(() => s.cache.get(param('/p'), { ttlMs: 1 }));
    await settle();
    s.loader.only().resolve(body('enc'));
    assert.equal(await outcome(later), 'enc miss');
    await s.clock.advance(1);
    const other = start(() => s.cache.get(param('/p', true), { refresh: true }));
    await settle();
    s.loader.only().resolve(body('dec'));
    assert.equal(await outcome(other), 'dec miss');
    const again = start(() => s.cache.get(param('/p'), { refresh: true }));
    await settle();
    assert.equal(s.loader.open.length, 1, 'newer news of /p than the entry: a load');
    s.loader.only().resolve(body('enc2'));
    assert.equal(await outcome(again), 'enc2 miss');
  });
});

describe('batches', () => {
  test('an item asked twice in one batch is read once', async () => {
    const s = setup();
    const p = s.cache.getMany([secret('a'), secret('a')]);
    await settle();
    assert.equal(s.loader.only().requests.length, 1);
    s.loader.only().resolve([{ ok: true, loaded: body('v1') }]);
    const rs = await p;
    assert.deepEqual(
      rs.map((x) => (x.ok ? `${x.answer.body} ${x.answer.source}` : 'error')),
      ['v1 miss', 'v1 miss'],
    );
  });
});

describe('newer wins', () => {
  const notFound = () => new AwsCallError('ResourceNotFoundException', 'gone', 'aws', 400);

  test('a load numbered at a mark is not joined: it started before that answer landed', async () => {
    const s = setup();
    const older = start(() => s.cache.get(secret('a')));
    await settle();
    const newer = start(() => s.cache.get(secret('a'), { refresh: true }));
    await settle();
    assert.equal(s.loader.open.length, 2);
    s.loader.loads[0]!.resolve(body('v1'));
    assert.equal(await outcome(older), 'v1 miss');
    // The refreshNow load started before v1 landed: a refreshNow now does not take its answer.
    const late = start(() => s.cache.get(secret('a'), { refresh: true }));
    await settle();
    assert.equal(s.loader.open.length, 2, 'a third load');
    s.loader.loads[2]!.resolve(body('v3'));
    s.loader.loads[1]!.resolve(body('v2'));
    assert.equal(await outcome(late), 'v3 miss');
    assert.equal(await outcome(newer), 'v2 miss');
  });

  test('a read after clear() does not join a load started before it', async () => {
    const s = setup();
    const before = start(() => s.cache.get(secret('a')));
    await settle();
    s.cache.clear();
    const after = start(() => s.cache.get(secret('a')));
    await settle();
    assert.equal(s.loader.open.length, 2, 'a load of its own');
    s.loader.loads[1]!.resolve(body('v2'));
    s.loader.loads[0]!.resolve(body('v1'));
    assert.equal(await outcome(after), 'v2 miss');
    assert.equal(await outcome(before), 'v1 miss');
    assert.equal(await outcome(s.cache.get(secret('a'))), 'v2 hit');
  });

  test('a reservation keeps the marks of what lands until it is released, then they go', async () => {
    const s = setup();
    const mark = s.cache.reserve();
    await fill(s, secret('a'));
    assert.ok(s.cache.overhead.marks > 0, 'what landed after the reservation is remembered');
    mark.release();
    assert.equal(s.cache.overhead.marks, 0, 'released, with nothing running: no mark is kept');
    mark.release();
    assert.equal(s.cache.overhead.marks, 0);
  });

  /** Values in hand for `ids`, read upstream at `readAt`: a batch left open for the test to answer. */
  async function inHand(s: ReturnType<typeof setup>, id: string, readAt: number) {
    const p = s.cache.getMany([secret(id)], { readAt });
    await settle();
    return { load: s.loader.open.at(-1)!, result: p };
  }

  test('values in hand do not undo a NotFound that landed after they were read, once their reservation is released', async () => {
    const s = setup();
    const mark = s.cache.reserve();
    const gone = start(() => s.cache.get(secret('k')));
    await settle();
    s.loader.only().reject(notFound());
    assert.equal(await outcome(gone), 'ResourceNotFoundException');
    const prefetch = await inHand(s, 'k', mark.readAt);
    mark.release();
    prefetch.load.resolve([{ ok: true, loaded: body('P') }]);
    await prefetch.result;
    const again = start(() => s.cache.get(secret('k')));
    await settle();
    assert.equal(s.loader.open.length, 1, 'the value from before the NotFound was not stored');
    s.loader.only().reject(notFound());
    assert.equal(await outcome(again), 'ResourceNotFoundException');
  });

  test('of two batches of values in hand, the one read first is judged as of when it was read', async () => {
    const s = setup();
    const first = s.cache.reserve();
    const gone = start(() => s.cache.get(secret('k')));
    await settle();
    s.loader.only().reject(notFound());
    assert.equal(await outcome(gone), 'ResourceNotFoundException');
    const second = s.cache.reserve();
    const a = await inHand(s, 'k', first.readAt);
    const b = await inHand(s, 'j', second.readAt);
    first.release();
    second.release();
    a.load.resolve([{ ok: true, loaded: body('P') }]);
    b.load.resolve([{ ok: true, loaded: body('J') }]);
    await Promise.all([a.result, b.result]);
    const again = start(() => s.cache.get(secret('k')));
    await settle();
    assert.equal(s.loader.open.length, 1, 'the value from before the NotFound was not stored');
    s.loader.only().reject(notFound());
    assert.equal(await outcome(again), 'ResourceNotFoundException');
    assert.equal(await outcome(s.cache.get(secret('j'))), 'J hit');
  });
});

describe('a hit allocates nothing of its own', () => {
  /** Garbage collections while `n` fresh hits are read with `read` (0 when a hit allocates nothing), fewest of three tries. */
  async function collectionsDuring(
    read: (cache: ItemCache) => Answer | Promise<Answer>,
    answer: Loaded,
    n: number,
  ) {
    const s = setup({ ttlMs: { ssm: 3_600_000, secretsmanager: 3_600_000 }, staleIfErrorMs: 0 });
    const first = start(() => read(s.cache));
    await settle();
    s.loader.only().resolve(answer);
    await first;
    for (let i = 0; i < 100_000; i++) assert.equal(read(s.cache) instanceof Promise, false);
    return collectionsWhile(() => {
      let hits = 0;
      for (let i = 0; i < n; i++) if ((read(s.cache) as Answer).source === 'hit') hits++;
      assert.equal(hits, n);
    });
  }
  // Mutation testing instruments every line with counters: what it allocates is not the product's.
  const instrumented = (globalThis as { __stryker__?: unknown }).__stryker__ !== undefined;

  test('a fresh hit of a SecureString parameter (found under its own key) allocates nothing', {
    skip: instrumented,
  }, async () => {
    const r = Object.freeze(param('/s', true));
    const gcs = await collectionsDuring((c) => c.get(r), body('v'), 2_000_000);
    assert.ok(gcs <= 1, `${gcs} garbage collections during 2,000,000 hits`);
  });
});

describe('what a read holding a stale value is counted as', () => {
  test('answered by its load: a miss, also once its wait limit has passed', async () => {
    const s = setup();
    await fill(s, secret('k'));
    await s.clock.advance(TTL + 1);
    const p = start(() => s.cache.get(secret('k')));
    await settle();
    s.loader.only().resolve(body('v2'));
    assert.equal(await outcome(p), 'v2 miss');
    await s.clock.advance(60_000);
    assert.deepEqual(
      { hits: s.cache.stats.hits, misses: s.cache.stats.misses, stale: s.cache.stats.stale },
      { hits: 0, misses: 2, stale: 0 },
    );
    assert.equal(s.clock.pending, 0, 'no timer of the read left');
  });
});
