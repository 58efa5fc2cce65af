// The emulator, driven through the official AWS SDK v3 clients (SigV4 on) and raw HTTP.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BatchGetSecretValueCommand,
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  type SecretsManagerClientConfig,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
  paginateGetParametersByPath,
  SSMClient,
  type SSMClientConfig,
} from '@aws-sdk/client-ssm';
import { type Emulator, loadStoreFile, startEmulator } from '../index.ts';
import { rejects } from './helpers/assert.ts';
import { awsCall, rawRequest, signedCall } from './helpers/emulator-raw.ts';

/** The example store shipped with pscache, at the root of the repository. */
const STORE = fileURLToPath(new URL('../../../examples/store.json', import.meta.url));
const CREDS = { accessKeyId: 'AKIDEMULATORTEST01', secretAccessKey: 'emulator-test-secret-key' };

const clients: { destroy(): void }[] = [];

function ssm(emu: Emulator, extra: Partial<SSMClientConfig> = {}): SSMClient {
  const c = new SSMClient({ endpoint: emu.url, region: 'us-east-1', credentials: CREDS, ...extra });
  clients.push(c);
  return c;
}

function sm(emu: Emulator, extra: Partial<SecretsManagerClientConfig> = {}): SecretsManagerClient {
  const c = new SecretsManagerClient({
    endpoint: emu.url,
    region: 'us-east-1',
    credentials: CREDS,
    ...extra,
  });
  clients.push(c);
  return c;
}

after(() => {
  for (const c of clients) c.destroy();
});

describe('SSM through the SDK', () => {
  let emu: Emulator;
  let client: SSMClient;
  before(async () => {
    emu = await startEmulator({ store: STORE, credentials: [CREDS] });
    client = ssm(emu);
  });
  after(() => emu.close());

  test('GetParameter returns the stored String and StringList with ARN, DataType and a Date', async () => {
    const { Parameter: p } = await client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }));
    assert.equal(p?.Value, 'https://api.example.com');
    assert.equal(p?.Type, 'String');
    assert.equal(p?.Version, 1);
    assert.equal(p?.DataType, 'text');
    assert.equal(p?.ARN, 'arn:aws:ssm:us-east-1:123456789012:parameter/myapp/api-endpoint');
    assert.ok(
      p?.LastModifiedDate instanceof Date && Math.abs(p.LastModifiedDate.getTime() - Date.now()) < 600_000,
    );
    assert.equal(p?.Selector, undefined);
    assert.equal(p?.SourceResult, undefined);
    const list = await client.send(new GetParameterCommand({ Name: '/myapp/feature-flags' }));
    assert.equal(list.Parameter?.Type, 'StringList');
    assert.equal(list.Parameter?.Value, 'a,b,c');
  });

  test('a SecureString read without decryption is a stable KMS-like ciphertext; with decryption the plaintext', async () => {
    const enc1 = await client.send(new GetParameterCommand({ Name: '/myapp/db/password' }));
    const enc2 = await client.send(
      new GetParameterCommand({ Name: '/myapp/db/password', WithDecryption: false }),
    );
    const value = enc1.Parameter?.Value ?? '';
    assert.match(value, /^AQICAH/);
    assert.ok(!value.includes('correct-horse'));
    assert.ok(!Buffer.from(value, 'base64').toString('latin1').includes('correct-horse'));
    assert.equal(enc2.Parameter?.Value, value);
    const dec = await client.send(
      new GetParameterCommand({ Name: '/myapp/db/password', WithDecryption: true }),
    );
    assert.equal(dec.Parameter?.Value, 'correct-horse-battery-staple');
    assert.equal(dec.Parameter?.Type, 'SecureString');
  });

  test('PutParameter versions, Overwrite, selectors by version, label and ARN, and label moves', async () => {
    const name = '/test/put/param';
    const v1 = await client.send(new PutParameterCommand({ Name: name, Value: 'one', Type: 'String' }));
    assert.equal(v1.Version, 1);
    assert.equal(v1.Tier, 'Standard');
    await rejects(
      () => client.send(new PutParameterCommand({ Name: name, Value: 'two', Type: 'String' })),
      'ParameterAlreadyExists',
    );
    const v2 = await client.send(new PutParameterCommand({ Name: name, Value: 'two', Overwrite: true }));
    assert.equal(v2.Version, 2);

    const latest = await client.send(new GetParameterCommand({ Name: name }));
    assert.equal(latest.Parameter?.Value, 'two');
    assert.equal(latest.Parameter?.Type, 'String', 'type kept when Overwrite omits it');
    const byVersion = await client.send(new GetParameterCommand({ Name: `${name}:1` }));
    assert.equal(byVersion.Parameter?.Value, 'one');
    assert.equal(byVersion.Parameter?.Version, 1);
    assert.equal(byVersion.Parameter?.Selector, ':1');
    assert.equal(byVersion.Parameter?.Name, name);

    const labelled = await client.send(
      new LabelParameterVersionCommand({
        Name: name,
        ParameterVersion: 1,
        Labels: ['golden', 'aws-bad', '9lives'],
      }),
    );
    assert.equal(labelled.ParameterVersion, 1);
    assert.deepEqual(labelled.InvalidLabels, ['aws-bad', '9lives']);
    const byLabel = await client.send(new GetParameterCommand({ Name: `${name}:golden` }));
    assert.equal(byLabel.Parameter?.Value, 'one');
    assert.equal(byLabel.Parameter?.Selector, ':golden');

    // Labelling the latest version (no ParameterVersion) moves the label.
    const moved = await client.send(new LabelParameterVersionCommand({ Name: name, Labels: ['golden'] }));
    assert.equal(moved.ParameterVersion, 2);
    const afterMove = await client.send(new GetParameterCommand({ Name: `${name}:golden` }));
    assert.equal(afterMove.Parameter?.Value, 'two');

    const byArn = await client.send(
      new GetParameterCommand({ Name: 'arn:aws:ssm:us-east-1:123456789012:parameter/test/put/param:1' }),
    );
    assert.equal(byArn.Parameter?.Value, 'one');
    assert.equal(byArn.Parameter?.Selector, ':1');
    assert.equal(byArn.Parameter?.ARN, 'arn:aws:ssm:us-east-1:123456789012:parameter/test/put/param');

    await rejects(
      () => client.send(new GetParameterCommand({ Name: `${name}:9` })),
      'ParameterVersionNotFound',
    );
    await rejects(
      () => client.send(new GetParameterCommand({ Name: `${name}:nolabel` })),
      'ParameterNotFound',
    );
    await rejects(
      () => client.send(new GetParameterCommand({ Name: '/no/such/param' })),
      'ParameterNotFound',
    );
  });

  test('the seeded parameter with versions and labels answers each version', async () => {
    const stable = await client.send(new GetParameterCommand({ Name: '/myapp/config/version:stable' }));
    assert.equal(stable.Parameter?.Value, 'v2');
    const first = await client.send(new GetParameterCommand({ Name: '/myapp/config/version:1' }));
    assert.equal(first.Parameter?.Value, 'v1');
    const latest = await client.send(new GetParameterCommand({ Name: '/myapp/config/version' }));
    assert.equal(latest.Parameter?.Version, 3);
  });

  test('PutParameter rejects reserved prefixes, missing Type on create, and long standard values', async () => {
    await rejects(
      () => client.send(new PutParameterCommand({ Name: '/aws/mine', Value: 'x', Type: 'String' })),
      'ValidationException',
    );
    await rejects(
      () => client.send(new PutParameterCommand({ Name: '/test/notype', Value: 'x' })),
      'ValidationException',
    );
    await rejects(
      () =>
        client.send(new PutParameterCommand({ Name: '/test/long', Value: 'x'.repeat(4097), Type: 'String' })),
      'ValidationException',
    );
  });

  test('GetParameters returns found ones sorted by name and the rest in InvalidParameters', async () => {
    const out = await client.send(
      new GetParametersCommand({
        Names: [
          '/myapp/db/host',
          '/nope/one',
          '/myapp/api-endpoint',
          '/myapp/config/version:99',
          '/myapp/db/password',
        ],
        WithDecryption: true,
      }),
    );
    assert.deepEqual(
      out.Parameters?.map((p) => p.Name),
      ['/myapp/api-endpoint', '/myapp/db/host', '/myapp/db/password'],
    );
    assert.equal(out.Parameters?.[2]?.Value, 'correct-horse-battery-staple');
    assert.deepEqual(out.InvalidParameters?.sort(), ['/myapp/config/version:99', '/nope/one']);
    await rejects(
      () => client.send(new GetParametersCommand({ Names: Array.from({ length: 11 }, (_, i) => `/p${i}`) })),
      'ValidationException',
    );
  });

  test('GetParametersByPath pages with the SDK paginator; recursive vs one level', async () => {
    for (let i = 0; i < 23; i++) {
      await client.send(
        new PutParameterCommand({
          Name: `/paged/item${String(i).padStart(2, '0')}`,
          Value: `v${i}`,
          Type: 'String',
        }),
      );
    }
    await client.send(new PutParameterCommand({ Name: '/paged/deeper/child', Value: 'c', Type: 'String' }));
    const names: string[] = [];
    let pages = 0;
    for await (const page of paginateGetParametersByPath(
      { client, pageSize: 5 },
      { Path: '/paged', Recursive: false },
    )) {
      pages++;
      assert.ok((page.Parameters?.length ?? 0) <= 5);
      names.push(...(page.Parameters ?? []).map((p) => p.Name ?? ''));
    }
    assert.equal(pages, 5);
    assert.equal(names.length, 23);
    assert.deepEqual(names, [...names].sort());
    assert.ok(!names.includes('/paged/deeper/child'));

    const all: string[] = [];
    for await (const page of paginateGetParametersByPath(
      { client, pageSize: 10 },
      { Path: '/paged/', Recursive: true },
    )) {
      all.push(...(page.Parameters ?? []).map((p) => p.Name ?? ''));
    }
    assert.equal(all.length, 24);
    assert.ok(all.includes('/paged/deeper/child'));

    const db = await client.send(
      new GetParametersByPathCommand({ Path: '/myapp/db', WithDecryption: false }),
    );
    const pw = db.Parameters?.find((p) => p.Name === '/myapp/db/password');
    assert.match(pw?.Value ?? '', /^AQICAH/);
    await rejects(
      () => client.send(new GetParametersByPathCommand({ Path: '/paged', NextToken: 'garbage' })),
      'InvalidNextToken',
    );
    await rejects(
      () => client.send(new GetParametersByPathCommand({ Path: '/paged', MaxResults: 11 })),
      'ValidationException',
    );
  });

  test('GetParameterHistory lists every version with labels; DeleteParameter removes the parameter', async () => {
    const hist = await client.send(new GetParameterHistoryCommand({ Name: '/myapp/config/version' }));
    assert.deepEqual(
      hist.Parameters?.map((p) => [p.Version, p.Value, p.Labels]),
      [
        [1, 'v1', []],
        [2, 'v2', ['stable']],
        [3, 'v3', ['latest']],
      ],
    );
    await client.send(new PutParameterCommand({ Name: '/test/doomed', Value: 'x', Type: 'String' }));
    await client.send(new DeleteParameterCommand({ Name: '/test/doomed' }));
    await rejects(() => client.send(new GetParameterCommand({ Name: '/test/doomed' })), 'ParameterNotFound');
    await rejects(
      () => client.send(new DeleteParameterCommand({ Name: '/test/doomed' })),
      'ParameterNotFound',
    );
  });

  test('/aws/reference/secretsmanager/ returns the secret as SSM does, and requires WithDecryption', async () => {
    const out = await client.send(
      new GetParameterCommand({
        Name: '/aws/reference/secretsmanager/prod/db/password',
        WithDecryption: true,
      }),
    );
    const p = out.Parameter;
    assert.equal(p?.Value, 's3cr3t');
    assert.equal(p?.Type, 'SecureString');
    assert.equal(p?.Version, 0);
    assert.match(
      p?.ARN ?? '',
      /^arn:aws:secretsmanager:us-east-1:123456789012:secret:prod\/db\/password-[A-Za-z0-9]{6}$/,
    );
    const source = JSON.parse(p?.SourceResult ?? '{}') as Record<string, unknown>;
    assert.equal(source['Name'], 'prod/db/password');
    assert.deepEqual(source['VersionStages'], ['AWSCURRENT']);
    const prev = await client.send(
      new GetParameterCommand({
        Name: '/aws/reference/secretsmanager/prod/rotating/token:AWSPREVIOUS',
        WithDecryption: true,
      }),
    );
    assert.equal(prev.Parameter?.Value, 'token-v1');
    assert.equal(prev.Parameter?.Selector, ':AWSPREVIOUS');
    await rejects(
      () => client.send(new GetParameterCommand({ Name: '/aws/reference/secretsmanager/prod/db/password' })),
      'ValidationException',
    );
  });
});

describe('Secrets Manager through the SDK', () => {
  let emu: Emulator;
  let client: SecretsManagerClient;
  before(async () => {
    emu = await startEmulator({ store: STORE, credentials: [CREDS] });
    client = sm(emu);
  });
  after(() => emu.close());

  test('GetSecretValue answers string, JSON and binary secrets, and AWSPREVIOUS by stage', async () => {
    const s = await client.send(new GetSecretValueCommand({ SecretId: 'prod/db/password' }));
    assert.equal(s.SecretString, 's3cr3t');
    assert.deepEqual(s.VersionStages, ['AWSCURRENT']);
    assert.match(s.VersionId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(s.CreatedDate instanceof Date);
    const byArn = await client.send(new GetSecretValueCommand({ SecretId: s.ARN }));
    assert.equal(byArn.SecretString, 's3cr3t');
    const json = await client.send(new GetSecretValueCommand({ SecretId: 'prod/api/credentials' }));
    assert.deepEqual(JSON.parse(json.SecretString ?? ''), {
      username: 'api-user',
      password: 'EXAMPLE-PASSWORD',
    });
    const bin = await client.send(new GetSecretValueCommand({ SecretId: 'prod/tls/key' }));
    assert.ok(bin.SecretBinary instanceof Uint8Array);
    assert.match(Buffer.from(bin.SecretBinary).toString('utf8'), /BEGIN PRIVATE KEY/);
    assert.equal(bin.SecretString, undefined);
    const prev = await client.send(
      new GetSecretValueCommand({ SecretId: 'prod/rotating/token', VersionStage: 'AWSPREVIOUS' }),
    );
    assert.equal(prev.SecretString, 'token-v1');
    await rejects(
      () => client.send(new GetSecretValueCommand({ SecretId: 'no/such' })),
      'ResourceNotFoundException',
    );
  });

  test('CreateSecret, PutSecretValue stage moves, GetSecretValue by VersionId, UpdateSecretVersionStage', async () => {
    const token1 = '11111111-1111-4111-8111-111111111111';
    const created = await client.send(
      new CreateSecretCommand({ Name: 'test/rotate', SecretString: 'one', ClientRequestToken: token1 }),
    );
    assert.equal(created.VersionId, token1);
    assert.match(created.ARN ?? '', /:secret:test\/rotate-[A-Za-z0-9]{6}$/);
    await rejects(
      () => client.send(new CreateSecretCommand({ Name: 'test/rotate', SecretString: 'x' })),
      'ResourceExistsException',
    );

    const v2 = await client.send(new PutSecretValueCommand({ SecretId: 'test/rotate', SecretString: 'two' }));
    assert.deepEqual(v2.VersionStages, ['AWSCURRENT']);
    const v3 = await client.send(
      new PutSecretValueCommand({ SecretId: 'test/rotate', SecretString: 'three' }),
    );
    const describe = await client.send(new DescribeSecretCommand({ SecretId: 'test/rotate' }));
    assert.deepEqual(describe.VersionIdsToStages, {
      [v2.VersionId!]: ['AWSPREVIOUS'],
      [v3.VersionId!]: ['AWSCURRENT'],
    });
    assert.equal(
      (await client.send(new GetSecretValueCommand({ SecretId: 'test/rotate' }))).SecretString,
      'three',
    );
    const old = await client.send(new GetSecretValueCommand({ SecretId: 'test/rotate', VersionId: token1 }));
    assert.equal(old.SecretString, 'one');
    assert.deepEqual(old.VersionStages, []);
    await rejects(
      () =>
        client.send(
          new GetSecretValueCommand({
            SecretId: 'test/rotate',
            VersionId: token1,
            VersionStage: 'AWSCURRENT',
          }),
        ),
      'ResourceNotFoundException',
    );

    // Roll back: AWSCURRENT to v2 needs RemoveFromVersionId; the old current becomes AWSPREVIOUS.
    await rejects(
      () =>
        client.send(
          new UpdateSecretVersionStageCommand({
            SecretId: 'test/rotate',
            VersionStage: 'AWSCURRENT',
            MoveToVersionId: v2.VersionId,
          }),
        ),
      'InvalidParameterException',
    );
    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: 'test/rotate',
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: v2.VersionId,
        RemoveFromVersionId: v3.VersionId,
      }),
    );
    assert.equal(
      (await client.send(new GetSecretValueCommand({ SecretId: 'test/rotate' }))).SecretString,
      'two',
    );
    const prev = await client.send(
      new GetSecretValueCommand({ SecretId: 'test/rotate', VersionStage: 'AWSPREVIOUS' }),
    );
    assert.equal(prev.SecretString, 'three');

    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: 'test/rotate',
        VersionStage: 'canary',
        MoveToVersionId: token1,
      }),
    );
    const canary = await client.send(
      new GetSecretValueCommand({ SecretId: 'test/rotate', VersionStage: 'canary' }),
    );
    assert.equal(canary.SecretString, 'one');
  });

  test('binary secrets round-trip as Uint8Array', async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 255, 128]);
    await client.send(new CreateSecretCommand({ Name: 'test/binary', SecretBinary: bytes }));
    const got = await client.send(new GetSecretValueCommand({ SecretId: 'test/binary' }));
    assert.deepEqual(Array.from(got.SecretBinary ?? []), Array.from(bytes));
  });

  test('BatchGetSecretValue returns values and per-secret Errors without failing the call', async () => {
    emu.deny(['prod/api/*']);
    try {
      const out = await client.send(
        new BatchGetSecretValueCommand({
          SecretIdList: ['prod/db/password', 'missing/secret', 'prod/api/credentials'],
        }),
      );
      assert.deepEqual(
        out.SecretValues?.map((v) => [v.Name, v.SecretString]),
        [['prod/db/password', 's3cr3t']],
      );
      const errors = Object.fromEntries((out.Errors ?? []).map((e) => [e.SecretId, e.ErrorCode]));
      assert.deepEqual(errors, {
        'missing/secret': 'ResourceNotFoundException',
        'prod/api/credentials': 'AccessDeniedException',
      });
    } finally {
      emu.clearDeny();
    }
    await rejects(
      () => client.send(new BatchGetSecretValueCommand({ Filters: [{ Key: 'all', Values: ['prod'] }] })),
      'InvalidParameterException',
    );
  });

  test('DeleteSecret marks for deletion, DescribeSecret shows it, force delete removes it', async () => {
    await client.send(new CreateSecretCommand({ Name: 'test/delete-me', SecretString: 'bye' }));
    const del = await client.send(
      new DeleteSecretCommand({ SecretId: 'test/delete-me', RecoveryWindowInDays: 7 }),
    );
    assert.ok(del.DeletionDate instanceof Date && del.DeletionDate.getTime() > Date.now() + 6 * 86_400_000);
    const err = await rejects(
      () => client.send(new GetSecretValueCommand({ SecretId: 'test/delete-me' })),
      'InvalidRequestException',
    );
    assert.equal(
      err.message,
      "You can't perform this operation on the secret because it was marked for deletion.",
    );
    const described = await client.send(new DescribeSecretCommand({ SecretId: 'test/delete-me' }));
    assert.ok(described.DeletedDate instanceof Date);
    await client.send(
      new DeleteSecretCommand({ SecretId: 'test/delete-me', ForceDeleteWithoutRecovery: true }),
    );
    const gone = await rejects(
      () => client.send(new GetSecretValueCommand({ SecretId: 'test/delete-me' })),
      'ResourceNotFoundException',
    );
    assert.equal(gone.message, "Secrets Manager can't find the specified secret.");
  });
});

describe('SigV4 verification', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ store: STORE, credentials: [CREDS] });
  });
  after(() => emu.close());

  test('a wrong secret key gives InvalidSignatureException; an unknown key UnrecognizedClientException', async () => {
    const bad = ssm(emu, { credentials: { ...CREDS, secretAccessKey: 'wrong' }, maxAttempts: 1 });
    const e = await rejects(
      () => bad.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })),
      'InvalidSignatureException',
    );
    assert.match(e.message, /signature we calculated does not match/);
    const unknown = sm(emu, {
      credentials: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    const u = await rejects(
      () => unknown.send(new GetSecretValueCommand({ SecretId: 'prod/db/password' })),
      'UnrecognizedClientException',
    );
    assert.equal(u.message, 'The security token included in the request is invalid.');
  });

  test('unsigned, tampered, stale and wrongly scoped requests are refused', async () => {
    const unsigned = await awsCall(emu.url, 'AmazonSSM.GetParameter', { Name: '/myapp/api-endpoint' });
    assert.equal(unsigned.status, 400);
    assert.deepEqual(JSON.parse(unsigned.body), {
      __type: 'MissingAuthenticationTokenException',
      message: 'Missing Authentication Token',
    });

    const base = {
      target: 'AmazonSSM.GetParameter',
      body: { Name: '/myapp/api-endpoint' },
      credentials: CREDS,
    };
    const ok = await signedCall(emu.url, { ...base, service: 'ssm' });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.headers['content-type'], 'application/x-amz-json-1.1');
    assert.ok(ok.headers['x-amzn-requestid']);

    const tampered = await signedCall(emu.url, {
      ...base,
      service: 'ssm',
      sendBody: '{"Name":"/myapp/db/password"}',
    });
    assert.equal(JSON.parse(tampered.body).__type, 'InvalidSignatureException');

    const stale = await signedCall(emu.url, {
      ...base,
      service: 'ssm',
      signingDate: new Date(Date.now() - 20 * 60_000),
    });
    assert.equal(JSON.parse(stale.body).__type, 'InvalidSignatureException');
    assert.match(JSON.parse(stale.body).message, /^Signature expired: /);

    const wrongService = await signedCall(emu.url, { ...base, service: 'secretsmanager' });
    assert.equal(JSON.parse(wrongService.body).__type, 'InvalidSignatureException');
    assert.match(JSON.parse(wrongService.body).message, /scoped to correct service: 'ssm'/);
  });

  test('session tokens must match, expired credentials get ExpiredTokenException, keys change at runtime', async () => {
    const temp = {
      accessKeyId: 'ASIATEMP0001',
      secretAccessKey: 'temp-secret',
      sessionToken: 'session-token-1',
    };
    const expired = {
      accessKeyId: 'ASIAEXPIRED01',
      secretAccessKey: 's',
      sessionToken: 't',
      expiresAt: Date.now() - 1000,
    };
    emu.setCredentials([temp, expired]);
    try {
      const good = ssm(emu, { credentials: temp, maxAttempts: 1 });
      const out = await good.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }));
      assert.equal(out.Parameter?.Value, 'https://api.example.com');
      const wrongToken = ssm(emu, { credentials: { ...temp, sessionToken: 'other' }, maxAttempts: 1 });
      await rejects(
        () => wrongToken.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })),
        'UnrecognizedClientException',
      );
      const old = ssm(emu, { credentials: expired, maxAttempts: 1 });
      const e = await rejects(
        () => old.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })),
        'ExpiredTokenException',
      );
      assert.equal(e.message, 'The security token included in the request is expired');
      // The original key is no longer accepted.
      const original = ssm(emu, { maxAttempts: 1 });
      await rejects(
        () => original.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })),
        'UnrecognizedClientException',
      );
    } finally {
      emu.setCredentials([CREDS]);
    }
  });
});

describe('deny list', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ store: STORE, credentials: [CREDS] });
  });
  after(() => emu.close());

  test('denied names answer AccessDeniedException, also when one of GetParameters names is denied', async () => {
    const client = ssm(emu, { maxAttempts: 1 });
    emu.deny(['/myapp/db/*']);
    try {
      const e = await rejects(
        () => client.send(new GetParameterCommand({ Name: '/myapp/db/host' })),
        'AccessDeniedException',
      );
      assert.match(
        e.message,
        /^User: arn:aws:sts::123456789012:assumed-role\/emulator\/pscache is not authorized to perform: ssm:GetParameter on resource: arn:aws:ssm:us-east-1:123456789012:parameter\/myapp\/db\/host/,
      );
      assert.equal((e.$metadata as { httpStatusCode: number }).httpStatusCode, 400);
      await rejects(
        () => client.send(new GetParametersCommand({ Names: ['/myapp/api-endpoint', '/myapp/db/password'] })),
        'AccessDeniedException',
      );
      const allowed = await client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }));
      assert.equal(allowed.Parameter?.Value, 'https://api.example.com');
    } finally {
      emu.clearDeny();
    }
    const again = await client.send(new GetParameterCommand({ Name: '/myapp/db/host' }));
    assert.equal(again.Parameter?.Name, '/myapp/db/host');
  });

  test('a denied operation fails the whole call (the role lacks the batch permission)', async () => {
    const client = sm(emu, { maxAttempts: 1 });
    emu.denyOperations(['BatchGetSecretValue', 'ssm:GetParameters']);
    try {
      const e = await rejects(
        () => client.send(new BatchGetSecretValueCommand({ SecretIdList: ['prod/db/password'] })),
        'AccessDeniedException',
      );
      assert.match(e.message, /secretsmanager:BatchGetSecretValue/);
      await rejects(
        () => ssm(emu, { maxAttempts: 1 }).send(new GetParametersCommand({ Names: ['/myapp/api-endpoint'] })),
        'AccessDeniedException',
      );
      const single = await client.send(new GetSecretValueCommand({ SecretId: 'prod/db/password' }));
      assert.equal(single.SecretString, 's3cr3t');
    } finally {
      emu.clearDeny();
    }
  });
});

describe('fault injection', () => {
  let emu: Emulator;
  let client: SSMClient;
  before(async () => {
    emu = await startEmulator({ store: STORE, credentials: [CREDS] });
    client = ssm(emu, { maxAttempts: 1 });
  });
  after(() => emu.close());

  const get = (name = '/myapp/api-endpoint') => client.send(new GetParameterCommand({ Name: name }));

  test('throttle answers ThrottlingException "Rate exceeded"; times limits it; the SDK retry then succeeds', async () => {
    emu.setFaults([{ operation: 'GetParameter', error: 'throttle' }]);
    const e = await rejects(() => get(), 'ThrottlingException');
    assert.equal(e.message, 'Rate exceeded');
    emu.setFaults([{ operation: 'ssm:GetParameter', error: 'throttle', times: 1 }]);
    emu.resetCalls();
    const retrying = ssm(emu, { maxAttempts: 2 });
    const out = await retrying.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }));
    assert.equal(out.Parameter?.Value, 'https://api.example.com');
    assert.equal(out.$metadata.attempts, 2);
    assert.equal(emu.calls()['GetParameter'], 2);
    emu.clearFaults();
  });

  test('500 and 503 answer server errors as each service names them', async () => {
    emu.setFaults([{ error: '500', times: 1 }]);
    const e500 = await rejects(() => get(), 'InternalServerError');
    assert.equal((e500.$metadata as { httpStatusCode: number }).httpStatusCode, 500);
    emu.setFaults([{ error: '500', times: 1 }]);
    const smClient = sm(emu, { maxAttempts: 1 });
    await rejects(
      () => smClient.send(new GetSecretValueCommand({ SecretId: 'prod/db/password' })),
      'InternalServiceError',
    );
    emu.setFaults([{ error: '503', times: 1 }]);
    const e503 = await rejects(() => get(), 'ServiceUnavailable');
    assert.equal((e503.$metadata as { httpStatusCode: number }).httpStatusCode, 503);
    assert.equal((await get()).Parameter?.Version, 1, 'times: 1 faults only the next call');
  });

  test('reset and reset-mid-body are network errors; malformed and wrong-content-type fail to parse', async () => {
    const expected: Record<string, (err: Error & { code?: string }) => boolean> = {
      reset: (err) => err.code === 'ECONNRESET',
      'reset-mid-body': (err) => err.code === 'ECONNRESET' || /aborted/.test(err.message),
      malformed: (err) => err.name === 'SyntaxError' && /Deserialization error/.test(err.message),
      'wrong-content-type': (err) => err.name === 'SyntaxError' && /Unexpected token '<'/.test(err.message),
    };
    for (const [error, check] of Object.entries(expected)) {
      emu.setFaults([{ name: '/myapp/api-endpoint', error: error as 'reset' }]);
      await assert.rejects(get(), (err: Error & { code?: string }) => {
        assert.ok(check(err), `${error}: got ${err.name} ${err.code} ${err.message}`);
        return true;
      });
      // Rules match by name: another parameter is unaffected.
      assert.equal((await get('/myapp/db/host')).Parameter?.Value, 'db.internal.example.com');
    }
    emu.clearFaults();
    assert.equal((await get()).Parameter?.Value, 'https://api.example.com');
  });

  test('latency delays the answer by at least latencyMs; once cleared, a call overtakes a delayed one', async () => {
    emu.setFaults([{ operation: 'GetParameter', latencyMs: 250 }]);
    const t0 = performance.now();
    await get();
    const slow = performance.now() - t0;
    assert.ok(slow >= 245, `slow call took ${slow}ms`);
    emu.clearFaults();
    // Order, not a duration: sent together, the call without a fault is answered before one held 1 s.
    emu.setFaults([{ operation: 'GetParameter', name: '/myapp/db/host', latencyMs: 1000 }]);
    const order: string[] = [];
    await Promise.all([
      get('/myapp/db/host').then(() => order.push('delayed')),
      get().then(() => order.push('cleared')),
    ]);
    assert.deepEqual(order, ['cleared', 'delayed']);
    emu.clearFaults();
  });

  test('hang never answers until the client gives up', async () => {
    emu.setCredentials(undefined);
    try {
      emu.setFaults([{ error: 'hang' }]);
      const t0 = performance.now();
      await assert.rejects(
        rawRequest(emu.url, {
          headers: { 'x-amz-target': 'AmazonSSM.GetParameter', 'content-type': 'application/x-amz-json-1.1' },
          body: '{"Name":"/myapp/api-endpoint"}',
          timeoutMs: 300,
        }),
        /timeout/,
      );
      assert.ok(performance.now() - t0 >= 290);
    } finally {
      emu.clearFaults();
      emu.setCredentials([CREDS]);
    }
  });

  test('huge streams a 50 MB body; endless streams until the client disconnects', async () => {
    emu.setCredentials(undefined);
    try {
      emu.setFaults([{ error: 'huge', times: 1 }]);
      const huge = await new Promise<{ length: number; declared: string | undefined; head: string }>(
        (resolve, reject) => {
          const req = request(
            emu.url,
            { method: 'POST', agent: false, headers: { 'x-amz-target': 'AmazonSSM.GetParameter' } },
            (res) => {
              let length = 0;
              let head = '';
              res.on('data', (c: Buffer) => {
                if (head.length < 20) head += c.toString('utf8', 0, 20);
                length += c.length;
              });
              res.on('end', () => resolve({ length, declared: res.headers['content-length'], head }));
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end('{"Name":"/x"}');
        },
      );
      assert.equal(huge.length, 50 * 1024 * 1024);
      assert.equal(huge.declared, String(50 * 1024 * 1024));
      assert.ok(huge.head.startsWith('{"Parameter":'));

      emu.setFaults([{ error: 'endless', times: 1 }]);
      const received = await new Promise<{ bytes: number; declared: string | undefined }>(
        (resolve, reject) => {
          const req = request(
            emu.url,
            { method: 'POST', agent: false, headers: { 'x-amz-target': 'AmazonSSM.GetParameter' } },
            (res) => {
              let bytes = 0;
              res.on('data', (c: Buffer) => {
                bytes += c.length;
                if (bytes >= 4 * 1024 * 1024) {
                  req.destroy();
                  resolve({ bytes, declared: res.headers['content-length'] });
                }
              });
              res.on('end', () => reject(new Error('endless body ended')));
            },
          );
          req.on('error', () => {});
          req.end('{"Name":"/x"}');
        },
      );
      assert.ok(received.bytes >= 4 * 1024 * 1024);
      assert.equal(received.declared, undefined);
    } finally {
      emu.clearFaults();
      emu.setCredentials([CREDS]);
    }
    // The emulator is unharmed.
    assert.equal((await get()).Parameter?.Value, 'https://api.example.com');
  });

  test('a rate limit throttles SSM reads beyond the TPS, shared across Get* operations', async () => {
    emu.setRateLimit({ ssmTps: 5 });
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          i % 2 ? get() : client.send(new GetParametersCommand({ Names: ['/myapp/api-endpoint'] })),
        ),
      );
      const throttled = results.filter(
        (r) => r.status === 'rejected' && (r.reason as Error).name === 'ThrottlingException',
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      assert.ok(ok.length >= 5 && ok.length <= 8, `ok ${ok.length}`);
      assert.equal(throttled.length, 12 - ok.length);
      const secret = await sm(emu, { maxAttempts: 1 }).send(
        new GetSecretValueCommand({ SecretId: 'prod/db/password' }),
      );
      assert.equal(secret.SecretString, 's3cr3t');
    } finally {
      emu.setRateLimit(undefined);
    }
  });
});

describe('call counters', () => {
  test('count every request per operation, including faulted and denied ones, and reset', async () => {
    const emu = await startEmulator({ store: STORE, credentials: [CREDS] });
    try {
      const client = ssm(emu, { maxAttempts: 1 });
      const secrets = sm(emu, { maxAttempts: 1 });
      await client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }));
      emu.setFaults([{ operation: 'GetParameter', error: 'throttle', times: 1 }]);
      await rejects(
        () => client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })),
        'ThrottlingException',
      );
      emu.deny(['prod/*']);
      await rejects(
        () => secrets.send(new GetSecretValueCommand({ SecretId: 'prod/db/password' })),
        'AccessDeniedException',
      );
      await rejects(() => client.send(new GetParameterCommand({ Name: '/missing' })), 'ParameterNotFound');
      assert.deepEqual(emu.calls(), { GetParameter: 3, GetSecretValue: 1 });
      emu.resetCalls();
      assert.deepEqual(emu.calls(), {});
    } finally {
      await emu.close();
    }
  });
});

describe('store file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pscache-emulator-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  test('examples/store.json loads with the documented entries', () => {
    const store = loadStoreFile(STORE);
    assert.equal(store.region, 'us-east-1');
    assert.equal(store.accountId, '123456789012');
    const names = store.parameters?.map((p) => p.name) ?? [];
    for (const n of ['/myapp/api-endpoint', '/myapp/db/host', '/myapp/db/password', '/myapp/feature-flags']) {
      assert.ok(names.includes(n), n);
    }
    assert.ok(store.parameters?.some((p) => (p.versions?.length ?? 0) >= 1 && p.labels));
    const secrets = store.secrets?.map((s) => s.name) ?? [];
    for (const n of ['prod/db/password', 'prod/api/credentials', 'prod/tls/key'])
      assert.ok(secrets.includes(n), n);
    assert.ok(store.secrets?.some((s) => s.previous));
  });

  test('a bad entry gives an error naming the file and the entry', () => {
    const path = write(
      'bad-type.json',
      JSON.stringify({
        parameters: [
          { name: '/ok', value: 'x' },
          { name: '/bad', type: 'Number', value: '1' },
        ],
      }),
    );
    assert.throws(
      () => loadStoreFile(path),
      (err: Error) => {
        assert.ok(err.message.includes(path), err.message);
        assert.match(
          err.message,
          /parameters\[1\] \("\/bad"\): "type" must be String, StringList or SecureString/,
        );
        return true;
      },
    );
    const both = write(
      'both.json',
      JSON.stringify({ secrets: [{ name: 's', secretString: 'a', secretBinary: 'YQ==' }] }),
    );
    assert.throws(
      () => loadStoreFile(both),
      /secrets\[0\] \("s"\): give exactly one of "secretString" and "secretBinary"/,
    );
    const typo = write('typo.json', JSON.stringify({ paramters: [] }));
    assert.throws(() => loadStoreFile(typo), /unknown key "paramters"/);
    const label = write(
      'label.json',
      JSON.stringify({ parameters: [{ name: '/l', value: 'x', labels: { prod: 2 } }] }),
    );
    assert.throws(() => loadStoreFile(label), /label "prod" must name a version from 1 to 1/);
    const notJson = write('not.json', '{ "parameters": [ ');
    assert.throws(
      () => loadStoreFile(notJson),
      (err: Error) => err.message.includes(notJson) && /not valid JSON/.test(err.message),
    );
    assert.throws(() => loadStoreFile(join(dir, 'missing.json')), /cannot read store file/);
  });

  test('startEmulator seeds from a store object and rejects an invalid one', async () => {
    await assert.rejects(
      startEmulator({ store: { parameters: [{ name: 'has space', value: 'x' }] } }),
      /parameters\[0\]/,
    );
    const emu = await startEmulator({
      store: {
        region: 'eu-west-1',
        accountId: '210987654321',
        parameters: [{ name: '/only', value: 'here' }],
      },
    });
    try {
      const res = await awsCall(emu.url, 'AmazonSSM.GetParameter', { Name: '/only' });
      const p = JSON.parse(res.body).Parameter;
      assert.equal(p.Value, 'here');
      assert.equal(p.ARN, 'arn:aws:ssm:eu-west-1:210987654321:parameter/only');
      assert.equal(typeof p.LastModifiedDate, 'number');
    } finally {
      await emu.close();
    }
  });
});

describe('HTTP control endpoint and robustness', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ store: STORE, credentials: [CREDS] });
  });
  after(() => emu.close());

  const control = (method: string, path: string, body?: unknown) =>
    rawRequest(emu.url, {
      method,
      path,
      headers: { 'content-type': 'application/json', 'x-emulator-control-token': emu.controlToken },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  test('control routes drive faults, deny, credentials, rate limit and counters without SigV4', async () => {
    const health = await control('GET', '/__emulator/health');
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.body).status, 'ok');

    const client = ssm(emu, { maxAttempts: 1 });
    assert.equal(
      (await control('PUT', '/__emulator/faults', [{ operation: 'GetParameter', error: 'throttle' }])).status,
      204,
    );
    await rejects(
      () => client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })),
      'ThrottlingException',
    );
    assert.equal((await control('DELETE', '/__emulator/faults')).status, 204);

    assert.equal(
      (await control('PUT', '/__emulator/deny', { resources: ['/myapp/api-endpoint'] })).status,
      204,
    );
    await rejects(
      () => client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })),
      'AccessDeniedException',
    );
    assert.equal((await control('DELETE', '/__emulator/deny')).status, 204);

    const calls = await control('GET', '/__emulator/calls');
    assert.deepEqual(JSON.parse(calls.body), { GetParameter: 2 });
    assert.equal((await control('POST', '/__emulator/calls/reset')).status, 204);
    assert.deepEqual(JSON.parse((await control('GET', '/__emulator/calls')).body), {});

    // Credentials: null turns verification off, so an unsigned call is served.
    assert.equal((await control('PUT', '/__emulator/credentials', null)).status, 204);
    const unsigned = await awsCall(emu.url, 'AmazonSSM.GetParameter', { Name: '/myapp/api-endpoint' });
    assert.equal(unsigned.status, 200);
    assert.equal((await control('PUT', '/__emulator/credentials', [CREDS])).status, 204);
    assert.equal(
      (await awsCall(emu.url, 'AmazonSSM.GetParameter', { Name: '/myapp/api-endpoint' })).status,
      400,
    );

    assert.equal((await control('PUT', '/__emulator/ratelimit', { ssmTps: 1 })).status, 204);
    await client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }));
    await rejects(
      () => client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })),
      'ThrottlingException',
    );
    assert.equal((await control('DELETE', '/__emulator/ratelimit')).status, 204);
    await client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }));

    const badFault = await control('PUT', '/__emulator/faults', [{ error: 'explode' }]);
    assert.equal(badFault.status, 400);
    assert.match(JSON.parse(badFault.body).error, /faults\[0\]\.error must be one of/);
    assert.equal((await control('GET', '/__emulator/nope')).status, 404);
    const wrongMethod = await control('GET', '/__emulator/faults');
    assert.equal(wrongMethod.status, 405);
    assert.ok(JSON.parse(wrongMethod.body).error);
    assert.equal(
      (
        await rawRequest(emu.url, {
          method: 'PUT',
          path: '/__emulator/faults',
          headers: { 'x-emulator-control-token': emu.controlToken },
          body: '{nope',
        })
      ).status,
      400,
    );
  });

  test('bad JSON, unknown targets, oversized bodies and wrong methods get AWS-shaped errors', async () => {
    emu.setCredentials(undefined);
    try {
      const badJson = await awsCall(emu.url, 'AmazonSSM.GetParameter', '{"Name":');
      assert.equal(badJson.status, 400);
      assert.equal(JSON.parse(badJson.body).__type, 'SerializationException');
      const wrongShape = await awsCall(emu.url, 'AmazonSSM.GetParameter', { Name: 42 });
      assert.equal(JSON.parse(wrongShape.body).__type, 'SerializationException');
      const unknown = await awsCall(emu.url, 'AmazonSSM.DoSomething', {});
      assert.equal(unknown.status, 400);
      assert.equal(JSON.parse(unknown.body).__type, 'UnknownOperationException');
      const proto = await awsCall(emu.url, 'AmazonSSM.__proto__', {});
      assert.equal(JSON.parse(proto.body).__type, 'UnknownOperationException');
      const noTarget = await rawRequest(emu.url, { body: '{}' });
      assert.equal(JSON.parse(noTarget.body).__type, 'UnknownOperationException');
      const big = await awsCall(emu.url, 'AmazonSSM.GetParameter', { Name: 'x'.repeat(1024 * 1024 + 10) });
      assert.equal(big.status, 413);
      assert.equal(JSON.parse(big.body).__type, 'SerializationException');
      const get = await rawRequest(emu.url, { method: 'GET', path: '/' });
      assert.equal(get.status, 405);
      assert.ok(JSON.parse(get.body).__type);
      const missingName = await awsCall(emu.url, 'AmazonSSM.GetParameter', {});
      assert.equal(JSON.parse(missingName.body).__type, 'ValidationException');
      const sMissing = await awsCall(emu.url, 'secretsmanager.GetSecretValue', { SecretId: 'nope' });
      assert.deepEqual(JSON.parse(sMissing.body), {
        __type: 'ResourceNotFoundException',
        Message: "Secrets Manager can't find the specified secret.",
      });
      // Still serving.
      const ok = await awsCall(emu.url, 'AmazonSSM.GetParameter', { Name: '/myapp/api-endpoint' });
      assert.equal(ok.status, 200);
      assert.equal(JSON.parse(ok.body).Parameter.Value, 'https://api.example.com');
    } finally {
      emu.setCredentials([CREDS]);
    }
  });
});

describe('container credentials endpoint', () => {
  test('mints fresh credentials that SigV4 accepts until they expire', async () => {
    // The emulator's time is the test's: the credentials expire when the test moves it, not while it waits.
    let now = Date.now();
    const emu = await startEmulator({
      store: STORE,
      containerCredentials: { authToken: 'container-token', ttlSeconds: 1 },
      clock: () => now,
    });
    try {
      const denied = await rawRequest(emu.url, { method: 'GET', path: '/__emulator/container-credentials' });
      assert.equal(denied.status, 401);
      const fetchCreds = async () => {
        const res = await rawRequest(emu.url, {
          method: 'GET',
          path: '/__emulator/container-credentials',
          headers: { authorization: 'container-token' },
        });
        assert.equal(res.status, 200);
        return JSON.parse(res.body) as {
          AccessKeyId: string;
          SecretAccessKey: string;
          Token: string;
          Expiration: string;
        };
      };
      const first = await fetchCreds();
      const expiry = Date.parse(first.Expiration);
      assert.equal(expiry, now + 1000);
      const credsOf = (c: typeof first) => ({
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.Token,
      });
      const client = ssm(emu, { credentials: credsOf(first), maxAttempts: 1 });
      assert.equal(
        (await client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }))).Parameter?.Version,
        1,
      );
      // Verification is on: an unsigned call is refused.
      assert.equal(
        (await awsCall(emu.url, 'AmazonSSM.GetParameter', { Name: '/myapp/api-endpoint' })).status,
        400,
      );

      now = expiry + 50;
      await rejects(
        () => client.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })),
        'ExpiredTokenException',
      );
      const second = await fetchCreds();
      assert.notEqual(second.AccessKeyId, first.AccessKeyId);
      const fresh = ssm(emu, { credentials: credsOf(second), maxAttempts: 1 });
      assert.equal(
        (await fresh.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }))).Parameter?.Version,
        1,
      );
      assert.equal(emu.calls()['ContainerCredentials'], 3);
    } finally {
      await emu.close();
    }
  });
});
