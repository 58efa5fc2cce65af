// The cache policy around lru-cache: keys, per-service TTLs with jitter, item and byte limits, coalescing
// of concurrent misses (one upstream call per key at a time), refresh-ahead, refreshNow, and stale-if-error.
import { LRUCache } from 'lru-cache';
import { UpstreamError } from './aws/types.ts';
import type { Config, Service } from './config.ts';
import { cacheKey, type ItemRequest, type Loaded, type Loader, plainKey } from './items.ts';

export type Source = 'hit' | 'miss' | 'stale';

export interface Answer {
  /** The rendered response body (drop-in shape). */
  body: Buffer;
  source: Source;
  /** Time spent waiting on upstream for this answer (misses only). */
  upstreamMs?: number;
}

export interface GetOptions {
  /** refreshNow=true: bypass the entry, fetch, and replace it. */
  refresh?: boolean;
  /** ttl=SECONDS from the request, in ms: this entry's time to live (0 = neither served from nor stored in the cache). */
  ttlMs?: number;
}

interface Entry {
  body: Buffer;
  /** Date.now() until which the entry is fresh. */
  expiresAt: number;
  /** The (jittered) TTL it was stored with, for the refresh-ahead threshold. */
  ttlMs: number;
  /** Last time a refetch of this expired entry failed transiently; set while it is being served stale. */
  failedAt?: number;
  /** Last time a refresh-ahead of this entry failed: it is not tried again for a second. */
  refreshFailedAt?: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  stale: number;
  upstreamCalls: number;
  errors: number;
  evictions: number;
  refreshes: number;
}

/** Rough per-entry overhead of the Map node, key string and Entry object, so tiny values still count. */
const ENTRY_OVERHEAD = 64;
/** Entries read in the last tenth of their TTL are refreshed in the background. */
const REFRESH_AHEAD_FRACTION = 0.1;
/** While serving stale, upstream is retried at most this often per key. */
const STALE_RETRY_INTERVAL_MS = 1000;

const GONE = new Set([
  'ParameterNotFound',
  'ParameterVersionNotFound',
  'ResourceNotFoundException',
  'AccessDeniedException',
  'KMSAccessDeniedException',
  'DecryptionFailure',
]);

/** NotFound and AccessDenied take effect at once: they evict, and are never answered from a stale entry. */
const isGone = (e: unknown) => e instanceof UpstreamError && GONE.has(e.code);
/** Failures worth riding out on a stale value: throttling, 5xx, timeouts, connection errors, garbage. */
const isTransient = (e: unknown) => e instanceof UpstreamError && e.kind !== 'aws';

export interface CacheOptions {
  enabled: boolean;
  maxItems: number;
  maxBytes: number;
  ttlMs: Record<Service, number>;
  staleIfErrorMs: number;
  load: Loader;
  now?: () => number;
  /**
   * TTL multiplier, drawn once per process (and again on clear()); default uniform in [0.9, 1.1). Per
   * process, not per entry: environments started together then refresh at different times, while the
   * entries of one environment, fetched together, still expire together and refresh in one batch call
   * (the fleet model, docs/benchmarks.md: per-entry jitter tripled upstream calls at N = 1000).
   */
  jitter?: () => number;
  /** Background refresh failures (logged by the owner; never thrown at a caller). */
  onBackgroundError?: (e: unknown, r: ItemRequest) => void;
}

export function cacheOptionsFrom(config: Config, load: Loader): CacheOptions {
  return {
    enabled: config.cacheEnabled,
    maxItems: config.cacheSize,
    maxBytes: config.cacheMaxBytes,
    ttlMs: config.ttlMs,
    staleIfErrorMs: config.staleIfErrorMs,
    load,
  };
}

export class ItemCache {
  readonly stats: CacheStats = {
    hits: 0,
    misses: 0,
    stale: 0,
    upstreamCalls: 0,
    errors: 0,
    evictions: 0,
    refreshes: 0,
  };
  private readonly lru: LRUCache<string, Entry> | undefined;
  private readonly inflight = new Map<string, Promise<Answer>>();
  private readonly now: () => number;
  private readonly jitter: () => number;
  private jitterFactor: number;
  /** Bumped by clear(): a fetch started before a clear never lands in the cache after it (SnapStart). */
  private generation = 0;

  constructor(private readonly opts: CacheOptions) {
    this.now = opts.now ?? Date.now;
    this.jitter = opts.jitter ?? (() => 0.9 + Math.random() * 0.2);
    this.jitterFactor = this.jitter();
    if (opts.enabled && opts.maxItems > 0) {
      this.lru = new LRUCache<string, Entry>({
        max: opts.maxItems,
        maxSize: opts.maxBytes,
        // An item larger than the whole byte budget is simply not stored.
        maxEntrySize: opts.maxBytes,
        sizeCalculation: (e, k) => e.body.length + k.length * 2 + ENTRY_OVERHEAD,
        dispose: (_v, _k, reason) => {
          if (reason === 'evict') this.stats.evictions++;
        },
      });
    }
  }

  /** The TTL a request's answer would be stored with (0: not cached). */
  ttlFor(r: ItemRequest, o?: GetOptions): number {
    if (!this.lru) return 0;
    return o?.ttlMs ?? this.opts.ttlMs[r.service];
  }

  /** The entry for a request: under its own key, or the shared plain key of a String parameter. */
  private entry(r: ItemRequest): { e: Entry | undefined } {
    const e = this.lru!.get(cacheKey(r));
    if (e !== undefined) return { e };
    const plain = plainKey(r);
    return { e: plain === undefined ? undefined : this.lru!.get(plain) };
  }

  /** A fresh cached body (counted as a hit), else undefined. For batch and path routes. */
  lookup(r: ItemRequest): Buffer | undefined {
    if (this.ttlFor(r) <= 0) return undefined;
    const { e } = this.entry(r);
    if (e === undefined || e.expiresAt <= this.now()) return undefined;
    this.stats.hits++;
    return e.body;
  }

  /** Taken before a batch or path fetch and passed to store(): a clear() meanwhile (SnapStart) wins. */
  get epoch(): number {
    return this.generation;
  }

  /** Stores an item fetched by a batch or path route under its own single-item key. */
  store(r: ItemRequest, loaded: Loaded, epoch: number): void {
    this.put(r, loaded, this.ttlFor(r), epoch);
  }

  /**
   * A cached listing (path reads) under its own key: fresh from the cache, else loaded once for all
   * concurrent callers and stored with the service's TTL.
   */
  getCollection(key: string, service: Service, load: () => Promise<Buffer>): Answer | Promise<Answer> {
    const ttl = this.lru ? this.opts.ttlMs[service] : 0;
    const e = ttl > 0 ? this.lru!.get(key) : undefined;
    if (e !== undefined && e.expiresAt > this.now()) {
      this.stats.hits++;
      return { body: e.body, source: 'hit' };
    }
    this.stats.misses++;
    const run = async (): Promise<Answer> => {
      const started = performance.now();
      const generation = this.generation;
      const body = await load();
      this.putKey(key, { body }, ttl, generation);
      return { body, source: 'miss', upstreamMs: performance.now() - started };
    };
    return ttl > 0 ? this.coalesce(key, run) : run();
  }

  /** The answer for a request: fresh from the cache (synchronously), else from upstream. */
  get(r: ItemRequest, o?: GetOptions): Answer | Promise<Answer> {
    const ttl = this.ttlFor(r, o);
    if (ttl <= 0) {
      // Caching is off for this request: every one goes upstream, uncoalesced, so each sees a value
      // fetched after it arrived.
      this.stats.misses++;
      return this.fetch(r, 0);
    }
    if (o?.refresh) {
      this.stats.misses++;
      return this.coalesce(`${cacheKey(r)}\u0001refresh`, () => this.fetch(r, ttl, true));
    }
    const { e } = this.entry(r);
    const now = this.now();
    if (e !== undefined) {
      if (now < e.expiresAt) {
        this.stats.hits++;
        if (
          now >= e.expiresAt - e.ttlMs * REFRESH_AHEAD_FRACTION &&
          !this.inflight.has(cacheKey(r)) &&
          (e.refreshFailedAt === undefined || now - e.refreshFailedAt >= STALE_RETRY_INTERVAL_MS)
        ) {
          this.background(r, ttl, e);
        }
        return { body: e.body, source: 'hit' };
      }
      if (this.opts.staleIfErrorMs > 0 && now - e.expiresAt <= this.opts.staleIfErrorMs) {
        return this.staleOrFresh(r, ttl, e, now);
      }
    }
    this.stats.misses++;
    return this.coalesce(cacheKey(r), () => this.fetch(r, ttl, true));
  }

  /**
   * An expired entry still inside the stale-if-error window. The caller waits for one upstream attempt (not
   * the retries) and gets the old value if it fails transiently; for a second after such a failure the old
   * value is served at once, so upstream sees at most one attempt per second per key while it is failing.
   */
  private staleOrFresh(r: ItemRequest, ttl: number, e: Entry, now: number): Answer | Promise<Answer> {
    if (e.failedAt !== undefined && now - e.failedAt < STALE_RETRY_INTERVAL_MS) {
      this.stats.stale++;
      return { body: e.body, source: 'stale' };
    }
    this.stats.misses++;
    return this.coalesce(cacheKey(r), async () => {
      try {
        return await this.fetch(r, ttl, true, 1);
      } catch (err) {
        if (!isTransient(err)) throw err;
        e.failedAt = this.now();
        this.stats.stale++;
        return { body: e.body, source: 'stale' };
      }
    });
  }

  private coalesce(key: string, run: () => Promise<Answer>): Promise<Answer> {
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p: Promise<Answer> = run().finally(() => {
      // Only our own entry: clear() may have replaced it meanwhile.
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    });
    this.inflight.set(key, p);
    return p;
  }

  /** Refresh-ahead. A failure leaves the entry to expire normally; the next read after that tries again. */
  private background(r: ItemRequest, ttl: number, e: Entry): void {
    this.stats.refreshes++;
    this.coalesce(cacheKey(r), () => this.fetch(r, ttl, true)).catch((err: unknown) => {
      // Without a pause every read in the window would start another refresh: a storm against the quota.
      e.refreshFailedAt = this.now();
      this.opts.onBackgroundError?.(err, r);
    });
  }

  /** One load from upstream; with `store`, the answer replaces the entry (unless the cache was cleared meanwhile). */
  private async fetch(r: ItemRequest, ttl: number, store = false, attempts?: number): Promise<Answer> {
    const started = performance.now();
    const generation = this.generation;
    this.stats.upstreamCalls++;
    let loaded: Loaded;
    try {
      loaded = await this.opts.load(r, attempts === undefined ? undefined : { attempts });
    } catch (e) {
      // Errors are never cached; NotFound and AccessDenied also drop what was cached.
      this.stats.errors++;
      if (store && isGone(e)) this.evict(r);
      throw e;
    }
    const upstreamMs = performance.now() - started;
    if (store) this.put(r, loaded, ttl, generation);
    return { body: loaded.body, source: 'miss', upstreamMs };
  }

  private put(r: ItemRequest, loaded: Loaded, ttl: number, generation: number): void {
    const plain = loaded.plain ? plainKey(r) : undefined;
    // A String stored under the shared key must not leave an older own-key entry in front of it.
    if (plain !== undefined) this.lru?.delete(cacheKey(r));
    this.putKey(plain ?? cacheKey(r), loaded, ttl, generation);
  }

  private evict(r: ItemRequest): void {
    this.lru?.delete(cacheKey(r));
    const plain = plainKey(r);
    if (plain !== undefined) this.lru?.delete(plain);
  }

  private putKey(key: string, loaded: Loaded, ttl: number, generation: number): void {
    if (!this.lru || ttl <= 0 || generation !== this.generation) return;
    const ttlMs = Math.max(1, Math.round(ttl * this.jitterFactor));
    // Keep expired entries only as long as they may be served stale.
    this.lru.set(
      key,
      { body: loaded.body, expiresAt: this.now() + ttlMs, ttlMs },
      { ttl: ttlMs + this.opts.staleIfErrorMs },
    );
  }

  get entries(): number {
    return this.lru?.size ?? 0;
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  /** Drops every entry, and every fetch still in flight from landing (SnapStart's first INVOKE). */
  clear(): void {
    this.generation++;
    // Environments restored from one SnapStart snapshot must not share the factor drawn before it.
    this.jitterFactor = this.jitter();
    this.lru?.clear();
    // Later requests must not join a fetch started before the clear either: they get their own.
    this.inflight.clear();
  }
}
