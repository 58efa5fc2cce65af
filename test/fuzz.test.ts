// HTTP fuzzing of a live daemon with fast-check: random paths, queries, headers, methods, pipelining,
// half-closes, connection floods, garbage and slowloris must all get an answer from the errors table of docs/http-api.md,
// leak nothing without the token, and leave the process up with its memory bounded.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { daemonEnv, freePort, type RunningProcess, spawnPscache, TEST_TOKEN } from './helpers/daemon.ts';
import { runSession, type SessionStats, seedFuzzStore, sessionArb } from './helpers/fuzz-cases.ts';
import { Conn, openFds, rssKiB, STATUS_TABLE } from './helpers/fuzz-http.ts';
import { sensitive, startWorld, type World } from './helpers/world.ts';

/** FUZZ_RUNS and FUZZ_SEED reproduce or lengthen a run (the seed is printed on failure). */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 2000);
const SEED = process.env['FUZZ_SEED'] === undefined ? undefined : Number(process.env['FUZZ_SEED']);
const INBOUND_LIMIT = 16;

let world: World;
let d: RunningProcess;

before(async () => {
  world = await startWorld();
  await seedFuzzStore(world, sensitive);
  const port = await freePort();
  d = await spawnPscache(
    ['serve'],
    daemonEnv(world.emu.url, port, {
      PARAMETERS_SECRETS_EXTENSION_MAX_INBOUND_CONNECTIONS: String(INBOUND_LIMIT),
      // Short TTLs so the fuzz also runs through expiry, refetch and refresh-ahead.
      SSM_PARAMETER_STORE_TTL: '2',
      SECRETS_MANAGER_TTL: '3',
    }),
  );
});

after(async () => {
  const { code, output } = await d.stop();
  await world.close();
  assert.equal(code, 0, 'the daemon exits cleanly after the fuzzing');
  assert.doesNotMatch(output, /\bERROR\b|Uncaught|\n\s+at /, 'no error or stack trace in the log');
});

test(`${RUNS} fuzz sessions: every answer is in the table, JSON, and leaks nothing`, async (t) => {
  const stats: SessionStats = { requests: 0, responses: 0, byStatus: new Map() };
  // Warm up (JIT, first upstream calls) before the baseline is taken.
  for (let i = 0; i < 50; i++) {
    await d.get('/systemsmanager/parameters/get?name=%2Ffz%2Fplain');
    await d.get('/ping', { token: null });
  }
  const pid = d.child.pid!;
  const rssBefore = rssKiB(pid);
  const fdsBefore = openFds(pid);
  let peak = rssBefore;
  let cases = 0;
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(sessionArb, async (s) => {
      cases++;
      await runSession(d.port, s, TEST_TOKEN, stats);
      if (d.child.exitCode !== null || d.child.signalCode !== null) throw new Error('the daemon exited');
      if (cases % 100 === 0) peak = Math.max(peak, rssKiB(pid));
    }),
    { numRuns: RUNS, includeErrorInReport: true, ...(SEED !== undefined ? { seed: SEED } : {}) },
  );
  const seconds = (performance.now() - started) / 1000;
  const rssAfter = rssKiB(pid);
  t.diagnostic(
    `fuzz: ${cases} sessions, ${stats.requests} requests, ${stats.responses} answers in ${seconds.toFixed(1)} s; ` +
      `by status ${JSON.stringify(Object.fromEntries([...stats.byStatus].sort(([a], [b]) => a - b)))}; ` +
      `RSS ${(rssBefore / 1024).toFixed(1)} -> ${(rssAfter / 1024).toFixed(1)} MiB (peak ${(peak / 1024).toFixed(1)})`,
  );
  assert.ok(cases >= RUNS, `ran ${cases} cases`);
  for (const s of stats.byStatus.keys()) assert.ok(STATUS_TABLE.has(s), `status ${s}`);
  // Every branch of the check order was reached.
  for (const s of [200, 400, 401, 404, 405, 429]) assert.ok(stats.byStatus.has(s), `no ${s} seen`);
  // Bounded memory: 2000 sessions with 20 KB headers and URLs, floods and garbage leave no lasting growth.
  if (!Number.isNaN(rssBefore)) {
    assert.ok(peak - rssBefore < 64 * 1024, `RSS grew ${((peak - rssBefore) / 1024).toFixed(1)} MiB`);
  }
  // No socket or file descriptor left behind (the upstream pool holds up to 3 sockets per service).
  const fdsAfter = openFds(pid);
  assert.ok(fdsAfter - fdsBefore <= 8, `open descriptors ${fdsBefore} -> ${fdsAfter}`);
  // /metrics: only the fixed route labels and statuses from the table, however odd the paths were.
  const m = await d.get('/metrics');
  assert.equal(m.status, 200);
  const series = m.body.split('\n').filter((l) => l.startsWith('pscache_requests_total{'));
  const routes = new Set(series.map((l) => /route="([^"]*)"/.exec(l)![1]!));
  for (const r of routes) {
    assert.ok(
      [
        'ping',
        'root',
        'metrics',
        'other',
        'ssm',
        'ssm-alias',
        'secretsmanager',
        'secretsmanager-alias',
        'ssm-batch',
        'ssm-path',
        'secretsmanager-batch',
      ].includes(r),
      `route label ${JSON.stringify(r)}`,
    );
  }
  for (const l of series) assert.ok(STATUS_TABLE.has(Number(/status="(\d+)"/.exec(l)![1])), l);
  assert.ok(series.length < 120, `${series.length} request series`);
});

test('half-closed: a request sent with FIN still gets its answer, upstream misses included', async () => {
  const ask = (target: string) =>
    `GET ${target} HTTP/1.1\r\nHost: localhost\r\nX-Aws-Parameters-Secrets-Token: ${TEST_TOKEN}\r\n\r\n`;
  world.emu.setFaults([{ latencyMs: 150, times: 2 }]);
  const c = new Conn(d.port, () => false);
  await c.ready();
  c.write(ask('/systemsmanager/parameters/get?name=%2Ffz%2Fdeep%2Fone&refreshNow=true') + ask('/ping'));
  c.end();
  assert.ok(await c.waitFor(2, 15_000));
  assert.deepEqual(
    c.reader.responses.map((r) => r.status),
    [200, 200],
  );
  assert.ok(await c.waitClosed(15_000), 'and then the connection closes');
  world.emu.clearFaults();
});

test('slowloris: headers dribbled a byte a second are cut off by the headers timeout, others are served', async (t) => {
  /** Long past the 5-6 s the cut-off takes: only a connection never cut off waits this long. */
  const HANG_MS = 30_000;
  const head = 'GET /ping HTTP/1.1\r\nHost: localhost\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n';
  const slow = [new Conn(d.port, () => false), new Conn(d.port, () => false)];
  await Promise.all(slow.map((c) => c.ready()));
  const t0 = Date.now();
  const closedAt: number[] = [];
  slow.forEach((c, i) => {
    void c.waitClosed(HANG_MS).then((closed) => {
      if (closed) closedAt[i] = Date.now() - t0;
    });
  });
  let sent = 0;
  const dribble = setInterval(() => {
    for (const c of slow) c.write(head[sent % head.length]!);
    sent++;
  }, 1000);
  for (const c of slow) c.write(head[0]!);
  sent++;
  // Meanwhile the daemon serves everyone else.
  let served = 0;
  try {
    while (Date.now() - t0 < HANG_MS && closedAt.filter((x) => x !== undefined).length < slow.length) {
      const r = await d.get('/systemsmanager/parameters/get?name=%2Ffz%2Fplain');
      assert.equal(r.status, 200);
      served++;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    clearInterval(dribble);
    for (const c of slow) c.destroy();
  }
  assert.ok(served >= 1, `served ${served} requests meanwhile`);
  slow.forEach((c, i) => {
    const at = closedAt[i];
    // Cut off by the 5 s headers timeout (checked every second), never before it: a slower machine only
    // closes later, and a dribbling connection without the timeout would stay open for good.
    assert.ok(
      at !== undefined,
      `slow connection ${i} still open after ${HANG_MS} ms (headersTimeout is 5 s)`,
    );
    assert.ok(at >= 4500, `slow connection ${i} closed after ${at} ms, before the headers timeout`);
    for (const res of c.reader.responses) {
      assert.ok(STATUS_TABLE.has(res.status), `status ${res.status}`);
      assert.equal(res.headers.get('content-type')?.[0], 'application/json');
    }
  });
  t.diagnostic(
    `slow connections closed after ${closedAt.join(', ')} ms; ${served} requests served meanwhile`,
  );
});
