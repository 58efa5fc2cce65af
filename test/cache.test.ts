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
import type { ItemRequest } from '../src/items.ts';
import { type Outcome, PathTooLargeError } from '../src/loader/index.ts';
import { body, FakeClock, ScriptedLoader, settle } from './helpers/fake-time.ts';

const TTL = 10_000;
const WAIT = 30_000;

function setup(o: Partial<CacheOptions> = {}) {
  const clock = new FakeClock();
  const loader = new ScriptedLoader();
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
    ...o,
  });
  return { clock, loader, cache };
}

const secret = (id: string): ItemRequest => ({ service: 'secretsmanager', secretId: id });
const param = (name: string, withDecryption = false): ItemRequest => ({
  service: 'ssm',
  name,
  withDecryption,
});
const server500 = () => new AwsCallError('InternalFailure', 'boom', 'server', 500);
const notFound = () => new AwsCallError('ResourceNotFoundException', 'gone', 'aws', 400);

/** A promise's state right now, without waiting for it. */
async function peek<T>(
  p: Promise<T>,
): Promise<{ state: 'pending' } | { state: 'ok'; value: T } | { state: 'err'; error: unknown }> {
  let out: { state: 'pending' } | { state: 'ok'; value: T } | { state: 'err'; error: unknown } = {
    state: 'pending',
  };
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

describe('nothing waits forever', () => {
  test('a hung load never blocks its key: a read after the join limit starts a newer one; the hung readers get 504', async () => {
    const long = 100_000;
    const { clock, loader, cache } = setup({ ttlMs: { ssm: long, secretsmanager: long } });
    const a = Promise.resolve(cache.get(secret('k')));
    a.catch(() => {}); // looked at later, with peek
    await settle();
    assert.equal(loader.loads.length, 1);
    await clock.advance(JOIN_LIMIT_MS - 1);
    const b = Promise.resolve(cache.get(secret('k')));
    b.catch(() => {}); // looked at later, with peek
    await settle();
    assert.equal(loader.loads.length, 1, 'a read inside the join limit joins the load in flight');
    await clock.advance(2);
    const c = Promise.resolve(cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 2, 'a read past the join limit does not join a load that may be hung');
    loader.loads[1]!.resolve(body('v1'));
    assert.equal(await text(c), 'v1 miss');
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit');
    assert.equal((await peek(a)).state, 'pending');
    await clock.advance(WAIT - JOIN_LIMIT_MS);
    const aState = await peek(a);
    assert.equal(aState.state, 'err');
    assert.ok(
      aState.state === 'err' && aState.error instanceof AwsCallError && aState.error.kind === 'timeout',
    );
    await clock.advance(JOIN_LIMIT_MS);
    assert.equal((await peek(b)).state, 'err', 'every reader has its own deadline');
    assert.equal(
      loader.loads[0]!.ctx?.signal?.aborted,
      true,
      'superseded and abandoned: its socket is freed',
    );
    loader.loads[0]!.resolve(body('v0'));
    await settle();
    assert.equal(
      await text(cache.get(secret('k'))),
      'v1 hit',
      'the late answer of the hung load is never stored',
    );
  });

  test('a load that never settles answers 504 at the wait limit, also when the cache is off', async () => {
    const { clock, loader, cache } = setup({ enabled: false });
    const a = Promise.resolve(cache.get(secret('k')));
    a.catch(() => {});
    await clock.advance(WAIT - 1);
    assert.equal((await peek(a)).state, 'pending');
    await clock.advance(1);
    const s = await peek(a);
    assert.ok(s.state === 'err' && s.error instanceof AwsCallError && s.error.code === 'TimeoutError');
    assert.equal(loader.loads.length, 1);
  });
});

describe('newer wins', () => {
  test('refreshNow supersedes a load in flight: the older answers its own readers and is never stored', async () => {
    const { loader, cache } = setup();
    const plain = Promise.resolve(cache.get(secret('k')));
    const refreshed = Promise.resolve(cache.get(secret('k'), { refresh: true }));
    await settle();
    assert.equal(loader.loads.length, 2, 'refreshNow never joins an older load');
    loader.loads[1]!.resolve(body('new'));
    assert.equal(await text(refreshed), 'new miss');
    loader.loads[0]!.resolve(body('old'));
    assert.equal(await text(plain), 'old miss', 'the older load still answers the read that started it');
    assert.equal(await text(cache.get(secret('k'))), 'new hit', 'and never replaces the refreshed value');
  });

  test('an older load that lands first is not stored either, and the entry it outdates is not served', async () => {
    const { loader, cache } = setup();
    loader.loads.length = 0;
    const first = Promise.resolve(cache.get(secret('k')));
    await settle();
    loader.loads[0]!.resolve(body('v1'));
    assert.equal(await text(first), 'v1 miss');
    const plain = Promise.resolve(cache.get(secret('k'), { ttlMs: 0 }));
    const refreshed = Promise.resolve(cache.get(secret('k'), { refresh: true }));
    await settle();
    // ttl=0 and refreshNow within a second share one load.
    assert.equal(loader.loads.length, 2);
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await text(plain), 'v2 miss');
    assert.equal(await text(refreshed), 'v2 miss');
    assert.equal(await text(cache.get(secret('k'))), 'v2 hit');
  });

  test('a failed refreshNow still outdates the load it superseded: the next read fetches anew', async () => {
    const { loader, cache } = setup();
    const plain = Promise.resolve(cache.get(secret('k')));
    const refreshed = Promise.resolve(cache.get(secret('k'), { refresh: true }));
    await settle();
    loader.loads[1]!.reject(server500());
    assert.equal((await peek(refreshed)).state, 'err');
    loader.loads[0]!.resolve(body('old'));
    assert.equal(await text(plain), 'old miss');
    const next = Promise.resolve(cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 3, 'the older answer was not stored');
    loader.loads[2]!.resolve(body('v3'));
    assert.equal(await text(next), 'v3 miss');
  });

  test('a path listing never replaces an item a newer load was asked for', async () => {
    const { loader, cache } = setup();
    const listing = Promise.resolve(cache.getPath({ path: '/a/', recursive: false, withDecryption: false }));
    const item = Promise.resolve(cache.get(param('/a/x'), { refresh: true }));
    await settle();
    const [pathLoad, itemLoad] = loader.loads;
    itemLoad!.resolve(body('x-new'));
    assert.equal(await text(item), 'x-new miss');
    pathLoad!.resolve({
      body: Buffer.from('listing'),
      items: [{ request: { service: 'ssm', name: '/a/x', withDecryption: false }, loaded: body('x-old') }],
    });
    assert.equal(await text(listing), 'listing miss');
    assert.equal(await text(cache.get(param('/a/x'))), 'x-new hit');
  });
});

describe('stale-if-error', () => {
  async function cached(key = 'k') {
    const s = setup();
    const first = Promise.resolve(s.cache.get(secret(key)));
    await settle();
    s.loader.only().resolve(body('v1'));
    assert.equal(await text(first), 'v1 miss');
    return s;
  }

  test('stale at the join: an expired read that joined a refresh-ahead is served stale when it fails', async () => {
    const { clock, loader, cache } = await cached();
    await clock.advance(TTL * 0.95);
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit');
    const refresh = loader.only();
    assert.equal(refresh.ctx?.attempts, undefined, 'refresh-ahead has its full retries');
    await clock.advance(TTL * 0.1);
    const joined = Promise.resolve(cache.get(secret('k')));
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
    const again = Promise.resolve(cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 3, 'after a second: one new load');
    assert.equal(loader.loads[2]!.ctx?.attempts, 1, 'of one attempt: the reader holds a value');
    loader.loads[2]!.resolve(body('v2'));
    assert.equal(await text(again), 'v2 miss');
  });

  test('a joined load that fails without retrying, or outlives the wait limit, also gives the stale value', async () => {
    const { clock, loader, cache } = await cached();
    await clock.advance(TTL + 1);
    const a = Promise.resolve(cache.get(secret('k')));
    await settle();
    loader.only().reject(server500());
    assert.equal(await text(a), 'v1 stale');
    await clock.advance(1001);
    const b = Promise.resolve(cache.get(secret('k')));
    await clock.advance(WAIT);
    assert.equal(await text(b), 'v1 stale', 'a hung load past the wait limit');
  });

  test('NotFound and AccessDenied evict at once: never stale after them', async () => {
    const { clock, loader, cache } = await cached();
    await clock.advance(TTL + 1);
    const a = Promise.resolve(cache.get(secret('k')));
    await settle();
    loader.only().reject(notFound());
    const s = await peek(a);
    assert.ok(s.state === 'err' && (s.error as AwsCallError).code === 'ResourceNotFoundException');
    const b = Promise.resolve(cache.get(secret('k')));
    await settle();
    loader.only().reject(server500());
    assert.equal(
      (await peek(b)).state,
      'err',
      'the entry is gone: an outage now is an error, not the old value',
    );
  });

  test('past the stale window the error is answered', async () => {
    const { clock, loader, cache } = await cached();
    await clock.advance(TTL + 60_001);
    const a = Promise.resolve(cache.get(secret('k')));
    await settle();
    assert.equal(loader.only().ctx?.attempts, undefined, 'no stale value to fall back on: full retries');
    loader.only().reject(server500());
    assert.equal((await peek(a)).state, 'err');
  });
});

describe('too large is an answer too', () => {
  test('a path over the limit is cached for the TTL: repeated reads do not page again', async () => {
    const { clock, loader, cache } = setup();
    const p = { path: '/big/', recursive: true, withDecryption: false };
    const first = Promise.resolve().then(() => cache.getPath(p));
    await settle();
    loader.only().reject(new PathTooLargeError('/big/', true));
    const s = await peek(first);
    assert.ok(s.state === 'err' && s.error instanceof PathTooLargeError);
    for (let i = 0; i < 3; i++) assert.throws(() => cache.getPath(p), PathTooLargeError);
    assert.equal(loader.loads.length, 1);
    await clock.advance(TTL);
    const later = Promise.resolve().then(() => cache.getPath(p));
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
      cache.get(secret('k'), { refresh: true }),
      cache.get(secret('k'), { refresh: true }),
      cache.get(secret('k'), { ttlMs: 0 }),
    ].map((a) => Promise.resolve(a));
    await settle();
    assert.equal(loader.loads.length, 1);
    loader.only().resolve(body('v1'));
    for (const r of reads) assert.equal(await text(r), 'v1 miss');
    await clock.advance(REFRESH_SHARE_MS - 1);
    assert.equal(await text(cache.get(secret('k'), { refresh: true })), 'v1 hit', 'the refresh just made');
    await clock.advance(1);
    const later = Promise.resolve(cache.get(secret('k'), { refresh: true }));
    await settle();
    assert.equal(loader.loads.length, 2, 'a second later, a new refresh');
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await text(later), 'v2 miss');
  });

  test("a read's ttl caps what it takes for fresh and how long what it loads is kept", async () => {
    const { clock, loader, cache } = setup();
    const a = Promise.resolve(cache.get(secret('k')));
    await settle();
    loader.only().resolve(body('v1'));
    await text(a);
    await clock.advance(5000);
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit');
    const short = Promise.resolve(cache.get(secret('k'), { ttlMs: 2000 }));
    await settle();
    assert.equal(loader.loads.length, 2, 'a 5 s old entry is too old for a read with ttl=2');
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await text(short), 'v2 miss');
    await clock.advance(2001);
    const plain = Promise.resolve(cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 3, 'what it loaded lived 2 s, not the service TTL');
    loader.loads[2]!.resolve(body('v3'));
    assert.equal(await text(plain), 'v3 miss');
    assert.equal(await text(cache.get(secret('k'), { ttlMs: 86_400_000 })), 'v3 hit');
    await clock.advance(TTL);
    const capped = Promise.resolve(cache.get(secret('k'), { ttlMs: 86_400_000 }));
    await settle();
    assert.equal(loader.loads.length, 4, 'a longer ttl never keeps an entry past the service TTL');
    loader.loads[3]!.reject(notFound());
    await peek(capped);
  });
});

describe('TTL jitter', () => {
  test('an entry lives its jittered TTL: a plain read past the service TTL but inside TTL × 1.1 is a hit', async () => {
    const { clock, loader, cache } = setup({ jitter: () => 1.1 });
    const a = Promise.resolve(cache.get(secret('k')));
    await settle();
    loader.only().resolve(body('v1'));
    await text(a);
    await clock.advance(TTL * 1.05);
    assert.equal(await text(cache.get(secret('k'))), 'v1 hit');
    assert.equal(loader.loads.length, 2, 'in the last tenth of its life: refreshed in the background');
  });
});

describe('batches go through the same states', () => {
  test('getMany: fresh items hit, missing ones load together, concurrent single reads join them', async () => {
    const { loader, cache } = setup();
    const a = Promise.resolve(cache.get(secret('a')));
    await settle();
    loader.only().resolve(body('A'));
    await text(a);
    const many = cache.getMany([secret('a'), secret('b'), secret('c')]);
    await settle();
    const load = loader.only();
    assert.equal(load.kind, 'many');
    assert.deepEqual(
      load.requests.map((r) => (r.service === 'secretsmanager' ? r.secretId : '')),
      ['b', 'c'],
    );
    const single = Promise.resolve(cache.get(secret('b')));
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
    const again = cache.getMany([secret('a'), secret('b')]);
    await settle();
    const load = loader.only();
    assert.equal(load.ctx?.attempts, 1);
    load.reject(server500());
    const results = await again;
    assert.deepEqual(
      results.map((r) => (r.ok ? `${r.answer.body} ${r.answer.source}` : 'error')),
      ['A stale', 'B stale'],
    );
  });
});

describe('SnapStart window', () => {
  test('between event/next and the first INVOKE reads bypass the cache with fresh credentials; a load from before never lands', async () => {
    const { loader, cache } = setup();
    const warm = Promise.resolve(cache.get(secret('warm')));
    await settle();
    loader.only().resolve(body('from INIT'));
    await text(warm);
    const inFlight = Promise.resolve(cache.get(secret('k')));
    await settle();
    const before = loader.only();
    cache.restoreWindow();
    const during = Promise.resolve(cache.get(secret('warm')));
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
    const after = Promise.resolve(cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 1, 'nothing from before INVOKE stayed: a new load');
    loader.only().resolve(body('fresh'));
    assert.equal(await text(after), 'fresh miss');
    assert.equal(await text(cache.get(secret('k'))), 'fresh hit', 'after INVOKE the cache works again');
  });
});

describe('keys stay apart', () => {
  test('a String answer serves both decryption flags; a SecureString only its own', async () => {
    const { loader, cache } = setup();
    const a = Promise.resolve(cache.get(param('/s', true)));
    await settle();
    loader.only().resolve({ body: Buffer.from('plain'), plain: true });
    await text(a);
    assert.equal(await text(cache.get(param('/s', false))), 'plain hit');
    const b = Promise.resolve(cache.get(param('/x', true)));
    await settle();
    loader.only().resolve(body('secure'));
    await text(b);
    const c = Promise.resolve(cache.get(param('/x', false)));
    await settle();
    assert.equal(loader.open.length, 1, 'the decrypted SecureString never answers an undecrypted read');
    loader.only().resolve(body('ciphertext'));
    assert.equal(await text(c), 'ciphertext miss');
  });

  test('a fault inside pscache reaches the caller as itself, not as an upstream error', async () => {
    const { loader, cache } = setup();
    const a = Promise.resolve(cache.get(secret('k')));
    await settle();
    loader.only().reject(new TypeError('a bug'));
    const s = await peek(a);
    assert.ok(s.state === 'err' && s.error instanceof TypeError);
  });
});
