// pscache as a Lambda extension: the real layer zip, unpacked and launched the way Lambda does, against
// the local Runtime API stand-in and the emulator, over real loopback sockets.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Emulator, startEmulator } from '../packages/emulator/index.ts';
import { HOST_ARCH, LAYER_NODE, LTS, nodeBinary } from '../scripts/node-dist.mjs';
import {
  assertNothingSensitive,
  freePort,
  httpGet,
  type Reply,
  SENSITIVE,
  sleep,
  TEST_CREDENTIALS,
  until,
} from './helpers/daemon.ts';
import { buildLayers, type Layers } from './helpers/lambda-layer.ts';
import {
  type Extension,
  type LambdaSim,
  lambdaEnvironment,
  type Scripted,
  startSim,
  unpackLayer,
} from './helpers/lambda-sim.ts';
import { tempDir } from './helpers/temp.ts';

const SESSION_TOKEN = 'lambda-session-token-3b9f2e-never-logged';
const CONTAINER_TOKEN = 'container-authorization-token-81c4d0-never-logged';
const DB_PASSWORD = 'lambda-db-password-value-5521';
for (const s of [SESSION_TOKEN, CONTAINER_TOKEN, DB_PASSWORD]) SENSITIVE.add(s);

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

let layers: Layers;
let emu: Emulator;
/** The pinned node of each Lambda Node.js runtime (each LTS line), by line. */
const runtimeNodes = new Map<string, string>();
/** A pinned Node.js of another version than the standalone layers carry. */
let otherNode: string;
const sims = new Set<LambdaSim>();
const extensions = new Set<Extension>();

before(async () => {
  // Fetched once per machine (scripts/node-dist.mjs keeps them outside the checkout).
  const nodes = Promise.all(
    Object.entries(HOST_ARCH ? LTS : {}).map(async ([line, v]) => [line, await nodeBinary(v)] as const),
  );
  [layers, emu] = await Promise.all([
    buildLayers(),
    startEmulator({
      store: {
        parameters: [
          { name: '/app/endpoint', value: 'https://api.example.com' },
          { name: '/app/db/password', value: DB_PASSWORD, type: 'SecureString' },
          ...['init', 'a', 'b', 'c', 'snap/value', 'snap/slow', 'json', 'standalone'].map((n) => ({
            name: `/app/${n}`,
            value: `value of ${n}`,
          })),
        ],
        secrets: [{ name: 'prod/db', secretString: DB_PASSWORD }],
      },
      credentials: [{ ...TEST_CREDENTIALS, sessionToken: SESSION_TOKEN }],
      containerCredentials: { authToken: CONTAINER_TOKEN, ttlSeconds: 3600 },
    }),
  ]);
  for (const [line, file] of await nodes) runtimeNodes.set(line, file);
  const other = Object.entries(LTS).find(([, v]) => v !== LAYER_NODE)?.[0];
  otherNode = other === undefined ? '' : (runtimeNodes.get(other) ?? '');
});

after(async () => {
  for (const e of extensions) await e.dispose();
  for (const s of sims) await s.close();
  await emu?.close();
});

beforeEach(() => {
  emu.clearFaults();
  emu.resetCalls();
});

interface Started {
  sim: LambdaSim;
  ext: Extension;
  port: number;
  get(path: string, token?: string): Promise<Reply>;
}

/** Starts a stand-in, then launches the layer in it as a function with these variables would. */
async function start(
  opts: {
    zip?: string;
    env?: Record<string, string>;
    name?: string;
    credentials?: 'environment' | 'container';
    prepare?: (sim: LambdaSim, port: number) => void;
  } = {},
): Promise<Started> {
  const sim = await startSim();
  sims.add(sim);
  const port = await freePort();
  const credentials: Record<string, string> =
    opts.credentials === 'container'
      ? // SnapStart: no keys in the environment, a credentials endpoint instead (REFERENCE.md 5).
        {
          AWS_CONTAINER_CREDENTIALS_FULL_URI: `${emu.url}/__emulator/container-credentials`,
          AWS_CONTAINER_AUTHORIZATION_TOKEN: CONTAINER_TOKEN,
        }
      : {
          AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
          AWS_SESSION_TOKEN: SESSION_TOKEN,
        };
  opts.prepare?.(sim, port);
  const ext = sim.launch(opts.zip ?? layers.nodejs.file, {
    env: {
      ...credentials,
      AWS_ENDPOINT_URL: emu.url,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
      ...opts.env,
    },
    ...(opts.name ? { name: opts.name } : {}),
  });
  extensions.add(ext);
  const token = opts.credentials === 'container' ? CONTAINER_TOKEN : SESSION_TOKEN;
  return { sim, ext, port, get: (path, t = token) => httpGet(port, path, { token: t }) };
}

/** Sends SHUTDOWN, expects exit 0, and returns the output. */
async function shutdown({ sim, ext }: Started, reason = 'SPINDOWN'): Promise<string> {
  await sim.shutdown(reason);
  const r = await ext.exited;
  const { output } = await ext.dispose();
  extensions.delete(ext);
  assert.equal(r.code, 0, output);
  return output;
}

const q = encodeURIComponent;
const param = (name: string) => `/systemsmanager/parameters/get?name=${q(name)}`;
/** SSM reads that reached the emulator, whether single or batched. */
const ssmReads = () => (emu.calls()['GetParameter'] ?? 0) + (emu.calls()['GetParameters'] ?? 0);

describe('lifecycle', () => {
  test('listens first, then registers with its file name for INVOKE and SHUTDOWN, then polls event/next', async () => {
    let pingAtRegister: Promise<Reply> | undefined;
    let outputAtRegister: string | undefined;
    let s: Awaited<ReturnType<typeof start>> | undefined;
    s = await start({
      prepare: (sim, port) => {
        sim.onRegister = async () => {
          outputAtRegister = s?.ext.output() ?? '';
          // Sent before register is answered (the function's INIT may start then): the port is bound, and
          // the request is answered once the daemon is up, which is after the first event/next.
          pingAtRegister = httpGet(port, '/ping', { token: null });
          pingAtRegister.catch(() => {});
        };
      },
    });
    await s.sim.nextCalls(1);
    assert.equal((await pingAtRegister!).status, 200, 'the port was bound before register');
    assert.equal(s.sim.registers.length, 1);
    const reg = s.sim.registers[0]!;
    assert.equal(reg.headers['lambda-extension-name'], 'pscache');
    assert.match(String(reg.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(reg.body), { events: ['INVOKE', 'SHUTDOWN'] });
    const next = s.sim.nexts[0]!;
    assert.equal(next.method, 'GET');
    assert.equal(next.headers['lambda-extension-identifier'], s.sim.extensionId);
    // Each event is followed by the next poll, on the same identifier.
    await s.sim.invoke();
    await s.sim.nextCalls(2);
    assert.equal(s.sim.nexts[1]!.headers['lambda-extension-identifier'], s.sim.extensionId);
    // The serving line is written once the first event/next is on its way, off the cold start's path
    // (the first write to stderr costs ~0.7 ms), and exactly once.
    assert.ok(!(outputAtRegister ?? '').includes('serving on port'), 'logged before register');
    await until(() => s.ext.output().includes('serving on port'), 'the serving line');
    assert.equal(s.ext.output().split('serving on port').length - 1, 1, s.ext.output());
    // The Node.js layer runs the runtime's node, found on PATH here (there is no /var/lang/bin/node).
    const exe = readlinkSync(`/proc/${s.ext.child.pid}/exe`);
    assert.ok(!exe.startsWith(s.ext.dir), exe);
    assert.match(exe, /\/node[^/]*$/);
    await shutdown(s);
  });

  test('requests that come before the daemon is built wait for it: every one answered as usual, bytes that are not HTTP get the usual 400', async () => {
    let early: Promise<[Reply[], string]> | undefined;
    const s = await start({
      prepare: (sim, port) => {
        sim.onRegister = async () => {
          // Sent, not awaited: register is answered while they wait (as Lambda answers it at once).
          const reads = Promise.all([
            ...Array.from({ length: 10 }, () => httpGet(port, param('/app/a'), { token: SESSION_TOKEN })),
            httpGet(port, `/secretsmanager/get?secretId=${q('prod/db')}`, { token: SESSION_TOKEN }),
            httpGet(port, param('/app/b'), { token: 'not-the-token' }),
          ]);
          const garbage = new Promise<string>((resolve, reject) => {
            const c = connect(port, '127.0.0.1', () => c.write('NOT HTTP AT ALL\r\n\r\n'));
            let got = '';
            c.on('data', (d) => {
              got += d.toString('latin1');
            });
            c.on('close', () => resolve(got));
            c.on('error', reject);
          });
          early = Promise.all([reads, garbage]);
          early.catch(() => {});
        };
      },
    });
    await s.sim.nextCalls(1);
    const [replies, garbage] = await early!;
    for (const r of replies.slice(0, 10)) {
      assert.equal(r.status, 200, r.body);
      assert.equal(JSON.parse(r.body).Parameter.Value, 'value of a');
    }
    assert.equal(replies[10]!.status, 200, replies[10]!.body);
    assert.equal(JSON.parse(replies[10]!.body).SecretString, DB_PASSWORD);
    assert.equal(replies[11]!.status, 401, replies[11]!.body);
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    assert.match(garbage, /"__type":/);
    // Ten concurrent reads of one name during the wait: one upstream call between them.
    assert.equal(emu.calls()['GetParameter'] ?? 0, 1);
    await shutdown(s);
  });

  test('a request that half-closes after sending, while the port is held, still gets its answer', async () => {
    let early: Promise<string> | undefined;
    const s = await start({
      prepare: (sim, port) => {
        sim.onRegister = async () => {
          early = new Promise<string>((resolve, reject) => {
            const c = connect(port, '127.0.0.1', () => {
              c.end(
                `GET ${param('/app/a')} HTTP/1.1\r\nHost: localhost\r\nX-Aws-Parameters-Secrets-Token: ${SESSION_TOKEN}\r\n\r\n`,
              );
            });
            let got = '';
            c.on('data', (d) => {
              got += d.toString('latin1');
            });
            c.on('close', () => resolve(got));
            c.on('error', reject);
          });
          early.catch(() => {});
        };
      },
    });
    await s.sim.nextCalls(1);
    const got = await early!;
    assert.match(got, /^HTTP\/1\.1 200 /, got);
    assert.match(got, /value of a/);
    await shutdown(s);
  });

  test('SIGTERM while register is on its way: the port let go, exit 0, no error', async () => {
    let s: Awaited<ReturnType<typeof start>> | undefined;
    s = await start({
      prepare: (sim) => {
        sim.onRegister = async () => {
          s?.ext.child.kill('SIGTERM');
          await s?.ext.exited;
        };
      },
    });
    const exit = await s.ext.exited;
    const out = s.ext.output();
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, out);
    assert.match(out, /received SIGTERM, stopping/);
    assert.doesNotMatch(out, /ERROR/);
    assert.equal(s.sim.nexts.length, 0);
    const again = createNetServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(s!.port, '127.0.0.1', resolve);
    });
    again.close();
  });

  test('a connection reset while it waits for the daemon is dropped; the daemon starts and serves', async () => {
    const s = await start({
      prepare: (sim, port) => {
        sim.onRegister = async () => {
          await new Promise<void>((resolve, reject) => {
            const c = connect(port, '127.0.0.1', () => {
              c.write('GET /ping HTTP/1.1\r\n');
              c.resetAndDestroy();
              resolve();
            });
            c.on('error', reject);
          });
        };
      },
    });
    await s.sim.nextCalls(1);
    assert.equal((await httpGet(s.port, '/ping', { token: null })).status, 200);
    await s.sim.invoke();
    await s.sim.nextCalls(2);
    const output = await shutdown(s);
    assert.doesNotMatch(output, /ERROR|unexpected/, output);
  });

  test('SHUTDOWN as the first event, while the daemon is being built: it is built, stopped, exit 0', async () => {
    const s = await start({
      prepare: (sim) =>
        sim.script.next.push({
          status: 200,
          body: '{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":0}',
        }),
    });
    const exit = await s.ext.exited;
    const out = s.ext.output();
    assert.equal(exit.code, 0, out);
    assert.equal(s.sim.nexts.length, 1);
    assert.match(out, /shutdown reason=spindown/);
    // Built before it stopped: it said where it serves.
    assert.match(out, /serving on port/);
  });

  test('a daemon that cannot be built after the first event/next: exit/error Extension.InitFailed, exit 1, the port let go', async () => {
    const sim = await startSim();
    sims.add(sim);
    const port = await freePort();
    const env = lambdaEnvironment(sim.address, {
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_SESSION_TOKEN: SESSION_TOKEN,
      AWS_ENDPOINT_URL: emu.url,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
    });
    const child = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'lambda', 'build-fails.ts')], {
      env: { ...env, PATH: process.env['PATH'] ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assertNothingSensitive(out);
    assert.equal(code, 1, out);
    assert.equal(sim.registers.length, 1);
    assert.equal(sim.nexts.length, 1, 'the first event/next was sent before the daemon was built');
    assert.equal(sim.exitErrors.length, 1, out);
    assert.equal(sim.exitErrors[0]!.headers['lambda-extension-function-error-type'], 'Extension.InitFailed');
    assert.match(
      JSON.parse(sim.exitErrors[0]!.body).errorMessage,
      /^pscache did not start: Error: the daemon could not be built/,
    );
    assert.match(out, /\[pscache\] ERROR pscache did not start: Error: the daemon could not be built/);
    assert.doesNotMatch(out, /serving on port/);
    // Let go: another process can bind it.
    const again = createNetServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(port, '127.0.0.1', resolve);
    });
    again.close();
  });

  test('the name is whatever the launcher file is called', async () => {
    const s = await start({ name: 'pscache-v2' });
    await s.sim.nextCalls(1);
    assert.equal(s.sim.registers[0]!.headers['lambda-extension-name'], 'pscache-v2');
    await shutdown(s);
  });

  test('serves during INIT, and after INVOKE answers the same request from the cache', async () => {
    const s = await start();
    await s.sim.nextCalls(1);
    // No INVOKE yet: this is the function's INIT phase.
    const first = await s.get(param('/app/init'));
    assert.equal(first.status, 200, first.body);
    assert.equal(first.headers['x-pscache'], 'miss');
    assert.equal(JSON.parse(first.body).Parameter.Value, 'value of init');
    const secret = await s.get(`/secretsmanager/get?secretId=${q('prod/db')}`);
    assert.equal(secret.status, 200);
    assert.equal(JSON.parse(secret.body).SecretString, DB_PASSWORD);

    await s.sim.invoke();
    await s.sim.nextCalls(2);
    const again = await s.get(param('/app/init'));
    assert.equal(again.status, 200);
    assert.equal(again.headers['x-pscache'], 'hit');
    assert.equal(again.body, first.body);
    assert.equal(ssmReads(), 1);
    assert.equal((await s.get(param('/app/init'), 'not-the-session-token')).status, 401);
    await shutdown(s);
  });

  test('SHUTDOWN with 20 requests in flight and upstream hanging: each answered 503 at the grace, exit 0', async () => {
    const s = await start();
    await s.sim.nextCalls(1);
    const warm = await s.get(param('/app/endpoint'));
    assert.equal(warm.status, 200);
    emu.setFaults([{ error: 'hang' }]);
    const inFlight = Array.from({ length: 20 }, (_, i) => s.get(param(`/app/hanging/${i}`)));
    // All 20 are waiting on upstream (the warm-up was the first miss) before SHUTDOWN is sent.
    const misses = async () =>
      Number(/^pscache_cache_misses_total (\d+)$/m.exec((await s.get('/metrics')).body)?.[1] ?? 0);
    await until(async () => (await misses()) >= 21, 'the 20 reads to reach the cache');
    await s.sim.shutdown('spindown');
    const exit = await s.ext.exited;
    const { output } = await s.ext.dispose();
    extensions.delete(s.ext);
    assert.equal(exit.code, 0, output);
    // Upstream never answers: every one of them was cut off by the shutdown, none left to its attempts.
    // How soon after SHUTDOWN it exits is a figure of the machine: `npm run bench` measures it.
    for (const r of await Promise.all(inFlight)) {
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '1');
    }
    const summary = output.split('\n').filter((l) => l.includes(' summary'));
    assert.equal(summary.length, 1, output);
    assert.match(
      summary[0]!,
      /^\[pscache\] INFO summary .*hits=0 .*misses=21 .*upstream_calls=\d+ .*errors=\d+/,
    );
    assert.match(output, /\[pscache\] INFO shutdown reason=spindown/);
  });

  test('SHUTDOWN reasons are compared case-insensitively', async () => {
    const s = await start();
    await s.sim.nextCalls(1);
    const output = await shutdown(s, 'Timeout');
    assert.match(output, /\[pscache\] WARN shutdown reason=timeout/);
  });

  test('invalid configuration: registers, reports init/error naming the variable, exits non-zero', async () => {
    const s = await start({ env: { PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE: 'lots' } });
    const exit = await s.ext.exited;
    assert.notEqual(exit.code, 0);
    assert.equal(s.sim.registers.length, 1);
    assert.equal(s.sim.initErrors.length, 1);
    assert.equal(s.sim.nexts.length, 0);
    const report = s.sim.initErrors[0]!;
    assert.ok(report.at >= s.sim.registers[0]!.at);
    assert.equal(report.headers['lambda-extension-identifier'], s.sim.extensionId);
    assert.equal(report.headers['lambda-extension-function-error-type'], 'Extension.ConfigInvalid');
    const body = JSON.parse(report.body);
    assert.equal(body.errorType, 'Extension.ConfigInvalid');
    assert.match(body.errorMessage, /PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE="lots" is invalid/);
    assert.deepEqual(body.stackTrace, []);
    assert.match(s.ext.output(), /\[pscache\] ERROR PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE/);
  });

  const failures: [string, Scripted, RegExp][] = [
    ['500', { status: 500, body: '{"errorType":"Extension.Unknown","errorMessage":"boom"}' }, /HTTP 500/],
    ['403', { status: 403, body: '{}' }, /HTTP 403 \(forbidden\)/],
    ['not HTTP', { raw: 'this is not HTTP\r\n\r\n' }, /not HTTP/],
    [
      '200 without an identifier',
      { status: 200, body: '{}' },
      /without a usable Lambda-Extension-Identifier/,
    ],
    [
      '200 with a body that is not JSON',
      { status: 200, body: '<html>', headers: { 'Lambda-Extension-Identifier': 'abc' } },
      /not JSON/,
    ],
  ];

  test('register failing (500, 403, garbage): one clear line, exit non-zero, no retries', async () => {
    await Promise.all(
      failures.map(async ([what, answer, message]) => {
        const s = await start({ prepare: (sim) => sim.script.register.push(answer) });
        const exit = await s.ext.exited;
        const out = s.ext.output();
        assert.notEqual(exit.code, 0, `${what}: ${out}`);
        assert.ok(exit.at - s.ext.startedAt < 5000, what);
        assert.equal(s.sim.registers.length, 1, what);
        assert.equal(s.sim.nexts.length, 0, what);
        const errors = out.split('\n').filter((l) => l.startsWith('[pscache] ERROR'));
        assert.equal(errors.length, 1, `${what}: ${out}`);
        assert.match(errors[0]!, /^\[pscache\] ERROR Lambda Extensions API register[: ].*; exiting/, what);
        assert.match(errors[0]!, message, what);
      }),
    );
  });

  test('event/next failing (500, 403, garbage): exit non-zero after one call, never a loop', async () => {
    await Promise.all(
      failures.slice(0, 3).map(async ([what, answer, message]) => {
        const s = await start({ prepare: (sim) => sim.script.next.push(answer) });
        const exit = await s.ext.exited;
        const out = s.ext.output();
        assert.notEqual(exit.code, 0, `${what}: ${out}`);
        assert.equal(s.sim.nexts.length, 1, what);
        assert.match(out, /\[pscache\] ERROR Lambda Extensions API event\/next[: ].*; exiting/, what);
        assert.match(out, message, what);
        // Garbage is reported before going; after 403 or 500 the API takes nothing more.
        assert.equal(s.sim.exitErrors.length, what === 'not HTTP' ? 1 : 0, what);
        if (what === 'not HTTP') {
          assert.equal(
            s.sim.exitErrors[0]!.headers['lambda-extension-function-error-type'],
            'Extension.RuntimeApiError',
          );
        }
      }),
    );
  });
});

describe('SnapStart', () => {
  test('nothing fetched before the first INVOKE stays cached, not even a fetch still in flight', async () => {
    let init: Reply | undefined;
    const s = await start({
      credentials: 'container',
      env: { AWS_LAMBDA_INITIALIZATION_TYPE: 'snap-start' },
      // A read during INIT, before the extension's first event/next: served (and cached) as usual.
      prepare: (sim, port) => {
        sim.onRegister = async () => {
          init = await httpGet(port, param('/app/snap/value'), { token: CONTAINER_TOKEN });
        };
      },
    });
    await s.sim.nextCalls(1);
    assert.equal(init?.status, 200, init?.body);
    // From the first event/next on, the process may be a restored snapshot whose INVOKE is not handled
    // yet: reads bypass the cache (neither answered from it nor stored) with fresh credentials.
    const before = await s.get(param('/app/snap/value'));
    assert.equal(before.status, 200, before.body);
    assert.equal(before.headers['x-pscache'], 'miss', 'not answered from what INIT cached');
    assert.equal((await s.get(param('/app/snap/value'))).headers['x-pscache'], 'miss', 'and not stored');
    emu.setFaults([{ name: '/app/snap/slow', latencyMs: 400, times: 1 }]);
    const slow = s.get(param('/app/snap/slow'));
    await until(() => ssmReads() >= 4, 'the slow fetch to start');
    const credentialsBeforeInvoke = emu.calls()['ContainerCredentials'] ?? 0;
    assert.equal(credentialsBeforeInvoke, 4, 'INIT, then one fresh fetch for each read in the window');

    await s.sim.invoke();
    await s.sim.nextCalls(2);
    assert.equal((await slow).status, 200, 'a request in flight at INVOKE is still answered');
    const after = await s.get(param('/app/snap/value'));
    assert.equal(after.status, 200);
    assert.equal(after.headers['x-pscache'], 'miss', 'fetched again after the first INVOKE');
    assert.equal((await s.get(param('/app/snap/slow'))).headers['x-pscache'], 'miss');
    assert.equal((await s.get(param('/app/snap/value'))).headers['x-pscache'], 'hit');
    assert.equal(ssmReads(), 6);
    // Credentials from before the snapshot are not reused either.
    assert.equal(emu.calls()['ContainerCredentials'], credentialsBeforeInvoke + 1);
    await shutdown(s);
  });

  test('PREFETCH under SnapStart runs at the first INVOKE, not before the snapshot', async () => {
    const s = await start({
      credentials: 'container',
      env: {
        AWS_LAMBDA_INITIALIZATION_TYPE: 'snap-start',
        PARAMETERS_SECRETS_EXTENSION_PREFETCH: 'ssm:/app/a',
      },
    });
    await s.sim.nextCalls(1);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ssmReads(), 0, 'nothing fetched during INIT');
    await s.sim.invoke();
    await s.sim.nextCalls(2);
    // Not the upstream call reaching the emulator: a read that came while its answer was on the way would
    // join the prefetch's load and say miss. The prefetch is done (the value stored) once it says so.
    await until(() => /prefetch done items=1/.test(s.ext.output()), 'the prefetch after INVOKE');
    assert.equal((await s.get(param('/app/a'))).headers['x-pscache'], 'hit');
    assert.equal(ssmReads(), 1);
    await shutdown(s);
  });

  test('without SnapStart, INVOKE keeps the cache', async () => {
    const s = await start();
    await s.sim.nextCalls(1);
    await s.get(param('/app/c'));
    await s.sim.invoke();
    await s.sim.nextCalls(2);
    assert.equal((await s.get(param('/app/c'))).headers['x-pscache'], 'hit');
    await shutdown(s);
  });
});

describe('logs', () => {
  test('AWS_LAMBDA_LOG_FORMAT=JSON: every line is one JSON object; AWS_LAMBDA_LOG_LEVEL is the fallback level', async () => {
    const s = await start({ env: { AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'DEBUG' } });
    await s.sim.nextCalls(1);
    assert.equal((await s.get(param('/app/json'))).status, 200);
    assert.equal((await s.get(param('/app/db/password'))).status, 200);
    await s.sim.invoke();
    await s.sim.nextCalls(2);
    const output = await shutdown(s);
    const lines = output.split('\n').filter((l) => l !== '');
    assert.ok(lines.length >= 5, output);
    const all = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    // The CloudWatch EMF line (on stdout) is a metrics document, not a log line (test/lambda-emf.test.ts).
    const docs = all.filter((d) => !('_aws' in d));
    assert.equal(all.length - docs.length, 1, 'one EMF line, at SHUTDOWN');
    for (const d of docs) {
      assert.match(String(d['level']), /^(DEBUG|INFO|WARN|ERROR)$/);
      assert.equal(typeof d['message'], 'string');
      assert.match(String(d['timestamp']), /^\d{4}-\d\d-\d\dT/);
    }
    assert.ok(
      docs.some((d) => d['level'] === 'DEBUG'),
      'AWS_LAMBDA_LOG_LEVEL=DEBUG applies',
    );
    // The Node.js layer too loads the daemon's modules after the first event/next.
    const registered = docs.find((d) => d['message'] === 'registered with the Lambda Extensions API');
    assert.equal(registered?.['daemon_loading'], 'lazy');
    const summary = docs.filter((d) => d['message'] === 'summary');
    assert.equal(summary.length, 1);
    assert.equal(summary[0]!['misses'], 2);
    for (const k of ['hits', 'upstream_calls', 'errors', 'stale'])
      assert.equal(typeof summary[0]![k], 'number', k);
  });
});

/**
 * A TCP relay to the emulator that can make its connections vanish the way a long freeze does: the far
 * end forgets them without a word, and the first bytes written afterwards are answered with a reset.
 */
async function vanishingRelay(target: number) {
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  const all = new Set<Socket>();
  const server = createNetServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      all.add(s);
      s.once('close', () => all.delete(s));
    }
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      // Once vanished, the client side is left to draw its reset.
      if (!pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    vanish() {
      for (const pair of pairs) {
        pairs.delete(pair);
        pair.client.unpipe(pair.upstream);
        pair.upstream.destroy();
        pair.client.on('data', () => pair.client.resetAndDestroy()).resume();
      }
    },
    close: () => {
      for (const s of all) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('freeze and thaw', () => {
  test('SIGSTOP, upstream connections broken, SIGCONT: the next miss is still 200', async () => {
    const relay = await vanishingRelay(emu.port);
    try {
      const s = await start({ env: { AWS_ENDPOINT_URL: relay.url } });
      await s.sim.nextCalls(1);
      const pid = s.ext.child.pid!;
      // Leaves a kept-alive socket to upstream in the pool.
      assert.equal((await s.get(param('/app/a'))).status, 200);
      const thaw = async (breakConnections: () => void, name: string) => {
        process.kill(pid, 'SIGSTOP');
        try {
          breakConnections();
          // The function calls its extension as soon as both are thawed.
          const during = s.get(param(name));
          await sleep(100);
          process.kill(pid, 'SIGCONT');
          const r = await during;
          assert.equal(r.status, 200, r.body);
          assert.equal(r.headers['x-pscache'], 'miss');
        } finally {
          process.kill(pid, 'SIGCONT');
        }
      };
      // The far end forgot the connections: writing on them draws a reset.
      await thaw(() => relay.vanish(), '/app/init');
      // The far end closed them while we were stopped.
      await thaw(() => emu.dropConnections(), '/app/json');
      await shutdown(s);
    } finally {
      await relay.close();
    }
  });
});

describe('the Node.js layer on each Lambda Node.js runtime', () => {
  // Lambda's nodejs22.x and nodejs24.x run pscache-nodejs.zip on their own node (/var/lang/bin/node): here
  // the pinned node of each line comes first on PATH, the launcher's fallback when /var/lang/bin has none.
  for (const [line, version] of Object.entries(LTS)) {
    test(`nodejs${line}.x (Node.js ${version}): registers, serves a miss then a hit, exits 0 on SHUTDOWN, no warnings`, {
      skip: !HOST_ARCH && 'no pinned Node.js runs on this machine',
    }, async () => {
      const node = runtimeNodes.get(line)!;
      const s = await start({ env: { PATH: `${dirname(node)}:/usr/local/bin:/usr/bin/:/bin:/opt/bin` } });
      await s.sim.nextCalls(1);
      assert.equal(readlinkSync(`/proc/${s.ext.child.pid}/exe`), node, "runs on the runtime's node");
      const miss = await s.get(param('/app/a'));
      assert.equal(miss.status, 200, miss.body);
      assert.equal(miss.headers['x-pscache'], 'miss');
      assert.equal(JSON.parse(miss.body).Parameter.Value, 'value of a');
      await s.sim.invoke();
      await s.sim.nextCalls(2);
      const hit = await s.get(param('/app/a'));
      assert.equal(hit.headers['x-pscache'], 'hit');
      assert.equal(hit.body, miss.body);
      const output = await shutdown(s);
      assert.doesNotMatch(output, /Warning|ERROR/, output);
    });
  }
});

describe('standalone layer', () => {
  test('pscache-x86_64.zip runs with PATH holding no node, on its own node', {
    skip: process.arch !== 'x64' && 'needs an x86_64 machine',
  }, async () => {
    const empty = tempDir('empty-path');
    try {
      const s = await start({ zip: layers.x86_64.file, env: { PATH: empty } });
      await s.sim.nextCalls(1);
      const exe = readlinkSync(`/proc/${s.ext.child.pid}/exe`);
      assert.equal(exe, join(s.ext.dir, 'pscache', 'node'));
      const r = await s.get(param('/app/standalone'));
      assert.equal(r.status, 200, r.body);
      assert.equal(JSON.parse(r.body).Parameter.Value, 'value of standalone');
      await shutdown(s);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  const cached = {
    skip:
      !(process.platform === 'linux' && process.arch === 'x64') &&
      'the code cache is made on, and for, Linux x86_64',
  };
  const DEBUG = { PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug' };

  test('pscache-x86_64.zip starts from the code cache made for its node', cached, async () => {
    const s = await start({ zip: layers.x86_64.file, env: DEBUG });
    await s.sim.nextCalls(1);
    const r = await s.get(param('/app/standalone'));
    assert.equal(r.status, 200, r.body);
    const out = await shutdown(s);
    assert.match(out, /DEBUG registered with the Lambda Extensions API .*code_cache=used/);
    // The layers load the daemon's modules after the first event/next (src/daemon-loader-lazy.ts).
    assert.match(out, /DEBUG registered with the Lambda Extensions API .*daemon_loading=lazy/);
  });

  /**
   * Every way the cache can fail to fit what runs: the extension starts all the same, compiles the bundle
   * it has, serves (a read through upstream included: dynamic import() works without the cache too),
   * stops on SHUTDOWN, and says at DEBUG why the cache was not used.
   */
  const misfits: { what: string; status: RegExp; skip?: string | false; change(dir: string): void }[] = [
    {
      what: 'no cache file',
      status: /code_cache=missing/,
      change: (dir) => rmSync(join(dir, 'pscache', 'pscache.v8cache')),
    },
    {
      what: 'a cache cut short',
      status: /code_cache=malformed/,
      change: (dir) => truncateSync(join(dir, 'pscache', 'pscache.v8cache'), 100),
    },
    {
      // Same length, so V8 alone would take the cache and run the old code: /ping would still say "healthy".
      what: 'a cache made for another bundle of the same length',
      status: /code_cache=other-bundle/,
      change: (dir) => {
        const bundle = join(dir, 'pscache', 'pscache.cjs');
        const text = readFileSync(bundle, 'latin1');
        assert.ok(text.includes('"healthy"'));
        writeFileSync(bundle, text.replaceAll('"healthy"', '"HEALTHY"'), 'latin1');
      },
    },
    {
      what: 'a cache V8 refuses (its version hash changed, as from another node)',
      status: /code_cache=rejected/,
      change: (dir) => {
        const file = join(dir, 'pscache', 'pscache.v8cache');
        const cache = readFileSync(file);
        // V8's own header follows ours (12 bytes) and the source; its version hash is at offset 4.
        const v8 = 12 + cache.readUInt32LE(8);
        cache[v8 + 4] = (cache[v8 + 4] ?? 0) ^ 0xff;
        writeFileSync(file, cache);
      },
    },
    {
      what: "another Node.js (a pinned LTS other than the layer's) in place of the layer's node",
      status: /code_cache=rejected/,
      change: (dir) => {
        rmSync(join(dir, 'pscache', 'node'));
        symlinkSync(otherNode, join(dir, 'pscache', 'node'));
      },
    },
    {
      what: 'no start.cjs (the launcher runs the bundle directly)',
      status: /registered with the Lambda Extensions API (?:(?!code_cache).)*$/m,
      change: (dir) => rmSync(join(dir, 'pscache', 'start.cjs')),
    },
  ];
  for (const m of misfits) {
    test(`${m.what}: starts, serves and says why at DEBUG`, { skip: cached.skip || m.skip }, async () => {
      const dir = unpackLayer(layers.x86_64.file);
      try {
        m.change(dir);
        const s = await start({ zip: dir, env: DEBUG });
        await s.sim.nextCalls(1);
        const ping = await s.get('/ping');
        const bundle = readFileSync(join(dir, 'pscache', 'pscache.cjs'), 'latin1');
        assert.equal(ping.body, bundle.includes('"HEALTHY"') ? 'HEALTHY' : 'healthy');
        const r = await s.get(param('/app/standalone'));
        assert.equal(r.status, 200, r.body);
        assert.equal(JSON.parse(r.body).Parameter.Value, 'value of standalone');
        assert.match(await shutdown(s), m.status);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
