// Pure pieces tested directly: drop-in shapes, query parsing, host checks, cache keys, error mapping.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AwsCallError } from '../src/aws/types.ts';
import { fromUpstream } from '../src/errors.ts';
import { cacheKey } from '../src/items.ts';
import { isLoopbackHost } from '../src/server/checks.ts';
import { findRoute, parseQuery } from '../src/server/routes.ts';
import { parameterBody, secretBody } from '../src/shapes.ts';

describe('drop-in shapes', () => {
  test('parameter body matches the captured official response byte for byte', () => {
    const body = parameterBody({
      ARN: 'arn:aws:ssm:us-east-1:123456789012:parameter/lambda-ext-test-param/dummy-string',
      DataType: 'text',
      LastModifiedDate: 1668586960.362,
      Name: '/lambda-ext-test-param/dummy-string',
      Type: 'String',
      Value: 'my-string-param-value',
      Version: 1,
    });
    assert.equal(
      body,
      '{"Parameter":{"ARN":"arn:aws:ssm:us-east-1:123456789012:parameter/lambda-ext-test-param/dummy-string","DataType":"text","LastModifiedDate":"2022-11-16T08:22:40.362Z","Name":"/lambda-ext-test-param/dummy-string","Selector":null,"SourceResult":null,"Type":"String","Value":"my-string-param-value","Version":1},"ResultMetadata":{}}',
    );
  });
  test('secret body: nulls for absent fields, base64 binary, ISO date with milliseconds', () => {
    const body = JSON.parse(
      secretBody({
        ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:bin-AbCdEf',
        CreatedDate: 1668586960.499,
        Name: 'bin',
        SecretBinary: 'AAEC',
        VersionId: 'v1',
        VersionStages: ['AWSCURRENT'],
      }),
    );
    assert.deepEqual(Object.keys(body), [
      'ARN',
      'CreatedDate',
      'Name',
      'SecretBinary',
      'SecretString',
      'VersionId',
      'VersionStages',
      'ResultMetadata',
    ]);
    assert.equal(body.CreatedDate, '2022-11-16T08:22:40.499Z');
    assert.equal(body.SecretString, null);
    assert.equal(body.SecretBinary, 'AAEC');
    assert.deepEqual(body.ResultMetadata, {});
  });
});

describe('query parsing', () => {
  const ssm = findRoute('/systemsmanager/parameters/get');
  const parse = (qs: string) => {
    assert.ok(ssm?.kind === 'item');
    return ssm.parse(parseQuery(qs)).item;
  };
  test('percent-decoding and + as space', () => {
    assert.deepEqual(parseQuery('name=%2Fa%2Fb+c&x'), [
      ['name', '/a/b c'],
      ['x', ''],
    ]);
  });
  test('malformed percent-encoding is a 400', () => {
    assert.throws(
      () => parseQuery('name=%E0%A4%A'),
      (e: { status?: number }) => e.status === 400,
    );
  });
  test('the first of version and label wins', () => {
    assert.deepEqual(parse('name=a&label=L&version=3'), {
      service: 'ssm',
      name: 'a',
      label: 'L',
      withDecryption: false,
    });
    assert.deepEqual(parse('version=3&name=a&label=L'), {
      service: 'ssm',
      name: 'a',
      version: '3',
      withDecryption: false,
    });
  });
  test('withDecryption is case-insensitive', () => {
    assert.equal((parse('name=a&withDecryption=TRUE') as { withDecryption: boolean }).withDecryption, true);
  });
  for (const [qs, why] of [
    ['', 'missing name'],
    ['name=', 'empty name'],
    ['name=a&name=b', 'repeated'],
    ['name=a&bogus=1', 'unknown parameter'],
    ['name=a&version=0', 'version 0'],
    ['name=a&version=x', 'non-numeric version'],
    ['name=a&withDecryption=yes', 'bad boolean'],
    [`name=${'a'.repeat(2049)}`, 'name too long'],
    ['name=a%00b', 'NUL in name'],
  ] as const) {
    test(`400 for ${why}`, () => {
      assert.throws(
        () => parse(qs),
        (e: { status?: number }) => e.status === 400,
      );
    });
  }
  test('/secrets/get refuses both name and secretId', () => {
    const r = findRoute('/secrets/get');
    assert.ok(r?.kind === 'item');
    assert.throws(
      () => r.parse(parseQuery('name=a&secretId=b')),
      (e: { status?: number }) => e.status === 400,
    );
    assert.deepEqual(r.parse(parseQuery('name=a')), {
      item: { service: 'secretsmanager', secretId: 'a' },
      opts: undefined,
    });
  });
  test('refreshNow and ttl become cache options', () => {
    assert.ok(ssm?.kind === 'item');
    assert.deepEqual(ssm.parse(parseQuery('name=a&refreshNow=TRUE&ttl=60')).opts, {
      refresh: true,
      ttlMs: 60_000,
    });
    assert.deepEqual(ssm.parse(parseQuery('name=a&ttl=0')).opts, { ttlMs: 0 });
    for (const bad of ['ttl=-1', 'ttl=86401', 'ttl=1.5', 'refreshNow=1', 'ttl=']) {
      assert.throws(
        () => ssm.parse(parseQuery(`name=a&${bad}`)),
        (e: { status?: number }) => e.status === 400,
        bad,
      );
    }
  });
  test('trailing slash is accepted; unknown paths are not routes', () => {
    assert.equal(findRoute('/systemsmanager/parameters/get/')?.kind, 'item');
    assert.equal(findRoute('/systemsmanager/parameters/getx'), undefined);
  });
});

describe('loopback Host check', () => {
  for (const h of [
    'localhost',
    'localhost:2773',
    '127.0.0.1',
    '127.1.2.3:80',
    '[::1]',
    '[::1]:2773',
    'app.localhost',
  ]) {
    test(`accepts ${h}`, () => assert.equal(isLoopbackHost(h), true));
  }
  for (const h of [
    'example.com',
    '169.254.169.254',
    '127.0.0.1.evil.com',
    '[::2]',
    'localhost:99999',
    '0.0.0.0',
    '10.0.0.1:2773',
  ]) {
    test(`refuses ${h}`, () => assert.equal(isLoopbackHost(h), false));
  }
});

describe('cache keys', () => {
  test('service, name, selector and decryption each make a distinct key', () => {
    const keys = new Set([
      cacheKey({ service: 'ssm', name: 'a', withDecryption: false }),
      cacheKey({ service: 'ssm', name: 'a', withDecryption: true }),
      cacheKey({ service: 'ssm', name: 'a', version: '1', withDecryption: false }),
      cacheKey({ service: 'ssm', name: 'a', label: '1', withDecryption: false }),
      cacheKey({ service: 'secretsmanager', secretId: 'a' }),
      cacheKey({ service: 'secretsmanager', secretId: 'a', versionId: 'x' }),
      cacheKey({ service: 'secretsmanager', secretId: 'a', versionStage: 'x' }),
    ]);
    assert.equal(keys.size, 7);
  });
});

describe('upstream error -> status', () => {
  const cases: Array<[AwsCallError, number]> = [
    [new AwsCallError('AccessDeniedException', 'x', 'aws', 400), 403],
    [new AwsCallError('UnrecognizedClientException', 'x', 'aws', 400), 403],
    [new AwsCallError('ParameterNotFound', '', 'aws', 400), 404],
    [new AwsCallError('ParameterVersionNotFound', '', 'aws', 400), 404],
    [new AwsCallError('ResourceNotFoundException', '', 'aws', 400), 404],
    [new AwsCallError('ValidationException', '', 'aws', 400), 400],
    [new AwsCallError('ThrottlingException', 'Rate exceeded', 'throttled', 400), 429],
    [new AwsCallError('InternalServerError', '', 'server', 500), 502],
    [new AwsCallError('ConnectionError', '', 'network'), 502],
    [new AwsCallError('MalformedResponse', '', 'malformed', 200), 502],
    [new AwsCallError('TimeoutError', '', 'timeout'), 504],
  ];
  for (const [e, status] of cases) {
    test(`${e.code} -> ${status}`, () => {
      const h = fromUpstream(e);
      assert.equal(h.status, status);
      assert.equal(h.type, e.code);
    });
  }
});
