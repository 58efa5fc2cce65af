// The tables beside the cache's entries, each on its own: the newer-wins marks (src/cache/marks.ts) and the
// one-second shares (src/cache/shares.ts), their bounds, their pruning and the clock that empties them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Marks } from '../src/cache/marks.ts';
import { Shares } from '../src/cache/shares.ts';
import { FakeClock } from './helpers/fake-time.ts';

describe('marks', () => {
  const big = { maxItems: 100, maxBytes: 1 << 20 };

  test('a landing raises the mark to the newest number given out; a mark never goes down', () => {
    const m = new Marks(big);
    assert.equal(m.landed('k'), 0);
    m.land('k', 7, 1);
    assert.equal(m.landed('k'), 7);
    m.land('k', 6, 1);
    assert.equal(m.landed('k'), 7, 'marks never go down');
    m.land('k', 9, 1);
    assert.equal(m.landed('k'), 9);
    assert.equal(m.landed('other'), 0);
    assert.equal(m.count, 1);
  });

  test('counted in bytes as the cache counts keys (two per character) plus an overhead, given back when dropped', () => {
    const m = new Marks(big);
    m.land('abcd', 1, 1);
    const one = m.bytes;
    assert.ok(one > 8, `${one} bytes: more than the characters`);
    m.land('abcdefgh', 1, 1);
    assert.equal(m.bytes - one, one + 8, 'four more characters, eight more bytes');
    m.land('abcd', 2, 1);
    assert.equal(m.bytes, 2 * one + 8, 'raising a mark again costs nothing');
    m.prune(Number.POSITIVE_INFINITY);
    assert.equal(m.bytes, 0);
    m.land('abcd', 3, 3);
    m.land('abcdefgh', 9, 3);
    m.prune(5);
    assert.equal(m.count, 1);
    assert.equal(m.bytes, one + 8, 'the pruned mark gave its bytes back');
  });

  test('pruned below what is still about; nothing pruned again below the same', () => {
    const m = new Marks(big);
    m.land('a', 3, 1);
    m.land('b', 5, 1);
    m.land('c', 8, 1);
    m.prune(5);
    assert.equal(m.landed('a'), 0, 'a mark below everything still about stops nothing');
    assert.equal(m.landed('b'), 5, 'a mark at the oldest load still about is kept');
    assert.equal(m.count, 2);
    m.land('a', 4, 5);
    m.prune(5);
    assert.equal(m.landed('a'), 4, 'the same as the last prune: no second scan');
    m.prune(6);
    assert.equal(m.landed('a'), 0);
    assert.equal(m.landed('b'), 0);
    assert.equal(m.landed('c'), 8);
    m.clear();
    assert.equal(m.count, 0);
    assert.equal(m.bytes, 0);
  });

  test('over the item bound the least recently raised go, and the floor rises to them', () => {
    const m = new Marks({ maxItems: 2, maxBytes: 1 << 20 });
    m.land('a', 3, 1);
    m.land('b', 5, 1);
    m.land('a', 6, 1);
    assert.equal(m.floor, 0);
    m.land('c', 7, 1);
    assert.equal(m.count, 2, 'at most two');
    assert.equal(m.floor, 5, 'b, raised least recently, went: the floor took its place');
    assert.equal(m.landed('b'), 5, 'and stops what it stopped');
    assert.equal(m.landed('zz'), 5, 'everywhere');
    assert.equal(m.landed('a'), 6);
    m.land('d', 2, 1);
    assert.equal(m.floor, 6, 'a went next');
    m.land('e', 1, 1);
    assert.equal(m.floor, 7, 'then c');
    m.land('f', 1, 1);
    assert.equal(m.floor, 7, 'd, lower than the floor, went: the floor stays where it is');
  });

  test('exactly at the bounds nothing goes; one over, the byte bound too', () => {
    const probe = new Marks(big);
    probe.land('x', 1, 1);
    const each = probe.bytes;
    const m = new Marks({ maxItems: 100, maxBytes: 2 * each });
    m.land('x', 1, 1);
    m.land('y', 2, 1);
    assert.equal(m.count, 2, 'two marks fill the bytes exactly: both kept');
    assert.equal(m.floor, 0);
    m.land('z', 3, 1);
    assert.equal(m.count, 2);
    assert.equal(m.floor, 1);
    const n = new Marks({ maxItems: 2, maxBytes: 1 << 20 });
    n.land('x', 1, 1);
    n.land('y', 2, 1);
    assert.equal(n.count, 2);
    assert.equal(n.floor, 0);
  });

  test('making room prunes first: marks below what is still about go before any raises the floor', () => {
    const m = new Marks({ maxItems: 2, maxBytes: 1 << 20 });
    m.land('a', 3, 1);
    m.land('b', 5, 1);
    m.land('c', 8, 6);
    assert.equal(m.floor, 0, 'a and b stopped nothing any more: pruned, no floor');
    assert.equal(m.count, 1);
  });
});

describe('shares', () => {
  const share = (startedAt: number, body = 'v', seq = 1) => ({
    startedAt,
    seq,
    stamp: seq,
    body: Buffer.from(body),
    error: undefined,
    ids: [],
  });

  test('a share is good for a second after its load started, and is then gone without a read', async () => {
    const clock = new FakeClock();
    const s = new Shares(clock, 1000, { maxItems: 10, maxBytes: 1 << 20 });
    const t0 = clock.now();
    s.set('k', share(t0 - 200));
    assert.equal(s.get('k')?.body?.toString(), 'v');
    await clock.advance(799);
    assert.ok(s.get('k'), '999 ms after its start: still good');
    assert.equal(s.count, 1);
    await clock.advance(1);
    assert.equal(s.get('k'), undefined, 'at 1000 ms: gone');
    assert.equal(s.count, 0, 'purged by the timer');
    assert.equal(s.bytes, 0);
    s.set('late', share(clock.now() - 1000));
    assert.equal(s.count, 0, 'a share whose second is over is not kept');
  });

  test('the purge timer comes when the next share is due, earlier for a share set later but due sooner', async () => {
    const clock = new FakeClock();
    const s = new Shares(clock, 1000, { maxItems: 10, maxBytes: 1 << 20 });
    const t0 = clock.now();
    s.set('a', share(t0));
    await clock.advance(400);
    s.set('b', share(t0 - 300));
    assert.equal(s.oldestAgeMs, 700);
    await clock.advance(300);
    assert.equal(s.get('b'), undefined);
    assert.equal(s.count, 1, 'b went at its own second, before a');
    assert.equal(s.oldestAgeMs, 700);
    s.set('c', share(clock.now()));
    await clock.advance(300);
    assert.equal(s.count, 1, 'a went; c is left and the timer comes back for it');
    await clock.advance(700);
    assert.equal(s.count, 0);
    assert.equal(s.oldestAgeMs, 0);
    assert.equal(clock.pending, 0, 'no timer left once nothing is held');
  });

  test('bounded in items and bytes like the cache: the least recently used go; a body over the budget is not shared', () => {
    const clock = new FakeClock();
    const s = new Shares(clock, 1000, { maxItems: 2, maxBytes: 1000 });
    s.set('a', share(clock.now(), 'x'.repeat(100)));
    s.set('b', share(clock.now(), 'y'.repeat(100)));
    s.get('a');
    s.set('c', share(clock.now(), 'z'.repeat(100)));
    assert.equal(s.count, 2);
    assert.ok(s.get('a'));
    assert.equal(s.get('b'), undefined, 'the least recently used went');
    s.set('big', share(clock.now(), 'q'.repeat(2000)));
    assert.equal(s.get('big'), undefined);
    assert.ok(s.bytes <= 1000);
    s.delete('a');
    assert.equal(s.get('a'), undefined);
    s.clear();
    assert.equal(s.count, 0);
    assert.equal(clock.pending, 0, 'clear() leaves no timer');
    const one = new Shares(clock, 1000, { maxItems: 0, maxBytes: 1000 });
    one.set('a', share(clock.now()));
    assert.ok(one.get('a'), 'a cache of no items still shares one answer');
  });
});
