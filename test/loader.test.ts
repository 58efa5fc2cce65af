// The loader (the only caller of upstream) on a fake clock over a scripted AWS client: the batch window,
// the one id-matching function, the whole-batch failure policy and path paging.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AwsJsonClient, MAX_RESPONSE_BYTES } from '../src/aws/client.ts';
import type { Upstream } from '../src/aws/index.ts';
import { AwsCallError, type WireParameter, type WireSecretValue } from '../src/aws/types.ts';
import { answers, type ItemRequest } from '../src/items.ts';
import { BATCH_BACKOFF_MS, createLoader, PATH_ITEM_LIMIT, PathTooLargeError } from '../src/loader/index.ts';
import { silentLogger } from '../src/log.ts';
import { FakeClock, settle } from './helpers/fake-time.ts';
import { ScriptedAws, scriptedUpstream } from './helpers/scripted-aws.ts';

function setup(batchWindowMs = 2) {
  const clock = new FakeClock();
  const ssm = new ScriptedAws();
  const sm = new ScriptedAws();
  const upstream = {
    ssm: ssm as unknown as AwsJsonClient,
    secretsmanager: sm as unknown as AwsJsonClient,
    region: 'us-east-1',
    client: (service: string) => (service === 'ssm' ? ssm : sm) as unknown as AwsJsonClient,
  } as Upstream;
  const loader = createLoader(upstream, { batchWindowMs, log: silentLogger, clock });
  return { clock, ssm, sm, loader };
}

const p = (Name: string, Value = `value of ${Name}`): WireParameter => ({
  Name,
  Type: 'String',
  Value,
  ARN: `arn:aws:ssm:us-east-1:123456789012:parameter${Name}`,
});
const param = (name: string): ItemRequest => ({ service: 'ssm', name, withDecryption: false });
const secret = (secretId: string): ItemRequest => ({ service: 'secretsmanager', secretId });
const parameterValue = (b: Buffer) => JSON.parse(b.toString()).Parameter.Value as string;
const outcome = async (x: Promise<unknown>) =>
  x.then(
    (v) => (v as { body: Buffer }).body.toString(),
    (e: unknown) => (e instanceof AwsCallError ? e.code : String(e)),
  );

describe('one id-matching function', () => {
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf';
  const s: WireSecretValue = { Name: 'prod/db', ARN: arn, SecretString: 'x' };
  for (const [id, expected] of [
    ['prod/db', true],
    [arn, true],
    ['arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db', true], // partial ARN
    ['arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/d', false],
    ['arn:aws:secretsmanager:us-east-1:123456789012:secret:prod', false],
    ['prod/db-AbCdEf', false],
    ['prod', false],
  ] as const) {
    test(`secret ${id} -> ${expected}`, () => assert.equal(answers('secretsmanager', s, id), expected));
  }
  const latest = p('/app/x');
  const v3: WireParameter = { ...p('/app/x'), Selector: ':3' };
  for (const [item, id, expected] of [
    [latest, '/app/x', true],
    [latest, 'arn:aws:ssm:us-east-1:123456789012:parameter/app/x', true],
    [latest, '/app/x:3', false],
    [v3, '/app/x:3', true],
    [v3, 'arn:aws:ssm:us-east-1:123456789012:parameter/app/x:3', true],
    [v3, '/app/x', false],
    [latest, '/app/y', false],
  ] as const) {
    test(`parameter ${item.Name}${item.Selector ?? ''} answers ${id}: ${expected}`, () =>
      assert.equal(answers('ssm', item, id), expected));
  }
});

describe('the batch window', () => {
  test('concurrent single misses share one GetParameters; each gets its own body, or NotFound', async () => {
    const { clock, ssm, loader } = setup();
    const reads = ['/a', '/b', '/missing'].map((n) => outcome(loader.one(param(n))));
    await settle();
    assert.equal(ssm.calls.length, 0, 'waits for the window');
    await clock.advance(2);
    assert.deepEqual(ssm.ops(), ['GetParameters']);
    assert.deepEqual(ssm.calls[0]!.input['Names'], ['/a', '/b', '/missing']);
    ssm.calls[0]!.resolve({ Parameters: [p('/b'), p('/a')], InvalidParameters: ['/missing'] });
    const [a, b, missing] = await Promise.all(reads);
    assert.equal(parameterValue(Buffer.from(a!)), 'value of /a');
    assert.equal(parameterValue(Buffer.from(b!)), 'value of /b');
    assert.equal(missing, 'ParameterNotFound');
  });

  test('a lone miss makes the single call; selectors never share a batch', async () => {
    const { clock, ssm, loader } = setup();
    void loader.one(param('/a'));
    void loader.one({ service: 'ssm', name: '/b', version: '2', withDecryption: false });
    await clock.advance(2);
    assert.deepEqual(ssm.ops().sort(), ['GetParameter', 'GetParameter']);
  });

  test('the window slides with each arrival, never past five windows; a full batch goes at once', async () => {
    const { clock, ssm, sm, loader } = setup();
    for (let i = 0; i < 6; i++) {
      void loader.one(param(`/p${i}`));
      await clock.advance(1.5);
    }
    // Opened at 0, arrivals every 1.5 ms: the group may wait at most 5 windows (10 ms).
    assert.equal(ssm.calls.length, 0);
    await clock.advance(1);
    assert.equal(ssm.calls.length, 1, 'sent once the last arrival window closed');
    for (let i = 0; i < 20; i++) void loader.one(secret(`s${i}`));
    await settle();
    assert.deepEqual(sm.ops(), ['BatchGetSecretValue'], 'twenty ids: sent without waiting');
  });

  test('ids a batch answer does not name are asked for alone, never guessed', async () => {
    const { clock, sm, loader } = setup();
    const partial = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app/a';
    const reads = [partial, 'app/b', 'app/c'].map((id) => outcome(loader.one(secret(id))));
    await clock.advance(2);
    sm.calls[0]!.resolve({
      SecretValues: [
        { Name: 'app/a', ARN: `${partial}-Xy12Z9`, SecretString: 'A' },
        {
          Name: 'app/b',
          ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app/b-Qq11Qq',
          SecretString: 'B',
        },
      ],
      Errors: [],
    });
    await settle();
    assert.deepEqual(sm.ops(), ['BatchGetSecretValue', 'GetSecretValue']);
    assert.equal(sm.calls[1]!.input['SecretId'], 'app/c');
    sm.calls[1]!.resolve({ Name: 'app/c', SecretString: 'C' });
    const got = (await Promise.all(reads)).map((b) => JSON.parse(b).SecretString);
    assert.deepEqual(got, ['A', 'B', 'C']);
  });

  test('a batch refused as a whole: single calls, and no batch for five minutes', async () => {
    const { clock, ssm, loader } = setup();
    const reads = ['/a', '/b'].map((n) => outcome(loader.one(param(n))));
    await clock.advance(2);
    ssm.calls[0]!.reject(new AwsCallError('AccessDeniedException', 'no batch for you', 'aws', 400));
    await settle();
    assert.deepEqual(ssm.ops(), ['GetParameters', 'GetParameter', 'GetParameter']);
    ssm.calls[1]!.resolve({ Parameter: p('/a') });
    ssm.calls[2]!.resolve({ Parameter: p('/b') });
    assert.deepEqual(
      (await Promise.all(reads)).map((b) => parameterValue(Buffer.from(b))),
      ['value of /a', 'value of /b'],
    );
    for (const n of ['/c', '/d']) void loader.one(param(n));
    await clock.advance(2);
    assert.deepEqual(ssm.ops().slice(3), ['GetParameter', 'GetParameter'], 'batches rest');
    await clock.advance(BATCH_BACKOFF_MS);
    for (const n of ['/e', '/f']) void loader.one(param(n));
    await clock.advance(2);
    assert.deepEqual(ssm.ops().slice(5), ['GetParameters'], 'and come back');
  });

  test('a batch failing transiently (after its retries): every item gets that error, no single calls', async () => {
    const { clock, sm, loader } = setup();
    const reads = ['a', 'b'].map((id) => outcome(loader.one(secret(id))));
    await clock.advance(2);
    sm.calls[0]!.opts?.onRetry?.(new AwsCallError('InternalFailure', 'x', 'server', 500));
    sm.calls[0]!.reject(new AwsCallError('ThrottlingException', 'slow down', 'throttled', 400));
    assert.deepEqual(await Promise.all(reads), ['ThrottlingException', 'ThrottlingException']);
    assert.deepEqual(sm.ops(), ['BatchGetSecretValue']);
  });

  test('a failed attempt of a shared batch call is told to each of its readers', async () => {
    const { clock, sm, loader } = setup();
    const told: string[] = [];
    for (const id of ['a', 'b']) void loader.one(secret(id), { onRetry: () => told.push(id) });
    await clock.advance(2);
    sm.calls[0]!.opts?.onRetry?.(new AwsCallError('InternalFailure', 'x', 'server', 500));
    assert.deepEqual(told, ['a', 'b']);
  });
});

describe('path paging', () => {
  test('stops as soon as the listing holds more than the limit', async () => {
    const { ssm, loader } = setup();
    const listing = loader.path({ path: '/big/', recursive: true, withDecryption: false }).then(
      () => 'ok',
      (e: unknown) => (e instanceof PathTooLargeError ? 'too large' : String(e)),
    );
    for (let page = 0; ; page++) {
      await settle();
      const c = ssm.calls[page];
      if (!c) break;
      c.resolve({
        Parameters: Array.from({ length: 10 }, (_, i) => p(`/big/p${page * 10 + i}`)),
        NextToken: `t${page}`,
      });
    }
    assert.equal(await listing, 'too large');
    assert.equal(ssm.calls.length, PATH_ITEM_LIMIT / 10 + 1, 'one page past the limit, not every page');
  });

  test('stops as soon as the answer would pass 8 MB (the batch cap), however few items and pages', async () => {
    const { ssm, loader } = setup();
    const big = 'v'.repeat(3_000_000);
    const listing = loader.path({ path: '/big/', recursive: true, withDecryption: false }).then(
      () => 'ok',
      (e: unknown) => (e instanceof PathTooLargeError ? e.message : String(e)),
    );
    for (let page = 0; page < 10; page++) {
      await settle();
      const c = ssm.calls[page];
      if (!c) break;
      c.resolve({ Parameters: [p(`/big/p${page}`, big)], NextToken: `t${page}` });
    }
    assert.match(
      await listing,
      new RegExp(`^path /big/ holds more than ${MAX_RESPONSE_BYTES} bytes of parameters, .*narrow the path`),
    );
    assert.equal(ssm.calls.length, 3, 'the third page passes 8 MB: no fourth is asked for');
  });

  test('an answer of up to 8 MB is served, and counted exactly as it is written', async () => {
    const { ssm, loader } = setup();
    // Two items whose answer is exactly the cap: the counting is that of the body itself.
    const empty = loader.path({ path: '/x/', recursive: false, withDecryption: false });
    await settle();
    ssm.calls[0]!.resolve({ Parameters: [p('/x/a', ''), p('/x/b', '')] });
    const frame = (await empty).body.length;
    ssm.calls.length = 0;
    const room = MAX_RESPONSE_BYTES - frame;
    const a = 'a'.repeat(Math.floor(room / 2));
    const b = 'b'.repeat(room - a.length);
    const listing = loader.path({ path: '/x/', recursive: false, withDecryption: false });
    await settle();
    ssm.calls[0]!.resolve({ Parameters: [p('/x/a', a)], NextToken: 't' });
    await settle();
    ssm.calls[1]!.resolve({ Parameters: [p('/x/b', b)] });
    assert.equal((await listing).body.length, MAX_RESPONSE_BYTES);
    // One byte more and it is refused.
    const { ssm: ssm2, loader: loader2 } = setup();
    const over = loader2.path({ path: '/x/', recursive: false, withDecryption: false }).then(
      () => 'ok',
      (e: unknown) => (e instanceof PathTooLargeError ? 'too large' : String(e)),
    );
    await settle();
    ssm2.calls[0]!.resolve({ Parameters: [p('/x/a', a), p('/x/b', `${b}b`)] });
    assert.equal(await over, 'too large');
  });

  test('items stand for single reads only when the answer names them under the path, without a selector', async () => {
    const { ssm, loader } = setup();
    const listing = loader.path({ path: '/app/', recursive: false, withDecryption: true });
    await settle();
    ssm.calls[0]!.resolve({ Parameters: [p('/app/a'), { ...p('/app/b'), Selector: ':2' }, p('/other/c')] });
    const l = await listing;
    assert.deepEqual(
      l.items.map((i) => i.request),
      [{ service: 'ssm', name: '/app/a', withDecryption: true }],
    );
    assert.equal(JSON.parse(l.body.toString()).Parameters.length, 3);
  });
});

describe('roles, Regions and values in hand', () => {
  function perVia() {
    return { clock: new FakeClock(), ...scriptedUpstream() };
  }
  const ROLE = 'arn:aws:iam::123456789012:role/r';
  const EU = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:eu/db';
  const US = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:us/db';

  test('a batch never mixes roles or Regions; an ARN of the configured Region stays with plain names', async () => {
    const { clock, clients, upstream } = perVia();
    const loader = createLoader(upstream, { batchWindowMs: 2, log: silentLogger, clock });
    void loader.many([secret('a'), { ...secret('b'), roleArn: ROLE }, secret(EU), secret(US), secret('c')]);
    await settle();
    const calls = Object.fromEntries(
      [...clients].map(([k, c]) => [k, c.calls.map((x) => x.input['SecretIdList'] ?? x.input['SecretId'])]),
    );
    assert.deepEqual(calls, {
      'secretsmanager - -': [['a', US, 'c']],
      [`secretsmanager ${ROLE} -`]: [['b']],
      'secretsmanager - eu-west-1': [[EU]],
    });
  });

  test('crossRegion false: every read goes to the configured Region', async () => {
    const { clock, clients, upstream } = perVia();
    const loader = createLoader(upstream, { batchWindowMs: 0, crossRegion: false, log: silentLogger, clock });
    void loader.one(secret(EU));
    await settle();
    assert.deepEqual([...clients.keys()], ['secretsmanager - -']);
  });

  test('a value in hand answers the next load of that very request only; another request of the key goes upstream', async () => {
    const { clock, clients, upstream } = perVia();
    const loader = createLoader(upstream, { batchWindowMs: 0, log: silentLogger, clock });
    const [primed] = loader.primed([{ request: secret('s'), loaded: { body: Buffer.from('in hand') } }]);
    assert.equal((await loader.many([primed!]))[0]!.ok, true);
    void loader.one(secret('s'));
    await settle();
    assert.equal(
      clients.get('secretsmanager - -')?.calls.length,
      1,
      'a new request object is not answered from it',
    );
    void loader.one(primed!);
    await settle();
    assert.equal(
      clients.get('secretsmanager - -')?.calls.length,
      2,
      'taken once: the same object then goes upstream',
    );
  });

  test('tag discovery pages with the tag-key filter, a page at a time, while the caller wants more; each secret under its name and role', async () => {
    const { clock, clients, upstream } = perVia();
    const loader = createLoader(upstream, { batchWindowMs: 0, log: silentLogger, clock });
    let wanted = 3;
    const pages = loader.secretsTagged('team', ROLE, () => wanted);
    const first = pages.next();
    await settle();
    const sm = clients.get(`secretsmanager ${ROLE} -`)!;
    assert.deepEqual(sm.calls[0]!.input, { Filters: [{ Key: 'tag-key', Values: ['team'] }], MaxResults: 3 });
    sm.calls[0]!.resolve({
      SecretValues: [
        { Name: 'x', SecretString: 'X' },
        { ARN: 'arn:no-name', SecretString: '?' },
      ],
      Errors: [{ SecretId: 'denied', ErrorCode: 'AccessDeniedException' }],
      NextToken: 't1',
    });
    const one = await first;
    assert.equal(one.done, false);
    assert.deepEqual(
      one.value!.found.map((f) => f.request),
      [{ service: 'secretsmanager', secretId: 'x', roleArn: ROLE }],
    );
    assert.equal(one.value!.errors, 1);
    await settle();
    assert.equal(sm.calls.length, 1, 'the next page waits until the caller has dealt with this one');
    wanted = 2;
    const second = pages.next();
    await settle();
    assert.deepEqual(sm.calls[1]!.input, {
      Filters: [{ Key: 'tag-key', Values: ['team'] }],
      MaxResults: 2,
      NextToken: 't1',
    });
    sm.calls[1]!.resolve({
      SecretValues: [
        { Name: 'y', SecretString: 'Y' },
        { Name: 'z', SecretString: 'Z' },
      ],
      NextToken: 't2',
    });
    const two = await second;
    assert.deepEqual(
      two.value!.found.map((f) => f.request),
      ['y', 'z'].map((secretId) => ({ service: 'secretsmanager', secretId, roleArn: ROLE })),
    );
    wanted = 0;
    assert.equal((await pages.next()).done, true);
    assert.equal(sm.calls.length, 2, 'nothing more wanted: no third page');
  });
});
