// Statistics for the soak report: percentiles, trimmed means, the Mann–Whitney U test with its
// rank-biserial effect size, and a bootstrap confidence interval for a difference of medians.

/** The p-th percentile (0..100) of already sorted samples, interpolating between the closest ranks. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export const sortNumbers = (xs: ArrayLike<number>): Float64Array => Float64Array.from(xs).sort();

export function percentile(xs: readonly number[], p: number): number {
  return percentileSorted(sortNumbers(xs), p);
}

/** Mean of the samples left after cutting `trim` (0..0.5) off each end. */
export function trimmedMean(xs: readonly number[], trim = 0.1): number {
  const s = sortNumbers(xs);
  const cut = Math.floor(s.length * trim);
  let sum = 0;
  for (let i = cut; i < s.length - cut; i++) sum += s[i]!;
  return sum / Math.max(1, s.length - 2 * cut);
}

/** Standard normal CDF, through erfc by Numerical Recipes' Chebyshev fit (relative error < 1.2e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const y =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? 1 - y / 2 : y / 2;
}

export interface MannWhitney {
  u: number;
  z: number;
  /** Two-sided p-value (normal approximation with tie correction and continuity correction). */
  p: number;
  /**
   * Rank-biserial correlation in [-1, 1]: P(a > b) − P(a < b). 0 = no tendency; |r| < 0.1 is negligible,
   * 0.1–0.3 small, 0.3–0.5 medium, above large.
   */
  effect: number;
}

/** Mann–Whitney U test of whether samples `a` tend to be larger or smaller than samples `b`. */
export function mannWhitney(a: readonly number[], b: readonly number[]): MannWhitney {
  const n1 = a.length;
  const n2 = b.length;
  const all = new Array<{ v: number; g: 0 | 1 }>(n1 + n2);
  for (let i = 0; i < n1; i++) all[i] = { v: a[i]!, g: 0 };
  for (let i = 0; i < n2; i++) all[n1 + i] = { v: b[i]!, g: 1 };
  all.sort((x, y) => x.v - y.v);
  let rankSumA = 0;
  let tieTerm = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.v === all[i]!.v) j++;
    const rank = (i + j + 2) / 2; // average of ranks i+1 .. j+1
    const t = j - i + 1;
    if (t > 1) tieTerm += t ** 3 - t;
    for (let k = i; k <= j; k++) if (all[k]!.g === 0) rankSumA += rank;
    i = j + 1;
  }
  const n = n1 + n2;
  const u = rankSumA - (n1 * (n1 + 1)) / 2;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  const diff = u - mu;
  const z = sigma === 0 ? 0 : (diff - Math.sign(diff) * 0.5) / sigma;
  return { u, z, p: Math.min(1, 2 * (1 - normalCdf(Math.abs(z)))), effect: (2 * u) / (n1 * n2) - 1 };
}

/** A small, seedable PRNG (mulberry32), so a report can be reproduced. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Percentile bootstrap CI (level e.g. 0.95) of median(a) − median(b). */
export function bootstrapMedianDiff(
  a: readonly number[],
  b: readonly number[],
  level = 0.95,
  rounds = 400,
  seed = 1,
): { low: number; high: number } {
  const rand = prng(seed);
  const resampleMedian = (xs: readonly number[]) => {
    const r = new Float64Array(xs.length);
    for (let i = 0; i < xs.length; i++) r[i] = xs[Math.floor(rand() * xs.length)]!;
    r.sort();
    return percentileSorted(r, 50);
  };
  const diffs: number[] = [];
  for (let i = 0; i < rounds; i++) diffs.push(resampleMedian(a) - resampleMedian(b));
  const s = sortNumbers(diffs);
  return {
    low: percentileSorted(s, ((1 - level) / 2) * 100),
    high: percentileSorted(s, ((1 + level) / 2) * 100),
  };
}
