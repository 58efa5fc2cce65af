// The batch window: single-item misses for different names that arrive within a short window share one
// GetParameters (10 names) or BatchGetSecretValue (20 ids) call; each caller still gets exactly the body or
// error its own GetParameter / GetSecretValue would have given (the loader's `many` sees to that).
import type { Service } from '../aws/types.ts';
import type { Clock, Timer } from '../clock.ts';
import type { ItemRequest, Loaded } from '../items.ts';
import { BATCH_LIMIT, type LoadContext, type Outcome } from './types.ts';

interface Waiter {
  r: ItemRequest;
  ctx: LoadContext | undefined;
  resolve: (l: Loaded) => void;
  reject: (e: unknown) => void;
}

interface Group {
  service: Service;
  waiters: Waiter[];
  timer: Timer;
  /** When the first waiter arrived: the group never waits longer than MAX_WAIT_WINDOWS windows. */
  openedAt: number;
}

/**
 * The window slides: each arrival gives the group another window to grow (a burst of concurrent misses
 * arrives spread over the time the server takes to read them), but no request waits more than this many
 * windows for its batch.
 */
const MAX_WAIT_WINDOWS = 5;

/** How the window's loads are made: alone, or together. */
export interface BatchLoads {
  one(r: ItemRequest, ctx?: LoadContext): Promise<Loaded>;
  many(rs: readonly ItemRequest[], ctx: LoadContext): Promise<Outcome[]>;
}

export class Batcher {
  private readonly open = new Map<string, Group>();

  constructor(
    private readonly windowMs: number,
    private readonly loads: BatchLoads,
    private readonly clock: Clock,
    /** Requests of one group may share a call (service, decryption flag, role, Region). */
    private readonly groupOf: (r: ItemRequest) => string,
  ) {}

  load(r: ItemRequest, ctx?: LoadContext): Promise<Loaded> {
    const groupKey = this.groupOf(r);
    return new Promise<Loaded>((resolve, reject) => {
      const now = this.clock.now();
      let g = this.open.get(groupKey);
      if (!g) {
        const group: Group = {
          service: r.service,
          waiters: [],
          timer: this.clock.setTimeout(() => this.flush(groupKey, group), this.windowMs),
          openedAt: now,
        };
        g = group;
        this.open.set(groupKey, g);
      } else if (now + this.windowMs <= g.openedAt + this.windowMs * MAX_WAIT_WINDOWS) {
        const group = g;
        group.timer.cancel();
        group.timer = this.clock.setTimeout(() => this.flush(groupKey, group), this.windowMs);
      }
      g.waiters.push({ r, ctx, resolve, reject });
      if (g.waiters.length >= BATCH_LIMIT[r.service]) {
        g.timer.cancel();
        this.flush(groupKey, g);
      }
    });
  }

  private flush(groupKey: string, g: Group): void {
    // Stryker disable next-line ConditionalExpression: equivalent: flush runs only for the group open under its key (a full group cancels its timer, the timer is the only other caller)
    if (this.open.get(groupKey) === g) this.open.delete(groupKey);
    const waiters = g.waiters;
    if (waiters.length === 1) {
      // Nobody to share with: the single call is the cheaper one (and needs only the single permission).
      const w = waiters[0]!;
      this.loads.one(w.r, w.ctx).then(w.resolve, w.reject);
      return;
    }
    const ctx: LoadContext = {
      // A failed attempt of the shared call is a failed attempt for each of them.
      onRetry: (e) => {
        for (const w of waiters) w.ctx?.onRetry?.(e);
      },
    };
    this.loads
      .many(
        waiters.map((w) => w.r),
        ctx,
      )
      .then(
        (outcomes) => {
          waiters.forEach((w, i) => {
            const o = outcomes[i]!;
            if (o.ok) w.resolve(o.loaded);
            else w.reject(o.error);
          });
        },
        (e: unknown) => {
          for (const w of waiters) w.reject(e);
        },
      );
  }
}
