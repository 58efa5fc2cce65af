// The durable "newer wins" record: per storage key, the sequence number of the newest load that said
// something about it (a value stored or not, NotFound, AccessDenied) or that a refresh asked for. Every
// writer checks it, whichever key it came through (both decryption flags of a String parameter, a path
// listing's items, a batch). Bounded: when a mark must go for room, a floor rises instead, so nothing
// older than the dropped mark can store anywhere (the cost is a refetch, never a wrong value).

/** Most marks kept at once, and their bytes (a key's characters count twice, as in the cache). */
export interface MarkBounds {
  maxItems: number;
  maxBytes: number;
}

const MARK_OVERHEAD = 48;

export class Marks {
  /** Key -> sequence number. Map order is the order marks were last raised: the oldest go first. */
  private readonly marks = new Map<string, number>();
  private size = 0;
  /** No load numbered at or below this may store: raised when a mark is dropped for room. */
  private floorSeq = 0;

  constructor(private readonly bounds: MarkBounds) {}

  /** The mark of `key` (or the floor, if higher). */
  get(key: string): number {
    return Math.max(this.marks.get(key) ?? 0, this.floorSeq);
  }

  get floor(): number {
    return this.floorSeq;
  }

  /** How many marks are held (for tests and the bound). */
  get count(): number {
    return this.marks.size;
  }

  get bytes(): number {
    return this.size;
  }

  /** Raises the mark of `key` to `seq` (a mark never goes down). */
  raise(key: string, seq: number, oldestRunning: number): void {
    const m = this.marks.get(key);
    if (m !== undefined) {
      if (m >= seq) return;
      // Moved to the end: the Map's order stays "least recently raised first".
      this.marks.delete(key);
    } else {
      this.size += weigh(key);
    }
    this.marks.set(key, seq);
    if (this.marks.size > this.bounds.maxItems || this.size > this.bounds.maxBytes)
      this.makeRoom(oldestRunning);
  }

  /**
   * A mark only stops loads older than it, and every load still running is numbered at least
   * `oldestRunning`: marks up to that stop nothing any more. Infinity (no load running) drops them all.
   */
  prune(oldestRunning: number): void {
    if (oldestRunning === Number.POSITIVE_INFINITY) {
      this.marks.clear();
      this.size = 0;
      return;
    }
    for (const [key, seq] of this.marks) {
      if (seq <= oldestRunning) this.drop(key);
    }
  }

  /** Forgets every mark (the cache was cleared and a floor of its own stops every older load). */
  clear(): void {
    this.marks.clear();
    this.size = 0;
  }

  private makeRoom(oldestRunning: number): void {
    this.prune(oldestRunning);
    for (const [key, seq] of this.marks) {
      if (this.marks.size <= this.bounds.maxItems && this.size <= this.bounds.maxBytes) break;
      this.drop(key);
      if (seq > this.floorSeq) this.floorSeq = seq;
    }
  }

  private drop(key: string): void {
    this.marks.delete(key);
    this.size -= weigh(key);
  }
}

const weigh = (key: string) => key.length * 2 + MARK_OVERHEAD;
