// Batch suite: what one batch answer of 100 cached 60 KB secrets costs the daemon (CPU per answer, against
// the same 100 values read one by one), and 200 connections each pipelining 3 such batches without reading:
// /ping latency and RSS meanwhile.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { startEmulator } from '../packages/emulator/index.ts';
import { daemonEnv, freePort, spawnPscache, TEST_CREDENTIALS, TEST_TOKEN } from '../test/helpers/daemon.ts';
import {
  cpuMs,
  envInt,
  max,
  median,
  percentile,
  prng,
  type Result,
  rawGetStatus,
  rssMiB,
  series,
  sleep,
  timedGet,
} from './lib.ts';

const SUITE = 'batch';
const ITEMS = 100;
const SECRET_BYTES = 60 * 1024;
const TOKEN = { 'X-Aws-Parameters-Secrets-Token': TEST_TOKEN };
const NAME = (i: number) => `bench/batch/secret-${String(i).padStart(3, '0')}`;

/** Printable, no quote or backslash: the answer is as large as the values (6 MB for 100). */
function secretValue(i: number): string {
  const r = prng(i + 7);
  const out: string[] = [];
  for (let n = 0; n < SECRET_BYTES; n++) {
    let c = 35 + Math.floor(r() * 91);
    if (c === 92) c = 93;
    out.push(String.fromCharCode(c));
  }
  return out.join('');
}

const BATCH_PATH = `/secretsmanager/batch?${Array.from(
  { length: ITEMS },
  (_, i) => `secretId=${encodeURIComponent(NAME(i))}`,
).join('&')}`;
const SINGLE_PATHS = Array.from(
  { length: ITEMS },
  (_, i) => `/secretsmanager/get?secretId=${encodeURIComponent(NAME(i))}`,
);

/** Peak RSS of a live process (VmHWM), in MiB. */
function peakMiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** /ping's latency on a fresh connection (status line), ms; a refusal or timeout counts as the timeout. */
async function pingMs(port: number, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  try {
    await rawGetStatus(port, '/ping', timeoutMs);
  } catch {
    return timeoutMs;
  }
  return performance.now() - t0;
}

/**
 * `connections` sockets each write 3 batch requests in one write and never read; each is closed by the
 * daemon or, at the latest, after `holdMs`. Resolves when all are closed.
 */
async function flood(port: number, connections: number, holdMs: number): Promise<number> {
  const req = `GET ${BATCH_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Aws-Parameters-Secrets-Token: ${TEST_TOKEN}\r\n\r\n`;
  let cut = 0;
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<void>((resolve) => {
          const s = connect({ host: '127.0.0.1', port });
          sockets.push(s);
          s.pause();
          const timer = setTimeout(() => s.destroy(), holdMs);
          s.once('connect', () => s.write(req + req + req));
          s.once('error', () => {});
          s.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          s.once('end', () => {
            cut++;
          });
        }),
    ),
  );
  return cut;
}

export async function benchBatch(): Promise<Result[]> {
  const rounds = envInt('BENCH_BATCH_ROUNDS', 3);
  const answers = envInt('BENCH_BATCH_ANSWERS', 60);
  const connections = envInt('BENCH_BATCH_CONNECTIONS', 200);
  const emu = await startEmulator({
    port: 0,
    store: {
      parameters: [],
      secrets: Array.from({ length: ITEMS }, (_, i) => ({ name: NAME(i), secretString: secretValue(i) })),
    },
    credentials: [TEST_CREDENTIALS],
  });
  const batchCpu: number[] = [];
  const singlesCpu: number[] = [];
  const batchWall: number[] = [];
  const idlePing: number[] = [];
  const floodPing: number[] = [];
  const floodPingMax: number[] = [];
  const rssBefore: number[] = [];
  const rssPeak: number[] = [];
  let answerBytes = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      const port = await freePort();
      const d = await spawnPscache(['serve'], daemonEnv(emu.url, port));
      const pid = d.child.pid!;
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        // Warm: every secret cached, the code paths compiled.
        const first = await timedGet(port, BATCH_PATH, agent, TOKEN);
        if (first.status !== 200) throw new Error(`batch: ${first.status} ${first.body.slice(0, 200)}`);
        answerBytes = Buffer.byteLength(first.body);
        for (let w = 0; w < 5; w++) {
          await timedGet(port, BATCH_PATH, agent, TOKEN);
          for (const p of SINGLE_PATHS) await timedGet(port, p, agent, TOKEN);
        }
        // The same 100 values, one batch answer vs 100 single answers, alternating.
        const per = Math.max(1, Math.floor(answers / 4));
        for (let k = 0; k < 4; k++) {
          let c0 = cpuMs(pid);
          for (let n = 0; n < per; n++) {
            const r = await timedGet(port, BATCH_PATH, agent, TOKEN);
            if (r.status !== 200 || r.headers['x-pscache'] !== 'hit') throw new Error(`batch: ${r.status}`);
            batchWall.push(r.ms);
          }
          batchCpu.push((cpuMs(pid) - c0) / per);
          c0 = cpuMs(pid);
          for (let n = 0; n < per; n++) {
            for (const p of SINGLE_PATHS) await timedGet(port, p, agent, TOKEN);
          }
          singlesCpu.push((cpuMs(pid) - c0) / per);
        }
        agent.destroy();

        for (let n = 0; n < 10; n++) idlePing.push(await pingMs(port, 30_000));
        await sleep(300);
        rssBefore.push(rssMiB(pid));
        // 200 connections × 3 pipelined batches, never read; /ping every 100 ms meanwhile.
        let flooding = true;
        const pings: number[] = [];
        const pinger = (async () => {
          while (flooding) {
            pings.push(await pingMs(port, 30_000));
            await sleep(100);
          }
        })();
        await flood(port, connections, 30_000);
        flooding = false;
        await pinger;
        floodPing.push(percentile(pings, 99));
        floodPingMax.push(max(pings));
        rssPeak.push(peakMiB(pid));
      } finally {
        agent.destroy();
        await d.stop();
      }
    }
  } finally {
    await emu.close();
  }
  const mb = (answerBytes / 2 ** 20).toFixed(1);
  return [
    {
      suite: SUITE,
      figure: `daemon CPU per batch answer of ${ITEMS} cached 60 KB secrets, vs the same ${ITEMS} values read one by one`,
      subject: series(`one /secretsmanager/batch answer (${mb} MiB)`, 'ms', batchCpu),
      baseline: series(`${ITEMS} /secretsmanager/get hits`, 'ms', singlesCpu),
      paired: true,
      target: { kind: 'ratio', max: 1 },
      note: `daemon user+system CPU from /proc over ${Math.max(1, Math.floor(answers / 4))} answers per sample, 4 samples per process, ${rounds} processes; one keep-alive connection; client-side wall time per batch answer: median ${median(batchWall).toFixed(1)} ms`,
    },
    {
      suite: SUITE,
      figure: `/ping latency while ${connections} connections each pipeline 3 such batches without reading`,
      subject: series('/ping p99 during the flood (fresh connection each)', 'ms', floodPing),
      baseline: series('/ping, idle', 'ms', idlePing),
      target: { kind: 'value', max: 1000 },
      note: `worst /ping during the flood: ${floodPingMax.map((x) => x.toFixed(0)).join(', ')} ms; the flooding connections hold their sockets until the daemon closes them (or 30 s)`,
    },
    {
      suite: SUITE,
      figure: `peak RSS of the daemon through that flood, vs its RSS before`,
      subject: series('VmHWM after the flood', 'MiB', rssPeak),
      baseline: series('VmRSS before the flood (100 secrets cached)', 'MiB', rssBefore),
      paired: true,
      target: { kind: 'delta', max: 100 },
    },
  ];
}
