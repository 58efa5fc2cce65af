// ListSecrets and DescribeParameters, which the AWS CLI and many tools call first, driven through the
// official AWS SDK v3 clients and their paginators (SigV4 on), checked against the API reference.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  ListSecretsCommand,
  type ListSecretsCommandInput,
  paginateListSecrets,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  DescribeParametersCommand,
  type DescribeParametersCommandInput,
  PutParameterCommand,
  paginateDescribeParameters,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { type Emulator, startEmulator } from '../index.ts';
import { rejects } from './helpers/assert.ts';

const CREDS = { accessKeyId: 'AKIDLISTINGTEST0001', secretAccessKey: 'listing-test-secret-key' };
let emu: Emulator;
let sm: SecretsManagerClient;
let ssm: SSMClient;
/** Moved a second per secret created, so creation order is certain; near now, for the signatures. */
let clock = Date.now() - 60_000;

before(async () => {
  emu = await startEmulator({
    store: { parameters: [], secrets: [] },
    credentials: [CREDS],
    clock: () => clock,
  });
  const config = { endpoint: emu.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 };
  sm = new SecretsManagerClient(config);
  ssm = new SSMClient(config);
  for (const [name, tags] of [
    ['app/db', [{ Key: 'team', Value: 'payments' }]],
    ['app/api', [{ Key: 'team', Value: 'search' }]],
    ['other/key', []],
    ['gone/soon', []],
  ] as const) {
    clock += 1000;
    await sm.send(new CreateSecretCommand({ Name: name, SecretString: `value of ${name}`, Tags: [...tags] }));
  }
  await sm.send(new DeleteSecretCommand({ SecretId: 'gone/soon' }));
  for (const [name, type] of [
    ['/app/db/host', 'String'],
    ['/app/db/password', 'SecureString'],
    ['/app/api/url', 'String'],
    ['/app/flags', 'StringList'],
    ['plain', 'String'],
  ] as const) {
    await ssm.send(new PutParameterCommand({ Name: name, Value: `v-${name}`, Type: type }));
  }
});
after(async () => {
  sm.destroy();
  ssm.destroy();
  await emu.close();
});

describe('ListSecrets', () => {
  test('newest first by default, without secrets planned for deletion and without values', async () => {
    const r = await sm.send(new ListSecretsCommand({}));
    assert.deepEqual(
      r.SecretList?.map((s) => s.Name),
      ['other/key', 'app/api', 'app/db'],
    );
    const db = r.SecretList!.find((s) => s.Name === 'app/db')!;
    assert.match(db.ARN!, /^arn:aws:secretsmanager:us-east-1:123456789012:secret:app\/db-[A-Za-z0-9]{6}$/);
    assert.deepEqual(db.Tags, [{ Key: 'team', Value: 'payments' }]);
    assert.deepEqual(Object.values(db.SecretVersionsToStages ?? {}), [['AWSCURRENT']]);
    assert.ok(db.CreatedDate instanceof Date && db.LastChangedDate instanceof Date);
    assert.ok(!JSON.stringify(r).includes('value of'), 'ListSecrets never lists values');
    assert.equal(r.NextToken, undefined);
  });

  test('filters (name, tag-key, tag-value, negation), sort order, planned deletion', async () => {
    const names = async (input: ListSecretsCommandInput) =>
      (await sm.send(new ListSecretsCommand(input))).SecretList?.map((s) => s.Name);
    assert.deepEqual(await names({ Filters: [{ Key: 'name', Values: ['app/'] }], SortOrder: 'asc' }), [
      'app/db',
      'app/api',
    ]);
    assert.deepEqual(await names({ Filters: [{ Key: 'tag-value', Values: ['pay'] }] }), ['app/db']);
    assert.deepEqual(await names({ Filters: [{ Key: 'tag-key', Values: ['!team'] }] }), ['other/key']);
    assert.deepEqual(await names({ SortBy: 'name', SortOrder: 'asc' }), ['app/api', 'app/db', 'other/key']);
    assert.deepEqual(await names({ IncludePlannedDeletion: true, SortBy: 'name', SortOrder: 'asc' }), [
      'app/api',
      'app/db',
      'gone/soon',
      'other/key',
    ]);
    await rejects(() => sm.send(new ListSecretsCommand({ SortOrder: 'up' as 'asc' })), 'ValidationException');
  });

  test('pages through the SDK paginator', async () => {
    const seen: string[] = [];
    for await (const page of paginateListSecrets({ client: sm, pageSize: 2 }, {})) {
      assert.ok((page.SecretList?.length ?? 0) <= 2);
      seen.push(...(page.SecretList ?? []).map((s) => s.Name!));
    }
    assert.deepEqual(seen, ['other/key', 'app/api', 'app/db']);
    await rejects(() => sm.send(new ListSecretsCommand({ NextToken: 'bogus' })), 'InvalidNextTokenException');
  });
});

describe('DescribeParameters', () => {
  const names = async (input: DescribeParametersCommandInput) =>
    (await ssm.send(new DescribeParametersCommand(input))).Parameters?.map((p) => p.Name);

  test('every parameter, in name order, with its metadata and never its value', async () => {
    const r = await ssm.send(new DescribeParametersCommand({}));
    assert.deepEqual(
      r.Parameters?.map((p) => p.Name),
      ['/app/api/url', '/app/db/host', '/app/db/password', '/app/flags', 'plain'],
    );
    const secret = r.Parameters!.find((p) => p.Name === '/app/db/password')!;
    assert.equal(secret.Type, 'SecureString');
    assert.equal(secret.KeyId, 'alias/aws/ssm');
    assert.equal(secret.Version, 1);
    assert.equal(secret.Tier, 'Standard');
    assert.equal(secret.DataType, 'text');
    assert.equal(secret.ARN, 'arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password');
    assert.ok(secret.LastModifiedDate instanceof Date);
    assert.ok(!JSON.stringify(r).includes('v-/app'), 'DescribeParameters never lists values');
  });

  test('ParameterFilters: Path (OneLevel, Recursive), Name (Equals, BeginsWith, Contains), Type; and the old Filters', async () => {
    assert.deepEqual(await names({ ParameterFilters: [{ Key: 'Path', Values: ['/app'] }] }), ['/app/flags']);
    assert.deepEqual(
      await names({ ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: ['/app/db'] }] }),
      ['/app/db/host', '/app/db/password'],
    );
    assert.deepEqual(await names({ ParameterFilters: [{ Key: 'Name', Values: ['plain'] }] }), ['plain']);
    assert.deepEqual(
      await names({ ParameterFilters: [{ Key: 'Name', Option: 'BeginsWith', Values: ['/app/db'] }] }),
      ['/app/db/host', '/app/db/password'],
    );
    assert.deepEqual(
      await names({ ParameterFilters: [{ Key: 'Name', Option: 'Contains', Values: ['pass'] }] }),
      ['/app/db/password'],
    );
    assert.deepEqual(
      await names({
        ParameterFilters: [
          { Key: 'Type', Values: ['String'] },
          { Key: 'Path', Option: 'Recursive', Values: ['/app'] },
        ],
      }),
      ['/app/api/url', '/app/db/host'],
    );
    assert.deepEqual(await names({ Filters: [{ Key: 'Type', Values: ['StringList'] }] }), ['/app/flags']);
    assert.deepEqual(await names({ ParameterFilters: [{ Key: 'tag:team' }] }), []);
    await rejects(
      () => ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Label', Values: ['x'] }] })),
      'InvalidFilterKey',
    );
    await rejects(
      () =>
        ssm.send(
          new DescribeParametersCommand({
            ParameterFilters: [{ Key: 'Type', Option: 'Contains', Values: ['S'] }],
          }),
        ),
      'InvalidFilterOption',
    );
  });

  test('pages through the SDK paginator', async () => {
    const seen: string[] = [];
    for await (const page of paginateDescribeParameters({ client: ssm, pageSize: 2 }, {})) {
      assert.ok((page.Parameters?.length ?? 0) <= 2);
      seen.push(...(page.Parameters ?? []).map((p) => p.Name!));
    }
    assert.equal(seen.length, 5);
    assert.deepEqual(seen, [...seen].sort());
  });
});
