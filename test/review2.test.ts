// A second independent review of the cache core's guarantees (docs/architecture.md, "What you can rely
// on"; docs/http-api.md, "What a read can rely on"): its 21 breaks, each the reviewer's sequence, fixed,
// and asserting what the guarantee says. Same fake-clock style as test/review.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AwsJsonClient } from '../src/aws/client.ts';
import type { Upstream } from '../src/aws/index.ts';
import { AwsCallError } from '../src/aws/types.ts';
import { type Answer, ItemCache, REFRESH_SHARE_MS } from '../src/cache/index.ts';
import { type Clock, systemClock } from '../src/clock.ts';
import type { ItemRequest, Loaded } from '../src/items.ts';
import type { Discovered, Outcome, PathListing } from '../src/loader/index.ts';
import { createLoader } from '../src/loader/index.ts';
import { silentLogger } from '../src/log.ts';
import { prefetch } from '../src/prefetch.ts';
import {
  outcome,
  param,
  paramNotFound,
  readNow,
  secret,
  setupCache as setup,
  start,
  TTL,
  throttled,
  WAIT,
} from './helpers/cache-harness.ts';
import { body, FakeClock, ScriptedLoader, settle } from './helpers/fake-time.ts';
import { collectionsWhile } from './helpers/gc-count.ts';

const ARN = 'arn:aws:ssm:us-east-1:123456789012:parameter/p';
/** A String parameter's answer, with the ids the real loader reports (its Name and ARN). */
const str = (text: string, ids: string[] = ['/p', ARN]): Loaded => ({
  body: Buffer.from(text),
  plain: true,
  ids,
});
/** A SecureString's answer (depends on the flag). */
const sec = (text: string, ids: string[] = ['/p', ARN]): Loaded => ({ body: Buffer.from(text), ids });

/** The one open load not in `known`. */
const newest = (loader: ScriptedLoader, ...known: Array<ScriptedLoader['loads'][number]>) => {
  const open = loader.open.filter((l) => !known.includes(l));
  assert.equal(open.length, 1, `expected one new open load, found ${open.length}`);
  return open[0]!;
};

describe('newer wins, durably: the one-second share', () => {
  test('B1: after a refreshNow by ARN answered v2, a refreshNow by name within the second does not get the older v1 share', async () => {
    const { loader, cache } = setup();
    // refreshNow by name answers v1: shared for a second under its key.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/p'), { refresh: true }),
        (l) => l.resolve(str('v1')),
      ),
      'v1 miss',
    );
    // /p becomes v2; a refreshNow by its ARN (another key, the same object) answers v2.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param(ARN), { refresh: true }),
        (l) => l.resolve(str('v2')),
      ),
      'v2 miss',
    );
    // Nothing runs now, but the shares are alive: the marks they are judged by are kept.
    assert.ok(cache.overhead.marks > 0);
    const got = await readNow(
      loader,
      () => cache.get(param('/p'), { refresh: true }),
      (l) => l.resolve(str('v2')),
    );
    assert.match(got, /^v2 /, `a refreshNow by name after the ARN's refreshNow answered v2 got ${got}`);
  });

  test('B2: after an answer showed a SecureString became a String, a refreshNow within the second does not get the SecureString share', async () => {
    const { loader, cache } = setup({ maxItems: 1 });
    // refreshNow of the SecureString /p (ciphertext, withDecryption=false): shared for a second.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/p'), { refresh: true }),
        (l) => l.resolve(sec('cipher v1')),
      ),
      'cipher v1 miss',
    );
    // /p is put again as a String; a read through withDecryption=true says so (it drops the SecureString entries).
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/p', true)),
        (l) => l.resolve(str('string v2')),
      ),
      'string v2 miss',
    );
    // Another key takes the one slot of the cache (CACHE_SIZE=1): the String entry is evicted.
    await readNow(
      loader,
      () => cache.get(secret('other')),
      (l) => l.resolve(body('o')),
    );
    const got = await readNow(
      loader,
      () => cache.get(param('/p'), { refresh: true }),
      (l) => l.resolve(str('string v2')),
    );
    assert.equal(got, 'string v2 miss', `after the String answer, a refreshNow got ${got}`);
  });
});

describe('a parameter that changes type', () => {
  test('B3: once a refreshNow shows a String became a SecureString, a path listing without decryption no longer shows the String', async () => {
    const { clock, loader, cache } = setup();
    const p = { path: '/a', recursive: false, withDecryption: false };
    const listed: PathListing = {
      body: Buffer.from('listing: /a/x is the String v1'),
      items: [{ request: param('/a/x'), loaded: str('v1', ['/a/x']) }],
    };
    assert.equal(
      await readNow(
        loader,
        () => cache.getPath(p),
        (l) => l.resolve(listed),
      ),
      'listing: /a/x is the String v1 miss',
    );
    // /a/x is put again as a SecureString; a refreshNow through withDecryption=true says so.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/a/x', true), { refresh: true }),
        (l) => l.resolve(sec('plaintext v2', ['/a/x'])),
      ),
      'plaintext v2 miss',
    );
    await clock.advance(REFRESH_SHARE_MS);
    // The single read without decryption no longer gets the String (its entry was dropped)...
    const single = await readNow(
      loader,
      () => cache.get(param('/a/x')),
      (l) => l.resolve(sec('ciphertext v2', ['/a/x'])),
    );
    assert.equal(single, 'ciphertext v2 miss');
    // ...but the listing still shows it.
    const got = await readNow(
      loader,
      () => cache.getPath(p),
      (l) => l.resolve({ body: Buffer.from('listing: /a/x is a SecureString'), items: [] }),
    );
    assert.equal(
      got,
      'listing: /a/x is a SecureString miss',
      `the listing showing the old String was served: ${got}`,
    );
  });

  test('B3b: once a plain read shows a SecureString became a String, a stored listing no longer shows the SecureString', async () => {
    const { loader, cache } = setup();
    const p = { path: '/a', recursive: false, withDecryption: false };
    const listed: PathListing = {
      body: Buffer.from('listing: /a/x is a SecureString (ciphertext v1)'),
      items: [{ request: param('/a/x'), loaded: sec('ciphertext v1', ['/a/x']) }],
    };
    assert.equal(
      await readNow(
        loader,
        () => cache.getPath(p),
        (l) => l.resolve(listed),
      ),
      'listing: /a/x is a SecureString (ciphertext v1) miss',
    );
    // /a/x is put again as a String; a plain read with decryption (no entry for it) says so.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/a/x', true)),
        (l) => l.resolve(str('string v2', ['/a/x'])),
      ),
      'string v2 miss',
    );
    // The item's SecureString entries are gone (withDecryption=false is a hit of the String now)...
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/a/x')),
        (l) => l.resolve(str('string v2', ['/a/x'])),
      ),
      'string v2 hit',
    );
    // ...but the listing still shows the SecureString.
    const got = await readNow(
      loader,
      () => cache.getPath(p),
      (l) => l.resolve({ body: Buffer.from('listing: /a/x is the String v2'), items: [] }),
    );
    assert.equal(
      got,
      'listing: /a/x is the String v2 miss',
      `the listing from before the type change was served: ${got}`,
    );
  });

  test('B4: a String answer that may not store (a refresh was asked meanwhile) still drops the SecureString entries', async () => {
    const { loader, cache } = setup();
    // /p is a SecureString: its plaintext is cached (withDecryption=true).
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/p', true)),
        (l) => l.resolve(sec('old plaintext')),
      ),
      'old plaintext miss',
    );
    // /p is put again as a String. A plain read without decryption loads (no entry for that flag)...
    const plainRead = start(() => cache.get(param('/p')));
    await settle();
    const l1 = loader.only();
    // ...and meanwhile a refreshNow with decryption is asked (it is throttled below).
    const refresh = start(() => cache.get(param('/p', true), { refresh: true }));
    await settle();
    const l2 = newest(loader, l1);
    // The plain read answers: /p is now the String v2.
    l1.resolve(str('string v2'));
    assert.equal(await outcome(plainRead), 'string v2 miss');
    l2.reject(throttled());
    assert.equal(await outcome(refresh), 'ThrottlingException');
    // A read arriving now must not get what /p was before that answer showed its new type.
    const got = await readNow(
      loader,
      () => cache.get(param('/p', true)),
      (l) => l.resolve(str('string v2')),
    );
    assert.match(got, /^string v2 /, `after the String answer, withDecryption=true got ${got}`);
  });
});

describe("a request's ttl only shortens", () => {
  test('B5: a ttl=1 read that joins a load of an expired entry caps what that load keeps, as it does joining any other load', async () => {
    const { clock, loader, cache } = setup();
    // Control: with no entry, a ttl=1 read joining a plain read's load caps what it keeps to 1 s.
    const a0 = start(() => cache.get(secret('fresh')));
    await settle();
    const b0 = start(() => cache.get(secret('fresh'), { ttlMs: 1000 }));
    await settle();
    loader.only().resolve(body('f1'));
    assert.equal(await outcome(b0), 'f1 miss');
    await a0;
    await clock.advance(2000);
    assert.equal(
      await readNow(
        loader,
        () => cache.get(secret('fresh')),
        (l) => l.resolve(body('f2')),
      ),
      'f2 miss',
      'control: the load a ttl=1 read shared was kept 1 s',
    );
    // The same with an entry expired inside the stale window.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(secret('k')),
        (l) => l.resolve(body('v1')),
      ),
      'v1 miss',
    );
    await clock.advance(TTL + 1);
    const a = start(() => cache.get(secret('k')));
    await settle();
    const b = start(() => cache.get(secret('k'), { ttlMs: 1000 }));
    await settle();
    loader.only().resolve(body('v2'));
    assert.equal(await outcome(b), 'v2 miss', 'the ttl=1 read was answered by the load it joined');
    await a;
    await clock.advance(2000);
    const got = await readNow(
      loader,
      () => cache.get(secret('k')),
      (l) => l.resolve(body('v3')),
    );
    assert.equal(got, 'v3 miss', `what a ttl=1 read loaded was kept past its 1 s: ${got}`);
  });
});

describe('the hit path', () => {
  /** Garbage collections while `n` fresh hits of `r` are read (0 when a hit allocates nothing), fewest of three tries. */
  async function collectionsDuring(clock: Clock, r: ItemRequest, answer: Loaded, n: number): Promise<number> {
    const loader = new ScriptedLoader();
    const cache = new ItemCache({
      enabled: true,
      maxItems: 100,
      maxBytes: 1 << 20,
      ttlMs: { ssm: 3_600_000, secretsmanager: 3_600_000 },
      staleIfErrorMs: 0,
      loader,
      waitLimitMs: { ssm: WAIT, secretsmanager: WAIT },
      clock,
      jitter: () => 1,
    });
    // As the server reads a remembered URL: a frozen request, no options.
    Object.freeze(r);
    const first = start(() => cache.get(r));
    await settle();
    loader.only().resolve(answer);
    await first;
    for (let i = 0; i < 100_000; i++) assert.equal(cache.get(r) instanceof Promise, false);
    return collectionsWhile(() => {
      let hits = 0;
      for (let i = 0; i < n; i++) if ((cache.get(r) as Answer).source === 'hit') hits++;
      assert.equal(hits, n);
    });
  }

  test('B6: a fresh hit of a String parameter allocates nothing (it looks its own key up first, and that miss allocates)', async (t) => {
    // Mutation testing instruments every line with counters: what it allocates is not the product's.
    if ((globalThis as { __stryker__?: unknown }).__stryker__ !== undefined) return t.skip('instrumented');
    const gcs = await collectionsDuring(new FakeClock(), param('/k'), str('v', ['/k']), 2_000_000);
    assert.ok(gcs <= 1, `${gcs} garbage collections during 2,000,000 hits`);
  });

  test('B7: a fresh hit on the production clock allocates nothing (process.hrtime() returns a new array, twice per hit)', async (t) => {
    // Mutation testing instruments every line with counters: what it allocates is not the product's.
    if ((globalThis as { __stryker__?: unknown }).__stryker__ !== undefined) return t.skip('instrumented');
    // The monotonic clock (process.uptime) hands back one boxed number a call: 16 bytes a hit, 15 young
    // collections in 2,000,000 hits on Node 20 here. process.hrtime() makes an array: 31. The bound is midway.
    const gcs = await collectionsDuring(systemClock, secret('k'), body('v'), 2_000_000);
    assert.ok(gcs <= 22, `${gcs} garbage collections during 2,000,000 hits`);
  });
});

describe('it actually caches (model counterexamples)', () => {
  test('B8 (model seed 44): a ttl=0 read does not stop a plain read of the other flag that started after it from caching', async () => {
    const { loader, cache } = setup();
    // A ttl=0 read of the String /p without decryption, and a plain read with decryption: two loads.
    const zero = start(() => cache.get(param('/p'), { ttlMs: 0 }));
    await settle();
    const l0 = loader.only();
    const plainRead = start(() => cache.get(param('/p', true)));
    await settle();
    const l1 = newest(loader, l0);
    // Both read v1; the ttl=0 load (kept nowhere) answers first.
    l0.resolve(str('v1'));
    assert.equal(await outcome(zero), 'v1 miss');
    l1.resolve(str('v1'));
    assert.equal(await outcome(plainRead), 'v1 miss');
    // The plain read's answer, the newest, is kept: the next plain read is a hit.
    const got = await readNow(
      loader,
      () => cache.get(param('/p', true)),
      (l) => l.resolve(str('v1')),
    );
    assert.equal(got, 'v1 hit', `a ttl=0 read made the plain read's answer uncacheable: ${got}`);
  });

  test('B9 (model seed 22): a load that answers the value the entry holds keeps it for a TTL from its own answer', async () => {
    const { clock, loader, cache } = setup();
    // Plain reads of the String /p through both flags: two loads (two slots).
    const a = start(() => cache.get(param('/p')));
    await settle();
    const la = loader.only();
    const b = start(() => cache.get(param('/p', true)));
    await settle();
    const lb = newest(loader, la);
    la.resolve(str('v1'));
    assert.equal(await outcome(a), 'v1 miss');
    // The second load is slow: it answers the same v1 a TTL later.
    await clock.advance(TTL + 1);
    lb.resolve(str('v1'));
    assert.equal(await outcome(b), 'v1 miss');
    const got = await readNow(
      loader,
      () => cache.get(param('/p', true)),
      (l) => l.resolve(str('v1')),
    );
    assert.equal(got, 'v1 hit', `the value a load answered a moment ago was not kept: ${got}`);
  });

  test('B10: an older refreshNow that lands while a newer one runs does not make the newer answer uncacheable', async () => {
    const { clock, loader, cache } = setup();
    // refreshNow #1 of secret k hangs; 1.5 s later refreshNow #2 (its own load: the share is over).
    const r1 = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    const l1 = loader.only();
    await clock.advance(1500);
    const r2 = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    const l2 = newest(loader, l1);
    // #1 answers (older: not stored), then #2 answers the newest value.
    l1.resolve(body('v1'));
    assert.equal(await outcome(r1), 'v1 miss');
    l2.resolve(body('v2'));
    assert.equal(await outcome(r2), 'v2 miss');
    // #1 landed first and was stored; #2, started before that landing, says otherwise: neither is trusted
    // (#1's retry may have read later than #2), so the next read asks again and never gets v1.
    const got = await readNow(
      loader,
      () => cache.get(secret('k')),
      (l) => l.resolve(body('v2')),
    );
    assert.equal(got, 'v2 miss', `after refreshNow answered v2: ${got}`);
    // When the two agree, the newer is kept.
    await clock.advance(1500);
    const r3 = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    const l3 = loader.open[0]!;
    await clock.advance(1500);
    const r4 = start(() => cache.get(secret('k'), { refresh: true }));
    await settle();
    const l4 = newest(loader, l3);
    l3.resolve(body('v3'));
    await r3;
    l4.resolve(body('v3'));
    await r4;
    assert.equal(await outcome(start(() => cache.get(secret('k')))), 'v3 hit');
  });
});

describe('one upstream refresh a second per key', () => {
  test('B11: refreshNow reads alternating the two flags of a parameter do not make a load each', async () => {
    const { clock, loader, cache } = setup();
    // A flood within one second: refreshNow of /p without, then with decryption, and so on.
    const reads: Array<Promise<Answer>> = [];
    for (let i = 0; i < 10; i++) {
      reads.push(start(() => cache.get(param('/p', i % 2 === 1), { refresh: true })));
      await settle();
      await clock.advance(10);
    }
    const loads = loader.loads.length;
    for (const l of loader.open) l.resolve(str('v'));
    await Promise.all(reads);
    // Before any answer says what /p is, the first refresh of each flag loads: two, not one per read.
    assert.ok(loads <= 2, `${loads} upstream loads for 10 refreshNow reads of one parameter within 100 ms`);
  });

  test('B11b: refreshNow reads alternating the name and the ARN of a parameter do not make a load each', async () => {
    const { clock, loader, cache } = setup();
    const reads: Array<Promise<Answer>> = [];
    for (let i = 0; i < 10; i++) {
      reads.push(start(() => cache.get(param(i % 2 === 0 ? '/p' : ARN), { refresh: true })));
      await settle();
      await clock.advance(10);
    }
    const loads = loader.loads.length;
    for (const l of loader.open) l.resolve(str('v'));
    await Promise.all(reads);
    // Two keys, each shares one load a second.
    assert.ok(
      loads <= 2,
      `${loads} upstream loads for 10 refreshNow reads of one parameter's two ids within 100 ms`,
    );
  });

  test('B12: once both flags of a String were refreshed together, a refreshNow within the second shares their answer', async () => {
    const { loader, cache } = setup();
    const a = start(() => cache.get(param('/p'), { refresh: true }));
    const b = start(() => cache.get(param('/p', true), { refresh: true }));
    await settle();
    assert.equal(loader.open.length, 2, 'the first refresh of each flag loads (documented)');
    for (const l of loader.open) l.resolve(str('v'));
    assert.equal(await outcome(a), 'v miss');
    assert.equal(await outcome(b), 'v miss');
    // Within the same second: the answers said /p is a String.
    const c = start(() => cache.get(param('/p'), { refresh: true }));
    await settle();
    const more = loader.open.length;
    for (const l of loader.open) l.resolve(str('v'));
    await c;
    assert.equal(
      more,
      0,
      'a third refreshNow within the second went upstream again: neither answer was shared or stored',
    );
  });
});

describe('never stale after NotFound or AccessDenied', () => {
  test('B13: after a NotFound by name, a ttl=0 read by ARN within the second does not get the value shared before it', async () => {
    const { loader, cache } = setup();
    // A ttl=0 read by ARN: its answer is kept nowhere but shared for a second.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param(ARN), { ttlMs: 0 }),
        (l) => l.resolve(str('v1')),
      ),
      'v1 miss',
    );
    // /p is deleted; a refreshNow by name answers NotFound.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/p'), { refresh: true }),
        (l) => l.reject(paramNotFound()),
      ),
      'ParameterNotFound',
    );
    const got = await readNow(
      loader,
      () => cache.get(param(ARN), { ttlMs: 0 }),
      (l) => l.reject(paramNotFound()),
    );
    assert.equal(
      got,
      'ParameterNotFound',
      `the deleted parameter, read by ARN after the NotFound, answered ${got}`,
    );
  });

  test('B14: a ParameterVersionNotFound of one version leaves the parameter and the listings that show it', async () => {
    const { loader, cache } = setup();
    const p = { path: '/a', recursive: false, withDecryption: false };
    const listed: PathListing = {
      body: Buffer.from('listing: /a/x v1'),
      items: [{ request: param('/a/x'), loaded: str('v1', ['/a/x']) }],
    };
    assert.equal(
      await readNow(
        loader,
        () => cache.getPath(p),
        (l) => l.resolve(listed),
      ),
      'listing: /a/x v1 miss',
    );
    // A client asks for a version that does not exist.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/a/x', false, { version: '99' })),
        (l) => l.reject(paramNotFound('ParameterVersionNotFound')),
      ),
      'ParameterVersionNotFound',
    );
    // /a/x is not gone: only version 99 is. The listing (and the item) are still good.
    const got = await readNow(
      loader,
      () => cache.getPath(p),
      (l) => l.resolve(listed),
    );
    assert.equal(got, 'listing: /a/x v1 hit', `a NotFound of version 99 evicted the listing: ${got}`);
  });
});

describe('news of one version or label is not news of the parameter', () => {
  test('B14b: a refreshNow of version 1 (older, as it should be) does not evict the listing that shows the current value', async () => {
    const { loader, cache } = setup();
    const p = { path: '/a', recursive: false, withDecryption: false };
    const listed: PathListing = {
      body: Buffer.from('listing: /a/x v2'),
      items: [{ request: param('/a/x'), loaded: str('v2', ['/a/x']) }],
    };
    assert.equal(
      await readNow(
        loader,
        () => cache.getPath(p),
        (l) => l.resolve(listed),
      ),
      'listing: /a/x v2 miss',
    );
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/a/x', false, { version: '1' }), { refresh: true }),
        (l) => l.resolve(str('v1 (version 1)', ['/a/x'])),
      ),
      'v1 (version 1) miss',
    );
    const got = await readNow(
      loader,
      () => cache.getPath(p),
      (l) => l.resolve(listed),
    );
    assert.equal(
      got,
      'listing: /a/x v2 hit',
      `a refreshNow of version 1 evicted the listing of the current version: ${got}`,
    );
  });
});

describe('newer wins, durably: listings', () => {
  test('B18: a refreshNow by ARN whose answer names no ids still outdates the listing that shows the parameter otherwise', async () => {
    const { clock, loader, cache } = setup();
    const p = { path: '/', recursive: true, withDecryption: false };
    const listed: PathListing = {
      body: Buffer.from('listing: /p v1'),
      items: [{ request: param('/p'), loaded: str('v1', ['/p']) }],
    };
    assert.equal(
      await readNow(
        loader,
        () => cache.getPath(p),
        (l) => l.resolve(listed),
      ),
      'listing: /p v1 miss',
    );
    // /p becomes v2; a refreshNow by its ARN answers v2 (a Loaded without ids: the ARN itself names /p).
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param(ARN), { refresh: true }),
        (l) => l.resolve({ body: Buffer.from('v2'), plain: true }),
      ),
      'v2 miss',
    );
    await clock.advance(REFRESH_SHARE_MS);
    // The single read by name no longer gets v1...
    assert.equal(
      await readNow(
        loader,
        () => cache.get(param('/p')),
        (l) => l.resolve(str('v2')),
      ),
      'v2 miss',
    );
    // ...but the listing does.
    const got = await readNow(
      loader,
      () => cache.getPath(p),
      (l) => l.resolve({ body: Buffer.from('listing: /p v2'), items: [] }),
    );
    assert.equal(got, 'listing: /p v2 miss', `after the refreshNow answered v2, the listing showed ${got}`);
  });
});

describe('gone is gone, and newer wins, for what prefetch had in hand', () => {
  /** A scripted loader that, like the real one, answers a primed request from the value in hand. */
  class PrimingLoader extends ScriptedLoader {
    readonly inHand = new WeakMap<ItemRequest, Loaded>();
    page: (found: Discovered[]) => void = () => {};
    private readonly pageIn = new Promise<Discovered[]>((resolve) => {
      this.page = resolve;
    });
    override many(
      rs: readonly ItemRequest[],
      ctx?: Parameters<ScriptedLoader['many']>[1],
    ): Promise<Outcome[]> {
      const held = rs.map((r) => this.inHand.get(r));
      if (held.every((x) => x !== undefined))
        return Promise.resolve(held.map((loaded) => ({ ok: true, loaded: loaded! })));
      return super.many(rs, ctx);
    }
    primed(items: readonly Discovered[]): ItemRequest[] {
      for (const x of items) this.inHand.set(x.request, x.loaded);
      return items.map((x) => x.request);
    }
    async *secretsTagged(): AsyncGenerator<{ found: Discovered[]; errors: number }, void, undefined> {
      yield { found: await this.pageIn, errors: 0 };
    }
  }

  test('B15: a secret that answered NotFound is not brought back by a tag discovery page read before the deletion', async () => {
    const loader = new PrimingLoader();
    const { cache } = setup({}, loader);
    // Prefetch searches the tag: its BatchGetSecretValue page is in flight (it reads s = v1).
    const done = prefetch(
      { items: [], tags: [{ key: 'team' }], budget: 10, budgetBytes: 1 << 20, maxJitterMs: 0 },
      { cache, loader: loader as never, log: silentLogger },
    );
    await settle();
    // s is deleted; a client's read answers NotFound.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(secret('s')),
        (l) => l.reject(new AwsCallError('ResourceNotFoundException', 'gone', 'aws', 400)),
      ),
      'ResourceNotFoundException',
    );
    // The discovery page, read before the deletion, arrives; prefetch caches what it found.
    loader.page([{ request: secret('s'), loaded: body('s v1 (deleted)') }]);
    await done;
    const got = await readNow(
      loader,
      () => cache.get(secret('s')),
      (l) => l.reject(new AwsCallError('ResourceNotFoundException', 'gone', 'aws', 400)),
    );
    assert.equal(got, 'ResourceNotFoundException', `after the NotFound answered, a read got ${got}`);
  });
});

describe('keys stay apart: ids of different objects', () => {
  test('B16: a NotFound of secret "app" neither evicts nor answers 404 for the secret "app-secret" read by its partial ARN', async () => {
    const { loader, cache } = setup();
    const partial = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app-secret';
    const answer: Loaded = {
      body: Buffer.from('app-secret value'),
      ids: ['app-secret', `${partial}-AbCdEf`, partial],
    };
    assert.equal(
      await readNow(
        loader,
        () => cache.get(secret(partial), { refresh: true }),
        (l) => l.resolve(answer),
      ),
      'app-secret value miss',
    );
    // Another secret, "app", does not exist.
    assert.equal(
      await readNow(
        loader,
        () => cache.get(secret('app')),
        (l) => l.reject(new AwsCallError('ResourceNotFoundException', 'gone', 'aws', 400)),
      ),
      'ResourceNotFoundException',
    );
    // "-secret" looked like the random suffix of a full ARN: app-secret was taken for an id of "app".
    const refreshed = await readNow(
      loader,
      () => cache.get(secret(partial), { refresh: true }),
      (l) => l.resolve(answer),
    );
    assert.equal(refreshed, 'app-secret value hit', `app-secret, which exists, answered ${refreshed}`);
    const plain = await readNow(
      loader,
      () => cache.get(secret(partial)),
      (l) => l.resolve(answer),
    );
    assert.equal(plain, 'app-secret value hit', `app-secret was evicted by app's NotFound: ${plain}`);
  });
});

describe('nothing runs forever', () => {
  test('B17: a path listing whose pages never end (the same NextToken again and again) stops, as tag discovery does', async () => {
    let pages = 0;
    const CUT = 5000;
    const aws = {
      call: async (operation: string) => {
        assert.equal(operation, 'GetParametersByPath');
        pages++;
        // The test's own safety stop: past CUT pages the "upstream" fails the call.
        if (pages > CUT) throw new AwsCallError('InternalFailure', 'test stop', 'server', 500);
        return { Parameters: [], NextToken: 'the same token' };
      },
    } as unknown as AwsJsonClient;
    const upstream = {
      ssm: aws,
      secretsmanager: aws,
      region: 'us-east-1',
      client: () => aws,
    } as unknown as Upstream;
    const loader = createLoader(upstream, { batchWindowMs: 0, log: silentLogger });
    const progress: number[] = [];
    const outcome = await loader
      .path({ path: '/a', recursive: true, withDecryption: false }, { onProgress: () => progress.push(1) })
      .then(
        () => 'listed',
        (e: unknown) => (e instanceof AwsCallError ? e.code : String(e)),
      );
    // Every page counts as progress: a cache read joins such a listing for as long as it runs.
    assert.ok(
      pages <= 1000,
      `the listing asked for ${pages - 1} empty pages with the same NextToken before anything stopped it (${outcome})`,
    );
  });
});
