// Regions and partitions below the HTTP routes: which Regions an ARN may send a read to (every partition's
// own, nothing else), and the Principals table that makes a client per (role, Region): a Region counts
// against MAX_REGIONS only once a call there has succeeded, and made-up Regions hold few clients.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AwsJsonClient } from '../src/aws/client.ts';
import { staticCredentials } from '../src/aws/credentials.ts';
import { inPartition, partitionRule } from '../src/aws/endpoints.ts';
import { MAX_REGIONS, MAX_UNANSWERED_REGIONS, Principals } from '../src/aws/roles.ts';
import { RefusedError, type Service } from '../src/aws/types.ts';
import { outsidePartition } from '../src/items.ts';
import { silentLogger } from '../src/log.ts';

const KEYS = {
  accessKeyId: 'AKIAPSCACHETEST00001',
  secretAccessKey: 'pscache/test/secret/access/key/never-logged',
};

describe('partitions', () => {
  const table: Array<[string, string, string[], string[]]> = [
    [
      'us-east-1',
      'aws',
      ['eu-west-1', 'ap-southeast-4', 'il-central-1', 'mx-central-1'],
      ['cn-north-1', 'us-gov-west-1', 'us-isob-east-1', 'eusc-de-east-1', 'zz-aaa-1'],
    ],
    ['cn-north-1', 'aws-cn', ['cn-northwest-1'], ['us-east-1', 'us-gov-west-1']],
    ['us-gov-west-1', 'aws-us-gov', ['us-gov-east-1'], ['us-east-1', 'us-iso-east-1']],
    ['us-iso-east-1', 'aws-iso', ['us-iso-west-1'], ['us-isob-east-1', 'us-east-1']],
    ['us-isob-east-1', 'aws-iso-b', ['us-isob-west-1'], ['us-iso-east-1']],
    ['eu-isoe-west-1', 'aws-iso-e', ['eu-isoe-west-2'], ['eu-west-1']],
    ['us-isof-south-1', 'aws-iso-f', ['us-isof-east-1'], ['us-east-1']],
    ['eusc-de-east-1', 'aws-eusc', ['eusc-de-west-1'], ['eu-central-1']],
  ];
  for (const [region, name, inside, outside] of table) {
    test(`${region}: partition ${name}`, () => {
      const p = partitionRule(region);
      assert.equal(p.name, name);
      for (const r of [region, ...inside]) assert.ok(inPartition(r, p), r);
      for (const r of outside) assert.ok(!inPartition(r, p), r);
      const arn = (partition: string, where: string) =>
        `arn:${partition}:secretsmanager:${where}:123456789012:secret:x-AbCdEf`;
      assert.equal(outsidePartition(arn(name, inside[0]!), 'secretsmanager', p), undefined);
      assert.match(outsidePartition(arn(name, outside[0]!), 'secretsmanager', p)!, /^names Region/);
      assert.match(
        outsidePartition(arn(name === 'aws' ? 'aws-cn' : 'aws', region), 'secretsmanager', p)!,
        new RegExp(`^is an ARN of partition "[a-z-]+"; pscache reads only from partition ${name}`),
      );
    });
  }

  test('Region names that only look like Regions, and other partitions spelled like aws, are refused', () => {
    const p = partitionRule('us-east-1');
    for (const r of [
      'US-EAST-1',
      'us-east-1.evil.example',
      'us-east_1-1',
      'us-east-1 ',
      '',
      'us-east-999',
      'x'.repeat(200),
      `us-${'a'.repeat(40)}-1`,
    ]) {
      assert.ok(!inPartition(r, p), JSON.stringify(r));
    }
    for (const partition of ['awsevil', 'aws ', 'AWS', 'aws-cn-x', '']) {
      assert.match(
        outsidePartition(`arn:${partition}:ssm:us-east-1:123456789012:parameter/x`, 'ssm', p)!,
        /is an ARN of partition/,
      );
    }
    // A configured Region is always its own partition's, whatever it is called (LocalStack, tests).
    assert.ok(inPartition('local', partitionRule('local')));
    // Plain names are not ARNs.
    assert.equal(outsidePartition('/app/arn:aws-cn:x', 'ssm', p), undefined);
    // The Region check is for ARNs of the service read (whose Region pscache follows); roles have none.
    assert.equal(outsidePartition('arn:aws:iam::123456789012:role/r', undefined, p), undefined);
    assert.match(
      outsidePartition('arn:aws-cn:iam::123456789012:role/r', undefined, p)!,
      /partition "aws-cn"/,
    );
  });
});

/** Principals whose clients record whether a call through them has been declared a success. */
function principals(maxRoles = 21) {
  const made: Array<{ service: Service; region: string; succeeded: (() => void) | undefined }> = [];
  const p = new Principals({
    base: staticCredentials(KEYS),
    assume: async () => KEYS,
    region: 'us-east-1',
    maxRoles,
    log: silentLogger,
    makeClient: (service, region, _credentials, succeeded) => {
      const c = { service, region } as unknown as AwsJsonClient;
      made.push({ service, region, succeeded });
      return c;
    },
  });
  return { p, made };
}

/** Region names of the aws partition that no AWS Region has (yet). */
const madeUp = (n: number) =>
  Array.from(
    { length: n },
    (_, i) => `us-fake${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}-1`,
  );
const role = (i: number) => `arn:aws:iam::123456789012:role/reader-${i}`;

describe('Principals: Regions', () => {
  test('63 made-up Regions read as 21 principals fill nothing: a real Region still gets a client', () => {
    const { p, made } = principals();
    const regions = madeUp(63);
    for (let who = 0; who < 21; who++) {
      for (const region of regions) p.client('secretsmanager', who === 0 ? undefined : role(who), region);
    }
    assert.equal(made.length, 21 * 63);
    // None answered. eu-west-1 is one Region more than 64 were made for, and is not refused.
    const eu = p.client('secretsmanager', undefined, 'eu-west-1');
    made.at(-1)!.succeeded!();
    assert.equal(p.client('secretsmanager', undefined, 'eu-west-1'), eu, 'kept once it answered');
  });

  test('only the clients of the last few unanswered Regions are kept: the rest are made again', () => {
    const { p, made } = principals();
    const regions = madeUp(MAX_UNANSWERED_REGIONS + 5);
    const first = regions.map((r) => p.client('ssm', undefined, r));
    const before = made.length;
    // The newest MAX_UNANSWERED_REGIONS are still held...
    for (const [i, r] of regions.entries()) {
      if (i >= regions.length - MAX_UNANSWERED_REGIONS)
        assert.equal(p.client('ssm', undefined, r), first[i], r);
    }
    assert.equal(made.length, before);
    // ...the oldest were forgotten: asking again makes a new client.
    assert.notEqual(p.client('ssm', undefined, regions[0]!), first[0]);
    assert.equal(made.length, before + 1);
  });

  test('Regions that answered count: 64 in all, the configured one included; the next is TooManyRegions', () => {
    const { p, made } = principals();
    const regions = madeUp(MAX_REGIONS);
    for (const region of regions.slice(0, MAX_REGIONS - 1)) {
      p.client('secretsmanager', undefined, region);
      made.at(-1)!.succeeded!();
    }
    assert.throws(
      () => p.client('secretsmanager', undefined, regions.at(-1)),
      (e: unknown) => e instanceof RefusedError && e.code === 'TooManyRegions',
    );
    // Counted Regions keep working, for other services and principals too; the configured one never counts.
    p.client('ssm', role(1), regions[0]);
    assert.equal(made.at(-1)!.succeeded, undefined, 'a counted Region needs no more telling');
    p.client('ssm');
    assert.equal(made.at(-1)!.region, 'us-east-1');
  });

  test('a Region outside the configured partition is refused before any client is made', () => {
    const { p, made } = principals();
    for (const region of ['cn-north-1', 'us-isob-east-1', 'zz-aaa-1', 'us-east-1.evil.example']) {
      assert.throws(
        () => p.client('secretsmanager', undefined, region),
        (e: unknown) => e instanceof RefusedError && /is not a Region of partition aws/.test(e.message),
      );
    }
    assert.equal(made.length, 0);
  });
});
