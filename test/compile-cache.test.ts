// The `pscache` bin (bin/pscache.cjs) and Node's compile cache: a second start compiles the bundle from the
// cache the first one left, in a directory of the user's own, and nowhere else; on a Node without one
// (20), or with it turned off, nothing changes.
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { HOST_ARCH, LTS, nodeBinary } from '../scripts/node-dist.mjs';
import { BUNDLE, daemonEnv, freePort, ROOT, runCommand, spawnPscache } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

const BIN = join(ROOT, 'bin', 'pscache.cjs');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** Node's own trace of its compile cache (one line per step, on stderr). */
const TRACE = { NODE_DEBUG_NATIVE: 'COMPILE_CACHE' };
const quoted = BUNDLE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// Node 22 says `cache for FILE`, 24 `V8 code cache for CommonJS FILE`.
const usedCache = new RegExp(`cache for (?:CommonJS )?${quoted} was accepted`);
const madeCache = new RegExp(`cache for (?:CommonJS )?${quoted} was not initialized, initializing`);

/** The pinned Node.js of each supported LTS line, which all have module.enableCompileCache. */
const nodes = new Map<string, string>();

before(async () => {
  for (const [line, v] of Object.entries(HOST_ARCH ? LTS : {})) nodes.set(line, await nodeBinary(v));
});

const version = (node: string, env: Record<string, string>) =>
  runCommand(node, [BIN, '--version'], { ...TRACE, ...env }, { timeoutMs: 20_000 });

/** The cache entries Node wrote under `dir` (one directory per Node version and V8 flags). */
function entries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => d.name);
}

const needsPinned = { skip: !HOST_ARCH && 'no pinned Node.js runs on this machine' };

describe('on Node.js 22 and 24', () => {
  for (const line of Object.keys(LTS)) {
    test(
      `${line}: the first start leaves a cache in a 0700 directory, the second compiles from it`,
      needsPinned,
      async () => {
        const node = nodes.get(line)!;
        const home = tempDir('cache-home');
        const dir = join(home, 'pscache', 'compile-cache');
        const first = await version(node, { XDG_CACHE_HOME: home });
        assert.equal(first.code, 0, first.stderr);
        assert.equal(first.stdout.trim(), VERSION);
        assert.match(first.stderr, madeCache);
        assert.equal(statSync(dir).mode & 0o777, 0o700);
        assert.equal(entries(dir).length, 1, 'one entry: the bundle');
        const second = await version(node, { XDG_CACHE_HOME: home });
        assert.equal(second.code, 0, second.stderr);
        assert.equal(second.stdout.trim(), VERSION);
        assert.match(second.stderr, usedCache);
      },
    );
  }

  test('without XDG_CACHE_HOME the directory is ~/.cache/pscache/compile-cache', needsPinned, async () => {
    const home = tempDir('home');
    const r = await version(nodes.get('24')!, { HOME: home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(entries(join(home, '.cache', 'pscache', 'compile-cache')).length, 1);
  });
});

/** Starts `pscache serve` through the bin, answers one /ping, stops it: its output and exit code. */
async function serveOnce(
  node: string,
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const port = await freePort();
  const daemon = await spawnPscache(
    ['serve'],
    { ...daemonEnv('http://127.0.0.1:9', port), PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug', ...env },
    { script: BIN, node },
  );
  const ping = await daemon.get('/ping', { token: null });
  assert.equal(ping.body, 'healthy');
  // Stopped the way a container is stopped.
  return daemon.stop('SIGTERM');
}
const status = (output: string) => /DEBUG configuration .*code_cache=([a-z-]+)/.exec(output)?.[1];

describe('serve: a V8 cache of its own start (serve.v8cache)', () => {
  const runnable = [
    ['this machine', process.execPath] as const,
    ...Object.keys(LTS).map((line) => [line, ''] as const),
  ];
  for (const [which, path] of runnable) {
    test(`${which}: the first start leaves serve.v8cache (0600, in the 0700 directory), the next start compiles from it`, {
      skip: path === '' && !HOST_ARCH && 'no pinned Node.js runs on this machine',
    }, async () => {
      const node = path || nodes.get(which)!;
      const home = tempDir('cache-home');
      const dir = join(home, 'pscache', 'compile-cache');
      const first = await serveOnce(node, { XDG_CACHE_HOME: home });
      assert.equal(first.code, 0, first.output);
      assert.equal(status(first.output), 'missing');
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir, 'serve.v8cache')).mode & 0o777, 0o600);
      const second = await serveOnce(node, { XDG_CACHE_HOME: home });
      assert.equal(second.code, 0, second.output);
      assert.equal(status(second.output), 'used');
      assert.doesNotMatch(second.output, /Warning/);
    });
  }

  test(
    'a cache that does not fit is not used, and is replaced: cut short, of another bundle, of another Node.js',
    needsPinned,
    async () => {
      const home = tempDir('cache-home');
      const file = join(home, 'pscache', 'compile-cache', 'serve.v8cache');
      const n22 = nodes.get('22')!;
      const n24 = nodes.get('24')!;
      assert.equal(status((await serveOnce(n22, { XDG_CACHE_HOME: home })).output), 'missing');
      const made = readFileSync(file);
      // Made by Node 22: Node 24's V8 refuses it, and a start on 24 writes its own.
      assert.equal(status((await serveOnce(n24, { XDG_CACHE_HOME: home })).output), 'rejected');
      assert.equal(status((await serveOnce(n24, { XDG_CACHE_HOME: home })).output), 'used');
      writeFileSync(file, made.subarray(0, 6));
      assert.equal(status((await serveOnce(n22, { XDG_CACHE_HOME: home })).output), 'malformed');
      assert.equal(status((await serveOnce(n22, { XDG_CACHE_HOME: home })).output), 'used');
      // The same length, other bytes: V8 checks only the length; the copy of the source in the file does not match.
      const other = Buffer.from(readFileSync(file));
      const at = 12 + 100;
      other[at] = other[at] === 0x20 ? 0x21 : 0x20;
      writeFileSync(file, other);
      assert.equal(status((await serveOnce(n22, { XDG_CACHE_HOME: home })).output), 'other-bundle');
      assert.equal(status((await serveOnce(n22, { XDG_CACHE_HOME: home })).output), 'used');
    },
  );

  test('a directory it cannot write: serve starts all the same, from source, each time', async () => {
    const home = tempDir('cache-home');
    const dir = join(home, 'pscache', 'compile-cache');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o500);
    try {
      for (let i = 0; i < 2; i++) {
        const r = await serveOnce(process.execPath, { XDG_CACHE_HOME: home });
        assert.equal(r.code, 0, r.output);
        // root writes anywhere: then the cache is simply made.
        assert.equal(status(r.output), process.getuid?.() === 0 && i === 1 ? 'used' : 'missing');
      }
    } finally {
      chmodSync(dir, 0o700);
    }
  });

  test('the bundle compiled from the cache still loads what it loads on demand: --config (TOML), the SDK default chain', async () => {
    const home = tempDir('cache-home');
    const config = join(tempDir('config'), 'pscache.toml');
    writeFileSync(config, 'ttl_seconds = 120\nvalidate_credentials = false\n');
    const env = {
      XDG_CACHE_HOME: home,
      // No keys: the SDK's default chain (an optional dependency, loaded when credentials are first asked for).
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      HOME: tempDir('empty-home'),
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    for (const expected of ['missing', 'used']) {
      const port = await freePort();
      const daemon = await spawnPscache(
        ['serve', '--config', config],
        { ...daemonEnv('http://127.0.0.1:9', port), PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug', ...env },
        { script: BIN },
      );
      const r = await daemon.stop('SIGTERM');
      assert.equal(r.code, 0, r.output);
      assert.equal(status(r.output), expected);
      assert.match(r.output, /ssm_ttl_ms=120000/, 'the TOML file was read');
      assert.match(r.output, /WARN no AWS credentials: .*default credential chain/);
      assert.doesNotMatch(r.output, /default chain is not installed/, 'the SDK chain was loaded');
      assert.doesNotMatch(r.output, /Warning/);
    }
  });
});

describe('where the cache is not used', () => {
  const notUsed = (r: { code: number | null; stdout: string; stderr: string }) => {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), VERSION);
    assert.doesNotMatch(r.stderr, /\[compile cache\]/, 'Node was not given a cache directory');
  };

  test('a directory others may enter', needsPinned, async () => {
    const home = tempDir('cache-home');
    const dir = join(home, 'pscache', 'compile-cache');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    notUsed(await version(nodes.get('24')!, { XDG_CACHE_HOME: home }));
    assert.deepEqual(entries(dir), []);
  });

  test('a link in place of the directory', needsPinned, async () => {
    const home = tempDir('cache-home');
    const elsewhere = tempDir('elsewhere');
    mkdirSync(join(home, 'pscache'), { mode: 0o700 });
    symlinkSync(elsewhere, join(home, 'pscache', 'compile-cache'));
    notUsed(await version(nodes.get('24')!, { XDG_CACHE_HOME: home }));
    assert.deepEqual(entries(elsewhere), []);
  });

  test("another user's directory", {
    skip:
      (!HOST_ARCH && 'no pinned Node.js runs on this machine') ||
      (process.getuid?.() !== 0 && 'needs root to give a directory away'),
  }, async () => {
    const home = tempDir('cache-home');
    const dir = join(home, 'pscache', 'compile-cache');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, 10001, 10001);
    notUsed(await version(nodes.get('24')!, { XDG_CACHE_HOME: home }));
  });

  test('NODE_DISABLE_COMPILE_CACHE set', needsPinned, async () => {
    const home = tempDir('cache-home');
    notUsed(await version(nodes.get('24')!, { XDG_CACHE_HOME: home, NODE_DISABLE_COMPILE_CACHE: '1' }));
    assert.ok(!existsSync(join(home, 'pscache')), 'nothing made');
  });

  test('neither XDG_CACHE_HOME nor HOME set', needsPinned, async () => {
    notUsed(await version(nodes.get('24')!, {}));
  });

  test('relative XDG_CACHE_HOME and HOME (not a place to trust)', needsPinned, async () => {
    const cwd = tempDir('cwd');
    const r = await runCommand(
      nodes.get('24')!,
      [BIN, '--version'],
      { ...TRACE, XDG_CACHE_HOME: 'cache', HOME: 'home' },
      { cwd },
    );
    notUsed(r);
    assert.deepEqual(readdirSync(cwd), []);
  });

  test("this machine's Node.js, if it has no compile cache, starts as before and makes nothing", {
    skip:
      typeof (createRequire(import.meta.url)('node:module') as { enableCompileCache?: unknown })
        .enableCompileCache === 'function' && `${process.version} has a compile cache`,
  }, async () => {
    const home = tempDir('cache-home');
    const r = await version(process.execPath, { XDG_CACHE_HOME: home });
    notUsed(r);
    assert.ok(!existsSync(join(home, 'pscache')), 'nothing made');
  });
});
