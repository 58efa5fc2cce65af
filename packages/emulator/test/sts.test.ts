// STS AssumeRole through the official @aws-sdk/client-sts, and what the minted credentials may do.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type Emulator, startEmulator } from '../index.ts';
import { rejects } from './helpers/assert.ts';
import { rawRequest, signedQuery } from './helpers/emulator-raw.ts';

const BASE = { accessKeyId: 'AKIASTSTESTBASE00001', secretAccessKey: 'sts-test-base-secret-key' };
const READER = 'arn:aws:iam::123456789012:role/reader';
const WRITER = 'arn:aws:iam::123456789012:role/team/writer';
const STORE = {
  parameters: [{ name: '/app/endpoint', value: 'https://app.example.com' }],
  secrets: [
    { name: 'prod/db/password', secretString: 'db-password-value' },
    { name: 'prod/api/key', secretString: 'api-key-value' },
  ],
};

interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

let emu: Emulator;
/** Milliseconds added to the real clock, to let minted credentials expire. */
let skew = 0;
const clients: { destroy(): void }[] = [];

function sts(credentials: Creds = BASE): STSClient {
  const c = new STSClient({ endpoint: emu.url, region: 'us-east-1', credentials, maxAttempts: 1 });
  clients.push(c);
  return c;
}

function secrets(credentials: Creds): SecretsManagerClient {
  const c = new SecretsManagerClient({ endpoint: emu.url, region: 'us-east-1', credentials, maxAttempts: 1 });
  clients.push(c);
  return c;
}

async function assume(roleArn: string, extra: { DurationSeconds?: number } = {}, as: Creds = BASE) {
  const out = await sts(as).send(
    new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'test', ...extra }),
  );
  const c = out.Credentials!;
  return {
    out,
    creds: {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    },
  };
}

const status = (e: Record<string, unknown>) => (e['$metadata'] as { httpStatusCode?: number }).httpStatusCode;

before(async () => {
  emu = await startEmulator({ store: STORE, credentials: [BASE], clock: () => Date.now() + skew });
});
beforeEach(() => {
  skew = 0;
  emu.clearDeny();
  emu.clearFaults();
  emu.resetCalls();
});
after(async () => {
  for (const c of clients) c.destroy();
  await emu.close();
});

describe('AssumeRole', () => {
  test('mints credentials that read a secret, and the call log attributes the read to the role', async () => {
    const t0 = Date.now();
    const { out, creds } = await assume(READER);
    const t1 = Date.now();
    assert.match(creds.accessKeyId, /^ASIA[A-Z0-9]{16}$/);
    assert.equal(creds.secretAccessKey.length, 40);
    assert.ok(creds.sessionToken.length > 40);
    const expiry = out.Credentials!.Expiration!.getTime();
    // An hour from when it was minted (in whole seconds), however long the call took.
    assert.ok(
      expiry >= t0 - 1000 + 3600_000 && expiry <= t1 + 3600_000,
      `expires ${new Date(expiry).toISOString()}`,
    );
    assert.equal(out.AssumedRoleUser?.Arn, 'arn:aws:sts::123456789012:assumed-role/reader/test');
    assert.match(out.AssumedRoleUser?.AssumedRoleId ?? '', /^AROA[A-Z0-9]{17}:test$/);

    const value = await secrets(creds).send(new GetSecretValueCommand({ SecretId: 'prod/db/password' }));
    assert.equal(value.SecretString, 'db-password-value');
    const who = await sts(creds).send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, 'arn:aws:sts::123456789012:assumed-role/reader/test');

    assert.deepEqual(emu.callLog(), [
      { operation: 'AssumeRole', principal: BASE.accessKeyId, signingRegion: 'us-east-1' },
      { operation: 'GetSecretValue', principal: READER, signingRegion: 'us-east-1' },
      { operation: 'GetCallerIdentity', principal: READER, signingRegion: 'us-east-1' },
    ]);
    assert.equal(emu.calls()['AssumeRole'], 1);
    const overHttp = await rawRequest(emu.url, {
      method: 'GET',
      path: '/__emulator/call-log',
      headers: { 'x-emulator-control-token': emu.controlToken },
    });
    assert.deepEqual(JSON.parse(overHttp.body), emu.callLog());
    emu.resetCalls();
    assert.deepEqual(emu.callLog(), []);
  });

  test('a denied role gets AccessDenied (403); other roles are still assumed', async () => {
    emu.denyRoles(['arn:aws:iam::123456789012:role/team/*']);
    const e = await rejects(() => assume(WRITER), 'AccessDenied');
    assert.equal(status(e), 403);
    assert.match(e.message, /is not authorized to perform: sts:AssumeRole on resource: .*role\/team\/writer/);
    await assume(READER);
    assert.deepEqual(
      emu.callLog().map((c) => [c.operation, c.error]),
      [
        ['AssumeRole', 'AccessDenied'],
        ['AssumeRole', undefined],
      ],
    );
  });

  test('minted credentials are refused once they expire', async () => {
    const { creds } = await assume(READER, { DurationSeconds: 900 });
    const client = secrets(creds);
    assert.equal(
      (await client.send(new GetSecretValueCommand({ SecretId: 'prod/api/key' }))).SecretString,
      'api-key-value',
    );
    skew = 901_000;
    const e = await rejects(
      () => client.send(new GetSecretValueCommand({ SecretId: 'prod/api/key' })),
      'ExpiredTokenException',
    );
    assert.equal(e.message, 'The security token included in the request is expired');
    // A session token of another session, or none, is refused too.
    skew = 0;
    const fresh = (await assume(READER)).creds;
    await rejects(
      () =>
        secrets({ ...fresh, sessionToken: creds.sessionToken }).send(
          new GetSecretValueCommand({ SecretId: 'prod/api/key' }),
        ),
      'UnrecognizedClientException',
    );
    await rejects(
      () =>
        secrets({ accessKeyId: fresh.accessKeyId, secretAccessKey: fresh.secretAccessKey }).send(
          new GetSecretValueCommand({ SecretId: 'prod/api/key' }),
        ),
      'UnrecognizedClientException',
    );
  });

  test('roleSessionSeconds sets the default lifetime; DurationSeconds is honoured from 900 to 43200', async () => {
    const short = await startEmulator({ credentials: [BASE], roleSessionSeconds: 1 });
    try {
      const c = new STSClient({
        endpoint: short.url,
        region: 'us-east-1',
        credentials: BASE,
        maxAttempts: 1,
      });
      clients.push(c);
      const out = await c.send(new AssumeRoleCommand({ RoleArn: READER, RoleSessionName: 'short' }));
      assert.ok(out.Credentials!.Expiration!.getTime() - Date.now() <= 1000);
    } finally {
      await short.close();
    }
    const beforeLong = Date.now();
    const long = await assume(READER, { DurationSeconds: 43200 });
    assert.ok(long.out.Credentials!.Expiration!.getTime() >= beforeLong - 1000 + 43200_000);
    for (const d of [899, 43201]) {
      const e = await rejects(() => assume(READER, { DurationSeconds: d }), 'ValidationError');
      assert.equal(status(e), 400);
      assert.match(e.message, new RegExp(`Value '${d}' at 'durationSeconds' failed to satisfy constraint`));
    }
  });

  test('a malformed RoleArn or a missing RoleSessionName is a ValidationError in the real XML shape', async () => {
    const bad = await signedQuery(emu.url, {
      credentials: BASE,
      params: { Action: 'AssumeRole', RoleArn: 'arn:aws:iam::123456789012:user/bob', RoleSessionName: 's1' },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['content-type'], 'text/xml');
    assert.match(
      bad.body,
      /^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><Error><Type>Sender<\/Type><Code>ValidationError<\/Code><Message>Request ARN is invalid<\/Message><\/Error><RequestId>[0-9a-f-]{36}<\/RequestId><\/ErrorResponse>$/,
    );
    const noSession = await signedQuery(emu.url, {
      credentials: BASE,
      params: { Action: 'AssumeRole', RoleArn: READER },
    });
    assert.equal(noSession.status, 400);
    assert.match(
      noSession.body,
      /<Code>ValidationError<\/Code><Message>1 validation error detected: Value null at 'roleSessionName'/,
    );
    const e = await rejects(
      () =>
        sts().send(new AssumeRoleCommand({ RoleArn: 'not-an-arn-at-all-but-long', RoleSessionName: 'x1' })),
      'ValidationError',
    );
    assert.equal(status(e), 400);
  });

  test('the success answer has the real XML shape', async () => {
    const r = await signedQuery(emu.url, {
      credentials: BASE,
      params: { Action: 'AssumeRole', RoleArn: READER, RoleSessionName: 'raw', DurationSeconds: '900' },
    });
    assert.equal(r.status, 200, r.body);
    assert.match(
      r.body,
      /^<AssumeRoleResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><AssumeRoleResult><Credentials><AccessKeyId>ASIA[A-Z0-9]{16}<\/AccessKeyId><SecretAccessKey>[A-Za-z0-9+/]{40}<\/SecretAccessKey><SessionToken>[A-Za-z0-9+/=]+<\/SessionToken><Expiration>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/Expiration><\/Credentials><AssumedRoleUser><AssumedRoleId>AROA[A-Z0-9]{17}:raw<\/AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role\/reader\/raw<\/Arn><\/AssumedRoleUser><\/AssumeRoleResult><ResponseMetadata><RequestId>[0-9a-f-]{36}<\/RequestId><\/ResponseMetadata><\/AssumeRoleResponse>$/,
    );
  });

  test('AssumeRole is signed for sts: a wrong key, secret or service is refused in the Query shape', async () => {
    const wrong = await rejects(
      () =>
        sts({ ...BASE, secretAccessKey: 'wrong' }).send(
          new AssumeRoleCommand({ RoleArn: READER, RoleSessionName: 's1' }),
        ),
      'SignatureDoesNotMatch',
    );
    assert.equal(status(wrong), 403);
    await rejects(
      () =>
        sts({ accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' }).send(
          new AssumeRoleCommand({ RoleArn: READER, RoleSessionName: 's1' }),
        ),
      'InvalidClientTokenId',
    );
    const unsigned = await rawRequest(emu.url, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `Action=AssumeRole&Version=2011-06-15&RoleArn=${encodeURIComponent(READER)}&RoleSessionName=s1`,
    });
    assert.equal(unsigned.status, 403);
    assert.match(unsigned.body, /<Code>MissingAuthenticationToken<\/Code>/);
    const unknown = await signedQuery(emu.url, { credentials: BASE, params: { Action: 'GetSessionToken' } });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body, /<Code>InvalidAction<\/Code>/);
  });

  test('fault rules apply to AssumeRole', async () => {
    emu.setFaults([{ operation: 'AssumeRole', error: 'throttle', times: 1 }]);
    const e = await rejects(() => assume(READER), 'Throttling');
    assert.equal(status(e), 400);
    await assume(READER);
    emu.setFaults([{ name: READER, error: '500', times: 1 }]);
    await rejects(() => assume(READER), 'InternalFailure');
    assert.deepEqual(
      emu.callLog().map((c) => c.error),
      ['fault:throttle', undefined, 'fault:500'],
    );
  });
});

describe('what a role session may do', () => {
  test('allowRole limits a role to its resources; other roles and the base credentials are not limited', async () => {
    emu.allowRole(READER, ['prod/db/*']);
    const reader = secrets((await assume(READER)).creds);
    assert.equal(
      (await reader.send(new GetSecretValueCommand({ SecretId: 'prod/db/password' }))).SecretString,
      'db-password-value',
    );
    const denied = await rejects(
      () => reader.send(new GetSecretValueCommand({ SecretId: 'prod/api/key' })),
      'AccessDeniedException',
    );
    assert.match(
      denied.message,
      /^User: arn:aws:sts::123456789012:assumed-role\/reader\/test is not authorized to perform: secretsmanager:GetSecretValue/,
    );

    const writer = secrets((await assume(WRITER)).creds);
    assert.equal(
      (await writer.send(new GetSecretValueCommand({ SecretId: 'prod/api/key' }))).SecretString,
      'api-key-value',
    );
    assert.equal(
      (await secrets(BASE).send(new GetSecretValueCommand({ SecretId: 'prod/api/key' }))).SecretString,
      'api-key-value',
    );
    assert.deepEqual(
      emu
        .callLog()
        .filter((c) => c.operation === 'GetSecretValue')
        .map((c) => [c.principal, c.error]),
      [
        [READER, undefined],
        [READER, 'AccessDeniedException'],
        [WRITER, undefined],
        [BASE.accessKeyId, undefined],
      ],
    );
    // Lifted: the reader reads everything again.
    emu.allowRole(READER, undefined);
    assert.equal(
      (await reader.send(new GetSecretValueCommand({ SecretId: 'prod/api/key' }))).SecretString,
      'api-key-value',
    );
  });

  test('the control routes set role allow lists and role denials', async () => {
    const put = (path: string, body: unknown) =>
      rawRequest(emu.url, {
        method: 'PUT',
        path,
        headers: { 'x-emulator-control-token': emu.controlToken, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    assert.equal((await put('/__emulator/roles', { [READER]: ['/app/*'] })).status, 204);
    const ssm = new SSMClient({
      endpoint: emu.url,
      region: 'us-east-1',
      credentials: (await assume(READER)).creds,
      maxAttempts: 1,
    });
    clients.push(ssm);
    assert.equal(
      (await ssm.send(new GetParameterCommand({ Name: '/app/endpoint' }))).Parameter?.Value,
      'https://app.example.com',
    );
    const reader = secrets((await assume(READER)).creds);
    await rejects(
      () => reader.send(new GetSecretValueCommand({ SecretId: 'prod/db/password' })),
      'AccessDeniedException',
    );
    assert.equal((await put('/__emulator/roles', { [READER]: 'prod/db/password' })).status, 400);

    assert.equal((await put('/__emulator/deny', { roles: [READER] })).status, 204);
    await rejects(() => assume(READER), 'AccessDenied');
    emu.clearDeny();
    await assume(READER);
    assert.equal(
      (await reader.send(new GetSecretValueCommand({ SecretId: 'prod/db/password' }))).SecretString,
      'db-password-value',
    );
  });

  test('role chaining: a role session assumes another role, at most for an hour', async () => {
    const first = (await assume(READER)).creds;
    const chained = await assume(WRITER, {}, first);
    assert.ok(chained.out.Credentials!.Expiration!.getTime() - Date.now() <= 3600_000);
    await secrets(chained.creds).send(new GetSecretValueCommand({ SecretId: 'prod/api/key' }));
    const e = await rejects(() => assume(WRITER, { DurationSeconds: 7200 }, first), 'ValidationError');
    assert.match(e.message, /role chaining/);
    assert.deepEqual(
      emu.callLog().map((c) => [c.operation, c.principal]),
      [
        ['AssumeRole', BASE.accessKeyId],
        ['AssumeRole', READER],
        ['GetSecretValue', WRITER],
        ['AssumeRole', READER],
      ],
    );
  });
});
