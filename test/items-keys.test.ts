// What src/items.ts promises beyond test/items.test.ts: keys never let two roles, versionIds or stages
// meet and build a frozen request's key once; ids, ARN Regions and batch matches hold at their edges; an
// ARN outside the partition is refused with a message that shows what it names, cut short when long.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { partitionRule } from '../src/aws/endpoints.ts';
import type { WireParameter, WireSecretValue } from '../src/aws/types.ts';
import {
  answers,
  arnRegion,
  cacheKey,
  type ItemRequest,
  idsOf,
  outsidePartition,
  type ParameterRequest,
  plainKey,
  type SecretRequest,
  selectorOf,
} from '../src/items.ts';

const ROLE_A = 'arn:aws:iam::123456789012:role/a';
const ROLE_B = 'arn:aws:iam::123456789012:role/b';
const param = (name: string, more: Partial<ParameterRequest> = {}): ParameterRequest => ({
  service: 'ssm',
  name,
  withDecryption: false,
  ...more,
});
const secret = (secretId: string, more: Partial<SecretRequest> = {}): SecretRequest => ({
  service: 'secretsmanager',
  secretId,
  ...more,
});

describe('keys', () => {
  test('what one role fetched never answers a read made as another role', () => {
    for (const make of [
      (roleArn: string) => param('/a', { roleArn }),
      (roleArn: string) => secret('a', { roleArn }),
    ]) {
      assert.notEqual(cacheKey(make(ROLE_A)), cacheKey(make(ROLE_B)));
    }
    assert.notEqual(plainKey(param('/a', { roleArn: ROLE_A })), plainKey(param('/a', { roleArn: ROLE_B })));
  });

  test('two versionIds, or two stages, of one secret are two keys', () => {
    assert.notEqual(cacheKey(secret('a', { versionId: 'v1' })), cacheKey(secret('a', { versionId: 'v2' })));
    assert.notEqual(
      cacheKey(secret('a', { versionStage: 'AWSCURRENT' })),
      cacheKey(secret('a', { versionStage: 'AWSPREVIOUS' })),
    );
    assert.notEqual(
      selectorOf(secret('a', { versionId: 'v1', versionStage: 'AWSCURRENT' })),
      selectorOf(secret('a', { versionId: 'v1', versionStage: 'AWSPREVIOUS' })),
    );
  });

  test('an absent role, versionId or stage is the empty part, which no given one is (the server refuses empty values)', () => {
    // So no value a client may send can make a read share the key of a read without it.
    assert.equal(cacheKey(param('/a', { roleArn: '' })), cacheKey(param('/a')));
    assert.equal(plainKey(param('/a', { roleArn: '' })), plainKey(param('/a')));
    assert.equal(cacheKey(secret('a', { roleArn: '' })), cacheKey(secret('a')));
    assert.equal(cacheKey(secret('a', { versionId: '' })), cacheKey(secret('a')));
    assert.equal(cacheKey(secret('a', { versionStage: '' })), cacheKey(secret('a')));
    assert.equal(
      cacheKey(secret('a', { versionId: '', versionStage: 'S' })),
      cacheKey(secret('a', { versionStage: 'S' })),
    );
    assert.equal(
      cacheKey(secret('a', { versionId: 'v', versionStage: '' })),
      cacheKey(secret('a', { versionId: 'v' })),
    );
    assert.equal(
      selectorOf(secret('a', { versionId: '', versionStage: 'S' })),
      selectorOf(secret('a', { versionStage: 'S' })),
    );
    assert.equal(
      selectorOf(secret('a', { versionId: 'v', versionStage: '' })),
      selectorOf(secret('a', { versionId: 'v' })),
    );
  });

  test("a frozen request's key is built once: later reads of it look at none of the fields it is made of", () => {
    for (const [request, key] of [
      [param('/memo', { version: '2', roleArn: ROLE_A }), cacheKey],
      [param('/memo', { label: 'L' }), plainKey],
      [secret('memo', { versionStage: 'S' }), cacheKey],
    ] as Array<[ItemRequest, (r: ItemRequest) => string | undefined]>) {
      let reads = 0;
      // A proxy of a frozen object is frozen too; its get trap counts the fields the key function reads
      // (plainKey looks at the service first: a secret has none).
      const watched = new Proxy(Object.freeze(request), {
        get(target, field, receiver) {
          if (field !== 'service') reads++;
          return Reflect.get(target, field, receiver);
        },
      });
      const first = key(watched);
      assert.ok(reads > 0);
      reads = 0;
      assert.equal(key(watched), first);
      assert.equal(key(watched), first);
      assert.equal(reads, 0, `${reads} fields read again for ${JSON.stringify(request)}`);
    }
  });
});

describe('ids at the edges', () => {
  test('only an SSM parameter ARN names more ids than itself', () => {
    // A name (or name:label) that holds `:parameter/` but is no ARN.
    assert.deepEqual(idsOf(param('x:parameter/y')), ['x:parameter/y']);
    // A secret id that looks like a parameter ARN is a secret's id, nothing more.
    const ssmArn = 'arn:aws:ssm:us-east-1:123456789012:parameter/y';
    assert.deepEqual(idsOf(secret(ssmArn)), [ssmArn]);
    assert.deepEqual(idsOf(param(ssmArn)), [ssmArn, '/y', 'y']);
  });

  test('an item without an ARN answers only for its name, even for an id spelt "undefined"', () => {
    const p: WireParameter = { Name: '/app/x', Type: 'String', Value: 'v' };
    assert.equal(answers('ssm', p, 'undefined'), false);
    assert.equal(answers('ssm', { ...p, Name: 'undefined' }, 'undefined'), true);
  });

  test("a secret's partial ARN is its ARN less exactly the suffix, not a shorter beginning that ends before a '-'", () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:my-app-db-AbCdEf';
    const s: WireSecretValue = { Name: 'my-app-db', ARN: arn };
    assert.equal(answers('secretsmanager', s, arn.slice(0, -7)), true);
    assert.equal(
      answers('secretsmanager', s, 'arn:aws:secretsmanager:us-east-1:123456789012:secret:my'),
      false,
    );
    assert.equal(
      answers('secretsmanager', s, 'arn:aws:secretsmanager:us-east-1:123456789012:secret:my-app'),
      false,
    );
  });
});

describe('the Region an ARN names', () => {
  test('only an ARN from its start counts, in every partition', () => {
    for (const [id, region] of [
      ['arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x-AbCdEf', 'cn-north-1'],
      ['arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x', 'us-gov-west-1'],
      ['arn:aws:secretsmanager:eu-west-1:123456789012:secret:x', 'eu-west-1'],
    ] as const) {
      assert.equal(arnRegion(secret(id)), region, id);
    }
    // An ARN-looking tail after another ARN's start names no Region.
    assert.equal(arnRegion(param('arn:x:arn:aws:ssm:eu-west-1:123456789012:parameter/x')), undefined);
    assert.equal(
      arnRegion(secret('arn:x:arn:aws:secretsmanager:eu-west-1:123456789012:secret:x')),
      undefined,
    );
  });
});

describe('ARNs outside the partition', () => {
  const p = partitionRule('us-east-1');

  test("the Region of an ARN of another service is not pscache's to follow, nor is any Region without a service", () => {
    assert.equal(
      outsidePartition('arn:aws:secretsmanager:zz-fake-1:123456789012:secret:x', 'ssm', p),
      undefined,
    );
    assert.equal(
      outsidePartition('arn:aws:ssm:zz-fake-1:123456789012:parameter/x', 'secretsmanager', p),
      undefined,
    );
    assert.match(
      outsidePartition('arn:aws:ssm:zz-fake-1:123456789012:parameter/x', 'ssm', p)!,
      /^names Region "zz-fake-1", which is not a Region of partition aws \(pscache's Region is us-east-1\)$/,
    );
    // Without a service only the partition counts, however little of an ARN follows it.
    assert.equal(outsidePartition('arn:aws', undefined, p), undefined);
    assert.equal(outsidePartition('arn:aws:iam::123456789012:role/r', undefined, p), undefined);
  });

  test('an ARN of the service that names no Region is refused, and says the Region is empty', () => {
    assert.equal(
      outsidePartition('arn:aws:ssm', 'ssm', p),
      `names Region "", which is not a Region of partition aws (pscache's Region is us-east-1)`,
    );
  });

  test('what the message shows of an ARN is cut after 64 characters', () => {
    const region64 = `${'a'.repeat(60)}-x-1`;
    assert.equal(region64.length, 64);
    assert.equal(
      outsidePartition(`arn:aws:ssm:${region64}:123456789012:parameter/x`, 'ssm', p),
      `names Region "${region64}", which is not a Region of partition aws (pscache's Region is us-east-1)`,
    );
    const partition65 = `aws${'b'.repeat(62)}`;
    assert.equal(partition65.length, 65);
    assert.equal(
      outsidePartition(`arn:${partition65}:ssm:us-east-1:123456789012:parameter/x`, 'ssm', p),
      `is an ARN of partition "${partition65.slice(0, 64)}..."; pscache reads only from partition aws, its Region us-east-1's`,
    );
  });
});
