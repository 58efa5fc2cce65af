// Upstream-calls suite: 1000 concurrent requests for one cold key, 50 concurrent misses for distinct
// parameters, and an invocation stream (100/min, 5 values) in real time and on a simulated clock.
import { Agent } from 'node:http';
import { startEmulator } from '../packages/emulator/index.ts';
import type { ItemRequest } from '../src/items.ts';
import {
  daemonEnv,
  freePort,
  type RunningProcess,
  spawnPscache,
  TEST_CREDENTIALS,
  TEST_TOKEN,
} from '../test/helpers/daemon.ts';
import { envInt, prng, type Result, series, sleep, timedGet } from './lib.ts';
import { read, SimClock, SimEnv, SimUpstream } from './sim.ts';

const SUITE = 'upstream';
const TOKEN = { 'X-Aws-Parameters-Secrets-Token': TEST_TOKEN };
const sum = (o: Record<string, number>, ops: string[]) => ops.reduce((a, op) => a + (o[op] ?? 0), 0);

/** An agent holding `n` open keep-alive connections to `port` (as `n` concurrent invocations would). */
async function openConnections(port: number, n: number): Promise<Agent> {
  const agent = new Agent({ keepAlive: true, maxSockets: n, maxFreeSockets: n });
  await Promise.all(Array.from({ length: n }, () => timedGet(port, '/ping', agent, {})));
  return agent;
}

async function coalescing(): Promise<Result[]> {
  const rounds = envInt('BENCH_HERD_ROUNDS', 3);
  const herd = envInt('BENCH_HERD_REQUESTS', 1000);
  const emu = await startEmulator({
    port: 0,
    store: {
      parameters: [],
      secrets: Array.from({ length: rounds }, (_, i) => ({
        name: `bench/herd/${i}`,
        secretString: `herd-${i}`,
      })),
    },
    credentials: [TEST_CREDENTIALS],
  });
  // Slow enough upstream that every one of the requests arrives while the single call is in flight.
  emu.setFaults([
    { operation: 'GetSecretValue', latencyMs: 300 },
    { operation: 'BatchGetSecretValue', latencyMs: 300 },
  ]);
  const port = await freePort();
  const d = await spawnPscache(['serve'], daemonEnv(emu.url, port));
  const calls: number[] = [];
  const waited: number[] = [];
  let agent: Agent | undefined;
  try {
    agent = await openConnections(port, herd);
    for (let r = 0; r < rounds; r++) {
      emu.resetCalls();
      const path = `/secretsmanager/get?secretId=${encodeURIComponent(`bench/herd/${r}`)}`;
      const replies = await Promise.all(
        Array.from({ length: herd }, () => timedGet(port, path, agent!, TOKEN)),
      );
      const bad = replies.filter((x) => x.status !== 200);
      if (bad.length > 0)
        throw new Error(`${bad.length} of ${herd} failed: ${bad[0]!.status} ${bad[0]!.body}`);
      calls.push(sum(emu.calls(), ['GetSecretValue', 'BatchGetSecretValue']));
      waited.push(replies.filter((x) => x.headers['x-pscache'] === 'miss').length);
    }
  } finally {
    agent?.destroy();
    await d.stop();
    await emu.close();
  }
  return [
    {
      suite: SUITE,
      figure: `${herd} concurrent requests for one cold secret: upstream calls`,
      subject: series('pscache', 'count', calls),
      baseline: series(
        'one call per request (no coalescing)',
        'count',
        calls.map(() => herd),
      ),
      target: { kind: 'equal', value: 1 },
      note: `${herd} keep-alive connections opened first, then one GET on each at once; upstream ${300} ms; ${rounds} rounds, a new secret each; answers that waited on the call (X-Pscache: miss): ${waited.join(', ')} of ${herd}, all 200`,
    },
  ];
}

async function batching(): Promise<Result[]> {
  const rounds = envInt('BENCH_BATCH_ROUNDS', 5);
  const misses = 50;
  const name = (r: number, i: number) => `/bench/batch/r${r}/p${String(i).padStart(2, '0')}`;
  const emu = await startEmulator({
    port: 0,
    store: {
      parameters: Array.from({ length: rounds * misses }, (_, k) => ({
        name: name(Math.floor(k / misses), k % misses),
        value: `v${k}`,
      })),
      secrets: [],
    },
    credentials: [TEST_CREDENTIALS],
  });
  const daemons: RunningProcess[] = [];
  const agents: Agent[] = [];
  const batched: number[] = [];
  const singles: number[] = [];
  const unbatched: number[] = [];
  try {
    const start = async (extra: Record<string, string>) => {
      const port = await freePort();
      const d = await spawnPscache(['serve'], daemonEnv(emu.url, port, extra));
      daemons.push(d);
      const agent = await openConnections(port, misses);
      agents.push(agent);
      return { port, agent };
    };
    const on = await start({});
    const off = await start({ PARAMETERS_SECRETS_EXTENSION_BATCH_WINDOW_MILLIS: '0' });
    const burst = async (d: { port: number; agent: Agent }, r: number) => {
      emu.resetCalls();
      const replies = await Promise.all(
        Array.from({ length: misses }, (_, i) =>
          timedGet(
            d.port,
            `/systemsmanager/parameters/get?name=${encodeURIComponent(name(r, i))}`,
            d.agent,
            TOKEN,
          ),
        ),
      );
      if (replies.some((x) => x.status !== 200)) throw new Error('a batched miss failed');
      return emu.calls();
    };
    for (let r = 0; r < rounds; r++) {
      const sides = r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
      for (const side of sides) {
        const c = await burst(side === 'on' ? on : off, r);
        if (side === 'on') {
          batched.push(c['GetParameters'] ?? 0);
          singles.push(c['GetParameter'] ?? 0);
        } else {
          unbatched.push(sum(c, ['GetParameter', 'GetParameters']));
        }
      }
    }
  } finally {
    for (const a of agents) a.destroy();
    for (const d of daemons) await d.stop();
    await emu.close();
  }
  return [
    {
      suite: SUITE,
      figure: `${misses} concurrent misses for distinct parameters: GetParameters calls`,
      subject: series('pscache, batch window 2 ms', 'count', batched),
      baseline: series('BATCH_WINDOW_MILLIS=0 (GetParameter calls)', 'count', unbatched),
      paired: true,
      target: { kind: 'value', max: 5, worst: true },
      note: `${misses} keep-alive connections opened first (as test/beyond.test.ts does), then one GET each at once; ${rounds} rounds, fresh names each, the two daemons interleaved; GetParameter calls beside the batches: ${singles.join(', ')}`,
    },
  ];
}

/**
 * A throttling storm in real time: 60 concurrent reads of 30 cold parameters (two each), batching off,
 * against SSM's rate limit set to 5 calls a second. How many reads of a name share one call, and how many
 * calls the limit lets through, depend on the machine's timing, so this is measured here, not asserted in
 * `npm test` (test/storms.test.ts proves the rules with every order fixed on a fake clock).
 */
async function storm(): Promise<Result[]> {
  const rounds = envInt('BENCH_STORM_ROUNDS', 3);
  const names = 30;
  const limit = 5;
  const name = (r: number, i: number) => `/bench/storm/r${r}/p${String(i).padStart(2, '0')}`;
  const emu = await startEmulator({
    port: 0,
    store: {
      parameters: Array.from({ length: rounds * names }, (_, k) => ({
        name: name(Math.floor(k / names), k % names),
        value: `v${k}`,
      })),
      secrets: [],
    },
    credentials: [TEST_CREDENTIALS],
  });
  const port = await freePort();
  const d = await spawnPscache(
    ['serve'],
    daemonEnv(emu.url, port, { PARAMETERS_SECRETS_EXTENSION_BATCH_WINDOW_MILLIS: '0' }),
  );
  const attempts: number[] = [];
  const throttled: number[] = [];
  let agent: Agent | undefined;
  try {
    agent = await openConnections(port, 2 * names);
    for (let r = 0; r < rounds; r++) {
      emu.resetCalls();
      emu.setRateLimit({ ssmTps: limit });
      const paths = Array.from(
        { length: 2 * names },
        (_, i) => `/systemsmanager/parameters/get?name=${encodeURIComponent(name(r, i % names))}`,
      );
      const replies = await Promise.all(paths.map((p) => timedGet(port, p, agent!, TOKEN)));
      const bad = replies.filter((x) => x.status !== 200 && x.status !== 429);
      if (bad.length > 0) throw new Error(`storm: ${bad[0]!.status} ${bad[0]!.body}`);
      attempts.push(sum(emu.calls(), ['GetParameter', 'GetParameters']));
      throttled.push(replies.filter((x) => x.status === 429).length);
      emu.setRateLimit(undefined);
    }
  } finally {
    agent?.destroy();
    await d.stop();
    await emu.close();
  }
  return [
    {
      suite: SUITE,
      figure: `throttling storm, ${2 * names} concurrent reads of ${names} cold names at ${limit} calls/s: upstream attempts`,
      subject: series('pscache', 'count', attempts),
      baseline: series(
        'three attempts per read (no coalescing)',
        'count',
        attempts.map(() => 3 * 2 * names),
      ),
      target: { kind: 'value', max: 3 * names },
      note: `${2 * names} keep-alive connections opened first, then one GET each at once; ${rounds} rounds, fresh names each; reads answered 429: ${throttled.join(', ')} of ${2 * names}`,
    },
  ];
}

const STREAM_PARAMETERS = ['/app/prod/db-host', '/app/prod/feature-flags', '/app/prod/api-endpoint'];
const STREAM_SECRETS = ['app/prod/db-password', 'app/prod/api-key'];
const READ_OPS = ['GetParameter', 'GetParameters', 'GetSecretValue', 'BatchGetSecretValue'];

/**
 * The invocation stream in real time: every 600 ms (100 a minute) one "invocation" reads 5 values (3
 * parameters, 2 secrets) at once through one keep-alive client, against a daemon with the default TTLs (300 s).
 */
export async function benchStream(): Promise<Result[]> {
  const seconds = envInt('BENCH_STREAM_SECONDS', 60);
  const perMinute = 100;
  const every = 60_000 / perMinute;
  const invocations = Math.round((seconds * 1000) / every);
  const emu = await startEmulator({
    port: 0,
    store: {
      parameters: STREAM_PARAMETERS.map((name, i) => ({ name, value: `value-${i}` })),
      secrets: STREAM_SECRETS.map((name, i) => ({ name, secretString: `secret-${i}` })),
    },
    credentials: [TEST_CREDENTIALS],
  });
  emu.setFaults([{ operation: '*', latencyMs: 20 }]);
  const port = await freePort();
  const d = await spawnPscache(['serve'], daemonEnv(emu.url, port));
  const agent = new Agent({ keepAlive: true, maxSockets: 5 });
  const paths = [
    ...STREAM_PARAMETERS.map((n) => `/systemsmanager/parameters/get?name=${encodeURIComponent(n)}`),
    ...STREAM_SECRETS.map((n) => `/secretsmanager/get?secretId=${encodeURIComponent(n)}`),
  ];
  let reads = 0;
  let waited = 0;
  let lateMs = 0;
  let calls: Record<string, number> = {};
  try {
    emu.resetCalls();
    const t0 = performance.now();
    for (let k = 0; k < invocations; k++) {
      const due = t0 + k * every;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      else lateMs = Math.max(lateMs, -wait);
      const replies = await Promise.all(paths.map((p) => timedGet(port, p, agent, TOKEN)));
      for (const r of replies) {
        if (r.status !== 200) throw new Error(`stream: ${r.status} ${r.body}`);
        reads++;
        if (r.headers['x-pscache'] !== 'hit') waited++;
      }
    }
    calls = emu.calls();
  } finally {
    agent.destroy();
    await d.stop();
    await emu.close();
  }
  const upstream = sum(calls, READ_OPS);
  return [
    {
      suite: SUITE,
      figure: `invocation stream, ${seconds} s real time (${perMinute}/min × 5 values, TTL 300 s): upstream calls`,
      subject: series('pscache', 'count', [upstream]),
      baseline: series('no cache: one call per value read', 'count', [reads]),
      target: { kind: 'value', max: 5 },
      note: `${invocations} invocations, each reading 3 parameters and 2 secrets at once over one keep-alive client (upstream 20 ms); calls: ${READ_OPS.map((op) => `${op} ${calls[op] ?? 0}`).join(', ')}; reads that waited on upstream: ${waited} of ${reads}; the schedule slipped by at most ${lateMs.toFixed(0)} ms; ran beside the memory and fleet suites (it only counts calls)`,
    },
  ];
}

/**
 * The same stream for an hour on a simulated clock, through the real ItemCache policy (TTL 300 s ± 10%,
 * refresh-ahead), modelled batcher and an unthrottled 20 ms upstream.
 */
async function streamModel(): Promise<Result[]> {
  const minutes = envInt('BENCH_STREAM_MODEL_MINUTES', 60);
  const clock = new SimClock();
  const random = prng(7);
  const upstream = new SimUpstream(
    clock,
    {
      tps: { ssm: Number.POSITIVE_INFINITY, secretsmanager: Number.POSITIVE_INFINITY },
      latencyMs: 20,
      maxAttempts: 3,
    },
    random,
  );
  const env = new SimEnv(clock, upstream, { jitter: 'entry', batching: true, staleIfError: true }, random);
  const keys: ItemRequest[] = [
    ...STREAM_PARAMETERS.map((name): ItemRequest => ({ service: 'ssm', name, withDecryption: false })),
    ...STREAM_SECRETS.map((secretId): ItemRequest => ({ service: 'secretsmanager', secretId })),
  ];
  const end = minutes * 60_000;
  let reads = 0;
  let waited = 0;
  const invoke = () => {
    for (const k of keys) {
      reads++;
      const a = env.cache.get(k);
      if (a instanceof Promise) {
        waited++;
        void read(a);
      }
    }
    if (clock.now + 600 < end) clock.after(600, invoke);
  };
  clock.at(0, invoke);
  await clock.run(end + 1000);
  const total = upstream.attempts.reduce((a, b) => a + b, 0);
  const firstMinute = upstream.attempts.slice(0, 60).reduce((a, b) => a + b, 0);
  const ops = [...upstream.byOperation].map(([op, n]) => `${op} ${n}`).join(', ');
  return [
    {
      suite: SUITE,
      figure: `invocation stream, ${minutes} min simulated: upstream calls per minute after the first`,
      subject: series('pscache policy (ItemCache on a simulated clock)', 'count', [
        (total - firstMinute) / (minutes - 1),
      ]),
      baseline: series('no cache', 'count', [keys.length * 100]),
      note: `${total} calls in ${minutes} min (${firstMinute} in the first minute; ${ops}) vs ${reads} without a cache; reads that waited on upstream: ${waited} of ${reads} (refresh-ahead keeps every later read a hit); steady state ≈ 5 values × 60 / (0.9 × 300 s) = 1.11 calls/min: each key is refreshed at the first read after 90% of its jittered TTL (mean 0.9 × 300 s), alone (its jitter is its own, so the five do not batch)`,
    },
  ];
}

export async function benchUpstream(): Promise<Result[]> {
  return [...(await coalescing()), ...(await batching()), ...(await storm()), ...(await streamModel())];
}
