// The published package: what `npm pack` ships, that `dependencies` is exactly what those files load at
// run time, and that a default install (no optional SDK chain) says how to get it when it is needed.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { freePort, ROOT, type RunningProcess, spawnPscache, TEST_TOKEN } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

interface Manifest {
  bin: Record<string, string>;
  exports: Record<string, string | Record<string, Record<string, string>>>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
const SDK_CHAIN = '@aws-sdk/credential-provider-node';
/**
 * Used by the emulator only, which is bundled into dist/emulator.cjs: they leave `dependencies` when the
 * emulator moves into a package of its own. Drop them from here then.
 */
const LEAVING_WITH_THE_EMULATOR = new Set(['@smithy/protocol-http', '@smithy/signature-v4']);

let packed: string[];

before(async () => {
  // The files as `npm pack` collects them (after `npm run build`, which `npm test` runs first).
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  const doc = JSON.parse(stdout) as { files: { path: string }[] }[];
  packed = doc[0]!.files.map((f) => f.path).sort();
});

describe('npm pack', () => {
  test('ships the CLI, its bundles, the client and its types, the example store: nothing else', () => {
    const exact = [
      'README.md',
      'bin/pscache.cjs',
      'bin/warm-start-cache.cjs',
      'dist/client/index.cjs',
      'dist/client/index.mjs',
      'dist/emulator.cjs',
      'dist/get-command.cjs',
      'dist/pscache.cjs',
      'dist/start.cjs',
      'dist/token-command.cjs',
      'dist/toml.cjs',
      'examples/store.json',
      'package.json',
    ];
    const types = /^dist\/client\/[a-z-]+\.d\.[cm]ts$/;
    assert.deepEqual(
      packed.filter((f) => !types.test(f)),
      exact,
    );
    assert.ok(packed.includes('dist/client/index.d.cts') && packed.includes('dist/client/index.d.mts'));
  });

  test('everything `bin` and `exports` point to is in it', () => {
    const targets = [...Object.values(manifest.bin)];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') targets.push(v);
      else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
    };
    walk(manifest.exports);
    assert.ok(targets.length >= 5);
    for (const t of targets) assert.ok(packed.includes(t.replace(/^\.\//, '')), `${t} is not packed`);
  });
});

describe('dependencies', () => {
  /** Package name -> how the published files load it (require-call, import-statement, dynamic-import). */
  let loaded: Map<string, Set<string>>;

  before(async () => {
    // esbuild parses every published script and follows relative imports; bare names stay external.
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: packed.filter((f) => /\.(c|m)?js$/.test(f)).map((f) => ({ in: f, out: f })),
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      packages: 'external',
      outdir: 'scan',
      logLevel: 'silent',
    });
    loaded = new Map();
    for (const input of Object.values(result.metafile.inputs)) {
      for (const imp of input.imports) {
        if (!imp.external || isBuiltin(imp.path)) continue;
        const name = imp.path
          .split('/')
          .slice(0, imp.path.startsWith('@') ? 2 : 1)
          .join('/');
        loaded.set(name, (loaded.get(name) ?? new Set()).add(imp.kind));
      }
    }
  });

  test('nothing published loads a package that is not declared', () => {
    const optional = Object.keys(manifest.peerDependencies ?? {}).filter(
      (p) => manifest.peerDependenciesMeta?.[p]?.optional,
    );
    const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...optional]);
    assert.ok(loaded.has(SDK_CHAIN), 'the scan finds the lazy import of the SDK chain in the bundle');
    for (const name of loaded.keys()) assert.ok(declared.has(name), `${name} is loaded but not declared`);
  });

  test('every entry in `dependencies` is loaded by a published file at run time', () => {
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      if (LEAVING_WITH_THE_EMULATOR.has(name)) continue;
      assert.ok(loaded.has(name), `${name} is a dependency that nothing published loads`);
    }
    assert.ok(!loaded.has('lru-cache'), 'lru-cache is bundled, not loaded');
  });

  test('the SDK chain is an optional peer, loaded only when asked for (require in the bundle, import() under tsx)', () => {
    assert.equal(manifest.dependencies?.[SDK_CHAIN], undefined);
    assert.ok(manifest.peerDependencies?.[SDK_CHAIN]);
    assert.equal(manifest.peerDependenciesMeta?.[SDK_CHAIN]?.optional, true);
    assert.deepEqual([...loaded.get(SDK_CHAIN)!].sort(), ['dynamic-import', 'require-call']);
  });
});

describe('installed without the optional SDK chain', () => {
  let dir: string;
  let daemon: RunningProcess | undefined;

  before(() => {
    // The packed files alone, outside the repository: no node_modules anywhere above them.
    dir = tempDir('packed');
    for (const f of packed) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      copyFileSync(join(ROOT, f), join(dir, f));
    }
  });

  after(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a request that needs the default chain gets a 403 that says how to install it', async () => {
    const port = await freePort();
    const env = {
      HOME: dir,
      AWS_REGION: 'us-east-1',
      // Nothing may leave the machine even if credentials were found.
      AWS_ENDPOINT_URL: `http://127.0.0.1:${await freePort()}`,
      PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
    };
    const resolvable = spawnSync(process.execPath, ['-e', `require.resolve(${JSON.stringify(SDK_CHAIN)})`], {
      cwd: join(dir, 'dist'),
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    });
    assert.notEqual(resolvable.status, 0, `${SDK_CHAIN} must not be resolvable from ${dir}`);

    daemon = await spawnPscache(['serve'], env, { port, script: join(dir, 'bin', 'pscache.cjs') });
    const r = await daemon.get('/systemsmanager/parameters/get?name=%2Fapp%2Fx');
    assert.equal(r.status, 403, r.body);
    const body = JSON.parse(r.body) as { __type: string; message: string };
    assert.equal(body.__type, 'CredentialsProviderError');
    assert.ok(body.message.includes(`npm install ${SDK_CHAIN}`), body.message);
    assert.match(body.message, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    assert.match(body.message, /AWS_CONTAINER_CREDENTIALS_FULL_URI/);
    const secret = await daemon.get('/secretsmanager/get?secretId=prod%2Fdb');
    assert.equal(secret.status, 403, secret.body);
    assert.ok(secret.body.includes(`npm install ${SDK_CHAIN}`), secret.body);
  });
});
