// Counters and a latency histogram, rendered in the Prometheus text format for GET /metrics.
// Hand-written rather than prom-client: that costs ~5 MB RSS and ~15 ms of start-up (measured; docs/http-api.md, Metrics).
import type { CallObserver } from './aws/types.ts';
import type { ItemCache } from './cache/index.ts';

/** Upper bounds (seconds) of the request latency buckets: a hit is ~0.1 ms, a miss 10–500 ms. */
const BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** What a read is counted against: every answered request but these (health, metrics). */
const NOT_READS = ['ping', 'root', 'ready', 'metrics'];

/** Running totals of reads, for lines that report what happened since the last one (EMF). */
export interface ReadTotals {
  /** Requests for parameters or secrets, answered (any status). */
  reads: number;
  /** Of those, answered with a 4xx or 5xx. */
  errors: number;
  /** Seconds they took, summed. */
  seconds: number;
  /** Upstream attempts, and those answered with throttling. */
  upstreamAttempts: number;
  throttled: number;
}

export class Metrics {
  /** Answered requests by route, then status: two lookups on constant keys, no string built per request. */
  private readonly requests = new Map<string, Map<number, number>>();
  private readonly upstream = new Map<string, number>();
  private readonly counts = new Array<number>(BUCKETS.length + 1).fill(0);
  private sum = 0;
  private total = 0;
  private reads = 0;
  private readErrors = 0;
  private readSeconds = 0;
  /** Slowest read since takeSlowestRead() last looked. */
  private slowestRead = 0;
  private throttled = 0;

  /** Records one answered request. Labels are fixed strings from the route table, never names. */
  request(route: string, status: number, seconds: number): void {
    let byStatus = this.requests.get(route);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.requests.set(route, byStatus);
    }
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.total++;
    if (!NOT_READS.includes(route)) {
      this.reads++;
      if (status >= 400) this.readErrors++;
      this.readSeconds += seconds;
      if (seconds > this.slowestRead) this.slowestRead = seconds;
    }
  }

  /** An observer for the upstream clients: one count per attempt, by operation and outcome. */
  readonly observer: CallObserver = (e) => {
    const k = `${e.operation}\u0000${e.outcome}`;
    this.upstream.set(k, (this.upstream.get(k) ?? 0) + 1);
    if (e.outcome === 'throttled') this.throttled++;
  };

  /** Totals since start, for reports of what changed between two looks. */
  readTotals(): ReadTotals {
    return {
      reads: this.reads,
      errors: this.readErrors,
      seconds: this.readSeconds,
      upstreamAttempts: this.upstreamAttempts,
      throttled: this.throttled,
    };
  }

  /** The slowest read (seconds) since the last call, and starts over. */
  takeSlowestRead(): number {
    const s = this.slowestRead;
    this.slowestRead = 0;
    return s;
  }

  /** Requests answered, whatever the route and status (for the shutdown summary). */
  get answered(): number {
    return this.total;
  }

  /** Upstream attempts of every operation and outcome: pscache_upstream_calls_total summed. */
  get upstreamAttempts(): number {
    let n = 0;
    for (const v of this.upstream.values()) n += v;
    return n;
  }

  render(cache: ItemCache): string {
    const s = cache.stats;
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    metric('pscache_requests_total', 'counter', 'HTTP requests answered, by route and status.');
    for (const [route, byStatus] of this.requests) {
      for (const [status, v] of byStatus) {
        lines.push(`pscache_requests_total{route="${route}",status="${status}"} ${v}`);
      }
    }
    metric('pscache_cache_hits_total', 'counter', 'Requests answered from a fresh cache entry.');
    lines.push(`pscache_cache_hits_total ${s.hits}`);
    metric(
      'pscache_cache_misses_total',
      'counter',
      'Requests that had to wait on upstream (one that then got a stale value counts as stale).',
    );
    lines.push(`pscache_cache_misses_total ${s.misses}`);
    metric('pscache_stale_served_total', 'counter', 'Expired entries served while upstream was failing.');
    lines.push(`pscache_stale_served_total ${s.stale}`);
    metric('pscache_upstream_calls_total', 'counter', 'Upstream call attempts, by operation and outcome.');
    for (const [k, v] of this.upstream) {
      const [operation, outcome] = k.split('\u0000');
      lines.push(`pscache_upstream_calls_total{operation="${operation}",outcome="${outcome}"} ${v}`);
    }
    metric('pscache_cache_entries', 'gauge', 'Entries in the cache.');
    lines.push(`pscache_cache_entries ${cache.entries}`);
    metric('pscache_cache_bytes', 'gauge', 'Bytes the cache entries are counted as.');
    lines.push(`pscache_cache_bytes ${cache.bytes}`);
    const side = cache.overhead;
    metric(
      'pscache_cache_share_bytes',
      'gauge',
      'Bytes of refreshNow/ttl=0 answers shared for a second (at most MAX_CACHE_SIZE beside the cache).',
    );
    lines.push(`pscache_cache_share_bytes ${side.shareBytes}`);
    metric('pscache_cache_marks', 'gauge', 'Newer-wins marks kept while older loads run.');
    lines.push(`pscache_cache_marks ${side.marks}`);
    metric('pscache_loads_in_flight', 'gauge', 'Keys with an upstream load in flight.');
    lines.push(`pscache_loads_in_flight ${side.slots}`);
    metric(
      'pscache_evictions_total',
      'counter',
      'Entries evicted to stay within CACHE_SIZE or MAX_CACHE_SIZE.',
    );
    lines.push(`pscache_evictions_total ${s.evictions}`);
    metric('pscache_request_duration_seconds', 'histogram', 'Time from request to response.');
    let cumulative = 0;
    BUCKETS.forEach((le, i) => {
      cumulative += this.counts[i]!;
      lines.push(`pscache_request_duration_seconds_bucket{le="${le}"} ${cumulative}`);
    });
    lines.push(`pscache_request_duration_seconds_bucket{le="+Inf"} ${this.total}`);
    lines.push(`pscache_request_duration_seconds_sum ${this.sum}`);
    lines.push(`pscache_request_duration_seconds_count ${this.total}`);
    return `${lines.join('\n')}\n`;
  }
}
