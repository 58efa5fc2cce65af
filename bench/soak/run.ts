// `npm run soak` (not in CI): the token-timing test, 100 000 fuzz sessions, a pipelining flood without the
// token, and mixed hit/miss traffic at the inbound connection limit with upstream faults 5% of the time;
// loopback only, bounded in time and requests. Writes bench/out/soak/report-*.{json,md} (and latest.*);
// exits 1 when a property failed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import fc from 'fast-check';
import { FAULT_KINDS, type FaultKind, type FaultRule } from '../../packages/emulator/index.ts';
import {
  daemonEnv,
  freePort,
  httpGet,
  ROOT,
  type RunningProcess,
  spawnPscache,
  TEST_TOKEN,
} from '../../test/helpers/daemon.ts';
import { runSession, type SessionStats, seedFuzzStore, sessionArb } from '../../test/helpers/fuzz-cases.ts';
import {
  Conn,
  Flooder,
  header,
  openFds,
  type ParsedResponse,
  rssKiB,
  STATUS_TABLE,
} from '../../test/helpers/fuzz-http.ts';
import { sensitive, startWorld, type World } from '../../test/helpers/world.ts';
import {
  bootstrapMedianDiff,
  mannWhitney,
  percentileSorted,
  prng,
  sortNumbers,
  trimmedMean,
} from './stats.ts';

// ---------------------------------------------------------------------------------------------------------
// Options

const HELP = `npm run soak -- [options]

  --minutes N          duration of the load phase (default 30)
  --max-requests N     stop the load phase after this many requests (default 100000000)
  --connections N      the daemon's inbound connection limit, kept busy (default 64)
  --fault-share X      share of the time upstream faults are injected (default 0.05)
  --fuzz-runs N        fuzz sessions (default 100000); 0 skips the phase
  --fuzz-workers N     fuzz sessions run side by side (default 4)
  --timing-samples N   requests per group in the token timing test (default 20000); 0 skips it
  --flood-seconds N    duration of the pipelining flood (default 60); 0 skips it
  --flood-connections N  connections flooding at once, each replaced when cut off (default 50)
  --seed N             seed for every random choice (default: from the clock)
  --out DIR            report directory (default bench/out/soak)`;

interface Options {
  minutes: number;
  maxRequests: number;
  connections: number;
  faultShare: number;
  fuzzRuns: number;
  fuzzWorkers: number;
  timingSamples: number;
  floodSeconds: number;
  floodConnections: number;
  seed: number;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    minutes: 30,
    maxRequests: 100_000_000,
    connections: 64,
    faultShare: 0.05,
    fuzzRuns: 100_000,
    fuzzWorkers: 4,
    timingSamples: 20_000,
    floodSeconds: 60,
    floodConnections: 50,
    seed: Date.now() % 2 ** 31,
    out: `${ROOT}bench/out/soak`,
  };
  const numeric: Record<string, keyof Options> = {
    '--minutes': 'minutes',
    '--max-requests': 'maxRequests',
    '--connections': 'connections',
    '--fault-share': 'faultShare',
    '--fuzz-runs': 'fuzzRuns',
    '--fuzz-workers': 'fuzzWorkers',
    '--timing-samples': 'timingSamples',
    '--flood-seconds': 'floodSeconds',
    '--flood-connections': 'floodConnections',
    '--seed': 'seed',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(`${HELP}\n`);
      process.exit(0);
    }
    const value = argv[++i];
    if (value === undefined) fail(`${flag} needs a value`);
    if (flag === '--out') {
      o.out = value;
      continue;
    }
    const key = numeric[flag];
    const n = Number(value);
    if (!key) fail(`unknown option ${flag}; see --help`);
    if (!Number.isFinite(n) || n < 0)
      fail(`${flag}=${JSON.stringify(value)} is invalid: must be a number >= 0`);
    (o as unknown as Record<string, number>)[key] = n;
  }
  if (o.minutes <= 0) fail('--minutes must be more than 0');
  if (o.connections < 1 || o.connections > 60000) fail('--connections must be from 1 to 60000');
  if (o.faultShare > 1) fail('--fault-share must be from 0 to 1');
  if (o.fuzzWorkers < 1) fail('--fuzz-workers must be at least 1');
  return o;
}

function fail(message: string): never {
  process.stderr.write(`soak: ${message}\n`);
  process.exit(2);
}

const log = (m: string) => process.stderr.write(`soak: ${m}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const mib = (kib: number) => round(kib / 1024, 1);

async function startDaemon(world: World, extra: Record<string, string>): Promise<RunningProcess> {
  const port = await freePort();
  return spawnPscache(
    ['serve'],
    daemonEnv(world.emu.url, port, { PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'warn', ...extra }),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Phase 1: does the time to reject a wrong token depend on how many of its leading characters match?

interface GroupSummary {
  n: number;
  medianUs: number;
  p10Us: number;
  p90Us: number;
  trimmedMeanUs: number;
}
interface Comparison {
  a: string;
  b: string;
  /** Rank-biserial effect size: 0 none, |r| < 0.1 negligible. */
  effect: number;
  p: number;
  medianDiffUs: number;
  medianDiffCi95Us: [number, number];
  trimmedMeanDiffUs: number;
}

async function timingPhase(world: World, o: Options) {
  const d = await startDaemon(world, {});
  // Same length as the token; the first differs at character 0, the second only at the last character.
  const flip = (c: string) => (c === 'a' ? 'b' : 'a');
  const groups: Record<string, { token: string; pad?: string }> = {
    'prefix-0': { token: flip(TEST_TOKEN[0]!) + TEST_TOKEN.slice(1) },
    'prefix-all-but-1': { token: TEST_TOKEN.slice(0, -1) + flip(TEST_TOKEN.at(-1)!) },
    // A/A: another token with no matching prefix, to show the noise floor.
    'prefix-0-again': {
      token: `${flip(flip(TEST_TOKEN[0]!)) === TEST_TOKEN[0] ? 'c' : 'a'}${TEST_TOKEN.slice(1)}`,
    },
    // Positive control: a difference the test should detect (1 KB more header to parse).
    'prefix-0-plus-1KB-header': { token: flip(TEST_TOKEN[0]!) + TEST_TOKEN.slice(1), pad: 'p'.repeat(1024) },
  };
  for (const g of Object.values(groups)) sensitive(g.token);
  const names = Object.keys(groups);
  const bytes = Object.fromEntries(
    names.map((n) => {
      const g = groups[n]!;
      return [
        n,
        Buffer.from(
          `GET /systemsmanager/parameters/get?name=%2Fsoak%2Fp%2F000 HTTP/1.1\r\nHost: localhost\r\nX-Aws-Parameters-Secrets-Token: ${g.token}\r\n${g.pad ? `X-Pad: ${g.pad}\r\n` : ''}\r\n`,
        ),
      ];
    }),
  );
  const order: string[] = [];
  for (const n of names) for (let i = 0; i < o.timingSamples; i++) order.push(n);
  const rand = prng(o.seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  let conn = new Conn(d.port, () => false);
  await conn.ready();
  let k = 0;
  const one = async (group: string): Promise<number> => {
    if (k >= 5000 || conn.closed) {
      conn.destroy();
      conn = new Conn(d.port, () => false);
      await conn.ready();
      k = 0;
    }
    const t0 = process.hrtime.bigint();
    conn.write(bytes[group]!);
    await conn.waitFor(k + 1, 5000);
    const t1 = process.hrtime.bigint();
    const res = conn.reader.responses[k++];
    if (res?.status !== 401) throw new Error(`timing: a wrong token got ${res?.status ?? 'no answer'}`);
    return Number(t1 - t0) / 1000;
  };
  log(`timing: ${order.length} wrong-token requests in ${names.length} interleaved groups`);
  for (let i = 0; i < 2000; i++) await one(names[i % names.length]!); // warm-up
  const started = performance.now();
  for (const g of order) samples[g]!.push(await one(g));
  conn.destroy();
  await d.stop();
  const summary = (xs: number[]): GroupSummary => {
    const s = sortNumbers(xs);
    return {
      n: xs.length,
      medianUs: round(percentileSorted(s, 50)),
      p10Us: round(percentileSorted(s, 10)),
      p90Us: round(percentileSorted(s, 90)),
      trimmedMeanUs: round(trimmedMean(xs)),
    };
  };
  const compare = (a: string, b: string): Comparison => {
    const x = samples[a]!;
    const y = samples[b]!;
    const mw = mannWhitney(x, y);
    const ci = bootstrapMedianDiff(x, y, 0.95, 400, o.seed);
    const sx = sortNumbers(x);
    const sy = sortNumbers(y);
    return {
      a,
      b,
      effect: round(mw.effect, 4),
      p: mw.p,
      medianDiffUs: round(percentileSorted(sx, 50) - percentileSorted(sy, 50)),
      medianDiffCi95Us: [round(ci.low), round(ci.high)],
      trimmedMeanDiffUs: round(trimmedMean(x) - trimmedMean(y)),
    };
  };
  const main = compare('prefix-all-but-1', 'prefix-0');
  const aa = compare('prefix-0-again', 'prefix-0');
  const control = compare('prefix-0-plus-1KB-header', 'prefix-0');
  // A prefix-dependent comparison would show as a consistent shift: fail only on one that is both
  // significant and not negligible in size, so scheduling noise alone cannot fail the run.
  const leak = main.p < 0.001 && Math.abs(main.effect) >= 0.1;
  return {
    seconds: round((performance.now() - started) / 1000, 1),
    groups: Object.fromEntries(names.map((n) => [n, summary(samples[n]!)])),
    main,
    aa,
    positiveControl: { ...control, detected: control.p < 0.001 },
    passed: !leak,
    rule: 'fail when p < 0.001 and |rank-biserial effect| >= 0.1 for prefix-all-but-1 vs prefix-0',
  };
}

// ---------------------------------------------------------------------------------------------------------
// Phase 2: fuzz sessions against a live daemon

async function fuzzPhase(world: World, o: Options) {
  await seedFuzzStore(world, sensitive);
  const d = await startDaemon(world, { SSM_PARAMETER_STORE_TTL: '2', SECRETS_MANAGER_TTL: '3' });
  const pid = d.child.pid!;
  const stats: SessionStats = { requests: 0, responses: 0, byStatus: new Map() };
  const rssStart = rssKiB(pid);
  const fdsStart = openFds(pid);
  let peak = rssStart;
  let done = 0;
  const started = performance.now();
  const failures: string[] = [];
  const per = Math.ceil(o.fuzzRuns / o.fuzzWorkers);
  const progress = setInterval(() => {
    peak = Math.max(peak, rssKiB(pid));
    log(`fuzz: ${done}/${o.fuzzRuns} sessions, RSS ${mib(rssKiB(pid))} MiB`);
  }, 10_000);
  await Promise.all(
    Array.from({ length: o.fuzzWorkers }, async (_, w) => {
      const r = await fc.check(
        fc.asyncProperty(sessionArb, async (s) => {
          await runSession(d.port, s, TEST_TOKEN, stats);
          done++;
          if (d.child.exitCode !== null || d.child.signalCode !== null) throw new Error('the daemon exited');
        }),
        { numRuns: per, seed: o.seed + w, includeErrorInReport: true },
      );
      if (r.failed) {
        failures.push(
          `worker ${w} (seed ${o.seed + w}, path ${r.counterexamplePath}): ${String((r.errorInstance as Error)?.message ?? r.errorInstance).slice(0, 500)} ` +
            `counterexample ${fc.stringify(r.counterexample).slice(0, 2000)}`,
        );
      }
    }),
  );
  clearInterval(progress);
  const seconds = (performance.now() - started) / 1000;
  const rssEnd = rssKiB(pid);
  const fdsEnd = openFds(pid);
  const alive = d.child.exitCode === null;
  const { code } = await d.stop();
  const outside = [...stats.byStatus.keys()].filter((s) => !STATUS_TABLE.has(s));
  return {
    sessions: done,
    requests: stats.requests,
    answers: stats.responses,
    seconds: round(seconds, 1),
    byStatus: Object.fromEntries([...stats.byStatus].sort(([a], [b]) => a - b)),
    rssMiB: { start: mib(rssStart), peak: mib(Math.max(peak, rssEnd)), end: mib(rssEnd) },
    openFds: { start: fdsStart, end: fdsEnd },
    failures,
    passed:
      failures.length === 0 && outside.length === 0 && alive && code === 0 && peak - rssStart < 64 * 1024,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Phase 3: a pipelining flood without the token, and a keep-alive client beside it

/** What an independent probe sent: ~113 000 `GET /` pipelined on one connection, no answer ever read. */
const FLOOD_REQUEST = 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n';
const FLOOD_PER_CONNECTION = 113_000;

async function floodPhase(world: World, o: Options) {
  await world.putParameter('/soak/flood/plain', 'soak-flood-plain-value');
  const d = await startDaemon(world, {});
  const pid = d.child.pid!;
  for (let i = 0; i < 200; i++) await httpGet(d.port, '/ping', { token: null });
  const rssStart = rssKiB(pid);
  let peak = rssStart;
  const rssTimer = setInterval(() => {
    peak = Math.max(peak, rssKiB(pid));
  }, 100);
  const started = performance.now();
  const running = () => performance.now() - started < o.floodSeconds * 1000;
  let opened = 0;
  let stillOpen = 0;
  const closeMs: number[] = [];
  // Each flooding connection is replaced once the daemon closes it: the attack keeps going for the duration.
  const flooder = async () => {
    while (running()) {
      const f = new Flooder(d.port, FLOOD_REQUEST, FLOOD_PER_CONNECTION);
      opened++;
      // Not reading is the attack; reading after a while shows a close that came while nothing was written.
      await sleep(200);
      f.resume();
      const t0 = performance.now();
      while (!f.closed && performance.now() - t0 < 5000) await sleep(10);
      if (f.closed) closeMs.push(f.closedAt);
      else stillOpen++;
      f.destroy();
    }
  };
  // A well-behaved keep-alive client beside the flood: one request at a time, never cut off.
  const bystander = { requests: 0, cutOff: false, failed: 0 };
  const keepAlive = async () => {
    const c = new Conn(d.port, () => false);
    await c.ready();
    const read = `GET /systemsmanager/parameters/get?name=%2Fsoak%2Fflood%2Fplain HTTP/1.1\r\nHost: localhost\r\nX-Aws-Parameters-Secrets-Token: ${TEST_TOKEN}\r\n\r\n`;
    while (running()) {
      c.write(bystander.requests % 2 === 0 ? 'GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n' : read);
      const answered = await c.waitFor(bystander.requests + 1, 10_000);
      if (c.closed || !answered) {
        bystander.cutOff = true;
        break;
      }
      if (c.reader.responses[bystander.requests]!.status !== 200) bystander.failed++;
      bystander.requests++;
    }
    c.destroy();
  };
  const latencies: number[] = [];
  let pingErrors = 0;
  const pings = async () => {
    while (running()) {
      const t0 = performance.now();
      try {
        const r = await httpGet(d.port, '/ping', { token: null, timeoutMs: 30_000 });
        if (r.status === 200) latencies.push(performance.now() - t0);
        else pingErrors++;
      } catch {
        pingErrors++;
      }
      await sleep(20);
    }
  };
  log(
    `flood: ${o.floodConnections} connections pipelining ${FLOOD_PER_CONNECTION} GET / each, ${o.floodSeconds} s`,
  );
  await Promise.all([...Array.from({ length: o.floodConnections }, () => flooder()), keepAlive(), pings()]);
  clearInterval(rssTimer);
  const seconds = (performance.now() - started) / 1000;
  const rssEnd = rssKiB(pid);
  const alive = d.child.exitCode === null;
  const { code } = await d.stop();
  const lat = sortNumbers(latencies);
  const closes = sortNumbers(closeMs);
  const pingMs = {
    n: lat.length,
    p50: round(percentileSorted(lat, 50), 2),
    p99: round(percentileSorted(lat, 99), 2),
    max: round(lat.length ? lat[lat.length - 1]! : Number.NaN, 1),
  };
  const failures: string[] = [];
  if (stillOpen > 0) failures.push(`${stillOpen} flooding connections still open after 5 s`);
  if (bystander.cutOff)
    failures.push(`the keep-alive client was cut off after ${bystander.requests} requests`);
  if (bystander.failed > 0) failures.push(`${bystander.failed} keep-alive requests not answered 200`);
  if (pingErrors > 0) failures.push(`${pingErrors} /ping requests failed`);
  if (pingMs.p99 > 1000) failures.push(`/ping p99 ${pingMs.p99} ms under the flood`);
  if (peak - rssStart > 128 * 1024) failures.push(`RSS grew ${mib(peak - rssStart)} MiB under the flood`);
  if (!alive || code !== 0) failures.push(`the daemon did not stay up (exit ${code})`);
  return {
    seconds: round(seconds, 1),
    connections: o.floodConnections,
    requestsPerConnection: FLOOD_PER_CONNECTION,
    flooded: opened,
    cutOff: closes.length,
    closeMs: {
      p50: round(percentileSorted(closes, 50), 1),
      max: round(closes.length ? closes[closes.length - 1]! : Number.NaN, 1),
    },
    pingMs,
    keepAlive: bystander,
    rssMiB: { start: mib(rssStart), peak: mib(peak), end: mib(rssEnd) },
    failures,
    passed: failures.length === 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Phase 4: mixed traffic at the inbound connection limit, upstream faults part of the time

const PARAMS = 200;
const SECRETS = 50;
const pname = (i: number) => `/soak/p/${String(i).padStart(3, '0')}`;
const sname = (i: number) => `soak/s/${String(i).padStart(3, '0')}`;
const pvalue = (i: number) => `soak-parameter-value-${i}-${'v'.repeat(i % 7)}`;
const svalue = (i: number) => `soak-secret-value-${i}-${'s'.repeat(i % 5)}`;

interface Pick {
  path: string;
  token: 'valid' | 'wrong' | 'none';
  /** What a 200 must carry (a SecureString read without decryption: anything but the plaintext). */
  check?: { kind: 'param'; i: number; cipher: boolean } | { kind: 'secret'; i: number };
}

/** Every tenth parameter is a SecureString. */
const isSecure = (i: number) => i % 10 === 0;

function picker(rand: () => number): () => Pick {
  const q = encodeURIComponent;
  const hot = (n: number) => Math.floor(rand() * n);
  /** A parameter read; SecureStrings half the time with decryption, half without. */
  const param = (i: number, extra = ''): Pick => {
    const decrypt = isSecure(i) && rand() < 0.5;
    return {
      path: `/systemsmanager/parameters/get?name=${q(pname(i))}${decrypt ? '&withDecryption=true' : ''}${extra}`,
      token: 'valid',
      check: { kind: 'param', i, cipher: isSecure(i) && !decrypt },
    };
  };
  return () => {
    const x = rand();
    if (x < 0.45) return param(hot(20));
    if (x < 0.65) {
      const i = hot(10);
      return {
        path: `/secretsmanager/get?secretId=${q(sname(i))}`,
        token: 'valid',
        check: { kind: 'secret', i },
      };
    }
    if (x < 0.8) return param(hot(PARAMS));
    if (x < 0.86) {
      const i = hot(SECRETS);
      return {
        path: `/secretsmanager/get?secretId=${q(sname(i))}`,
        token: 'valid',
        check: { kind: 'secret', i },
      };
    }
    if (x < 0.88) return param(hot(PARAMS), '&refreshNow=true');
    if (x < 0.9) {
      const i = hot(SECRETS);
      return {
        path: `/secretsmanager/get?secretId=${q(sname(i))}&ttl=0`,
        token: 'valid',
        check: { kind: 'secret', i },
      };
    }
    if (x < 0.92)
      return {
        path: `/systemsmanager/parameters/get?name=${q(`/soak/missing/${hot(1000)}`)}`,
        token: 'valid',
      };
    if (x < 0.93) return { path: `/systemsmanager/parameters/get?name=${q('/soak/denied')}`, token: 'valid' };
    if (x < 0.95) {
      const base = hot(PARAMS - 5);
      const names = [0, 1, 2, 3, 4].map((k) => `name=${q(pname(base + k))}`).join('&');
      return { path: `/systemsmanager/parameters/batch?${names}`, token: 'valid' };
    }
    if (x < 0.96)
      return {
        path: `/secretsmanager/batch?secretId=${q(sname(hot(SECRETS)))}&secretId=${q(sname(hot(SECRETS)))}`,
        token: 'valid',
      };
    if (x < 0.965)
      return { path: `/systemsmanager/parameters/path?path=${q(`/soak/p/`)}&recursive=true`, token: 'valid' };
    if (x < 0.975) return { path: '/metrics', token: 'valid' };
    if (x < 0.985) return { path: '/ping', token: 'none' };
    if (x < 0.995)
      return { path: `/systemsmanager/parameters/get?name=${q(pname(hot(20)))}`, token: 'wrong' };
    return { path: `/secretsmanager/get?secretId=${q(sname(hot(10)))}`, token: 'none' };
  };
}

const WRONG_TOKEN = sensitive(`${TEST_TOKEN.slice(0, -3)}zzz`);

function requestBytes(p: Pick): Buffer {
  const token = p.token === 'valid' ? TEST_TOKEN : p.token === 'wrong' ? WRONG_TOKEN : undefined;
  return Buffer.from(
    `GET ${p.path} HTTP/1.1\r\nHost: localhost\r\n${token ? `X-Aws-Parameters-Secrets-Token: ${token}\r\n` : ''}\r\n`,
  );
}

const ALL_VALUES: string[] = [];

/** Why an answer is wrong, or undefined. Never quotes a value. */
function problem(p: Pick, res: ParsedResponse): string | undefined {
  if (!STATUS_TABLE.has(res.status)) return `status ${res.status} outside the table`;
  const text = res.body.toString('utf8');
  if (p.token !== 'valid') {
    if (p.path === '/ping') {
      // An over-limit connection gets 429 even for /ping: the inbound limit is checked first.
      return (res.status === 200 && text === 'healthy') || res.status === 429
        ? undefined
        : `/ping answered ${res.status}`;
    }
    if (res.status !== 401 && res.status !== 429) return `no valid token, answered ${res.status}`;
    if (ALL_VALUES.some((v) => text.includes(v))) return 'a value answered without a valid token';
  }
  if (text.includes(TEST_TOKEN)) return 'the token in an answer';
  if (p.path === '/metrics' || p.path === '/ping') return undefined;
  if (header(res, 'content-type') !== 'application/json') return `status ${res.status} without a JSON body`;
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch {
    return `status ${res.status} with a body that is not JSON`;
  }
  if (res.status !== 200) {
    return typeof doc['__type'] === 'string' && typeof doc['message'] === 'string'
      ? undefined
      : 'error without __type';
  }
  if (p.check?.kind === 'param') {
    const v = (doc['Parameter'] as Record<string, unknown> | undefined)?.['Value'];
    if (p.check.cipher ? v === pvalue(p.check.i) : v !== pvalue(p.check.i)) {
      return `${pname(p.check.i)} answered with ${p.check.cipher ? 'the plaintext without decryption' : 'another value'}`;
    }
  } else if (p.check?.kind === 'secret') {
    if (doc['SecretString'] !== svalue(p.check.i)) return `${sname(p.check.i)} answered with another value`;
  }
  return undefined;
}

interface Window {
  startS: number;
  requests: number;
  byStatus: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rssMiB: number;
  faults: number;
}

async function loadPhase(world: World, o: Options) {
  for (let i = 0; i < PARAMS; i++) {
    ALL_VALUES.push(sensitive(pvalue(i)));
    await world.putParameter(pname(i), pvalue(i), isSecure(i) ? 'SecureString' : 'String');
  }
  for (let i = 0; i < SECRETS; i++) {
    ALL_VALUES.push(sensitive(svalue(i)));
    await world.createSecret(sname(i), svalue(i));
  }
  await world.putParameter('/soak/denied', sensitive('soak-denied-parameter-value'));
  world.emu.deny(['/soak/denied']);
  world.emu.resetCalls();
  const d = await startDaemon(world, {
    PARAMETERS_SECRETS_EXTENSION_MAX_INBOUND_CONNECTIONS: String(o.connections),
    SSM_PARAMETER_STORE_TTL: '10',
    SECRETS_MANAGER_TTL: '15',
    SSM_PARAMETER_STORE_TIMEOUT_MILLIS: '1000',
    SECRETS_MANAGER_TIMEOUT_MILLIS: '1000',
  });
  const pid = d.child.pid!;
  const durationMs = o.minutes * 60_000;
  const warmupMs = Math.min(60_000, durationMs * 0.2);
  const windowMs = Math.min(60_000, Math.max(5_000, durationMs / 20));
  const rand = prng(o.seed ^ 0x5eed);
  const pick = picker(rand);
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  let stopping = false;
  let total = 0;
  const byStatus = new Map<number, number>();
  const problems = new Map<string, number>();
  let timeouts = 0;
  let closedWithoutAnswer = 0;
  let connectErrors = 0;
  const allLatencies: number[] = [];
  let windowLat: number[] = [];
  let windowStatus = new Map<number, number>();
  let windowFaults = 0;
  const windows: Window[] = [];
  const rss: Array<{ s: number; mib: number }> = [];

  // Faults: every 100 ms slot, with probability faultShare, one rule for that slot.
  const faultsByKind: Record<string, number> = {};
  const OPS = [
    'GetParameter',
    'GetSecretValue',
    'GetParameters',
    'GetParametersByPath',
    'BatchGetSecretValue',
    undefined,
  ];
  const faultTimer = setInterval(() => {
    world.emu.clearFaults();
    if (rand() >= o.faultShare) return;
    const error = FAULT_KINDS[Math.floor(rand() * FAULT_KINDS.length)] as FaultKind;
    const operation = OPS[Math.floor(rand() * OPS.length)];
    const rule: FaultRule = { error, ...(operation ? { operation } : {}) };
    world.emu.setFaults([rule]);
    faultsByKind[error] = (faultsByKind[error] ?? 0) + 1;
    windowFaults++;
  }, 100);

  const rssTimer = setInterval(
    () => rss.push({ s: round(elapsed() / 1000, 1), mib: mib(rssKiB(pid)) }),
    1000,
  );
  const windowTimer = setInterval(() => {
    const s = sortNumbers(windowLat);
    windows.push({
      startS: round(elapsed() / 1000 - windowMs / 1000, 0),
      requests: windowLat.length,
      byStatus: Object.fromEntries([...windowStatus].sort(([a], [b]) => a - b)),
      p50Ms: round(percentileSorted(s, 50), 3),
      p99Ms: round(percentileSorted(s, 99), 3),
      maxMs: round(s.length ? s[s.length - 1]! : Number.NaN, 1),
      rssMiB: mib(rssKiB(pid)),
      faults: windowFaults,
    });
    const w = windows.at(-1)!;
    log(
      `load: ${round(elapsed() / 1000, 0)} s, ${total} requests, window p99 ${w.p99Ms} ms, RSS ${w.rssMiB} MiB, statuses ${JSON.stringify(w.byStatus)}`,
    );
    windowLat = [];
    windowStatus = new Map();
    windowFaults = 0;
  }, windowMs);

  const record = (status: number, ms: number) => {
    total++;
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    windowStatus.set(status, (windowStatus.get(status) ?? 0) + 1);
    windowLat.push(ms);
    if (allLatencies.length < 2_000_000) allLatencies.push(ms);
  };
  const note = (what: string) => problems.set(what, (problems.get(what) ?? 0) + 1);

  const client = async () => {
    while (!stopping) {
      const conn = new Conn(d.port, () => false);
      try {
        await conn.ready();
      } catch {
        connectErrors++;
        conn.destroy();
        await sleep(50);
        continue;
      }
      let i = 0;
      let backoff = 0;
      while (!stopping && i < 2000) {
        const p = pick();
        const t0 = performance.now();
        conn.write(requestBytes(p));
        const answered = await conn.waitFor(i + 1, 15_000);
        const res = conn.reader.responses[i];
        if (!answered) {
          timeouts++;
          break;
        }
        if (!res) {
          if (conn.reader.error) note(`unparseable answer: ${conn.reader.error}`);
          else closedWithoutAnswer++;
          break;
        }
        record(res.status, performance.now() - t0);
        const why = problem(p, res);
        if (why) note(why);
        i++;
        if (res.status === 429 && header(res, 'connection') === 'close') backoff = 100;
        if (header(res, 'connection') === 'close' || conn.closed) break;
        if (total >= o.maxRequests || elapsed() >= durationMs) stopping = true;
      }
      conn.destroy();
      if (backoff) await sleep(backoff);
    }
  };
  log(
    `load: ${o.connections} connections at the limit plus 2 over it, ${o.minutes} min, faults ${o.faultShare * 100}% of the time`,
  );
  const rssStart = rssKiB(pid);
  await Promise.all(Array.from({ length: o.connections + 2 }, () => client()));
  clearInterval(faultTimer);
  clearInterval(rssTimer);
  clearInterval(windowTimer);
  world.emu.clearFaults();
  const seconds = elapsed() / 1000;
  const rssEnd = rssKiB(pid);
  const alive = d.child.exitCode === null;
  const upstream = world.emu.calls();
  const { code } = await d.stop();

  // RSS after warm-up: the median of the samples in the first window after it, against the last ones.
  const after = rss.filter((r) => r.s * 1000 >= warmupMs);
  const base = after.slice(0, Math.max(3, Math.round(windowMs / 1000)));
  const tail = rss.slice(-5);
  const med = (xs: number[]) => percentileSorted(sortNumbers(xs), 50);
  const baseline = med(base.map((r) => r.mib));
  const end = med(tail.map((r) => r.mib));
  const growthPct = round(((end - baseline) / baseline) * 100, 1);
  const sorted = sortNumbers(allLatencies);
  const outside = [...byStatus.keys()].filter((s) => !STATUS_TABLE.has(s));
  const failures: string[] = [];
  if (outside.length > 0) failures.push(`statuses outside the table: ${outside.join(', ')}`);
  if (growthPct > 10) failures.push(`RSS grew ${growthPct}% after warm-up (${baseline} -> ${end} MiB)`);
  for (const [what, n] of problems) failures.push(`${n} x ${what}`);
  if (closedWithoutAnswer > 0) failures.push(`${closedWithoutAnswer} connections closed without an answer`);
  if (!alive || code !== 0) failures.push(`the daemon did not stay up (exit ${code})`);
  return {
    seconds: round(seconds, 1),
    requests: total,
    requestsPerSecond: round(total / seconds, 0),
    byStatus: Object.fromEntries([...byStatus].sort(([a], [b]) => a - b)),
    latencyMs: {
      p50: round(percentileSorted(sorted, 50), 3),
      p99: round(percentileSorted(sorted, 99), 3),
      p999: round(percentileSorted(sorted, 99.9), 3),
      max: round(sorted.length ? sorted[sorted.length - 1]! : Number.NaN, 1),
    },
    timeouts,
    connectErrors,
    closedWithoutAnswer,
    faultSlotsByKind: faultsByKind,
    faultSlots: Object.values(faultsByKind).reduce((a, b) => a + b, 0),
    upstreamCalls: upstream,
    rssMiB: {
      start: mib(rssStart),
      afterWarmup: round(baseline, 1),
      end: round(end, 1),
      endRaw: mib(rssEnd),
      growthPct,
      peak: Math.max(...rss.map((r) => r.mib)),
    },
    warmupSeconds: warmupMs / 1000,
    windowSeconds: windowMs / 1000,
    windows,
    rss,
    failures,
    passed: failures.length === 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Report

function markdown(report: Record<string, unknown>): string {
  const r = report as {
    date: string;
    options: Options;
    machine: Record<string, unknown>;
    passed: boolean;
    timing?: Awaited<ReturnType<typeof timingPhase>>;
    fuzz?: Awaited<ReturnType<typeof fuzzPhase>>;
    flood?: Awaited<ReturnType<typeof floodPhase>>;
    load: Awaited<ReturnType<typeof loadPhase>>;
    totalSeconds: number;
  };
  const lines = [
    `# pscache soak — ${r.date}`,
    '',
    `**${r.passed ? 'PASSED' : 'FAILED'}** in ${r.totalSeconds} s. Node ${r.machine['node']}, ${r.machine['cpu']} × ${r.machine['cores']}; seed ${r.options.seed}.`,
    '',
  ];
  if (r.timing) {
    const t = r.timing;
    lines.push(
      '## Token timing',
      '',
      `${Object.values(t.groups)[0]?.n ?? 0} samples per group, interleaved in random order on one keep-alive connection; round-trip times of 401 answers.`,
      '',
      '| group | median µs | p10 | p90 | 10% trimmed mean |',
      '| --- | --- | --- | --- | --- |',
      ...Object.entries(t.groups).map(
        ([n, g]) => `| ${n} | ${g.medianUs} | ${g.p10Us} | ${g.p90Us} | ${g.trimmedMeanUs} |`,
      ),
      '',
      '| comparison | effect (rank-biserial) | p (Mann–Whitney) | Δ median µs (95% CI) | Δ trimmed mean µs |',
      '| --- | --- | --- | --- | --- |',
      ...[t.main, t.aa, t.positiveControl].map(
        (c) =>
          `| ${c.a} vs ${c.b} | ${c.effect} | ${c.p.toExponential(2)} | ${c.medianDiffUs} (${c.medianDiffCi95Us.join(' to ')}) | ${c.trimmedMeanDiffUs} |`,
      ),
      '',
      `Rule: ${t.rule}. ${t.passed ? 'No dependence on the matching prefix.' : '**Prefix dependence found.**'} Positive control ${t.positiveControl.detected ? 'detected' : 'not detected (the test may lack power on this machine)'}.`,
      '',
    );
  }
  if (r.fuzz) {
    const f = r.fuzz;
    lines.push(
      '## Fuzz',
      '',
      `${f.sessions} sessions, ${f.requests} requests, ${f.answers} answers in ${f.seconds} s; by status ${JSON.stringify(f.byStatus)}; RSS ${f.rssMiB.start} → ${f.rssMiB.end} MiB (peak ${f.rssMiB.peak}); open descriptors ${f.openFds.start} → ${f.openFds.end}. ${f.failures.length === 0 ? 'No property failed.' : `**${f.failures.length} failures**:`}`,
      ...f.failures.map((x) => `- ${x}`),
      '',
    );
  }
  if (r.flood) {
    const f = r.flood;
    lines.push(
      '## Pipelining flood',
      '',
      `${f.connections} connections at once, each pipelining ${f.requestsPerConnection} \`GET /\` without the token and never reading, replaced when cut off, for ${f.seconds} s: ${f.flooded} flooding connections, ${f.cutOff} closed by the daemon (median ${f.closeMs.p50} ms after they opened, at most ${f.closeMs.max} ms).`,
      '',
      `\`/ping\` on a new connection every 20 ms meanwhile: p50 ${f.pingMs.p50} ms, p99 ${f.pingMs.p99} ms, max ${f.pingMs.max} ms (${f.pingMs.n} pings). RSS ${f.rssMiB.start} MiB before, peak ${f.rssMiB.peak} MiB, ${f.rssMiB.end} MiB at the end. A keep-alive client beside it, one request at a time: ${f.keepAlive.requests} requests, ${f.keepAlive.cutOff ? '**cut off**' : 'never cut off'}.`,
      '',
      f.failures.length === 0
        ? 'No property failed.'
        : `**Failures:**\n${f.failures.map((x) => `- ${x}`).join('\n')}`,
      '',
    );
  }
  const l = r.load;
  lines.push(
    '## Load with faults',
    '',
    `${l.requests} requests in ${l.seconds} s (${l.requestsPerSecond}/s) over ${r.options.connections} + 2 connections; latency p50 ${l.latencyMs.p50} ms, p99 ${l.latencyMs.p99} ms, p99.9 ${l.latencyMs.p999} ms, max ${l.latencyMs.max} ms.`,
    '',
    `By status: ${JSON.stringify(l.byStatus)}. Fault slots (100 ms each) by kind: ${JSON.stringify(l.faultSlotsByKind)} (${l.faultSlots} in all). Upstream calls: ${JSON.stringify(l.upstreamCalls)}.`,
    '',
    `RSS: ${l.rssMiB.start} MiB at start, ${l.rssMiB.afterWarmup} MiB after the ${l.warmupSeconds} s warm-up, ${l.rssMiB.end} MiB at the end (${l.rssMiB.growthPct >= 0 ? '+' : ''}${l.rssMiB.growthPct}%), peak ${l.rssMiB.peak} MiB. Client timeouts ${l.timeouts}, connect errors ${l.connectErrors}.`,
    '',
    '| window start s | requests | p50 ms | p99 ms | max ms | RSS MiB | fault slots | statuses |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...l.windows.map(
      (w) =>
        `| ${w.startS} | ${w.requests} | ${w.p50Ms} | ${w.p99Ms} | ${w.maxMs} | ${w.rssMiB} | ${w.faults} | ${JSON.stringify(w.byStatus)} |`,
    ),
    '',
    l.failures.length === 0
      ? 'No property failed.'
      : `**Failures:**\n${l.failures.map((x) => `- ${x}`).join('\n')}`,
    '',
  );
  return lines.join('\n');
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const machine = {
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    platform: `${process.platform} ${release()} ${process.arch}`,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    loadavgBefore: loadavg(),
  };
  log(`seed ${o.seed}`);
  const world = await startWorld();
  try {
    await world.putParameter(pname(0), pvalue(0)); // the timing requests read this name
    const timing = o.timingSamples > 0 ? await timingPhase(world, o) : undefined;
    if (timing)
      log(
        `timing: effect ${timing.main.effect}, p ${timing.main.p.toExponential(2)}, ${timing.passed ? 'ok' : 'FAILED'}`,
      );
    const fuzz = o.fuzzRuns > 0 ? await fuzzPhase(world, o) : undefined;
    if (fuzz) log(`fuzz: ${fuzz.sessions} sessions in ${fuzz.seconds} s, ${fuzz.passed ? 'ok' : 'FAILED'}`);
    const flood = o.floodSeconds > 0 && o.floodConnections > 0 ? await floodPhase(world, o) : undefined;
    if (flood)
      log(
        `flood: ${flood.cutOff}/${flood.flooded} cut off, /ping p99 ${flood.pingMs.p99} ms, RSS peak ${flood.rssMiB.peak} MiB, ${flood.passed ? 'ok' : 'FAILED'}`,
      );
    const load = await loadPhase(world, o);
    const passed =
      (timing?.passed ?? true) && (fuzz?.passed ?? true) && (flood?.passed ?? true) && load.passed;
    const date = new Date().toISOString();
    const report = {
      date,
      options: o,
      machine: { ...machine, loadavgAfter: loadavg() },
      totalSeconds: round((performance.now() - t0) / 1000, 1),
      passed,
      timing,
      fuzz,
      flood,
      load,
    };
    mkdirSync(o.out, { recursive: true });
    const stamp = date.replace(/[:.]/g, '-');
    const md = markdown(report);
    for (const name of [`report-${stamp}`, 'latest']) {
      writeFileSync(`${o.out}/${name}.json`, `${JSON.stringify(report, null, 2)}\n`);
      writeFileSync(`${o.out}/${name}.md`, md);
    }
    process.stdout.write(md);
    log(`report: ${o.out}/report-${stamp}.md`);
    return passed ? 0 : 1;
  } finally {
    await world.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`soak: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
