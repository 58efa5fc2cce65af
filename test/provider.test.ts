// What users of the AWS Workload Credentials Provider rely on, end to end against the emulator and the
// bundled daemon: X-Vault-Token and configurable token headers, path-style /v1/{secretId} reads (sharing
// the cache with /secretsmanager/get), AWS_TOKEN, and `serve --config` with a provider configuration.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { Daemons, type RunningProcess, secret, TEST_CREDENTIALS, TEST_TOKEN } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);
const calls = () => world.emu.calls()['GetSecretValue'] ?? 0;
const json = (body: string) => JSON.parse(body);
const dir = tempDir('provider');

let previousVersion = '';
before(async () => {
  world = await startWorld();
  await world.createSecret('prod/db/password', sensitive('provider-db-password-v1'));
  previousVersion = await world.createSecret('rotating', sensitive('provider-rotating-v1'));
  await world.putSecretValue('rotating', sensitive('provider-rotating-v2'));
  await world.createSecret('plain', sensitive('provider-plain-secret'));
});

worldHooks(() => world, daemons);

describe('token headers', () => {
  let d: RunningProcess;
  before(async () => {
    d = await daemons.start();
  });
  test('X-Vault-Token is accepted by default, in any case', async () => {
    for (const name of ['X-Vault-Token', 'x-vault-token']) {
      const r = await d.get(secret('plain'), { token: null, headers: { [name]: TEST_TOKEN } });
      assert.equal(r.status, 200, name);
      assert.equal(json(r.body).SecretString, 'provider-plain-secret');
    }
  });
  test('without a token header the 401 names the headers accepted', async () => {
    const r = await d.get(secret('plain'), { token: null });
    assert.equal(r.status, 401);
    assert.equal(json(r.body).message, 'missing X-Aws-Parameters-Secrets-Token header (or X-Vault-Token)');
  });
  test('several token headers: every one must hold the token', async () => {
    const both = await d.get(secret('plain'), { headers: { 'X-Vault-Token': TEST_TOKEN } });
    assert.equal(both.status, 200);
    const oneWrong = await d.get(secret('plain'), { headers: { 'X-Vault-Token': 'not-the-token' } });
    assert.equal(oneWrong.status, 401);
    assert.equal(json(oneWrong.body).message, 'the X-Vault-Token header is not valid');
    const otherWrong = await d.get(secret('plain'), {
      token: 'not-the-token',
      headers: { 'X-Vault-Token': TEST_TOKEN },
    });
    assert.equal(otherWrong.status, 401);
    // An empty header counts as absent.
    const empty = await d.get(secret('plain'), { headers: { 'X-Vault-Token': '' } });
    assert.equal(empty.status, 200);
  });
  test('a configured header list: only those headers carry the token', async () => {
    const custom = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_TOKEN_HEADERS: 'X-My-Token' });
    const refused = await custom.get(secret('plain'));
    assert.equal(refused.status, 401, 'X-Aws-Parameters-Secrets-Token is not in the list');
    assert.equal(json(refused.body).message, 'missing X-My-Token header');
    const vault = await custom.get(secret('plain'), {
      token: null,
      headers: { 'X-Vault-Token': TEST_TOKEN },
    });
    assert.equal(vault.status, 401);
    const ok = await custom.get(secret('plain'), { token: null, headers: { 'x-my-token': TEST_TOKEN } });
    assert.equal(ok.status, 200);
    await daemons.stop(custom);
  });
});

describe('/v1/{secretId}', () => {
  let d: RunningProcess;
  before(async () => {
    d = await daemons.start();
  });
  test('an encoded id reads the secret, the body as /secretsmanager/get gives it', async () => {
    const path = await d.get('/v1/prod%2Fdb%2Fpassword');
    assert.equal(path.status, 200, path.body);
    assert.equal(path.headers['content-type'], 'application/json');
    const query = await d.get(secret('prod/db/password'));
    assert.deepEqual(json(path.body), json(query.body));
    assert.equal(json(path.body).SecretString, 'provider-db-password-v1');
    // Slashes need not be encoded: the rest of the path is the id.
    assert.equal(json((await d.get('/v1/prod/db/password')).body).Name, 'prod/db/password');
  });
  test('one cache entry with /secretsmanager/get: a read through one is a hit through the other', async () => {
    const before = calls();
    const first = await d.get('/v1/rotating?versionStage=AWSCURRENT');
    assert.equal(first.headers['x-pscache'], 'miss');
    const second = await d.get(secret('rotating', '&versionStage=AWSCURRENT'));
    assert.equal(second.headers['x-pscache'], 'hit');
    assert.equal(second.body, first.body);
    const third = await d.get(secret('rotating', '&versionStage=AWSPREVIOUS'));
    assert.equal(third.headers['x-pscache'], 'miss');
    assert.equal((await d.get('/v1/rotating?versionStage=AWSPREVIOUS')).headers['x-pscache'], 'hit');
    assert.equal(calls() - before, 2);
  });
  test('versionId, versionStage, refreshNow and ttl, as on /secretsmanager/get', async () => {
    const byId = await d.get(`/v1/rotating?versionId=${previousVersion}`);
    assert.equal(json(byId.body).SecretString, 'provider-rotating-v1');
    const previous = await d.get('/v1/rotating?versionStage=AWSPREVIOUS');
    assert.equal(json(previous.body).SecretString, 'provider-rotating-v1');
    const current = await d.get('/v1/rotating');
    assert.equal(json(current.body).SecretString, 'provider-rotating-v2');
    const before = calls();
    const refreshed = await d.get('/v1/rotating?refreshNow=true');
    assert.equal(refreshed.headers['x-pscache'], 'miss');
    assert.equal(calls() - before, 1);
    const short = await d.get('/v1/plain?ttl=0');
    assert.equal(short.status, 200);
    assert.equal(short.headers['x-pscache'], 'miss');
    assert.equal((await d.get('/v1/plain')).headers['x-pscache'], 'miss', 'ttl=0: not cached');
  });
  test('errors as on /secretsmanager/get: 404, 400 for bad escapes, empty ids and unknown parameters', async () => {
    const missing = await d.get('/v1/no-such-secret');
    assert.equal(missing.status, 404);
    assert.equal(json(missing.body).__type, 'ResourceNotFoundException');
    for (const [path, phrase] of [
      ['/v1/prod%2', 'malformed percent-encoding'],
      ['/v1/%E0%A4%A', 'malformed percent-encoding'],
      ['/v1/', 'must name a secret'],
      ['/v1/a%00b', 'control characters'],
      ['/v1/plain?secretId=x', 'unknown query parameter'],
      ['/v1/plain?refreshNow=maybe', 'refreshNow must be true or false'],
    ]) {
      const r = await d.get(path!);
      assert.equal(r.status, 400, path);
      assert.ok(json(r.body).message.includes(phrase!), `${path}: ${r.body}`);
    }
    assert.equal((await d.get('/v1')).status, 404);
    assert.equal((await d.get('/v1/plain', { token: null })).status, 401);
    assert.equal((await d.get('/v1/plain', { method: 'POST' })).status, 405);
  });
  test('a custom prefix replaces /v1/', async () => {
    const custom = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_PATH_PREFIX: '/secrets/by-id/' });
    const r = await custom.get('/secrets/by-id/prod%2Fdb%2Fpassword');
    assert.equal(r.status, 200);
    assert.equal(json(r.body).Name, 'prod/db/password');
    assert.equal((await custom.get('/v1/plain')).status, 404);
    await daemons.stop(custom);
  });
});

describe('serve --config with a provider configuration', () => {
  test('nested form: region, TTL, prefix and token headers from the file; AWS_TOKEN from a file; the port from the environment', async () => {
    const tokenFile = join(dir, 'awssmatoken');
    writeFileSync(tokenFile, `${TEST_TOKEN}\n`);
    const config = join(dir, 'provider.toml');
    writeFileSync(
      config,
      `[logging]
log_level = "INFO"
log_to_file = true

[capabilities.secrets_manager]
http_port = 2773
region = "us-east-1"
path_prefix = "/api/"
max_conn = 50

[capabilities.secrets_manager.cache]
ttl_seconds = 1800

[capabilities.secrets_manager.security]
ssrf_headers = ["X-Vault-Token"]
ssrf_env_variables = ["AWS_TOKEN"]

[pscache]
PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR = 60
`,
    );
    const d = await daemons.start(
      {},
      {
        args: ['serve', '--config', config],
        // No AWS_REGION and no PARAMETERS_SECRETS_EXTENSION_TOKEN: both come through the file.
        env: {
          AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
          AWS_ENDPOINT_URL: world.emu.url,
          AWS_TOKEN: `file://${tokenFile}`,
        },
      },
    );
    const r = await d.get('/api/plain', { token: null, headers: { 'X-Vault-Token': TEST_TOKEN } });
    assert.equal(r.status, 200, r.body);
    assert.equal(json(r.body).SecretString, 'provider-plain-secret');
    assert.equal((await d.get('/api/plain')).status, 401, 'X-Aws-Parameters-Secrets-Token is not listed');
    const { output } = await daemons.stop(d);
    assert.match(output, /log_to_file is ignored/);
  });
});
