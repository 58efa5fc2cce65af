// Start-up suite: `pscache serve` started as users start it (the pscache bin), spawn → first /ping 200, its
// first start and its second (from the start cache the first left) on this machine's node and on each pinned LTS
// line; idle RSS and RSS under cached load; each against a bare Node HTTP server on the same node.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startEmulator } from '../packages/emulator/index.ts';
import { HOST_ARCH, LTS, nodeBinary } from '../scripts/node-dist.mjs';
import {
  BUNDLE,
  daemonEnv,
  freePort,
  httpGet,
  ROOT,
  spawnPscache,
  TEST_CREDENTIALS,
} from '../test/helpers/daemon.ts';
import {
  type Child,
  envInt,
  median,
  type Result,
  rssMiB,
  type Series,
  sleep,
  spawnChild,
  timeToExit,
  waitFor200,
} from './lib.ts';

const SUITE = 'startup';
const NODE = process.execPath;
/** What `pscache` on the PATH runs (package.json `bin`). */
const BIN = join(ROOT, 'bin', 'pscache.cjs');
/** Node.js 22.1 and later, which the second-start target is for (the start cache works on every Node.js). */
const hasCompileCache = (version: string) => {
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number);
  return major! > 22 || (major === 22 && minor! >= 1);
};
/** The baseline: the least a Node process can do to answer /ping (it answers every request 200 "healthy"). */
const BARE_SERVER = `require('http').createServer((q,s)=>s.end('healthy')).listen(+process.env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT,'127.0.0.1')`;
const SETTLE_MS = 500;
const KEYS = ['/bench/param-0', '/bench/param-1', '/bench/param-2'];
const CLIENTS = 4;
/** The flatness checkpoint comes after this many times the first checkpoint's requests. */
const LATER_FACTOR = 3;

/** Requests number `from` to `to` - 1 for the keys in turn, from CLIENTS concurrent clients. */
async function load(port: number, from: number, to: number): Promise<void> {
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, w) => {
      for (let n = from + w; n < to; n += CLIENTS) {
        const key = KEYS[n % KEYS.length]!;
        const r = await httpGet(port, `/systemsmanager/parameters/get?name=${encodeURIComponent(key)}`);
        if (r.status !== 200) throw new Error(`GET ${key}: ${r.status} ${r.body}`);
      }
    }),
  );
}

interface Served {
  readyMs: number;
  attempts: number;
  idleRss: number;
}

/** Spawns a server, times spawn → first /ping 200, lets it settle, reads its RSS, stops it. */
async function serveOnce(start: (port: number) => Child, port: number, retryMs: number): Promise<Served> {
  const c = start(port);
  try {
    const { ms, attempts } = await waitFor200(c, port, { retryMs });
    await sleep(SETTLE_MS);
    return { readyMs: ms, attempts, idleRss: rssMiB(c.pid) };
  } finally {
    await c.stop();
  }
}

const series = (label: string, unit: Series['unit'], samples: number[] = []): Series => ({
  label,
  unit,
  samples,
});

export async function benchStartup(): Promise<Result[]> {
  const warmups = envInt('BENCH_WARMUPS', 2);
  const runs = envInt('BENCH_RUNS', 15);
  const loadRuns = envInt('BENCH_LOAD_RUNS', 3);
  const requests = envInt('BENCH_LOAD_REQUESTS', 1000);
  const pollMs = envInt('BENCH_POLL_MS', 1, 0);

  const emu = await startEmulator({
    port: 0,
    store: { parameters: KEYS.map((name, i) => ({ name, value: `value-${i}` })), secrets: [] },
    credentials: [TEST_CREDENTIALS],
  });
  const upstreamCalls = () => Object.values(emu.calls()).reduce((a, b) => a + b, 0);
  const env = (port: number) => daemonEnv(emu.url, port);
  const proxyEnv = (port: number) =>
    daemonEnv(emu.url, port, {
      HTTPS_PROXY: 'http://user:password@proxy.example.com:3128',
      HTTP_PROXY: 'http://proxy.example.com:3128',
      NO_PROXY: '169.254.169.254,169.254.170.2,.internal,10.0.0.0/8',
    });

  /**
   * Each node `pscache serve` is timed on: this machine's, and the pinned node of each supported LTS line
   * (scripts/node-dist.mjs; the x86_64 and arm64 layers carry one of them). On each, a first start (an
   * empty compile cache directory: a fresh install) and a second (the directory the first start filled),
   * against a bare server on the same node in the same round.
   */
  const nodes: { name: string; node: string; version: string }[] = [
    { name: `this machine's node (${process.version})`, node: NODE, version: process.version },
  ];
  for (const v of HOST_ARCH ? Object.values(LTS) : []) {
    if (`v${v}` !== process.version)
      nodes.push({ name: `Node.js ${v}`, node: await nodeBinary(v), version: v });
  }
  const caches: string[] = [];
  const cacheDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'pscache-bench-cache-'));
    caches.push(d);
    return d;
  };
  const sides = nodes.map((n) => ({
    ...n,
    warm: cacheDir(),
    first: series(`pscache serve, first start, ${n.name}`, 'ms'),
    second: series(`pscache serve, second start, ${n.name}`, 'ms'),
    bare: series(`bare http server, ${n.name}`, 'ms'),
  }));
  const machine = sides[0]!;
  const psReady = machine.first;
  const bareReady = machine.bare;
  const proxyReady = series('pscache serve, proxy variables set', 'ms');
  const proxyBare = series('bare http server', 'ms');
  const nodeExit = series('node -e 0', 'ms');
  const versionExit = series('pscache --version', 'ms');
  const psRss = series('pscache serve', 'MiB');
  const bareRss = series('bare http server', 'MiB');
  const startCalls = series('pscache serve', 'count');
  const attempts: number[] = [];
  /** `pscache serve` through the bin, its compile cache in `cache`. */
  const bin =
    (node: string, cache: string, e: (port: number) => Record<string, string> = env) =>
    (p: number) =>
      spawnChild(node, [BIN, 'serve'], { ...e(p), XDG_CACHE_HOME: cache });

  try {
    // Node's compile cache of the bundle, for the --version row; serve.v8cache, which every later `serve`
    // finds, is written by the first warm-up round's start.
    for (const side of sides) await timeToExit(side.node, [BIN, '--version'], { XDG_CACHE_HOME: side.warm });
    type Step = () => Promise<void>;
    for (let round = 0; round < warmups + runs; round++) {
      const keep = round >= warmups;
      const steps: Step[] = [];
      for (const side of sides) {
        steps.push(
          async () => {
            // A fresh install's first start: nothing cached yet (it writes serve.v8cache once up).
            const port = await freePort();
            const fresh = cacheDir();
            const before = upstreamCalls();
            const r = await serveOnce(bin(side.node, fresh), port, pollMs);
            rmSync(fresh, { recursive: true, force: true });
            if (!keep) return;
            side.first.samples.push(r.readyMs);
            if (side !== machine) return;
            psRss.samples.push(r.idleRss);
            startCalls.samples.push(upstreamCalls() - before);
            attempts.push(r.attempts);
          },
          async () => {
            // Every start after the first: the warm-up rounds filled the directory.
            const port = await freePort();
            const r = await serveOnce(bin(side.node, side.warm), port, pollMs);
            if (keep) side.second.samples.push(r.readyMs);
          },
          async () => {
            const port = await freePort();
            const r = await serveOnce(
              (p) => spawnChild(side.node, ['-e', BARE_SERVER], env(p)),
              port,
              pollMs,
            );
            if (!keep) return;
            side.bare.samples.push(r.readyMs);
            if (side !== machine) return;
            bareRss.samples.push(r.idleRss);
            attempts.push(r.attempts);
          },
        );
      }
      steps.push(
        async () => {
          // The proxy support's start-up cost: its variables parsed and checked at start; its code (the
          // CONNECT tunnel) loads at the first upstream call through the proxy, which /ping never makes.
          const port = await freePort();
          const r = await serveOnce(bin(NODE, machine.warm, proxyEnv), port, pollMs);
          if (keep) proxyReady.samples.push(r.readyMs);
        },
        async () => {
          const port = await freePort();
          const r = await serveOnce((p) => spawnChild(NODE, ['-e', BARE_SERVER], env(p)), port, pollMs);
          if (keep) proxyBare.samples.push(r.readyMs);
        },
        async () => {
          const ms = await timeToExit(NODE, ['-e', '0'], env(0));
          if (keep) nodeExit.samples.push(ms);
        },
        async () => {
          const ms = await timeToExit(NODE, [BIN, '--version'], { ...env(0), XDG_CACHE_HOME: machine.warm });
          if (keep) versionExit.samples.push(ms);
        },
      );
      // Interleaved, and the order flips every round so neither side always runs first.
      if (round % 2 === 1) steps.reverse();
      for (const step of steps) await step();
    }

    // RSS under load: after `requests` hits on a few cached parameters, then after `requests` × LATER_FACTOR,
    // vs the bare server under the same load. V8 grows its heap lazily, so raw RSS climbs for a few thousand
    // requests in any Node server: "flat" means pscache grows no faster than the bare server does.
    const loadIdle = series('pscache serve, idle', 'MiB');
    const loadAfter = series('pscache serve', 'MiB');
    const loadLater = series('pscache serve', 'MiB');
    const bareAfter = series('bare http server', 'MiB');
    const bareLater = series('bare http server', 'MiB');
    const loadCalls: number[] = [];
    for (let i = 0; i < loadRuns; i++) {
      const port = await freePort();
      const before = upstreamCalls();
      const p = await spawnPscache(['serve'], env(port), { script: BIN });
      try {
        await sleep(SETTLE_MS);
        loadIdle.samples.push(rssMiB(p.child.pid!));
        await load(port, 0, requests);
        await sleep(SETTLE_MS);
        loadAfter.samples.push(rssMiB(p.child.pid!));
        await load(port, requests, requests * LATER_FACTOR);
        await sleep(SETTLE_MS);
        loadLater.samples.push(rssMiB(p.child.pid!));
        loadCalls.push(upstreamCalls() - before);
      } finally {
        await p.stop();
      }
      const barePort = await freePort();
      const bare = spawnChild(NODE, ['-e', BARE_SERVER], env(barePort));
      try {
        await waitFor200(bare, barePort);
        await sleep(SETTLE_MS);
        await load(barePort, 0, requests);
        await sleep(SETTLE_MS);
        bareAfter.samples.push(rssMiB(bare.pid));
        await load(barePort, requests, requests * LATER_FACTOR);
        await sleep(SETTLE_MS);
        bareLater.samples.push(rssMiB(bare.pid));
      } finally {
        await bare.stop();
      }
    }

    // Sanity: the daemon really answers the way the load loop assumed.
    const probe = await freePort();
    const p = await spawnPscache(['serve'], env(probe), { script: BIN });
    const ping = await httpGet(probe, '/ping', { token: null });
    await p.stop();
    if (ping.body !== 'healthy') throw new Error(`unexpected /ping body ${JSON.stringify(ping.body)}`);

    const bundle = readFileSync(BUNDLE);
    const bundleKiB = statSync(BUNDLE).size / 1024;
    const gzipKiB = gzipSync(bundle, { level: 9 }).length / 1024;
    const diff = (xs: number[], ys: number[]) => xs.map((x, i) => x - ys[i]!);
    const aboveNode = (xs: number[]) => diff(xs, nodeExit.samples);

    const poll = `/ping polled on a fresh TCP connection, retried ${pollMs} ms after each refusal (median ${median(attempts)} attempts per start); ${runs} interleaved rounds after ${warmups} warm-ups`;
    const starts: Result[] = [];
    for (const side of sides) {
      const cached = hasCompileCache(side.version);
      starts.push(
        {
          suite: SUITE,
          figure: `start-up, first start: pscache serve (the bin) → first /ping 200, ${side.name}`,
          subject: side.first,
          baseline: side.bare,
          paired: true,
          ...(side === machine ? { target: { kind: 'ratio', max: 1.3 } as const } : {}),
          note: `${poll}; an empty cache directory: the start compiles the bundle from source and writes serve.v8cache once up`,
        },
        {
          suite: SUITE,
          figure: `start-up, second start (from the start cache): pscache serve → first /ping 200, ${side.name}`,
          subject: side.second,
          baseline: side.bare,
          paired: true,
          ...(cached ? { target: { kind: 'ratio', max: 1.15 } as const } : {}),
          note: `the bundle compiled from serve.v8cache, V8's cache of a whole start that an earlier start left (${BIN.slice(ROOT.length)})${cached ? '' : `; the target is for Node.js 22 and later, not ${side.version}`}`,
        },
      );
    }

    return [
      ...starts,
      {
        suite: SUITE,
        figure: 'start-up with HTTPS_PROXY, HTTP_PROXY and NO_PROXY set',
        subject: proxyReady,
        baseline: proxyBare,
        paired: true,
        target: { kind: 'ratio', max: 1.3 },
        note: `a second start (spawn → first /ping 200) with the proxy variables set, against a bare server of the same round (the proxy code loads at the first upstream call); without them: median ${median(machine.second.samples).toFixed(1)} ms`,
      },
      {
        suite: SUITE,
        figure: 'reference: node -e 0, spawn → exit',
        subject: null,
        baseline: nodeExit,
      },
      {
        suite: SUITE,
        figure: 'start-up above node boot (minus node -e 0 of the same round)',
        subject: series('pscache serve − node -e 0', 'ms', aboveNode(psReady.samples)),
        baseline: series('bare http server − node -e 0', 'ms', aboveNode(bareReady.samples)),
        paired: true,
      },
      {
        suite: SUITE,
        figure: 'bundle load: pscache --version, spawn → exit',
        subject: versionExit,
        baseline: nodeExit,
        paired: true,
        note: 'node bin/pscache.cjs --version (its compile cache warm) vs node -e 0: the cost of loading and evaluating the bundle',
      },
      {
        suite: SUITE,
        figure: `idle RSS (after /ping 200 + ${SETTLE_MS} ms)`,
        subject: psRss,
        baseline: bareRss,
        paired: true,
        target: { kind: 'delta', max: 15 },
        note: 'VmRSS from /proc/PID/status; MiB = 2^20 bytes',
      },
      {
        suite: SUITE,
        figure: `RSS after ${requests} cached-parameter requests (${KEYS.length} keys)`,
        subject: loadAfter,
        baseline: bareAfter,
        paired: true,
        target: { kind: 'delta', max: 15 },
        note: `${CLIENTS} concurrent clients, a fresh connection per request, ${SETTLE_MS} ms settle; the bare server gets the same requests (it ignores the query); pscache idle before the load: median ${median(loadIdle.samples).toFixed(1)} MiB; upstream calls per process: ${loadCalls.join(', ')} (expected ${KEYS.length}: one miss per key)`,
      },
      {
        suite: SUITE,
        figure: `RSS growth from ${requests} to ${requests * LATER_FACTOR} requests`,
        subject: series('pscache serve', 'MiB', diff(loadLater.samples, loadAfter.samples)),
        baseline: series('bare http server', 'MiB', diff(bareLater.samples, bareAfter.samples)),
        paired: true,
        note: 'same process at both checkpoints; V8 grows its heap lazily, so both sides climb for a while',
      },
      {
        suite: SUITE,
        figure: 'upstream calls during start-up',
        subject: startCalls,
        baseline: null,
        target: { kind: 'value', max: 0 },
        note: 'emulator call count across each pscache serve start (spawn → /ping → settle → stop)',
      },
      {
        suite: SUITE,
        figure: 'bundle size dist/pscache.cjs',
        subject: series('dist/pscache.cjs', 'KiB', [bundleKiB]),
        baseline: null,
        note: `gzip -9: ${gzipKiB.toFixed(1)} KiB`,
      },
    ];
  } finally {
    await emu.close();
    for (const d of caches) rmSync(d, { recursive: true, force: true });
  }
}
