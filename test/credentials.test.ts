// RefreshingCredentials on a fake clock with fetches the test answers in any order: a fetch in flight
// across invalidate() (SnapStart's first INVOKE) never lands, and `since` reads take only credentials
// fetched after they arrived (the restore window).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AwsCredentials, RefreshingCredentials } from '../src/aws/credentials.ts';
import { silentLogger } from '../src/log.ts';
import { settle } from './helpers/fake-time.ts';

/** A credential fetch that waits for the test. */
function scripted() {
  const fetches: Array<{ resolve: (c: AwsCredentials) => void; reject: (e: unknown) => void }> = [];
  let now = 1_000_000;
  const source = new RefreshingCredentials(
    'test',
    () => new Promise<AwsCredentials>((resolve, reject) => fetches.push({ resolve, reject })),
    silentLogger,
    () => now,
  );
  const creds = (id: string, lifetimeMs = 3_600_000): AwsCredentials => ({
    accessKeyId: id,
    secretAccessKey: `secret-${id}`,
    expiration: new Date(now + lifetimeMs),
  });
  return {
    source,
    fetches,
    creds,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}

describe('credentials generations', () => {
  test('a fetch in flight across invalidate() answers its own callers but is never kept', async () => {
    const s = scripted();
    const before = s.source.get();
    await settle();
    assert.equal(s.fetches.length, 1);
    s.source.invalidate();
    const after = s.source.get();
    await settle();
    assert.equal(s.fetches.length, 2, 'a read after invalidate() does not join the fetch from before');
    s.fetches[1]!.resolve(s.creds('AFTER'));
    assert.equal((await after).accessKeyId, 'AFTER');
    s.fetches[0]!.resolve(s.creds('BEFORE'));
    assert.equal((await before).accessKeyId, 'BEFORE');
    assert.equal((await s.source.get()).accessKeyId, 'AFTER', 'the pre-snapshot credentials never land');
    assert.equal(s.fetches.length, 2);
  });

  test('even when the pre-invalidate fetch lands first, it is not kept', async () => {
    const s = scripted();
    const before = s.source.get();
    await settle();
    s.source.invalidate();
    s.fetches[0]!.resolve(s.creds('BEFORE'));
    await before;
    const next = s.source.get();
    await settle();
    assert.equal(s.fetches.length, 2);
    s.fetches[1]!.resolve(s.creds('AFTER'));
    assert.equal((await next).accessKeyId, 'AFTER');
  });

  test('`since` takes only credentials whose fetch started at or after it; later reads share that fetch', async () => {
    const s = scripted();
    const first = s.source.get();
    await settle();
    s.fetches[0]!.resolve(s.creds('OLD'));
    await first;
    s.advance(10);
    const since = s.now();
    const fresh = s.source.get({ since });
    const joined = s.source.get({ since });
    await settle();
    assert.equal(
      s.fetches.length,
      2,
      'cached credentials from before `since` are not used; one fetch is shared',
    );
    s.fetches[1]!.resolve(s.creds('FRESH'));
    assert.equal((await fresh).accessKeyId, 'FRESH');
    assert.equal((await joined).accessKeyId, 'FRESH');
    assert.equal((await s.source.get()).accessKeyId, 'FRESH', 'and they are kept for everyone');
    assert.equal((await s.source.get({ since })).accessKeyId, 'FRESH');
  });

  test('a `since` read does not join a fetch that started before it; the later-started result is kept', async () => {
    const s = scripted();
    const early = s.source.get();
    await settle();
    s.advance(5);
    const late = s.source.get({ since: s.now() });
    await settle();
    assert.equal(s.fetches.length, 2);
    s.fetches[1]!.resolve(s.creds('LATE'));
    await late;
    s.fetches[0]!.resolve(s.creds('EARLY'));
    await early;
    assert.equal(
      (await s.source.get()).accessKeyId,
      'LATE',
      'an earlier-started fetch landing later is not kept',
    );
  });
});
