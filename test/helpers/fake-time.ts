// A fake clock and a scriptable loader for unit and model-based tests of the cache core: time moves only
// when a test says so, and every upstream load waits until the test answers it, in any order.
import type { Clock, Timer } from '../../src/clock.ts';
import type { ItemRequest, Loaded, PathRequest } from '../../src/items.ts';
import type { LoadContext, Loader, Outcome, PathListing } from '../../src/loader/index.ts';

/** Lets every pending promise continuation run (several turns: chains of .then). */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

export class FakeClock implements Clock {
  private t = 1_000_000;
  private seq = 0;
  private timers: Array<{ at: number; seq: number; fn: () => void; cancelled: boolean }> = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Timers not yet fired nor cancelled. */
  get pending(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }

  /** Moves time forward by `ms`, firing due timers in order, settling promises after each. */
  async advance(ms: number): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      this.timers = this.timers.filter((x) => !x.cancelled);
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
      await settle();
    }
    this.t = until;
    await settle();
  }
}

export type LoadKind = 'one' | 'many' | 'path';

/** One load the cache asked for, waiting for the test to answer it. */
export interface PendingLoad {
  id: number;
  kind: LoadKind;
  requests: readonly ItemRequest[];
  path: PathRequest | undefined;
  ctx: LoadContext | undefined;
  settled: boolean;
  /** The load's answer: one Loaded (one), one outcome per request (many), a listing (path). */
  resolve(value: Loaded | Outcome[] | PathListing): void;
  reject(error: unknown): void;
}

/** A Loader whose every load waits for the test. */
export class ScriptedLoader implements Loader {
  readonly loads: PendingLoad[] = [];

  private add(
    kind: LoadKind,
    requests: readonly ItemRequest[],
    path: PathRequest | undefined,
    ctx?: LoadContext,
  ) {
    return new Promise<never>((resolve, reject) => {
      const load: PendingLoad = {
        id: this.loads.length,
        kind,
        requests,
        path,
        ctx,
        settled: false,
        resolve: (v) => {
          load.settled = true;
          (resolve as (v: unknown) => void)(v);
        },
        reject: (e) => {
          load.settled = true;
          reject(e);
        },
      };
      this.loads.push(load);
    });
  }

  one(r: ItemRequest, ctx?: LoadContext): Promise<Loaded> {
    return this.add('one', [r], undefined, ctx);
  }

  many(rs: readonly ItemRequest[], ctx?: LoadContext): Promise<Outcome[]> {
    return this.add('many', rs, undefined, ctx);
  }

  path(p: PathRequest, ctx?: LoadContext): Promise<PathListing> {
    return this.add('path', [], p, ctx);
  }

  /** Loads not answered yet. */
  get open(): PendingLoad[] {
    return this.loads.filter((l) => !l.settled);
  }

  /** The only open load (fails the test's assumption loudly otherwise). */
  only(): PendingLoad {
    const open = this.open;
    if (open.length !== 1) throw new Error(`expected one open load, found ${open.length}`);
    return open[0]!;
  }
}

export const body = (text: string): Loaded => ({ body: Buffer.from(text) });
