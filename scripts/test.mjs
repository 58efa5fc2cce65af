// Runs the test files (the last step of `npm test`) on this machine's node, or on a pinned Node.js LTS
// (`npm run test:node -- 22`), which then also comes first on PATH for everything the tests start.
//
//   node scripts/test.mjs [--node 22|24|VERSION] [FILE ...]      (default: every test file)
//
// PSCACHE_TEST_SUMMARY=FILE also writes a JSON summary (scripts/test-summary.mjs); PSCACHE_TEST_CONCURRENCY
// sets how many files run at once. The longest files (by the last run on this machine) start first.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CACHE_DIR, HOST_ARCH, LAYER_NODE, LTS, nodeBinary, resolveVersion } from './node-dist.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TEST_DIRS = ['test', 'packages/emulator/test'];
/**
 * Files run at once. The machine has 2 cores; most files spend their time waiting on sockets and child
 * processes, and no test's verdict depends on how fast it runs, so a third file fills the gaps.
 */
const CONCURRENCY = Number(process.env.PSCACHE_TEST_CONCURRENCY || 3);
if (!Number.isInteger(CONCURRENCY) || CONCURRENCY < 1) {
  process.stderr.write(
    `test: PSCACHE_TEST_CONCURRENCY=${JSON.stringify(process.env.PSCACHE_TEST_CONCURRENCY)} is invalid: must be a whole number from 1\n`,
  );
  process.exit(2);
}
/** A test (or hook) that runs this long has hung: it fails, instead of holding the run forever. */
const TEST_TIMEOUT_MS = 300_000;

function usage(message) {
  process.stderr.write(`test: ${message}\nusage: node scripts/test.mjs [--node 22|24|VERSION] [FILE ...]\n`);
  process.exit(2);
}

const files = [];
let nodeSpec;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--node') {
    nodeSpec = argv[++i];
    if (!nodeSpec) usage('--node needs an LTS line (22, 24) or a pinned version');
  } else if (a.startsWith('--node=')) nodeSpec = a.slice('--node='.length);
  else if (/^\d+(\.\d+\.\d+)?$/.test(a) && nodeSpec === undefined && files.length === 0) nodeSpec = a;
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else files.push(path.resolve(a));
}
if (files.length === 0) {
  for (const dir of TEST_DIRS) {
    for (const f of fs.readdirSync(path.join(ROOT, dir)).sort()) {
      if (f.endsWith('.test.ts')) files.push(path.join(ROOT, dir, f));
    }
  }
}

/**
 * How long each file took last time on this machine (outside the checkout: a fact about the machine).
 * The longest start first, so that no long file starts last and runs alone at the end; files never timed
 * count as long. The order changes no verdict: files share no state.
 */
const TIMES = path.join(CACHE_DIR, 'test-times.json');
/**
 * A first run on a machine (a fresh CI machine) orders the files by the times committed here, taken on the
 * project's machine; files none of them knows count as long.
 */
const DEFAULT_TIMES = path.join(ROOT, 'scripts/test-times.json');
const rel = (f) => path.relative(ROOT, f);
const times = {};
for (const file of [DEFAULT_TIMES, TIMES]) {
  try {
    Object.assign(times, JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch {
    // first run here
  }
}
const machineTimes = {};
try {
  Object.assign(machineTimes, JSON.parse(fs.readFileSync(TIMES, 'utf8')));
} catch {
  // first run here
}
files.sort(
  (a, b) => (times[rel(b)] ?? Number.POSITIVE_INFINITY) - (times[rel(a)] ?? Number.POSITIVE_INFINITY),
);

let node = process.execPath;
let version = process.version;
if (nodeSpec !== undefined) {
  try {
    const pinned = resolveVersion(nodeSpec);
    node = await nodeBinary(pinned);
    version = `v${pinned}`;
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e));
  }
}

// The pinned nodes the tests run (the layers', each Lambda runtime's): fetched here, one after the other,
// when this machine has not got them yet, rather than by several test files at once.
if (HOST_ARCH) {
  const started = Date.now();
  for (const v of new Set([LAYER_NODE, ...Object.values(LTS)])) await nodeBinary(v);
  await nodeBinary(LAYER_NODE, HOST_ARCH === 'x86_64' ? 'arm64' : 'x86_64');
  if (Date.now() - started > 1000) {
    process.stdout.write(`test: fetched the pinned Node.js binaries in ${Date.now() - started} ms\n`);
  }
}

const env = { ...process.env };
// The pinned node is the one every child the tests start by name (`node`, npm's shebang) finds first.
if (node !== process.execPath) env.PATH = `${path.dirname(node)}${path.delimiter}${env.PATH ?? ''}`;

/**
 * The AWS SDK (the tests' independent client of the emulator) warns once per process when it runs on a
 * Node.js its next releases will drop. When the installed SDK's own `engines` accepts this version, that
 * notice is about the future, not about this run: it is turned off, by the SDK's own switch for that one
 * warning. On a version the SDK does not support it stays, as does every other warning.
 */
const sdkRange = readEngines(path.join(ROOT, 'node_modules/@aws-sdk/core/package.json'));
const sdkSupports = sdkRange !== undefined && satisfiesMinimum(version, sdkRange);
if (sdkSupports) env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

fs.mkdirSync(CACHE_DIR, { recursive: true });
const summaryFile = process.env.PSCACHE_TEST_SUMMARY
  ? path.resolve(process.env.PSCACHE_TEST_SUMMARY)
  : path.join(CACHE_DIR, `test-summary-${process.pid}.json`);
const reporters = [
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  `--test-reporter=${path.join(ROOT, 'scripts/test-summary.mjs')}`,
  `--test-reporter-destination=${summaryFile}`,
];

const actual =
  node === process.execPath ? version : execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
process.stdout.write(
  `test: ${files.length} files on Node.js ${actual} (${node === process.execPath ? "this machine's node" : node}), ${CONCURRENCY} at a time; AWS SDK engines ${sdkRange ?? 'unknown'}${sdkSupports ? ': its notice about future Node.js versions is off' : ''}\n`,
);
const child = spawn(
  node,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${CONCURRENCY}`,
    `--test-timeout=${TEST_TIMEOUT_MS}`,
    ...reporters,
    ...files,
  ],
  { cwd: ROOT, env, stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  rememberTimes();
  process.exit(code ?? (signal ? 1 : 0));
});

function rememberTimes() {
  try {
    const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8'));
    for (const [file, { ms }] of Object.entries(summary.files)) machineTimes[file] = ms;
    const tmp = `${TIMES}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(machineTimes, null, 1)}\n`);
    fs.renameSync(tmp, TIMES);
  } catch {
    // no summary (the run was cut short): keep the old times
  } finally {
    if (!process.env.PSCACHE_TEST_SUMMARY) fs.rmSync(summaryFile, { force: true });
  }
}

function readEngines(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')).engines?.node;
  } catch {
    return undefined;
  }
}

/** `version` (v20.20.2) against a range of the form `>=20`, `>=20.0.0`; any other form is not understood: false. */
function satisfiesMinimum(v, range) {
  const m = /^\s*>=\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$/.exec(range);
  const have = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v);
  if (!m || !have) return false;
  const want = [m[1], m[2] ?? 0, m[3] ?? 0].map(Number);
  const got = have.slice(1, 4).map(Number);
  for (let i = 0; i < 3; i++) if (got[i] !== want[i]) return got[i] > want[i];
  return true;
}
