// What the file that started the bundle left for it on globalThis: the layers' pscache/start.cjs and the
// npm bin's `serve` (bin/pscache.cjs, through dist/start.cjs) compile it from a V8 code cache.

/**
 * Whether the bundle was compiled from its V8 code cache (`used`) or why not (`missing`, `malformed`,
 * `other-bundle`, `rejected`); undefined when it was started otherwise (`node dist/pscache.cjs`).
 */
export function codeCacheStatus(): string | undefined {
  const status = (globalThis as Record<symbol, unknown>)[Symbol.for('pscache.codeCache')];
  return typeof status === 'string' ? status : undefined;
}

/**
 * Tells the starter that `serve` is up: bin/pscache.cjs then writes the cache of everything compiled so
 * far, for the next start, when this one had none that fit. Its failure (a read-only directory) is not
 * this start's.
 */
export function startCompleted(): void {
  const done = (globalThis as Record<symbol, unknown>)[Symbol.for('pscache.started')];
  if (typeof done !== 'function') return;
  try {
    done();
  } catch {
    // the next start compiles from source again, as this one did
  }
}
