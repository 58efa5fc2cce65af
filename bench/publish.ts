// Where a full benchmark run publishes its results: the section of docs/benchmarks.md between two markers.

/** The page whose results section a full `npm run bench` rewrites. */
export const RESULTS_PAGE = new URL('../docs/benchmarks.md', import.meta.url);
export const RESULTS_START = '<!-- bench:results:start -->';
export const RESULTS_END = '<!-- bench:results:end -->';

/**
 * The page with everything between the markers replaced by `body` (the markers stay). Throws when the
 * markers are missing or out of order, so a moved or hand-edited page is reported, never half rewritten.
 */
export function replaceResults(page: string, body: string): string {
  const i = page.indexOf(RESULTS_START);
  const j = page.indexOf(RESULTS_END);
  if (i < 0 || j < i || page.indexOf(RESULTS_START, i + 1) >= 0 || page.indexOf(RESULTS_END, j + 1) >= 0) {
    throw new Error(`expected one ${RESULTS_START} ... ${RESULTS_END} section`);
  }
  return `${page.slice(0, i + RESULTS_START.length)}\n${body}${page.slice(j)}`;
}
