// The request pipeline in process, over a real loopback socket, with the real cache and a loader the test
// answers: URLs parsed once are remembered without skipping a check, the remembered requests are frozen
// and read unchanged, hit headers are made once, and a fault inside pscache is a 500 with its stack logged.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ItemCache } from '../src/cache/index.ts';
import { Collections } from '../src/collections.ts';
import type { ItemRequest } from '../src/items.ts';
import { createLogger } from '../src/log.ts';
import { Metrics } from '../src/metrics.ts';
import { PscacheServer } from '../src/server/index.ts';
import { httpGet, type Reply, type RequestOptions, until } from './helpers/daemon.ts';
import { body, FakeClock, ScriptedLoader } from './helpers/fake-time.ts';

const TOKEN = 'pipeline-test-token';
const TTL = 300_000;

const servers: PscacheServer[] = [];
after(() => Promise.all(servers.map((s) => s.close(0))));

async function start(cache: ItemCache) {
  const lines: string[] = [];
  const server = new PscacheServer({
    port: 0,
    hosts: ['127.0.0.1'],
    token: TOKEN,
    maxInboundConnections: 16,
    cache,
    collections: new Collections(cache),
    metrics: new Metrics(),
    log: createLogger('info', 'text', (l) => lines.push(l)),
    version: 'test',
  });
  servers.push(server);
  await server.listen();
  const port = Number(server.addresses[0]!.split(':').pop());
  const send = (path: string, o: RequestOptions = {}) => httpGet(port, path, { token: TOKEN, ...o });
  return { send, lines };
}

function cacheWith(loader: ScriptedLoader, clock: FakeClock) {
  return new ItemCache({
    enabled: true,
    maxItems: 1000,
    maxBytes: 1 << 24,
    ttlMs: { ssm: TTL, secretsmanager: TTL },
    staleIfErrorMs: 0,
    loader,
    waitLimitMs: { ssm: 30_000, secretsmanager: 30_000 },
    clock,
    jitter: () => 1,
  });
}

/** Sends a read, answers the one load it starts with `value`, and returns the reply. */
async function missThenAnswer(loader: ScriptedLoader, reply: Promise<Reply>, value: string): Promise<Reply> {
  const before = loader.loads.length;
  // The request reaches the server over a socket: wait for its load, not a number of event-loop turns.
  await until(() => loader.loads.length > before, 'the load the request starts');
  assert.equal(loader.loads.length, before + 1, 'one load started');
  loader.loads[before]!.resolve(body(value));
  return reply;
}

test('a URL read before goes through every check again: token, method, Host, forwarding headers', async () => {
  const loader = new ScriptedLoader();
  const { send } = await start(cacheWith(loader, new FakeClock()));
  const url = '/secretsmanager/get?secretId=app%2Fdb';
  const first = await missThenAnswer(loader, send(url), '{"v":1}');
  assert.equal(first.status, 200);
  assert.equal(first.headers['x-pscache'], 'miss');
  const hit = await send(url);
  assert.deepEqual([hit.status, hit.headers['x-pscache'], hit.body], [200, 'hit', '{"v":1}']);
  assert.equal(hit.headers['content-length'], String(Buffer.byteLength('{"v":1}')));
  assert.equal(hit.headers['content-type'], 'application/json');
  assert.equal(hit.headers['cache-control'], 'no-store');

  assert.equal((await send(url, { token: null })).status, 401);
  assert.equal((await send(url, { token: 'wrong' })).status, 401);
  const post = await send(url, { method: 'POST' });
  assert.equal(post.status, 405);
  const badHost = await send(url, { host: 'evil.example' });
  assert.equal(badHost.status, 400);
  const relayed = await send(url, { headers: { 'X-Real-IP': '10.0.0.1' } });
  assert.equal(relayed.status, 400);
  const head = await send(url, { method: 'HEAD' });
  assert.deepEqual([head.status, head.body, head.headers['x-pscache']], [200, '', 'hit']);
  assert.equal((await send(url)).body, '{"v":1}');
  assert.equal(loader.loads.length, 1, 'one upstream load in all');
});

test('a URL refused for its query is refused every time', async () => {
  const loader = new ScriptedLoader();
  const { send } = await start(cacheWith(loader, new FakeClock()));
  for (const url of [
    '/secretsmanager/get?secretId=a&bogus=1',
    '/secretsmanager/get?secretId=%ZZ',
    '/secretsmanager/get',
  ]) {
    for (let i = 0; i < 3; i++) {
      const r = await send(url);
      assert.equal(r.status, 400, `${url} #${i}`);
      assert.equal(JSON.parse(r.body).__type, 'BadRequest');
    }
  }
  assert.equal(loader.loads.length, 0);
});

test('remembered requests are frozen and read unchanged: refreshNow and ttl work on every repeat', async () => {
  const loader = new ScriptedLoader();
  const clock = new FakeClock();
  const { send } = await start(cacheWith(loader, clock));
  const url = '/secretsmanager/get?secretId=rotating&refreshNow=true';
  for (let v = 1; v <= 4; v++) {
    const r = await missThenAnswer(loader, send(url), `{"v":${v}}`);
    assert.deepEqual([r.status, r.body], [200, `{"v":${v}}`]);
    await clock.advance(1100); // refreshNow shares one load a second per key
  }
  // A plain read now finds the newest value the refreshes stored.
  assert.equal((await send('/secretsmanager/get?secretId=rotating')).body, '{"v":4}');
  const ttl0 = '/systemsmanager/parameters/get?name=%2Fp&ttl=0';
  const a = await missThenAnswer(loader, send(ttl0), '{"Parameter":1}');
  await clock.advance(1100);
  const b = await missThenAnswer(loader, send(ttl0), '{"Parameter":2}');
  assert.deepEqual([a.body, b.body], ['{"Parameter":1}', '{"Parameter":2}']);
});

test('more URLs than the memo keeps: every answer stays right as it is emptied and filled again', async () => {
  const loader = new ScriptedLoader();
  const { send } = await start(cacheWith(loader, new FakeClock()));
  const n = 700;
  for (let i = 0; i < n; i++) {
    const r = await missThenAnswer(loader, send(`/secretsmanager/get?secretId=s${i}`), `{"i":${i}}`);
    assert.equal(r.body, `{"i":${i}}`);
  }
  for (let i = n - 1; i >= 0; i -= 7) {
    const r = await send(`/secretsmanager/get?secretId=s${i}`);
    assert.deepEqual([r.status, r.headers['x-pscache'], r.body], [200, 'hit', `{"i":${i}}`]);
  }
  assert.equal(loader.loads.length, n);
});

test('a fault inside pscache is 500 InternalError, its stack logged once at ERROR, never a value', async () => {
  const secretValue = 'pipeline-secret-value-7';
  const broken = cacheWith(new ScriptedLoader(), new FakeClock());
  // The real cache with one method replaced by a bug: what the pipeline makes of an exception it did not expect.
  broken.get = (r: ItemRequest) => {
    throw new TypeError(`Cannot read properties of undefined (reading "${secretValue}") for ${r.service}`);
  };
  const { send, lines } = await start(broken);
  const r = await send('/secretsmanager/get?secretId=x');
  assert.equal(r.status, 500);
  const parsed = JSON.parse(r.body);
  assert.equal(parsed.__type, 'InternalError');
  assert.ok(!r.body.includes(secretValue));
  const errors = lines.filter((l) => l.includes(' ERROR '));
  assert.equal(errors.length, 1, lines.join(''));
  assert.match(errors[0]!, /TypeError/);
  assert.match(errors[0]!, /stack=.*pipeline\.test\.ts/);
  assert.ok(!lines.join('').includes(secretValue), 'the quoted value is dropped from the log');
  assert.ok(!lines.join('').includes(TOKEN));
  // Not disguised as upstream: no upstream WARN line, and the server goes on answering.
  assert.equal(lines.filter((l) => l.includes('upstream request failed')).length, 0);
  assert.equal((await send('/ping', { token: null })).status, 200);
});
