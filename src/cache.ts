// The cache policy around lru-cache: keys, per-service TTLs, item and byte limits, and coalescing of
// concurrent misses so that one key makes at most one upstream call at a time.
import { LRUCache } from 'lru-cache';
import type { Config, Service } from './config.ts';
import { cacheKey, type ItemRequest, type Loader } from './items.ts';

export type Source = 'hit' | 'miss';

export interface Answer {
  /** The rendered response body (drop-in shape). */
  body: Buffer;
  source: Source;
  /** Time spent waiting on upstream for this answer (misses only). */
  upstreamMs?: number;
}

interface Entry {
  body: Buffer;
  /** Date.now() after which the entry is no longer served. */
  expiresAt: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  upstreamCalls: number;
  errors: number;
  evictions: number;
}

/** Rough per-entry overhead of the Map node, key string and Entry object, so tiny values still count. */
const ENTRY_OVERHEAD = 64;

export interface CacheOptions {
  enabled: boolean;
  maxItems: number;
  maxBytes: number;
  ttlMs: Record<Service, number>;
  load: Loader;
  now?: () => number;
}

export function cacheOptionsFrom(config: Config, load: Loader): CacheOptions {
  return {
    enabled: config.cacheEnabled,
    maxItems: config.cacheSize,
    maxBytes: config.cacheMaxBytes,
    ttlMs: config.ttlMs,
    load,
  };
}

export class ItemCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, upstreamCalls: 0, errors: 0, evictions: 0 };
  private readonly lru: LRUCache<string, Entry> | undefined;
  private readonly inflight = new Map<string, Promise<Answer>>();
  private readonly now: () => number;

  constructor(private readonly opts: CacheOptions) {
    this.now = opts.now ?? Date.now;
    const anyTtl = opts.ttlMs.ssm > 0 || opts.ttlMs.secretsmanager > 0;
    if (opts.enabled && opts.maxItems > 0 && anyTtl) {
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

  /** True when answers for this service are cached at all. */
  caches(service: Service): boolean {
    return this.lru !== undefined && this.opts.ttlMs[service] > 0;
  }

  /**
   * A cached body when fresh (synchronous, for the hot path), else undefined. Expired entries are
   * left in place: a later stale-if-error policy may still want them.
   */
  peek(r: ItemRequest, key = cacheKey(r)): Buffer | undefined {
    if (!this.lru || !this.caches(r.service)) return undefined;
    const e = this.lru.get(key);
    if (e === undefined || e.expiresAt <= this.now()) return undefined;
    this.stats.hits++;
    return e.body;
  }

  /** The answer for a request: from the cache when fresh, else from upstream (one call per key at a time). */
  get(r: ItemRequest): Answer | Promise<Answer> {
    const key = cacheKey(r);
    const body = this.peek(r, key);
    if (body !== undefined) return { body, source: 'hit' };
    this.stats.misses++;
    if (!this.caches(r.service)) return this.fetch(r, undefined);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = this.fetch(r, key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetch(r: ItemRequest, key: string | undefined): Promise<Answer> {
    const started = performance.now();
    this.stats.upstreamCalls++;
    let body: Buffer;
    try {
      body = await this.opts.load(r);
    } catch (e) {
      // Errors are never cached: the next request asks upstream again.
      this.stats.errors++;
      throw e;
    }
    const upstreamMs = performance.now() - started;
    if (key !== undefined && this.lru) {
      this.lru.set(key, { body, expiresAt: this.now() + this.opts.ttlMs[r.service] });
    }
    return { body, source: 'miss', upstreamMs };
  }

  get entries(): number {
    return this.lru?.size ?? 0;
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  clear(): void {
    this.lru?.clear();
  }
}
