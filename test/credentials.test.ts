// RefreshingCredentials on a fake clock with fetches the test answers in any order: a fetch in flight
// across invalidate() (SnapStart's first INVOKE) never lands, `since` reads take only credentials
// fetched after they arrived (the restore window), and a fetch that never answers holds nobody.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AwsJsonClient } from '../src/aws/client.ts';
import {
  type AwsCredentials,
  type CredentialSource,
  FETCH_JOIN_LIMIT_MS,
  RefreshingCredentials,
} from '../src/aws/credentials.ts';
import { AwsCallError } from '../src/aws/types.ts';
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

describe('a credential source that never answers (issue reproduction 6)', () => {
  test('a fetch in flight longer than the join limit is no longer joined: the next read starts another', async () => {
    const s = scripted();
    const hung = s.source.get();
    hung.catch(() => {});
    await settle();
    s.advance(FETCH_JOIN_LIMIT_MS - 1);
    const joined = s.source.get();
    await settle();
    assert.equal(s.fetches.length, 1, 'inside the limit: joined');
    s.advance(1);
    const fresh = s.source.get();
    await settle();
    assert.equal(s.fetches.length, 2, 'past it: a new fetch');
    s.fetches[1]!.resolve(s.creds('NEW'));
    assert.equal((await fresh).accessKeyId, 'NEW');
    assert.equal((await s.source.get()).accessKeyId, 'NEW', 'and kept');
    s.fetches[0]!.resolve(s.creds('OLD'));
    assert.equal((await joined).accessKeyId, 'OLD', 'the hung fetch still answers its own callers');
    assert.equal(
      (await s.source.get()).accessKeyId,
      'NEW',
      'an older-started fetch landing later is not kept',
    );
  });

  test('the client fails the attempt at its deadline (a timeout, never a hang), and an abort ends it at once', async () => {
    const never: CredentialSource = {
      name: 'test',
      get: () => new Promise<AwsCredentials>(() => {}),
      invalidate: () => false,
    };
    const client = new AwsJsonClient({
      service: 'secretsmanager',
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      credentials: never,
      maxConnections: 1,
      timeoutMs: 50,
    });
    const e = await client.call('GetSecretValue', { SecretId: 'x' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(e instanceof AwsCallError, String(e));
    assert.equal(e.code, 'CredentialsProviderError');
    assert.equal(e.kind, 'timeout', 'stale-eligible, and a 504 to a caller without a stale value');
    assert.match(e.message, /no credentials from the test source within 50 ms/);
    const abort = new AbortController();
    const aborted = client.call('GetSecretValue', { SecretId: 'x' }, { signal: abort.signal }).then(
      () => undefined,
      (err: unknown) => err,
    );
    abort.abort();
    const a = await aborted;
    assert.ok(a instanceof AwsCallError && a.code === 'Abandoned', String(a));
    client.close();
  });
});
