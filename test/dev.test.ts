// `pscache dev` and `pscache emulator` as real processes: the printed export line works as it is with
// the official SDK (and the AWS CLI when installed), the printed control token opens the control API,
// and the daemon's bundle carries no emulator code.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import {
  BUNDLE,
  freePort,
  httpGet,
  printed,
  ROOT,
  type RunningProcess,
  runPscache,
  spawnPscache,
  TEST_TOKEN,
} from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

/** The variables set by the printed `export` line, as a POSIX shell reads it (quoting included). */
function exported(output: string): Record<string, string> {
  const lines = output.split('\n').filter((l) => /^\s*export AWS_/.test(l));
  assert.equal(lines.length, 1, output);
  const sh = spawnSync('sh', ['-c', `${lines[0]}\nenv`], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    encoding: 'utf8',
  });
  assert.equal(sh.status, 0, sh.stderr);
  const vars: Record<string, string> = {};
  for (const line of sh.stdout.split('\n')) {
    const m = /^(AWS_[A-Z_]+)=(.*)$/.exec(line);
    if (m) vars[m[1]!] = m[2]!;
  }
  return vars;
}

/** An SSM client configured from the printed values and nothing else. */
function ssmFrom(
  vars: Record<string, string>,
  credentials?: { accessKeyId: string; secretAccessKey: string },
) {
  return new SSMClient({
    endpoint: vars['AWS_ENDPOINT_URL'],
    region: vars['AWS_REGION'],
    credentials: credentials ?? {
      accessKeyId: vars['AWS_ACCESS_KEY_ID']!,
      secretAccessKey: vars['AWS_SECRET_ACCESS_KEY']!,
    },
    maxAttempts: 1,
  });
}

const controlToken = (output: string) => /X-Emulator-Control-Token: (\S+)/.exec(output)?.[1] ?? '';

const hasAwsCli = spawnSync('aws', ['--version'], { encoding: 'utf8' }).status === 0;

describe('pscache dev', () => {
  let dev: RunningProcess;
  let emulatorPort: number;
  let vars: Record<string, string>;

  before(async () => {
    const port = await freePort();
    emulatorPort = await freePort();
    // The daemon token comes from the environment, so the banner does not print it.
    dev = await spawnPscache(
      ['dev', '--port', String(port), '--emulator-port', String(emulatorPort)],
      { PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN },
      { port },
    );
    vars = exported(await printed(dev, /Press Ctrl\+C to stop/));
  });
  after(async () => {
    const { code } = await dev.stop();
    assert.equal(code, 0);
  });

  test('prints an export line the official SDK accepts as it is', async () => {
    assert.deepEqual(Object.keys(vars).sort(), [
      'AWS_ACCESS_KEY_ID',
      'AWS_DEFAULT_REGION',
      'AWS_ENDPOINT_URL',
      'AWS_REGION',
      'AWS_SECRET_ACCESS_KEY',
    ]);
    assert.equal(vars['AWS_ENDPOINT_URL'], `http://127.0.0.1:${emulatorPort}`);
    assert.match(vars['AWS_ACCESS_KEY_ID']!, /^AKIA[A-Z0-9]{16}$/);
    assert.equal(vars['AWS_SECRET_ACCESS_KEY']!.length, 40);
    assert.equal(vars['AWS_REGION'], 'us-east-1');
    const ssm = ssmFrom(vars);
    const wrong = ssmFrom(vars, { accessKeyId: vars['AWS_ACCESS_KEY_ID']!, secretAccessKey: 'x'.repeat(40) });
    try {
      const out = await ssm.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }));
      assert.equal(out.Parameter?.Value, 'https://api.example.com');
      // Signatures are checked: the printed secret is the one that works.
      await assert.rejects(wrong.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' })), {
        name: 'InvalidSignatureException',
      });
    } finally {
      ssm.destroy();
      wrong.destroy();
    }
  });

  test('prints the control token, which opens the control API', async () => {
    const token = controlToken(dev.output());
    assert.ok(token.length >= 16, dev.output());
    const withToken = await httpGet(emulatorPort, '/__emulator/health', {
      token: null,
      headers: { 'X-Emulator-Control-Token': token },
    });
    assert.equal(withToken.status, 200);
    const without = await httpGet(emulatorPort, '/__emulator/health', { token: null });
    assert.equal(without.status, 401);
  });

  test('the AWS CLI accepts the same line', { skip: !hasAwsCli && 'the aws CLI is not installed' }, () => {
    const home = tempDir('aws-cli');
    const r = spawnSync(
      'aws',
      ['ssm', 'get-parameter', '--name', '/myapp/api-endpoint', '--output', 'json'],
      {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, ...vars },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).Parameter.Value, 'https://api.example.com');
  });
});

describe("pscache dev ignores the shell's AWS_ENDPOINT_URL_*", () => {
  test('AssumeRole and every read go to the emulator, never where AWS_ENDPOINT_URL_STS (or _SSM, _SECRETS_MANAGER) points', async () => {
    const elsewhere: string[] = [];
    const trap = createServer((req, res) => {
      elsewhere.push(`${req.method} ${req.url}`);
      res.writeHead(500).end();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const trapUrl = `http://127.0.0.1:${(trap.address() as { port: number }).port}`;
    const port = await freePort();
    const dev = await spawnPscache(
      ['dev', '--port', String(port)],
      {
        PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
        AWS_ENDPOINT_URL_STS: trapUrl,
        AWS_ENDPOINT_URL_SSM: trapUrl,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: trapUrl,
      },
      { port },
    );
    try {
      await printed(dev, /Press Ctrl\+C to stop/);
      const role = encodeURIComponent('arn:aws:iam::123456789012:role/dev-reader');
      for (const path of [
        `/secretsmanager/get?secretId=prod%2Fdb%2Fpassword&roleArn=${role}`,
        '/systemsmanager/parameters/get?name=%2Fmyapp%2Fapi-endpoint',
        '/secretsmanager/get?secretId=prod%2Fdb%2Fpassword',
      ]) {
        const r = await httpGet(port, path);
        assert.ok(r.status < 500, `${path}: ${r.status} ${r.body}`);
      }
      assert.deepEqual(elsewhere, [], 'nothing went where the shell pointed');
    } finally {
      await dev.stop();
      await new Promise<void>((r) => trap.close(() => r()));
    }
  });
});

describe("pscache dev signs with its own credentials only: the shell's credentials file is not used", () => {
  test('neither PARAMETERS_SECRETS_EXTENSION_CREDENTIALS_FILE nor credentials_file_path in --config', async () => {
    const dir = tempDir('dev-credentials-file');
    const file = join(dir, 'credentials');
    // The user's (here made-up) temporary credentials: the emulator would refuse a read signed with them.
    writeFileSync(
      file,
      '[default]\naws_access_key_id = ASIAUSERKEY000000001\naws_secret_access_key = user/secret/key/not-devs\naws_session_token = users-session-token-not-devs\n',
    );
    chmodSync(file, 0o600);
    const config = join(dir, 'pscache.toml');
    writeFileSync(config, `credentials_file_path = ${JSON.stringify(file)}\n`);
    for (const [how, args, env] of [
      ['the variable', [], { PARAMETERS_SECRETS_EXTENSION_CREDENTIALS_FILE: file }],
      ['--config', ['--config', config], {}],
    ] as const) {
      const port = await freePort();
      const dev = await spawnPscache(
        ['dev', '--port', String(port), ...args],
        { PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN, ...env },
        { port },
      );
      try {
        await printed(dev, /Press Ctrl\+C to stop/);
        const r = await httpGet(port, '/systemsmanager/parameters/get?name=%2Fmyapp%2Fapi-endpoint');
        assert.equal(r.status, 200, `${how}: ${r.status} ${r.body}`);
        assert.doesNotMatch(dev.output(), /credentials file/, how);
      } finally {
        await dev.stop();
      }
    }
  });
});

describe('pscache emulator', () => {
  test('says any credentials work, and takes its control token from the environment without printing it', async () => {
    const port = await freePort();
    const token = 'control-token-from-the-env-0123456789';
    const emu = await spawnPscache(
      ['emulator', '--port', String(port)],
      { PSCACHE_EMULATOR_CONTROL_TOKEN: token },
      { port, waitForPing: false },
    );
    try {
      const output = await printed(emu, /Control API: /);
      assert.match(output, /Signatures are not checked: any credentials work/);
      assert.match(output, /X-Emulator-Control-Token: \(from PSCACHE_EMULATOR_CONTROL_TOKEN\)/);
      assert.ok(!output.includes(token));
      const vars = exported(output);
      const anyone = ssmFrom(vars, { accessKeyId: 'AKIAANYONE', secretAccessKey: 'anything' });
      try {
        const out = await anyone.send(new GetParameterCommand({ Name: '/myapp/api-endpoint' }));
        assert.equal(out.Parameter?.Value, 'https://api.example.com');
      } finally {
        anyone.destroy();
      }
      const calls = await httpGet(port, '/__emulator/calls', {
        token: null,
        headers: { 'X-Emulator-Control-Token': token },
      });
      assert.deepEqual(JSON.parse(calls.body), { GetParameter: 1 });
    } finally {
      const { code } = await emu.stop();
      assert.equal(code, 0);
    }
  });

  test('a bad control token is refused at start, naming the flag and not echoing the value', async () => {
    for (const [args, env, source] of [
      [['--control-token', 'tooShortTok'], {}, '--control-token'],
      [[], { PSCACHE_EMULATOR_CONTROL_TOKEN: 'tooShortTok' }, 'PSCACHE_EMULATOR_CONTROL_TOKEN'],
    ] as const) {
      for (const cmd of ['emulator', 'dev']) {
        const r = await runPscache([cmd, ...args], { ...env });
        assert.equal(r.code, 2, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(`${source} is invalid: must be 16 to 512 visible ASCII characters`),
        );
        assert.ok(!r.stderr.includes('tooShortTok'));
      }
    }
  });
});

test('the daemon bundle carries no emulator code; dist/emulator.cjs beside it does', () => {
  const daemon = readFileSync(BUNDLE, 'utf8');
  const emulator = readFileSync(join(ROOT, 'dist/emulator.cjs'), 'utf8');
  for (const marker of ['reset-mid-body', '/__emulator/faults', 'x-emulator-control-token']) {
    assert.ok(emulator.includes(marker), `${marker} is in dist/emulator.cjs`);
    assert.ok(!daemon.includes(marker), `${marker} is in dist/pscache.cjs`);
  }
  // Loaded from beside the bundle by `dev` and `emulator` only.
  assert.ok(daemon.includes('"./emulator.cjs"'), 'dist/pscache.cjs loads ./emulator.cjs');
});
