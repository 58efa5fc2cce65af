/**
 * How many garbage collections a synchronous loop causes: the way the hit-path tests check that a hit
 * allocates nothing of its own.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';

/**
 * Collections that start while `run` runs, the fewest of up to `tries` runs (stopping at 0). A loop that
 * allocates collects in every run; a collection something else in the process causes (the test runner, a
 * timer, the memory reducer) does not repeat in each window, and one that starts before or after the loop
 * is not counted.
 */
export async function collectionsWhile(run: () => void, tries = 3): Promise<number> {
  let fewest = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < tries && fewest > 0; attempt++) {
    const starts: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) starts.push(e.startTime);
    });
    observer.observe({ entryTypes: ['gc'] });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const from = performance.now();
    run();
    const to = performance.now();
    // Entries are delivered after the loop; wait for them.
    await new Promise((resolve) => setTimeout(resolve, 20));
    observer.disconnect();
    fewest = Math.min(fewest, starts.filter((t) => t >= from && t <= to).length);
  }
  return fewest;
}
