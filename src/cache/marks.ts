// The durable "newer wins" record. Per key (a storage key, or an id an object is known by), two numbers
// in the one sequence every load is numbered from:
//
// - `gate`: no load numbered at or below it may store there or be joined there. A load that lands raises
//   it to the newest number given out so far (every load started before the landing may carry older
//   data); a refresh asked for raises it to just below its own number.
// - `landed`: the newest number given out when something last landed there (a value, NotFound, a
//   contradiction), so a late load can tell whether what it brings must agree with a later answer.
//
// Kept only while a load at or below a mark still runs, and bounded: when a mark must go for room the
// floor rises to it instead, so no load at or below it stores anywhere (the cost is a refetch, never a
// wrong value).

export interface MarkBounds {
  /** Most marks kept at once. */
  maxItems: number;
  /** Most bytes they are counted as (a key's characters twice, plus a fixed overhead). */
  maxBytes: number;
}

interface Mark {
  gate: number;
  landed: number;
}

const MARK_OVERHEAD = 56;

export class Marks {
  /** Map order is the order marks were last raised: the oldest go first when room is needed. */
  private readonly marks = new Map<string, Mark>();
  private size = 0;
  private floorSeq = 0;
  /** The oldest running load when the table was last pruned: pruning again before it changes finds nothing. */
  private prunedAt = 0;

  constructor(private readonly bounds: MarkBounds) {}

  /** No load numbered at or below this stores or is joined anywhere. */
  get floor(): number {
    return this.floorSeq;
  }

  /** The gate of `key`: loads numbered at or below it neither store nor are joined there. */
  gate(key: string): number {
    return Math.max(this.marks.get(key)?.gate ?? 0, this.floorSeq);
  }

  /** The number given out last when something landed at `key` (or the floor, if higher). */
  landed(key: string): number {
    return Math.max(this.marks.get(key)?.landed ?? 0, this.floorSeq);
  }

  get count(): number {
    return this.marks.size;
  }

  get bytes(): number {
    return this.size;
  }

  /** A refresh numbered `seq` was asked for: older loads may no longer store or be joined at `key`. */
  ask(key: string, seq: number, oldestRunning: number): void {
    this.raise(key, seq - 1, 0, oldestRunning);
  }

  /** Something landed at `key` when `newest` was the last number given out. */
  land(key: string, newest: number, oldestRunning: number): void {
    this.raise(key, newest, newest, oldestRunning);
  }

  /**
   * A mark stops only loads numbered at or below it; every running load is numbered at least
   * `oldestRunning`: marks below that stop nothing any more. Infinity (nothing runs) drops them all.
   */
  prune(oldestRunning: number): void {
    if (oldestRunning === Number.POSITIVE_INFINITY) {
      this.marks.clear();
      this.size = 0;
    } else if (oldestRunning !== this.prunedAt) {
      for (const [key, m] of this.marks) if (m.gate < oldestRunning) this.drop(key);
    }
    this.prunedAt = oldestRunning;
  }

  /** Forgets every mark (the cache was cleared, and a floor of its own stops every older load). */
  clear(): void {
    this.marks.clear();
    this.size = 0;
  }

  private raise(key: string, gate: number, landed: number, oldestRunning: number): void {
    const m = this.marks.get(key);
    if (m !== undefined) {
      if (m.gate >= gate && m.landed >= landed) return;
      // Moved to the end: the Map's order stays "least recently raised first".
      this.marks.delete(key);
      this.marks.set(key, { gate: Math.max(m.gate, gate), landed: Math.max(m.landed, landed) });
    } else {
      this.marks.set(key, { gate, landed });
      this.size += weigh(key);
    }
    if (this.marks.size > this.bounds.maxItems || this.size > this.bounds.maxBytes)
      this.makeRoom(oldestRunning);
  }

  private makeRoom(oldestRunning: number): void {
    this.prune(oldestRunning);
    // Still full: the least recently raised marks go, and the floor takes their place.
    for (const [key, m] of this.marks) {
      if (this.marks.size <= this.bounds.maxItems && this.size <= this.bounds.maxBytes) break;
      this.drop(key);
      if (m.gate > this.floorSeq) this.floorSeq = m.gate;
    }
  }

  private drop(key: string): void {
    this.marks.delete(key);
    this.size -= weigh(key);
  }
}

const weigh = (key: string) => key.length * 2 + MARK_OVERHEAD;
