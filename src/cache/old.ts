// The cache core: one state machine per key, the same for every read (single item, each item of a batch,
// a path listing). Storage (LRU order, item and byte limits, expiry) is lru-cache; the states, the loads
// and who may store what are here. Nothing else decides what a read gets.
//
// The states of a key, what a read finds in each, and what moves it on:
//
//   state          what a read does                                             leaves by
//   -------------  -----------------------------------------------------------  ------------------------------------
//   empty          starts a load, waits for it (at most the wait limit: 504)     a load starts: loading
//   loading        joins the load if it started less than 10 s ago, else         stored: fresh; failed: empty
//                  starts a newer one (the older is then never stored)
//   fresh          answers from the entry (hit)                                  read in the last 10% of its TTL:
//                                                                                refreshing; TTL over: expired
//   refreshing     hit; one background load, which later misses join             stored: fresh; failed: fresh,
//                                                                                no new refresh for 1 s
//   expired        within STALE_IF_ERROR of expiry: a one-attempt load; the      stored: fresh; transient failure:
//                  stale value if it fails transiently (or if the load it        backing off; NotFound or
//                  joined does); past the window: as empty                       AccessDenied: evicted
//   stale-serving  a load is in flight and already failed an attempt: the stale  the load ends (as expired)
//                  value at once
//   backing off    a load failed transiently less than 1 s ago: the stale value  1 s later: expired
//                  at once, no new load (at most one attempt a second per key)
//   evicted        gone (NotFound, AccessDenied, past the stale window, LRU):    as empty
//                  as empty; never a stale value after NotFound or AccessDenied
//
// Every load carries a sequence number. A load's result is stored only if no newer load of that key has
// been asked for or stored ("newer wins"), so a refreshNow, which always starts a newer load, can never be
// undone by an older one; an older load still answers the reads that joined it. clear() (SnapStart's first
// INVOKE) raises a floor below which nothing is stored or joined.
//
// Why not lru-cache's fetch(): a forceRefresh joins a fetch already in flight (so refreshNow could not
// supersede an older load), a fetch in flight holds its slot with no deadline, and a rejection cannot tell
// a transient failure (serve stale) from NotFound (evict). Its storage and limits are used as they are.
import { LRUCache } from 'lru-cache';
import { ATTEMPT_CEILING_MS } from '../aws/client.ts';
import { AwsCallError, type Service } from '../aws/types.ts';
import { type Clock, systemClock } from '../clock.ts';
import {
  cacheKey,
  type ItemRequest,
  itemName,
  type Loaded,
  type ParameterRequest,
  type PathRequest,
  pathKey,
  plainKey,
} from '../items.ts';
import { type LoadContext, type Loader, PathTooLargeError } from '../loader/index.ts';

export type Source = 'hit' | 'miss' | 'stale';

export interface Answer {
  /** The rendered response body (drop-in shape). */
  readonly body: Buffer;
  readonly source: Source;
  /** Time spent waiting on upstream for this answer. */
  readonly upstreamMs?: number;
  /**
   * The server's own use: a hit answer is one object per stored entry, so what the server derives from it
   * once (its response headers) can be kept here. The cache never reads it.
   */
  memo?: unknown;
}

/** One item of a batch read: its answer, or the error a single read of it would have got. */
export type ItemResult = { ok: true; answer: Answer } | { ok: false; error: unknown };

export interface ReadOptions {
  /** refreshNow=true: never answered from the entry; a newer load replaces it. */
  refresh?: boolean;
  /** ttl=SECONDS from the request, in ms: caps this read's idea of fresh and the stored entry's life. */
  ttlMs?: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  stale: number;
  /** Loads started (one may cover many reads, and make several upstream attempts). */
  loads: number;
  errors: number;
  evictions: number;
}

/** Rough per-entry overhead of the Map node, key string and Entry object, so tiny values still count. */
const ENTRY_OVERHEAD = 64;
/** Entries read in the last tenth of their TTL are refreshed in the background. */
const REFRESH_AHEAD_FRACTION = 0.1;
/** After a load failed transiently, no new load of that key (but for refreshNow) for this long. */
const RETRY_PAUSE_MS = 1000;
/** No read joins a load older than the upstream attempt ceiling: it may be hung. */
export const JOIN_LIMIT_MS = ATTEMPT_CEILING_MS;
/** refreshNow and ttl=0 reads of one key share one upstream load a second. */
export const REFRESH_SHARE_MS = 1000;

const GONE = new Set([
  'ParameterNotFound',
  'ParameterVersionNotFound',
  'ResourceNotFoundException',
  'AccessDeniedException',
  'KMSAccessDeniedException',
  'DecryptionFailure',
]);

/** NotFound and AccessDenied take effect at once: they evict, and are never answered from a stale entry. */
const isGone = (e: unknown) => e instanceof AwsCallError && GONE.has(e.code);
/** Failures worth riding out on a stale value: throttling, 5xx, timeouts, connection errors, garbage. */
const isTransient = (e: unknown) => e instanceof AwsCallError && e.kind !== 'aws';

interface Entry {
  /** The rendered body; undefined when the cached outcome is an error (a path too large). */
  body: Buffer | undefined;
  error: Error | undefined;
  /** Clock time until which the entry is fresh (it was stored at expiresAt − ttlMs). */
  expiresAt: number;
  /** The (jittered) TTL it was stored with, for the refresh-ahead threshold. */
  ttlMs: number;
  /** Sequence number of the load that stored it. */
  seq: number;
  /** Backing off: no new load of this key before this clock time (after a failed load). */
  pausedUntil: number;
  /** The answer every hit on this entry gets: made once when stored, so a hit allocates nothing. */
  hit: Answer | undefined;
}

/** The outcome of a refreshNow (or ttl=0) load, shared by such reads for REFRESH_SHARE_MS after it started. */
interface Recent {
  startedAt: number;
  /** The load's sequence number: an entry stored by a newer load is answered instead. */
  seq: number;
  body: Buffer | undefined;
  error: unknown;
}

interface LoadResult {
  loaded: Loaded;
  /** Items of a path listing, stored under their own keys too. */
  items?: Array<{ request: ParameterRequest; loaded: Loaded }>;
}

interface Flight {
  seq: number;
  startedAt: number;
  /** Settles after the result is stored (or not): a read answered from it finds it in the cache after. */
  done: Promise<LoadResult>;
  /** An attempt failed and the load retries: stale-eligible reads stop waiting. */
  retrying: boolean;
  onRetry: Array<() => void>;
  waiters: number;
  abort: AbortController | undefined;
  /** Started by refreshNow or ttl=0: later such reads within REFRESH_SHARE_MS join it. */
  refresh: boolean;
  /** The TTL its result is stored with: the shortest asked for by the reads that share it. */
  ttlMs: number;
}

interface Slot {
  /** The newest load: the only one a read may join. */
  current: Flight | undefined;
  /** Sequence number of the newest load asked for. */
  asked: number;
  /** Loads of this key still running (superseded ones included). */
  running: number;
}

/** A key as the state machine sees it: how to find, load, store and evict it. */
interface Target {
  key: string;
  service: Service;
  /** For logs only. */
  name: string;
  /** The item it stands for (undefined for a path listing). */
  request: ItemRequest | undefined;
  lookup(): Entry | undefined;
  load(ctx: LoadContext): Promise<LoadResult>;
  store(result: LoadResult, ttlMs: number, seq: number): void;
  /** Drops the entry; with `gone`, leaves a tombstone numbered `gone` in its place. */
  evict(gone?: number): void;
}

type Mode = 'read' | 'refresh' | 'uncached';

export interface CacheOptions {
  enabled: boolean;
  maxItems: number;
  maxBytes: number;
  ttlMs: Record<Service, number>;
  staleIfErrorMs: number;
  loader: Loader;
  /** Longest a read waits for upstream before it is answered 504 (per service). */
  waitLimitMs: Record<Service, number>;
  clock?: Clock;
  /**
   * TTL multiplier, drawn once per process (and again on clear()); default uniform in [0.9, 1.1). Per
   * process, not per entry: environments started together then refresh at different times, while the
   * entries of one environment, fetched together, still expire together and refresh in one batch call
   * (the fleet model in the benchmarks: per-entry jitter tripled upstream calls at N = 1000).
   */
  jitter?: () => number;
  /** Background refresh failures (logged by the owner; never thrown at a caller). */
  onBackgroundError?: (e: unknown, name: string) => void;
}

/** A load getMany must start, gathered so that they go upstream together. */
interface Pending {
  t: Target;
  stale: boolean;
  fill: (f: Flight) => void;
}

export class ItemCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, stale: 0, loads: 0, errors: 0, evictions: 0 };
  private readonly lru: LRUCache<string, Entry> | undefined;
  private readonly slots = new Map<string, Slot>();
  /** Outcomes of recent refresh loads, by key (bounded; each lives REFRESH_SHARE_MS). */
  private readonly recent: LRUCache<string, Recent>;
  /** Keys found gone, by the number of the load that found it: older loads may not store there. */
  private readonly tombs: LRUCache<string, number>;
  private readonly clock: Clock;
  private readonly jitter: () => number;
  private jitterFactor: number;
  private seq = 0;
  /** Loads numbered at or below this were started before the last clear(): never stored, never joined. */
  private floor = 0;
  /** Set between the SnapStart snapshot and the first INVOKE: reads bypass the cache (see restoreWindow). */
  private bypass = false;

  constructor(private readonly opts: CacheOptions) {
    this.clock = opts.clock ?? systemClock;
    this.jitter = opts.jitter ?? (() => 0.9 + Math.random() * 0.2);
    this.jitterFactor = this.jitter();
    const perf = { now: () => this.clock.now() };
    this.recent = new LRUCache<string, Recent>({ max: 1000, ttl: REFRESH_SHARE_MS, perf });
    // As long as a load started before the deletion may still be in flight.
    const tombTtl = Math.max(opts.waitLimitMs.ssm, opts.waitLimitMs.secretsmanager);
    this.tombs = new LRUCache<string, number>({ max: Math.max(1000, opts.maxItems), ttl: tombTtl, perf });
    if (opts.enabled && opts.maxItems > 0) {
      this.lru = new LRUCache<string, Entry>({
        max: opts.maxItems,
        maxSize: opts.maxBytes,
        // An item larger than the whole byte budget is simply not stored.
        maxEntrySize: opts.maxBytes,
        sizeCalculation: (e, k) => (e.body?.length ?? 256) + k.length * 2 + ENTRY_OVERHEAD,
        dispose: (_v, _k, reason) => {
          if (reason === 'evict') this.stats.evictions++;
        },
        perf,
      });
    }
  }

  /** One item. A fresh hit answers synchronously. */
  get(r: ItemRequest, o?: ReadOptions): Answer | Promise<Answer> {
    // The hot path: a plain read of a fresh entry that needs no refresh is answered here, with no
    // allocation. Everything else goes through the state machine below.
    if (o === undefined && !this.bypass && this.lru !== undefined && this.opts.ttlMs[r.service] > 0) {
      const key = cacheKey(r);
      let e = this.lru.get(key);
      if (e === undefined && r.service === 'ssm') e = this.lru.get(plainKey(r)!);
      if (e?.hit !== undefined) {
        const now = this.clock.now();
        if (now < e.expiresAt - e.ttlMs * REFRESH_AHEAD_FRACTION) {
          this.stats.hits++;
          return e.hit;
        }
      }
    }
    return this.read(this.itemTarget(r), this.modeOf(r.service, o), this.ttlFor(r.service, o), o?.ttlMs);
  }

  /**
   * Several items (a batch route, prefetch). Each goes through the same states as a single read; the loads
   * they need that join none in flight go upstream together (GetParameters / BatchGetSecretValue).
   */
  getMany(rs: readonly ItemRequest[]): Promise<ItemResult[]> {
    const pending: Pending[] = [];
    const off: Array<{ r: ItemRequest; resolve: (x: ItemResult) => void }> = [];
    const results = rs.map((r) => {
      if (this.modeOf(r.service, undefined) === 'uncached') {
        // The cache is off for it (or SnapStart's window): loaded together all the same, kept nowhere.
        return new Promise<ItemResult>((resolve) => off.push({ r, resolve }));
      }
      const t = this.itemTarget(r);
      return settled(() =>
        this.read(t, 'read', this.ttlFor(r.service), undefined, (stale) => {
          const flight = new Promise<Flight>((fill) => pending.push({ t, stale, fill }));
          return flight;
        }),
      );
    });
    if (pending.length > 0) this.startTogether(pending);
    if (off.length > 0) this.loadTogetherUncached(off, this.uncachedContext());
    return Promise.all(results);
  }

  /** A path listing, cached under its path, recursive flag and decryption flag like an item. */
  getPath(p: PathRequest): Answer | Promise<Answer> {
    return this.read(this.pathTarget(p), this.modeOf('ssm', undefined), this.ttlFor('ssm'));
  }

  /**
   * SnapStart: from the extension's first event/next until the first INVOKE the process may have been
   * restored from a snapshot. Reads then neither read nor fill the cache and sign with credentials
   * fetched after they arrived. clear() ends the window.
   */
  restoreWindow(): void {
    this.bypass = true;
  }

  /** Drops every entry, and every load still in flight from landing or being joined (SnapStart's first INVOKE). */
  clear(): void {
    this.floor = this.seq;
    this.bypass = false;
    // Environments restored from one SnapStart snapshot must not share the factor drawn before it.
    this.jitterFactor = this.jitter();
    this.lru?.clear();
    this.recent.clear();
    this.tombs.clear();
  }

  get overhead() {
    return { shares: 0, shareBytes: 0, marks: 0, markBytes: 0, slots: 0 };
  }
  get entries(): number {
    return this.lru?.size ?? 0;
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  /** The TTL a read works with (0: the cache is off for it). */
  private ttlFor(service: Service, o?: ReadOptions): number {
    if (!this.lru) return 0;
    const ttl = this.opts.ttlMs[service];
    return o?.ttlMs === undefined ? ttl : Math.min(ttl, o.ttlMs);
  }

  /** In SnapStart's window an uncached load signs with credentials fetched after it was asked for. */
  private uncachedContext(): LoadContext {
    return this.bypass ? { credentialsSince: Date.now() } : {};
  }

  private modeOf(service: Service, o: ReadOptions | undefined): Mode {
    // SnapStart's window, the cache off, or this service's TTL 0: nothing read from or kept in the cache.
    if (this.bypass || !this.lru || this.opts.ttlMs[service] <= 0) return 'uncached';
    // ttl=0 asks for a value fetched now, like refreshNow, and keeps nothing.
    if (o?.refresh || o?.ttlMs === 0) return 'refresh';
    return 'read';
  }

  /**
   * The state machine for one read. `begin` starts the load when one must start (getMany gathers them
   * into one batch call); its argument says whether the read holds a stale value to fall back on.
   */
  private read(
    t: Target,
    mode: Mode,
    ttl: number,
    readTtl?: number,
    begin?: (stale: boolean) => Promise<Flight>,
  ): Answer | Promise<Answer> {
    if (mode === 'uncached') return this.uncached(t, this.uncachedContext());
    const now = this.clock.now();
    const slot = this.slots.get(t.key);
    const current =
      slot?.current !== undefined && this.joinable(slot.current, now) ? slot.current : undefined;
    if (mode === 'refresh') return this.refresh(t, current, ttl, now);
    const e = t.lookup();
    if (e !== undefined) {
      // A read's own ttl caps what it takes for fresh.
      if (now < e.expiresAt && (readTtl === undefined || now < e.expiresAt - e.ttlMs + readTtl)) {
        this.stats.hits++;
        if (
          current === undefined &&
          now >= e.expiresAt - e.ttlMs * REFRESH_AHEAD_FRACTION &&
          now >= e.pausedUntil
        ) {
          this.refreshAhead(t, ttl);
        }
        if (e.error) throw e.error;
        return e.hit!;
      }
      if (e.body && this.opts.staleIfErrorMs > 0 && now - e.expiresAt <= this.opts.staleIfErrorMs) {
        return this.staleOrLoad(t, e, current, ttl, now, begin);
      }
    }
    this.stats.misses++;
    if (current) {
      current.ttlMs = Math.min(current.ttlMs, ttl);
      return this.wait(t, current, now);
    }
    if (begin) return begin(false).then((f) => this.wait(t, f, now));
    return this.wait(t, this.start(t, ttl, {}), now);
  }

  /** refreshNow and ttl=0: never from the entry; one upstream load a second per key, shared. */
  private refresh(
    t: Target,
    current: Flight | undefined,
    ttl: number,
    now: number,
  ): Answer | Promise<Answer> {
    this.stats.misses++;
    if (current?.refresh && now - current.startedAt < REFRESH_SHARE_MS) {
      // A refreshNow sharing a ttl=0 load wants its answer kept.
      current.ttlMs = Math.max(current.ttlMs, ttl);
      return this.wait(t, current, now);
    }
    const recent = this.recent.get(t.key);
    if (recent !== undefined && now - recent.startedAt < REFRESH_SHARE_MS) {
      const e = t.lookup();
      if (e?.hit !== undefined && e.seq > recent.seq) return e.hit;
      if (recent.body === undefined) throw recent.error;
      return { body: recent.body, source: 'hit' };
    }
    const f = this.start(t, ttl, { refresh: true });
    const remember = (r: Recent) => {
      // An older refresh landing after a newer one must not replace what the newer one answered.
      if (r.seq <= this.floor) return; // from before a clear(): shared with no one
      const current = this.recent.get(t.key);
      if (current === undefined || current.startedAt <= r.startedAt) this.recent.set(t.key, r);
    };
    f.done.then(
      (r) => remember({ startedAt: f.startedAt, seq: f.seq, body: r.loaded.body, error: undefined }),
      (error: unknown) => remember({ startedAt: f.startedAt, seq: f.seq, body: undefined, error }),
    );
    return this.wait(t, f, now);
  }

  /** An expired entry inside the stale window: stale-serving, backing off, or a one-attempt load. */
  private staleOrLoad(
    t: Target,
    e: Entry,
    current: Flight | undefined,
    ttl: number,
    now: number,
    begin: ((stale: boolean) => Promise<Flight>) | undefined,
  ): Answer | Promise<Answer> {
    const stale = e.body!;
    if (current?.retrying || (current === undefined && now < e.pausedUntil)) {
      this.stats.stale++;
      return { body: stale, source: 'stale' };
    }
    this.stats.misses++;
    if (current) return this.wait(t, current, now, stale);
    if (begin) return begin(true).then((f) => this.wait(t, f, now, stale));
    return this.wait(t, this.start(t, ttl, { attempts: 1 }), now, stale);
  }

  private refreshAhead(t: Target, ttl: number): void {
    const f = this.start(t, ttl, {});
    f.done.catch((err: unknown) => this.opts.onBackgroundError?.(err, t.name));
  }

  /** A read that neither reads nor fills the cache: the cache is off for it, or SnapStart's window. */
  private uncached(t: Target, ctx: LoadContext): Promise<Answer> {
    this.stats.misses++;
    this.stats.loads++;
    const started = this.clock.now();
    return this.limit(t.load(ctx), t.service).then(
      (r) => ({ body: r.loaded.body, source: 'miss', upstreamMs: this.clock.now() - started }),
      (e: unknown) => {
        this.stats.errors++;
        throw e;
      },
    );
  }

  /** getMany's items of a service whose cache is off: one `many` call, nothing kept. */
  private loadTogetherUncached(
    items: Array<{ r: ItemRequest; resolve: (x: ItemResult) => void }>,
    ctx: LoadContext,
  ): void {
    const started = this.clock.now();
    this.stats.misses += items.length;
    this.stats.loads += items.length;
    const service = items[0]!.r.service;
    this.limit(
      this.opts.loader.many(
        items.map((x) => x.r),
        ctx,
      ),
      service,
    ).then(
      (outcomes) =>
        items.forEach((x, i) => {
          const o = outcomes[i]!;
          if (!o.ok) this.stats.errors++;
          x.resolve(
            o.ok
              ? {
                  ok: true,
                  answer: { body: o.loaded.body, source: 'miss', upstreamMs: this.clock.now() - started },
                }
              : { ok: false, error: o.error },
          );
        }),
      (error: unknown) => {
        this.stats.errors += items.length;
        for (const x of items) x.resolve({ ok: false, error });
      },
    );
  }

  private joinable(f: Flight, now: number): boolean {
    return f.seq > this.floor && now - f.startedAt < JOIN_LIMIT_MS;
  }

  /** Opens a load of `t` that supersedes whatever is in flight for it. */
  private open(t: Target, ttl: number, refresh: boolean): Flight {
    let slot = this.slots.get(t.key);
    if (!slot) {
      slot = { current: undefined, asked: 0, running: 0 };
      this.slots.set(t.key, slot);
    }
    const superseded = slot.current;
    const f: Flight = {
      seq: ++this.seq,
      startedAt: this.clock.now(),
      done: NEVER,
      retrying: false,
      onRetry: [],
      waiters: 0,
      abort: undefined,
      refresh,
      ttlMs: ttl,
    };
    slot.current = f;
    slot.asked = f.seq;
    slot.running++;
    this.stats.loads++;
    if (superseded && superseded.waiters === 0) superseded.abort?.abort();
    return f;
  }

  /** Marks `f` as retrying after a failed attempt: reads holding a stale value stop waiting for it. */
  private retrying(f: Flight): void {
    if (f.retrying) return;
    f.retrying = true;
    for (const fn of f.onRetry.splice(0)) fn();
  }

  private start(t: Target, ttl: number, how: { refresh?: boolean; attempts?: number }): Flight {
    const f = this.open(t, ttl, how.refresh === true);
    f.abort = new AbortController();
    const ctx: LoadContext = { signal: f.abort.signal, onRetry: () => this.retrying(f) };
    if (how.attempts !== undefined) ctx.attempts = how.attempts;
    this.attach(t, f, t.load(ctx));
    return f;
  }

  /** getMany: the loads its items need, made as `many` calls (batched by the loader). */
  private startTogether(pending: Pending[]): void {
    // Stale-eligible items take one attempt (their readers hold a value); the others the full retries.
    for (const stale of [true, false]) {
      const part = pending.filter((p) => p.stale === stale);
      if (part.length === 0) continue;
      const flights = part.map((p) => this.open(p.t, this.ttlFor(p.t.service), false));
      const ctx: LoadContext = {
        onRetry: () => {
          for (const f of flights) this.retrying(f);
        },
      };
      if (stale) ctx.attempts = 1;
      const outcomes = this.opts.loader.many(
        part.map((p) => p.t.request!),
        ctx,
      );
      part.forEach((p, k) => {
        const f = flights[k]!;
        const one = outcomes.then((o): LoadResult => {
          const x = o[k]!;
          if (x.ok) return { loaded: x.loaded };
          throw x.error;
        });
        this.attach(p.t, f, one);
        p.fill(f);
      });
    }
  }

  /** Stores the load's result if it is still the newest, evicts on NotFound/AccessDenied, and settles `done`. */
  private attach(t: Target, f: Flight, load: Promise<LoadResult>): void {
    /** Whether `f` is still the newest load asked for (and started after the last clear); then ends it. */
    const finish = (): boolean => {
      const slot = this.slots.get(t.key)!;
      const newest = f.seq > this.floor && f.seq >= slot.asked;
      slot.running--;
      if (slot.current === f) slot.current = undefined;
      if (slot.running === 0) this.slots.delete(t.key);
      return newest;
    };
    f.done = load.then(
      (r) => {
        const newest = finish();
        if (newest && f.ttlMs > 0) {
          t.store(r, f.ttlMs, f.seq);
        } else if (f.seq > this.floor) {
          // Not stored (a newer load is on its way, or a ttl=0 read keeps nothing): an entry older than
          // this answer is known outdated and must not be served, or a refreshNow's answer would be undone.
          const e = t.lookup();
          if (e !== undefined && e.seq < f.seq) t.evict();
        }
        return r;
      },
      (err: unknown) => {
        const newest = finish();
        this.stats.errors++;
        if (err instanceof PathTooLargeError) {
          // Too large is an answer too: cached for the TTL, so repeated reads do not page again.
          if (newest) this.put(t.key, undefined, err, f.ttlMs, f.seq);
        } else if (isGone(err)) {
          t.evict(f.seq);
          // Nor may a refresh of the last second share a value from before it: it shares the news instead.
          const recent = this.recent.get(t.key);
          if (recent !== undefined && recent.seq < f.seq) {
            this.recent.set(t.key, { startedAt: recent.startedAt, seq: f.seq, body: undefined, error: err });
          }
        } else if (isTransient(err)) {
          const e = t.lookup();
          if (e) e.pausedUntil = this.clock.now() + RETRY_PAUSE_MS;
        }
        throw err;
      },
    );
    // Nobody may be waiting (refresh-ahead): the failure is handled above.
    f.done.catch(() => {});
  }

  /**
   * Waits for a load, at most the wait limit (then 504). With `stale`, a failed attempt of the load, its
   * transient failure, or the wait limit answers the stale value instead.
   */
  private wait(t: Target, f: Flight, arrived: number, stale?: Buffer): Promise<Answer> {
    f.waiters++;
    return new Promise<Answer>((resolve, reject) => {
      let done = false;
      const leave = (): boolean => {
        if (done) return false;
        done = true;
        timer.cancel();
        f.waiters--;
        // Superseded and abandoned: free its socket.
        if (f.waiters === 0 && this.slots.get(t.key)?.current !== f) f.abort?.abort();
        return true;
      };
      const serveStale = () => {
        if (!leave()) return;
        this.stats.stale++;
        resolve({ body: stale!, source: 'stale', upstreamMs: this.clock.now() - arrived });
      };
      const limit = this.opts.waitLimitMs[t.service];
      const timer = this.clock.setTimeout(() => {
        if (stale) return serveStale();
        if (leave()) reject(waitedTooLong(limit));
      }, limit);
      if (stale) f.onRetry.push(serveStale);
      f.done.then(
        (r) => {
          if (leave())
            resolve({ body: r.loaded.body, source: 'miss', upstreamMs: this.clock.now() - arrived });
        },
        (err: unknown) => {
          if (stale && isTransient(err)) return serveStale();
          if (leave()) reject(err);
        },
      );
    });
  }

  /** A load nobody shares, bounded by the wait limit. */
  private limit<T>(p: Promise<T>, service: Service): Promise<T> {
    const limit = this.opts.waitLimitMs[service];
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => reject(waitedTooLong(limit)), limit);
      p.then(
        (v) => {
          timer.cancel();
          resolve(v);
        },
        (e: unknown) => {
          timer.cancel();
          reject(e);
        },
      );
    });
  }

  /**
   * Removes `key`. With `gone` (NotFound/AccessDenied from load number `gone`), no load numbered below it
   * may store there afterwards: a load of the other decryption flag, or a path listing, that started
   * before the deletion would otherwise bring the old value back.
   */
  private drop(key: string, gone: number | undefined): void {
    if (!this.lru) return;
    const e = this.lru.get(key, { allowStale: true });
    if (gone !== undefined && e !== undefined && e.seq > gone) return;
    this.lru.delete(key);
    if (gone !== undefined) this.tombs.set(key, gone);
  }

  private put(
    key: string,
    body: Buffer | undefined,
    error: Error | undefined,
    ttl: number,
    seq: number,
  ): void {
    if (!this.lru || ttl <= 0) return;
    const existing = this.lru.get(key, { allowStale: true });
    // A newer load (of another key sharing this entry, or a path listing) already stored it, or found it gone.
    if (existing !== undefined && existing.seq > seq) return;
    if ((this.tombs.get(key) ?? 0) > seq) return;
    this.tombs.delete(key);
    const ttlMs = Math.max(1, Math.round(ttl * this.jitterFactor));
    const now = this.clock.now();
    // Kept past expiry only as long as it may be served stale.
    this.lru.set(
      key,
      {
        body,
        error,
        expiresAt: now + ttlMs,
        ttlMs,
        seq,
        pausedUntil: 0,
        hit: body === undefined ? undefined : { body, source: 'hit' },
      },
      { ttl: ttlMs + this.opts.staleIfErrorMs },
    );
  }

  /** Stores an item's answer under its own key, or under the shared key when it reads the same decrypted or not. */
  private putItem(r: ItemRequest, loaded: Loaded, ttl: number, seq: number): void {
    const own = cacheKey(r);
    const plain = loaded.plain ? plainKey(r) : undefined;
    if (plain !== undefined && this.lru) {
      // A String stored under the shared key must not leave an older own-key entry in front of it.
      const e = this.lru.get(own, { allowStale: true });
      if (e !== undefined && e.seq > seq) return;
      if (e !== undefined) this.lru.delete(own);
    }
    this.put(plain ?? own, loaded.body, undefined, ttl, seq);
  }

  private itemTarget(r: ItemRequest): Target {
    const key = cacheKey(r);
    const plain = plainKey(r);
    return {
      key,
      service: r.service,
      name: itemName(r),
      request: r,
      lookup: () => {
        const own = this.lru?.get(key, { allowStale: true });
        return own !== undefined || plain === undefined ? own : this.lru?.get(plain, { allowStale: true });
      },
      load: (ctx) => this.opts.loader.one(r, ctx).then((loaded) => ({ loaded })),
      store: (res, ttl, seq) => this.putItem(r, res.loaded, ttl, seq),
      evict: (gone) => {
        this.drop(key, gone);
        if (plain !== undefined) this.drop(plain, gone);
      },
    };
  }

  private pathTarget(p: PathRequest): Target {
    const key = pathKey(p);
    return {
      key,
      service: 'ssm',
      name: p.path,
      request: undefined,
      lookup: () => this.lru?.get(key, { allowStale: true }),
      load: (ctx) =>
        this.opts.loader.path(p, ctx).then((l) => ({ loaded: { body: l.body }, items: l.items })),
      store: (res, ttl, seq) => {
        this.put(key, res.loaded.body, undefined, ttl, seq);
        // Each item under its own key too, unless a newer load of that item was asked for meanwhile.
        for (const item of res.items ?? []) {
          if ((this.slots.get(cacheKey(item.request))?.asked ?? 0) > seq) continue;
          this.putItem(item.request, item.loaded, this.ttlFor('ssm'), seq);
        }
      },
      evict: (gone) => this.drop(key, gone),
    };
  }
}

/** Placeholder until attach() sets a flight's real promise (never observed). */
const NEVER = new Promise<LoadResult>(() => {});

const waitedTooLong = (ms: number) =>
  new AwsCallError('TimeoutError', `no answer from upstream within ${ms} ms`, 'timeout');

/** An answer (or a synchronous throw) as an ItemResult. */
async function settled(read: () => Answer | Promise<Answer>): Promise<ItemResult> {
  try {
    return { ok: true, answer: await read() };
  } catch (error) {
    return { ok: false, error };
  }
}
