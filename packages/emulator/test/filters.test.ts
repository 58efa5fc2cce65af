// Secret tags and BatchGetSecretValue's Filters (name, description, tag-key, tag-value) with MaxResults and
// NextToken paging, driven through the official Secrets Manager SDK client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BatchGetSecretValueCommand,
  type BatchGetSecretValueCommandOutput,
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  type Filter,
  paginateBatchGetSecretValue,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { type Emulator, startEmulator, validateStore } from '../index.ts';
import { rejects } from './helpers/assert.ts';

const CREDS = { accessKeyId: 'AKIAFILTERTEST000001', secretAccessKey: 'filter-test-secret-key' };

let emu: Emulator;
let client: SecretsManagerClient;

before(async () => {
  emu = await startEmulator({
    credentials: [CREDS],
    store: {
      secrets: [
        { name: 'app/a', secretString: 'A', tags: { team: 'core', prefetch: '' } },
        { name: 'app/b', secretString: 'B', tags: { prefetch: 'yes' }, description: 'The B Secret' },
        { name: 'app/c', secretString: 'C', tags: { 'team-owner': 'ops' } },
        { name: 'other/d', secretString: 'D' },
        { name: 'eu/e', secretString: 'E', tags: { prefetch: 'eu' }, region: 'eu-west-1' },
      ],
    },
  });
  client = new SecretsManagerClient({ endpoint: emu.url, region: 'us-east-1', credentials: CREDS });
});
after(async () => {
  client.destroy();
  await emu.close();
});

const names = (out: BatchGetSecretValueCommandOutput) => (out.SecretValues ?? []).map((v) => v.Name ?? '?');
const filtered = (Filters: Filter[], MaxResults?: number) =>
  client.send(new BatchGetSecretValueCommand({ Filters, ...(MaxResults ? { MaxResults } : {}) }));

describe('BatchGetSecretValue with Filters', () => {
  test('tag-key finds every secret carrying a tag key (a prefix, case-sensitive), in its own Region only', async () => {
    const out = await filtered([{ Key: 'tag-key', Values: ['prefetch'] }]);
    assert.deepEqual(names(out), ['app/a', 'app/b']);
    assert.deepEqual(
      out.SecretValues?.map((v) => v.SecretString),
      ['A', 'B'],
    );
    assert.equal(out.NextToken, undefined);
    // A prefix: `team` also finds `team-owner`, as Secrets Manager does.
    assert.deepEqual(names(await filtered([{ Key: 'tag-key', Values: ['team'] }])), ['app/a', 'app/c']);
    assert.deepEqual(names(await filtered([{ Key: 'tag-key', Values: ['Team'] }])), []);
  });

  test('values of one filter are ORed, filters ANDed, ! negates; name, description, tag-value', async () => {
    assert.deepEqual(names(await filtered([{ Key: 'tag-key', Values: ['team', 'prefetch'] }])), [
      'app/a',
      'app/b',
      'app/c',
    ]);
    assert.deepEqual(
      names(
        await filtered([
          { Key: 'tag-key', Values: ['team'] },
          { Key: 'tag-key', Values: ['prefetch'] },
        ]),
      ),
      ['app/a'],
    );
    assert.deepEqual(names(await filtered([{ Key: 'tag-key', Values: ['!prefetch'] }])), [
      'app/c',
      'other/d',
    ]);
    assert.deepEqual(names(await filtered([{ Key: 'name', Values: ['app/'] }])), ['app/a', 'app/b', 'app/c']);
    assert.deepEqual(names(await filtered([{ Key: 'description', Values: ['the b'] }])), ['app/b']);
    assert.deepEqual(names(await filtered([{ Key: 'tag-value', Values: ['ye'] }])), ['app/b']);
  });

  test('MaxResults pages with NextToken until every match is read; a made-up token is refused', async () => {
    const first = await filtered([{ Key: 'name', Values: ['app/'] }], 2);
    assert.deepEqual(names(first), ['app/a', 'app/b']);
    assert.ok(first.NextToken);
    const second = await client.send(
      new BatchGetSecretValueCommand({
        Filters: [{ Key: 'name', Values: ['app/'] }],
        MaxResults: 2,
        NextToken: first.NextToken,
      }),
    );
    assert.deepEqual(names(second), ['app/c']);
    assert.equal(second.NextToken, undefined);
    const all: string[] = [];
    for await (const page of paginateBatchGetSecretValue(
      { client, pageSize: 1 },
      { Filters: [{ Key: 'tag-key', Values: ['prefetch', 'team'] }] },
    )) {
      assert.ok((page.SecretValues ?? []).length <= 1);
      all.push(...names(page));
    }
    assert.deepEqual(all, ['app/a', 'app/b', 'app/c']);
    await rejects(
      () =>
        client.send(
          new BatchGetSecretValueCommand({
            Filters: [{ Key: 'name', Values: ['app/'] }],
            NextToken: 'bm90IGEgbmFtZQ==',
          }),
        ),
      'InvalidNextTokenException',
    );
  });

  test('denied secrets come back in Errors, deleted ones not at all; bad filters are refused', async () => {
    emu.deny(['app/b']);
    await client.send(
      new CreateSecretCommand({
        Name: 'app/gone',
        SecretString: 'x',
        Tags: [{ Key: 'prefetch', Value: '' }],
      }),
    );
    await client.send(new DeleteSecretCommand({ SecretId: 'app/gone', RecoveryWindowInDays: 7 }));
    try {
      const out = await filtered([{ Key: 'tag-key', Values: ['prefetch'] }]);
      assert.deepEqual(names(out), ['app/a']);
      assert.deepEqual(
        out.Errors?.map((e) => [e.SecretId, e.ErrorCode]),
        [['app/b', 'AccessDeniedException']],
      );
    } finally {
      emu.clearDeny();
    }
    await rejects(() => filtered([{ Key: 'all', Values: ['x'] }]), 'InvalidParameterException');
    await rejects(() => filtered([{ Key: 'tag-key', Values: ['bad#value'] }]), 'InvalidParameterException');
    await rejects(
      () => client.send(new BatchGetSecretValueCommand({ SecretIdList: ['app/a'], MaxResults: 5 })),
      'InvalidParameterException',
    );
  });
});

describe('secret tags', () => {
  test('CreateSecret Tags are kept, shown by DescribeSecret and found by the tag filters', async () => {
    await client.send(
      new CreateSecretCommand({
        Name: 'tagged/new',
        SecretString: 'N',
        Tags: [
          { Key: 'discover-me', Value: 'v1' },
          { Key: 'env', Value: 'prod' },
        ],
      }),
    );
    const d = await client.send(new DescribeSecretCommand({ SecretId: 'tagged/new' }));
    assert.deepEqual(d.Tags, [
      { Key: 'discover-me', Value: 'v1' },
      { Key: 'env', Value: 'prod' },
    ]);
    assert.deepEqual(names(await filtered([{ Key: 'tag-key', Values: ['discover-me'] }])), ['tagged/new']);
    await rejects(
      () =>
        client.send(
          new CreateSecretCommand({
            Name: 'tagged/bad',
            SecretString: 'x',
            Tags: [{ Key: 'aws:reserved', Value: '' }],
          }),
        ),
      'InvalidParameterException',
    );
  });

  test('the store file takes tags as an object of key -> value, and checks them', () => {
    const ok = validateStore({ secrets: [{ name: 's', secretString: 'x', tags: { a: '1' } }] }, 'store');
    assert.deepEqual(ok.secrets?.[0]?.tags, { a: '1' });
    assert.throws(
      () => validateStore({ secrets: [{ name: 's', secretString: 'x', tags: { a: 1 } }] }, 'store'),
      /"tags" must be an object of tag key -> string value/,
    );
    assert.throws(
      () => validateStore({ secrets: [{ name: 's', secretString: 'x', tags: { 'aws:x': '' } }] }, 'store'),
      /tag "aws:x": a tag key must not start with "aws:"/,
    );
  });
});
