// Time as an input: the cache, the batcher and the credentials read the time and set timers only through a
// Clock, so tests drive them with a fake one and release upstream answers in any order.

export interface Timer {
  /** Stops the timer; harmless after it fired. */
  cancel(): void;
}

export interface Clock {
  /**
   * Milliseconds from an arbitrary origin, for intervals (TTLs, windows, deadlines): monotonic in
   * production, so a step of the wall clock stretches or cuts none of them. Never a timestamp to show.
   */
  now(): number;
  /** Runs `fn` after `ms`; the timer never keeps the process alive on its own. */
  setTimeout(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => monotonicMs(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Milliseconds from the process's start on a monotonic clock (libuv's hrtime), for intervals and durations.
 * Not `performance.now()`: the first touch of the `performance` global loads perf_hooks, ~0.6 ms and
 * ~0.8 MiB on the first answer (measured, docs/benchmarks.md). Not `process.hrtime()`: it allocates an
 * array on every call, and this runs on every hit.
 */
export function monotonicMs(): number {
  return process.uptime() * 1000;
}
