// Shutdown suite: SIGTERM → exit of `pscache serve`, and the Lambda SHUTDOWN event → exit of the Node.js
// layer in the Runtime API stand-in, idle and with a request in flight on a slow upstream.
import { rmSync } from 'node:fs';
import { startEmulator } from '../packages/emulator/index.ts';
import { BUNDLE, daemonEnv, freePort, httpGet } from '../test/helpers/daemon.ts';
import { buildLayers } from '../test/helpers/lambda-layer.ts';
import { startSim, unpackLayer } from '../test/helpers/lambda-sim.ts';
import { envInt, type Result, rawGetStatus, series, sleep, spawnChild, waitFor200 } from './lib.ts';

const SUITE = 'shutdown';
/** The in-flight request's upstream call takes this long; the stop signal comes SIGNAL_AFTER_MS into it. */
const UPSTREAM_MS = 200;
const SIGNAL_AFTER_MS = 50;
const SLOW = 'bench/shutdown/slow';

/** A bare server that stops gracefully on SIGTERM: the least a server that drains can do. */
const BARE_GRACEFUL = `const s=require('http').createServer((q,r)=>r.end('healthy')).listen(+process.env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT,'127.0.0.1');
process.on('SIGTERM',()=>s.close(()=>process.exit(0)))`;

export async function benchShutdown(): Promise<Result[]> {
  const rounds = envInt('BENCH_SHUTDOWN_ROUNDS', 6);
  // No SigV4 check here: the Lambda layer signs with its own session credentials.
  const emu = await startEmulator({
    port: 0,
    store: {
      parameters: [],
      secrets: Array.from({ length: rounds * 2 + 4 }, (_, i) => ({
        name: `${SLOW}-${i}`,
        secretString: `v${i}`,
      })),
    },
  });
  emu.setFaults([{ operation: 'GetSecretValue', latencyMs: UPSTREAM_MS }]);
  let slow = 0;
  const nextSlow = () => `/secretsmanager/get?secretId=${encodeURIComponent(`${SLOW}-${slow++}`)}`;
  const s = {
    idle: series('pscache serve: SIGTERM → exit', 'ms'),
    bare: series('bare server, close() on SIGTERM', 'ms'),
    busy: series('pscache serve: SIGTERM → exit', 'ms'),
    busyAfterAnswer: series('pscache serve: answer → exit', 'ms'),
    lambdaIdle: series('Node.js layer: SHUTDOWN → exit', 'ms'),
    lambdaBusy: series('Node.js layer: SHUTDOWN → exit', 'ms'),
    lambdaBusyAfterAnswer: series('Node.js layer: answer → exit', 'ms'),
  };
  const statuses: number[] = [];
  const layers = await buildLayers();
  const layerDir = unpackLayer(layers.nodejs.file);
  try {
    /** SIGTERM → exit of a fresh process; with `inFlight`, a slow request is on its way when the signal comes. */
    const sigterm = async (args: string[], inFlight: boolean) => {
      const port = await freePort();
      const c = spawnChild(process.execPath, args, daemonEnv(emu.url, port));
      await waitFor200(c, port);
      await sleep(200);
      let answered: Promise<number> | undefined;
      if (inFlight) {
        answered = httpGet(port, nextSlow()).then((r) => {
          statuses.push(r.status);
          return performance.now();
        });
        await sleep(SIGNAL_AFTER_MS);
      }
      const t = performance.now();
      c.child.kill('SIGTERM');
      const r = await c.exited;
      if (r.code !== 0) throw new Error(`exit ${r.code} ${r.signal}:\n${c.output()}`);
      return { ms: r.at - t, afterAnswer: answered ? r.at - (await answered) : Number.NaN };
    };
    /** SHUTDOWN from the stand-in → exit of the Node.js layer's extension. */
    const shutdown = async (inFlight: boolean) => {
      const sim = await startSim();
      const port = await freePort();
      try {
        const token = 'bench-session-token';
        const ext = sim.launch(layerDir, {
          env: {
            AWS_ACCESS_KEY_ID: 'AKIAPSCACHEBENCH0001',
            AWS_SECRET_ACCESS_KEY: 'bench-secret-access-key',
            AWS_SESSION_TOKEN: token,
            AWS_ENDPOINT_URL: emu.url,
            PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
          },
        });
        for (;;) {
          const status = await rawGetStatus(port, '/ping').catch(() => 0);
          if (status === 200) break;
          if (performance.now() - ext.startedAt > 15_000) throw new Error(`no /ping:\n${ext.output()}`);
          await sleep(2);
        }
        await sim.nextCalls(1);
        await sleep(200);
        let answered: Promise<number> | undefined;
        if (inFlight) {
          answered = httpGet(port, nextSlow(), { token }).then((r) => {
            statuses.push(r.status);
            return performance.now();
          });
          await sleep(SIGNAL_AFTER_MS);
        }
        const sent = await sim.shutdown();
        const r = await ext.exited;
        await ext.dispose();
        if (r.code !== 0) throw new Error(`the extension exited ${r.code}:\n${ext.output()}`);
        return { ms: r.at - sent, afterAnswer: answered ? r.at - (await answered) : Number.NaN };
      } finally {
        await sim.close();
      }
    };

    for (let round = 0; round < rounds + 1; round++) {
      const keep = round > 0;
      const idle = await sigterm([BUNDLE, 'serve'], false);
      const bare = await sigterm(['-e', BARE_GRACEFUL], false);
      const busy = await sigterm([BUNDLE, 'serve'], true);
      const lIdle = await shutdown(false);
      const lBusy = await shutdown(true);
      if (!keep) continue;
      s.idle.samples.push(idle.ms);
      s.bare.samples.push(bare.ms);
      s.busy.samples.push(busy.ms);
      s.busyAfterAnswer.samples.push(busy.afterAnswer);
      s.lambdaIdle.samples.push(lIdle.ms);
      s.lambdaBusy.samples.push(lBusy.ms);
      s.lambdaBusyAfterAnswer.samples.push(lBusy.afterAnswer);
    }
  } finally {
    rmSync(layerDir, { recursive: true, force: true });
    await emu.close();
  }
  const inFlightNote = `one GET for an uncached secret whose upstream call takes ${UPSTREAM_MS} ms, the stop ${SIGNAL_AFTER_MS} ms after it was sent: the request must still be answered (statuses seen: ${[...new Set(statuses)].join(', ')}), so exit can come no sooner than ~${UPSTREAM_MS - SIGNAL_AFTER_MS} ms after the stop`;
  return [
    {
      suite: SUITE,
      figure: 'shutdown, idle: SIGTERM → process exit',
      subject: s.idle,
      baseline: s.bare,
      paired: true,
      target: { kind: 'value', max: 100 },
      note: `${rounds} rounds after 1 warm-up, each a fresh process 200 ms after its first /ping; time from kill() to the child's exit event; the baseline is a bare server whose SIGTERM handler calls server.close() then exits`,
    },
    {
      suite: SUITE,
      figure: 'shutdown, 1 request in flight: SIGTERM → process exit',
      subject: s.busy,
      baseline: null,
      note: inFlightNote,
    },
    {
      suite: SUITE,
      figure: 'shutdown, 1 request in flight: its answer → process exit',
      subject: s.busyAfterAnswer,
      baseline: null,
      target: { kind: 'value', max: 100 },
      note: 'the time the process takes to go once the last answer is out (the idle target applied to what is left after draining)',
    },
    {
      suite: SUITE,
      figure: 'Lambda SHUTDOWN event → exit (Node.js layer, stand-in Runtime API), idle',
      subject: s.lambdaIdle,
      baseline: null,
      target: { kind: 'value', max: 100 },
      note: 'test/helpers/lambda-sim.ts: the layer zip unpacked and its extensions/pscache launcher run as Lambda does; from the SHUTDOWN event written to the waiting event/next to the exit',
    },
    {
      suite: SUITE,
      figure: 'Lambda SHUTDOWN event → exit, 1 request in flight',
      subject: s.lambdaBusy,
      baseline: null,
      note: `${inFlightNote}; in Lambda the grace for in-flight requests is 250 ms (SHUTDOWN_GRACE_MS)`,
    },
    {
      suite: SUITE,
      figure: 'Lambda SHUTDOWN, 1 request in flight: its answer → exit',
      subject: s.lambdaBusyAfterAnswer,
      baseline: null,
      target: { kind: 'value', max: 100 },
    },
  ];
}
