// The durable "newer wins" record. Per key (a storage key, or an id an object is known by), the newest
// number given out, in the one sequence every load is numbered from, when something last landed there (a
// value, NotFound, a contradiction): every load started before that moment may carry older data, so it
// neither stores there nor is joined there unless it agrees with what landed.
//
// Kept while a load at or below a mark still runs, or a one-second share older than it could still be
// answered, and bounded: when a mark must go for room the floor rises to it instead, so no load at or
// below it stores anywhere (the cost is a refetch, never a wrong value).

export interface MarkBounds {
  /** Most marks kept at once. */
  maxItems: number;
  /** Most bytes they are counted as (a key's characters twice, plus a fixed overhead). */
  maxBytes: number;
}

const MARK_OVERHEAD = 56;

export class Marks {
  /** Map order is the order marks were last raised: the oldest go first when room is needed. */
  private readonly marks = new Map<string, number>();
  private size = 0;
  private floorSeq = 0;
  /** What the table was last pruned below: pruning again below the same finds nothing. */
  private prunedAt = 0;

  constructor(private readonly bounds: MarkBounds) {}

  /** No load numbered at or below this stores or is joined anywhere. */
  get floor(): number {
    return this.floorSeq;
  }

  /** The mark of `key` (or the floor, if higher): loads numbered at or below it must agree to store. */
  landed(key: string): number {
    return Math.max(this.marks.get(key) ?? 0, this.floorSeq);
  }

  get count(): number {
    return this.marks.size;
  }

  get bytes(): number {
    return this.size;
  }

  /** Something landed at `key` when `newest` was the last number given out. */
  land(key: string, newest: number, keepAbove: number): void {
    const m = this.marks.get(key);
    if (m !== undefined) {
      if (m >= newest) return;
      // Moved to the end: the Map's order stays "least recently raised first".
      this.marks.delete(key);
    } else {
      this.size += weigh(key);
    }
    this.marks.set(key, newest);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent: an extra makeRoom within bounds only prunes below keepAbove (marks nothing running or shared needs) and stops
    if (this.marks.size > this.bounds.maxItems || this.size > this.bounds.maxBytes) this.makeRoom(keepAbove);
  }

  /**
   * A mark matters only to what is numbered at or below it and still about: a running load, or a share.
   * Marks below `keepAbove` (the oldest of those) stop nothing any more. Infinity (nothing about) drops
   * them all.
   */
  prune(keepAbove: number): void {
    if (keepAbove === Number.POSITIVE_INFINITY) {
      this.marks.clear();
      this.size = 0;
    } else if (keepAbove !== this.prunedAt) {
      for (const [key, m] of this.marks) if (m < keepAbove) this.drop(key);
    }
    this.prunedAt = keepAbove;
  }

  /** Forgets every mark (the cache was cleared, and a floor of its own stops every older load). */
  clear(): void {
    this.marks.clear();
    this.size = 0;
  }

  private makeRoom(keepAbove: number): void {
    this.prune(keepAbove);
    // Still full: the least recently raised marks go, and the floor takes their place.
    for (const [key, m] of this.marks) {
      if (this.marks.size <= this.bounds.maxItems && this.size <= this.bounds.maxBytes) break;
      this.drop(key);
      // Stryker disable next-line EqualityOperator: equivalent: at m === floorSeq the floor is set to the value it has
      if (m > this.floorSeq) this.floorSeq = m;
    }
  }

  private drop(key: string): void {
    this.marks.delete(key);
    this.size -= weigh(key);
  }
}

const weigh = (key: string) => key.length * 2 + MARK_OVERHEAD;
