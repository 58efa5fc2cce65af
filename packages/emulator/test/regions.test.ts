// Cross-Region: resources live in a Region, a request is served from the Region it was signed for, and
// the call log keeps each call's signing Region. Driven through official SDK clients for two Regions.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  BatchGetSecretValueCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { type Emulator, startEmulator, validateStore } from '../index.ts';
import { rejects } from './helpers/assert.ts';

const CREDS = { accessKeyId: 'AKIAREGIONTEST000001', secretAccessKey: 'region-test-secret-key' };
const EU = 'eu-west-1';
const US = 'us-east-1';
const EU_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:eu/only-AbCdEf';
const EU_PARAM_ARN = 'arn:aws:ssm:eu-west-1:123456789012:parameter/eu/setting';

let emu: Emulator;
const clients: { destroy(): void }[] = [];

function sm(region: string): SecretsManagerClient {
  const c = new SecretsManagerClient({ endpoint: emu.url, region, credentials: CREDS, maxAttempts: 1 });
  clients.push(c);
  return c;
}

function ssm(region: string): SSMClient {
  const c = new SSMClient({ endpoint: emu.url, region, credentials: CREDS, maxAttempts: 1 });
  clients.push(c);
  return c;
}

before(async () => {
  emu = await startEmulator({
    credentials: [CREDS],
    store: {
      region: US,
      parameters: [
        { name: '/eu/setting', value: 'from-eu', region: EU },
        { name: '/shared/name', value: 'us-value' },
        { name: '/shared/name', value: 'eu-value', region: EU },
      ],
      secrets: [
        { name: 'eu/only', secretString: 'eu-secret', arnSuffix: 'AbCdEf', region: EU },
        { name: 'us/only', secretString: 'us-secret', arnSuffix: 'GhIjKl' },
      ],
    },
  });
});
beforeEach(() => emu.resetCalls());
after(async () => {
  for (const c of clients) c.destroy();
  await emu.close();
});

describe('secrets in another Region', () => {
  test("GetSecretValue and BatchGetSecretValue by ARN work when signed for the secret's Region", async () => {
    const one = await sm(EU).send(new GetSecretValueCommand({ SecretId: EU_SECRET_ARN }));
    assert.equal(one.SecretString, 'eu-secret');
    assert.equal(one.ARN, EU_SECRET_ARN);
    const batch = await sm(EU).send(
      new BatchGetSecretValueCommand({ SecretIdList: [EU_SECRET_ARN, 'eu/only'] }),
    );
    assert.deepEqual(
      batch.SecretValues?.map((v) => v.SecretString),
      ['eu-secret', 'eu-secret'],
    );
    assert.deepEqual(batch.Errors, []);
    assert.deepEqual(
      emu.callLog().map((c) => c.signingRegion),
      [EU, EU],
    );
  });

  test('signed for another Region, the same ARN (or name) is not found, as AWS answers', async () => {
    await rejects(
      () => sm(US).send(new GetSecretValueCommand({ SecretId: EU_SECRET_ARN })),
      'ResourceNotFoundException',
    );
    await rejects(
      () => sm(US).send(new GetSecretValueCommand({ SecretId: 'eu/only' })),
      'ResourceNotFoundException',
    );
    const batch = await sm(US).send(new BatchGetSecretValueCommand({ SecretIdList: [EU_SECRET_ARN] }));
    assert.deepEqual(batch.SecretValues, []);
    assert.equal(batch.Errors?.[0]?.ErrorCode, 'ResourceNotFoundException');
    await rejects(
      () =>
        sm(EU).send(
          new GetSecretValueCommand({
            SecretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:us/only-GhIjKl',
          }),
        ),
      'ResourceNotFoundException',
    );
    assert.equal(
      (await sm(US).send(new GetSecretValueCommand({ SecretId: 'us/only' }))).SecretString,
      'us-secret',
    );
    assert.deepEqual(
      emu.callLog().map((c) => [c.operation, c.signingRegion, c.error]),
      [
        ['GetSecretValue', US, 'ResourceNotFoundException'],
        ['GetSecretValue', US, 'ResourceNotFoundException'],
        ['BatchGetSecretValue', US, undefined],
        ['GetSecretValue', EU, 'ResourceNotFoundException'],
        ['GetSecretValue', US, undefined],
      ],
    );
  });

  test('createSecret seeds a secret in a Region and returns its ARN', async () => {
    const arn = emu.createSecret({ name: 'ap/new', secretString: 'ap-secret', region: 'ap-southeast-2' });
    assert.match(arn, /^arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:ap\/new-[A-Za-z0-9]{6}$/);
    assert.equal(
      (await sm('ap-southeast-2').send(new GetSecretValueCommand({ SecretId: arn }))).SecretString,
      'ap-secret',
    );
    await rejects(
      () => sm(US).send(new GetSecretValueCommand({ SecretId: arn })),
      'ResourceNotFoundException',
    );
  });
});

describe('parameters in another Region', () => {
  test("GetParameter and GetParameters by ARN work when signed for the parameter's Region", async () => {
    const one = await ssm(EU).send(new GetParameterCommand({ Name: EU_PARAM_ARN }));
    assert.equal(one.Parameter?.Value, 'from-eu');
    assert.equal(one.Parameter?.ARN, EU_PARAM_ARN);
    const many = await ssm(EU).send(new GetParametersCommand({ Names: [EU_PARAM_ARN, '/shared/name'] }));
    assert.deepEqual(
      many.Parameters?.map((p) => p.Value),
      ['from-eu', 'eu-value'],
    );
    assert.deepEqual(many.InvalidParameters, []);
  });

  test("signed for another Region, the ARN is ParameterNotFound and one name holds each Region's value", async () => {
    await rejects(() => ssm(US).send(new GetParameterCommand({ Name: EU_PARAM_ARN })), 'ParameterNotFound');
    const many = await ssm(US).send(new GetParametersCommand({ Names: [EU_PARAM_ARN] }));
    assert.deepEqual(many.InvalidParameters, [EU_PARAM_ARN]);
    assert.equal(
      (await ssm(US).send(new GetParameterCommand({ Name: '/shared/name' }))).Parameter?.Value,
      'us-value',
    );
    assert.equal(
      (await ssm(EU).send(new GetParameterCommand({ Name: '/shared/name' }))).Parameter?.Value,
      'eu-value',
    );
    assert.deepEqual(
      emu.callLog().map((c) => c.signingRegion),
      [US, US, US, EU],
    );
  });

  test('putParameter seeds a parameter in a Region; a Secrets Manager reference can be read by its ARN there', async () => {
    const arn = emu.putParameter({ name: '/ca/flag', value: 'on', region: 'ca-central-1' });
    assert.equal(arn, 'arn:aws:ssm:ca-central-1:123456789012:parameter/ca/flag');
    assert.equal(
      (await ssm('ca-central-1').send(new GetParameterCommand({ Name: arn }))).Parameter?.Value,
      'on',
    );
    const ref = 'arn:aws:ssm:eu-west-1:123456789012:parameter/aws/reference/secretsmanager/eu/only';
    const out = await ssm(EU).send(new GetParameterCommand({ Name: ref, WithDecryption: true }));
    assert.equal(out.Parameter?.Value, 'eu-secret');
    await rejects(
      () => ssm(US).send(new GetParameterCommand({ Name: ref, WithDecryption: true })),
      'ParameterNotFound',
    );
  });
});

describe('the store file region keys', () => {
  test('an entry names its Region; a bad one, or a duplicate in one Region, is an error naming the entry', () => {
    assert.equal(
      validateStore({ secrets: [{ name: 's', secretString: 'x', region: EU }] }, 'doc').secrets?.[0]?.region,
      EU,
    );
    assert.throws(
      () => validateStore({ parameters: [{ name: '/p', value: 'x', region: 'Europe' }] }, 'doc'),
      /doc: parameters\[0\] \("\/p"\): "region" "Europe" is not a region/,
    );
    assert.throws(
      () =>
        validateStore(
          {
            secrets: [
              { name: 's', secretString: 'x', region: EU },
              { name: 's', secretString: 'y', region: EU },
            ],
          },
          'doc',
        ),
      /doc: secrets\[1\] \("s"\): duplicate name/,
    );
  });
});
