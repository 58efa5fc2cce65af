// PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS: a second listener serving only GET /metrics, without the
// token and without names or values, for a Prometheus server outside the pod; off by default. The real
// bundle, bound on loopback here (an operator gives the pod's address, or 0.0.0.0).
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Daemons, daemonEnv, freePort, httpGet, runPscache, secret } from './helpers/daemon.ts';
import { sensitive, startWorld, type World } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);
const NAME = 'metrics/listener-secret-name';

before(async () => {
  world = await startWorld();
  await world.createSecret(NAME, sensitive('metrics-listener-value-6620'));
});
after(async () => {
  await daemons.stopAll();
  await world.close();
});

describe('the metrics listener', () => {
  test('GET /metrics without the token, on the address given; nothing else; no names in it', async () => {
    const port = await freePort();
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS: `127.0.0.1:${port}` });
    assert.equal((await d.get(secret(NAME))).status, 200);
    assert.equal((await d.get(secret(NAME))).status, 200);
    // A scraper: no token, and the Host it used (the pod's address), which the main listener would refuse.
    const m = await httpGet(port, '/metrics', { token: null, host: '10.1.2.3:9102' });
    assert.equal(m.status, 200, m.body);
    assert.equal(m.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(m.body, /^pscache_cache_hits_total 1$/m);
    assert.match(m.body, /^pscache_cache_misses_total 1$/m);
    assert.ok(!m.body.includes('listener-secret'), 'a secret name in the metrics');
    assert.equal((await httpGet(port, '/metrics', { token: null, method: 'HEAD' })).status, 200);
    for (const path of ['/ping', '/', secret(NAME), '/metrics/x', '/ready']) {
      const r = await httpGet(port, path, { token: null });
      assert.equal(r.status, 404, path);
    }
    assert.equal((await httpGet(port, '/metrics', { token: null, method: 'POST' })).status, 405);
    // The main listener still wants the token for its /metrics.
    assert.equal((await d.get('/metrics', { token: null })).status, 401);
    const out = (await daemons.stop(d)).output;
    assert.match(
      out,
      new RegExp(
        `INFO metrics only, without the token, on the metrics listener address=127\\.0\\.0\\.1:${port}`,
      ),
    );
  });

  test('off by default: nothing listens besides the main port', async () => {
    const d = await daemons.start();
    assert.doesNotMatch(d.output(), /metrics listener/);
  });

  test('an address that cannot be bound stops start-up, naming the setting', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const a = blocker.address();
    const taken = typeof a === 'object' && a ? a.port : 0;
    try {
      const r = await runPscache(
        ['serve'],
        daemonEnv(world.emu.url, await freePort(), {
          PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS: `127.0.0.1:${taken}`,
        }),
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^pscache: PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS=127\\.0\\.0\\.1:${taken}: cannot listen there \\(EADDRINUSE\\): the port is in use`,
          'm',
        ),
      );
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    const bad = await runPscache(
      ['serve'],
      daemonEnv(world.emu.url, 2773, { PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS: '9102' }),
    );
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS="9102" is invalid: must be HOST:PORT/,
    );
  });

  test('at most 32 connections: the 33rd is answered 429 and closed, and a place freed serves again', async () => {
    const port = await freePort();
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS: `127.0.0.1:${port}` });
    const held: Socket[] = [];
    // The main listener is not concerned: its own limit (1024) is far off.
    assert.equal((await d.get('/ping', { token: null })).status, 200);
    try {
      for (let i = 0; i < 32; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        await new Promise<void>((r) => s.once('connect', () => r()));
        held.push(s);
      }
      const over = await httpGet(port, '/metrics', { token: null });
      assert.equal(over.status, 429, over.body);
      assert.equal((JSON.parse(over.body) as { __type: string }).__type, 'TooManyConnections');
      held.pop()!.destroy();
      // The server sees the close a moment later: the next scrape is served once it has.
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await httpGet(port, '/metrics', { token: null })).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(status, 200);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});
