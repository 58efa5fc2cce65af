// The one-second share of refreshNow and ttl=0 answers: such reads of one object within a second of a
// refresh load's start get that load's outcome instead of calling upstream again. Kept under the storage
// key the answer belongs to (one for both decryption flags of a String parameter), bounded in items and
// bytes (least recently used go first), and dropped by a timer of the injected clock when its second ends.
import { LRUCache } from 'lru-cache';
import type { Clock, Timer } from '../clock.ts';

export interface Share {
  /** When the load started: the share is good for `lifeMs` after it. */
  startedAt: number;
  /** The load's sequence number. */
  seq: number;
  /** The newest load number given out when it landed: what landed since outdates it. */
  stamp: number;
  body: Buffer | undefined;
  error: unknown;
  /**
   * The object's ids (idKey) as the answer named them: news through any of them (a NotFound by ARN for a
   * share made by name) outdates it, though no entry ties the two together (a ttl=0 load keeps none).
   */
  ids: readonly string[];
}

export interface ShareBounds {
  maxItems: number;
  maxBytes: number;
}

const SHARE_OVERHEAD = 64;

export class Shares {
  private readonly lru: LRUCache<string, Share>;
  private timer: Timer | undefined;
  /** When the purge timer fires: a share due earlier moves it. */
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    private readonly lifeMs: number,
    bounds: ShareBounds,
    /** Told after shares went at the end of their second (what they needed may go too). */
    private readonly onPurge: () => void = () => {},
  ) {
    this.lru = new LRUCache<string, Share>({
      max: Math.max(1, bounds.maxItems),
      maxSize: Math.max(1, bounds.maxBytes),
      // A body larger than the whole budget is not shared: its next refresh loads again.
      maxEntrySize: Math.max(1, bounds.maxBytes),
      sizeCalculation: (s, k) => (s.body?.length ?? 0) + k.length * 2 + SHARE_OVERHEAD,
    });
  }

  /** The share of `key` still inside its second, if any. */
  get(key: string): Share | undefined {
    const s = this.lru.get(key);
    return s !== undefined && this.clock.now() - s.startedAt < this.lifeMs ? s : undefined;
  }

  set(key: string, share: Share): void {
    const now = this.clock.now();
    const due = share.startedAt + this.lifeMs;
    if (due <= now) return;
    this.lru.set(key, share);
    this.purgeAt(due, now);
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  get count(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  /** The lowest stamp of the shares held (Infinity when none): marks above it may still matter to them. */
  get oldestStamp(): number {
    let oldest = Number.POSITIVE_INFINITY;
    // Stryker disable next-line EqualityOperator: equivalent: on a tie the minimum is the same number
    for (const s of this.lru.values()) if (s.stamp < oldest) oldest = s.stamp;
    return oldest;
  }

  /** How long ago the oldest share's load started (0 when none is held). */
  get oldestAgeMs(): number {
    let oldest = Number.POSITIVE_INFINITY;
    // Stryker disable next-line EqualityOperator: equivalent: on a tie the minimum is the same number
    for (const s of this.lru.values()) if (s.startedAt < oldest) oldest = s.startedAt;
    return oldest === Number.POSITIVE_INFINITY ? 0 : this.clock.now() - oldest;
  }

  /** The purge timer fires at `due` at the latest. */
  private purgeAt(due: number, now: number): void {
    // Stryker disable next-line EqualityOperator: equivalent: at due === timerAt the timer is only replaced by one due at the same time
    if (due >= this.timerAt) return;
    this.timer?.cancel();
    this.timerAt = due;
    this.timer = this.clock.setTimeout(() => this.purge(), due - now);
  }

  /** Drops every share past its second; comes back when the next one left is due. */
  private purge(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const key of [...this.lru.keys()]) {
      const s = this.lru.peek(key)!;
      const due = s.startedAt + this.lifeMs;
      if (due <= now) this.lru.delete(key);
      else if (
        // Stryker disable next-line EqualityOperator: equivalent: on a tie the minimum is the same number
        due < next
      )
        next = due;
    }
    // Stryker disable next-line ConditionalExpression: equivalent: purgeAt(Infinity) returns at once (Infinity >= timerAt, which purge() just reset to Infinity)
    if (next !== Number.POSITIVE_INFINITY) this.purgeAt(next, now);
    this.onPurge();
  }
}
