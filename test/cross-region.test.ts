// Cross-Region ARNs end to end: an ARN that names another Region (a secret, a parameter, an
// /aws/reference/secretsmanager/ path given as a parameter ARN) is read from that Region, signed for it,
// singly and in batches; PARAMETERS_SECRETS_EXTENSION_CROSS_REGION=false sends everything to the
// configured Region, as the official extension does.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Daemons, param, type RunningProcess, runPscache, secret, TEST_TOKEN } from './helpers/daemon.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);
const json = (body: string) => JSON.parse(body);
const q = encodeURIComponent;
/** [operation, signing Region] of every call since the last reset, in order. */
const signed = () => world.emu.callLog().map((c) => [c.operation, c.signingRegion]);

const EU = 'eu-west-1';
let euSecretArn = '';
let euParamArn = '';
const EU_REFERENCE = 'arn:aws:ssm:eu-west-1:123456789012:parameter/aws/reference/secretsmanager/eu/db';

before(async () => {
  world = await startWorld();
  const seeded = world.emu.seed({
    parameters: [
      { name: '/eu/endpoint', value: sensitive('eu-endpoint-value-2291'), region: EU },
      { name: '/us/endpoint', value: sensitive('us-endpoint-value-8830') },
    ],
    secrets: [
      { name: 'eu/db', secretString: sensitive('eu-db-password-1177'), region: EU },
      { name: 'us/db', secretString: sensitive('us-db-password-6604') },
    ],
  });
  euParamArn = seeded.parameters[0]!;
  euSecretArn = seeded.secrets[0]!;
  assert.match(euSecretArn, /^arn:aws:secretsmanager:eu-west-1:/);
});
worldHooks(() => world, daemons);

describe('cross-Region reads (the default)', () => {
  let d: RunningProcess;
  before(async () => {
    d = await daemons.start();
  });

  test('a secret ARN of another Region is read from it, signed for it', async () => {
    const r = await d.get(secret(euSecretArn));
    assert.equal(r.status, 200, r.body);
    assert.equal(json(r.body).SecretString, 'eu-db-password-1177');
    const byPath = await d.get(`/v1/${q(euSecretArn)}?versionStage=AWSPREVIOUS`);
    assert.equal(byPath.status, 404, 'the stage does not exist, in the right Region');
    assert.deepEqual(signed(), [
      ['GetSecretValue', EU],
      ['GetSecretValue', EU],
    ]);
  });

  test('a parameter ARN, and a reference to a secret given as a parameter ARN, likewise', async () => {
    const p = await d.get(param(euParamArn));
    assert.equal(p.status, 200, p.body);
    assert.equal(json(p.body).Parameter.Value, 'eu-endpoint-value-2291');
    const ref = await d.get(param(EU_REFERENCE, '&withDecryption=true'));
    assert.equal(ref.status, 200, ref.body);
    assert.equal(json(ref.body).Parameter.Value, 'eu-db-password-1177');
    assert.deepEqual(signed(), [
      ['GetParameter', EU],
      ['GetParameter', EU],
    ]);
  });

  test('plain names stay in the configured Region', async () => {
    assert.equal((await d.get(secret('us/db'))).status, 200);
    assert.equal((await d.get(secret('eu/db'))).status, 404, 'eu/db lives in eu-west-1 only');
    assert.deepEqual(signed(), [
      ['GetSecretValue', 'us-east-1'],
      ['GetSecretValue', 'us-east-1'],
    ]);
  });

  test('a batch groups ids by Region: one call per Region, each signed for it', async () => {
    // A daemon of its own: nothing cached yet.
    const d = await daemons.start();
    const secrets = await d.get(
      `/secretsmanager/batch?secretId=${q(euSecretArn)}&secretId=us%2Fdb&secretId=x%2Fnone`,
    );
    assert.equal(secrets.status, 200, secrets.body);
    const body = json(secrets.body);
    assert.deepEqual(body.SecretValues.map((v: { Name: string }) => v.Name).sort(), ['eu/db', 'us/db']);
    assert.deepEqual(
      body.Errors.map((e: { SecretId: string }) => e.SecretId),
      ['x/none'],
    );
    assert.deepEqual(
      signed()
        .map((c) => c.join(' '))
        .sort(),
      ['BatchGetSecretValue eu-west-1', 'BatchGetSecretValue us-east-1'],
    );
    world.emu.resetCalls();
    const params = await d.get(
      `/systemsmanager/parameters/batch?name=${q(euParamArn)}&name=%2Fus%2Fendpoint&name=%2Fno%2Fsuch`,
    );
    assert.equal(params.status, 200, params.body);
    const pb = json(params.body);
    assert.deepEqual(pb.Parameters.map((p: { Value: string }) => p.Value).sort(), [
      'eu-endpoint-value-2291',
      'us-endpoint-value-8830',
    ]);
    assert.deepEqual(pb.InvalidParameters, ['/no/such']);
    assert.deepEqual(
      signed()
        .map((c) => c.join(' '))
        .sort(),
      ['GetParameters eu-west-1', 'GetParameters us-east-1'],
    );
    await daemons.stop(d);
  });

  test('a role reads across Regions too', async () => {
    const roleArn = 'arn:aws:iam::123456789012:role/eu-reader';
    const r = await d.get(secret(euSecretArn, `&roleArn=${q(roleArn)}`));
    assert.equal(r.status, 200, r.body);
    const log = world.emu.callLog();
    assert.deepEqual(
      log.map((c) => [c.operation, c.principal, c.signingRegion]),
      [
        ['AssumeRole', log[0]!.principal, 'us-east-1'],
        ['GetSecretValue', roleArn, EU],
      ],
    );
  });
});

describe('PARAMETERS_SECRETS_EXTENSION_CROSS_REGION=false', () => {
  test('every read goes to the configured Region, as the official extension: another Region is not found', async () => {
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_CROSS_REGION: 'false' });
    const s = await d.get(secret(euSecretArn));
    assert.equal(s.status, 404);
    assert.equal(json(s.body).__type, 'ResourceNotFoundException');
    const p = await d.get(param(euParamArn));
    assert.equal(p.status, 404);
    const batch = await d.get(`/secretsmanager/batch?secretId=${q(euSecretArn)}&secretId=us%2Fdb`);
    assert.equal(batch.status, 200);
    assert.deepEqual(
      json(batch.body).SecretValues.map((v: { Name: string }) => v.Name),
      ['us/db'],
    );
    assert.ok(
      signed().every(([, region]) => region === 'us-east-1'),
      JSON.stringify(signed()),
    );
    assert.deepEqual(
      signed().filter(([op]) => op === 'BatchGetSecretValue').length,
      1,
      'one batch call: nothing to split by Region',
    );
    await daemons.stop(d);
  });
});

describe('partitions: only the configured Region partition is read from', () => {
  let d: RunningProcess;
  before(async () => {
    d = await daemons.start();
  });
  const ACCOUNT = '123456789012';
  const sm = (partition: string, region: string) =>
    `arn:${partition}:secretsmanager:${region}:${ACCOUNT}:secret:app/db-AbCdEf`;
  const ssm = (partition: string, region: string) =>
    `arn:${partition}:ssm:${region}:${ACCOUNT}:parameter/app/db`;
  const as = (roleArn: string) => `&roleArn=${q(roleArn)}`;

  test('ARNs of another partition, or naming a Region outside it, are 400 naming the partition; nothing is signed', async () => {
    const cases: Array<[string, string, RegExp]> = [];
    for (const [partition, region, why] of [
      ['aws-cn', 'cn-north-1', /an ARN of partition "aws-cn"; pscache reads only from partition aws/],
      ['aws', 'cn-north-1', /names Region "cn-north-1", which is not a Region of partition aws/],
      ['aws-iso-b', 'us-isob-east-1', /an ARN of partition "aws-iso-b"/],
      ['aws', 'us-isob-east-1', /names Region "us-isob-east-1", which is not a Region of partition aws/],
      ['aws-us-gov', 'us-gov-west-1', /an ARN of partition "aws-us-gov"/],
      ['awsevil', 'us-west-2', /an ARN of partition "awsevil"/],
      ['aws', 'zz-aaa-1', /names Region "zz-aaa-1", which is not a Region of partition aws/],
      ['aws', 'us-east-1.evil.example', /names Region "us-east-1.evil.example"/],
      ['aws', 'US-EAST-1', /names Region "US-EAST-1"/],
      ['aws', '', /names Region ""/],
    ] as const) {
      const s = sm(partition, region);
      const p = ssm(partition, region);
      cases.push(
        [secret(s), 'the secret id', why],
        [`/secrets/get?name=${q(s)}`, 'the secret id', why],
        [`/v1/${q(s)}`, 'the secret id', why],
        [`/secretsmanager/batch?secretId=us%2Fdb&secretId=${q(s)}`, 'the secret id \\(item 2\\)', why],
        [param(p), 'the parameter name', why],
        [
          `/systemsmanager/parameters/batch?name=${q(p)}&name=%2Fus%2Fendpoint`,
          'the parameter name \\(item 1\\)',
          why,
        ],
      );
    }
    for (const role of [
      'arn:aws-cn:iam::123456789012:role/reader',
      'arn:aws-us-gov:iam::123456789012:role/reader',
    ]) {
      for (const path of [
        secret('us/db', as(role)),
        param('/us/endpoint', as(role)),
        `/v1/us%2Fdb?roleArn=${q(role)}`,
        `/secretsmanager/batch?secretId=us%2Fdb${as(role)}`,
        `/systemsmanager/parameters/path?path=%2Fus%2F${as(role)}`,
      ]) {
        cases.push([path, 'query parameter roleArn', /an ARN of partition "aws-(cn|us-gov)"/]);
      }
    }
    for (const [path, what, why] of cases) {
      const r = await d.get(path);
      assert.equal(r.status, 400, `${path}: ${r.body}`);
      assert.equal(json(r.body).__type, 'BadRequest');
      assert.match(json(r.body).message, new RegExp(`^${what} `), path);
      assert.match(json(r.body).message, why, path);
    }
    assert.deepEqual(world.emu.callLog(), [], 'nothing was signed or sent for them, not even AssumeRole');
    // The partition's own Regions still are followed.
    assert.equal((await d.get(secret(euSecretArn))).status, 200);
  });

  test('a prefetch ARN of another partition stops start-up naming the variable (exit 2)', async () => {
    const r = await runPscache(['serve'], {
      AWS_REGION: 'us-east-1',
      PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
      PARAMETERS_SECRETS_EXTENSION_PREFETCH: `secretsmanager:${sm('aws-cn', 'cn-north-1')}`,
    });
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^pscache: PARAMETERS_SECRETS_EXTENSION_PREFETCH=".*" is invalid: an ARN in it is an ARN of partition "aws-cn"/,
    );
  });

  test('in a China Region, aws ARNs are the foreign ones', async () => {
    const cn = await daemons.start({ AWS_REGION: 'cn-north-1' });
    const r = await cn.get(secret(sm('aws', 'us-east-1')));
    assert.equal(r.status, 400);
    assert.match(
      json(r.body).message,
      /partition "aws"; pscache reads only from partition aws-cn, its Region cn-north-1's/,
    );
    world.emu.resetCalls();
    // cn-northwest-1 is of the same partition: followed (and answered by the emulator, which has no such secret).
    assert.equal((await cn.get(secret(sm('aws-cn', 'cn-northwest-1')))).status, 404);
    assert.deepEqual(signed(), [['GetSecretValue', 'cn-northwest-1']]);
    await daemons.stop(cn);
  });
});
