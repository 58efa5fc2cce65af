// Time as an input: the cache, the batcher and the credentials read the time and set timers only through a
// Clock, so tests drive them with a fake one and release upstream answers in any order.

export interface Timer {
  /** Stops the timer; harmless after it fired. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic enough for TTLs (Date.now in production). */
  now(): number;
  /** Runs `fn` after `ms`; the timer never keeps the process alive on its own. */
  setTimeout(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: Date.now,
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
