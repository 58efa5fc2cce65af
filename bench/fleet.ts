// Fleet model: N execution environments started together against a 40 TPS upstream, on a simulated clock,
// each with the real ItemCache policy; upstream calls/s and throttled reads, with and without each measure.
import type { ItemRequest } from '../src/items.ts';
import { addSection, envInt, markdownTable, prng, type Result, series, writePlot } from './lib.ts';
import { type Outcome, type Policy, read, SimClock, SimEnv, SimUpstream } from './sim.ts';
import { lineChart } from './svg.ts';

const SUITE = 'fleet';
const QUOTA_TPS = 40;
const KEYS = 5;
const TTL_S = 300;
const INVOKE_EVERY_MS = 1000;
const LATENCY_MS = 20;

export const POLICIES: { name: string; policy: Policy }[] = [
  {
    name: 'pscache (jitter + batching + stale-if-error)',
    policy: { jitter: 'entry', batching: true, staleIfError: true },
  },
  { name: 'no jitter', policy: { jitter: 'none', batching: true, staleIfError: true } },
  { name: 'no batching', policy: { jitter: 'entry', batching: false, staleIfError: true } },
  { name: 'no stale-if-error', policy: { jitter: 'entry', batching: true, staleIfError: false } },
  { name: 'none of the three', policy: { jitter: 'none', batching: false, staleIfError: false } },
  {
    name: 'proposal: jitter per environment',
    policy: { jitter: 'environment', batching: true, staleIfError: true },
  },
];

export interface FleetRun {
  n: number;
  policy: string;
  /** Upstream calls (first attempts) and attempts (retries included) per simulated second. */
  calls: number[];
  attempts: number[];
  throttled: number[];
  /** Reads answered with an error (throttled after every attempt), and stale, per second they were answered. */
  errors: number[];
  stale: number[];
  reads: Record<Outcome, number>;
  seconds: number;
}

export async function simulateFleet(n: number, policy: Policy, seconds: number, seed = 1): Promise<FleetRun> {
  const clock = new SimClock();
  const random = prng(seed);
  const upstream = new SimUpstream(
    clock,
    {
      tps: { ssm: QUOTA_TPS, secretsmanager: Number.POSITIVE_INFINITY },
      latencyMs: LATENCY_MS,
      maxAttempts: 3,
    },
    random,
  );
  const keys: ItemRequest[] = Array.from({ length: KEYS }, (_, i) => ({
    service: 'ssm',
    name: `/app/config/key-${i}`,
    withDecryption: false,
  }));
  const reads: Record<Outcome, number> = { hit: 0, miss: 0, stale: 0, error: 0 };
  const errors: number[] = [];
  const stale: number[] = [];
  const count = (o: Outcome) => {
    reads[o]++;
    const second = Math.floor(clock.now / 1000);
    if (o === 'error') errors[second] = (errors[second] ?? 0) + 1;
    else if (o === 'stale') stale[second] = (stale[second] ?? 0) + 1;
  };

  const end = seconds * 1000;
  for (let i = 0; i < n; i++) {
    const env = new SimEnv(clock, upstream, policy, random, TTL_S * 1000);
    // Started together: each environment's first invocation within the first second (10 ms steps).
    const phase = Math.floor(random() * 100) * 10;
    const invoke = () => {
      for (const k of keys) {
        // A hit answers synchronously (as in the daemon): count it without a promise.
        let a: ReturnType<typeof env.cache.get>;
        try {
          a = env.cache.get(k);
        } catch {
          count('error');
          continue;
        }
        if (a instanceof Promise) void read(a).then(count);
        else if (a.source === 'hit') reads.hit++;
        else count(a.source);
      }
      if (clock.now + INVOKE_EVERY_MS < end) clock.after(INVOKE_EVERY_MS, invoke);
    };
    clock.at(phase, invoke);
  }
  // A few seconds more, so that reads still waiting on upstream at the end are counted.
  await clock.run(end + 5000);
  const pad = (xs: number[]) => Array.from({ length: seconds }, (_, s) => xs[s] ?? 0);
  return {
    n,
    policy: '',
    calls: pad(upstream.calls),
    attempts: pad(upstream.attempts),
    throttled: pad(upstream.throttled),
    errors: pad(errors),
    stale: pad(stale),
    reads,
    seconds,
  };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const maxOf = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), 0);

/** Bucket burst: the upstream starts with one second of calls in hand. */
const BURST = QUOTA_TPS;
/** The cold-start herd is over by then in every case modelled; refreshes start at 0.9 × 0.9 × TTL. */
const COLD_END_S = Math.floor(0.81 * TTL_S) - 10;

/** What the formulas in docs/benchmarks.md predict for a fleet of n (see "Fleet model: the formulas" there). */
export function predicted(n: number, p: Policy) {
  const c = p.batching ? Math.ceil(KEYS / 10) : KEYS;
  const I = INVOKE_EVERY_MS / 1000;
  const waiting = Math.max(0, n - BURST / c);
  return {
    /** Calls the fleet needs at once: ⌈K/b⌉ per environment. */
    coldCalls: n * c,
    /** Seconds until every environment has its values: the herd drains at Q/c environments a second. */
    drainS: (waiting * c) / QUOTA_TPS,
    /** Every environment still waiting fails its K reads at each invocation: a triangle of K·(N−B/c)·drain/2I. */
    coldErrors: (KEYS * waiting * waiting * c) / (2 * QUOTA_TPS * I),
    /**
     * Refresh demand a second. Each key refreshes at the first read after 0.9 × its TTL. Per-key jitter
     * spreads the fleet's refreshes over 0.9 × 0.2 × TTL plus the spread the cold start left (the drain time),
     * and separates an invocation's keys (so they are not batched: K calls each); without jitter the refreshes
     * replay the cold start's arrivals, c calls per environment over max(I, drain).
     */
    refreshRate:
      p.jitter === 'entry'
        ? (n * KEYS) / (0.18 * TTL_S + (waiting * c) / QUOTA_TPS)
        : p.jitter === 'environment'
          ? (n * c) / (0.18 * TTL_S + (waiting * c) / QUOTA_TPS)
          : (n * c) / Math.max(I, (waiting * c) / QUOTA_TPS),
  };
}

export async function benchFleet(): Promise<Result[]> {
  const seconds = envInt('BENCH_FLEET_SECONDS', 360);
  const sizes = (process.env['BENCH_FLEET_N'] ?? '10,100,1000').split(',').map(Number);
  const runs: FleetRun[] = [];
  for (const n of sizes) {
    for (const { name, policy } of POLICIES) {
      const r = await simulateFleet(n, policy, seconds);
      r.policy = name;
      runs.push(r);
    }
  }

  const rows = runs.map((r) => {
    const p = POLICIES.find((x) => x.name === r.policy)!.policy;
    const f = predicted(r.n, p);
    const coldErr = r.errors.slice(0, COLD_END_S);
    let last = -1;
    coldErr.forEach((e, s) => {
      if (e > 0) last = s;
    });
    const later = (xs: number[]) => sum(xs.slice(COLD_END_S));
    return [
      String(r.n),
      r.policy,
      String(sum(r.attempts)),
      String(f.coldCalls),
      String(maxOf(r.attempts.slice(0, COLD_END_S))),
      last < 0 ? '0' : String(last + 1),
      f.drainS.toFixed(1),
      String(sum(coldErr)),
      f.coldErrors.toFixed(0),
      String(maxOf(r.calls.slice(COLD_END_S))),
      f.refreshRate.toFixed(1),
      String(maxOf(r.attempts.slice(COLD_END_S))),
      String(later(r.errors)),
      String(later(r.stale)),
    ];
  });
  addSection(
    'Fleet model',
    [
      `${seconds} s of simulated time, deterministic seed. K = ${KEYS} SSM parameters read at once by every invocation, one invocation per environment per second (I = 1 s), the first within the first second; TTL ${TTL_S} s; upstream Q = ${QUOTA_TPS} TPS token bucket holding B = ${BURST} (1 s), ${LATENCY_MS} ms per call, 3 attempts with full-jitter backoff; c = ⌈K/10⌉ calls per environment with batching, K without. "Cold" = the first ${COLD_END_S} s (before any refresh), "refresh" = after. Formulas in docs/benchmarks.md.`,
      '',
      markdownTable(
        [
          'N',
          'policy',
          'upstream attempts',
          'cold demand N·c',
          'cold peak attempts/s',
          'cold drain s',
          'formula (N·c−B)/Q',
          'cold throttled reads',
          'formula K·c·(N−B/c)²/2QI',
          'refresh peak calls/s',
          'formula: refresh demand/s',
          'refresh peak attempts/s',
          'refresh throttled reads',
          'refresh stale reads',
        ],
        rows,
      ),
    ].join('\n'),
  );

  // The curve: upstream attempts per second over time for the largest fleet, one line per policy.
  const biggest = Math.max(...sizes);
  const big = runs.filter((r) => r.n === biggest);
  writePlot(
    'fleet-timeline.svg',
    lineChart({
      title: `Fleet of ${biggest} environments: upstream attempts per second (quota ${QUOTA_TPS} TPS)`,
      xLabel: 'simulated time (s)',
      yLabel: 'attempts / s (log)',
      yLog: true,
      yMin: 0.1,
      lines: [
        ...big.map((r) => ({
          name: r.policy.replace(' (jitter + batching + stale-if-error)', ''),
          points: r.attempts.map((v, s) => [s, v > 0 ? v : Number.NaN] as [number, number]),
        })),
        {
          name: `quota ${QUOTA_TPS} TPS`,
          points: [
            [0, QUOTA_TPS],
            [seconds, QUOTA_TPS],
          ],
          dashed: true,
        },
      ],
    }),
  );
  writePlot(
    'fleet-scaling.svg',
    lineChart({
      title: 'Throttled reads seen by functions vs fleet size',
      xLabel: 'environments started together (log)',
      yLabel: 'throttled reads (log; 0 not drawn)',
      xLog: true,
      yLog: true,
      yMin: 1,
      lines: [
        ...POLICIES.map(({ name }) => ({
          name: name.replace(' (jitter + batching + stale-if-error)', ''),
          dots: true,
          points: sizes.map((n) => {
            const e = runs.find((r) => r.n === n && r.policy === name)!.reads.error;
            return [n, e > 0 ? e : Number.NaN] as [number, number];
          }),
        })),
        ...[true, false].map((batching) => ({
          name: `formula, cold start, c = ${batching ? 1 : KEYS}`,
          dashed: true,
          points: Array.from({ length: 41 }, (_, k) => {
            const n = 10 ** (1 + k / 20);
            const e = predicted(n, { jitter: 'entry', batching, staleIfError: true }).coldErrors;
            return [n, e >= 1 ? e : Number.NaN] as [number, number];
          }),
        })),
      ],
    }),
  );

  const full = (n: number) => runs.find((r) => r.n === n && r.policy === POLICIES[0]!.name)!;
  const none = (n: number) => runs.find((r) => r.n === n && r.policy === POLICIES[4]!.name)!;
  return sizes.map((n) => ({
    suite: SUITE,
    figure: `fleet model, N=${n}: throttled reads seen by functions in ${seconds} s`,
    subject: series('pscache policy', 'count', [full(n).reads.error]),
    baseline: series('none of jitter, batching, stale-if-error', 'count', [none(n).reads.error]),
    note: `simulated, deterministic; of ${sum(Object.values(full(n).reads))} reads; upstream attempts ${sum(full(n).attempts)} vs ${sum(none(n).attempts)}, peak ${maxOf(full(n).attempts)}/s vs ${maxOf(none(n).attempts)}/s; every policy and column in "Fleet model"`,
  }));
}
