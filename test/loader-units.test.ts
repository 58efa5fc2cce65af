// The loader's promises one at a time, on a fake clock over scripted AWS clients: what each upstream call
// is asked (selectors, decryption flag, role, call options, paging tokens), how batch answers become each
// reader's own answer or error, when batches rest, how the batch window closes, and where paging stops.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AwsJsonClient, MAX_RESPONSE_BYTES } from '../src/aws/client.ts';
import type { Upstream } from '../src/aws/index.ts';
import { AwsCallError, type WireParameter } from '../src/aws/types.ts';
import type { ItemRequest } from '../src/items.ts';
import { createLoader, PATH_MAX_PAGES, PathTooLargeError } from '../src/loader/index.ts';
import { type Fields, type Logger, silentLogger } from '../src/log.ts';
import { FakeClock, settle } from './helpers/fake-time.ts';
import { ScriptedAws, scriptedUpstream } from './helpers/scripted-aws.ts';

function setup(batchWindowMs = 2, log: Logger = silentLogger) {
  const clock = new FakeClock();
  const ssm = new ScriptedAws();
  const sm = new ScriptedAws();
  const upstream = {
    region: 'us-east-1',
    client: (service: string) => (service === 'ssm' ? ssm : sm) as unknown as AwsJsonClient,
  } as Upstream;
  const loader = createLoader(upstream, { batchWindowMs, log, clock });
  return { clock, ssm, sm, loader };
}

function roles(batchWindowMs = 0) {
  const clock = new FakeClock();
  const { clients, upstream, client } = scriptedUpstream();
  const loader = createLoader(upstream, { batchWindowMs, log: silentLogger, clock });
  return { clock, clients, client, loader };
}

const p = (Name: string, Value = `value of ${Name}`): WireParameter => ({ Name, Type: 'String', Value });
const param = (name: string, withDecryption = false): ItemRequest => ({
  service: 'ssm',
  name,
  withDecryption,
});
const secret = (secretId: string): ItemRequest => ({ service: 'secretsmanager', secretId });
const ROLE = 'arn:aws:iam::123456789012:role/r';

/** What a promise came to: 'pending', the value, or the error. */
function track<T>(x: Promise<T>) {
  const s: { state: 'pending' | 'ok' | 'error'; value?: T; error?: unknown } = { state: 'pending' };
  x.then(
    (value) => {
      s.state = 'ok';
      s.value = value;
    },
    (error: unknown) => {
      s.state = 'error';
      s.error = error;
    },
  );
  return s;
}

describe('what a single read asks for', () => {
  test('a parameter version or label, a secret version id or stage, go into the call', async () => {
    const { ssm, sm, loader } = setup(0);
    void loader.one({ service: 'ssm', name: '/a', version: '3', withDecryption: true });
    void loader.one({ service: 'ssm', name: '/b', label: 'prod', withDecryption: false });
    void loader.one({ service: 'secretsmanager', secretId: 's', versionId: 'v-1' });
    void loader.one({ service: 'secretsmanager', secretId: 't', versionStage: 'AWSPREVIOUS' });
    await settle();
    assert.deepEqual(
      ssm.calls.map((c) => c.input),
      [
        { Name: '/a:3', WithDecryption: true },
        { Name: '/b:prod', WithDecryption: false },
      ],
    );
    assert.deepEqual(
      sm.calls.map((c) => c.input),
      [
        { SecretId: 's', VersionId: 'v-1' },
        { SecretId: 't', VersionStage: 'AWSPREVIOUS' },
      ],
    );
  });

  test("a load's attempt count, abort signal and credentials rule go with its call", async () => {
    const { ssm, loader } = setup(0);
    const signal = new AbortController().signal;
    void loader.one(param('/a'), { attempts: 1, signal, credentialsSince: 42 });
    await settle();
    const opts = ssm.calls[0]!.opts!;
    assert.equal(opts.maxAttempts, 1);
    assert.equal(opts.signal, signal);
    assert.equal(opts.credentialsSince, 42);
  });

  test('loads with their own attempt count or credentials rule never share a batch call', async () => {
    const { clock, ssm, loader } = setup(2);
    void loader.one(param('/a'), { attempts: 1 });
    void loader.one(param('/b'), { attempts: 1 });
    void loader.one(param('/c'), { credentialsSince: 5 });
    void loader.one(param('/d'), { credentialsSince: 5 });
    await clock.advance(2);
    assert.deepEqual(ssm.ops(), ['GetParameter', 'GetParameter', 'GetParameter', 'GetParameter']);
    assert.deepEqual(
      ssm.calls.map((c) => [c.opts?.maxAttempts, c.opts?.credentialsSince]),
      [
        [1, undefined],
        [1, undefined],
        [undefined, 5],
        [undefined, 5],
      ],
    );
  });

  test('a value in hand answers a single load of that request without calling upstream', async () => {
    const { ssm, loader } = setup(0);
    const [r] = loader.primed([{ request: param('/a'), loaded: { body: Buffer.from('in hand') } }]);
    assert.equal((await loader.one(r!)).body.toString(), 'in hand');
    assert.equal(ssm.calls.length, 0);
  });
});

describe('what a batch call asks for, and what each reader gets', () => {
  test('a batch asks with its decryption flag; parameters of either flag never share one', async () => {
    const { ssm, loader } = setup(0);
    void loader.many([param('/a', true), param('/b', false), param('/c', true), param('/d', false)]);
    await settle();
    assert.deepEqual(
      ssm.calls.map((c) => c.input),
      [
        { Names: ['/a', '/c'], WithDecryption: true },
        { Names: ['/b', '/d'], WithDecryption: false },
      ],
    );
  });

  test('parameters and secrets never share a batch call', async () => {
    const { ssm, sm, loader } = setup(0);
    void loader.many([param('/a'), secret('s'), param('/b'), secret('t')]);
    await settle();
    assert.deepEqual(ssm.ops(), ['GetParameters']);
    assert.deepEqual(ssm.calls[0]!.input['Names'], ['/a', '/b']);
    assert.deepEqual(sm.ops(), ['BatchGetSecretValue']);
    assert.deepEqual(sm.calls[0]!.input['SecretIdList'], ['s', 't']);
  });

  test('more ids than one call takes go in calls of at most ten names (twenty secrets)', async () => {
    const { ssm, sm, loader } = setup(0);
    void loader.many(Array.from({ length: 12 }, (_, i) => param(`/p${i}`)));
    void loader.many(Array.from({ length: 21 }, (_, i) => secret(`s${i}`)));
    await settle();
    assert.deepEqual(
      ssm.calls.map((c) => (c.input['Names'] as string[]).length),
      [10, 2],
    );
    assert.deepEqual(ssm.calls[1]!.input['Names'], ['/p10', '/p11']);
    assert.deepEqual(
      sm.calls.map((c) => (c.input['SecretIdList'] as string[]).length),
      [20, 1],
    );
  });

  test('a name the batch answer reports invalid is NotFound as from GetParameter; one it omits is asked alone', async () => {
    const { ssm, loader } = setup(0);
    const got = loader.many([param('/a'), param('/gone'), param('/omitted')]);
    await settle();
    ssm.calls[0]!.resolve({ Parameters: [p('/a')], InvalidParameters: ['/gone'] });
    await settle();
    assert.deepEqual(ssm.ops(), ['GetParameters', 'GetParameter']);
    assert.equal(ssm.calls[1]!.input['Name'], '/omitted');
    ssm.calls[1]!.resolve({ Parameter: p('/omitted') });
    const [a, gone, omitted] = await got;
    assert.equal(a!.ok, true);
    assert.equal(omitted!.ok, true);
    assert.equal(gone!.ok, false);
    const e = (gone as { error: AwsCallError }).error;
    assert.ok(e instanceof AwsCallError);
    assert.deepEqual([e.code, e.message, e.kind, e.httpStatus], ['ParameterNotFound', '', 'aws', 400]);
  });

  test('a secret asked for by its full ARN is answered from the batch, not asked again', async () => {
    const { sm, loader } = setup(0);
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app/a-AbCdEf';
    const got = loader.many([secret(arn), secret('app/b')]);
    await settle();
    sm.calls[0]!.resolve({
      SecretValues: [
        { Name: 'app/a', ARN: arn, SecretString: 'A' },
        { Name: 'app/b', SecretString: 'B' },
      ],
      Errors: [],
    });
    const out = await got;
    assert.deepEqual(sm.ops(), ['BatchGetSecretValue']);
    assert.deepEqual(
      out.map((o) => o.ok && JSON.parse(o.loaded.body.toString()).SecretString),
      ['A', 'B'],
    );
  });

  test('a secret asked for by a partial ARN (without its suffix) is answered from the batch', async () => {
    const { sm, loader } = setup(0);
    const partial = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app/a';
    const got = loader.many([secret(partial), secret('app/b')]);
    await settle();
    sm.calls[0]!.resolve({
      SecretValues: [
        { Name: 'app/b', SecretString: 'B' },
        { Name: 'app/a', ARN: `${partial}-AbCdEf`, SecretString: 'A' },
      ],
      Errors: [],
    });
    const out = await got;
    assert.deepEqual(sm.ops(), ['BatchGetSecretValue']);
    assert.deepEqual(
      out.map((o) => o.ok && JSON.parse(o.loaded.body.toString()).SecretString),
      ['A', 'B'],
    );
  });

  test('a parameter asked for by its ARN is never answered by another whose name extends it', async () => {
    const { ssm, loader } = setup(0);
    const arn = 'arn:aws:ssm:us-east-1:123456789012:parameter/app/a';
    const got = loader.many([param(arn), param('/app/a-bcdefg')]);
    await settle();
    ssm.calls[0]!.resolve({
      Parameters: [{ ...p('/app/a-bcdefg'), ARN: `${arn}-bcdefg` }],
      InvalidParameters: [arn],
    });
    const [a, other] = await got;
    assert.equal(a!.ok, false);
    assert.equal((a as { error: AwsCallError }).error.code, 'ParameterNotFound');
    assert.equal(other!.ok, true);
  });

  test('batches never mix roles, nor Regions other than the configured one', async () => {
    const { clients, loader } = roles();
    const OTHER = 'arn:aws:iam::123456789012:role/other';
    const EU = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:eu/db';
    const AP = 'arn:aws:secretsmanager:ap-south-1:123456789012:secret:ap/db';
    void loader.many([
      { ...secret('a'), roleArn: ROLE },
      { ...secret('b'), roleArn: OTHER },
      secret(EU),
      secret(AP),
      { ...secret('c'), roleArn: ROLE },
    ]);
    await settle();
    const calls = Object.fromEntries(
      [...clients].map(([k, c]) => [k, c.calls.map((x) => x.input['SecretIdList'] ?? x.input['SecretId'])]),
    );
    assert.deepEqual(calls, {
      [`secretsmanager ${ROLE} -`]: [['a', 'c']],
      [`secretsmanager ${OTHER} -`]: [['b']],
      'secretsmanager - eu-west-1': [[EU]],
      'secretsmanager - ap-south-1': [[AP]],
    });
  });

  test("a secret's batch error is its own error: its code and message, UnknownError without a code, no message without one", async () => {
    const { sm, loader } = setup(0);
    const got = loader.many([secret('a'), secret('b')]);
    await settle();
    sm.calls[0]!.resolve({
      SecretValues: [],
      Errors: [
        { SecretId: 'a', ErrorCode: 'ResourceNotFoundException', Message: 'no such secret' },
        { SecretId: 'b' },
      ],
    });
    const out = await got;
    assert.deepEqual(
      out.map((o) => {
        const e = (o as { error: AwsCallError }).error;
        return [e.code, e.message, e.kind, e.httpStatus];
      }),
      [
        ['ResourceNotFoundException', 'no such secret', 'aws', 400],
        ['UnknownError', '', 'aws', 400],
      ],
    );
    assert.deepEqual(sm.ops(), ['BatchGetSecretValue']);
  });

  test('a batch refused with 501 (the endpoint lacks the operation) is answered by single calls', async () => {
    const { ssm, loader } = setup(0);
    const got = loader.many([param('/a'), param('/b')]);
    await settle();
    ssm.calls[0]!.reject(new AwsCallError('UnknownOperationException', 'no', 'server', 501));
    await settle();
    assert.deepEqual(ssm.ops(), ['GetParameters', 'GetParameter', 'GetParameter']);
    ssm.calls[1]!.resolve({ Parameter: p('/a') });
    ssm.calls[2]!.resolve({ Parameter: p('/b') });
    assert.deepEqual(
      (await got).map((o) => o.ok),
      [true, true],
    );
  });

  test('a refused batch is logged with its service, code and how many minutes batches rest', async () => {
    const lines: Array<[string, Fields | undefined]> = [];
    const log: Logger = { ...silentLogger, info: (m, f) => void lines.push([m, f]) };
    const { ssm, loader } = setup(0, log);
    void loader.many([param('/a'), param('/b')]);
    await settle();
    ssm.calls[0]!.reject(new AwsCallError('AccessDeniedException', 'no', 'aws', 400));
    await settle();
    assert.deepEqual(lines, [
      [
        'batch call failed; using single calls for a while',
        { service: 'ssm', code: 'AccessDeniedException', minutes: 5 },
      ],
    ]);
  });

  test('batches rest for exactly five minutes, only for the service and role refused', async () => {
    const { clock, clients, client, loader } = roles(0);
    const OTHER = 'arn:aws:iam::123456789012:role/other';
    const as = (roleArn: string | undefined, ...rs: ItemRequest[]) =>
      rs.map((r) => (roleArn === undefined ? r : { ...r, roleArn }));
    const refused = loader.many(as(ROLE, param('/a'), param('/b')));
    await settle();
    const ssm = client(`ssm ${ROLE} -`);
    ssm.calls[0]!.reject(new AwsCallError('AccessDeniedException', 'no', 'aws', 400));
    await settle();
    for (const c of ssm.calls.slice(1)) c.resolve({ Parameter: p(c.input['Name'] as string) });
    await refused;
    const ops = () =>
      Object.fromEntries([...clients].map(([k, c]) => [k, c.ops().filter((o) => o !== 'GetParameter')]));
    // Another service, another role, no role: still batched.
    void loader.many(as(ROLE, secret('s'), secret('t')));
    void loader.many(as(OTHER, param('/a'), param('/b')));
    void loader.many(as(undefined, param('/a'), param('/b')));
    await clock.advance(4 * 60 * 1000);
    void loader.many(as(ROLE, param('/c'), param('/d')));
    await settle();
    assert.deepEqual(ops(), {
      [`ssm ${ROLE} -`]: ['GetParameters'],
      [`secretsmanager ${ROLE} -`]: ['BatchGetSecretValue'],
      [`ssm ${OTHER} -`]: ['GetParameters'],
      'ssm - -': ['GetParameters'],
    });
    await clock.advance(60 * 1000);
    void loader.many(as(ROLE, param('/e'), param('/f')));
    await settle();
    assert.deepEqual(ops()[`ssm ${ROLE} -`], ['GetParameters', 'GetParameters'], 'back after five minutes');
  });

  test('an unexpected (non-AWS) failure of a batch call is not passed off as each item’s answer', async () => {
    const { ssm, loader } = setup(0);
    const got = track(loader.many([param('/a'), param('/b')]));
    await settle();
    const bug = new TypeError('a bug');
    ssm.calls[0]!.reject(bug);
    await settle();
    assert.equal(got.state, 'error');
    assert.equal(got.error, bug);
  });
});

describe('the batch window', () => {
  test('a waiting group stops sliding once another window would pass five windows from its first arrival', async () => {
    const { clock, sm, loader } = setup(2);
    // Arrivals every 1.5 ms from 0; the one at 9 ms may not push the call past 10 ms.
    for (let i = 0; i < 7; i++) {
      void loader.one(secret(`s${i}`));
      if (i < 6) await clock.advance(1.5);
    }
    await clock.advance(0.4);
    assert.equal(sm.calls.length, 0, 'the arrival at 7.5 ms set the window to close at 9.5 ms');
    await clock.advance(0.1);
    assert.deepEqual(sm.ops(), ['BatchGetSecretValue']);
    assert.equal((sm.calls[0]!.input['SecretIdList'] as string[]).length, 7);
  });

  test('an arrival that closes the window exactly at five windows still slides it there', async () => {
    const { clock, sm, loader } = setup(2);
    let n = 0;
    for (const after of [0, 1.5, 1.5, 1.5, 1.5, 1.5, 0.5]) {
      await clock.advance(after);
      void loader.one(secret(`s${n++}`));
    }
    // Arrivals at 0, 1.5, 3, 4.5, 6, 7.5 and 8 ms: the last gives the group until 10 ms.
    await clock.advance(1.9);
    assert.equal(sm.calls.length, 0);
    await clock.advance(0.1);
    assert.deepEqual(sm.ops(), ['BatchGetSecretValue']);
  });

  test('a failed attempt of a shared call is told to readers that asked, and not to those that did not', async () => {
    const { clock, sm, loader } = setup(2);
    const told: string[] = [];
    void loader.one(secret('a'), { signal: new AbortController().signal });
    void loader.one(secret('b'), { onRetry: () => told.push('b') });
    void loader.one(secret('c'));
    await clock.advance(2);
    sm.calls[0]!.opts!.onRetry!(new AwsCallError('InternalFailure', 'x', 'server', 500));
    assert.deepEqual(told, ['b']);
  });

  test('an unexpected failure of a shared call fails each of its readers', async () => {
    const { clock, sm, loader } = setup(2);
    const reads = ['a', 'b'].map((id) => track(loader.one(secret(id))));
    await clock.advance(2);
    const bug = new TypeError('a bug');
    sm.calls[0]!.reject(bug);
    await settle();
    assert.deepEqual(
      reads.map((r) => [r.state, r.error]),
      [
        ['error', bug],
        ['error', bug],
      ],
    );
  });
});

describe('path listings', () => {
  test("each page asks for the path, flags and the previous page's token, through the path's role", async () => {
    const { client, loader } = roles();
    const listing = loader.path({ path: '/app/', recursive: true, withDecryption: true, roleArn: ROLE });
    await settle();
    const ssm = client(`ssm ${ROLE} -`);
    ssm.calls[0]!.resolve({ Parameters: [p('/app/a')], NextToken: 't1' });
    await settle();
    ssm.calls[1]!.resolve({ Parameters: [p('/app/b')] });
    const l = await listing;
    assert.deepEqual(
      ssm.calls.map((c) => c.input),
      [
        { Path: '/app/', Recursive: true, WithDecryption: true, MaxResults: 10 },
        { Path: '/app/', Recursive: true, WithDecryption: true, MaxResults: 10, NextToken: 't1' },
      ],
    );
    assert.deepEqual(
      l.items.map((i) => i.request),
      [
        { service: 'ssm', name: '/app/a', withDecryption: true, roleArn: ROLE },
        { service: 'ssm', name: '/app/b', withDecryption: true, roleArn: ROLE },
      ],
    );
  });

  test('a load without a progress listener pages all the same', async () => {
    const { ssm, loader } = setup(0);
    const listing = loader.path(
      { path: '/x/', recursive: false, withDecryption: false },
      { signal: new AbortController().signal },
    );
    await settle();
    ssm.calls[0]!.resolve({ Parameters: [p('/x/a')], NextToken: 't' });
    await settle();
    ssm.calls[1]!.resolve({ Parameters: [] });
    assert.equal(JSON.parse((await listing).body.toString()).Parameters.length, 1);
  });

  test(`a listing of ${PATH_MAX_PAGES} pages is served; one that goes on is malformed, without asking a page more`, async () => {
    for (const endless of [false, true]) {
      const { ssm, loader } = setup(0);
      const listing = track(loader.path({ path: '/x/', recursive: false, withDecryption: false }));
      for (let page = 0; page < PATH_MAX_PAGES; page++) {
        await settle(1);
        const last = page === PATH_MAX_PAGES - 1 && !endless;
        ssm.calls[page]!.resolve({ Parameters: [], ...(last ? {} : { NextToken: `t${page}` }) });
      }
      await settle();
      assert.equal(ssm.calls.length, PATH_MAX_PAGES);
      if (!endless) {
        assert.equal(listing.state, 'ok');
        continue;
      }
      assert.equal(listing.state, 'error');
      const e = listing.error as AwsCallError;
      assert.ok(e instanceof AwsCallError);
      assert.deepEqual(
        [e.code, e.message, e.kind],
        [
          'MalformedResponse',
          `GetParametersByPath answered ${PATH_MAX_PAGES} pages without an end`,
          'malformed',
        ],
      );
    }
  });

  test('a listing one byte over 8 MB is refused however its items are spread, with how to narrow it', async () => {
    const names = ['/x/a', '/x/b', '/x/c'];
    const framed = setup(0);
    const empty = framed.loader.path({ path: '/x/', recursive: false, withDecryption: false });
    await settle();
    framed.ssm.calls[0]!.resolve({ Parameters: names.map((n) => p(n, '')) });
    const room = MAX_RESPONSE_BYTES - (await empty).body.length;
    const third = Math.floor(room / 3);
    const values = [third, third, room - 2 * third + 1].map((n, i) => 'abc'[i]!.repeat(n));
    for (const recursive of [false, true]) {
      const { ssm, loader } = setup(0);
      const listing = track(loader.path({ path: '/x/', recursive, withDecryption: false }));
      await settle();
      ssm.calls[0]!.resolve({ Parameters: names.map((n, i) => p(n, values[i])) });
      await settle();
      assert.equal(listing.state, 'error');
      assert.ok(listing.error instanceof PathTooLargeError);
      assert.equal(
        listing.error.message,
        `path /x/ holds more than ${MAX_RESPONSE_BYTES} bytes of parameters, more than a path answer may hold (as a batch answer); narrow the path${recursive ? ' or drop recursive=true' : ''}`,
      );
    }
  });

  test('a path of too many parameters is refused with how to narrow it, under its own name (what prefetch logs)', () => {
    assert.equal(new PathTooLargeError('/a/', true).name, 'PathTooLargeError');
    assert.equal(
      new PathTooLargeError('/a/', true).message,
      'path /a/ holds more than 500 parameters; narrow the path or drop recursive=true',
    );
    assert.equal(
      new PathTooLargeError('/a/', false).message,
      'path /a/ holds more than 500 parameters; narrow the path',
    );
  });
});

describe('tag discovery', () => {
  test('a single page without a NextToken ends the search after one call', async () => {
    const { client, loader } = roles();
    const pages = loader.secretsTagged('team', undefined, () => 100);
    const first = pages.next();
    await settle();
    const sm = client('secretsmanager - -');
    sm.calls[0]!.resolve({ SecretValues: [{ Name: 'x', SecretString: 'X' }], Errors: [] });
    assert.equal((await first).done, false);
    const end = track(pages.next());
    await settle();
    assert.equal(end.state, 'ok');
    assert.equal((end.value as IteratorResult<unknown>).done, true);
    assert.equal(sm.calls.length, 1);
  });

  test(`a service that keeps answering with a NextToken is asked at most 1000 pages`, async () => {
    const { client, loader } = roles();
    const pages = loader.secretsTagged('team', undefined, () => 100);
    let n = 0;
    const drain = (async () => {
      for await (const _ of pages) n++;
    })();
    const sm = client('secretsmanager - -');
    for (let i = 0; i <= 1000; i++) {
      await settle(1);
      const c = sm.calls[i];
      if (!c) break;
      c.resolve({ SecretValues: [], Errors: [], NextToken: `t${i}` });
    }
    assert.equal(sm.calls.length, 1000);
    await drain;
    assert.equal(n, 1000);
  });
});
