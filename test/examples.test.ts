// The examples under examples/, run as a user would against `pscache dev` (what `npm start` runs): the
// TypeScript handler on the built pscache/client package (type-checked as ESM and CommonJS), the plain
// Node.js handler, the Python helpers and handler, and the curl script; with faults from a proxy.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { type FaultProxy, startFaultProxy } from './helpers/client-proxy.ts';
import {
  assertNothingSensitive,
  freePort,
  ROOT,
  type RunningProcess,
  runCommand,
  spawnPscache,
  TEST_TOKEN,
} from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

const run = promisify(execFile);
const EXAMPLES = join(ROOT, 'examples');
const TSX = pathToFileURL(createRequire(join(ROOT, 'package.json')).resolve('tsx')).href;

/** The `exports` entry proposed for package.json, used when package.json does not have one yet. */
const PROPOSED_EXPORTS = {
  './client': {
    import: { types: './dist/client/index.d.mts', default: './dist/client/index.mjs' },
    require: { types: './dist/client/index.d.cts', default: './dist/client/index.cjs' },
  },
  './package.json': './package.json',
};

/** A secret name with `+ = @`, and a staging label with `& : + ü`, spaces (AWS allows these there). */
const EXOTIC_SECRET = 'app/a+b=c@d.e_f-g';
const EXOTIC_ARN = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${EXOTIC_SECRET}-AbCdEf`;
const EXOTIC_VALUE = 'exotic-example-value-31f8';
const EXOTIC_STAGE = 'blue & green: ü+1';

let dev: RunningProcess;
let dir: string;
let store: {
  parameters: Array<{ name: string; value: string }>;
  secrets: Array<{ name: string; secretString?: string; secretBinary?: string }>;
};
const proxies: FaultProxy[] = [];

const parameter = (name: string) => store.parameters.find((p) => p.name === name)!.value;
const secret = (name: string) => store.secrets.find((s) => s.name === name)!.secretString!;

/** The environment an example gets: token and port, a proxy it must ignore, nothing else of ours. */
function env(port = dev.port, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
    PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
    // A proxy for everything: the examples must talk to localhost directly.
    HTTP_PROXY: 'http://127.0.0.1:9',
    http_proxy: 'http://127.0.0.1:9',
    ...extra,
  };
}

async function proxy(): Promise<FaultProxy> {
  const p = await startFaultProxy(dev.port);
  proxies.push(p);
  return p;
}

/** Runs a command to completion whatever its exit code; its output must hold no secret or token. */
const exec = (cmd: string, args: string[], e: Record<string, string>, cwd = ROOT) =>
  runCommand(cmd, args, e, { cwd, timeoutMs: 20000 });

before(async () => {
  dir = tempDir('examples');
  // The example store plus one secret with the characters naive URL building breaks on.
  store = JSON.parse(readFileSync(join(EXAMPLES, 'store.json'), 'utf8'));
  const seeded = {
    ...store,
    secrets: [...store.secrets, { name: EXOTIC_SECRET, secretString: EXOTIC_VALUE, arnSuffix: 'AbCdEf' }],
  };
  writeFileSync(join(dir, 'store.json'), JSON.stringify(seeded));
  const port = await freePort();
  dev = await spawnPscache(
    ['dev', '--port', String(port), '--store', join(dir, 'store.json')],
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN },
    { port },
  );
});

after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  const { code, output } = await dev.stop();
  assert.equal(code, 0);
  for (const s of store.secrets) if (s.secretString) assert.ok(!output.includes(s.secretString));
});

describe('TypeScript handler on the built pscache/client package', () => {
  let project: string;

  before(async () => {
    // An installed copy of the package: node_modules/pscache with the built client and the exports map.
    project = join(dir, 'project');
    const pkgDir = join(project, 'node_modules/pscache');
    await run(process.execPath, [
      join(ROOT, 'scripts/build-client.mjs'),
      '--outdir',
      join(pkgDir, 'dist/client'),
    ]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    writeFileSync(
      join(pkgDir, 'package.json'),
      JSON.stringify({ name: 'pscache', type: 'module', exports: pkg.exports ?? PROPOSED_EXPORTS }),
    );
    mkdirSync(join(project, 'examples/lambda-typescript'), { recursive: true });
    copyFileSync(join(EXAMPLES, 'invoke.mjs'), join(project, 'examples/invoke.mjs'));
    copyFileSync(
      join(EXAMPLES, 'lambda-typescript/handler.ts'),
      join(project, 'examples/lambda-typescript/handler.ts'),
    );
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', type: 'module' }));
    // A CommonJS consumer: resolves the `require` condition and its .d.cts types.
    writeFileSync(
      join(project, 'consumer.cts'),
      `import { createClient, getSecret, ParameterNotFoundError } from 'pscache/client';
const value: Promise<string | Uint8Array> = getSecret('prod/db/password');
const json: Promise<{ a: number }> = createClient({ retries: 1 }).getSecret<{ a: number }>('x', { transform: 'json' });
const isNotFound = (e: unknown): boolean => e instanceof ParameterNotFoundError && e.status === 404;
export { value, json, isNotFound };
`,
    );
    // Strict, NodeNext, and no @types/node: the declarations must not need them.
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          types: [],
          lib: ['ES2022'],
        },
        files: ['examples/lambda-typescript/handler.ts', 'consumer.cts'],
      }),
    );
  });

  test('type-checks as a user project would (ESM handler and CommonJS consumer)', async () => {
    const r = await exec(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project],
      env(),
      project,
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('the handler runs against the daemon', async () => {
    const r = await exec(
      process.execPath,
      ['--import', TSX, 'examples/invoke.mjs', 'examples/lambda-typescript/handler.ts'],
      env(),
      project,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.statusCode, 200);
    assert.deepEqual(JSON.parse(out.body), {
      apiEndpoint: parameter('/myapp/api-endpoint'),
      database: `${parameter('/myapp/db/host')}:${parameter('/myapp/db/port')}`,
      apiUser: JSON.parse(secret('prod/api/credentials')).username,
      dbPasswordLength: parameter('/myapp/db/password').length,
      featureFlags: parameter('/myapp/feature-flags').split(','),
      region: 'us-east-1',
    });
  });

  test('the CommonJS build works through require("pscache/client")', async () => {
    const script = `const c = require('pscache/client');
      c.getSecret(${JSON.stringify(EXOTIC_SECRET)}).then(async (v) => {
        let type; try { await c.getSecret('nope'); } catch (e) { type = [e.name, e instanceof c.ParameterNotFoundError]; }
        console.log(JSON.stringify({ ok: v === ${JSON.stringify(EXOTIC_VALUE)}, type }));
      });`;
    const r = await exec(process.execPath, ['-e', script], env(), project);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ok: true, type: ['NotFoundError', true] });
  });
});

describe('plain Node.js handler', () => {
  const handler = join(EXAMPLES, 'lambda-node/index.mjs');

  test('the handler runs against the daemon', async () => {
    const r = await exec(process.execPath, [join(EXAMPLES, 'invoke.mjs'), handler], env());
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(JSON.parse(r.stdout).body), {
      apiEndpoint: parameter('/myapp/api-endpoint'),
      apiUser: JSON.parse(secret('prod/api/credentials')).username,
      dbPasswordLength: secret('prod/db/password').length,
    });
  });

  test('names are URL-encoded, failures typed, 503 and resets retried', async () => {
    const p = await proxy();
    p.fail({ status: 503 }, 'reset');
    const script = `import { getSecret, getParameter } from ${JSON.stringify(pathToFileURL(handler).href)};
      const out = {};
      out.exotic = await getSecret(${JSON.stringify(EXOTIC_SECRET)}) === ${JSON.stringify(EXOTIC_VALUE)};
      out.arn = await getSecret(${JSON.stringify(EXOTIC_ARN)}) === ${JSON.stringify(EXOTIC_VALUE)};
      out.decrypted = (await getParameter('/myapp/db/password', { decrypt: true })).length;
      try { await getParameter('/no/such'); } catch (e) { out.missing = [e.status, e.type]; }
      console.log(JSON.stringify(out));`;
    const r = await exec(process.execPath, ['--input-type=module', '-e', script], env(p.port));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      exotic: true,
      arn: true,
      decrypted: parameter('/myapp/db/password').length,
      missing: [404, 'ParameterNotFound'],
    });
    // 2 faults + 4 calls; the 404 was not retried.
    assert.equal(p.requests.length, 6);
  });

  test("the token in the daemon's order: file: in any spelling is a file, AWS_TOKEN before AWS_SESSION_TOKEN", async () => {
    const script = `import { getParameter } from ${JSON.stringify(pathToFileURL(handler).href)};
      try { console.log(JSON.stringify(await getParameter('/myapp/api-endpoint'))); }
      catch (e) { console.log(JSON.stringify(e.message)); }`;
    for (const [extra, expected] of tokenCases()) {
      const r = await exec(process.execPath, ['--input-type=module', '-e', script], env(dev.port, extra));
      assert.equal(r.code, 0, r.stderr);
      assert.match(JSON.parse(r.stdout), expected, JSON.stringify(extra));
    }
  });
});

/** Token sources every example must read as the daemon does, and what reading the endpoint then gives. */
function tokenCases(): Array<[Record<string, string>, RegExp]> {
  const file = join(dir, 'example-token');
  writeFileSync(file, `${TEST_TOKEN}\n`);
  const ok = new RegExp(parameter('/myapp/api-endpoint').replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return [
    [{ PARAMETERS_SECRETS_EXTENSION_TOKEN: `file:${file}` }, ok],
    [{ PARAMETERS_SECRETS_EXTENSION_TOKEN: `FILE://${file}` }, ok],
    [{ PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://localhost${file}` }, ok],
    [{ PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://etc${file}` }, /file:\/\/\/path/],
    [
      {
        PARAMETERS_SECRETS_EXTENSION_TOKEN: '',
        AWS_TOKEN: TEST_TOKEN,
        AWS_SESSION_TOKEN: 'the-apps-session-token',
      },
      ok,
    ],
  ];
}

describe('Python (standard library only)', () => {
  const PY = join(EXAMPLES, 'python');
  /** Runs Python with the examples on sys.path; the script prints one JSON line. */
  const python = (code: string, e: Record<string, string>) =>
    exec('python3', ['-c', `import sys, json\nsys.path.insert(0, ${JSON.stringify(PY)})\n${code}`], e);

  test("the article's handler, rewritten, runs against the daemon", async () => {
    const r = await exec('python3', [join(PY, 'lambda_function.py')], env());
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.statusCode, 200);
    assert.deepEqual(JSON.parse(out.body), {
      apiEndpoint: parameter('/myapp/api-endpoint'),
      dbPasswordLength: secret('prod/db/password').length,
    });
  });

  test('the helpers: encoding, selectors, binary secrets, typed failures', async () => {
    const r = await python(
      `import pscache_helpers as h
out = {
  'exotic': h.get_secret(${JSON.stringify(EXOTIC_SECRET)}) == ${JSON.stringify(EXOTIC_VALUE)},
  'arn': h.get_secret(${JSON.stringify(EXOTIC_ARN)}) == ${JSON.stringify(EXOTIC_VALUE)},
  'label': h.get_parameter('/myapp/config/version', label='stable'),
  'version': h.get_parameter('/myapp/config/version', version=1),
  'decrypted': len(h.get_parameter('/myapp/db/password', decrypt=True)),
  'previous': h.get_secret('prod/rotating/token', version_stage='AWSPREVIOUS'),
  'binary': h.get_secret('prod/tls/key').startswith(b'-----BEGIN'),
}
try:
    h.get_secret('prod/rotating/token', version_stage=${JSON.stringify(EXOTIC_STAGE)})
except h.NotFound as e:
    out['stage_echoed'] = ${JSON.stringify(EXOTIC_STAGE)} in str(e)
print(json.dumps(out))`,
      env(),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      exotic: true,
      arn: true,
      label: 'v2',
      version: 'v1',
      decrypted: parameter('/myapp/db/password').length,
      previous: 'token-v1',
      binary: true,
      stage_echoed: true,
    });
  });

  test('a wrong or missing token is Denied and says what to set; a closed port is Unavailable', async () => {
    const code = `import pscache_helpers as h
try:
    h.get_parameter('/myapp/api-endpoint')
except h.PscacheError as e:
    print(json.dumps([type(e).__name__, e.status, e.type, str(e)]))`;
    const wrong = await python(
      code,
      env(dev.port, { PARAMETERS_SECRETS_EXTENSION_TOKEN: 'wrong-token-0123456789' }),
    );
    assert.deepEqual(JSON.parse(wrong.stdout).slice(0, 3), ['Denied', 401, 'Unauthorized']);
    const none = await python(code, { ...env(), PARAMETERS_SECRETS_EXTENSION_TOKEN: '' });
    const [cls, status, , message] = JSON.parse(none.stdout);
    assert.deepEqual([cls, status], ['Denied', 401]);
    assert.match(message, /set PARAMETERS_SECRETS_EXTENSION_TOKEN/);
    const closed = await python(code, env(await freePort()));
    assert.deepEqual(JSON.parse(closed.stdout).slice(0, 2), ['Unavailable', 0]);
  });

  test("the token in the daemon's order: file: in any spelling is a file, AWS_TOKEN before AWS_SESSION_TOKEN", async () => {
    const code = `import pscache_helpers as h
try:
    print(json.dumps(h.get_parameter('/myapp/api-endpoint')))
except h.PscacheError as e:
    print(json.dumps(str(e)))`;
    for (const [extra, expected] of tokenCases()) {
      const r = await python(code, env(dev.port, extra));
      assert.equal(r.code, 0, r.stderr);
      assert.match(JSON.parse(r.stdout), expected, JSON.stringify(extra));
    }
  });

  test('503 and a reset are retried; a 404 is not; a hanging daemon times out per attempt', async () => {
    const p = await proxy();
    p.fail({ status: 503 }, 'reset');
    const r = await python(
      `import pscache_helpers as h, time
value = h.get_parameter('/myapp/api-endpoint')
try:
    h.get_secret('no/such/secret')
except h.NotFound:
    pass
print(json.dumps(value))`,
      env(p.port),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), parameter('/myapp/api-endpoint'));
    assert.equal(p.requests.length, 4, '2 faults, the success, and one 404');

    const hang = await proxy();
    hang.failAlways('hang');
    const t = await python(
      `import pscache_helpers as h, time
h.TIMEOUT_SECONDS, h.RETRIES = 0.2, 1
start = time.monotonic()
try:
    h.get_parameter('/myapp/api-endpoint')
except h.Unavailable as e:
    print(json.dumps([e.status, time.monotonic() - start]))`,
      env(hang.port),
    );
    const [status, seconds] = JSON.parse(t.stdout);
    assert.equal(status, 0);
    assert.ok(seconds >= 0.4 && seconds < 3, `took ${seconds} s`);
    assert.equal(hang.requests.length, 2);
  });
});

describe('shell with curl', () => {
  const SCRIPT = join(EXAMPLES, 'shell/pscache-get.sh');
  const sh = (args: string[], e = env()) => exec('sh', [SCRIPT, ...args], e);

  test('prints values: parameters, --decrypt, --label, secrets, --stage, binary as base64, --json', async () => {
    const cases: Array<[string[], string]> = [
      [['parameter', '/myapp/api-endpoint'], parameter('/myapp/api-endpoint')],
      [['parameter', '/myapp/db/password', '--decrypt'], parameter('/myapp/db/password')],
      [['parameter', '/myapp/config/version', '--label', 'stable'], 'v2'],
      [['parameter', '/myapp/config/version', '--version', '1'], 'v1'],
      [['secret', 'prod/db/password'], secret('prod/db/password')],
      [['secret', 'prod/rotating/token', '--stage', 'AWSPREVIOUS'], 'token-v1'],
      [['secret', EXOTIC_SECRET], EXOTIC_VALUE],
      [['secret', EXOTIC_ARN], EXOTIC_VALUE],
      [['secret', 'prod/tls/key'], store.secrets.find((s) => s.name === 'prod/tls/key')!.secretBinary!],
    ];
    for (const [args, expected] of cases) {
      const r = await sh(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, `${expected}\n`, args.join(' '));
    }
    const j = await sh(['secret', 'prod/api/credentials', '--json']);
    assert.equal(JSON.parse(j.stdout).SecretString, secret('prod/api/credentials'));
  });

  test('exit codes: 2 not found, 3 denied or no token, 4 unreachable; errors never print values', async () => {
    const missing = await sh(['parameter', '/no/such']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /HTTP 404.*ParameterNotFound/);
    const stage = await sh(['secret', 'prod/rotating/token', '--stage', EXOTIC_STAGE]);
    assert.equal(stage.code, 2);
    assert.ok(stage.stderr.includes(EXOTIC_STAGE), 'the label arrived intact');
    assert.equal(
      (
        await sh(
          ['secret', 'prod/db/password'],
          env(dev.port, { PARAMETERS_SECRETS_EXTENSION_TOKEN: 'wrong-token-0123456789' }),
        )
      ).code,
      3,
    );
    const none = await sh(['secret', 'prod/db/password'], {
      ...env(),
      PARAMETERS_SECRETS_EXTENSION_TOKEN: '',
    });
    assert.equal(none.code, 3);
    assert.match(none.stderr, /set PARAMETERS_SECRETS_EXTENSION_TOKEN/);
    assert.equal((await sh(['thing', 'x'])).code, 1);
    for (const r of [missing, stage, none]) assertNothingSensitive(r.stderr + r.stdout);
  });

  test("the token in the daemon's order: file: in any spelling is a file, AWS_TOKEN before AWS_SESSION_TOKEN", async () => {
    for (const [extra, expected] of tokenCases()) {
      const r = await sh(['parameter', '/myapp/api-endpoint'], env(dev.port, extra));
      assert.match(r.stdout + r.stderr, expected, JSON.stringify(extra));
    }
  });

  test('a reset and a 503 are retried (the retried body is not mixed in), a 404 is not, a closed port is 4', async () => {
    const p = await proxy();
    p.fail('reset');
    const r = await sh(['parameter', '/myapp/api-endpoint'], env(p.port));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${parameter('/myapp/api-endpoint')}\n`);
    assert.equal(p.requests.length, 2);
    p.fail({ status: 503 });
    const j = await sh(['parameter', '/myapp/api-endpoint', '--json'], env(p.port));
    assert.equal(JSON.parse(j.stdout).Parameter.Value, parameter('/myapp/api-endpoint'));
    assert.equal(p.requests.length, 4);
    assert.equal((await sh(['parameter', '/no/such'], env(p.port))).code, 2);
    assert.equal(p.requests.length, 5);
    const closed = await sh(['parameter', '/x'], env(await freePort(), { PSCACHE_RETRIES: '0' }));
    assert.equal(closed.code, 4);
  });

  test('without jq, python3 reads the answer', async () => {
    // A PATH with only what the script needs, and no jq.
    const bin = join(dir, 'bin-no-jq');
    mkdirSync(bin, { recursive: true });
    for (const tool of ['curl', 'cat', 'mktemp', 'rm', 'sh', 'od', 'awk']) {
      const { stdout } = await run('sh', ['-c', `command -v ${tool}`]);
      symlinkSync(stdout.trim(), join(bin, tool));
    }
    // The interpreter itself, not a version manager's shim (which needs more on PATH).
    const { stdout: py } = await run('python3', ['-c', 'import sys; print(sys.executable)']);
    symlinkSync(py.trim(), join(bin, 'python3'));
    const r = await sh(['secret', EXOTIC_SECRET], { ...env(), PATH: bin });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${EXOTIC_VALUE}\n`);
  });
});
