// `pscache get parameter|secret`: the bundled CLI against the daemon and emulator; what it prints and the
// exit codes a shell script branches on (0 found, 2 not found, 3 denied, 4 unreachable, 1 other).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { startFaultProxy } from './helpers/client-proxy.ts';
import { type ClientWorld, EXOTIC, startClientWorld, VALUES } from './helpers/client-world.ts';
import { assertNothingSensitive, BUNDLE, freePort, TEST_TOKEN } from './helpers/daemon.ts';

let cw: ClientWorld;

before(async () => {
  cw = await startClientWorld();
});

after(async () => {
  await cw.close();
});

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `pscache get ...` with the daemon's token and port unless `env` says otherwise. */
function get(args: string[], env: Record<string, string> = cw.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE, 'get', ...args], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pscache get ${args.join(' ')} did not exit`));
    }, 10000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // Errors go to stderr; they name items but never carry values or the token.
      assertNothingSensitive(stderr);
      assert.ok(!stderr.includes(TEST_TOKEN));
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
  });
}

test('prints a parameter value with a newline and exits 0', async () => {
  const r = await get(['parameter', '/app/endpoint']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.toString(), `${VALUES.endpoint}\n`);
  assert.equal(r.stderr, '');
});

test('--decrypt, --version and --label select what the daemon returns', async () => {
  assert.equal(
    (await get(['parameter', '/app/db/password', '--decrypt'])).stdout.toString(),
    `${VALUES.dbPassword}\n`,
  );
  const cipher = (await get(['parameter', '/app/db/password'])).stdout.toString();
  assert.notEqual(cipher, `${VALUES.dbPassword}\n`);
  assert.equal(
    (await get(['parameter', '/app/config', '--version', '1'])).stdout.toString(),
    `${VALUES.v1}\n`,
  );
  assert.equal(
    (await get(['parameter', '/app/config', '--label=stable'])).stdout.toString(),
    `${VALUES.v1}\n`,
  );
});

test('secrets: a string, a binary secret byte for byte, --stage with exotic characters', async () => {
  assert.equal((await get(['secret', 'svc/plain'])).stdout.toString(), `${VALUES.dbPassword}\n`);
  const bin = await get(['secret', 'svc/binary']);
  assert.equal(bin.code, 0);
  assert.deepEqual([...bin.stdout], [...VALUES.binary]);
  const staged = await get(['secret', EXOTIC.secret, '--stage', EXOTIC.stage]);
  assert.equal(staged.stdout.toString(), `${VALUES.exoticStaged}\n`);
});

test('--json prints the whole answer as the daemon sent it', async () => {
  const r = await get(['secret', 'svc/json', '--json']);
  assert.equal(r.code, 0);
  const doc = JSON.parse(r.stdout.toString());
  assert.equal(doc.Name, 'svc/json');
  assert.equal(doc.SecretString, VALUES.json);
  assert.deepEqual(doc.VersionStages, ['AWSCURRENT']);
  assert.deepEqual(doc.ResultMetadata, {});
});

test('exit 2 when not found', async () => {
  const p = await get(['parameter', '/app/absent']);
  assert.equal(p.code, 2);
  assert.match(p.stderr, /NotFoundError \(HTTP 404, ParameterNotFound\)/);
  assert.equal(p.stdout.length, 0);
  assert.equal((await get(['secret', 'svc/absent'])).code, 2);
});

test('exit 3 when denied: by AWS, by a wrong token, or with no token', async () => {
  cw.world.emu.deny(['svc/denied-cli']);
  try {
    const r = await get(['secret', 'svc/denied-cli']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /AccessDeniedError \(HTTP 403/);
  } finally {
    cw.world.emu.clearDeny();
  }
  const wrong = await get(['parameter', '/app/endpoint'], {
    ...cw.env,
    PARAMETERS_SECRETS_EXTENSION_TOKEN: 'wrong-token',
  });
  assert.equal(wrong.code, 3);
  assert.match(wrong.stderr, /HTTP 401/);
  const none = await get(['parameter', '/app/endpoint'], {
    PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(cw.port),
  });
  assert.equal(none.code, 3);
  assert.match(none.stderr, /set PARAMETERS_SECRETS_EXTENSION_TOKEN/);
});

test('exit 4 when nothing listens, after retrying', async () => {
  const port = await freePort();
  const r = await get(['secret', 'svc/plain', '--port', String(port)]);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /ConnectionRefused/);
  assert.match(r.stderr, /3 attempts/);
});

test('a daemon answering 503 twice is retried; the third answer is printed', async () => {
  const proxy = await startFaultProxy(cw.port);
  try {
    proxy.fail({ status: 503 }, 'reset');
    const r = await get(['parameter', '/app/endpoint', '--port', String(proxy.port)]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.toString(), `${VALUES.endpoint}\n`);
    assert.equal(proxy.requests.length, 3);
  } finally {
    await proxy.close();
  }
});

test('exit 1 for usage errors and other failures, with one line saying why', async () => {
  for (const args of [
    [],
    ['parameter'],
    ['thing', 'x'],
    ['parameter', '/a', '--stage', 'AWSCURRENT'],
    ['secret', 'x', '--decrypt'],
    ['parameter', '/a', '--version', 'x'],
    ['parameter', '/a', '--version', '1', '--label', 'l'],
    ['parameter', '/a', '--bogus'],
  ]) {
    const r = await get(args);
    assert.equal(r.code, 1, `pscache get ${args.join(' ')}`);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /^pscache get: /);
  }
  const bad = await get(['parameter', '/app/not-json'], {
    ...cw.env,
    PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: 'x',
  });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /PARAMETERS_SECRETS_EXTENSION_HTTP_PORT="x" is invalid/);
});

test('--help describes the command and its exit codes', async () => {
  const r = await get(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout.toString(), /0 found, 2 not found, 3 denied/);
});
