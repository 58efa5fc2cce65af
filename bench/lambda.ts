// Lambda start-up suite: launcher exec → register received by the Runtime API stand-in, and → first /ping
// 200, for the Node.js layer and the x86_64 standalone layer, each against `node -e 0` of the node it runs on;
// and the x86_64 layer's INIT (exec → first event/next) and idle RSS against a bare extension on its node.
// The same layer on every other pinned Node.js (which the standalone layers could carry instead), and
// started from a V8 startup snapshot instead of its code cache (an experiment: bench/snapshot.ts).
import { execFile } from 'node:child_process';
import { existsSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { LAYER_NODE, nodeBinary, PINS } from '../scripts/node-dist.mjs';
import { freePort, ROOT } from '../test/helpers/daemon.ts';
import { buildLayers } from '../test/helpers/lambda-layer.ts';
import { lambdaEnvironment, startSim, unpackLayer } from '../test/helpers/lambda-sim.ts';
import {
  envInt,
  median,
  type Result,
  rawGetStatus,
  rssMiB,
  type Series,
  series,
  sleep,
  timeToExit,
} from './lib.ts';
import { snapshotLayer } from './snapshot.ts';

const SUITE = 'lambda';
/**
 * The rows against `node -e 0` carry no target: a bare extension that only listens and registers takes
 * ~1.3–1.4× `node -e 0` itself (its row). The layer's target is its INIT against that bare extension.
 */
const AGAINST_NODE_E_0 =
  'no target: even a bare Node.js extension that only listens and registers takes ~1.3–1.4× node -e 0 (row below); the INIT row holds the target, against that bare extension';
/** The standalone layer's INIT, spawn → first event/next (when Lambda may end INIT), vs the bare extension. */
const INIT_TARGET = { kind: 'ratio', max: 1.05 } as const;
/** Its idle RSS vs the bare extension's on the same node, MiB. */
const RSS_TARGET = { kind: 'delta', max: 3 } as const;
const SETTLE_MS = 500;
/**
 * The least any Node.js extension can do before registering: listen, register, poll. Run through the same
 * launcher in place of the bundle, it shows how much of the time is Node's and the sandbox's own.
 */
const BARE_EXTENSION = `const http = require('http');
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
http.createServer((q, s) => s.end('healthy')).listen(+process.env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT, '127.0.0.1', () => {
  http.request({ host, port, method: 'POST', path: '/2020-01-01/extension/register',
    headers: { 'Lambda-Extension-Name': 'pscache', 'Content-Type': 'application/json' } }, (res) => {
    const id = res.headers['lambda-extension-identifier'];
    res.resume();
    const next = () => http.get({ host, port, path: '/2020-01-01/extension/event/next',
      headers: { 'Lambda-Extension-Identifier': id } }, (r) => {
      let b = '';
      r.on('data', (d) => (b += d)).on('end', () => (JSON.parse(b).eventType === 'SHUTDOWN' ? process.exit(0) : next()));
    });
    next();
  }).end('{"events":["INVOKE","SHUTDOWN"]}');
});
`;

interface Launch {
  register: number;
  /** NaN when not polled. */
  ping: number;
  /** Spawn → the first event/next call arrives: Lambda may end INIT from here. */
  next: number;
  /** VmRSS SETTLE_MS after the first event/next, when asked for. */
  rss: number;
  /** Everything the extension printed. */
  output: string;
}

/**
 * One cold start in a fresh stand-in: spawn of the launcher → register arrives, → first event/next, and
 * (with `ping`) → /ping answers 200. Polling /ping makes the extension accept connections during its INIT,
 * so the event/next figure is taken from launches that do not poll.
 */
export async function launchOnce(
  dir: string,
  opts: { ping?: boolean; rss?: boolean; env?: Record<string, string> } = {},
): Promise<Launch> {
  const { ping: poll = true, rss = false } = opts;
  const sim = await startSim();
  const port = await freePort();
  try {
    const ext = sim.launch(dir, {
      env: {
        AWS_ACCESS_KEY_ID: 'AKIAPSCACHEBENCH0001',
        AWS_SECRET_ACCESS_KEY: 'bench-secret-access-key',
        AWS_SESSION_TOKEN: 'bench-session-token',
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
        ...opts.env,
      },
    });
    let exited = false;
    void ext.exited.then(() => {
      exited = true;
    });
    let ping = Number.NaN;
    while (poll && Number.isNaN(ping)) {
      if (exited || performance.now() - ext.startedAt > 15_000) {
        throw new Error(`no /ping 200 from the extension:\n${ext.output()}`);
      }
      try {
        if ((await rawGetStatus(port, '/ping')) === 200) ping = performance.now() - ext.startedAt;
      } catch {
        // not listening yet
      }
      if (Number.isNaN(ping)) await sleep(1);
    }
    await sim.nextCalls(1);
    const register = sim.registers[0]!.at - ext.startedAt;
    const next = sim.nexts[0]!.at - ext.startedAt;
    let idle = Number.NaN;
    if (rss) {
      await sleep(SETTLE_MS);
      idle = rssMiB(ext.child.pid!);
    }
    await sim.shutdown();
    const r = await ext.exited;
    await ext.dispose();
    if (r.code !== 0) throw new Error(`the extension exited ${r.code}:\n${ext.output()}`);
    return { register, ping, next, rss: idle, output: ext.output() };
  } finally {
    await sim.close();
  }
}

/** The node the Node.js layer finds on the PATH Lambda gives extensions (there is no /var/lang here). */
function pathNode(): string {
  for (const d of (lambdaEnvironment('', {})['PATH'] ?? '').split(':')) {
    const candidate = join(d, 'node');
    if (d.startsWith('/') && existsSync(candidate)) return candidate;
  }
  return process.execPath;
}

/** INIT of `a` and of `b` in one round, without /ping polling; b first on odd rounds. */
async function paired(round: number, a: string, b: string): Promise<[Launch, Launch]> {
  if (round % 2 === 0) {
    const first = await launchOnce(a, { ping: false });
    return [first, await launchOnce(b, { ping: false })];
  }
  const second = await launchOnce(b, { ping: false });
  return [await launchOnce(a, { ping: false }), second];
}

export async function benchLambda(): Promise<Result[]> {
  const warmups = envInt('BENCH_WARMUPS', 2, 0);
  const runs = envInt('BENCH_RUNS', 15);
  const rssRuns = envInt('BENCH_LAMBDA_RSS_RUNS', 5);
  const layers = await buildLayers();
  const nodejs = unpackLayer(layers.nodejs.file);
  const standaloneOk = process.arch === 'x64';
  const standalone = standaloneOk ? unpackLayer(layers.x86_64.file) : undefined;
  const bare = unpackLayer(layers.nodejs.file);
  writeFileSync(join(bare, 'pscache', 'pscache.cjs'), BARE_EXTENSION);
  // The same on the standalone layer's own node, through the same launcher (which runs the bare script
  // directly: no start.cjs, no code cache).
  const bareStandalone = standaloneOk ? unpackLayer(layers.x86_64.file) : undefined;
  if (bareStandalone) {
    writeFileSync(join(bareStandalone, 'pscache', 'pscache.cjs'), BARE_EXTENSION);
    for (const f of ['start.cjs', 'pscache.v8cache'])
      rmSync(join(bareStandalone, 'pscache', f), { force: true });
  }

  // The same layer on each other pinned Node.js, with a code cache made by that node (as `npm run layer`
  // makes the zip's), and the bare extension on it. BENCH_LAMBDA_NODES=24.22.3,... picks some.
  const wanted = process.env['BENCH_LAMBDA_NODES']?.split(',').filter(Boolean);
  const otherVersions = Object.keys(PINS).filter(
    (v) => v !== LAYER_NODE && PINS[v]?.x86_64 && (!wanted || wanted.includes(v)),
  );
  const others: { version: string; layer: string; bare: string }[] = [];
  for (const version of standaloneOk ? otherVersions : []) {
    const node = await nodeBinary(version, 'x86_64');
    const layer = unpackLayer(layers.x86_64.file);
    const bare = unpackLayer(layers.x86_64.file);
    writeFileSync(join(bare, 'pscache', 'pscache.cjs'), BARE_EXTENSION);
    for (const d of [layer, bare]) {
      for (const f of ['node', 'pscache.v8cache', ...(d === bare ? ['start.cjs'] : [])])
        rmSync(join(d, 'pscache', f), { force: true });
      symlinkSync(node, join(d, 'pscache', 'node'));
    }
    await promisify(execFile)(
      node,
      [
        '--random-seed=1',
        join(ROOT, 'scripts', 'layer-code-cache.cjs'),
        join(layer, 'pscache'),
        join(layer, 'pscache', 'pscache.v8cache'),
      ],
      { env: {}, timeout: 60_000 },
    );
    others.push({ version, layer, bare });
  }
  // The layer started from a startup snapshot of its bundle, made with its own node.
  const snapshot = standaloneOk ? unpackLayer(layers.x86_64.file) : undefined;
  const snapshotBytes = snapshot ? await snapshotLayer(snapshot) : 0;

  // Whether the layer's node takes its code cache (it logs why not at DEBUG): the INIT figure depends on it.
  const codeCache = standalone
    ? (/code_cache=(\S+)/.exec(
        (
          await launchOnce(standalone, {
            ping: false,
            env: { PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug' },
          })
        ).output,
      )?.[1] ?? 'absent')
    : 'absent';

  const systemNode = pathNode();
  const bundledNode = standalone ? join(standalone, 'pscache', 'node') : undefined;
  const s = {
    systemBase: series(`${systemNode} -e 0`, 'ms'),
    nodejsRegister: series('pscache-nodejs.zip', 'ms'),
    nodejsPing: series('pscache-nodejs.zip', 'ms'),
    bareRegister: series('bare Node extension, same launcher', 'ms'),
    bundledBase: series('bundled node -e 0', 'ms'),
    standaloneRegister: series('pscache-x86_64.zip', 'ms'),
    standalonePing: series('pscache-x86_64.zip', 'ms'),
    standaloneNext: series('pscache-x86_64.zip', 'ms'),
    bareNext: series('bare Node extension on the bundled node, same launcher', 'ms'),
    standaloneRss: series('pscache-x86_64.zip', 'MiB'),
    bareRss: series('bare Node extension on the bundled node, same launcher', 'MiB'),
    snapshotNext: series('pscache-x86_64.zip started from a startup snapshot', 'ms'),
    snapshotRss: series('pscache-x86_64.zip started from a startup snapshot', 'MiB'),
  };
  const on = others.map((o) => ({
    ...o,
    next: series(`pscache-x86_64.zip on Node.js ${o.version}`, 'ms'),
    bareNext: series(`bare Node extension on Node.js ${o.version}`, 'ms'),
    rss: series(`pscache-x86_64.zip on Node.js ${o.version}`, 'MiB'),
    bareRss: series(`bare Node extension on Node.js ${o.version}`, 'MiB'),
    /** The layer on its pinned node, in the same rounds as this one's `next`. */
    layerNext: series(`pscache-x86_64.zip on Node.js ${LAYER_NODE}`, 'ms'),
  }));
  try {
    for (let round = 0; round < warmups + runs; round++) {
      const keep = round >= warmups;
      // Interleaved, so that a noisy moment hits every series alike.
      const base = await timeToExit(systemNode, ['-e', '0']);
      const n = await launchOnce(nodejs);
      const floor = await launchOnce(bare);
      let bundled: number | undefined;
      let st: Launch | undefined;
      let init: Launch | undefined;
      let bareInit: Launch | undefined;
      if (standalone && bundledNode && bareStandalone) {
        bundled = await timeToExit(bundledNode, ['-e', '0']);
        st = await launchOnce(standalone);
        // INIT without /ping polling; the order flips every round.
        [init, bareInit] = await paired(round, standalone, bareStandalone);
        // The other nodes and the snapshot, in the same rounds as the layer and the bare extension above.
        const layerInit = init;
        const extra: (() => Promise<void>)[] = on.map((o) => async () => {
          const [a, b] = await paired(round, o.layer, o.bare);
          if (!keep) return;
          o.next.samples.push(a.next);
          o.bareNext.samples.push(b.next);
          o.layerNext.samples.push(layerInit.next);
        });
        if (snapshot)
          extra.push(async () => {
            const l = await launchOnce(snapshot, { ping: false });
            if (keep) s.snapshotNext.samples.push(l.next);
          });
        if (round % 2 === 1) extra.reverse();
        for (const e of extra) await e();
      }
      if (!keep) continue;
      s.systemBase.samples.push(base);
      s.nodejsRegister.samples.push(n.register);
      s.nodejsPing.samples.push(n.ping);
      s.bareRegister.samples.push(floor.register);
      if (bundled !== undefined && st && init && bareInit) {
        s.bundledBase.samples.push(bundled);
        s.standaloneRegister.samples.push(st.register);
        s.standalonePing.samples.push(st.ping);
        s.standaloneNext.samples.push(init.next);
        s.bareNext.samples.push(bareInit.next);
      }
    }
    for (let round = 0; standalone && bareStandalone && round < rssRuns; round++) {
      const layer = await launchOnce(standalone, { ping: false, rss: true });
      const floor = await launchOnce(bareStandalone, { ping: false, rss: true });
      s.standaloneRss.samples.push(layer.rss);
      s.bareRss.samples.push(floor.rss);
      for (const o of on) {
        o.rss.samples.push((await launchOnce(o.layer, { ping: false, rss: true })).rss);
        o.bareRss.samples.push((await launchOnce(o.bare, { ping: false, rss: true })).rss);
      }
      if (snapshot) s.snapshotRss.samples.push((await launchOnce(snapshot, { ping: false, rss: true })).rss);
    }
  } finally {
    for (const d of [
      nodejs,
      standalone,
      bare,
      bareStandalone,
      snapshot,
      ...others.flatMap((o) => [o.layer, o.bare]),
    ])
      if (d) rmSync(d, { recursive: true, force: true });
  }

  const row = (
    figure: string,
    subject: Series,
    baseline: Series,
    note?: string,
    target?: Result['target'],
  ): Result => ({
    suite: SUITE,
    figure,
    subject,
    baseline,
    paired: true,
    ...(target ? { target } : {}),
    ...(note ? { note } : {}),
  });
  const results: Result[] = [
    row('Lambda, Node.js layer: launcher exec → register', s.nodejsRegister, s.systemBase, AGAINST_NODE_E_0),
    row('Lambda, Node.js layer: launcher exec → /ping 200', s.nodejsPing, s.systemBase),
    {
      suite: SUITE,
      figure: 'Lambda, bare Node extension (listen + register only): exec → register',
      subject: s.bareRegister,
      baseline: s.systemBase,
      paired: true,
      note: 'reference only: the floor for any Node.js extension on this machine, launcher and stand-in included',
    },
  ];
  if (standaloneOk) {
    results.push(
      row('Lambda, x86_64 layer: launcher exec → register', s.standaloneRegister, s.bundledBase),
      row('Lambda, x86_64 layer: launcher exec → /ping 200', s.standalonePing, s.bundledBase),
      row(
        'Lambda, x86_64 layer INIT: launcher exec → first event/next',
        s.standaloneNext,
        s.bareNext,
        `when Lambda may end INIT; the bare extension listens, registers and calls event/next; no /ping polling during these launches; ${runs} interleaved rounds, order flipped every round; the layer's code cache: ${Math.round((layers.x86_64.codeCache ?? 0) / 1024)} KiB, code_cache=${codeCache}`,
        INIT_TARGET,
      ),
      row(
        `Lambda, x86_64 layer: idle RSS (first event/next + ${SETTLE_MS} ms)`,
        s.standaloneRss,
        s.bareRss,
        `VmRSS of the extension process (the launcher execs node in place), ${rssRuns} launches each`,
        RSS_TARGET,
      ),
    );
    if (snapshot) {
      results.push(
        row(
          'Lambda, x86_64 layer INIT started from a V8 startup snapshot (experiment, not shipped)',
          s.snapshotNext,
          s.bareNext,
          `the same layer with a startup snapshot of its bundle (node --build-snapshot by its own node, ${(snapshotBytes / 1024 / 1024).toFixed(1)} MiB) in place of its code cache (bench/snapshot.ts); same rounds as the INIT row`,
        ),
        row(
          'Lambda, x86_64 layer INIT: startup snapshot against the code cache it ships with',
          s.snapshotNext,
          s.standaloneNext,
          'below 1 the snapshot would be the faster start',
        ),
        row(
          'Lambda, x86_64 layer idle RSS: startup snapshot against the code cache it ships with',
          s.snapshotRss,
          s.standaloneRss,
          `${rssRuns} launches each, in the same rounds`,
        ),
      );
    }
    for (const o of on) {
      results.push(
        row(
          `Lambda, x86_64 layer INIT on Node.js ${o.version}: exec → first event/next`,
          o.next,
          o.bareNext,
          `pscache/node replaced by the pinned Node.js ${o.version} and a code cache made by it, against the bare extension on it; the layers carry ${LAYER_NODE}`,
        ),
        row(
          `Lambda, x86_64 layer INIT on Node.js ${o.version} against on ${LAYER_NODE}`,
          o.next,
          o.layerNext,
          'the same layer, each node with its own code cache, in the same rounds: which node starts pscache faster',
        ),
        row(
          `Lambda, x86_64 layer idle RSS on Node.js ${o.version} against on ${LAYER_NODE}`,
          o.rss,
          s.standaloneRss,
          `bare extension on Node.js ${o.version}: median ${median(o.bareRss.samples).toFixed(1)} MiB; ${rssRuns} launches each, in the same rounds`,
        ),
      );
    }
  } else {
    results.push({
      suite: SUITE,
      figure: 'Lambda, x86_64 layer',
      subject: null,
      baseline: null,
      note: `skipped: this machine is ${process.arch}`,
    });
  }
  return results;
}
