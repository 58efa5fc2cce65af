// Bundles the CLI and daemon into one minified file, dist/pscache.cjs, with the files it loads on demand beside it. scripts/layer.mjs reuses the options.
import { copyFileSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/**
 * The emulator (for `pscache dev` and `pscache emulator`), `pscache get`, `pscache token` and the TOML
 * parser (for `--config`, ~20 KB) live in their own files beside the daemon's bundle: `pscache serve` never
 * parses them, which keeps them off every cold start. The Lambda layer ships only the daemon's bundle.
 * @type {import('esbuild').Plugin}
 */
const apart = {
  name: 'apart',
  setup(b) {
    b.onResolve({ filter: /\/emulator\/index\.ts$/ }, (args) =>
      args.importer.endsWith('cli.ts') ? { path: './emulator.cjs', external: true } : undefined,
    );
    b.onResolve({ filter: /\/client\/get-command\.ts$/ }, (args) =>
      args.importer.endsWith('cli.ts') ? { path: './get-command.cjs', external: true } : undefined,
    );
    b.onResolve({ filter: /^smol-toml$/ }, (args) =>
      args.importer.endsWith('file.ts') ? { path: './toml.cjs', external: true } : undefined,
    );
    b.onResolve({ filter: /\/token-command\.ts$/ }, (args) =>
      args.importer.endsWith('cli.ts') ? { path: './token-command.cjs', external: true } : undefined,
    );
  },
};

/**
 * lru-cache picks its default clock when it loads, by looking at the global `performance`: that look
 * makes Node load perf_hooks (nine internal modules, ~0.4 ms of every start). pscache always gives
 * lru-cache its own clock (`perf` in src/cache/index.ts), so the default only looks it up when used.
 * @type {import('esbuild').Plugin}
 */
const lazyPerformance = {
  name: 'lazy-performance',
  setup(b) {
    // lru-cache/raw: the same build unminified, with its clock in its own file (perf.js).
    b.onResolve({ filter: /^lru-cache$/ }, (args) =>
      b.resolve('lru-cache/raw', { kind: args.kind, resolveDir: args.resolveDir }),
    );
    b.onLoad({ filter: /[\\/]lru-cache[\\/]dist[\\/].*[\\/]perf\.js$/ }, (args) => ({
      loader: 'js',
      contents: /[\\/]commonjs[\\/]/.test(args.path)
        ? 'exports.defaultPerf = { now: () => performance.now() };'
        : 'export const defaultPerf = { now: () => performance.now() };',
    }));
  },
};

/** @type {import('esbuild').BuildOptions} */
export const bundleOptions = {
  absWorkingDir: fileURLToPath(new URL('..', import.meta.url)),
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/pscache.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  define: { __PSCACHE_VERSION__: JSON.stringify(version) },
  // The SDK's default chain (profile, IMDS) is for sidecars only; it stays in node_modules rather than
  // in the bundle, where it would cost ~7 MB RSS and ~15 ms of start-up for every Lambda cold start.
  external: ['@aws-sdk/credential-provider-node'],
  logOverride: { 'empty-import-meta': 'silent' },
  logLevel: 'warning',
  plugins: [apart, lazyPerformance],
};

/** dist/emulator.cjs: loaded by the CLI only for `dev` and `emulator`. */
export const emulatorOptions = {
  ...bundleOptions,
  entryPoints: ['packages/emulator/index.ts'],
  outfile: 'dist/emulator.cjs',
  plugins: [],
};

/** dist/get-command.cjs: loaded by the CLI only for `get`. */
export const getCommandOptions = {
  ...bundleOptions,
  entryPoints: ['src/client/get-command.ts'],
  outfile: 'dist/get-command.cjs',
  plugins: [],
};

/** dist/toml.cjs: the TOML parser, loaded only for `--config`. */
export const tomlOptions = {
  ...bundleOptions,
  entryPoints: ['smol-toml'],
  outfile: 'dist/toml.cjs',
  plugins: [],
};

/** dist/token-command.cjs: loaded by the CLI only for `token`. */
export const tokenCommandOptions = {
  ...bundleOptions,
  entryPoints: ['src/token-command.ts'],
  outfile: 'dist/token-command.cjs',
  plugins: [],
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await Promise.all([
    build(bundleOptions),
    build(emulatorOptions),
    build(getCommandOptions),
    build(tomlOptions),
    build(tokenCommandOptions),
  ]);
  // dist/start.cjs: how bin/pscache.cjs runs `serve` from a V8 cache of its own start (the layers'
  // pscache/start.cjs is the same file).
  copyFileSync(
    fileURLToPath(new URL('layer-start.cjs', import.meta.url)),
    fileURLToPath(new URL('../dist/start.cjs', import.meta.url)),
  );
}
