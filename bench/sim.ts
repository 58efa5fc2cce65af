// A deterministic simulated clock, a rate-limited upstream and an execution environment whose cache is the
// real ItemCache (src/cache/index.ts) on that clock; the batcher and the client's retries are modelled here.

import { AwsCallError, type Service } from '../src/aws/types.ts';
import { type Answer, type CacheOptions, ItemCache } from '../src/cache/index.ts';
import type { Clock } from '../src/clock.ts';
import type { ItemRequest, Loaded } from '../src/items.ts';
import { type Loader, settle } from '../src/loader/index.ts';

/** Event-driven clock: events run in time order; between two instants every pending promise settles. */
export class SimClock {
  now = 0;
  private heap: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;

  /** Runs `fn` at `at` ms, rounded up to a whole ms (events in the same ms share one settling turn). */
  at(at: number, fn: () => void): void {
    const h = this.heap;
    h.push({ at: Math.ceil(at), seq: this.seq++, fn });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      const t = h[i]!;
      h[i] = h[p]!;
      h[p] = t;
      i = p;
    }
  }

  after(ms: number, fn: () => void): void {
    this.at(this.now + ms, fn);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /** This clock as the cache takes it. */
  asClock(): Clock {
    return {
      now: () => this.now,
      setTimeout: (fn, ms) => {
        let cancelled = false;
        this.after(ms, () => {
          if (!cancelled) fn();
        });
        return {
          cancel: () => {
            cancelled = true;
          },
        };
      },
    };
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }

  private pop(): { at: number; fn: () => void } {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(l, m)) m = l;
        if (r < h.length && this.less(r, m)) m = r;
        if (m === i) break;
        const t = h[i]!;
        h[i] = h[m]!;
        h[m] = t;
        i = m;
      }
    }
    return top;
  }

  /** Runs every event up to `until` (ms); promise continuations run before the clock moves on. */
  async run(until: number): Promise<void> {
    while (this.heap.length > 0 && this.heap[0]!.at <= until) {
      const t = this.heap[0]!.at;
      this.now = t;
      while (this.heap.length > 0 && this.heap[0]!.at === t) this.pop().fn();
      // Microtasks (the cache's promise chains) all run before a macrotask: settle them at this instant.
      await new Promise((r) => setImmediate(r));
    }
    this.now = until;
  }
}

export interface UpstreamModel {
  /** Calls a second each service family allows (token bucket, one second of burst), as the emulator does. */
  tps: Record<Service, number>;
  latencyMs: number;
  /** Attempts per call, as src/aws/client.ts: 3, backoff full jitter min(1500, 100·2^(n−1)) ms. */
  maxAttempts: number;
}

/** One shared instance: building an Error (its stack) per throttled call was a seventh of the run time. */
const THROTTLED = new AwsCallError('ThrottlingException', 'Rate exceeded', 'throttled', 400);

/** Upstream with per-family token buckets; counts attempts and throttles per simulated second. */
export class SimUpstream {
  private tokens: Record<Service, number>;
  private last: Record<Service, number> = { ssm: 0, secretsmanager: 0 };
  /** Calls (first attempts), attempts and throttled attempts per second of simulated time. */
  readonly calls: number[] = [];
  readonly attempts: number[] = [];
  readonly throttled: number[] = [];
  readonly byOperation = new Map<string, number>();

  constructor(
    private readonly clock: SimClock,
    private readonly model: UpstreamModel,
    private readonly random: () => number,
  ) {
    this.tokens = { ...model.tps };
  }

  private take(s: Service): boolean {
    const now = this.clock.now;
    const tps = this.model.tps[s];
    if (!Number.isFinite(tps)) return true;
    this.tokens[s] = Math.min(tps, this.tokens[s] + ((now - this.last[s]) / 1000) * tps);
    this.last[s] = now;
    if (this.tokens[s] < 1) return false;
    this.tokens[s] -= 1;
    return true;
  }

  /** One call (with retries on throttling); resolves after the modelled latency, or rejects throttled. */
  call(service: Service, operation: string, maxAttempts = this.model.maxAttempts): Promise<void> {
    // Callbacks on the clock rather than awaits: a retry storm makes a million attempts at N=1000.
    return new Promise<void>((resolve, reject) => {
      let attempt = 0;
      const tryOnce = () => {
        attempt++;
        const second = Math.floor(this.clock.now / 1000);
        if (attempt === 1) this.calls[second] = (this.calls[second] ?? 0) + 1;
        this.attempts[second] = (this.attempts[second] ?? 0) + 1;
        this.byOperation.set(operation, (this.byOperation.get(operation) ?? 0) + 1);
        const ok = this.take(service);
        if (!ok) this.throttled[second] = (this.throttled[second] ?? 0) + 1;
        this.clock.after(this.model.latencyMs, () => {
          if (ok) resolve();
          else if (attempt >= maxAttempts) reject(THROTTLED);
          else this.clock.after(this.random() * Math.min(1500, 100 * 2 ** (attempt - 1)), tryOnce);
        });
      };
      tryOnce();
    });
  }
}

export interface Policy {
  /**
   * ±10% TTL jitter: `entry` hands the cache a fresh draw each time it asks, `environment` one factor per
   * environment, `none` keeps every TTL exact. The cache asks once per process (and again on clear()), so
   * `entry` and `environment` now run the same policy (docs/benchmarks.md, "Fleet model").
   */
  jitter: 'entry' | 'environment' | 'none';
  /** Concurrent misses share GetParameters (10) / BatchGetSecretValue (20) calls after a 2 ms window. */
  batching: boolean;
  /** STALE_IF_ERROR=300 (else 0). */
  staleIfError: boolean;
}

const LIMIT: Record<Service, number> = { ssm: 10, secretsmanager: 20 };
const BATCH_WINDOW_MS = 2;
/**
 * Bodies are not `plain` (as a SecureString's): each entry then lives under its own key only, one lookup per
 * read instead of two, which halves the model's run time and changes nothing in the policy.
 */
const BODY: Loaded = { body: Buffer.from('{}') };
const SECRET_BODY: Loaded = BODY;

/** One execution environment: the real ItemCache on the simulated clock, over a modelled batcher. */
export class SimEnv {
  readonly cache: ItemCache;
  private readonly open = new Map<Service, { rs: ItemRequest[]; done: ((e?: unknown) => void)[] }>();

  constructor(
    private readonly clock: SimClock,
    private readonly upstream: SimUpstream,
    private readonly policy: Policy,
    random: () => number,
    ttlMs = 300_000,
  ) {
    const loader: Loader = {
      one: (r, ctx) => this.load(r, ctx?.attempts),
      many: (rs, ctx) => Promise.all(rs.map((r) => settle(this.load(r, ctx?.attempts)))),
      path: () => Promise.reject(new Error('the fleet model reads no paths')),
    };
    const opts: CacheOptions = {
      enabled: true,
      maxItems: 1000,
      maxBytes: 1 << 30,
      ttlMs: { ssm: ttlMs, secretsmanager: ttlMs },
      staleIfErrorMs: policy.staleIfError ? 300_000 : 0,
      loader,
      // Far beyond any modelled call: the deadline is a safety net, and its timers would crowd the heap.
      waitLimitMs: { ssm: 3_600_000, secretsmanager: 3_600_000 },
      clock: clock.asClock(),
      jitter: SimEnv.jitter(policy, random),
    };
    this.cache = new ItemCache(opts);
  }

  private static jitter(p: Policy, random: () => number): () => number {
    if (p.jitter === 'entry') return () => 0.9 + random() * 0.2;
    const factor = p.jitter === 'environment' ? 0.9 + random() * 0.2 : 1;
    return () => factor;
  }

  private async single(r: ItemRequest, attempts?: number): Promise<Loaded> {
    if (r.service === 'ssm') {
      await this.upstream.call('ssm', 'GetParameter', attempts);
      return BODY;
    }
    await this.upstream.call('secretsmanager', 'GetSecretValue', attempts);
    return SECRET_BODY;
  }

  /** As createLoader: stale-if-error refetches (attempts set) and unbatched policies go alone. */
  private load(r: ItemRequest, attempts?: number): Promise<Loaded> {
    if (!this.policy.batching || attempts !== undefined) return this.single(r, attempts);
    return new Promise<Loaded>((resolve, reject) => {
      const s = r.service;
      let g = this.open.get(s);
      if (!g) {
        const group = { rs: [] as ItemRequest[], done: [] as ((e?: unknown) => void)[] };
        g = group;
        this.open.set(s, group);
        this.clock.after(BATCH_WINDOW_MS, () => this.flush(s, group));
      }
      g.rs.push(r);
      g.done.push((e) => (e === undefined ? resolve(s === 'ssm' ? BODY : SECRET_BODY) : reject(e)));
      if (g.rs.length >= LIMIT[s]) this.flush(s, g);
    });
  }

  private flush(s: Service, g: { rs: ItemRequest[]; done: ((e?: unknown) => void)[] }): void {
    if (this.open.get(s) !== g) return;
    this.open.delete(s);
    const call =
      g.rs.length === 1
        ? this.single(g.rs[0]!)
        : this.upstream.call(s, s === 'ssm' ? 'GetParameters' : 'BatchGetSecretValue');
    call.then(
      () => {
        for (const d of g.done) d();
      },
      (e: unknown) => {
        for (const d of g.done) d(e);
      },
    );
  }
}

/** What a function saw for one read. */
export type Outcome = 'hit' | 'miss' | 'stale' | 'error';

/** What a function saw for a read that had to wait: the answer's source, or an error. */
export async function read(pending: Promise<Answer>): Promise<Outcome> {
  try {
    return (await pending).source;
  } catch {
    return 'error';
  }
}
