#!/usr/bin/env node
// npm `bin` entry: runs the bundled CLI (build it first with `npm run build`), compiled from a cache kept
// in a directory of the user's own (docs/sidecars.md, Start-up): `serve` from V8's cache of its own start,
// the rest through Node's compile cache (Node.js 22.1+).
// CommonJS, not an ES module: an ES module entry starts Node's ESM loader, ~10% of a start (measured).
'use strict';

/**
 * `$XDG_CACHE_HOME/pscache/compile-cache`, else `~/.cache/pscache/compile-cache`, made 0700 if missing;
 * used only if it is a directory (not a link) of this user's that nobody else may enter, since whoever
 * can write there chooses the code V8 runs. Undefined when it is not, or cannot be made. Node's cache
 * files and `serve.v8cache` live there.
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
    // Its parent too: whoever may write there can put another directory in its place.
    const up = fs.lstatSync(`${base}/pscache`);
    const uid = process.getuid();
    const own = st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0;
    return own && up.isDirectory() && up.uid === uid && (up.mode & 0o022) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

const { enableCompileCache, flushCompileCache } = require('node:module');
/** How long after `serve` is up its start cache is written (the serving line comes within 100 ms). */
const SAVE_AFTER_MS = 200;
// NODE_DISABLE_COMPILE_CACHE turns both caches off; with NODE_COMPILE_CACHE set, Node has enabled its own
// already, in that directory.
const serving = process.argv[2] === 'serve';
const dir =
  process.env.NODE_DISABLE_COMPILE_CACHE || (!serving && typeof enableCompileCache !== 'function')
    ? undefined
    : privateDir();
// Node's compile cache (Node.js 22.1 and later): for every module loaded through require, the bundle when
// it is, and what it loads on demand (the emulator, the AWS SDK's credential chain).
if (typeof enableCompileCache === 'function' && dir !== undefined && !process.env.NODE_COMPILE_CACHE) {
  try {
    enableCompileCache(dir);
  } catch {
    // no cache, then: the bundle compiles from source as it would without one
  }
}

if (serving && dir !== undefined) {
  // `serve` compiles the bundle from V8's cache of a whole start (serve.v8cache, written by the first start
  // and whenever it does not fit), which holds what Node's compile cache does not: every function the
  // start ran, not only what compiled with the bundle (docs/sidecars.md, Start-up). On any node.
  const start = require('../dist/start.cjs');
  const fs = require('node:fs');
  const file = `${dir}/serve.v8cache`;
  // The cache is renamed while this start tries it, and back once the start is up (or exits): a start
  // that died trying it (node crashing on data V8 took for good) leaves it under the other name, and the
  // next start drops it and compiles from source, instead of crashing in turn, start after start.
  const trying = `${file}.trying`;
  let tried = false;
  try {
    fs.rmSync(trying);
  } catch {
    try {
      fs.renameSync(file, trying);
      tried = true;
    } catch {
      // none yet
    }
  }
  const compiled = start.compile(`${__dirname}/../dist`, { cacheFile: tried ? trying : file, own: true });
  globalThis[Symbol.for('pscache.codeCache')] = compiled.status;
  const putBack = () => {
    if (!tried) return;
    tried = false;
    try {
      fs.renameSync(trying, file);
    } catch {
      // another start replaced it meanwhile
    }
  };
  if (compiled.status === 'used') {
    globalThis[Symbol.for('pscache.started')] = putBack;
    process.once('exit', putBack);
  }
  // Written off the start's path (V8 takes a few ms to serialise it), once the serving line is out too,
  // or as the process exits, if that comes first.
  let saved = false;
  const save = () => {
    if (saved) return;
    saved = true;
    try {
      // What it tried and V8 refused, or found unusable: gone, then replaced.
      if (tried) fs.rmSync(trying, { force: true });
      start.save(file, compiled);
    } catch {
      // a directory it cannot write: the next start compiles from source, as this one did
    }
  };
  if (compiled.status !== 'used') {
    globalThis[Symbol.for('pscache.started')] = () => {
      setTimeout(save, SAVE_AFTER_MS).unref();
      process.once('exit', save);
    };
  }
  start.run(compiled);
} else {
  require('../dist/pscache.cjs');
}

// Node writes its cache as the process exits; a daemon that is never stopped cleanly writes it here.
if (typeof flushCompileCache === 'function') setTimeout(flushCompileCache, 1000).unref();
