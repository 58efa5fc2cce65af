// `--config FILE`: the Workload Credentials Provider's TOML schema (nested and flat forms) plus [pscache]:
// its examples load unchanged, unknown keys and bad values name the file and key, variables override it.
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readConfigFile } from '../src/config/file.ts';
import { type Config, ConfigError, loadConfig } from '../src/config.ts';
import { runPscache, TEST_TOKEN } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/provider-config/', import.meta.url));
const env = { PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN };
const withRegion = { ...env, AWS_REGION: 'us-east-1' };
const dir = tempDir('toml');
let n = 0;

/** Writes `toml` to a temporary file and loads it with `vars`. */
async function load(toml: string, vars: Record<string, string | undefined> = withRegion): Promise<Config> {
  const path = join(dir, `c${n++}.toml`);
  writeFileSync(path, toml);
  return loadConfig(vars, await readConfigFile(path));
}

/** Asserts loading fails with one line naming `key` and containing `phrase`. */
async function refused(toml: string, key: string, phrase: string | RegExp): Promise<void> {
  await assert.rejects(
    () => load(toml),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.ok(!e.message.includes('\n'), 'one line');
      assert.match(e.message, /^\S+\.toml(:\d+:\d+)?: /, 'names the file');
      assert.ok(e.message.includes(key), `names ${key}: ${e.message}`);
      if (typeof phrase === 'string') assert.ok(e.message.includes(phrase), e.message);
      else assert.match(e.message, phrase);
      return true;
    },
  );
}

describe("the provider's example configurations load unchanged", () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.toml'));
  test('there are examples to load', () => assert.ok(files.length >= 10));
  for (const f of files) {
    test(f, async () => {
      const c = loadConfig({ ...env, AWS_REGION: 'eu-west-1' }, await readConfigFile(join(FIXTURES, f)));
      assert.equal(c.token, TEST_TOKEN);
    });
  }
  test('the full nested example: every key lands where it should', async () => {
    const c = loadConfig(env, await readConfigFile(join(FIXTURES, 'readme-full-with-prefetch.toml')));
    assert.equal(c.port, 2773);
    assert.equal(c.aws.region, 'us-east-1');
    assert.equal(c.maxRoles, 5);
    assert.deepEqual(c.ttlMs, { ssm: 300_000, secretsmanager: 300_000 });
    assert.equal(c.prefetchBufferRatio, 0.6);
    assert.equal(c.prefetchMaxJitterMs, 5000);
    assert.deepEqual(c.prefetch, [
      {
        service: 'secretsmanager',
        id: 'arn:aws:secretsmanager:us-west-2:123456789012:secret:MySecret-AbCdEf',
      },
      {
        service: 'secretsmanager',
        id: 'arn:aws:secretsmanager:us-east-1:987654321098:secret:CrossAccount-AbCdEf',
        roleArn: 'arn:aws:iam::987654321098:role/SecretAccessRole',
      },
    ]);
    assert.deepEqual(c.prefetchTags, [
      { key: 'Environment' },
      { key: 'Team', roleArn: 'arn:aws:iam::987654321098:role/TagRole' },
    ]);
  });
  test('the Secrets Manager example: max_conn is the inbound limit, ssrf keys the token headers and variables', async () => {
    const c = loadConfig(env, await readConfigFile(join(FIXTURES, 'readme-secrets-manager.toml')));
    assert.equal(c.maxInboundConnections, 800);
    assert.equal(c.cacheSize, 1000);
    assert.equal(c.pathPrefix, '/v1/');
    assert.deepEqual(c.tokenHeaders, ['X-Aws-Parameters-Secrets-Token', 'X-Vault-Token']);
    assert.deepEqual(c.tokenVariables, [
      'AWS_TOKEN',
      'AWS_SESSION_TOKEN',
      'AWS_CONTAINER_AUTHORIZATION_TOKEN',
    ]);
  });
  test('the flat form: string numbers, MY_TOKEN, ignore_transient_errors = false turns stale serving off', async () => {
    const c = loadConfig(
      { MY_TOKEN: 'flat-token-0123456789', AWS_SESSION_TOKEN: 'not-this-token-0123456789' },
      await readConfigFile(join(FIXTURES, 'flat-full-with-prefetch.toml')),
    );
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.port, 65535);
    assert.equal(c.cacheSize, 500);
    assert.equal(c.maxInboundConnections, 100);
    assert.equal(c.pathPrefix, '/custom/');
    assert.deepEqual(c.ttlMs, { ssm: 600_000, secretsmanager: 600_000 });
    assert.equal(c.token, 'flat-token-0123456789');
    assert.equal(c.tokenSource, 'MY_TOKEN');
    assert.deepEqual(c.tokenHeaders, ['X-Aws-Parameters-Secrets-Token']);
    assert.equal(c.staleIfErrorMs, 0);
    assert.equal(c.prefetch.length, 2);
    assert.equal(c.prefetchTags.length, 2);
  });
  test('ignored parts are noted for the log: log_to_file, [capabilities.acm]', async () => {
    const common = loadConfig(withRegion, await readConfigFile(join(FIXTURES, 'readme-common.toml')));
    assert.equal(common.logLevel, 'info');
    assert.ok(common.notes.some((l) => l.includes('logging.log_to_file is ignored')));
    const acm = loadConfig(withRegion, await readConfigFile(join(FIXTURES, 'readme-acm-linux.toml')));
    assert.ok(acm.notes.some((l) => l.includes('[capabilities.acm] is ignored')));
  });
});

describe('precedence', () => {
  const toml = `
[capabilities.secrets_manager]
http_port = 3000
region = "eu-west-1"
[capabilities.secrets_manager.cache]
ttl_seconds = 60
[pscache]
SECRETS_MANAGER_TTL = 10
PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR = 5
`;
  test('the file gives what the environment does not', async () => {
    const c = await load(toml, env);
    assert.equal(c.port, 3000);
    assert.equal(c.aws.region, 'eu-west-1');
    assert.deepEqual(c.ttlMs, { ssm: 60_000, secretsmanager: 10_000 });
    assert.equal(c.staleIfErrorMs, 5000);
  });
  test('a variable overrides the file, setting by setting', async () => {
    const c = await load(toml, {
      ...env,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '4000',
      AWS_REGION: 'ap-south-1',
      PARAMETERS_SECRETS_EXTENSION_TTL_SECS: '120',
      PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR: '0',
    });
    assert.equal(c.port, 4000);
    assert.equal(c.aws.region, 'ap-south-1');
    // The per-service TTL (from the file) still beats the single TTL (from a variable).
    assert.deepEqual(c.ttlMs, { ssm: 120_000, secretsmanager: 10_000 });
    assert.equal(c.staleIfErrorMs, 0);
  });
  test('log level: the variable, else the file, else AWS_LAMBDA_LOG_LEVEL', async () => {
    const file = '[logging]\nlog_level = "WARN"\n';
    assert.equal((await load(file, { ...withRegion, AWS_LAMBDA_LOG_LEVEL: 'DEBUG' })).logLevel, 'warn');
    assert.equal(
      (await load(file, { ...withRegion, PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'error' })).logLevel,
      'error',
    );
    assert.equal((await load('', { ...withRegion, AWS_LAMBDA_LOG_LEVEL: 'DEBUG' })).logLevel, 'debug');
  });
  test('prefetch: the variable and the file are both fetched', async () => {
    const c = await load(
      '[capabilities.secrets_manager.prefetch]\nsecrets = [{ secret_id = "from-file" }]\n',
      { ...withRegion, PARAMETERS_SECRETS_EXTENSION_PREFETCH: 'ssm:/from/env' },
    );
    assert.deepEqual(c.prefetch, [
      { service: 'ssm', id: '/from/env' },
      { service: 'secretsmanager', id: 'from-file' },
    ]);
  });
  test("ttl_seconds above the provider's 3600 is accepted up to pscache's 86400", async () => {
    assert.equal((await load('ttl_seconds = 86400\n')).ttlMs.secretsmanager, 86_400_000);
    await refused('ttl_seconds = 86401\n', 'ttl_seconds', 'must be a whole number from 0 to 86400');
  });
});

describe('bad files stop start-up with one line naming the key', () => {
  const SM = 'capabilities.secrets_manager';
  const cases: Array<[string, string, string, string | RegExp]> = [
    [
      'unknown nested key',
      `[${SM}]\nhttp_prot = 2773\n`,
      `${SM}.http_prot`,
      /is not a known key; allowed under \[capabilities\.secrets_manager\]: .*http_port/,
    ],
    ['unknown table', '[capabilities.kms]\nenabled = true\n', 'capabilities.kms', 'secrets_manager, acm'],
    ['unknown top key', 'http_address = "0.0.0.0"\n', 'http_address', 'allowed at the top:'],
    [
      'flat key beside nested',
      `log_level = "info"\n[${SM}]\nhttp_port = 2773\n`,
      'log_level',
      'use logging.log_level',
    ],
    [
      'unknown [pscache] key',
      '[pscache]\nPARAMETERS_SECRETS_EXTENSION_BOGUS = 1\n',
      'pscache.PARAMETERS_SECRETS_EXTENSION_BOGUS',
      'allowed in [pscache]',
    ],
    [
      'a provider key under [pscache]',
      '[pscache]\nPARAMETERS_SECRETS_EXTENSION_HTTP_PORT = 1\n',
      'pscache.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT',
      `set in this file as ${SM}.http_port`,
    ],
    [
      'the token under [pscache]',
      '[pscache]\nPARAMETERS_SECRETS_EXTENSION_TOKEN = "x"\n',
      'pscache.PARAMETERS_SECRETS_EXTENSION_TOKEN',
      'set it in the environment',
    ],
    [
      'a bad port',
      `[${SM}]\nhttp_port = 70000\n`,
      `${SM}.http_port = 70000`,
      'must be a whole number from 1 to 65535',
    ],
    [
      'a port as a boolean',
      'http_port = true\n',
      'http_port = true',
      'must be a whole number from 1 to 65535',
    ],
    [
      'a bad log level',
      '[logging]\nlog_level = "verbose"\n',
      'logging.log_level = "verbose"',
      'must be one of debug, info, warn, error, none',
    ],
    [
      'an empty header list',
      `[${SM}.security]\nssrf_headers = []\n`,
      `${SM}.security.ssrf_headers`,
      'non-empty list of header names',
    ],
    [
      'a header list as a string',
      'ssrf_headers = "X-Vault-Token"\n',
      'ssrf_headers',
      'non-empty list of header names',
    ],
    [
      'a bad role ARN',
      `[${SM}.prefetch]\nsecrets = [{ secret_id = "a", role_arn = "arn:aws:iam::1:role/x" }]\n`,
      `${SM}.prefetch.secrets`,
      'entry 1: role_arn must be an IAM role ARN',
    ],
    [
      'a prefetch entry without secret_id',
      `[[${SM}.prefetch.secrets]]\nrole_arn = "arn:aws:iam::123456789012:role/R"\n`,
      `${SM}.prefetch.secrets`,
      'entry 1 needs secret_id',
    ],
    [
      'an unknown field in a tag filter',
      `[${SM}.prefetch]\nfilter_tags = [{ key = "Env", value = "prod" }]\n`,
      `${SM}.prefetch.filter_tags`,
      'unknown key value',
    ],
    [
      'a ratio out of range',
      '[prefetch]\ncache_buffer_ratio = 0.05\n',
      'prefetch.cache_buffer_ratio',
      'must be a number from 0.1 to 1.0',
    ],
    [
      'jitter out of range',
      `[${SM}.prefetch]\nmax_jitter_seconds = 11\n`,
      `${SM}.prefetch.max_jitter_seconds`,
      'from 0 to 10',
    ],
    ['max_roles out of range', 'max_roles = 21\n', 'max_roles', 'from 1 to 20'],
    ['enabled = false', `[${SM}]\nenabled = false\n`, `${SM}.enabled`, 'must be true'],
    [
      'a prefix without the trailing slash',
      'path_prefix = "/other"\n',
      'path_prefix = "/other"',
      'must start and end with /',
    ],
    [
      'a prefix that hides a route',
      'path_prefix = "/secretsmanager/"\n',
      'path_prefix',
      'hide the route /secretsmanager/',
    ],
    [
      'a near miss of a [pscache] name',
      '[pscache]\nPARAMETERS_SECRETS_EXTENSION_CROSS_REGION = true\nPARAMETERS_SECRETS_EXTENSION_CROSS_REGION_X = 1\n',
      'pscache.PARAMETERS_SECRETS_EXTENSION_CROSS_REGION_X',
      'not a pscache setting',
    ],
    ['TOML syntax', 'http_port = [1,\n', '', /:\d+:\d+: not valid TOML: /],
  ];
  for (const [what, toml, key, phrase] of cases) {
    test(what, () => refused(toml, key, phrase));
  }
  test('a file that cannot be read names itself', async () => {
    await assert.rejects(
      () => readConfigFile(join(dir, 'nope.toml')),
      /--config=".*nope\.toml" is invalid: the file could not be read \(ENOENT\)/,
    );
  });
});

describe('pscache serve --config', () => {
  const base = withRegion;
  test('a bad key or value: exit 2, one line on stderr naming the file and key', async () => {
    for (const [toml, key] of [
      ['[capabilities.secrets_manager]\nhttp_prot = 1\n', 'capabilities.secrets_manager.http_prot'],
      [
        '[capabilities.secrets_manager.cache]\nttl_seconds = -1\n',
        'capabilities.secrets_manager.cache.ttl_seconds',
      ],
    ] as const) {
      const path = join(dir, `cli${n++}.toml`);
      writeFileSync(path, toml);
      const r = await runPscache(['serve', '--config', path], base);
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.startsWith(`pscache: ${path}: ${key}`), lines[0]);
    }
  });
  test('a missing file and a missing value are refused', async () => {
    const r = await runPscache(['serve', '--config', join(dir, 'absent.toml')], base);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /the file could not be read \(ENOENT\)/);
    const v = await runPscache(['serve', '--config'], base);
    assert.equal(v.code, 2);
    assert.match(v.stderr, /--config needs a value/);
  });
  test('--config is refused inside Lambda, where the environment is the configuration', async () => {
    const r = await runPscache(['serve', '--config', join(FIXTURES, 'readme-common.toml')], {
      ...base,
      AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9',
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--config is not read inside Lambda/);
  });
  test('serve --help names --config', async () => {
    const r = await runPscache(['serve', '--help'], {});
    assert.match(r.stdout, /--config FILE/);
  });
});
