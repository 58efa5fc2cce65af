// The cache core's loads in flight: who may join them, what their failures count and stop, what an older
// load may still store once newer news landed, and the tables beside the entries (marks, one-second
// shares) that decide it. On a fake clock, against a loader whose every answer the test releases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AwsCallError } from '../src/aws/types.ts';
import type { Answer, CacheOptions } from '../src/cache/index.ts';
import { Marks } from '../src/cache/marks.ts';
import { type Share, Shares } from '../src/cache/shares.ts';
import type { Clock, Timer } from '../src/clock.ts';
import type { ItemRequest, Loaded, PathRequest } from '../src/items.ts';
import { PathTooLargeError } from '../src/loader/index.ts';
import {
  listing,
  notFound,
  param,
  secret,
  server500,
  setupCache,
  start,
  TTL,
  WAIT,
} from './helpers/cache-harness.ts';
import { body, FakeClock, settle } from './helpers/fake-time.ts';

const JOIN = 5_000;

/** The harness's cache with a join limit of its own (shorter than the wait limit). */
const setup = (o: Partial<CacheOptions> = {}) =>
  setupCache({ joinLimitMs: { ssm: JOIN, secretsmanager: JOIN }, ...o });

const dir: PathRequest = { path: '/app', recursive: false, withDecryption: false };

/** `body source`, or the error's code (AwsCallError) or name. */
const outcome = (p: Promise<Answer>) =>
  p.then(
    (x) => `${x.body.toString()} ${x.source}`,
    (e: unknown) => (e instanceof AwsCallError ? e.code : e instanceof Error ? e.name : String(e)),
  );

/** Caches `value` under `r` with one load. */
async function cached(s: ReturnType<typeof setup>, r: ItemRequest, loaded: Loaded) {
  const first = start(() => s.cache.get(r));
  await settle();
  s.loader.only().resolve(loaded);
  assert.equal(await outcome(first), `${loaded.body.toString()} miss`);
}

describe('who may join a load in flight', () => {
  test('a refreshNow read never joins a batch read’s load: it starts its own', async () => {
    const { loader, cache } = setup();
    const batch = cache.getMany([secret('k')]);
    await settle();
    assert.equal(loader.open.length, 1);
    const fresh = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    assert.equal(loader.open.length, 2, 'refreshNow asks upstream again');
    loader.open[1]!.resolve(body('v2'));
    assert.equal(await outcome(fresh), 'v2 miss');
    loader.open[0]!.resolve([{ ok: true, loaded: body('v1') }]);
    const [r] = await batch;
    assert.ok(r?.ok);
  });

  test('after the newest load of a key fails, the next read starts another even while an older one still runs', async () => {
    const { clock, loader, cache } = setup();
    const r1 = start(() => cache.get(secret('k')));
    await settle();
    await clock.advance(JOIN + 1);
    const r2 = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 2, 'the hung load is not joined');
    loader.open[1]!.reject(server500());
    assert.equal(await outcome(r2), 'InternalFailure');
    const r3 = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 2, 'the hung one and a new one');
    assert.equal(loader.loads.length, 3);
    loader.loads[2]!.resolve(body('v3'));
    assert.equal(await outcome(r3), 'v3 miss');
    loader.loads[0]!.reject(server500());
    assert.equal(await outcome(r1), 'InternalFailure');
  });

  test('an older load failing does not stop reads joining the newer one', async () => {
    const { clock, loader, cache } = setup();
    const r1 = start(() => cache.get(secret('k')));
    await settle();
    await clock.advance(JOIN + 1);
    const r2 = start(() => cache.get(secret('k')));
    await settle();
    loader.loads[0]!.reject(server500());
    assert.equal(await outcome(r1), 'InternalFailure');
    const r3 = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.loads.length, 2, 'joined the newer load: no third');
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await outcome(r2), 'v2 miss');
    assert.equal(await outcome(r3), 'v2 miss');
  });
});

describe('attempts, failures and back-off', () => {
  test('a batch item with no stale value gets the loader’s full retries; one with a stale value one attempt', async () => {
    const s = setup();
    const none = s.cache.getMany([secret('k')]);
    await settle();
    assert.equal(s.loader.only().ctx?.attempts, undefined, 'the loader’s own retry policy');
    s.loader.only().resolve([{ ok: true, loaded: body('v1') }]);
    await none;
    await s.clock.advance(TTL + 1);
    const stale = s.cache.getMany([secret('k')]);
    await settle();
    assert.equal(s.loader.only().ctx?.attempts, 1);
    s.loader.only().resolve([{ ok: true, loaded: body('v2') }]);
    await stale;
  });

  test('a failed load that a read waited for counts as an error', async () => {
    const { loader, cache } = setup();
    const r = start(() => cache.get(secret('k')));
    await settle();
    loader.only().reject(server500());
    assert.equal(await outcome(r), 'InternalFailure');
    assert.equal(cache.stats.errors, 1);
  });

  test('a batch read’s load superseded before its reader attached still counts its failure: the reader got it', async () => {
    const { loader, cache } = setup();
    const batch = cache.getMany([secret('k')]);
    const fresh = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    assert.equal(loader.loads.length, 2);
    loader.loads[0]!.resolve([{ ok: false, error: server500() }]);
    const [x] = await batch;
    assert.equal(x?.ok, false);
    assert.equal(cache.stats.errors, 1, 'one error answered, one counted');
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await outcome(fresh), 'v2 miss');
    assert.equal(cache.stats.errors, 1);
  });

  test('a superseded load whose last reader gave up is aborted, and its failure is not counted', async () => {
    const { clock, loader, cache } = setup();
    const r1 = start(() => cache.get(secret('k')));
    await settle();
    await clock.advance(JOIN + 1);
    const r2 = start(() => cache.get(secret('k')));
    await settle();
    await clock.advance(WAIT - JOIN);
    assert.equal(await outcome(r1), 'TimeoutError');
    assert.equal(loader.loads[0]!.ctx?.signal?.aborted, true, 'its socket is freed');
    loader.loads[0]!.reject(server500());
    await settle();
    assert.equal(cache.stats.errors, 0, 'news to nobody');
    loader.loads[1]!.resolve(body('v2'));
    assert.equal(await outcome(r2), 'v2 miss');
  });

  test('a failure that is not transient (a bad request) does not pause the key: the next read asks again', async () => {
    const s = setup();
    await cached(s, secret('k'), body('v1'));
    await s.clock.advance(TTL + 1);
    const r = start(() => s.cache.get(secret('k')));
    await settle();
    s.loader.only().reject(new AwsCallError('ValidationException', 'bad', 'aws', 400));
    assert.equal(await outcome(r), 'ValidationException', 'not answered stale: it is not a passing fault');
    const again = start(() => s.cache.get(secret('k')));
    await settle();
    assert.equal(s.loader.open.length, 1, 'a new load, no back-off');
    s.loader.only().resolve(body('v2'));
    assert.equal(await outcome(again), 'v2 miss');
  });

  test('upstreamMs is the time a read waited on upstream (a miss, and a stale answer)', async () => {
    const s = setup();
    const r = start(() => s.cache.get(secret('k')));
    await settle();
    await s.clock.advance(40);
    s.loader.only().resolve(body('v1'));
    assert.equal((await r).upstreamMs, 40);
    await s.clock.advance(TTL + 1);
    const stale = start(() => s.cache.get(secret('k')));
    await settle();
    await s.clock.advance(25);
    s.loader.only().reject(server500());
    const a = await stale;
    assert.equal(a.source, 'stale');
    assert.equal(a.upstreamMs, 25);
  });
});

describe('a path too large, against listings that landed meanwhile', () => {
  test('an older listing load’s "too large" does not replace a listing a newer load stored', async () => {
    const { clock, loader, cache } = setup();
    const r1 = start(() => cache.getPath(dir));
    await settle();
    await clock.advance(JOIN + 1);
    const r2 = start(() => cache.getPath(dir));
    await settle();
    loader.loads[1]!.resolve(listing('new'));
    assert.equal(await outcome(r2), 'new miss');
    loader.loads[0]!.reject(new PathTooLargeError('/app', false));
    assert.equal(await outcome(r1), 'PathTooLargeError');
    assert.equal(await outcome(start(() => cache.getPath(dir))), 'new hit');
  });

  test('a listing load started before another listing landed does not store "too large" over it', async () => {
    const { clock, loader, cache } = setup();
    const r1 = start(() => cache.getPath(dir));
    await settle();
    await clock.advance(JOIN + 1);
    const r2 = start(() => cache.getPath(dir));
    await settle();
    loader.loads[0]!.resolve(listing('older'));
    assert.equal(await outcome(r1), 'older miss');
    loader.loads[1]!.reject(new PathTooLargeError('/app', false));
    assert.equal(await outcome(r2), 'PathTooLargeError');
    assert.equal(await outcome(start(() => cache.getPath(dir))), 'older hit');
  });

  test('an older listing landing after a newer "too large" answers its reader and is not stored', async () => {
    const { clock, loader, cache } = setup();
    const r1 = start(() => cache.getPath(dir));
    await settle();
    await clock.advance(JOIN + 1);
    const r2 = start(() => cache.getPath(dir));
    await settle();
    loader.loads[1]!.reject(new PathTooLargeError('/app', false));
    assert.equal(await outcome(r2), 'PathTooLargeError');
    loader.loads[0]!.resolve(listing('older'));
    assert.equal(await outcome(r1), 'older miss');
    const r3 = start(() => cache.getPath(dir));
    await settle();
    assert.equal(loader.open.length, 1, 'neither trusted: asked again');
    loader.only().resolve(listing('now'));
    assert.equal(await outcome(r3), 'now miss');
  });
});

describe('an older load against news of its object', () => {
  test('a refresh share is outdated by the next landing even with no load started between (model seed 1376437292)', async () => {
    const { loader, cache } = setup();
    const a = start(() => cache.get(param('/p', true), { refresh: true }));
    await settle();
    const b = start(() => cache.get(param('/p', false), { refresh: true }));
    await settle();
    // The first says /p is a String (v1, shared by both flags); the second, a SecureString now (v2).
    loader.loads[0]!.resolve({ body: Buffer.from('v1'), plain: true, ids: ['/p'] });
    await settle();
    loader.loads[1]!.resolve({ body: Buffer.from('v2'), ids: ['/p'] });
    assert.equal(await outcome(a), 'v1 miss');
    assert.equal(await outcome(b), 'v2 miss');
    const zero = start(() => cache.get(param('/p', false), { ttlMs: 0 }));
    await settle();
    assert.equal(loader.loads.length, 3, 'the String share from before the news was not answered');
    loader.loads[2]!.resolve({ body: Buffer.from('v3'), ids: ['/p'] });
    assert.equal(await outcome(zero), 'v3 miss');
  });

  test("a ttl=0 answer's one-second share goes with a NotFound through another id (model seed 1376034302)", async () => {
    const { loader, cache } = setup();
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf';
    // ttl=0 by name: v1, kept nowhere but in the share, which knows the ids the answer named.
    const zero = start(() => cache.get(secret('k'), { ttlMs: 0 }));
    await settle();
    loader.only().resolve({ body: Buffer.from('v1'), ids: ['k', arn] });
    assert.equal(await outcome(zero), 'v1 miss');
    // The secret is deleted; a read by ARN finds it gone (no entry ties the ARN to the name).
    const byArn = start(() => cache.get(secret(arn)));
    await settle();
    loader.loads[1]!.reject(notFound());
    assert.equal(await outcome(byArn), 'ResourceNotFoundException');
    // A refreshNow by name within the same second: not the share's older v1; it asks again.
    const fresh = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    assert.equal(loader.loads.length, 3, 'the share from before the NotFound was not answered');
    loader.loads[2]!.reject(notFound());
    assert.equal(await outcome(fresh), 'ResourceNotFoundException');
  });

  test('a load started before a refreshNow found the object gone answers its reader and stores nothing', async () => {
    const { loader, cache } = setup();
    const r1 = start(() => cache.get(secret('k')));
    await settle();
    const r2 = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    loader.loads[1]!.reject(notFound());
    assert.equal(await outcome(r2), 'ResourceNotFoundException');
    loader.loads[0]!.resolve(body('v1'));
    assert.equal(await outcome(r1), 'v1 miss');
    const r3 = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 1, 'not stored: asked again');
    loader.only().reject(notFound());
    assert.equal(await outcome(r3), 'ResourceNotFoundException');
  });

  test('a one-second share older than news through another id does not vouch for an older load', async () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf';
    const ids = ['k', arn];
    const { loader, cache } = setup();
    const r0 = start(() => cache.get(secret('k'), { ttlMs: 0 }));
    await settle();
    loader.only().resolve({ body: Buffer.from('v1'), ids });
    assert.equal(await outcome(r0), 'v1 miss');
    const r1 = start(() => cache.get(secret('k')));
    await settle();
    const r2 = start(() => cache.get(secret(arn), { refresh: true }));
    await settle();
    assert.equal(loader.open.length, 2);
    loader.loads[2]!.resolve({ body: Buffer.from('v2'), ids });
    assert.equal(await outcome(r2), 'v2 miss');
    loader.loads[1]!.resolve({ body: Buffer.from('v1'), ids });
    assert.equal(await outcome(r1), 'v1 miss');
    const r3 = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 1, 'the older v1 was not stored');
    loader.only().resolve({ body: Buffer.from('v2'), ids });
    assert.equal(await outcome(r3), 'v2 miss');
  });

  test('an entry the news could not check (the other decryption flag) does not vouch for an older load', async () => {
    const arn = 'arn:aws:ssm:us-east-1:123456789012:parameter/p';
    const ids = ['/p', arn];
    const s = setup();
    await cached(s, param('/p'), { body: Buffer.from('enc1'), ids });
    const r1 = start(() => s.cache.get(param('/p'), { refresh: true }));
    await settle();
    const r2 = start(() => s.cache.get(param(arn, true), { refresh: true }));
    await settle();
    assert.equal(s.loader.open.length, 2);
    s.loader.loads[2]!.resolve({ body: Buffer.from('dec2'), ids });
    assert.equal(await outcome(r2), 'dec2 miss');
    s.loader.loads[1]!.resolve({ body: Buffer.from('enc1'), ids });
    assert.equal(await outcome(r1), 'enc1 miss');
    const r3 = start(() => s.cache.get(param('/p')));
    await settle();
    assert.equal(s.loader.open.length, 1, 'asked again rather than trusted');
    s.loader.only().resolve({ body: Buffer.from('enc2'), ids });
    assert.equal(await outcome(r3), 'enc2 miss');
  });

  test('a decrypted refresh through an ARN keeps the encrypted entry of its name: it cannot compare them', async () => {
    const arn = 'arn:aws:ssm:us-east-1:123456789012:parameter/p';
    const ids = ['/p', arn];
    const s = setup();
    await cached(s, param('/p'), { body: Buffer.from('enc'), ids });
    const r = start(() => s.cache.get(param(arn, true), { refresh: true }));
    await settle();
    s.loader.only().resolve({ body: Buffer.from('dec'), ids });
    assert.equal(await outcome(r), 'dec miss');
    assert.equal(await outcome(start(() => s.cache.get(param('/p')))), 'enc hit');
  });

  test('values read before a NotFound (prefetch’s discovery) are not stored after it, even once released early', async () => {
    const { loader, cache } = setup();
    const at = cache.reserve();
    const r0 = start(() => cache.get(secret('k')));
    await settle();
    loader.only().reject(notFound());
    assert.equal(await outcome(r0), 'ResourceNotFoundException');
    const batch = cache.getMany([secret('k')], { readAt: at.readAt });
    await settle();
    at.release();
    loader.only().resolve([{ ok: true, loaded: body('old') }]);
    const [x] = await batch;
    assert.ok(x?.ok);
    const r1 = start(() => cache.get(secret('k')));
    await settle();
    assert.equal(loader.open.length, 1, 'the value read before the NotFound was not stored');
    loader.only().reject(notFound());
    assert.equal(await outcome(r1), 'ResourceNotFoundException');
  });
});

describe('marks and shares on their own', () => {
  test('landing again at the same number does not count as raising a mark: it still goes first for room', () => {
    const m = new Marks({ maxItems: 2, maxBytes: 1 << 20 });
    m.land('a', 3, 1);
    m.land('b', 5, 1);
    m.land('a', 3, 1);
    m.land('c', 7, 1);
    assert.equal(m.floor, 3, 'a, raised least recently, went');
    assert.equal(m.landed('b'), 5);
  });

  /** A clock whose timers never fire: a purge that runs late. */
  class LateClock implements Clock {
    t = 0;
    now(): number {
      return this.t;
    }
    setTimeout(): Timer {
      return { cancel: () => {} };
    }
  }
  const share = (startedAt: number, stamp: number): Share => ({
    startedAt,
    seq: stamp,
    stamp,
    body: Buffer.from('x'),
    error: undefined,
    ids: [],
  });

  test('a share is answered only inside its second, even when the purge runs late', () => {
    const clock = new LateClock();
    const s = new Shares(clock, 1000, { maxItems: 10, maxBytes: 1 << 20 });
    assert.equal(s.get('none'), undefined);
    s.set('k', share(0, 1));
    clock.t = 999;
    assert.ok(s.get('k'));
    clock.t = 1000;
    assert.equal(s.get('k'), undefined, 'its second is over');
  });

  test('the oldest stamp is the lowest held, whatever the order they came in', () => {
    const s = new Shares(new LateClock(), 1000, { maxItems: 10, maxBytes: 1 << 20 });
    s.set('a', share(0, 5));
    s.set('b', share(0, 3));
    s.set('c', share(0, 4));
    assert.equal(s.oldestStamp, 3);
  });

  test('after a purge, the next comes when the earliest share left is due', async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const s = new Shares(clock, 1000, { maxItems: 10, maxBytes: 1 << 20 });
    s.set('x', share(t0, 1));
    s.set('y', share(t0 + 200, 2));
    s.set('z', share(t0 + 100, 3));
    await clock.advance(1000);
    assert.equal(s.count, 2, 'x went at the end of its second');
    await clock.advance(100);
    assert.equal(s.count, 1, 'z went at the end of its own');
    await clock.advance(100);
    assert.equal(s.count, 0);
  });
});

describe('the id index beside the entries', () => {
  test('an item too large to store leaves nothing behind in the id index', async () => {
    const s = setup({ maxBytes: 1000 });
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf';
    await cached(s, secret('k'), { body: Buffer.alloc(2000, 'x'), ids: ['k', arn] });
    assert.equal(s.cache.entries, 0, 'larger than the whole budget: not stored');
    // The index is private; it must stay within the entries it indexes (one per id of a stored entry).
    const byId = (s.cache as unknown as { byId: Map<string, Set<string>> }).byId;
    assert.equal(byId.size, 0);
    await cached(s, secret('j'), { body: Buffer.from('small'), ids: ['j'] });
    assert.equal(byId.size, 1, 'a stored entry is indexed by its id');
  });
});

describe('joining, through the ids of the object', () => {
  test('a read by name does not join a load started before a refreshNow by ARN landed', async () => {
    const s = setup();
    const ARN = 'arn:aws:ssm:eu-west-1:123456789012:parameter';
    const older = start(() => s.cache.get(param('/a')));
    await settle();
    const held = s.loader.only();
    const refresh = start(() => s.cache.get(param(`${ARN}/a`), { refresh: true }));
    await settle();
    s.loader.loads[1]!.resolve({ body: Buffer.from('v2'), plain: true, ids: [`${ARN}/a`, '/a'] });
    assert.equal(await outcome(refresh), 'v2 miss');
    const again = start(() => s.cache.get(param('/a')));
    await settle();
    assert.equal(s.loader.open.length, 2, 'a load of its own');
    s.loader.loads[2]!.resolve({ body: Buffer.from('v2'), plain: true });
    held.resolve({ body: Buffer.from('v1'), plain: true });
    assert.equal(await outcome(again), 'v2 miss', 'not the older answer');
    assert.equal(await outcome(older), 'v1 miss');
  });
});
