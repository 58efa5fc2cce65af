// serve.v8cache (bin/pscache.cjs through dist/start.cjs) against what could be in its place: bytes another
// user wrote, a cache damaged on disk, a FIFO, a huge file, a full disk; and bin/warm-start-cache.cjs.
// Found by an independent attempt to break the cache (docs/sidecars.md, Start-up).
import assert from 'node:assert/strict';
import { execFileSync, execSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { daemonEnv, freePort, ROOT, runCommand, spawnPscache } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

const BIN = join(ROOT, 'bin', 'pscache.cjs');
const WARM = join(ROOT, 'bin', 'warm-start-cache.cjs');
const DIST = join(ROOT, 'dist');
const OTHER = 10001;
interface Compiled {
  source: Buffer;
  script: { createCachedData(): Buffer };
}
const start = createRequire(import.meta.url)(join(DIST, 'start.cjs')) as {
  compile(dir: string, o: { useCache: boolean; name: string }): Compiled;
  save(path: string, compiled: Compiled): void;
};

/** Starts serve through the bin with its cache under `home`, stops it: exit code, output, cache status. */
async function serve(home: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const daemon = await spawnPscache(
    ['serve'],
    {
      ...daemonEnv('http://127.0.0.1:9', port),
      XDG_CACHE_HOME: home,
      PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug',
      ...env,
    },
    { script: BIN },
  );
  const r = await daemon.stop('SIGTERM');
  return { ...r, status: /DEBUG configuration .*code_cache=([a-z-]+)/.exec(r.output)?.[1] };
}

/** A private cache directory under a fresh home, and the cache file's path in it. */
function cacheHome(): { home: string; dir: string; file: string } {
  const home = tempDir('cache-home');
  const dir = join(home, 'pscache', 'compile-cache');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { home, dir, file: join(dir, 'serve.v8cache') };
}

/**
 * A cache in the right format holding the real bundle's bytes, with V8 data of a bundle of the same length
 * that prints PWNED: V8 checks only the source's length, so this would run that code.
 */
function crafted(path: string): void {
  const real = readFileSync(join(DIST, 'pscache.cjs'), 'latin1');
  const needle = '0&&(module.exports={main,run})';
  const at = real.lastIndexOf(needle);
  assert.ok(at > 0, 'the statement to replace is in the bundle');
  const evil = real.slice(0, at) + 'process.stderr.write("PWNED!")' + real.slice(at + needle.length);
  assert.equal(evil.length, real.length);
  const dir = tempDir('evil');
  writeFileSync(join(dir, 'pscache.cjs'), evil, 'latin1');
  const c = start.compile(dir, { useCache: false, name: join(DIST, 'pscache.cjs') });
  start.save(path, { source: Buffer.from(real, 'latin1'), script: c.script });
}

describe('serve.v8cache: only the user pscache runs as chooses what it holds', {
  skip: process.getuid?.() !== 0 && 'needs root to play another user',
}, () => {
  test("a link to another user's file is not followed", async () => {
    const { home, file } = cacheHome();
    const shared = tempDir('shared');
    chmodSync(shared, 0o1777);
    const theirs = join(shared, 'their.v8cache');
    crafted(theirs);
    chmodSync(theirs, 0o666);
    chownSync(theirs, OTHER, OTHER);
    symlinkSync(theirs, file);
    const r = await serve(home);
    assert.equal(r.code, 0, r.output);
    assert.doesNotMatch(r.output, /PWNED/);
    assert.equal(r.status, 'untrusted');
  });

  test('a file of another user, or one others may write, or with a second name, is not used', async () => {
    for (const [what, spoil] of [
      ['owned by another user', (f: string) => chownSync(f, OTHER, OTHER)],
      ['group-writable', (f: string) => chmodSync(f, 0o620)],
      ['a hard link elsewhere too', (f: string) => execFileSync('ln', [f, `${tempDir('elsewhere')}/link`])],
    ] as const) {
      const { home, file } = cacheHome();
      crafted(file);
      spoil(file);
      const r = await serve(home);
      assert.equal(r.code, 0, r.output);
      assert.doesNotMatch(r.output, /PWNED/, what);
      assert.equal(r.status, 'untrusted', what);
    }
  });

  test('compile-cache inside a directory another user may write is not used (they could swap it)', async () => {
    const home = tempDir('cache-home');
    const parent = join(home, 'pscache');
    mkdirSync(parent, { mode: 0o777 });
    chmodSync(parent, 0o777);
    chownSync(parent, OTHER, OTHER);
    for (let i = 0; i < 2; i++) {
      const r = await serve(home);
      assert.equal(r.code, 0, r.output);
      assert.equal(r.status, undefined, 'no cache at all');
    }
  });
});

describe('serve.v8cache: what does not fit is never used, and never stops the start', () => {
  test("V8's data damaged on disk: malformed (node would crash on it), then replaced", async () => {
    const { home, file } = cacheHome();
    assert.equal((await serve(home)).status, 'missing');
    const bytes = readFileSync(file);
    // 64 bytes inverted, 2000 bytes into V8's first copy (after the magic, the length and the source).
    const source = bytes.readUInt32LE(8);
    for (let i = 0; i < 64; i++) bytes[12 + source + 2000 + i]! ^= 0xff;
    writeFileSync(file, bytes);
    const damaged = await serve(home);
    assert.equal(damaged.code, 0, damaged.output);
    assert.equal(damaged.status, 'malformed');
    assert.equal((await serve(home)).status, 'used');
  });

  test('a cache node crashes on (damaged alike in both copies): one start dies, the next drops it; no crash loop', async () => {
    const { home, file, dir } = cacheHome();
    const source = readFileSync(join(DIST, 'pscache.cjs'));
    const real = start
      .compile(DIST, { useCache: false, name: join(DIST, 'pscache.cjs') })
      .script.createCachedData();
    // V8's header kept, its payload zeroed: V8 takes it, and node dies deserialising it.
    const data = Buffer.concat([real.subarray(0, 64), Buffer.alloc(real.length - 64)]);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(source.length);
    writeFileSync(file, Buffer.concat([Buffer.from('pscache\x02', 'latin1'), size, source, data, data]), {
      mode: 0o600,
    });
    const port = await freePort();
    const env = {
      PATH: process.env['PATH'] ?? '',
      ...daemonEnv('http://127.0.0.1:9', port),
      XDG_CACHE_HOME: home,
    };
    // A start that dies on it: by a signal, the cache left under the name that says it was being tried.
    const crashed = spawnSync(process.execPath, [BIN, 'serve', '--help'], { env, timeout: 20_000 });
    assert.ok(
      crashed.signal !== null || crashed.status !== 0,
      'node did not crash on it: the test needs another damage',
    );
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('serve.v8cache')),
      ['serve.v8cache.trying'],
    );
    // The next start drops it, compiles from source, and leaves a good one.
    const next = await serve(home);
    assert.equal(next.code, 0, next.output);
    assert.equal(next.status, 'missing');
    assert.equal((await serve(home)).status, 'used');
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('serve.v8cache')),
      ['serve.v8cache'],
    );
  });

  test('a FIFO in its place: untrusted at once, not a start blocked on it', async () => {
    const { home, file } = cacheHome();
    execFileSync('mkfifo', [file]);
    const r = await serve(home);
    assert.equal(r.code, 0, r.output);
    assert.equal(r.status, 'untrusted');
  });

  test('a huge file: malformed from its size, not read', async () => {
    const { home, file } = cacheHome();
    closeSync(openSync(file, 'w', 0o600));
    truncateSync(file, 1024 * 1024 * 1024);
    const r = await serve(home);
    assert.equal(r.code, 0, r.output);
    assert.equal(r.status, 'malformed');
  });

  test("save() removes what a save killed before its rename left (after a minute), not another's in progress", () => {
    const { dir, file } = cacheHome();
    const old = join(dir, 'serve.v8cache.1.killed.tmp');
    const fresh = join(dir, 'serve.v8cache.2.writing.tmp');
    writeFileSync(old, 'x');
    writeFileSync(fresh, 'x');
    const longAgo = new Date(Date.now() - 120_000);
    utimesSync(old, longAgo, longAgo);
    const c = start.compile(DIST, { useCache: false, name: join(DIST, 'pscache.cjs') });
    start.save(file, c);
    assert.deepEqual(readdirSync(dir).sort(), ['serve.v8cache', 'serve.v8cache.2.writing.tmp']);
  });

  test('save() leaves nothing of its own behind when it fails', () => {
    const { dir, file } = cacheHome();
    mkdirSync(file); // a directory in its place: the rename fails
    const c = start.compile(DIST, { useCache: false, name: join(DIST, 'pscache.cjs') });
    assert.throws(() => start.save(file, c));
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('serve.v8cache')),
      ['serve.v8cache'],
    );
  });

  test('a full disk: no cut-short cache installed, no file left behind', async (t) => {
    // Mounted here, not when the file loads: a run that filters this test out must not leave a mount.
    const tiny = tempDir('tiny-fs');
    try {
      execSync(`mount -t tmpfs -o size=300k,mode=0700 tmpfs '${tiny}'`, { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a small tmpfs here (not root, or no CAP_SYS_ADMIN)');
      return;
    }
    try {
      const dir = join(tiny, 'pscache', 'compile-cache');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(join(tiny, 'pscache'), 0o700);
      for (let i = 0; i < 2; i++) {
        const r = await serve(tiny);
        assert.equal(r.code, 0, r.output);
        assert.equal(r.status, 'missing');
        // Nothing of its own (Node's compile cache may have made its directory, on Node 22.1 and later).
        assert.deepEqual(
          readdirSync(dir).filter((f) => f.startsWith('serve.v8cache')),
          [],
        );
      }
    } finally {
      execSync(`umount '${tiny}'`);
    }
  });
});

describe('bin/warm-start-cache.cjs', () => {
  const warm = (env: Record<string, string>) =>
    runCommand(process.execPath, [WARM], env, { timeoutMs: 30_000 });

  test('fails, saying why, when no cache was written, though an old file is there', async () => {
    const home = tempDir('cache-home');
    const dir = join(home, 'pscache', 'compile-cache');
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755); // not private: serve neither reads nor writes it
    writeFileSync(join(dir, 'serve.v8cache'), 'stale');
    const r = await warm({ XDG_CACHE_HOME: home });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^warm-start-cache: no start cache was written/);
  });

  test('the cache it makes is used by a start with the same NODE_OPTIONS (V8 keys its cache by its flags)', async () => {
    const { home } = cacheHome();
    const NODE_OPTIONS = '--max-old-space-size=256';
    const w = await warm({ XDG_CACHE_HOME: home, NODE_OPTIONS });
    assert.equal(w.code, 0, w.stderr);
    assert.equal((await serve(home, { NODE_OPTIONS })).status, 'used');
    // Run again on a cache that fits: nothing to write, still a success.
    const again = await warm({ XDG_CACHE_HOME: home, NODE_OPTIONS });
    assert.equal(again.code, 0, again.stderr);
  });
});
