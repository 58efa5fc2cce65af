// What landing an answer does to the rest of the cache: ttl=0 answers, answers through another id of the
// object, NotFound with and without a selector, the refresh share, listings and the news they must agree
// with, entries past their stale window, and the wait limit's error. On a fake clock, against a loader
// whose every answer the test releases in the order it chooses.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AwsCallError } from '../src/aws/types.ts';
import { type Answer, type ItemCache, JOIN_LIMIT_MS } from '../src/cache/index.ts';
import type { Loaded, PathRequest } from '../src/items.ts';
import { type PathListing, PathTooLargeError } from '../src/loader/index.ts';
import {
  ARN,
  listing,
  load,
  notFound,
  outcome,
  param,
  paramNotFound,
  STALE,
  sec,
  secret,
  setupCache as setup,
  start,
  str,
  TTL,
  WAIT,
} from './helpers/cache-harness.ts';
import { body, settle } from './helpers/fake-time.ts';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf';

const secretAnswer = (text: string): Loaded => ({ body: Buffer.from(text), ids: ['k', SECRET_ARN] });

type Setup = ReturnType<typeof setup>;

/** Reads `r`: `'x hit'` when answered without a load; else `'load'` (the load is left open, then answered). */
async function peekRead(s: Setup, read: () => Answer | Promise<Answer>): Promise<string> {
  const before = s.loader.loads.length;
  const p = start(read);
  await settle();
  if (s.loader.loads.length === before) return outcome(p);
  // Good for an item or a listing.
  s.loader.loads[before]!.resolve({ body: Buffer.from('fresh'), items: [] } as PathListing);
  await p;
  return 'load';
}

describe('ttl=0 answers', () => {
  test('a ttl=0 answer that says otherwise drops the entry; one that agrees keeps it', async () => {
    const s = setup();
    assert.equal(await load(s, () => s.cache.get(secret('k')), body('v1')), 'v1 miss');
    assert.equal(await load(s, () => s.cache.get(secret('k'), { ttlMs: 0 }), body('v1')), 'v1 miss');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'))), 'v1 hit', 'confirmed: kept');
    await s.clock.advance(REFRESH_SHARE);
    assert.equal(await load(s, () => s.cache.get(secret('k'), { ttlMs: 0 }), body('v2')), 'v2 miss');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'))), 'load', 'contradicted: gone, not v1');
    assert.equal(s.cache.entries, 1, 'only what the last plain read stored');
  });

  test('a refreshNow read joined by a ttl=0 read stores with its own TTL', async () => {
    const s = setup();
    const a = start(() => s.cache.get(secret('k'), { refresh: true }));
    const b = start(() => s.cache.get(secret('k'), { ttlMs: 0 }));
    await settle();
    s.loader.only().resolve(body('v1'));
    assert.equal(await outcome(a), 'v1 miss');
    assert.equal(await outcome(b), 'v1 miss');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'))), 'v1 hit');
  });

  test('a ttl=0 read joined by a refreshNow read: what it loads is kept, with the TTL the refresh asked', async () => {
    const s = setup();
    const a = start(() => s.cache.get(secret('k'), { ttlMs: 0 }));
    const b = start(() => s.cache.get(secret('k'), { refresh: true }));
    await settle();
    s.loader.only().resolve(body('v1'));
    assert.equal(await outcome(a), 'v1 miss');
    assert.equal(await outcome(b), 'v1 miss');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'))), 'v1 hit');
  });

  test('reads sharing a load keep what it brings as long as the shortest ttl asked, not longer', async () => {
    const s = setup();
    const short = start(() => s.cache.get(secret('k'), { ttlMs: 2000 }));
    await settle();
    const plain = start(() => s.cache.get(secret('k')));
    await settle();
    s.loader.only().resolve(body('v1'));
    assert.equal(await outcome(short), 'v1 miss');
    assert.equal(await outcome(plain), 'v1 miss');
    await s.clock.advance(2000);
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'))), 'load', 'kept 2 s, not the TTL');
  });
});

const REFRESH_SHARE = 1000;

describe('a refresh answer through one id speaks for the others', () => {
  test("a refreshNow by name drops the ARN's entry that says otherwise, keeps one that agrees", async () => {
    const s = setup();
    const byArn = secret(SECRET_ARN);
    assert.equal(await load(s, () => s.cache.get(byArn), secretAnswer('v1')), 'v1 miss');
    assert.equal(
      await load(s, () => s.cache.get(secret('k'), { refresh: true }), secretAnswer('v1')),
      'v1 miss',
    );
    assert.equal(await peekRead(s, () => s.cache.get(byArn)), 'v1 hit', 'agrees: kept');
    await s.clock.advance(REFRESH_SHARE);
    assert.equal(
      await load(s, () => s.cache.get(secret('k'), { refresh: true }), secretAnswer('v2')),
      'v2 miss',
    );
    assert.equal(
      await load(s, () => s.cache.get(byArn), secretAnswer('v2')),
      'v2 miss',
      'says otherwise: gone',
    );
  });

  test("a SecureString's refresh drops the other id's entry of its own flag, not the other flag's", async () => {
    const s = setup();
    const name = '/app/s';
    const arn = `${ARN}${name}`;
    assert.equal(await load(s, () => s.cache.get(param(arn, false)), sec('enc1', name)), 'enc1 miss');
    assert.equal(await load(s, () => s.cache.get(param(arn, true)), sec('dec1', name)), 'dec1 miss');
    assert.equal(
      await load(s, () => s.cache.get(param(name, true), { refresh: true }), sec('dec2', name)),
      'dec2 miss',
    );
    assert.equal(
      await peekRead(s, () => s.cache.get(param(arn, false))),
      'enc1 hit',
      'the other flag reads otherwise',
    );
    assert.equal(await peekRead(s, () => s.cache.get(param(arn, true))), 'load', 'its own flag: dropped');
  });

  test("a String's refresh through one flag drops the other id's String entry read with the other flag", async () => {
    const s = setup();
    const name = '/app/p';
    const arn = `${ARN}${name}`;
    assert.equal(await load(s, () => s.cache.get(param(arn, false)), str('s1', name)), 's1 miss');
    assert.equal(
      await load(s, () => s.cache.get(param(name, true), { refresh: true }), str('s2', name)),
      's2 miss',
    );
    assert.equal(await peekRead(s, () => s.cache.get(param(arn, false))), 'load');
  });

  test("a refresh that finds a String now a SecureString drops the other id's String entry", async () => {
    const s = setup();
    const name = '/app/q';
    const arn = `${ARN}${name}`;
    assert.equal(await load(s, () => s.cache.get(param(arn, false)), str('s1', name)), 's1 miss');
    assert.equal(
      await load(s, () => s.cache.get(param(name, true), { refresh: true }), sec('d2', name)),
      'd2 miss',
    );
    assert.equal(await peekRead(s, () => s.cache.get(param(arn, false))), 'load');
  });
});

describe('NotFound', () => {
  test('a NotFound through one flag of a versioned read evicts both flags of that version', async () => {
    for (const [first, second] of [
      [false, true],
      [true, false],
    ] as const) {
      const s = setup();
      const v = (dec: boolean) => param('/p', dec, { version: '3' });
      assert.equal(await load(s, () => s.cache.get(v(first)), sec('a')), 'a miss');
      assert.equal(await load(s, () => s.cache.get(v(second)), sec('b')), 'b miss');
      assert.equal(
        await load(s, () => s.cache.get(v(second), { refresh: true }), paramNotFound()),
        'ParameterNotFound',
      );
      assert.equal(await peekRead(s, () => s.cache.get(v(first))), 'load', `flag ${first} evicted too`);
    }
  });

  test("a NotFound of a versioned read evicts the version's String entry", async () => {
    const s = setup();
    const v = (dec: boolean) => param('/p', dec, { version: '3' });
    assert.equal(await load(s, () => s.cache.get(v(false)), str('a')), 'a miss');
    assert.equal(
      await load(s, () => s.cache.get(v(true), { refresh: true }), paramNotFound()),
      'ParameterNotFound',
    );
    assert.equal(await peekRead(s, () => s.cache.get(v(false))), 'load');
  });

  test('a NotFound of a secret by stage evicts that stage, never served stale after', async () => {
    const s = setup();
    const staged = secret('k', { versionStage: 'AWSPREVIOUS' });
    assert.equal(await load(s, () => s.cache.get(staged), body('old')), 'old miss');
    assert.equal(
      await load(s, () => s.cache.get(staged, { refresh: true }), notFound()),
      'ResourceNotFoundException',
    );
    assert.equal(await peekRead(s, () => s.cache.get(staged)), 'load');
  });

  test('a NotFound by ARN drops listings that show the parameter under its name', async () => {
    const s = setup();
    const name = '/app/x';
    const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };
    assert.equal(await load(s, () => s.cache.get(param(name)), str('x1', name)), 'x1 miss');
    assert.equal(await load(s, () => s.cache.getPath(p), listing('L', [['/app/y', 'y1']])), 'L miss');
    // The listing does not show x: a NotFound of x agrees with it.
    assert.equal(
      await load(s, () => s.cache.get(param(`${ARN}${name}`), { refresh: true }), paramNotFound()),
      'ParameterNotFound',
    );
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'L hit');
    await s.clock.advance(REFRESH_SHARE);
    assert.equal(await load(s, () => s.cache.get(param(name)), str('x2', name)), 'x2 miss');
    await s.clock.advance(TTL + 1);
    assert.equal(
      await load(
        s,
        () => s.cache.getPath(p),
        listing('LX', [
          ['/app/x', 'x2'],
          ['/app/y', 'y1'],
        ]),
      ),
      'LX miss',
    );
    assert.equal(
      await load(s, () => s.cache.get(param(`${ARN}${name}`), { refresh: true }), paramNotFound()),
      'ParameterNotFound',
    );
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'load', 'the listing showing x is gone');
  });

  test("a secret's NotFound or refresh never touches a parameter listing with the same name", async () => {
    const s = setup();
    const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };
    assert.equal(
      await load(s, () => s.cache.get(secret('/app/x')), { body: Buffer.from('s1'), ids: ['/app/x'] }),
      's1 miss',
    );
    assert.equal(await load(s, () => s.cache.getPath(p), listing('L', [['/app/x', 'x1']])), 'L miss');
    assert.equal(
      await load(s, () => s.cache.get(secret('/app/x'), { refresh: true }), {
        body: Buffer.from('s2'),
        ids: ['/app/x'],
      }),
      's2 miss',
    );
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'L hit');
    await s.clock.advance(REFRESH_SHARE);
    assert.equal(
      await load(s, () => s.cache.get(secret('/app/x'), { refresh: true }), notFound()),
      'ResourceNotFoundException',
    );
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'L hit');
  });

  test('a NotFound from a plain read replaces the refresh share: refreshNow answers it without a load', async () => {
    const s = setup();
    assert.equal(await load(s, () => s.cache.get(secret('k'), { refresh: true }), body('v1')), 'v1 miss');
    await s.clock.advance(10);
    // A read that takes only 5 ms for fresh loads anew; the object is gone by then.
    assert.equal(
      await load(s, () => s.cache.get(secret('k'), { ttlMs: 5 }), notFound()),
      'ResourceNotFoundException',
    );
    const loads = s.loader.loads.length;
    assert.equal(
      await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })),
      'ResourceNotFoundException',
    );
    assert.equal(s.loader.loads.length, loads);
  });

  test('a NotFound from a plain read leaves no share of its own: a refreshNow after it asks upstream', async () => {
    const s = setup();
    assert.equal(await load(s, () => s.cache.get(secret('k')), notFound()), 'ResourceNotFoundException');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })), 'load');
  });

  test('a NotFound from a load older than the refresh share drops the share: refreshNow asks again', async () => {
    const s = setup();
    const older = start(() => s.cache.get(secret('k')));
    await settle();
    const held = s.loader.only();
    assert.equal(await load(s, () => s.cache.get(secret('k'), { refresh: true }), body('v1')), 'v1 miss');
    held.reject(notFound());
    assert.equal(await outcome(older), 'ResourceNotFoundException');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })), 'load');
  });
});

describe('listings and the news they must agree with', () => {
  const p: PathRequest = { path: '/app', recursive: false, withDecryption: false };
  const L = () => listing('L', [['/app/a', 'a1']]);

  test("a refreshNow under another path, or a name that only starts like the listing's path, leaves it alone", async () => {
    for (const path of ['/app', '/app/']) {
      const s = setup();
      const lp = { ...p, path };
      assert.equal(await load(s, () => s.cache.getPath(lp), L()), 'L miss');
      for (const name of ['/apple', '/other/x']) {
        assert.equal(await load(s, () => s.cache.get(param(name), { refresh: true }), str('n')), 'n miss');
      }
      assert.equal(await peekRead(s, () => s.cache.getPath(lp)), 'L hit', path);
    }
  });

  test('a refreshNow of a direct child the non-recursive listing leaves out drops it', async () => {
    for (const path of ['/app', '/app/']) {
      const s = setup();
      const lp = { ...p, path };
      assert.equal(await load(s, () => s.cache.getPath(lp), L()), 'L miss');
      assert.equal(await load(s, () => s.cache.get(param('/app/b'), { refresh: true }), str('b')), 'b miss');
      assert.equal(await peekRead(s, () => s.cache.getPath(lp)), 'load', path);
    }
  });

  test('a refreshNow by ARN, answered with the name, drops the listing that shows it otherwise', async () => {
    const s = setup();
    assert.equal(await load(s, () => s.cache.getPath(p), L()), 'L miss');
    assert.equal(
      await load(s, () => s.cache.get(param(`${ARN}/app/a`), { refresh: true }), str('a2', '/app/a')),
      'a2 miss',
    );
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'load');
  });

  test("a SecureString's refresh drops its own flag's listing that shows it otherwise", async () => {
    const s = setup();
    const dp = { ...p, withDecryption: true };
    const withS = { body: Buffer.from('L'), items: [{ request: param('/app/s', true), loaded: sec('d1') }] };
    assert.equal(await load(s, () => s.cache.getPath(dp), withS), 'L miss');
    assert.equal(
      await load(s, () => s.cache.get(param('/app/s', true), { refresh: true }), sec('d2')),
      'd2 miss',
    );
    assert.equal(await peekRead(s, () => s.cache.getPath(dp)), 'load');
  });

  test('an answer that is not a refresh leaves the listings alone', async () => {
    const s = setup();
    assert.equal(await load(s, () => s.cache.getPath(p), L()), 'L miss');
    await s.clock.advance(10);
    assert.equal(await load(s, () => s.cache.get(param('/app/a'), { ttlMs: 5 }), str('a2')), 'a2 miss');
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'L hit');
  });

  test('a listing in flight is stored after a refresh elsewhere', async () => {
    const s = setup();
    const l = start(() => s.cache.getPath(p));
    await settle();
    const held = s.loader.only();
    assert.equal(await load(s, () => s.cache.get(param('/other/x'), { refresh: true }), str('x')), 'x miss');
    held.resolve(L());
    assert.equal(await outcome(l), 'L miss');
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'L hit');
  });

  test('a listing made outside the cache (SnapStart window) is no listing in flight after it', async () => {
    const s = setup();
    s.cache.restoreWindow();
    assert.equal(await load(s, () => s.cache.getPath(p), L()), 'L miss');
    s.cache.clear();
    assert.equal(await load(s, () => s.cache.get(param('/app/a'), { refresh: true }), str('a2')), 'a2 miss');
  });

  test('an older listing that lands after a newer one: stored only if it agrees, else neither is kept', async () => {
    for (const [late, kept] of [
      ['L', true],
      ['old', false],
    ] as const) {
      const s = setup();
      const older = start(() => s.cache.getPath(p));
      await settle();
      const held = s.loader.only();
      await s.clock.advance(JOIN_LIMIT_MS);
      assert.equal(
        await load(s, () => s.cache.getPath(p), L()),
        'L miss',
        'past the join limit: a newer load',
      );
      held.resolve(listing(late, [['/app/a', 'a1']]));
      assert.equal(await outcome(older), `${late} miss`);
      assert.equal(await peekRead(s, () => s.cache.getPath(p)), kept ? 'L hit' : 'load', late);
    }
  });

  test('a listing whose one item a newer load contradicts is not stored', async () => {
    const s = setup();
    const l = start(() => s.cache.getPath(p));
    await settle();
    const held = s.loader.only();
    assert.equal(await load(s, () => s.cache.get(param('/app/a')), str('a2')), 'a2 miss');
    held.resolve(
      listing('L', [
        ['/app/a', 'a1'],
        ['/app/b', 'b1'],
      ]),
    );
    assert.equal(await outcome(l), 'L miss');
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'load');
  });
});

describe('entries past their stale window', () => {
  test('an entry found past its stale window is dropped at once, not kept while its load runs', async () => {
    for (const [read, answer] of [
      [secret('k'), body('v1')],
      [param('/s'), str('v1')],
      [param('/s', true), sec('v1')],
    ] as const) {
      const s = setup();
      assert.equal(await load(s, () => s.cache.get(read), answer), 'v1 miss');
      assert.equal(s.cache.entries, 1);
      await s.clock.advance(TTL + STALE + 1);
      const again = start(() => s.cache.get(read));
      await settle();
      assert.equal(s.cache.entries, 0, 'dropped when found past the window');
      s.loader.only().reject(new AwsCallError('InternalFailure', 'boom', 'server', 500));
      await again.catch(() => {});
    }
  });

  test('a listing found past its stale window is dropped at once', async () => {
    const s = setup();
    const p: PathRequest = { path: '/app', recursive: false, withDecryption: false };
    assert.equal(await load(s, () => s.cache.getPath(p), { body: Buffer.from('L'), items: [] }), 'L miss');
    await s.clock.advance(TTL + STALE + 1);
    const again = start(() => s.cache.getPath(p));
    await settle();
    assert.equal(s.cache.entries, 0);
    s.loader.only().reject(new AwsCallError('InternalFailure', 'boom', 'server', 500));
    await again.catch(() => {});
  });

  test('a read with a ttl finds the entry of its own key, and the String entry of its name', async () => {
    const s = setup();
    assert.equal(await load(s, () => s.cache.get(secret('k')), body('v1')), 'v1 miss');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'), { ttlMs: TTL })), 'v1 hit');
    assert.equal(await load(s, () => s.cache.get(param('/s', true)), sec('d1')), 'd1 miss');
    assert.equal(await peekRead(s, () => s.cache.get(param('/s', true), { ttlMs: TTL })), 'd1 hit');
  });
});

describe('the wait limit', () => {
  test('a read upstream leaves unanswered gets a timeout error that says how long it waited', async () => {
    const s = setup();
    const r = start(() => s.cache.get(secret('k')));
    await settle();
    await s.clock.advance(WAIT);
    const e = await r.then(
      () => undefined,
      (x: unknown) => x,
    );
    assert.ok(e instanceof AwsCallError);
    assert.equal(e.code, 'TimeoutError');
    assert.equal(e.kind, 'timeout');
    assert.equal(e.message, `no answer from upstream within ${WAIT} ms`);
    s.loader.only().resolve(body('late'));
  });
});

describe('more of what landing does', () => {
  test('a refresh without a selector leaves the entries of a version alone', async () => {
    const s = setup();
    const v3 = param('/p', false, { version: '3' });
    assert.equal(await load(s, () => s.cache.get(v3), str('three', '/p')), 'three miss');
    assert.equal(
      await load(s, () => s.cache.get(param('/p'), { refresh: true }), str('latest', '/p')),
      'latest miss',
    );
    assert.equal(await peekRead(s, () => s.cache.get(v3)), 'three hit');
  });

  test('news of a parameter answered under another name than it was asked by reaches the listings of that name', async () => {
    const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };
    const asked = param('app/x');
    const known = (text: string): Loaded => ({
      body: Buffer.from(text),
      plain: true,
      ids: [`${ARN}/app/x`, '/app/x'],
    });
    // A refresh answer.
    let s = setup();
    assert.equal(await load(s, () => s.cache.getPath(p), listing('L', [['/app/x', 'x1']])), 'L miss');
    assert.equal(await load(s, () => s.cache.get(asked, { refresh: true }), known('x2')), 'x2 miss');
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'load', 'a refresh that shows x otherwise');
    // A NotFound of what is cached under that name.
    s = setup();
    assert.equal(await load(s, () => s.cache.get(asked), known('x1')), 'x1 miss');
    assert.equal(await load(s, () => s.cache.getPath(p), listing('L', [['/app/x', 'x1']])), 'L miss');
    assert.equal(
      await load(s, () => s.cache.get(asked, { refresh: true }), paramNotFound()),
      'ParameterNotFound',
    );
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'load', 'a NotFound of x');
  });

  test('a listing is not stored when a refresh of one of its items, through the other flag, landed meanwhile', async () => {
    const s = setup();
    const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };
    const l = start(() => s.cache.getPath(p));
    await settle();
    const held = s.loader.only();
    assert.equal(
      await load(s, () => s.cache.get(param(`${ARN}/app/s`, true), { refresh: true }), sec('d2', '/app/s')),
      'd2 miss',
    );
    held.resolve({ body: Buffer.from('L'), items: [{ request: param('/app/s'), loaded: sec('e1') }] });
    assert.equal(await outcome(l), 'L miss');
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'load');
  });

  test('an outdated listing that lands the same as the stored one leaves it', async () => {
    const s = setup();
    const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };
    const older = start(() => s.cache.getPath(p));
    await settle();
    const held = s.loader.only();
    await s.clock.advance(JOIN_LIMIT_MS);
    assert.equal(await load(s, () => s.cache.getPath(p), listing('L', [['/app/a', 'a1']])), 'L miss');
    // The same value: the stored listing stays; the one in flight is outdated all the same.
    assert.equal(await load(s, () => s.cache.get(param('/app/a'), { refresh: true }), str('a1')), 'a1 miss');
    held.resolve(listing('L', [['/app/a', 'a1']]));
    assert.equal(await outcome(older), 'L miss');
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'L hit');
  });

  test('a listing denied is evicted: never stale after', async () => {
    const s = setup();
    const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };
    assert.equal(await load(s, () => s.cache.getPath(p), listing('L', [])), 'L miss');
    await s.clock.advance(TTL);
    const denied = new AwsCallError('AccessDeniedException', 'no', 'aws', 400);
    assert.equal(await load(s, () => s.cache.getPath(p), denied), 'AccessDeniedException');
    const boom = new AwsCallError('InternalFailure', 'boom', 'server', 500);
    assert.equal(await load(s, () => s.cache.getPath(p), boom), 'InternalFailure');
  });

  test('a refresh share is dropped when an older load lands otherwise after it, and is no reason to crash', async () => {
    for (const first of [body('v1'), notFound()] as const) {
      const s = setup();
      const older = start(() => s.cache.get(secret('k')));
      await settle();
      const held = s.loader.only();
      await load(s, () => s.cache.get(secret('k'), { refresh: true }), first);
      held.resolve(body('v2'));
      assert.equal(await outcome(older), 'v2 miss');
      assert.equal(await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })), 'load');
    }
  });

  test("an older refresh that lands after a newer one and agrees keeps the newer one's second", async () => {
    const s = setup();
    const plain = start(() => s.cache.get(secret('k')));
    await settle();
    const c = s.loader.only();
    const a = start(() => s.cache.get(secret('k'), { refresh: true }));
    await settle();
    const held = s.loader.loads[1]!;
    c.resolve(body('v0'));
    assert.equal(await outcome(plain), 'v0 miss');
    await s.clock.advance(10);
    // Something landed since the refresh in flight started: a new refresh does not join it.
    assert.equal(await load(s, () => s.cache.get(secret('k'), { refresh: true }), body('v1')), 'v1 miss');
    held.resolve(body('v1'));
    assert.equal(await outcome(a), 'v1 miss');
    await s.clock.advance(REFRESH_SHARE - 5);
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })), 'v1 hit');
  });
});

describe('past the bound of the marks', () => {
  /** Holds a load of `read`, lands two other keys, then a newer load of `read` past the join limit. */
  async function floorRisen(read: (c: ItemCache) => Answer | Promise<Answer>, newer: Loaded | PathListing) {
    const s = setup({ markBounds: { maxItems: 2, maxBytes: 1 << 20 } });
    const older = start(() => read(s.cache));
    await settle();
    const held = s.loader.only();
    for (const id of ['c1', 'c2'])
      assert.equal(await load(s, () => s.cache.get(secret(id)), body(id)), `${id} miss`);
    await s.clock.advance(JOIN_LIMIT_MS);
    await load(s, () => read(s.cache), newer);
    return { s, older, held };
  }

  test('an item load from below the floor the marks rose to is not stored, even when it agrees', async () => {
    const { s, older, held } = await floorRisen((c) => c.get(secret('k')), body('v1'));
    held.resolve(body('v1'));
    assert.equal(await outcome(older), 'v1 miss');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'))), 'load');
  });

  test('a listing from below the floor the marks rose to does not renew the one stored', async () => {
    const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };
    const { s, older, held } = await floorRisen((c) => c.getPath(p), listing('L', []));
    await s.clock.advance(TTL / 2);
    held.resolve(listing('L', []));
    assert.equal(await outcome(older), 'L miss');
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'L hit', 'the newer listing stays');
    await s.clock.advance(TTL / 2);
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'load', 'and expires when it would have');
  });
});

describe('at the floor the marks rose to', () => {
  /**
   * A load of `read` is held; a listing started just before it lands with no items, which takes no number
   * of its own (its mark: the held load's own number; an item's landing would take the next); a newer
   * load of `read` lands; one more key lands, and the first mark makes room: the floor is now exactly the
   * held load's number.
   */
  async function floorAt(read: (c: ItemCache) => Answer | Promise<Answer>, newer: Loaded | PathListing) {
    const s = setup({ markBounds: { maxItems: 2, maxBytes: 1 << 20 } });
    const other: PathRequest = { path: '/other', recursive: false, withDecryption: false };
    const o = start(() => s.cache.getPath(other));
    await settle();
    const first = s.loader.only();
    const older = start(() => read(s.cache));
    await settle();
    const held = s.loader.loads[1]!;
    first.resolve(listing('o', []));
    assert.equal(await outcome(o), 'o miss');
    await s.clock.advance(JOIN_LIMIT_MS);
    await load(s, () => read(s.cache), newer);
    assert.equal(await load(s, () => s.cache.get(secret('c')), body('c')), 'c miss');
    return { s, older, held };
  }

  test('an item load numbered at the floor is not stored', async () => {
    const { s, older, held } = await floorAt((c) => c.get(secret('k')), body('v1'));
    held.resolve(body('v1'));
    assert.equal(await outcome(older), 'v1 miss');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'))), 'load');
  });

  test('a listing numbered at the floor does not renew the one stored', async () => {
    const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };
    const { s, older, held } = await floorAt((c) => c.getPath(p), listing('L', []));
    await s.clock.advance(TTL / 2);
    held.resolve(listing('L', []));
    assert.equal(await outcome(older), 'L miss');
    await s.clock.advance(TTL / 2);
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'load');
  });
});

describe('the share of a NotFound', () => {
  test('lasts the rest of the second of the share it replaces, not a second of its own', async () => {
    const s = setup();
    assert.equal(
      await load(s, () => s.cache.get(secret('k'), { refresh: true }), secretAnswer('v1')),
      'v1 miss',
    );
    await s.clock.advance(100);
    // A refresh through the ARN lands for every id: the share by name is no longer the newest word.
    assert.equal(
      await load(s, () => s.cache.get(secret(SECRET_ARN), { refresh: true }), secretAnswer('v1')),
      'v1 miss',
    );
    await s.clock.advance(100);
    assert.equal(
      await load(s, () => s.cache.get(secret('k'), { refresh: true }), notFound()),
      'ResourceNotFoundException',
    );
    assert.equal(
      await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })),
      'ResourceNotFoundException',
    );
    await s.clock.advance(REFRESH_SHARE - 200);
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })), 'load');
  });
});

describe('the refresh share', () => {
  test("a refresh through one id that outdates another's share: the next refresh's answer is shared", async () => {
    const s = setup();
    assert.equal(
      await load(s, () => s.cache.get(secret('k'), { refresh: true }), secretAnswer('v1')),
      'v1 miss',
    );
    await s.clock.advance(100);
    assert.equal(
      await load(s, () => s.cache.get(secret(SECRET_ARN), { refresh: true }), secretAnswer('v1')),
      'v1 miss',
    );
    assert.equal(
      await load(s, () => s.cache.get(secret('k'), { refresh: true }), secretAnswer('v2')),
      'v2 miss',
    );
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })), 'v2 hit');
  });

  test('a load from below the floor that agrees with the share leaves it shared', async () => {
    const s = setup({ markBounds: { maxItems: 2, maxBytes: 1 << 20 } });
    const older = start(() => s.cache.get(secret('k')));
    const refresh = start(() => s.cache.get(secret('k'), { refresh: true }));
    const others = ['c1', 'c2'].map((id) => start(() => s.cache.get(secret(id))));
    await settle();
    const [x, a, c1, c2] = s.loader.loads;
    // No load starts from here on: the share's stamp is the newest number given out.
    a!.resolve(body('v1'));
    assert.equal(await outcome(refresh), 'v1 miss');
    c1!.resolve(body('c1'));
    c2!.resolve(body('c2'));
    for (const o of others) await o;
    x!.resolve(body('v1'));
    assert.equal(await outcome(older), 'v1 miss');
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })), 'v1 hit');
  });
});

describe('the share confirmed', () => {
  test('a later load that agrees keeps the share the newest word for the rest of its second', async () => {
    // Room for one entry: the entry that confirmed the share is gone before the next refresh.
    const s = setup({ maxItems: 1 });
    assert.equal(await load(s, () => s.cache.get(secret('k'), { refresh: true }), body('v1')), 'v1 miss');
    await s.clock.advance(10);
    assert.equal(await load(s, () => s.cache.get(secret('k'), { ttlMs: 5 }), body('v1')), 'v1 miss');
    assert.equal(await load(s, () => s.cache.get(secret('z')), body('z')), 'z miss');
    assert.equal(s.cache.entries, 1);
    assert.equal(await peekRead(s, () => s.cache.get(secret('k'), { refresh: true })), 'v1 hit');
  });
});

describe('a path too large', () => {
  test('an outdated listing that lands over an expired too-large answer replaces nothing and answers its read', async () => {
    const s = setup();
    const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };
    assert.match(
      await load(s, () => s.cache.getPath(p), new PathTooLargeError('/app', true)),
      /^PathTooLargeError/,
    );
    await s.clock.advance(TTL);
    const l = start(() => s.cache.getPath(p));
    await settle();
    const held = s.loader.only();
    assert.equal(await load(s, () => s.cache.get(param('/app/a'), { refresh: true }), str('a')), 'a miss');
    held.resolve(listing('L', [['/app/a', 'a']]));
    assert.equal(await outcome(l), 'L miss');
  });
});

describe('a type change, newer wins', () => {
  // An older load of one flag answers the type the parameter had; a newer read of the other flag has
  // landed the type it has now. The older answer is not stored.
  const cases: { olderFlag: boolean; was: 'SecureString' | 'String'; now: 'SecureString' | 'String' }[] = [
    { olderFlag: true, was: 'SecureString', now: 'String' },
    { olderFlag: true, was: 'String', now: 'SecureString' },
    { olderFlag: false, was: 'String', now: 'SecureString' },
  ];
  const answer = (type: 'SecureString' | 'String', value: string) =>
    type === 'SecureString' ? sec(value) : str(value);
  for (const { olderFlag, was, now } of cases) {
    test(`an older load's ${was} answer (read ${olderFlag ? 'with' : 'without'} decryption) does not undo a newer ${now} answer through the other flag`, async () => {
      const s = setup();
      const older = start(() => s.cache.get(param('/p', olderFlag)));
      await settle();
      const held = s.loader.only();
      assert.equal(
        await load(s, () => s.cache.get(param('/p', !olderFlag)), answer(now, `now a ${now}`)),
        `now a ${now} miss`,
      );
      held.resolve(answer(was, `was a ${was}`));
      assert.equal(await outcome(older), `was a ${was} miss`);
      assert.equal(
        await peekRead(s, () => s.cache.get(param('/p', olderFlag))),
        'load',
        'the older answer is not stored',
      );
    });
  }
});

describe('a listing with no items lands at the number of the load started just before', () => {
  // Such a landing takes no number of its own: its mark is the newest number given out, the newer
  // load's own. That load started before the answer landed: "at or below a mark".
  const p: PathRequest = { path: '/app', recursive: true, withDecryption: false };

  /** An older listing load held past the join limit, and a newer one of the same path started after it. */
  async function twoListings() {
    const s = setup();
    const first = start(() => s.cache.getPath(p));
    await settle();
    await s.clock.advance(JOIN_LIMIT_MS);
    const second = start(() => s.cache.getPath(p));
    await settle();
    assert.equal(s.loader.open.length, 2, 'the older load, no progress within the join limit, is not joined');
    return { s, first, second, older: s.loader.loads[0]!, newer: s.loader.loads[1]! };
  }

  test('a listing denied after a newer load of it started: the next read does not join that load', async () => {
    const { s, first, second, older, newer } = await twoListings();
    older.reject(paramNotFound('AccessDeniedException'));
    assert.equal(await outcome(first), 'AccessDeniedException');
    const third = start(() => s.cache.getPath(p));
    await settle();
    assert.equal(
      s.loader.open.length,
      2,
      'a load of its own: the newer one started before the denial landed',
    );
    s.loader.loads[2]!.resolve(listing('L3', []));
    newer.resolve(listing('L2', []));
    assert.equal(await outcome(third), 'L3 miss');
    assert.equal(await outcome(second), 'L2 miss');
  });

  test('the newer load, landing otherwise than the older one stored meanwhile, is not stored, and that one goes', async () => {
    const { s, first, second, older, newer } = await twoListings();
    older.resolve(listing('old', []));
    assert.equal(await outcome(first), 'old miss');
    newer.resolve(listing('new', []));
    assert.equal(await outcome(second), 'new miss');
    assert.equal(await peekRead(s, () => s.cache.getPath(p)), 'load', 'neither is trusted');
  });
});

describe("a NotFound and another id's refresh share", () => {
  test("a NotFound by name drops the share of the ARN's refresh: a later load of the same bytes does not bring it back", async () => {
    const s = setup();
    const byArn = param(`${ARN}/a`);
    assert.equal(await load(s, () => s.cache.get(byArn, { refresh: true }), str('v', '/a')), 'v miss');
    assert.equal(await load(s, () => s.cache.get(param('/a')), paramNotFound()), 'ParameterNotFound');
    assert.equal(await load(s, () => s.cache.get(byArn), str('v', '/a')), 'v miss');
    // Still inside the first refresh's second: its answer was outdated by the NotFound, and the plain
    // load after it is no refresh to share.
    const p = start(() => s.cache.get(byArn, { refresh: true }));
    await settle();
    assert.equal(s.loader.open.length, 1, 'a refreshNow asks upstream');
    s.loader.only().resolve(str('w', '/a'));
    assert.equal(await outcome(p), 'w miss');
  });
});
