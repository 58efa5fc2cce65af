#!/usr/bin/env node
// npm `bin` entry: runs the bundled CLI (build it first with `npm run build`), compiled from Node's compile
// cache when it has one (Node.js 22.1+), kept in a directory of the user's own (docs/sidecars.md, Start-up).
// CommonJS, not an ES module: an ES module entry starts Node's ESM loader, ~10% of a start (measured).
'use strict';

/**
 * `$XDG_CACHE_HOME/pscache/compile-cache`, else `~/.cache/pscache/compile-cache`, made 0700 if missing;
 * used only if it is a directory (not a link) of this user's that nobody else may enter, since whoever
 * can write there chooses the code V8 runs. Undefined when it is not, or cannot be made.
 */
function privateDir() {
  const { env } = process;
  if (typeof process.getuid !== 'function') return undefined;
  const base = env.XDG_CACHE_HOME?.startsWith('/')
    ? env.XDG_CACHE_HOME
    : env.HOME?.startsWith('/')
      ? `${env.HOME}/.cache`
      : undefined;
  if (base === undefined) return undefined;
  const dir = `${base}/pscache/compile-cache`;
  const fs = require('node:fs');
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid() && (st.mode & 0o077) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

const { enableCompileCache, flushCompileCache } = require('node:module');
// Node.js 20 has no compile cache; NODE_DISABLE_COMPILE_CACHE turns it off; with NODE_COMPILE_CACHE set,
// Node has enabled it already, in that directory.
if (
  typeof enableCompileCache === 'function' &&
  !process.env.NODE_DISABLE_COMPILE_CACHE &&
  !process.env.NODE_COMPILE_CACHE
) {
  const dir = privateDir();
  if (dir !== undefined) {
    try {
      enableCompileCache(dir);
    } catch {
      // no cache, then: the bundle compiles from source as it would without one
    }
  }
}

require('../dist/pscache.cjs');

// Node writes the cache as the process exits; a daemon that is never stopped cleanly writes it here.
if (typeof flushCompileCache === 'function') setTimeout(flushCompileCache, 1000).unref();
