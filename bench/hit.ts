// Hit-path suite: pscache serving a cached secret vs a bare http.createServer answering the same bytes,
// under the same load generator in its own process, keep-alive and a new connection per request.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { startEmulator } from '../packages/emulator/index.ts';
import {
  daemonEnv,
  freePort,
  httpGet,
  spawnPscache,
  TEST_CREDENTIALS,
  TEST_TOKEN,
} from '../test/helpers/daemon.ts';
import {
  cpuMs,
  envInt,
  median,
  type Result,
  type Series,
  series,
  spawnChild,
  startLoadgen,
  waitFor200,
  writePlot,
} from './lib.ts';
import type { LoadResult } from './loadgen.ts';
import { lineChart } from './svg.ts';

const SUITE = 'hit';
const SECRET = 'bench/hit/db-credentials';
const VALUE = JSON.stringify({
  username: 'app_user',
  password: 'Zq9#mV2$wL7!pR4^tX8&kN3*hB6@',
  engine: 'postgres',
  host: 'db.internal.example.com',
  port: 5432,
  dbname: 'orders',
});
const PATH = `/secretsmanager/get?secretId=${encodeURIComponent(SECRET)}`;
const CONNECTIONS = 16;

/**
 * The baseline: the least a Node server can do to answer with the same bytes (the same status, headers and
 * body as pscache's hit, set once at start-up), whatever the request.
 */
const BARE_SERVER = `const b=Buffer.from(process.env.BODY_B64,'base64');const h=JSON.parse(process.env.HEADERS_JSON);
require('http').createServer((q,s)=>{s.writeHead(200,h);s.end(b)}).listen(+process.env.PORT,'127.0.0.1')`;

/** The raw bytes of one answer to `path` (Connection: close), with the Date line removed. */
function rawAnswer(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
    });
    sock.once('connect', () =>
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Aws-Parameters-Secrets-Token: ${TEST_TOKEN}\r\n\r\n`,
      ),
    );
    // Keep-alive answer: stop once headers and Content-Length bytes are in.
    const check = () => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
      if (buf.length >= end + 4 + len) {
        sock.destroy();
        resolve(buf.replace(/\r\nDate: [^\r]*/i, ''));
      }
    };
    sock.on('data', check);
    sock.once('error', reject);
  });
}

type Mode = 'keepalive' | 'fresh' | 'single';
const MODES: Mode[] = ['keepalive', 'fresh', 'single'];
const MODE_NAME: Record<Mode, string> = {
  keepalive: `keep-alive, ${CONNECTIONS} connections`,
  fresh: `new connection per request, ${CONNECTIONS} concurrent`,
  single: 'keep-alive, 1 connection, one request at a time',
};
const PCTS = ['p50', 'p75', 'p90', 'p99', 'p999'] as const;
const PCT_LABEL = ['p50', 'p75', 'p90', 'p99', 'p99.9'];

type Run = LoadResult & { cpuUsPerReq: number };

export async function benchHit(): Promise<Result[]> {
  const rounds = envInt('BENCH_HIT_ROUNDS', 5);
  const warmups = envInt('BENCH_HIT_WARMUPS', 1, 0);
  const seconds: Record<Mode, number> = {
    keepalive: envInt('BENCH_HIT_SECONDS', 2),
    fresh: envInt('BENCH_HIT_FRESH_SECONDS', 1),
    single: envInt('BENCH_HIT_SINGLE_SECONDS', 1),
  };
  const emu = await startEmulator({
    port: 0,
    store: { parameters: [], secrets: [{ name: SECRET, secretString: VALUE }] },
    credentials: [TEST_CREDENTIALS],
  });
  const psPort = await freePort();
  const ps = await spawnPscache(['serve'], daemonEnv(emu.url, psPort));
  const loadgen = startLoadgen();
  let bare: ReturnType<typeof spawnChild> | undefined;
  try {
    const first = await httpGet(psPort, PATH);
    const hit = await httpGet(psPort, PATH);
    if (first.headers['x-pscache'] !== 'miss' || hit.headers['x-pscache'] !== 'hit' || hit.status !== 200) {
      throw new Error(
        `priming failed: ${first.status} ${first.headers['x-pscache']}, ${hit.headers['x-pscache']}`,
      );
    }
    const headers = {
      'Content-Type': String(hit.headers['content-type']),
      'Cache-Control': String(hit.headers['cache-control']),
      'Content-Length': String(hit.headers['content-length']),
      'X-Pscache': 'hit',
    };
    const barePort = await freePort();
    bare = spawnChild(process.execPath, ['-e', BARE_SERVER], {
      PORT: String(barePort),
      BODY_B64: Buffer.from(hit.body).toString('base64'),
      HEADERS_JSON: JSON.stringify(headers),
    });
    await waitFor200(bare, barePort);
    const [a, b] = [await rawAnswer(psPort, PATH), await rawAnswer(barePort, PATH)];
    if (a !== b) throw new Error(`the bare server's answer differs from pscache's:\n${a}\n---\n${b}`);

    const servers = [
      { key: 'ps', port: psPort, pid: ps.child.pid! },
      { key: 'bare', port: barePort, pid: bare.pid },
    ] as const;
    type Key = (typeof servers)[number]['key'];
    const runs: Record<Mode, Record<Key, Run[]>> = {
      keepalive: { ps: [], bare: [] },
      fresh: { ps: [], bare: [] },
      single: { ps: [], bare: [] },
    };
    for (let round = 0; round < warmups + rounds; round++) {
      const warm = round < warmups;
      for (const mode of MODES) {
        const order = round % 2 === 0 ? servers : [...servers].reverse();
        for (const s of order) {
          const cpu0 = cpuMs(s.pid);
          const r = await loadgen.run({
            kind: mode === 'fresh' ? 'fresh' : 'keepalive',
            port: s.port,
            path: PATH,
            headers: { 'X-Aws-Parameters-Secrets-Token': TEST_TOKEN },
            connections: mode === 'single' ? 1 : CONNECTIONS,
            seconds: warm ? 0.5 : seconds[mode],
          });
          const cpu = cpuMs(s.pid) - cpu0;
          if (r.non2xx > 0 || r.ok === 0)
            throw new Error(`${s.key} ${mode}: ${r.non2xx} non-2xx, ${r.ok} ok`);
          if (!warm) runs[mode][s.key].push({ ...r, cpuUsPerReq: (cpu * 1000) / (r.ok + r.errors) });
        }
      }
    }
    const metrics = await httpGet(psPort, '/metrics');
    if (!/pscache_cache_hits_total [1-9]/.test(metrics.body)) throw new Error('no hits counted');
    const upstream = Object.values(emu.calls()).reduce((x, y) => x + y, 0);

    const pick = (mode: Mode, key: Key, f: (r: Run) => number) => runs[mode][key].map(f);
    const results: Result[] = [];
    for (const mode of MODES) {
      const name = MODE_NAME[mode];
      const ka = mode === 'keepalive';
      const pair = (
        figure: string,
        unit: Series['unit'],
        f: (r: Run) => number,
        target?: Result['target'],
        note?: string,
      ): Result => ({
        suite: SUITE,
        figure,
        subject: series('pscache, cached secret', unit, pick(mode, 'ps', f)),
        baseline: series('bare http.createServer, same bytes', unit, pick(mode, 'bare', f)),
        paired: true,
        ...(target ? { target } : {}),
        ...(note ? { note } : {}),
      });
      const notes: Record<Mode, string> = {
        keepalive: `autocannon ${autocannonVersion()} in a forked process (the servers are separate processes too), ${seconds.keepalive} s per run, ${rounds} interleaved rounds (order flipped each round) after ${warmups} short warm-up; the bare server's answer was checked byte for byte (Date aside) against pscache's; upstream calls during the suite: ${upstream} (the priming miss)`,
        fresh: `raw client in the same forked process (autocannon cannot: with reconnectRate it drops every answer from its counts, with Connection: close its latencies pile up): connect, one GET with Connection: close, read the answer, wait for the server's close; latency includes the connect; ${seconds.fresh} s per run`,
        single: `what one function sees: autocannon with 1 connection, ${seconds.single} s per run; neither server is saturated, so this is round trip + the server's own work`,
      };
      results.push(
        pair(
          `hit, ${name}: requests/s`,
          'req/s',
          (r) => r.rps,
          ka ? { kind: 'minRatio', min: 0.9 } : undefined,
          notes[mode],
        ),
        pair(`hit, ${name}: p50 latency`, 'ms', (r) => r.latency.p50),
        pair(
          `hit, ${name}: p99 latency`,
          'ms',
          (r) => r.latency.p99,
          ka ? { kind: 'ratio', max: 1.2 } : undefined,
        ),
      );
      if (mode !== 'single') {
        results.push(
          pair(
            `hit, ${name}: server CPU per request (µs)`,
            'count',
            (r) => r.cpuUsPerReq,
            undefined,
            ka
              ? 'user + system CPU of the server process during the run (/proc/PID/stat, 10 ms ticks) / answers: what each request costs the server, whatever the load generator gets of the 2 cores; the least noisy of these figures'
              : undefined,
          ),
        );
      }
    }

    // Latency percentiles plots: median over rounds of each percentile.
    const med = (mode: Mode, key: Key, p: (typeof PCTS)[number]) =>
      median(pick(mode, key, (r) => r.latency[p]));
    for (const mode of MODES) {
      writePlot(
        `latency-${mode}.svg`,
        lineChart({
          title: `Hit path latency, ${MODE_NAME[mode]} (median of ${rounds} runs)`,
          xLabel: 'percentile',
          yLabel: 'latency (ms)',
          xTicks: PCT_LABEL.map((l, i) => [i, l]),
          lines: [
            { name: 'pscache', points: PCTS.map((p, i) => [i, med(mode, 'ps', p)]), dots: true },
            {
              name: 'bare server',
              points: PCTS.map((p, i) => [i, med(mode, 'bare', p)]),
              dots: true,
              dashed: true,
            },
          ],
        }),
      );
    }
    return results;
  } finally {
    loadgen.close();
    await bare?.stop();
    await ps.stop();
    await emu.close();
  }
}

function autocannonVersion(): string {
  const pkg = new URL('../node_modules/autocannon/package.json', import.meta.url);
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}
