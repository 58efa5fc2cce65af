// roleArn (the Workload Credentials Provider's role chaining, on every item route here), end to end: the
// bundled daemon against the emulator's STS. One AssumeRole serves many reads, reads are signed as the
// role, every role (and no role) has its own cache entries, refused roles 403, bad ARNs and roles beyond
// max_roles 400, and a role's credentials are refreshed before they expire.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Emulator, startEmulator } from '../packages/emulator/index.ts';
import {
  Daemons,
  daemonEnv,
  freePort,
  param,
  type RunningProcess,
  secret,
  sleep,
  spawnPscache,
  TEST_CREDENTIALS,
} from './helpers/daemon.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);
const calls = (op: string) => world.emu.calls()[op] ?? 0;
const json = (body: string) => JSON.parse(body);
const q = encodeURIComponent;
const role = (name: string) => `arn:aws:iam::123456789012:role/${name}`;
const as = (roleArn: string) => `&roleArn=${q(roleArn)}`;
/** Who signed each call of `op` since the last reset (role ARN, or the base access key id). */
const principals = (op: string) =>
  world.emu
    .callLog()
    .filter((c) => c.operation === op)
    .map((c) => c.principal);

const APP = role('app-reader');
const OTHER = role('other-reader');

before(async () => {
  world = await startWorld();
  await world.createSecret('roles/db', sensitive('roles-db-password-3817'));
  await world.createSecret('roles/api', sensitive('roles-api-key-5521'));
  await world.putParameter('/roles/plain', sensitive('roles-plain-value-0099'));
  await world.putParameter('/roles/deep/one', sensitive('roles-deep-one-7731'));
  await world.putParameter('/roles/single', sensitive('roles-single-value-4410'));
});
worldHooks(() => world, daemons);

describe('roleArn', () => {
  let d: RunningProcess;
  before(async () => {
    d = await daemons.start();
  });

  test('one AssumeRole serves many reads, every route; each read is signed with the role session', async () => {
    const reads = [
      // First, before single reads have cached these two.
      `/systemsmanager/parameters/batch?name=%2Froles%2Fplain&name=%2Froles%2Fdeep%2Fone&withDecryption=true${as(APP)}`,
      secret('roles/db', as(APP)),
      secret('roles/api', as(APP)),
      `/v1/roles%2Fdb?roleArn=${q(APP)}&versionStage=AWSCURRENT`,
      param('/roles/single', as(APP)),
      `/parameters/get?name=${q('/roles/deep/one')}${as(APP)}`,
      `/secrets/get?name=roles%2Fapi&versionStage=AWSCURRENT${as(APP)}`,
      `/systemsmanager/parameters/path?path=%2Froles%2F&recursive=true${as(APP)}`,
      `/secretsmanager/batch?secretId=roles%2Fdb&secretId=roles%2Fapi&secretId=missing${as(APP)}`,
    ];
    for (const path of reads) {
      const r = await d.get(path);
      assert.equal(r.status, 200, `${path}: ${r.body}`);
    }
    assert.equal(calls('AssumeRole'), 1, 'one AssumeRole for every read under the role');
    assert.deepEqual(principals('AssumeRole'), [TEST_CREDENTIALS.accessKeyId], 'assumed with the base keys');
    const reading = world.emu.callLog().filter((c) => c.operation !== 'AssumeRole');
    assert.ok(reading.length >= 6, `reads went upstream: ${reading.map((c) => c.operation)}`);
    for (const c of reading) assert.equal(c.principal, APP, `${c.operation} is signed as the role`);
    const ops = new Set(reading.map((c) => c.operation));
    for (const op of ['GetSecretValue', 'GetParameter', 'GetParameters', 'GetParametersByPath']) {
      assert.ok(ops.has(op), `${op} made as the role`);
    }
    assert.equal(
      json((await d.get(secret('roles/db', as(APP)))).body).SecretString,
      'roles-db-password-3817',
    );
  });

  test('each role, and no role, has its own cache entries', async () => {
    const id = 'roles/api';
    const first = await d.get(secret(id, as(OTHER)));
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-pscache'], 'miss', 'never read as OTHER');
    assert.equal((await d.get(secret(id, as(OTHER)))).headers['x-pscache'], 'hit');
    const base = await d.get(secret(id));
    assert.equal(base.headers['x-pscache'], 'miss', 'a role entry never answers a read without a role');
    assert.equal((await d.get(secret(id))).headers['x-pscache'], 'hit');
    const third = role('third-reader');
    assert.equal(
      (await d.get(secret(id, as(third)))).headers['x-pscache'],
      'miss',
      'nor one under another role',
    );
    assert.deepEqual(principals('GetSecretValue'), [OTHER, TEST_CREDENTIALS.accessKeyId, third]);
    // Parameters too, the entry shared by both decryption flags included.
    const p = '/roles/deep/one';
    assert.equal((await d.get(param(p, '&withDecryption=true'))).headers['x-pscache'], 'miss');
    assert.equal((await d.get(param(p))).headers['x-pscache'], 'hit', 'a String serves both flags');
    assert.equal((await d.get(param(p, as(OTHER)))).headers['x-pscache'], 'miss', 'but not another role');
    assert.equal((await d.get(param(p, `&withDecryption=true${as(OTHER)}`))).headers['x-pscache'], 'hit');
  });

  test('a refused AssumeRole is 403 AccessDeniedException, never served from another entry', async () => {
    const denied = role('denied-reader');
    world.emu.denyRoles([denied]);
    const r = await d.get(secret('roles/db', as(denied)));
    assert.equal(r.status, 403, r.body);
    assert.equal(json(r.body).__type, 'AccessDeniedException');
    assert.match(
      json(r.body).message,
      /AssumeRole on arn:aws:iam::123456789012:role\/denied-reader failed: AccessDenied/,
    );
    assert.equal(calls('GetSecretValue'), 0, 'no read without the role');
    const batch = await d.get(`/secretsmanager/batch?secretId=roles%2Fdb${as(denied)}`);
    assert.equal(batch.status, 403, 'a batch read fails as a whole, not item by item');
    const path = await d.get(`/systemsmanager/parameters/path?path=%2Froles%2F${as(denied)}`);
    assert.equal(path.status, 403);
  });

  test('a role the emulator lets read nothing: the read itself is denied (403), as AWS would', async () => {
    const narrow = role('narrow-reader');
    world.emu.allowRole(narrow, ['roles/api']);
    assert.equal((await d.get(secret('roles/api', as(narrow)))).status, 200);
    const r = await d.get(secret('roles/db', as(narrow)));
    assert.equal(r.status, 403);
    assert.equal(json(r.body).__type, 'AccessDeniedException');
    assert.match(json(r.body).message, /assumed-role\/narrow-reader/);
  });

  test('a malformed role ARN is 400 and nothing goes upstream', async () => {
    for (const bad of [
      'not-an-arn',
      'arn:aws:iam::12345:role/short-account',
      'arn:aws:iam::123456789012:user/a-user',
      'arn:aws:sts::123456789012:assumed-role/x/y',
      `arn:aws:iam::123456789012:role/${'n'.repeat(65)}`,
      '',
    ]) {
      for (const path of [
        secret('roles/db', as(bad)),
        param('/roles/plain', as(bad)),
        `/v1/roles%2Fdb?roleArn=${q(bad)}`,
        `/secretsmanager/batch?secretId=roles%2Fdb${as(bad)}`,
      ]) {
        const r = await d.get(path);
        assert.equal(r.status, 400, `${path}: ${r.body}`);
        assert.match(json(r.body).message, /roleArn/);
      }
    }
    assert.equal(
      (await d.get(`${secret('roles/db', as(APP))}${as(APP)}`)).status,
      400,
      'roleArn given twice',
    );
    assert.deepEqual(world.emu.calls(), {});
  });

  test('STS throttling answers 429, STS failures 502, like any upstream failure', async () => {
    const slow = role('throttled-reader');
    world.emu.setFaults([{ operation: 'AssumeRole', error: 'throttle', times: 3 }]);
    const throttled = await d.get(secret('roles/db', as(slow)));
    assert.equal(throttled.status, 429, throttled.body);
    world.emu.setFaults([{ operation: 'AssumeRole', error: '500', times: 3 }]);
    const failing = await d.get(secret('roles/db', as(slow)));
    assert.equal(failing.status, 502, failing.body);
    world.emu.clearFaults();
    const ok = await d.get(secret('roles/db', as(slow)));
    assert.equal(ok.status, 200, 'the failures took no place among the roles, and left nothing behind');
  });
});

describe('max_roles', () => {
  test('PARAMETERS_SECRETS_EXTENSION_MAX_ROLES=2: a third role is 400 MaxRolesExceeded; refused roles take no place', async () => {
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_MAX_ROLES: '2' });
    const denied = role('max-denied');
    world.emu.denyRoles([denied]);
    assert.equal((await d.get(secret('roles/db', as(denied)))).status, 403);
    assert.equal((await d.get(secret('roles/db', as(role('max-1'))))).status, 200);
    assert.equal((await d.get(secret('roles/db', as(role('max-2'))))).status, 200);
    const third = await d.get(secret('roles/db', as(role('max-3'))));
    assert.equal(third.status, 400, third.body);
    assert.equal(json(third.body).__type, 'MaxRolesExceeded');
    assert.match(json(third.body).message, /max_roles/);
    assert.equal(calls('AssumeRole'), 3, 'the third role was never assumed');
    // The live roles keep working: they are never evicted.
    assert.equal((await d.get(secret('roles/api', as(role('max-1'))))).status, 200);
    assert.equal((await d.get(param('/roles/plain', as(role('max-2'))))).status, 200);
    assert.equal((await d.get(secret('roles/db'))).status, 200, 'reads without a role are not counted');
    await daemons.stop(d);
  });

  test('the default is 20 roles: the 21st is 400', async () => {
    const d = await daemons.start();
    for (let i = 1; i <= 20; i++) {
      const r = await d.get(secret('roles/db', as(role(`default-${i}`))));
      assert.equal(r.status, 200, `role ${i}: ${r.body}`);
    }
    const r21 = await d.get(secret('roles/db', as(role('default-21'))));
    assert.equal(r21.status, 400);
    assert.equal(json(r21.body).__type, 'MaxRolesExceeded');
    assert.equal(calls('AssumeRole'), 20);
    await daemons.stop(d);
  });
});

describe('role credentials are refreshed before they expire', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({
      store: { secrets: [{ name: 'short/lived', secretString: sensitive('short-lived-secret-6620') }] },
      credentials: [TEST_CREDENTIALS],
      roleSessionSeconds: 3,
    });
  });
  after(() => emu.close());

  test('3-second role sessions: reads for 7 s never meet an expired session, and AssumeRole is called again', async () => {
    const port = await freePort();
    const d = daemons.track(
      await spawnPscache(['serve'], daemonEnv(emu.url, port, { SECRETS_MANAGER_TTL: '0' }), { port }),
    );
    const short = role('short-session');
    const t0 = Date.now();
    let reads = 0;
    /** Longest a read took, send to answer. */
    let slowest = 0;
    let lastSent = t0;
    while (Date.now() - t0 < 7000) {
      const sent = Date.now();
      lastSent = sent;
      const r = await d.get(secret('short/lived', as(short)));
      slowest = Math.max(slowest, Date.now() - sent);
      assert.equal(r.status, 200, r.body);
      reads++;
      await sleep(250);
    }
    const span = Date.now() - t0;
    const log = emu.callLog();
    const assumed = log.filter((c) => c.operation === 'AssumeRole').length;
    const gets = log.filter((c) => c.operation === 'GetSecretValue');
    // A session is used only until its last tenth (0.3 s): a read that took longer than that may have been
    // signed in time and still reached the emulator after the session ended; it is then signed anew.
    const expired = gets.filter((c) => c.error === 'ExpiredTokenException').length;
    if (slowest < 300) assert.equal(expired, 0, 'a read met an expired session');
    assert.equal(
      gets.length,
      reads + expired,
      'TTL 0: every read went upstream, once unless its session ended',
    );
    assert.deepEqual(
      gets.filter(
        (c) => c.principal !== short || (c.error !== undefined && c.error !== 'ExpiredTokenException'),
      ),
      [],
      'every read signed as the role',
    );
    // Renewed when half the session is left: at most one AssumeRole each 1.5 s, besides the first (and one per
    // read that met an ended session); at least one renewal once reads went on past the first session.
    assert.ok(assumed <= 2 + Math.floor(span / 1500) + expired, `${assumed} AssumeRole calls in ${span} ms`);
    if (lastSent > t0 + 3000) assert.ok(assumed >= 2, 'renewed');
    await daemons.stop(d);
  });
});
