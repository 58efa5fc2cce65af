// Memory suite: RSS with 1000 cached 4 KB secrets vs idle (and vs the same traffic with the cache off), and
// RSS at checkpoints over a million requests for 10 000 rotating names with CACHE_SIZE 1000 (no leak).
import { Agent } from 'node:http';
import { startEmulator } from '../packages/emulator/index.ts';
import { daemonEnv, freePort, spawnPscache, TEST_CREDENTIALS, TEST_TOKEN } from '../test/helpers/daemon.ts';
import {
  envInt,
  max,
  median,
  metricValue,
  prng,
  type Result,
  rssMiB,
  series,
  sleep,
  slope,
  startLoadgen,
  timedGet,
  writePlot,
} from './lib.ts';
import { lineChart } from './svg.ts';

const SUITE = 'memory';
const SETTLE_MS = 500;
const SECRETS = 1000;
const SECRET_BYTES = 4096;
const TOKEN = { 'X-Aws-Parameters-Secrets-Token': TEST_TOKEN };

/** A 4096-character printable secret, different for each i (so nothing is shared or compressible by V8). */
function secretValue(i: number): string {
  const r = prng(i + 1);
  let s = '';
  while (s.length < SECRET_BYTES) s += String.fromCharCode(33 + Math.floor(r() * 94));
  return s;
}

/** GETs every path over `connections` keep-alive connections, `connections` at a time. */
async function fetchAll(port: number, paths: string[], connections: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (next < paths.length) {
          const path = paths[next++]!;
          const r = await timedGet(port, path, agent, TOKEN);
          if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body}`);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
}

async function metrics(port: number): Promise<string> {
  const agent = new Agent();
  try {
    return (await timedGet(port, '/metrics', agent, TOKEN)).body;
  } finally {
    agent.destroy();
  }
}

/** RSS with 1000 cached 4 KB secrets vs idle, and vs the same traffic with the cache off. */
export async function benchCachedSecrets(): Promise<Result[]> {
  const rounds = envInt('BENCH_MEMORY_ROUNDS', 3);
  const emu = await startEmulator({
    port: 0,
    store: {
      parameters: [],
      secrets: Array.from({ length: SECRETS }, (_, i) => ({
        name: `bench/mem/secret-${String(i).padStart(4, '0')}`,
        secretString: secretValue(i),
      })),
    },
    credentials: [TEST_CREDENTIALS],
  });
  const paths = Array.from(
    { length: SECRETS },
    (_, i) =>
      `/secretsmanager/get?secretId=${encodeURIComponent(`bench/mem/secret-${String(i).padStart(4, '0')}`)}`,
  );
  const idleOn: number[] = [];
  const afterOn: number[] = [];
  const idleOff: number[] = [];
  const afterOff: number[] = [];
  const cacheBytes: number[] = [];
  const entries: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const sides = [true, false];
      if (round % 2 === 1) sides.reverse();
      for (const cacheOn of sides) {
        const port = await freePort();
        const extra: Record<string, string> = cacheOn
          ? {}
          : { PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED: 'false' };
        const d = await spawnPscache(['serve'], daemonEnv(emu.url, port, extra));
        try {
          await sleep(SETTLE_MS);
          const idle = rssMiB(d.child.pid!);
          await fetchAll(port, paths, 16);
          await sleep(SETTLE_MS);
          const after = rssMiB(d.child.pid!);
          if (cacheOn) {
            const m = await metrics(port);
            cacheBytes.push(metricValue(m, 'pscache_cache_bytes') / 2 ** 20);
            entries.push(metricValue(m, 'pscache_cache_entries'));
            idleOn.push(idle);
            afterOn.push(after);
          } else {
            idleOff.push(idle);
            afterOff.push(after);
          }
        } finally {
          await d.stop();
        }
      }
    }
  } finally {
    await emu.close();
  }
  const diff = (a: number[], b: number[]) => a.map((x, i) => x - b[i]!);
  return [
    {
      suite: SUITE,
      figure: `RSS with ${SECRETS} cached 4 KB secrets, vs the same process idle`,
      subject: series('pscache, after 1000 distinct secret misses', 'MiB', afterOn),
      baseline: series('same process, idle (after /ping + 500 ms)', 'MiB', idleOn),
      paired: true,
      target: { kind: 'delta', max: 10 },
      note: `fetched once each over 16 keep-alive connections, then ${SETTLE_MS} ms settle; /metrics: pscache_cache_entries ${median(entries)}, pscache_cache_bytes ${median(cacheBytes).toFixed(2)} MiB; ${rounds} processes per side, interleaved`,
    },
    {
      suite: SUITE,
      figure: `RSS held by the cache: ${SECRETS} cached 4 KB secrets, cache on − cache off after the same requests`,
      subject: series('pscache, cache on − CACHE_ENABLED=false (same round)', 'MiB', diff(afterOn, afterOff)),
      baseline: null,
      target: { kind: 'value', max: 10 },
      note: `the same 1000 requests (and upstream answers) through a process with the cache off: what the traffic itself costs (V8 heap growth, JIT, sockets) cancels out; ${(SECRETS * SECRET_BYTES) / 2 ** 20} MiB of secret values, ${median(cacheBytes).toFixed(2)} MiB of cached bodies by pscache's own count`,
    },
    {
      suite: SUITE,
      figure: `reference: RSS growth from the same ${SECRETS} requests with the cache off`,
      subject: series('pscache, CACHE_ENABLED=false: after − idle', 'MiB', diff(afterOff, idleOff)),
      baseline: null,
      note: 'what serving 1000 secret misses costs a Node process whether or not it keeps them: the bare server of the start-up suite grows ~10 MiB over its first 1000 requests too',
    },
  ];
}

/** RSS at checkpoints over BENCH_CHURN_REQUESTS requests for rotating names with CACHE_SIZE 1000. */
export async function benchChurn(): Promise<Result[]> {
  const total = envInt('BENCH_CHURN_REQUESTS', 1_000_000);
  const checkpoints = envInt('BENCH_CHURN_CHECKPOINTS', 10);
  const warmup = envInt('BENCH_CHURN_WARMUP_CHECKPOINTS', 2, 0);
  const names = envInt('BENCH_CHURN_NAMES', 10_000);
  const perName = envInt('BENCH_CHURN_PER_NAME', 10);
  const cacheSize = 1000;
  const per = Math.ceil(total / checkpoints);
  const width = String(names - 1).length;
  const emu = await startEmulator({
    port: 0,
    store: {
      parameters: Array.from({ length: names }, (_, i) => ({
        name: `/bench/churn/p${String(i).padStart(width, '0')}`,
        value: `value-${i}-${'v'.repeat(64)}`,
      })),
      secrets: [],
    },
    credentials: [TEST_CREDENTIALS],
  });
  const port = await freePort();
  const d = await spawnPscache(
    ['serve'],
    daemonEnv(emu.url, port, { PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE: String(cacheSize) }),
  );
  const loadgen = startLoadgen();
  const rss: number[] = [];
  const done: number[] = [];
  let rps = 0;
  let lastMetrics = '';
  try {
    await sleep(SETTLE_MS);
    const idle = rssMiB(d.child.pid!);
    const started = performance.now();
    for (let c = 0; c < checkpoints; c++) {
      // RSS sampled every 250 ms while the segment runs; the checkpoint is their median, so one reading
      // caught in the middle of a heap resize does not make a trend.
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(rssMiB(d.child.pid!)), 250);
      const r = await loadgen.run({
        kind: 'rotate',
        port,
        headers: TOKEN,
        connections: 16,
        pathPrefix: '/systemsmanager/parameters/get?name=',
        namePrefix: '/bench/churn/p',
        names,
        perName,
        first: c * per,
        amount: per,
        pipelining: envInt('BENCH_CHURN_PIPELINING', 1),
      });
      clearInterval(sampler);
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`churn: ${r.non2xx} non-2xx, ${r.errors} errors`);
      samples.push(rssMiB(d.child.pid!));
      rss.push(median(samples));
      done.push((c + 1) * per);
    }
    rps = (checkpoints * per) / ((performance.now() - started) / 1000);
    lastMetrics = await metrics(port);
    const calls = emu.calls();
    const after = rss.slice(warmup);
    const level = after[0]!;
    // RSS read under load swings with the heap's state: compare the medians of the first and last thirds.
    const third = Math.max(1, Math.ceil(after.length / 3));
    const growth = median(after.slice(-third)) - median(after.slice(0, third));
    const perMillion = slope(done.slice(warmup), after) * 1e6;
    writePlot(
      'churn-rss.svg',
      lineChart({
        title: `RSS over ${(total / 1e6).toFixed(1)}M requests, ${names} rotating names, CACHE_SIZE ${cacheSize}`,
        xLabel: 'requests',
        yLabel: 'RSS (MiB)',
        lines: [
          {
            name: 'pscache RSS',
            points: [[0, idle], ...done.map((x, i) => [x, rss[i]!] as [number, number])],
            dots: true,
          },
        ],
      }),
    );
    const upstreamCalls = (calls['GetParameter'] ?? 0) + (calls['GetParameters'] ?? 0);
    return [
      {
        suite: SUITE,
        figure: `RSS growth after warm-up over ${(total / 1e6).toFixed(1)}M requests, ${names} rotating names, CACHE_SIZE ${cacheSize}`,
        subject: series(
          'pscache, median RSS of the last third of checkpoints − of the first third (after warm-up)',
          'MiB',
          [growth],
        ),
        baseline: null,
        target: { kind: 'value', max: 5 },
        note: `RSS at checkpoints every ${per} requests: ${rss.map((x) => x.toFixed(1)).join(', ')} MiB (idle ${idle.toFixed(1)}); the first ${warmup} are warm-up; highest after warm-up − first after warm-up ${(max(after) - level).toFixed(1)} MiB; least-squares slope after warm-up ${perMillion.toFixed(2)} MiB per million requests; each checkpoint the median of RSS read every 250 ms during its segment; the 16 requests in flight are for 16 different names, each name asked for ${perName} times in a row, the first a miss (16 keep-alive connections, autocannon in a forked process): ${(total / perName / names).toFixed(0)} passes over the names, each evicting the whole cache ${(names / cacheSize).toFixed(0)} times; upstream GetParameter ${calls['GetParameter'] ?? 0} + GetParameters ${calls['GetParameters'] ?? 0} = ${upstreamCalls} calls; /metrics at the end: entries ${metricValue(lastMetrics, 'pscache_cache_entries')}, evictions ${metricValue(lastMetrics, 'pscache_evictions_total')}, hits ${metricValue(lastMetrics, 'pscache_cache_hits_total')}, misses ${metricValue(lastMetrics, 'pscache_cache_misses_total')}; ${Math.round(rps)} req/s`,
      },
      {
        suite: SUITE,
        figure: 'reference: RSS at the first checkpoint after warm-up (the 1000-entry level, under load)',
        subject: series('pscache', 'MiB', [level]),
        baseline: null,
      },
    ];
  } finally {
    loadgen.close();
    await d.stop();
    await emu.close();
  }
}
