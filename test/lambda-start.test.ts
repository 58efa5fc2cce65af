// The Lambda start's edges, each in a forced order (no timing): a stop while the daemon is being built, a
// connection that left while the port was held, a signal at the hand-over between the early handlers and
// the lifecycle's, handlers left behind in the process, a daemon that cannot be built while SHUTDOWN comes.
// Found by an independent attempt to break the start (docs/lambda.md, Lifecycle).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Daemon, startDaemon } from '../src/daemon.ts';
import { runExtension } from '../src/lambda/lifecycle.ts';
import { BUNDLE, freePort, TEST_CREDENTIALS } from './helpers/daemon.ts';
import { type LambdaSim, lambdaEnvironment, startSim } from './helpers/lambda-sim.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/lambda/', import.meta.url));
const TOKEN = 'lambda-start-session-token-never-logged';
const sims: LambdaSim[] = [];
after(async () => {
  for (const s of sims) await s.close();
});

async function sim(): Promise<LambdaSim> {
  const s = await startSim();
  sims.push(s);
  return s;
}

async function env(s: LambdaSim, extra: Record<string, string> = {}) {
  return lambdaEnvironment(s.address, {
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: TOKEN,
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(await freePort()),
    PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'none',
    ...extra,
  });
}

/** Connects and sends `request`; every byte received until the server closes; a reset as `<ECONNRESET>`. */
function rawClient(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const c = connect(port, '127.0.0.1', () => c.write(request));
    c.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n') && /Content-Length: (\d+)/i.test(got)) {
        const n = Number(/Content-Length: (\d+)/i.exec(got)![1]);
        if (got.length >= got.indexOf('\r\n\r\n') + 4 + n) c.destroy();
      }
    });
    c.on('error', (e: NodeJS.ErrnoException) => {
      got += `<${e.code}>`;
    });
    c.on('close', () => resolve(got));
  });
}

/** Runs test/fixtures/lambda/`name` in a child with `env`: how it exited, and what it printed. */
function fixture(name: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, name)], {
    env: { ...env, PATH: process.env['PATH'] ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { exit, output: () => out };
}

const signalHandlers = () => ({
  SIGTERM: process.listenerCount('SIGTERM'),
  SIGINT: process.listenerCount('SIGINT'),
  uncaughtException: process.listenerCount('uncaughtException'),
  unhandledRejection: process.listenerCount('unhandledRejection'),
});

describe('the Lambda start, in forced orders', () => {
  test('SHUTDOWN while the daemon is being built: a request held since register is answered, not reset', async () => {
    const s = await sim();
    const e = await env(s, { PARAMETERS_SECRETS_EXTENSION_EMF: 'false' });
    const port = Number(e['PARAMETERS_SECRETS_EXTENSION_HTTP_PORT']);
    let early: Promise<string> | undefined;
    s.onRegister = async () => {
      early = rawClient(port, 'GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n');
    };
    const code = await runExtension(e, 'pscache', async (config, log, opts) => {
      // The build goes on only once SHUTDOWN has answered the first event/next.
      if (opts?.adopt) {
        await s.nextCalls(1);
        await s.shutdown('spindown');
      }
      return startDaemon(config, log, opts);
    });
    assert.equal(code, 0);
    const got = await early!;
    // Served, or told the daemon is shutting down: an answer either way.
    assert.match(got, /^HTTP\/1\.1 (200|503) /, JSON.stringify(got));
  });

  test('a client that left while the port was held does not count against MAX_INBOUND_CONNECTIONS=1', async () => {
    const s = await sim();
    const e = await env(s, { PARAMETERS_SECRETS_EXTENSION_MAX_INBOUND_CONNECTIONS: '1' });
    const port = Number(e['PARAMETERS_SECRETS_EXTENSION_HTTP_PORT']);
    let early: Promise<string> | undefined;
    s.onRegister = async () => {
      // The first client has connected and left before the second connects.
      await new Promise<void>((resolve, reject) => {
        const c = connect(port, '127.0.0.1', () => c.destroy());
        c.on('close', () => resolve());
        c.on('error', reject);
      });
      early = rawClient(port, 'GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n');
    };
    const child = spawn(process.execPath, [BUNDLE, 'serve'], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    try {
      await s.nextCalls(1);
      const got = await early!;
      assert.match(got, /^HTTP\/1\.1 200 /, got.split('\r\n')[0]);
    } finally {
      await s.shutdown();
      assert.equal(await exited, 0, out);
    }
  });

  test('SIGTERM at the hand-over from the early signal handlers to the lifecycle: a clean stop, exit 0', async () => {
    const s = await sim();
    const e = await env(s, { PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'info' });
    const { exit: exited, output } = fixture('signal-handoff.ts', e);
    const exit = await exited;
    const out = output();
    assert.equal(s.registers.length, 1, out);
    assert.deepEqual(exit, { code: 0, signal: null }, out);
    assert.match(out, /received SIGTERM, stopping/);
  });

  test('no signal or error handler is left in the process, whichever way runExtension ends', async () => {
    const before = signalHandlers();
    const failed = await sim();
    failed.script.register.push({ status: 500, body: '{"errorType":"X","errorMessage":"boom"}' });
    assert.equal(await runExtension(await env(failed), 'pscache'), 1);
    assert.deepEqual(signalHandlers(), before, 'register failed');
    const invalid = await sim();
    assert.equal(
      await runExtension(await env(invalid, { PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE: 'lots' }), 'pscache'),
      2,
    );
    assert.equal(invalid.initErrors.length, 1);
    assert.deepEqual(signalHandlers(), before, 'invalid configuration');
    const ran = await sim();
    const running = runExtension(await env(ran), 'pscache');
    await ran.nextCalls(1);
    await ran.shutdown();
    assert.equal(await running, 0);
    // A turn later (see the next test).
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(signalHandlers(), before, 'a whole lifecycle');
  });

  test('SHUTDOWN and SIGTERM together (a local runner): exit 0, never the signal, whichever ends the stop', async () => {
    const s = await sim();
    const e = await env(s, { PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'info' });
    const { exit, output } = fixture('signal-at-exit.ts', e);
    await s.nextCalls(1);
    await s.shutdown();
    assert.deepEqual(await exit, { code: 0, signal: null }, output());
  });

  test('a daemon that cannot be built while SHUTDOWN comes: exit/error Extension.InitFailed still sent, exit 1', async () => {
    const s = await sim();
    const failing = async (): Promise<Daemon> => {
      await s.nextCalls(1);
      await s.shutdown('failure');
      throw new Error('the daemon could not be built');
    };
    const code = await runExtension(await env(s), 'pscache', failing);
    assert.equal(code, 1);
    assert.equal(s.exitErrors.length, 1);
    assert.equal(s.exitErrors[0]!.headers['lambda-extension-function-error-type'], 'Extension.InitFailed');
  });
});
