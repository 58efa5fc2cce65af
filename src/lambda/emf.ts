// CloudWatch Embedded Metric Format in Lambda: one JSON line on stdout, which CloudWatch Logs turns into
// metrics, with what happened since the last line (reads, hits, misses, upstream calls, stale answers,
// throttling, errors, read latency). Written at SHUTDOWN, and at an INVOKE when the interval has passed
// since the last line. Counts and the operator's dimensions only: never a name, a value or a token.
import type { ItemCache } from '../cache/index.ts';
import type { Metrics, ReadTotals } from '../metrics.ts';

export interface EmfOptions {
  namespace: string;
  /** Dimension name -> value, in order (default: FunctionName -> the function's name). */
  dimensions: ReadonlyArray<readonly [string, string]>;
  /** At most one line this often while invocations arrive; 0: only at SHUTDOWN. */
  intervalMs: number;
  write?: (line: string) => void;
  now?: () => number;
}

/** The metrics of each line, their units, in this order. The names are also the keys of the line. */
export const EMF_METRICS = [
  ['Reads', 'Count'],
  ['Hits', 'Count'],
  ['Misses', 'Count'],
  ['UpstreamCalls', 'Count'],
  ['StaleServed', 'Count'],
  ['Throttled', 'Count'],
  ['Errors', 'Count'],
  ['ReadLatencyAvg', 'Milliseconds'],
  ['ReadLatencyMax', 'Milliseconds'],
] as const;

type Snapshot = ReadTotals & { hits: number; misses: number; stale: number };

export class EmfReporter {
  private last: Snapshot;
  private lastAt: number;
  private readonly write: (line: string) => void;
  private readonly now: () => number;

  constructor(
    private readonly metrics: Metrics,
    private readonly cache: ItemCache,
    private readonly opts: EmfOptions,
  ) {
    this.write = opts.write ?? ((line) => process.stdout.write(line));
    this.now = opts.now ?? Date.now;
    this.last = this.snapshot();
    this.lastAt = this.now();
  }

  /** At an INVOKE: a line if the interval has passed since the last one (or since start). */
  tick(): boolean {
    if (this.opts.intervalMs <= 0 || this.now() - this.lastAt < this.opts.intervalMs) return false;
    this.flush();
    return true;
  }

  /** A line now, with what happened since the last one (SHUTDOWN). */
  flush(): void {
    const now = this.snapshot();
    const d = (k: keyof Snapshot) => now[k] - this.last[k];
    const reads = d('reads');
    const slowest = this.metrics.takeSlowestRead();
    const values: Record<string, number> = {
      Reads: reads,
      Hits: d('hits'),
      Misses: d('misses'),
      UpstreamCalls: d('upstreamAttempts'),
      StaleServed: d('stale'),
      Throttled: d('throttled'),
      Errors: d('errors'),
    };
    // Latency only when there were reads: a 0 would drag CloudWatch's averages down.
    if (reads > 0) {
      values['ReadLatencyAvg'] = round((d('seconds') / reads) * 1000);
      values['ReadLatencyMax'] = round(slowest * 1000);
    }
    this.last = now;
    this.lastAt = this.now();
    this.write(`${JSON.stringify(emfDocument(this.opts, values, this.lastAt))}\n`);
  }

  private snapshot(): Snapshot {
    const s = this.cache.stats;
    return { ...this.metrics.readTotals(), hits: s.hits, misses: s.misses, stale: s.stale };
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** One EMF document: the _aws metadata, the dimension values and a value for every metric it lists. */
export function emfDocument(
  opts: Pick<EmfOptions, 'namespace' | 'dimensions'>,
  values: Record<string, number>,
  timestamp: number,
): Record<string, unknown> {
  const units = new Map<string, string>(EMF_METRICS);
  return {
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: opts.namespace,
          Dimensions: [opts.dimensions.map(([name]) => name)],
          Metrics: Object.keys(values).map((Name) => ({ Name, Unit: units.get(Name) ?? 'None' })),
        },
      ],
    },
    ...Object.fromEntries(opts.dimensions),
    ...values,
  };
}
