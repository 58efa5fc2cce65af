// The standalone layers' entry (pscache/start.cjs): runs pscache.cjs from the V8 code cache `npm run layer` made for the node beside it.
// Also the npm bundle's dist/start.cjs (scripts/build.mjs copies it), with which bin/pscache.cjs starts
// `pscache serve` from a cache of its own start, kept in a directory of the user's own.
'use strict';
// Not node:module: it brings four more internal modules (~0.2 ms) into every start, and the bundle does
// without it too (src/builtins.ts).
const fs = require('node:fs');
const { readFileSync } = fs;
const { dirname, join } = require('node:path');
const { constants, Script } = require('node:vm');

/**
 * pscache.v8cache: MAGIC, the length of the source it was made for (u32 LE), that source, V8's cache.
 * The source travels with the cache because V8 checks only its length: a cache made for another bundle of
 * the same length would be accepted and run the wrong code. Comparing bytes costs a few microseconds.
 */
const MAGIC = Buffer.from('pscache\x01', 'latin1');
const CACHE_FILE = 'pscache.v8cache';
const HEAD = MAGIC.length + 4;

/**
 * The text V8 compiles is node's CommonJS wrapper (require('node:module').wrapper) around the bundle,
 * padded with spaces to 132 KiB: past
 * V8's largest regular heap object (128 KiB), so that it is allocated outside the young generation. A
 * shorter one takes a quarter of the 1 MiB young generation Node starts with, and costs one more
 * scavenge (~0.7 ms) before the first event/next. The padding comes after the last line: line and column
 * numbers in stack traces do not change.
 */
const WRAPPER = ['(function (exports, require, module, __filename, __dirname) { ', '\n});'].map((part) =>
  Buffer.from(part),
);
const TEXT_BYTES = 132 * 1024;

/**
 * A cache of the user's own (bin/pscache.cjs's serve.v8cache, written by save()): MAGIC_OWN, the source's
 * length, the source, and V8's cache twice. V8 does not checksum what it deserialises (release builds):
 * a flipped bit in its cache crashes node, at every start, as nothing would replace the file. The second
 * copy is that checksum, at the cost of a memcmp. At most MAX_OWN_BYTES of V8's cache (it is ~250 KB).
 */
const MAGIC_OWN = Buffer.from('pscache\x02', 'latin1');
const MAX_OWN_BYTES = 8 * 1024 * 1024;

/**
 * Reads a cache of the user's own without trusting the path: no link followed, a regular file (not a FIFO,
 * which would block the start), owned by this user, writable by no one else, one name only (not a hard
 * link to a file someone else may change), of a size that can hold at most MAX_OWN_BYTES of cache.
 * `untrusted` otherwise; `missing` when there is none.
 */
function readOwnFile(path, source) {
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let fd;
  try {
    fd = fs.openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    return e.code === 'ENOENT' ? { status: 'missing' } : { status: 'untrusted' };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== process.getuid() || (st.mode & 0o022) !== 0 || st.nlink !== 1) {
      return { status: 'untrusted' };
    }
    if (st.size > HEAD + source.length + 2 * MAX_OWN_BYTES) return { status: 'malformed' };
    const file = Buffer.allocUnsafe(st.size);
    let at = 0;
    while (at < file.length) {
      const n = fs.readSync(fd, file, at, file.length - at, at);
      if (n === 0) break;
      at += n;
    }
    return { file: file.subarray(0, at) };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Why the cache was or was not used: `used`; `missing` (no cache file); `malformed`; `other-bundle` (made
 * for another pscache.cjs); `rejected` (V8 refused it: another node binary, or other V8 flags); for a
 * cache of the user's own (`own`), also `untrusted` (see readOwnFile).
 */
function readCache(path, source, own) {
  let file;
  if (own) {
    const read = readOwnFile(path, source);
    if (!read.file) return read;
    file = read.file;
  } else {
    try {
      file = readFileSync(path);
    } catch {
      return { status: 'missing' };
    }
  }
  const magic = own ? MAGIC_OWN : MAGIC;
  if (file.length < HEAD || !file.subarray(0, magic.length).equals(magic)) return { status: 'malformed' };
  const size = file.readUInt32LE(magic.length);
  if (file.length < HEAD + size) return { status: 'malformed' };
  if (!file.subarray(HEAD, HEAD + size).equals(source)) return { status: 'other-bundle' };
  const data = file.subarray(HEAD + size);
  if (!own) return { status: 'used', data };
  const half = data.length / 2;
  if (half === 0 || !Number.isInteger(half) || !data.subarray(0, half).equals(data.subarray(half))) {
    return { status: 'malformed' };
  }
  return { status: 'used', data: data.subarray(0, half) };
}

/**
 * Compiles pscache.cjs in `dir` as node's CommonJS loader would (same wrapper, same dynamic import()),
 * from the cache when it fits (`cacheFile`, else pscache.v8cache beside it). For making the cache:
 * `useCache: false` compiles from scratch, and `name` is the file name V8 records (the cache holds it; the
 * one given when the cache is used replaces it).
 */
function compile(dir, { useCache = true, name, cacheFile = join(dir, CACHE_FILE), own = false } = {}) {
  const filename = join(dir, 'pscache.cjs');
  const source = readFileSync(filename);
  const cache = useCache ? readCache(cacheFile, source, own) : { status: 'off' };
  const padding = Buffer.alloc(
    Math.max(0, TEXT_BYTES - WRAPPER[0].length - source.length - WRAPPER[1].length),
    ' ',
  );
  const text = Buffer.concat([WRAPPER[0], source, WRAPPER[1], padding]).toString('utf8');
  const script = new Script(text, {
    filename: name ?? filename,
    cachedData: cache.data,
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const status = cache.data && script.cachedDataRejected ? 'rejected' : cache.status;
  return { script, filename, source, status };
}

/**
 * Runs the compiled bundle as the main module would run. This file's `require` resolves from the same
 * directory; the bundle only sets module.exports.
 */
function run({ script, filename }) {
  const mod = { exports: {}, filename, loaded: true };
  script.runInThisContext()(mod.exports, require, mod, filename, dirname(filename));
}

/** The cache file's bytes for `source`, given V8's cache (see MAGIC). */
function cacheFile(source, data) {
  const size = Buffer.alloc(4);
  size.writeUInt32LE(source.length);
  return Buffer.concat([MAGIC, size, source, data]);
}

/**
 * Writes V8's cache of everything `compiled` has run so far to `path` as a cache of the user's own (see
 * MAGIC_OWN), readable by its owner only: a new file, written whole and synced, renamed over the old, so
 * that a start reading it meanwhile sees the one or the other whole. Throws on any failure, and leaves no
 * file of its own behind.
 */
function save(path, compiled) {
  // Files a save killed before its rename left (the OOM killer, a stop timeout), after a minute.
  const dir = dirname(path);
  const prefix = `${path.slice(dir.length + 1)}.`;
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    try {
      if (Date.now() - fs.lstatSync(join(dir, name)).mtimeMs > 60_000) fs.rmSync(join(dir, name));
    } catch {
      // gone meanwhile
    }
  }
  const data = compiled.script.createCachedData();
  const size = Buffer.alloc(4);
  size.writeUInt32LE(compiled.source.length);
  const bytes = Buffer.concat([MAGIC_OWN, size, compiled.source, data, data]);
  // Never an existing name ('wx'), nor one a start that died before renaming left (pid 1 in a container).
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    try {
      let at = 0;
      while (at < bytes.length) {
        const n = fs.writeSync(fd, bytes, at, bytes.length - at);
        if (n <= 0) throw new Error('short write');
        at += n;
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

if (require.main === module) {
  const compiled = compile(__dirname);
  // The daemon logs this at DEBUG once registered (src/lambda/lifecycle.ts): whether the cache is used.
  globalThis[Symbol.for('pscache.codeCache')] = compiled.status;
  run(compiled);
} else {
  module.exports = { compile, run, cacheFile, save, CACHE_FILE };
}
