// Configuration: defaults, precedence, aliases, and a one-line error naming the variable for every bad value.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseRoleArn } from '../src/arn.ts';
import { PARTITION_NAMES } from '../src/aws/endpoints.ts';
import { SETTING_LIST, type Setting, type SettingId } from '../src/config/settings.ts';
import { ConfigError, loadConfig, requireToken } from '../src/config.ts';
import { runPscache, TEST_TOKEN } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

const region = { AWS_REGION: 'us-east-1' };
const base = { PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN, ...region };

describe('config defaults', () => {
  test('match the official extension', () => {
    const c = loadConfig(base);
    assert.equal(c.port, 2773);
    assert.equal(c.cacheEnabled, true);
    assert.equal(c.cacheSize, 1000);
    assert.deepEqual(c.ttlMs, { ssm: 300_000, secretsmanager: 300_000 });
    assert.deepEqual(c.timeoutMs, { ssm: 0, secretsmanager: 0 });
    assert.equal(c.maxConnections, 3);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.logFormat, 'text');
    assert.equal(c.cacheMaxBytes, 1000 * 1024 * 1024);
    assert.equal(c.staleIfErrorMs, 300_000);
    assert.equal(c.maxInboundConnections, 1024);
    assert.equal(c.batchWindowMs, 2);
    assert.deepEqual(c.prefetch, []);
  });
});

describe('config precedence and aliases', () => {
  test("the article's single TTL applies where the per-service variable is unset", () => {
    const c = loadConfig({
      ...base,
      PARAMETERS_SECRETS_EXTENSION_TTL_SECS: '3600',
      SECRETS_MANAGER_TTL: '60',
    });
    assert.deepEqual(c.ttlMs, { ssm: 3_600_000, secretsmanager: 60_000 });
  });
  test('TTLs above the original 300 s cap are accepted up to 86400', () => {
    assert.equal(loadConfig({ ...base, SSM_PARAMETER_STORE_TTL: '86400' }).ttlMs.ssm, 86_400_000);
  });
  test('CACHE_SIZE=0 or CACHE_ENABLED=false disable the cache; booleans in any case', () => {
    assert.equal(loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE: '0' }).cacheEnabled, false);
    assert.equal(
      loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED: 'FALSE' }).cacheEnabled,
      false,
    );
    assert.equal(
      loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED: 'True' }).cacheEnabled,
      true,
    );
  });
  test('log level falls back to AWS_LAMBDA_LOG_LEVEL and is case-insensitive', () => {
    assert.equal(loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'DEBUG' }).logLevel, 'debug');
    assert.equal(loadConfig({ ...base, AWS_LAMBDA_LOG_LEVEL: 'TRACE' }).logLevel, 'debug');
    assert.equal(
      loadConfig({ ...base, AWS_LAMBDA_LOG_LEVEL: 'debug', PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'warn' })
        .logLevel,
      'warn',
    );
    assert.equal(loadConfig({ ...base, AWS_LAMBDA_LOG_FORMAT: 'JSON' }).logFormat, 'json');
  });
  test('MAX_CACHE_SIZE (MB) is capped at half the function memory', () => {
    const c = loadConfig({ ...base, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128' });
    assert.equal(c.cacheMaxBytes, 64 * 1024 * 1024);
    assert.equal(
      loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_MAX_CACHE_SIZE: '5' }).cacheMaxBytes,
      5 << 20,
    );
  });
  test('token: explicit value, file:// value, then AWS_SESSION_TOKEN, then the container token', () => {
    const [A, B, C] = ['token-a-0123456789', 'token-b-0123456789', 'token-c-0123456789'];
    const dir = tempDir('cfg');
    const file = join(dir, 'token');
    writeFileSync(file, 'from-file-token-0001\n');
    assert.equal(
      loadConfig({ ...region, PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${file}` }).token,
      'from-file-token-0001',
    );
    assert.equal(
      loadConfig({ ...region, PARAMETERS_SECRETS_EXTENSION_TOKEN: A, AWS_SESSION_TOKEN: B }).token,
      A,
    );
    const s = loadConfig({ ...region, AWS_SESSION_TOKEN: B, AWS_CONTAINER_AUTHORIZATION_TOKEN: C });
    assert.equal(s.token, B);
    assert.equal(s.tokenSource, 'AWS_SESSION_TOKEN');
    assert.equal(loadConfig({ ...region, AWS_CONTAINER_AUTHORIZATION_TOKEN: C }).token, C);
    assert.equal(loadConfig(region).token, undefined);
  });
  test('endpoint overrides: per service over the general one', () => {
    const c = loadConfig({
      ...base,
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1/',
      AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:2/',
    });
    assert.equal(c.aws.endpoints.ssm, 'http://127.0.0.1:2/');
    assert.equal(c.aws.endpoints.secretsmanager, 'http://127.0.0.1:1/');
    assert.equal(c.aws.endpoints.sts, 'http://127.0.0.1:1/');
    const sts = loadConfig({
      ...base,
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1/',
      AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:3/',
    });
    assert.equal(sts.aws.endpoints.sts, 'http://127.0.0.1:3/');
  });
  test('prefetch list parses both services and SSM paths', () => {
    assert.deepEqual(
      loadConfig({
        ...base,
        PARAMETERS_SECRETS_EXTENSION_PREFETCH: 'ssm:/a/b, secretsmanager:prod/db, ssm-path:/app/',
      }).prefetch,
      [
        { service: 'ssm', id: '/a/b' },
        { service: 'secretsmanager', id: 'prod/db' },
        { service: 'ssm', id: '/app/', path: true },
      ],
    );
  });
  test('the role session name says pscache and the function or host, in what STS accepts', () => {
    assert.equal(
      loadConfig({ ...base, AWS_LAMBDA_FUNCTION_NAME: 'my-fn' }).aws.roleSessionName,
      'pscache-my-fn',
    );
    assert.match(loadConfig(base).aws.roleSessionName, /^pscache-[\w+=,.@-]+$/);
    const long = loadConfig({ ...base, AWS_LAMBDA_FUNCTION_NAME: `a b/${'x'.repeat(80)}` }).aws
      .roleSessionName;
    assert.equal(long.length, 64);
    assert.match(long, /^pscache-a-b-x+$/);
  });
  test('SnapStart is detected', () => {
    assert.equal(
      loadConfig({ ...base, AWS_LAMBDA_INITIALIZATION_TYPE: 'snap-start' }).lambda.snapStart,
      true,
    );
  });
});

/** Every variable with values that must be refused, and a phrase of the allowed range. */
const BAD: Array<[string, string[], string]> = [
  ['PARAMETERS_SECRETS_EXTENSION_HTTP_PORT', ['0', '70000', 'abc', '-1', '80.5'], '1 to 65535'],
  ['PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE', ['-1', '100001', 'ten'], '0 to 100000'],
  ['PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED', ['yes', '1'], 'true or false'],
  ['PARAMETERS_SECRETS_EXTENSION_MAX_CACHE_SIZE', ['0', '-5', '1MB'], '1 to 1048576'],
  ['SSM_PARAMETER_STORE_TTL', ['abc', '-1', '86401', '5m'], '0 to 86400'],
  ['SECRETS_MANAGER_TTL', ['x', '90000'], '0 to 86400'],
  ['PARAMETERS_SECRETS_EXTENSION_TTL_SECS', ['1h', '100000'], '0 to 86400'],
  ['SSM_PARAMETER_STORE_TIMEOUT_MILLIS', ['-1', 'fast'], '0 to 2147483647'],
  ['SECRETS_MANAGER_TIMEOUT_MILLIS', ['1.5', '99999999999'], '0 to 2147483647'],
  ['PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS', ['0', '1001', 'many'], '1 to 1000'],
  ['PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL', ['verbose', 'trace'], 'debug, info, warn, error, none'],
  ['AWS_LAMBDA_LOG_LEVEL', ['loud'], 'TRACE, DEBUG, INFO, WARN, ERROR, FATAL'],
  ['AWS_LAMBDA_LOG_FORMAT', ['xml'], 'JSON or Text'],
  [
    'PARAMETERS_SECRETS_EXTENSION_PREFETCH',
    ['params:/a', 'ssm:', 'ssm-path:app/'],
    'ssm:NAME, secretsmanager:ID or ssm-path:/PATH/',
  ],
  ['PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR', ['-1', 'forever'], '0 to 86400'],
  ['PARAMETERS_SECRETS_EXTENSION_MAX_INBOUND_CONNECTIONS', ['0', '70000'], '1 to 65535'],
  ['PARAMETERS_SECRETS_EXTENSION_BATCH_WINDOW_MILLIS', ['101', '-2'], '0 to 100'],
  ['AWS_ENDPOINT_URL', ['not a url', 'ftp://x'], 'http:// or https://'],
  ['AWS_ENDPOINT_URL_SSM', ['localhost:4566'], 'http:// or https://'],
  ['AWS_ENDPOINT_URL_SECRETS_MANAGER', ['::'], 'http:// or https://'],
  ['AWS_ENDPOINT_URL_STS', ['sts.local'], 'http:// or https://'],
  ['AWS_USE_FIPS_ENDPOINT', ['maybe'], 'true or false'],
  ['AWS_USE_DUALSTACK_ENDPOINT', ['2'], 'true or false'],
  ['AWS_REGION', ['US EAST'], 'Region name'],
  ['AWS_LAMBDA_FUNCTION_MEMORY_SIZE', ['lots'], '1 to 1048576'],
  [
    'PARAMETERS_SECRETS_EXTENSION_TOKEN',
    ['file:///nonexistent/pscache-token'],
    'could not be opened (ENOENT)',
  ],
];

describe('bad values are refused with a message naming the variable, the value and what is allowed', () => {
  for (const [name, values, allowed] of BAD) {
    test(name, () => {
      for (const value of values) {
        assert.throws(
          () => loadConfig({ ...base, [name]: value }),
          (e: unknown) => {
            assert.ok(e instanceof ConfigError, `${name}=${value} should be a ConfigError`);
            assert.equal(e.variable, name);
            assert.match(e.message, new RegExp(`^${name}=`));
            assert.ok(e.message.includes(JSON.stringify(value)), `message shows the value: ${e.message}`);
            assert.ok(e.message.includes(allowed), `message says what is allowed: ${e.message}`);
            return true;
          },
        );
      }
    });
  }
});

describe('pscache serve refuses to start on bad configuration', () => {
  test('one line on stderr naming the variable, exit code 2, for every variable', async () => {
    // One real process per variable: the CLI path is what users see.
    await Promise.all(
      BAD.map(async ([name, [value], allowed]) => {
        const r = await runPscache(['serve'], { ...base, [name]: value! });
        assert.equal(r.code, 2, `${name}: exit code`);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `${name}: exactly one line, got ${r.stderr}`);
        assert.ok(lines[0]!.startsWith(`pscache: ${name}=`), lines[0]);
        assert.ok(lines[0]!.includes(allowed), lines[0]);
      }),
    );
  });
  test('no token source: serve refuses and says how to set one', async () => {
    const r = await runPscache(['serve'], { AWS_REGION: 'us-east-1' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /PARAMETERS_SECRETS_EXTENSION_TOKEN/);
    assert.match(r.stderr, /file:\/\//);
  });
  test('a bad flag names itself', async () => {
    const r = await runPscache(['dev', '--port', '0'], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--port "0" is invalid: must be a whole number from 1 to 65535/);
    const u = await runPscache(['serve', '--bogus'], base);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /unknown argument "--bogus"/);
  });
  test('--help works for every command', async () => {
    for (const cmd of ['serve', 'dev', 'emulator']) {
      const r = await runPscache([cmd, '--help'], {});
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`pscache ${cmd}`));
    }
    const top = await runPscache(['--help'], {});
    assert.equal(top.code, 0);
    assert.match(top.stdout, /pscache serve/);
  });
});

describe('every setting of the table is validated from it', () => {
  // Bounds for every whole-number setting with a variable: both ends accepted, one past each refused.
  const ints = SETTING_LIST.filter(
    (e): e is [SettingId, Setting<unknown> & { env: string; max: number }] =>
      e[1].env !== undefined && typeof (e[1] as { max?: unknown }).max === 'number',
  );
  for (const [id, s] of ints) {
    const min = Number(/from (\d+)/.exec(s.allowed)![1]);
    test(`${s.env}: ${min} and ${s.max} accepted, ${min - 1} and ${s.max + 1} refused`, () => {
      for (const ok of [min, s.max]) {
        assert.doesNotThrow(() => loadConfig({ ...base, [s.env]: String(ok) }), `${s.env}=${ok}`);
      }
      for (const bad of [min - 1, s.max + 1, `${min}.5`]) {
        assert.throws(
          () => loadConfig({ ...base, [s.env]: String(bad) }),
          (e: unknown) =>
            e instanceof ConfigError &&
            e.variable === s.env &&
            e.message === `${s.env}=${JSON.stringify(String(bad))} is invalid: must be ${s.allowed}`,
          `${id}: ${bad}`,
        );
      }
    });
  }
  test('booleans: true/false in any case; anything else refused', () => {
    const bools = SETTING_LIST.filter(([, s]) => s.env !== undefined && s.allowed === 'true or false');
    assert.ok(bools.length >= 4);
    for (const [, s] of bools) {
      assert.doesNotThrow(() => loadConfig({ ...base, [s.env!]: 'TRUE' }));
      assert.doesNotThrow(() => loadConfig({ ...base, [s.env!]: 'false' }));
      assert.throws(() => loadConfig({ ...base, [s.env!]: 'yes' }), /must be true or false/);
    }
  });
  test('defaults of the new settings', () => {
    const c = loadConfig(base);
    assert.deepEqual(c.tokenHeaders, ['X-Aws-Parameters-Secrets-Token', 'X-Vault-Token']);
    assert.deepEqual(c.tokenVariables, [
      'AWS_TOKEN',
      'AWS_SESSION_TOKEN',
      'AWS_CONTAINER_AUTHORIZATION_TOKEN',
    ]);
    assert.equal(c.pathPrefix, '/v1/');
    assert.equal(c.maxRoles, 20);
    assert.equal(c.crossRegion, true);
    assert.deepEqual(c.prefetchTags, []);
    assert.equal(c.prefetchBufferRatio, 0.8);
    assert.equal(c.prefetchMaxJitterMs, 0);
  });
  test('the new variables: max roles, cross-Region, path prefix, token headers and variables', () => {
    const c = loadConfig({
      ...base,
      PARAMETERS_SECRETS_EXTENSION_MAX_ROLES: '3',
      PARAMETERS_SECRETS_EXTENSION_CROSS_REGION: 'False',
      PARAMETERS_SECRETS_EXTENSION_PATH_PREFIX: '/secrets/v2/',
      PARAMETERS_SECRETS_EXTENSION_TOKEN_HEADERS: 'X-My-Token, x-other',
      PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_TOKEN',
    });
    assert.equal(c.maxRoles, 3);
    assert.equal(c.crossRegion, false);
    assert.equal(c.pathPrefix, '/secrets/v2/');
    assert.deepEqual(c.tokenHeaders, ['X-My-Token', 'x-other']);
    assert.deepEqual(c.tokenVariables, ['MY_TOKEN']);
  });
  test('a path prefix must start and end with / and must not hide a route', () => {
    for (const bad of ['v1/', '/v1', '/', '/v 1/', '/v1//x/', '/a?b/']) {
      assert.throws(
        () => loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_PATH_PREFIX: bad }),
        /PARAMETERS_SECRETS_EXTENSION_PATH_PREFIX=.* is invalid: must start and end with \//,
        bad,
      );
    }
    for (const [prefix, route] of [
      ['/secretsmanager/', '/secretsmanager/'],
      ['/ping/', '/ping'],
      ['/systemsmanager/parameters/', '/systemsmanager/parameters/'],
    ]) {
      assert.throws(
        () => loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_PATH_PREFIX: prefix }),
        (e: unknown) => e instanceof ConfigError && e.message.includes(`it would hide the route ${route}`),
        prefix,
      );
    }
  });
  test('token header and variable lists refuse empty lists and bad names', () => {
    assert.throws(
      () => loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_TOKEN_HEADERS: ' , ' }),
      /PARAMETERS_SECRETS_EXTENSION_TOKEN_HEADERS=" , " is invalid: must be a non-empty list of header names/,
    );
    assert.throws(
      () => loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_TOKEN_HEADERS: 'X Token' }),
      /"X Token" is not a header name/,
    );
    assert.throws(
      () => loadConfig({ ...base, PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY-TOKEN' }),
      /"MY-TOKEN" is not a variable name/,
    );
  });
  test('no Region and not every endpoint overridden: the error names AWS_REGION', () => {
    const keys = { PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN };
    for (const env of [keys, { ...keys, AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:1/' }]) {
      assert.throws(
        () => loadConfig(env),
        (e: unknown) =>
          e instanceof ConfigError && e.variable === 'AWS_REGION' && /set AWS_REGION/.test(e.message),
      );
    }
    assert.equal(loadConfig({ ...keys, AWS_ENDPOINT_URL: 'http://127.0.0.1:1/' }).aws.region, undefined);
    assert.equal(loadConfig({ ...keys, AWS_DEFAULT_REGION: 'eu-west-1' }).aws.region, 'eu-west-1');
  });
});

describe('the token: PARAMETERS_SECRETS_EXTENSION_TOKEN, then AWS_TOKEN, AWS_SESSION_TOKEN, the container token', () => {
  const all = {
    PARAMETERS_SECRETS_EXTENSION_TOKEN: 'own-token-0123456789',
    AWS_TOKEN: 'provider-token-0123456789',
    AWS_SESSION_TOKEN: 'session-token-0123456789',
    AWS_CONTAINER_AUTHORIZATION_TOKEN: 'container-token-0123456789',
  };
  test('each variable in order, the first set one wins', () => {
    const order = Object.keys(all) as Array<keyof typeof all>;
    for (let i = 0; i < order.length; i++) {
      const env: Record<string, string> = { ...region };
      for (const name of order.slice(i)) env[name] = all[name];
      const c = loadConfig(env);
      assert.equal(c.token, all[order[i]!]);
      assert.equal(c.tokenSource, order[i]);
    }
  });
  test('AWS_TOKEN=file:///path is read once, its trailing newline dropped; an empty file names AWS_TOKEN', () => {
    const dir = tempDir('cfg');
    writeFileSync(join(dir, 'awssmatoken'), 'from-provider-file-0001\n');
    writeFileSync(join(dir, 'empty'), '');
    const c = loadConfig({
      ...region,
      AWS_TOKEN: `file://${dir}/awssmatoken`,
      AWS_SESSION_TOKEN: 'session-token-0123456789',
    });
    assert.equal(c.token, 'from-provider-file-0001');
    assert.equal(c.tokenSource, 'AWS_TOKEN (file)');
    assert.throws(
      () => loadConfig({ ...region, AWS_TOKEN: `file://${dir}/empty` }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.variable === 'AWS_TOKEN' &&
        /the token file .*\/empty is empty/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ ...region, AWS_TOKEN: `file://${dir}/missing` }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.variable === 'AWS_TOKEN' &&
        /could not be opened \(ENOENT\)/.test(e.message),
    );
  });
  test('the variable list is configurable: only the listed variables are read, in their order', () => {
    const c = loadConfig({
      ...region,
      ...all,
      PARAMETERS_SECRETS_EXTENSION_TOKEN: undefined,
      PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_TOKEN,AWS_SESSION_TOKEN',
      MY_TOKEN: 'mine-token-0123456789',
    });
    assert.equal(c.token, 'mine-token-0123456789');
    const d = loadConfig({
      ...region,
      ...all,
      PARAMETERS_SECRETS_EXTENSION_TOKEN: undefined,
      PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_TOKEN',
    });
    assert.equal(d.token, undefined);
    assert.throws(() => requireToken(d), /also read, in order: MY_TOKEN/);
    // PARAMETERS_SECRETS_EXTENSION_TOKEN is always read first.
    assert.equal(
      loadConfig({ ...region, ...all, PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_TOKEN' }).token,
      'own-token-0123456789',
    );
  });
});

describe('parseRoleArn', () => {
  test('role ARNs of every partition, with and without a path', () => {
    assert.deepEqual(parseRoleArn('arn:aws:iam::123456789012:role/MyRole'), {
      partition: 'aws',
      account: '123456789012',
      path: '/',
      name: 'MyRole',
      arn: 'arn:aws:iam::123456789012:role/MyRole',
    });
    assert.equal(
      parseRoleArn('arn:aws-cn:iam::123456789012:role/team/app/Reader+x=y,z.w@v-u_t')?.path,
      '/team/app/',
    );
    // Every partition of the endpoint table, the European Sovereign Cloud's (aws-eusc) included.
    assert.ok(PARTITION_NAMES.includes('aws-eusc'));
    for (const p of PARTITION_NAMES) {
      assert.equal(parseRoleArn(`arn:${p}:iam::123456789012:role/R`)?.partition, p, p);
    }
  });
  test('anything else is refused', () => {
    for (const bad of [
      'notAnArn',
      'arn:aws:iam::123456789012:user/SomeUser',
      'arn:aws:iam::12345:role/Admin',
      'arn:aws:iam::1234567890123:role/Admin',
      'arn:aws:iam::12345678901a:role/Admin',
      'arn:aws:iam:::role/Admin',
      'arn:aws:iam::123456789012:role/',
      'arn:aws:iam:us-east-1:123456789012:role/Admin',
      'arn:aws:sts::123456789012:role/Admin',
      'arn:azure:iam::123456789012:role/Admin',
      'arn:aws-iso-z:iam::123456789012:role/Admin',
      'arn:aws-eusc-x:iam::123456789012:role/Admin',
      'arn:aws:iam::123456789012:role/test","injected":"value',
      'arn:aws:iam::123456789012:role//double/Name',
      `arn:aws:iam::123456789012:role/${'n'.repeat(65)}`,
      ' arn:aws:iam::123456789012:role/Admin',
    ]) {
      assert.equal(parseRoleArn(bad), undefined, bad);
    }
  });
});
