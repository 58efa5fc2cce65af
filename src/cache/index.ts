// The cache core: one state machine per key, the same for every read (single item, each item of a batch,
// a path listing). Storage (LRU order, item and byte limits, expiry) is lru-cache; the states, the loads
// and who may store what are here. Nothing else decides what a read gets.
//
// The states of a key, what a read finds in each, and what moves it on:
//
//   state          what a read does                                             leaves by
//   -------------  -----------------------------------------------------------  ------------------------------------
//   empty          starts a load, waits for it (at most the wait limit: 504)     a load starts: loading
//   loading        joins the load if it made progress (began, retried, got a     stored: fresh; failed: empty
//                  page) within the join limit and nothing newer is known of
//                  the object; else starts a newer one
//   fresh          answers from the entry (hit)                                  read in the last 10% of its TTL:
//                                                                                refreshing; TTL over: expired
//   refreshing     hit; one background load, which later misses join             stored: fresh; failed: fresh,
//                                                                                no new refresh for 1 s
//   expired        within STALE_IF_ERROR of expiry: a one-attempt load; the      stored: fresh; transient failure:
//                  stale value if it fails transiently, retries, or has not      backing off; NotFound or
//                  answered within the stale wait ("stale first"); past the      AccessDenied: evicted
//                  window: as empty
//   stale-serving  a load is in flight and already failed an attempt: the stale  the load ends (as expired)
//                  value at once
//   backing off    a load failed transiently less than 1 s ago: the stale value  1 s later: expired
//                  at once, no new load (at most one attempt a second per key)
//   evicted        gone (NotFound, AccessDenied, past the stale window, LRU, or  as empty
//                  contradicted by another load): as empty; never a stale value
//                  after NotFound or AccessDenied
//
// Newer wins, durably. Every load carries a sequence number (its start order). Each storage key, and each
// id an object is known by (name, ARN), has a mark (marks.ts): the newest number given out when something
// last landed there. A load numbered at or below a mark started before that answer: it is stored only if
// it agrees with what landed (the entry or share holds the same bytes), is not joined, and if it says
// otherwise the entry goes rather than be trusted either way (sequence order is not data order: a late
// retry may read newer data; the cost is a refetch, never a wrong value). NotFound or AccessDenied drops
// every entry of the object (both flags, every selector if none was named, every id it is known by) and
// every listing that shows it; a refreshNow or ttl=0 answer drops contradicting entries of other ids and
// listings; an answer of another type drops the old type's entries under every id of the object (and, while
// one was cached, the listings that show it as the old type: docs/architecture.md); listings in flight
// contradicted by such news are neither joined nor stored. clear() (SnapStart's first INVOKE) raises a
// floor below which nothing is stored or joined.
//
// Why not lru-cache's fetch(): a forceRefresh joins a fetch already in flight (so refreshNow could not
// supersede an older load), a fetch in flight holds its slot with no deadline, and a rejection cannot tell
// a transient failure (serve stale) from NotFound (evict). Its storage and limits are used as they are.
import { LRUCache } from 'lru-cache';
import { JOIN_LIMIT_MS } from '../aws/client.ts';
import { AwsCallError, type Service } from '../aws/types.ts';
import { type Clock, systemClock, type Timer } from '../clock.ts';
import {
  cacheKey,
  type ItemRequest,
  idKey,
  idsOf,
  itemName,
  type Loaded,
  type PathRequest,
  pathKey,
  plainKey,
  selectorOf,
} from '../items.ts';
import { type LoadContext, type Loader, type PathListing, PathTooLargeError } from '../loader/index.ts';
import { type MarkBounds, Marks } from './marks.ts';
import { type Share, Shares } from './shares.ts';

export { JOIN_LIMIT_MS };

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
/** refreshNow and ttl=0 reads of one key share one upstream load a second. */
export const REFRESH_SHARE_MS = 1000;
/** Marks kept at once at least (each a key and a number; they only matter while older loads run). */
const MIN_MARKS = 1000;
const MARK_BYTES = 4 * 1024 * 1024;

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
/** A superseded load nobody waited for, cut short on purpose: neither a failure nor news. */
// Stryker disable next-line ArrowFunction,ConditionalExpression,StringLiteral: equivalent: the cache aborts a load only once it is superseded with nobody waiting, so its Abandoned failure is quiet in attach() and refreshAhead() skips it as superseded
const isAbandoned = (e: unknown) => e instanceof AwsCallError && e.code === 'Abandoned';

interface Entry {
  /** The rendered body; undefined when the cached outcome is an error (a path too large). */
  body: Buffer | undefined;
  error: Error | undefined;
  /** Clock time until which the entry is fresh (it was stored at expiresAt − ttlMs). */
  expiresAt: number;
  /** The (jittered) TTL it was stored with, for the refresh-ahead threshold. */
  ttlMs: number;
  /** The newest load number given out when it was stored (or last confirmed by a load that agreed). */
  stamp: number;
  /** Its object's ids (idKey), selector and decryption class: what other keys it must agree with. */
  ids: readonly string[];
  sel: string;
  /** A String's answer (both flags), or the flag it was read with. */
  plain: boolean;
  dec: boolean;
  /** The object's name as listings show it (undefined for a listing). */
  name: string | undefined;
  /** Backing off: no new load of this key before this clock time (after a failed load). */
  pausedUntil: number;
  /** The answer every hit on this entry gets: made once when stored, so a hit allocates nothing. */
  hit: Answer | undefined;
  /** A path listing's items, name -> body: what it shows of each. */
  items?: Map<string, Buffer>;
}

interface LoadResult {
  loaded: Loaded;
  /** Items of a path listing, stored under their own keys too. */
  items?: PathListing['items'];
}

interface Flight {
  seq: number;
  /**
   * What it is judged as against marks: its own number, or for values already in hand (prefetch's
   * discovery), the newest number given out when upstream was asked for them.
   */
  from: number;
  startedAt: number;
  /** When it last showed progress (began, an attempt failed and another began, a page came). */
  progressAt: number;
  /** Settles after the result is stored (or not): a read answered from it finds it in the cache after. */
  done: Promise<LoadResult>;
  /** An attempt failed and the load retries: stale-eligible reads stop waiting. */
  retrying: boolean;
  onRetry: Array<() => void>;
  waiters: number;
  abort: AbortController | undefined;
  /** Started by refreshNow or ttl=0: later such reads within REFRESH_SHARE_MS join it. */
  refresh: boolean;
  /**
   * The TTL its result is stored with: the shortest positive one asked for by the reads that share it;
   * 0 when every one of them was a ttl=0 read (keeps nothing). A ttl only ever shortens what is kept.
   */
  ttlMs: number;
  /** A newer load took its place while nobody waited for it: its outcome is news to nobody. */
  superseded: boolean;
  /** A listing something newer contradicts (an item refreshed or found gone meanwhile): neither joined nor stored. */
  outdated: boolean;
}

interface Slot {
  /** The newest load: the only one a read may join. */
  current: Flight | undefined;
  /** Loads of this key still running (superseded ones included). */
  running: number;
}

/** A key as the state machine sees it: how to find, load and land it. */
interface Target {
  /** The read's own key: its loads share a slot. */
  key: string;
  /** Every key whose mark decides whether a load of it may be joined (storage keys, the id asked by). */
  keys: readonly string[];
  service: Service;
  /** For logs only. */
  name: string;
  /** The item it stands for (undefined for a path listing). */
  request: ItemRequest | undefined;
  lookup(): Entry | undefined;
  /** Makes the load; `f` is the flight it is made for (absent when uncached). */
  load(ctx: LoadContext, f?: Flight): Promise<LoadResult>;
  /** A load's value: stored, or not, as the marks say. */
  land(result: LoadResult, f: Flight): void;
  /** NotFound or AccessDenied from load `f`. */
  gone(f: Flight, err: unknown): void;
  /** Drops entry `e`, found past its stale window. */
  forget(e: Entry): void;
}

type Mode = 'read' | 'refresh' | 'uncached';

export interface CacheOptions {
  enabled: boolean;
  maxItems: number;
  maxBytes: number;
  ttlMs: Record<Service, number>;
  staleIfErrorMs: number;
  /**
   * Stale first: a read holding a usable stale value waits at most this long for the load it started or
   * joined, then gets the stale value while the load finishes in the background (0: it waits for the load).
   */
  staleWaitMs?: number;
  loader: Loader;
  /** Longest a read waits for upstream before it is answered 504 (per service). */
  waitLimitMs: Record<Service, number>;
  /** No read joins a load that showed no progress for this long (per service; default JOIN_LIMIT_MS). */
  joinLimitMs?: Record<Service, number>;
  /** Bounds of the marks table (default: max(1000, maxItems) marks, 4 MiB); tests make it small. */
  markBounds?: MarkBounds;
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

/** A path listing (stored, or a load in flight), for finding the listings an item's news concerns. */
interface Listed {
  role: string;
  path: string;
  recursive: boolean;
  withDecryption: boolean;
}

/** News of an item that listings must agree with: its name (role, flag) and value, or gone (undefined). */
interface ItemNews {
  role: string;
  name: string;
  withDecryption: boolean;
  /** Undefined: gone, or its type changed (what a listing of either flag shows of it is outdated). */
  loaded: Loaded | undefined;
}

export class ItemCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, stale: 0, loads: 0, errors: 0, evictions: 0 };
  private readonly lru: LRUCache<string, Entry> | undefined;
  private readonly slots = new Map<string, Slot>();
  /** Sequence numbers of the loads still running, oldest first (a Set keeps insertion order). */
  private readonly running = new Set<number>();
  /** Running loads judged as older than their number (values in hand): flight -> what they count from. */
  private readonly backdated = new Map<Flight, number>();
  /** Numbers given to reads made outside the cache (reserve()), until released. */
  private readonly reserved = new Set<number>();
  private readonly marks: Marks;
  private readonly shares: Shares;
  /** The path listings stored now, by key. */
  private readonly listings = new Map<string, Listed>();
  /** Path listing loads in flight. */
  private readonly listingFlights = new Map<Flight, Listed>();
  /** Id (idKey) -> the storage keys whose entries answer for an object known by it. */
  private readonly byId = new Map<string, Set<string>>();
  private readonly clock: Clock;
  private readonly jitter: () => number;
  private readonly joinLimitMs: Record<Service, number>;
  private readonly staleWaitMs: number;
  private jitterFactor: number;
  private seq = 0;
  /** Loads dated at or below this were started before the last clear(): never stored, never joined. */
  private floor = 0;
  /** Set between the SnapStart snapshot and the first INVOKE: reads bypass the cache (see restoreWindow). */
  private bypass = false;

  constructor(private readonly opts: CacheOptions) {
    this.clock = opts.clock ?? systemClock;
    this.jitter = opts.jitter ?? (() => 0.9 + Math.random() * 0.2);
    this.jitterFactor = this.jitter();
    this.joinLimitMs = opts.joinLimitMs ?? { ssm: JOIN_LIMIT_MS, secretsmanager: JOIN_LIMIT_MS };
    this.staleWaitMs = opts.staleWaitMs ?? 0;
    this.marks = new Marks(
      opts.markBounds ?? { maxItems: Math.max(MIN_MARKS, opts.maxItems), maxBytes: MARK_BYTES },
    );
    // Shares hold bodies the cache does not: at most the cache's own budget beside it.
    this.shares = new Shares(
      this.clock,
      REFRESH_SHARE_MS,
      { maxItems: Math.max(1, opts.maxItems), maxBytes: opts.maxBytes },
      () => this.marks.prune(this.keepAbove()),
    );
    if (opts.enabled && opts.maxItems > 0) {
      this.lru = new LRUCache<string, Entry>({
        max: opts.maxItems,
        maxSize: opts.maxBytes,
        // An item larger than the whole byte budget is simply not stored.
        maxEntrySize: opts.maxBytes,
        sizeCalculation: (e, k) => (e.body?.length ?? 256) + k.length * 2 + ENTRY_OVERHEAD,
        dispose: (e, k, reason) => {
          if (reason === 'evict') this.stats.evictions++;
          // Stryker disable next-line ConditionalExpression: equivalent (→ true): listings holds listing keys only; deleting an item's key from it changes nothing
          if (e.items !== undefined) this.listings.delete(k);
          for (const id of e.ids) {
            const keys = this.byId.get(id);
            // Stryker disable next-line ConditionalExpression: equivalent (→ false): put() indexes every id of an entry it stores and only this dispose unindexes them, so keys is never undefined
            if (keys === undefined) continue;
            keys.delete(k);
            if (keys.size === 0) this.byId.delete(id);
          }
        },
      });
    }
  }

  /** One item. A fresh hit answers synchronously. */
  get(r: ItemRequest, o?: ReadOptions): Answer | Promise<Answer> {
    // The hot path: a plain read of a fresh entry that needs no refresh is answered here, with no
    // allocation. Everything else goes through the state machine below.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent (ttl > 0 → true, >= 0): put() stores nothing with a TTL of 0, so for such a service the fast path finds no entry and falls through
    if (o === undefined && !this.bypass && this.lru !== undefined && this.opts.ttlMs[r.service] > 0) {
      const key = cacheKey(r);
      let e = this.lru.get(key, GET);
      if (e === undefined && r.service === 'ssm') e = this.lru.get(plainKey(r)!, GET);
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
   * they need that join none in flight go upstream together (GetParameters / BatchGetSecretValue). An
   * item asked twice is read once.
   */
  getMany(rs: readonly ItemRequest[], o: { readAt?: number } = {}): Promise<ItemResult[]> {
    // Stryker disable next-line ArrayDeclaration: equivalent: startTogether takes the pending loads by their stale flag; a stray element has none and is never started
    const pending: Pending[] = [];
    const off: Array<{ r: ItemRequest; resolve: (x: ItemResult) => void }> = [];
    const seen = new Map<string, Promise<ItemResult>>();
    const results = rs.map((r) => {
      const key = cacheKey(r);
      const again = seen.get(key);
      if (again !== undefined) return again;
      let result: Promise<ItemResult>;
      if (this.modeOf(r.service, undefined) === 'uncached') {
        // The cache is off for it (or SnapStart's window): loaded together all the same, kept nowhere.
        result = new Promise<ItemResult>((resolve) => off.push({ r, resolve }));
      } else {
        const t = this.itemTarget(r);
        result = settled(() =>
          // Stryker disable next-line StringLiteral: equivalent: a mode is only ever compared with 'uncached' and 'refresh'
          this.read(t, 'read', this.ttlFor(r.service), undefined, (stale) => {
            const flight = new Promise<Flight>((fill) => pending.push({ t, stale, fill }));
            return flight;
          }),
        );
      }
      seen.set(key, result);
      return result;
    });
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent (→ true, >= 0): startTogether of no loads opens nothing and calls nothing
    if (pending.length > 0) this.startTogether(pending, o.readAt);
    if (off.length > 0) this.loadTogetherUncached(off, this.uncachedContext());
    return Promise.all(results);
  }

  /** A path listing, cached under its path, recursive flag and decryption flag like an item. */
  getPath(p: PathRequest): Answer | Promise<Answer> {
    // A fresh listing answers here, as a fresh item does in get().
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent (ttl > 0 → true, >= 0): put() stores nothing with a TTL of 0, so the fast path finds no listing and falls through
    if (!this.bypass && this.lru !== undefined && this.opts.ttlMs.ssm > 0) {
      const e = this.lru.get(pathKey(p), GET);
      if (e?.hit !== undefined && this.clock.now() < e.expiresAt - e.ttlMs * REFRESH_AHEAD_FRACTION) {
        this.stats.hits++;
        return e.hit;
      }
    }
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
    this.shares.clear();
    this.marks.clear();
  }

  /**
   * Numbers a read made upstream outside the cache (prefetch's discovery) as a load started now: its
   * values, handed to getMany with `readAt`, are judged as of this moment, not when they are cached. What
   * lands from now on is remembered until `release()`, so it is not undone by them.
   */
  reserve(): { readAt: number; release(): void } {
    const readAt = ++this.seq;
    this.reserved.add(readAt);
    return {
      readAt,
      release: () => {
        if (!this.reserved.delete(readAt)) return;
        this.marks.prune(this.keepAbove());
      },
    };
  }

  get entries(): number {
    return this.lru?.size ?? 0;
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  /**
   * What the tables beside the entries hold (the refresh shares, the marks, the loads in flight, and the
   * indexes of the entries by id and of the listings), for tests and metrics.
   */
  get overhead(): {
    shares: number;
    shareBytes: number;
    shareAgeMs: number;
    marks: number;
    markBytes: number;
    slots: number;
    ids: number;
    listings: number;
  } {
    return {
      shares: this.shares.count,
      shareBytes: this.shares.bytes,
      shareAgeMs: this.shares.oldestAgeMs,
      marks: this.marks.count,
      markBytes: this.marks.bytes,
      slots: this.slots.size,
      ids: this.byId.size,
      listings: this.listings.size,
    };
  }

  /** The TTL a read works with (0: the cache is off for it). */
  private ttlFor(service: Service, o?: ReadOptions): number {
    // Stryker disable next-line ConditionalExpression: equivalent: a TTL is only used by reads whose mode is not 'uncached', which needs the LRU
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
    // Stryker disable next-line StringLiteral: equivalent: a mode is only ever compared with 'uncached' and 'refresh'
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
      slot?.current !== undefined && this.joinable(t, slot.current, now) ? slot.current : undefined;
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
      // Past its stale window: it only takes room.
      if (now - e.expiresAt > this.opts.staleIfErrorMs) t.forget(e);
    }
    if (current) {
      shareTtl(current, ttl);
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
    if (current?.refresh && now - current.startedAt < REFRESH_SHARE_MS) {
      // A refreshNow sharing a ttl=0 load wants its answer kept (a ttl=0 read joining keeps nothing).
      shareTtl(current, ttl);
      return this.wait(t, current, now);
    }
    const shared = this.shared(t);
    if (shared !== undefined) {
      this.stats.hits++;
      if ('hit' in shared) return shared.hit;
      if (shared.share.body === undefined) throw shared.share.error;
      return { body: shared.share.body, source: 'hit' };
    }
    return this.wait(t, this.start(t, ttl, { refresh: true }), now);
  }

  /**
   * What a refresh of `t` may answer without a load: the outcome of a refresh load of the same object
   * that started less than a second ago, or an entry a load started after it stored; nothing when
   * something newer landed for the object since.
   */
  private shared(t: Target): { share: Share } | { hit: Answer } | undefined {
    let share: Share | undefined;
    for (const k of t.keys) {
      const s = this.shares.get(k);
      if (s !== undefined && (share === undefined || s.seq > share.seq)) share = s;
    }
    if (share === undefined) return undefined;
    // Through the ids the share's answer named too: a NotFound by ARN outdates a share made by name.
    const landed = this.landedOf([...t.keys, ...share.ids]);
    const e = t.lookup();
    if (e?.hit !== undefined && e.stamp >= landed && e.stamp > share.stamp) return { hit: e.hit };
    return share.stamp >= landed ? { share } : undefined;
  }

  /**
   * An expired entry inside the stale window: stale-serving, backing off, or a one-attempt load that the
   * read waits for at most the stale wait.
   */
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
    if (current) {
      shareTtl(current, ttl);
      return this.wait(t, current, now, stale);
    }
    if (begin) return begin(true).then((f) => this.wait(t, f, now, stale));
    return this.wait(t, this.start(t, ttl, { attempts: 1 }), now, stale);
  }

  private refreshAhead(t: Target, ttl: number): void {
    const f = this.start(t, ttl, {});
    f.done.catch((err: unknown) => {
      if (isAbandoned(err) || f.superseded || f.from <= this.floor) return;
      try {
        // Stryker disable next-line OptionalChaining: equivalent: calling an absent callback throws inside this try, whose catch swallows it
        this.opts.onBackgroundError?.(err, t.name);
      } catch {
        // A broken logger must not take the process down.
      }
    });
  }

  /** A read that neither reads nor fills the cache: the cache is off for it, or SnapStart's window. */
  private uncached(t: Target, ctx: LoadContext): Promise<Answer> {
    this.stats.misses++;
    this.stats.loads++;
    const started = this.clock.now();
    return this.limit(
      call(() => t.load(ctx)),
      t.service,
    ).then(
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
    const fail = (error: unknown) => {
      this.stats.errors += items.length;
      for (const x of items) x.resolve({ ok: false, error });
    };
    this.limit(
      call(() =>
        this.opts.loader.many(
          items.map((x) => x.r),
          ctx,
        ),
      ),
      service,
    ).then((outcomes) => {
      try {
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
        });
      } catch (e) {
        // An answer of the wrong shape is a fault of pscache's own: each item gets it, nobody hangs.
        fail(e);
      }
    }, fail);
  }

  /**
   * A read may join `f` if it started after the last clear(), nothing landed for any key it could answer
   * for since it started, nothing newer contradicts it (a listing), and it showed progress within the
   * join limit (else it may be hung).
   */
  private joinable(t: Target, f: Flight, now: number): boolean {
    return (
      f.from > this.floor &&
      f.from > this.landedOf(t.keys) &&
      !f.outdated &&
      now - f.progressAt < this.joinLimitMs[t.service]
    );
  }

  private landedOf(keys: readonly string[]): number {
    let m = 0;
    for (const k of keys) {
      const x = this.marks.landed(k);
      // Stryker disable next-line EqualityOperator: equivalent (>=): an equal value leaves the maximum as it is
      if (x > m) m = x;
    }
    return m;
  }

  /** The oldest load still running, as marks judge it (a backdated one counts from where it is dated). */
  private oldestRunning(): number {
    const first = this.running.values().next();
    let oldest = first.done ? Number.POSITIVE_INFINITY : first.value;
    // Stryker disable next-line EqualityOperator: equivalent (<=): an equal value leaves the minimum as it is
    for (const from of this.backdated.values()) if (from < oldest) oldest = from;
    // Stryker disable next-line EqualityOperator: equivalent (<=): an equal value leaves the minimum as it is
    for (const n of this.reserved) if (n < oldest) oldest = n;
    return oldest;
  }

  /** Marks below this stop nothing: no running load, nor any share, is numbered at or below them. */
  private keepAbove(): number {
    return Math.min(this.oldestRunning(), this.shares.oldestStamp);
  }

  /** Something landed at `key` now. */
  private landAt(key: string): void {
    this.marks.land(key, this.seq, this.keepAbove());
  }

  /** Opens a load of `t` that supersedes whatever is in flight for it. */
  private open(t: Target, ttl: number, refresh: boolean, readAt?: number): Flight {
    let slot = this.slots.get(t.key);
    if (!slot) {
      slot = { current: undefined, running: 0 };
      this.slots.set(t.key, slot);
    }
    const superseded = slot.current;
    const now = this.clock.now();
    const seq = ++this.seq;
    const f: Flight = {
      seq,
      // Stryker disable next-line ConditionalExpression,EqualityOperator,LogicalOperator: equivalent: readAt comes from reserve(), numbered before this load, so readAt < seq always holds (a guard against misuse)
      from: readAt !== undefined && readAt < seq ? readAt : seq,
      startedAt: now,
      progressAt: now,
      done: NEVER,
      retrying: false,
      onRetry: [],
      waiters: 0,
      abort: undefined,
      refresh,
      ttlMs: ttl,
      superseded: false,
      outdated: false,
    };
    slot.current = f;
    slot.running++;
    this.running.add(f.seq);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent: from <= seq always; a load dated at its own number counts the same in backdated as in running
    if (f.from < f.seq) this.backdated.set(f, f.from);
    this.stats.loads++;
    if (superseded && superseded.waiters === 0) {
      superseded.superseded = true;
      superseded.abort?.abort();
    }
    return f;
  }

  /** Marks `f` as retrying after a failed attempt: reads holding a stale value stop waiting for it. */
  private retrying(f: Flight): void {
    f.progressAt = this.clock.now();
    // Stryker disable next-line ConditionalExpression: equivalent: after the first retry onRetry stays empty (a stale-holding read finding a retrying load is answered stale without joining; getMany's readers queue before any attempt can end), so running again does nothing
    if (f.retrying) return;
    f.retrying = true;
    for (const fn of f.onRetry.splice(0)) fn();
  }

  private contextFor(flights: Flight[]): LoadContext {
    return {
      onRetry: () => {
        for (const x of flights) this.retrying(x);
      },
      onProgress: () => {
        const now = this.clock.now();
        for (const x of flights) x.progressAt = now;
      },
    };
  }

  private start(t: Target, ttl: number, how: { refresh?: boolean; attempts?: number }): Flight {
    const f = this.open(t, ttl, how.refresh === true);
    f.abort = new AbortController();
    const ctx = this.contextFor([f]);
    ctx.signal = f.abort.signal;
    // Stryker disable next-line ConditionalExpression: equivalent: setting attempts to undefined is what leaving it unset means to the loader (it checks attempts !== undefined)
    if (how.attempts !== undefined) ctx.attempts = how.attempts;
    this.attach(
      t,
      f,
      call(() => t.load(ctx, f)),
    );
    return f;
  }

  /** getMany: the loads its items need, made as `many` calls (batched by the loader). */
  private startTogether(pending: Pending[], readAt?: number): void {
    // Stale-eligible items take one attempt (their readers hold a value); the others the full retries.
    for (const stale of [true, false]) {
      const part = pending.filter((p) => p.stale === stale);
      if (part.length === 0) continue;
      const flights = part.map((p) => this.open(p.t, this.ttlFor(p.t.service), false, readAt));
      const ctx = this.contextFor(flights);
      if (stale) ctx.attempts = 1;
      const outcomes = call(() =>
        this.opts.loader.many(
          part.map((p) => p.t.request!),
          ctx,
        ),
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

  /** Lands the load's result (stored as the marks allow, or evicting on NotFound) and settles `done`. */
  private attach(t: Target, f: Flight, load: Promise<LoadResult>): void {
    f.done = load.then(
      (r) => {
        try {
          this.leaveSlot(t, f);
          if (f.from > this.floor) t.land(r, f);
          return r;
        } finally {
          this.finish(f);
        }
      },
      (err: unknown) => {
        try {
          this.leaveSlot(t, f);
          // Cut short on purpose, or from before the last clear(): news to nobody.
          if (isAbandoned(err) || f.from <= this.floor) throw err;
          // Superseded with nobody waiting: not counted, and no back-off; a NotFound is news all the same.
          const quiet = f.superseded && f.waiters === 0;
          if (!quiet) this.stats.errors++;
          if (err instanceof PathTooLargeError) {
            // Too large is an answer too: cached for the TTL, so repeated reads do not page again.
            // (landedOf counts the marks' floor: a load above it is above the floor.)
            if (f.from > this.landedOf([t.key]) && !f.outdated) {
              this.landAt(t.key);
              this.put(t.key, undefined, err, f.ttlMs, LISTING);
            }
          } else if (isGone(err)) {
            t.gone(f, err);
          } else if (isTransient(err) && !quiet) {
            const e = t.lookup();
            if (e) e.pausedUntil = this.clock.now() + RETRY_PAUSE_MS;
          }
          throw err;
        } finally {
          this.finish(f);
        }
      },
    );
    // Nobody may be waiting (refresh-ahead): the failure is handled above.
    f.done.catch(() => {});
  }

  private leaveSlot(t: Target, f: Flight): void {
    const slot = this.slots.get(t.key)!;
    slot.running--;
    if (slot.current === f) slot.current = undefined;
    if (slot.running === 0) this.slots.delete(t.key);
    this.listingFlights.delete(f);
  }

  /** After landing: `f` no longer runs, and marks that stop no running load go. */
  private finish(f: Flight): void {
    // Stryker disable next-line ConditionalExpression: equivalent: pruning at every finish drops only marks below keepAbove, which no running load or share needs; at most the marks gauge falls one event sooner after a share went early
    const wasOldest = this.oldestRunning() === f.from;
    this.running.delete(f.seq);
    this.backdated.delete(f);
    // Stryker disable next-line ConditionalExpression: equivalent: as above, an extra prune drops only marks nothing running or shared needs
    if (wasOldest) this.marks.prune(this.keepAbove());
  }

  /**
   * Waits for a load, at most the wait limit (then 504). With `stale`, a failed attempt of the load, its
   * transient failure, the stale wait or the wait limit answers the stale value instead. Counted a miss
   * from the start (it waits on upstream: a read cut off at shutdown was one), moved to stale if it ends so.
   */
  private wait(t: Target, f: Flight, arrived: number, stale?: Buffer): Promise<Answer> {
    f.waiters++;
    this.stats.misses++;
    return new Promise<Answer>((resolve, reject) => {
      let done = false;
      let staleTimer: Timer | undefined;
      const leave = (): boolean => {
        if (done) return false;
        done = true;
        timer.cancel();
        staleTimer?.cancel();
        // Stryker disable next-line ConditionalExpression,BlockStatement: equivalent: without a stale value serveStale was never queued; left queued, it is a no-op when called (leave() is false) and goes with the flight
        if (stale) {
          const i = f.onRetry.indexOf(serveStale);
          // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent: i < 0 only after the retry emptied the list (splice(-1) of nothing); a serveStale left queued is a no-op when called
          if (i >= 0) f.onRetry.splice(i, 1);
        }
        f.waiters--;
        // Superseded and abandoned: free its socket.
        if (f.waiters === 0 && this.slots.get(t.key)?.current !== f) {
          f.superseded = true;
          f.abort?.abort();
        }
        return true;
      };
      const serveStale = () => {
        if (!leave()) return;
        this.stats.misses--;
        this.stats.stale++;
        resolve({ body: stale!, source: 'stale', upstreamMs: this.clock.now() - arrived });
      };
      const limit = this.opts.waitLimitMs[t.service];
      const timer = this.clock.setTimeout(() => {
        if (stale) return serveStale();
        if (leave()) reject(waitedTooLong(limit));
      }, limit);
      if (stale) {
        f.onRetry.push(serveStale);
        if (this.staleWaitMs > 0) staleTimer = this.clock.setTimeout(serveStale, this.staleWaitMs);
      }
      f.done.then(
        (r) => {
          if (leave())
            resolve({ body: r.loaded.body, source: 'miss', upstreamMs: this.clock.now() - arrived });
        },
        (err: unknown) => {
          if (stale && isTransient(err)) return serveStale();
          // Stryker disable next-line ConditionalExpression: equivalent: leave() is false only when the promise is already settled, and a second reject does nothing
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

  /** An entry as it is, without touching its place in the LRU order. */
  private entry(key: string): Entry | undefined {
    // Stryker disable next-line OptionalChaining: equivalent: entries are looked up only in cached modes, which need this.lru
    return this.lru?.peek(key, PEEK);
  }

  private drop(key: string): void {
    // Stryker disable next-line OptionalChaining: equivalent: entries are dropped only when landing or reading in cached modes, which need this.lru
    this.lru?.delete(key);
  }

  private put(
    key: string,
    body: Buffer | undefined,
    error: Error | undefined,
    ttl: number,
    about: Pick<Entry, 'ids' | 'sel' | 'plain' | 'dec' | 'name'>,
    items?: Map<string, Buffer>,
  ): void {
    // Stryker disable next-line ConditionalExpression,EqualityOperator,LogicalOperator: equivalent: every caller stores in a cached mode (this.lru set) with a positive TTL (landItem checks ttl > 0; a cached path read's TTL is the service's, > 0)
    if (!this.lru || ttl <= 0) return;
    const ttlMs = Math.max(1, Math.round(ttl * this.jitterFactor));
    const now = this.clock.now();
    const entry: Entry = {
      body,
      error,
      expiresAt: now + ttlMs,
      ttlMs,
      stamp: this.seq,
      pausedUntil: 0,
      hit: body === undefined ? undefined : { body, source: 'hit' },
      ...about,
    };
    // Stryker disable next-line ConditionalExpression: equivalent: items set to undefined reads as absent (every reader checks items !== undefined or uses ?.)
    if (items !== undefined) entry.items = items;
    // Past expiry it is kept only as long as it may be served stale: dropped when next found past that.
    this.lru.set(key, entry);
    if (!this.lru.has(key)) return;
    for (const id of about.ids) {
      let keys = this.byId.get(id);
      if (keys === undefined) {
        keys = new Set();
        this.byId.set(id, keys);
      }
      keys.add(key);
    }
  }

  /**
   * Whether what `f` brings for `key` agrees with what landed since it started (for `keys`, the key and
   * the ids of its object): the entry, or the share, that holds the newest landing holds the same bytes.
   * A load nothing landed for since it started agrees trivially.
   */
  private agrees(f: Flight, key: string, keys: readonly string[], body: Buffer): boolean {
    const landed = this.landedOf(keys);
    if (f.from > landed) return true;
    const e = this.entry(key);
    if (e !== undefined && e.stamp >= landed && e.body?.equals(body) === true) return true;
    const s = this.shares.get(key);
    return s !== undefined && s.stamp >= landed && s.body?.equals(body) === true;
  }

  /**
   * An item's value from load `f` (a single read, a batch, a path listing's item), for its own key, or
   * the shared key when it reads the same decrypted or not. Stored if it is the newest word there or
   * agrees with the newest; otherwise it contradicts what landed since it started, and neither is
   * trusted: the entry goes and the next read asks again (sequence order is not data order: a late
   * retry may have read newer data).
   */
  private landItem(r: ItemRequest, loaded: Loaded, f: Flight, ttl: number): void {
    // A number of its own for this landing: what it marks is newer than what an earlier landing stamped,
    // even with no load started in between (a share stamped by one refresh's answer is outdated by the
    // next refresh's news, model seed 1376437292).
    this.seq++;
    const own = cacheKey(r);
    const plain = loaded.plain === true;
    const key = plain ? plainKey(r)! : own;
    const sel = selectorOf(r);
    // Ids tie reads of one object together: a version or label is judged by what landed for them, but
    // only news without a selector speaks for the whole object.
    const ids = [...new Set([...idsOf(r), ...(loaded.ids ?? [])])].map((id) => idKey(r, id));
    const body = loaded.body;
    // Stryker disable next-line ConditionalExpression: equivalent: only the `r.service === 'ssm'` -> true mutant survives (a secret's dec undefined, not false): secrets' dec is compared only with secrets' dec and news is SSM-only
    const dec = r.service === 'ssm' && r.withDecryption;
    const name = nameOf(r, loaded);
    // Entries the answer's type makes outdated: a String's answer, both flags' SecureString entries; a
    // SecureString's, the String entry.
    const others =
      // Stryker disable next-line ConditionalExpression: equivalent: a secret has no plain key, and entry(undefined) is none: nothing to drop either way
      r.service !== 'ssm'
        ? // Stryker disable next-line ArrayDeclaration: equivalent: no storage key is that string: entry() finds nothing to drop
          []
        : plain
          ? [cacheKey({ ...r, withDecryption: false }), cacheKey({ ...r, withDecryption: true })]
          : [plainKey(r)!];
    // A read with a selector is judged by the object's ids too (a NotFound by name holds for every
    // version), but only a read without one speaks for them. What landed as the other type since it
    // started is newer news of the object too: an older answer of the old type does not undo it.
    const gateKeys = [key, ...others, ...ids];
    // The old type's entries under every id of the object (its name and its ARN, whichever this came by;
    // `others` among them), found through the index of ids: a parameter has one type, whichever id showed
    // it. Only an answer without a selector speaks for the type (a version keeps the type it was written
    // with), and only of entries without one. A secret's entries and answers are never plain: none differs.
    const otherIds: string[] = [];
    if (sel === '') {
      for (const id of ids) {
        // Stryker disable next-line ArrayDeclaration: equivalent: no storage key is that string: entry() finds nothing
        for (const k of this.byId.get(id) ?? []) {
          const e = this.entry(k);
          // Stryker disable next-line ConditionalExpression: equivalent (-> false; -> true is killed): byId lists only keys holding an entry
          if (e === undefined) continue;
          if (e.sel === '' && e.plain !== plain && !otherIds.includes(k)) otherIds.push(k);
        }
      }
    }
    const retyped = otherIds.length > 0;
    const kept = f.from > this.marks.floor && this.agrees(f, key, gateKeys, body);
    if (kept) {
      this.landAt(key);
      if (ttl > 0) {
        this.put(key, body, undefined, ttl, { ids, sel, plain, dec, name });
      } else {
        // Not kept (ttl=0): an entry that says otherwise is outdated; one that agrees is confirmed.
        const e = this.entry(key);
        // Stryker disable next-line OptionalChaining: equivalent (`e?.body.equals`): an item's entry always has a body (only a listing's may not)
        if (e?.body?.equals(body)) e.stamp = this.seq;
        else this.drop(key);
      }
    } else {
      this.drop(key);
      this.landAt(key);
    }
    for (const k of [...others, ...otherIds]) {
      if (this.entry(k) === undefined) continue;
      this.drop(k);
      this.landAt(k);
    }
    const share = this.shares.get(key);
    // Stryker disable next-line EqualityOperator: equivalent (`share.seq <= f.seq`; `>=` is killed): a share at this key is never this load's own (a load lands once per key)
    if (f.refresh && kept && (share === undefined || share.seq < f.seq)) {
      this.shares.set(key, {
        startedAt: f.startedAt,
        seq: f.seq,
        stamp: this.seq,
        body,
        error: undefined,
        ids,
      });
    } else if (share !== undefined) {
      // Confirmed by a later load (kept or not: it brought the same bytes), it stays the newest word for
      // the rest of its second, under this landing's number; contradicted, it goes.
      if (share.body?.equals(body)) share.stamp = this.seq;
      else this.shares.delete(key);
    }
    if (sel !== '') return;
    if (f.refresh) {
      // A refresh's answer is a floor for every id of the object, kept or not: what they hold otherwise
      // goes, and no load started before it stores through them.
      this.dropOtherIds(key, ids, plain, dec, body);
      for (const id of ids) this.landAt(id);
    } else if (retyped) {
      // News of the type is news of the object through every id: no load started before it (the other
      // flag, the other id, a batch, a listing's item) stores the old type through them.
      for (const id of ids) this.landAt(id);
    }
    // Listings that show the item otherwise than a refresh answer, or as the type it no longer has, go.
    if (r.service === 'ssm' && (f.refresh || retyped)) {
      this.news({
        role: r.roleArn ?? '',
        name,
        withDecryption: dec,
        loaded: retyped ? undefined : loaded,
      });
    }
  }

  /** Other ids' entries of the object (an ARN, a name) that show it otherwise than a refresh answer go. */
  private dropOtherIds(
    key: string,
    ids: readonly string[],
    plain: boolean,
    dec: boolean,
    body: Buffer,
  ): void {
    for (const id of ids) {
      // Stryker disable next-line ArrayDeclaration: equivalent: no storage key is that string: entry() finds nothing
      for (const k of [...(this.byId.get(id) ?? [])]) {
        // Stryker disable next-line ConditionalExpression: equivalent (-> false): the entry at `key` holds this answer (same bytes) or is gone by now: skipped below either way
        if (k === key) continue;
        const e = this.entry(k);
        // Stryker disable next-line ConditionalExpression: equivalent (`e === undefined` -> false; the other conditions' mutants are killed): byId lists only keys holding an entry (added after storing, removed on dispose)
        if (e === undefined || e.sel !== '' || !(e.plain || plain || e.dec === dec)) continue;
        // Stryker disable next-line OptionalChaining: equivalent: only item entries are listed in byId, and they all have a body
        if (e.body?.equals(body)) continue;
        this.drop(k);
        this.landAt(k);
      }
    }
  }

  /**
   * NotFound or AccessDenied for `r` from load `f`: every entry of the object goes, both flags; read
   * without a selector, also every selector and every id it is known by, and every listing that shows it.
   */
  private landGone(r: ItemRequest, f: Flight, err: unknown): void {
    // A number of its own, as in landItem.
    this.seq++;
    const sel = selectorOf(r);
    const own = new Set(objectKeys(r));
    const keys = new Set(own);
    const names = new Set<string>();
    const ids = new Set<string>();
    if (sel === '') {
      const asked = idsOf(r);
      // Stryker disable next-line ConditionalExpression,MethodExpression: equivalent (the ARN filter; `r.service === 'ssm'` -> true is killed): an ARN lies under no listing path (paths start with /, checked in routes.ts): as a name it concerns none
      if (r.service === 'ssm') for (const n of asked) if (!n.startsWith('arn:')) names.add(n);
      for (const id of asked) ids.add(idKey(r, id));
      for (const id of [...ids]) {
        // Stryker disable next-line ArrayDeclaration: equivalent: no storage key is that string: entry() finds nothing
        for (const k of this.byId.get(id) ?? []) {
          const e = this.entry(k);
          // Stryker disable next-line ConditionalExpression: equivalent (-> false): byId lists only keys holding an entry (added after storing, removed on dispose)
          if (e === undefined) continue;
          keys.add(k);
          for (const other of e.ids) ids.add(other);
          // Stryker disable next-line ConditionalExpression: equivalent (`e.name !== undefined` -> true): entries found through byId are items, which always have a name
          if (e.name !== undefined && r.service === 'ssm') names.add(e.name);
        }
      }
    }
    for (const k of keys) {
      this.drop(k);
      this.landAt(k);
      const s = this.shares.get(k);
      if (s === undefined) continue;
      // The object's own keys share the news for the rest of their second; other ids' keys just lose
      // what they held (what they would answer is theirs to find out).
      // Stryker disable next-line EqualityOperator: equivalent (`<=`; `>=` is killed): a share's seq is never this load's own: a load lands or is gone once, and a listing's gone() does not come here
      if (own.has(k) && s.seq < f.seq) {
        this.shares.set(k, {
          startedAt: s.startedAt,
          seq: f.seq,
          stamp: this.seq,
          body: undefined,
          error: err,
          // Stryker disable next-line ArrayDeclaration: equivalent: news through any of these ids is a NotFound (the same answer) or a value whose answer names the object's name too, marking an id the share's reads are judged by anyway
          ids: [...ids],
        });
      } else {
        this.shares.delete(k);
      }
    }
    for (const id of ids) this.landAt(id);
    const ownKey = cacheKey(r);
    if (f.refresh && this.shares.get(ownKey) === undefined) {
      this.shares.set(ownKey, {
        startedAt: f.startedAt,
        seq: f.seq,
        stamp: this.seq,
        body: undefined,
        error: err,
        // Stryker disable next-line ArrayDeclaration: equivalent: news through any of these ids is a NotFound (the same answer) or a value whose answer names the object's name too, marking an id the share's reads are judged by anyway
        ids: [...ids],
      });
    }
    for (const name of names) {
      this.news({
        role: r.roleArn ?? '',
        name,
        // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator,StringLiteral: equivalent: concerns() compares the flag only for news with a value; a gone item's has none
        withDecryption: r.service === 'ssm' && r.withDecryption,
        loaded: undefined,
      });
    }
  }

  /**
   * News of an item (a refresh answer, or NotFound) that listings must agree with: stored listings that
   * show it otherwise (or leave it out, in their scope) go, and listings in flight are neither joined nor
   * stored.
   */
  private news(n: ItemNews): void {
    for (const [f, l] of this.listingFlights) if (concerns(l, n)) f.outdated = true;
    // Stryker disable next-line ConditionalExpression: equivalent (-> false): a fast path: the loop over no listings does nothing
    if (this.listings.size === 0) return;
    for (const [key, l] of this.listings) {
      if (!concerns(l, n)) continue;
      // Stryker disable next-line OptionalChaining: equivalent: every key in `listings` holds a listing entry with items (set after put stored it, removed on dispose)
      const shown = this.entry(key)?.items?.get(n.name);
      if (n.loaded === undefined ? shown === undefined : shown?.equals(n.loaded.body)) continue;
      // Stryker disable next-line ConditionalExpression: equivalent (`shown === undefined` -> true): an item a listing shows lies in its scope
      if (shown === undefined && !inScope(l, n.name)) continue;
      this.drop(key);
      this.landAt(key);
    }
  }

  private itemTarget(r: ItemRequest): Target {
    const key = cacheKey(r);
    const plain = plainKey(r);
    // A read joins only a load nothing landed since for, for any id of its object.
    const ids = idsOf(r).map((id) => idKey(r, id));
    return {
      key,
      // Stryker disable next-line ConditionalExpression: equivalent (-> false): a secret's plain key is undefined, which has no mark (landedOf counts the floor through any key) and no share
      keys: plain === undefined ? [key, ...ids] : [key, plain, ...ids],
      service: r.service,
      name: itemName(r),
      request: r,
      lookup: () => {
        const own = this.entry(key);
        // Stryker disable next-line ConditionalExpression: equivalent (`plain === undefined` -> false only): for a secret with no entry, entry(undefined) is none too
        return own !== undefined || plain === undefined ? own : this.entry(plain);
      },
      load: (ctx) => this.opts.loader.one(r, ctx).then((loaded) => ({ loaded })),
      land: (res, f) => this.landItem(r, res.loaded, f, f.ttlMs),
      gone: (f, err) => this.landGone(r, f, err),
      // `e`, found by lookup() just before, is the own key's entry or else a parameter's String entry.
      forget: (e) => this.drop(this.entry(key) === e ? key : plain!),
    };
  }

  private pathTarget(p: PathRequest): Target {
    const key = pathKey(p);
    const keys = [key];
    const listed: Listed = {
      role: p.roleArn ?? '',
      path: p.path,
      recursive: p.recursive,
      withDecryption: p.withDecryption,
    };
    return {
      key,
      keys,
      service: 'ssm',
      name: p.path,
      request: undefined,
      lookup: () => this.entry(key),
      load: (ctx, f) => {
        if (f !== undefined) this.listingFlights.set(f, listed);
        return this.opts.loader.path(p, ctx).then((l) => ({ loaded: { body: l.body }, items: l.items }));
      },
      land: (res, f) => {
        // Stryker disable next-line ArrayDeclaration: equivalent: a path load's result always carries its items (PathListing.items is required)
        const items = res.items ?? [];
        // Whether each item agrees with what landed for it since the listing started, judged before
        // the items land (an item that disagrees drops the entry it disagrees with).
        const agree = items.every((item) => {
          const own = cacheKey(item.request);
          const at = item.loaded.plain ? plainKey(item.request)! : own;
          // Stryker disable next-line ArrayDeclaration: equivalent (`?? []` only): an id nothing ever landed at: its mark is the floor, which landedOf counts anyway
          const ids = [item.request.name, ...(item.loaded.ids ?? [])].map((id) => idKey(item.request, id));
          return this.agrees(f, at, [at, own, ...ids], item.loaded.body);
        });
        // Items first: the listing, stored last, is then the most recently used of them.
        for (const item of items) this.landItem(item.request, item.loaded, f, f.ttlMs);
        if (agree && !f.outdated && f.from > this.marks.floor && this.agrees(f, key, keys, res.loaded.body)) {
          this.landAt(key);
          const shown = new Map(items.map((i) => [i.request.name, i.loaded.body]));
          this.put(key, res.loaded.body, undefined, f.ttlMs, LISTING, shown);
          // Stryker disable next-line OptionalChaining: equivalent: land() runs only for cached reads, which need the lru
          if (this.lru?.has(key)) this.listings.set(key, listed);
        } else {
          const e = this.entry(key);
          if (e !== undefined && !e.body?.equals(res.loaded.body)) this.drop(key);
        }
      },
      gone: () => {
        this.drop(key);
        this.landAt(key);
      },
      forget: () => this.drop(key),
    };
  }
}

/** lru-cache's options for a plain get and a peek: one object, so a hit allocates none. */
const GET = {};
const PEEK = {};

/** What a listing entry says about itself (it answers for no item id). */
// Stryker disable next-line ArrayDeclaration,StringLiteral,BooleanLiteral: equivalent: ids, sel, plain and dec are read only for entries found through byId; a listing's ids name it under no real id
const LISTING = { ids: [], sel: '', plain: true, dec: false, name: undefined };

/** Another read shares load `f` with its TTL: kept as long as the shortest positive one asks. */
function shareTtl(f: Flight, ttl: number): void {
  if (ttl <= 0) return;
  f.ttlMs = f.ttlMs <= 0 ? ttl : Math.min(f.ttlMs, ttl);
}

/** Every storage key of the object `r` names with its selector: its own, the other flag's, the shared one. */
function objectKeys(r: ItemRequest): string[] {
  if (r.service !== 'ssm') return [cacheKey(r)];
  return [cacheKey({ ...r, withDecryption: false }), cacheKey({ ...r, withDecryption: true }), plainKey(r)!];
}

/** The name an item's answer gives it (the one listings show), or the one asked for. */
function nameOf(r: ItemRequest, loaded: Loaded): string {
  return (
    loaded.ids?.find((id) => !id.startsWith('arn:')) ??
    idsOf(r).find((id) => id.startsWith('/')) ??
    itemName(r)
  );
}

/** Whether news of an item concerns a listing: same role, a name under its path, a flag it compares. */
function concerns(l: Listed, n: ItemNews): boolean {
  if (l.role !== n.role || !under(l.path, n.name)) return false;
  // A SecureString reads otherwise with the other flag: only the same flag's listings compare its value.
  return n.loaded === undefined || n.loaded.plain === true || l.withDecryption === n.withDecryption;
}

/** Whether `name` lies under `path` (`/a` and `/a/` hold `/a/x`, not `/ab`). */
function under(path: string, name: string): boolean {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  return name.startsWith(prefix);
}

/** Whether a listing of `l` would show `name`, which lies under its path: a direct child, or any depth when recursive. */
function inScope(l: Listed, name: string): boolean {
  if (l.recursive) return true;
  const prefix = l.path.endsWith('/') ? l.path : `${l.path}/`;
  return !name.slice(prefix.length).includes('/');
}

/** A loader's call as a promise, also when it throws at once (a fault of pscache's own). */
function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (e) {
    return Promise.reject(e);
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
