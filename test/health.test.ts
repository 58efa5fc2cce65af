// Credentials health, end to end with the real bundle: missing credentials are one WARN line at start
// naming the source and the fix; validate_credentials checks them with STS GetCallerIdentity before
// serving and exits 1 on a refusal (or, without ignore_transient_errors, on a transient failure), never
// hanging; GET /ready says whether credentials and upstream work, with no name or value in it.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { staticCredentials } from '../src/aws/credentials.ts';
import { Health } from '../src/health.ts';
import {
  Daemons,
  daemonEnv,
  freePort,
  httpGet,
  runPscache,
  secret,
  TEST_CREDENTIALS,
} from './helpers/daemon.ts';
import { FakeClock } from './helpers/fake-time.ts';
import { tempDir } from './helpers/temp.ts';
import { sensitive, startWorld, type World } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);
let dir: string;
/** Accepts connections and never answers: an STS that hangs. */
let silent: Server;
let silentPort: number;
const held = new Set<Socket>();

before(async () => {
  world = await startWorld();
  await world.createSecret('health/secret', sensitive('health-secret-value-9921'));
  dir = tempDir('health');
  silent = createServer((s) => {
    held.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const a = silent.address();
  silentPort = typeof a === 'object' && a ? a.port : 0;
});
after(async () => {
  await daemons.stopAll();
  await world.close();
  for (const s of held) s.destroy();
  await new Promise((r) => silent.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** The test environment without any credentials: no keys, no container endpoint, no profile, no IMDS. */
function noCredentials(port: number, extra: Record<string, string> = {}): Record<string, string> {
  const { AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _s, ...rest } = daemonEnv(world.emu.url, port);
  return {
    ...rest,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(dir, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
    ...extra,
  };
}

const json = (body: string) => JSON.parse(body) as Record<string, unknown>;

describe('no credentials', () => {
  test('serve: one WARN line at start naming the source and the fix; /ping alive, /ready not ready', async () => {
    const d = await daemons.start({}, { env: noCredentials(0) });
    const line = await waitForLine(d.output, /WARN no AWS credentials/);
    assert.match(line, /could not load AWS credentials from the default credential chain/);
    assert.match(line, /source="default chain"/);
    assert.match(
      line,
      /fix="give pscache credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, .*credentials_file_path/,
    );
    assert.equal((await d.get('/ping', { token: null })).status, 200);
    const ready = await d.get('/ready', { token: null });
    assert.equal(ready.status, 503, ready.body);
    assert.deepEqual(json(ready.body), { ready: false, credentials: 'failed', upstream: 'unknown' });
    assert.equal((await d.get(secret('health/secret'))).status, 403);
    const out = (await daemons.stop(d)).output;
    assert.equal(out.split('WARN no AWS credentials').length - 1, 1, 'one WARN line');
  });

  test('validate_credentials = true: exit 1 before serving, naming the source and the fix', async () => {
    const port = await freePort();
    const r = await runPscache(
      ['serve'],
      noCredentials(port, { PARAMETERS_SECRETS_EXTENSION_VALIDATE_CREDENTIALS: 'true' }),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^pscache: validate_credentials: STS GetCallerIdentity failed with the credentials of the default chain: CredentialsProviderError: could not load AWS credentials .*; give pscache credentials/m,
    );
    assert.ok(!r.stderr.includes('serving on port'), 'it served before validating');
    await assert.rejects(httpGet(port, '/ping', { token: null, timeoutMs: 1000 }));
    assert.equal(world.emu.calls()['GetCallerIdentity'] ?? 0, 0, 'no credentials: nothing to sign with');
  });
});

describe('validate_credentials', () => {
  const validate = { PARAMETERS_SECRETS_EXTENSION_VALIDATE_CREDENTIALS: 'true' };

  test('valid credentials: one GetCallerIdentity, signed with them, then served', async () => {
    const d = await daemons.start(validate);
    assert.equal((await d.get(secret('health/secret'))).status, 200);
    const calls = world.emu.callLog().filter((c) => c.operation === 'GetCallerIdentity');
    assert.deepEqual(
      calls.map((c) => c.principal),
      [TEST_CREDENTIALS.accessKeyId],
    );
    const out = (await daemons.stop(d)).output;
    assert.match(
      out,
      /INFO validate_credentials: the credentials are valid source=environment account=123456789012/,
    );
  });

  test('keys STS refuses: exit 1 with its code', async () => {
    const r = await runPscache(
      ['serve'],
      daemonEnv(world.emu.url, await freePort(), {
        ...validate,
        AWS_SECRET_ACCESS_KEY: 'not-the-secret-key',
      }),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /validate_credentials: STS GetCallerIdentity failed with the credentials of the environment: SignatureDoesNotMatch: /,
    );
    assert.match(r.stderr, /check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN/);
  });

  test('STS unreachable: a WARN and served (ignore_transient_errors); exit 1 when that is false', async () => {
    const down = { ...validate, AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:1' };
    const d = await daemons.start(down);
    assert.equal((await d.get(secret('health/secret'))).status, 200);
    const out = (await daemons.stop(d)).output;
    assert.match(
      out,
      /WARN validate_credentials: STS GetCallerIdentity failed .*: ECONNREFUSED: .*serving anyway/,
    );

    const toml = join(dir, 'strict.toml');
    writeFileSync(toml, '[capabilities.secrets_manager]\nignore_transient_errors = false\n');
    const r = await runPscache(['serve', '--config', toml], daemonEnv(world.emu.url, await freePort(), down));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^pscache: validate_credentials: .*ECONNREFUSED/m);
  });

  test('STS that never answers: bounded by the attempt timeouts, never a hang', async () => {
    const toml = join(dir, 'hang.toml');
    // validate_credentials is on by default with a --config file, as in the provider.
    writeFileSync(toml, '[capabilities.secrets_manager]\nignore_transient_errors = false\n');
    const r = await runPscache(
      ['serve', '--config', toml],
      daemonEnv(world.emu.url, await freePort(), {
        AWS_ENDPOINT_URL_STS: `http://127.0.0.1:${silentPort}`,
        SSM_PARAMETER_STORE_TIMEOUT_MILLIS: '100',
        SECRETS_MANAGER_TIMEOUT_MILLIS: '100',
      }),
      20_000,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /validate_credentials: STS GetCallerIdentity failed .*: TimeoutError: no complete answer within 100 ms/,
    );
  });
});

describe('GET /ready', () => {
  test('no token needed; 200 once credentials work; upstream unknown, then reachable after a read', async () => {
    const d = await daemons.start();
    const first = await d.get('/ready', { token: null });
    assert.equal(first.status, 200, first.body);
    assert.deepEqual(json(first.body), { ready: true, credentials: 'ok', upstream: 'unknown' });
    assert.equal(first.headers['content-type'], 'application/json');
    assert.equal((await d.get(secret('health/secret'))).status, 200);
    assert.deepEqual(json((await d.get('/ready', { token: null })).body), {
      ready: true,
      credentials: 'ok',
      upstream: 'reachable',
    });
    assert.equal((await d.get('/ready', { token: null, method: 'POST' })).status, 405);
    const metrics = await d.get('/metrics');
    assert.match(metrics.body, /pscache_requests_total\{route="ready",status="200"\} 2/);
  });

  test('upstream unreachable after a failed read: 503, and what was asked for appears nowhere in it', async () => {
    const d = await daemons.start({ AWS_ENDPOINT_URL: 'http://127.0.0.1:1' });
    assert.equal((await d.get(secret('health/secret'))).status, 502);
    const r = await d.get('/ready', { token: null });
    assert.equal(r.status, 503);
    assert.deepEqual(json(r.body), { ready: false, credentials: 'ok', upstream: 'unreachable' });
  });
});

describe('Health on a fake clock', () => {
  test('an upstream failure counts for a minute; credentials still being fetched are pending', async () => {
    const clock = new FakeClock();
    const h = new Health(staticCredentials(TEST_CREDENTIALS), clock);
    h.observer({ service: 'ssm', operation: 'GetParameter', outcome: 'network', ms: 1, attempt: 1 });
    assert.equal((await h.readiness()).upstream, 'unreachable');
    await clock.advance(60_001);
    assert.deepEqual(await h.readiness(), { ready: true, credentials: 'ok', upstream: 'unknown' });
    h.observer({ service: 'ssm', operation: 'GetParameter', outcome: 'throttled', ms: 1, attempt: 1 });
    assert.equal((await h.readiness()).upstream, 'reachable', 'a throttled answer is an answer');

    const never = new Health(
      { name: 'slow', get: () => new Promise(() => {}), invalidate: () => false },
      clock,
    );
    const answer = never.readiness(1000);
    await clock.advance(1000);
    assert.deepEqual(await answer, { ready: false, credentials: 'pending', upstream: 'unknown' });
  });
});

describe('/ready costs no credentials fetch per probe', () => {
  /** A credentials source that fails until told otherwise, counting its fetches; `held` as the real ones. */
  function failingSource() {
    let ok = false;
    let fetches = 0;
    return {
      source: {
        name: 'container',
        get: () => {
          fetches++;
          return ok ? Promise.resolve(TEST_CREDENTIALS) : Promise.reject(new Error('no credentials'));
        },
        invalidate: () => false,
        held: () => ok && fetches > 0,
      },
      fetches: () => fetches,
      recover: () => {
        ok = true;
      },
    };
  }

  test('after a failure, probes answer `failed` without a fetch until the back-off (5 s, doubling to 60 s) is over', async () => {
    const clock = new FakeClock();
    const s = failingSource();
    const h = new Health(s.source, clock);
    assert.equal((await h.readiness()).credentials, 'failed');
    assert.equal(s.fetches(), 1);
    // Any number of probes within the back-off: no fetch.
    for (let i = 0; i < 100; i++) assert.equal((await h.readiness()).credentials, 'failed');
    assert.equal(s.fetches(), 1);
    // Then one fetch per back-off period, the period doubling: 5, 10, 20, 40, 60, 60 s.
    let expected = 1;
    for (const wait of [5000, 10_000, 20_000, 40_000, 60_000, 60_000]) {
      await clock.advance(wait - 1);
      assert.equal((await h.readiness()).credentials, 'failed');
      assert.equal(s.fetches(), expected, `${wait - 1} ms into a ${wait} ms back-off`);
      await clock.advance(1);
      await Promise.all([h.readiness(), h.readiness(), h.readiness()]);
      expected++;
      assert.equal(s.fetches(), expected, `at the end of a ${wait} ms back-off: one fetch, joined`);
    }
  });

  test('credentials a read fetched meanwhile are `ok` at once, without a fetch; a later failure starts at 5 s again', async () => {
    const clock = new FakeClock();
    const s = failingSource();
    const h = new Health(s.source, clock);
    await h.readiness();
    await clock.advance(30_000);
    await h.readiness();
    assert.equal(s.fetches(), 2, 'the back-off is now 10 s');
    s.recover();
    // A read (not /ready) fetches them.
    await s.source.get();
    const before = s.fetches();
    assert.deepEqual(await h.readiness(), { ready: true, credentials: 'ok', upstream: 'unknown' });
    assert.equal(s.fetches(), before, 'credentials in hand cost no fetch');
  });

  test('the start-up check is the first failure: probes right after it fetch nothing', async () => {
    const clock = new FakeClock();
    const s = failingSource();
    const h = new Health(s.source, clock);
    const lines: string[] = [];
    const log = {
      warn: (m: string) => lines.push(m),
      debug: () => {},
    } as unknown as Parameters<Health['checkAtStart']>[0];
    await h.checkAtStart(log);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^no AWS credentials: no credentials; reads fail \(403\) until fixed$/);
    for (let i = 0; i < 10; i++) assert.equal((await h.readiness()).credentials, 'failed');
    assert.equal(s.fetches(), 1);
  });
});

async function waitForLine(output: () => string, re: RegExp): Promise<string> {
  for (let i = 0; i < 500; i++) {
    const line = output()
      .split('\n')
      .find((l) => re.test(l));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no line matching ${re} in:\n${output()}`);
}
