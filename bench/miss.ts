// Miss-path suite: a first fetch through pscache vs the same GetSecretValue made directly with the AWS SDK,
// against the emulator with 20 ms of injected latency, with the batch window at its default and at 0.
import { Agent } from 'node:http';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { startEmulator } from '../packages/emulator/index.ts';
import {
  daemonEnv,
  freePort,
  type RunningProcess,
  spawnPscache,
  TEST_CREDENTIALS,
  TEST_TOKEN,
} from '../test/helpers/daemon.ts';
import { envInt, median, type Result, series, timedGet } from './lib.ts';

const SUITE = 'miss';
const LATENCY_MS = 20;
const TARGET = { kind: 'affine', ratio: 1.05, plus: 1 } as const;

export async function benchMiss(): Promise<Result[]> {
  const samples = envInt('BENCH_MISS_SAMPLES', 40);
  const warmups = 3;
  const total = samples + warmups;
  const sides = ['w2', 'w0', 'sdk'] as const;
  type Side = (typeof sides)[number];
  const name = (side: Side, i: number) => `bench/miss/${side}/${String(i).padStart(3, '0')}`;
  const emu = await startEmulator({
    port: 0,
    store: {
      parameters: [],
      secrets: sides.flatMap((side) =>
        Array.from({ length: total }, (_, i) => ({
          name: name(side, i),
          secretString: `value-${side}-${i}`,
        })),
      ),
    },
    credentials: [TEST_CREDENTIALS],
  });
  emu.setFaults([
    { operation: 'GetSecretValue', latencyMs: LATENCY_MS },
    { operation: 'BatchGetSecretValue', latencyMs: LATENCY_MS },
  ]);
  const daemons: RunningProcess[] = [];
  const agents: Agent[] = [];
  const sdk = new SecretsManagerClient({
    endpoint: emu.url,
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
  try {
    const start = async (window: string | undefined) => {
      const port = await freePort();
      const extra: Record<string, string> =
        window === undefined ? {} : { PARAMETERS_SECRETS_EXTENSION_BATCH_WINDOW_MILLIS: window };
      const d = await spawnPscache(['serve'], daemonEnv(emu.url, port, extra));
      daemons.push(d);
      // One warm keep-alive connection, as a function's HTTP client holds between invocations.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      await timedGet(port, '/ping', agent, {});
      return { port, agent };
    };
    const w2 = await start(undefined);
    const w0 = await start('0');
    const headers = { 'X-Aws-Parameters-Secrets-Token': TEST_TOKEN };
    const viaPscache = async (d: { port: number; agent: Agent }, id: string) => {
      const r = await timedGet(
        d.port,
        `/secretsmanager/get?secretId=${encodeURIComponent(id)}`,
        d.agent,
        headers,
      );
      if (r.status !== 200 || r.headers['x-pscache'] !== 'miss') {
        throw new Error(`pscache ${id}: ${r.status} ${r.headers['x-pscache']} ${r.body}`);
      }
      return r.ms;
    };
    const viaSdk = async (id: string) => {
      const t0 = performance.now();
      const out = await sdk.send(new GetSecretValueCommand({ SecretId: id }));
      const ms = performance.now() - t0;
      if (out.SecretString === undefined) throw new Error(`sdk ${id}: no SecretString`);
      return ms;
    };
    const run: Record<Side, (i: number) => Promise<number>> = {
      w2: (i) => viaPscache(w2, name('w2', i)),
      w0: (i) => viaPscache(w0, name('w0', i)),
      sdk: (i) => viaSdk(name('sdk', i)),
    };
    const out: Record<Side, number[]> = { w2: [], w0: [], sdk: [] };
    for (let i = 0; i < total; i++) {
      // The three sides in turn, the order rotating every sample.
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(i + k) % sides.length]!;
        const ms = await run[side](i);
        if (i >= warmups) out[side].push(ms);
      }
    }
    const calls = emu.calls();
    const sdkSeries = series(`AWS SDK v3 GetSecretValue, direct`, 'ms', out.sdk);
    const note = (w: string) =>
      `${samples} distinct secrets per side, each fetched once (every pscache request a real miss: X-Pscache: miss checked), one at a time over one warm keep-alive connection; the three sides interleaved, order rotating; emulator latency ${LATENCY_MS} ms on every call; SDK client: @aws-sdk/client-secrets-manager, maxAttempts 1, its default keep-alive handler; ${w}`;
    return [
      {
        suite: SUITE,
        figure: 'miss: first fetch through pscache, BATCH_WINDOW_MILLIS default (2)',
        subject: series('pscache, batch window 2 ms', 'ms', out.w2),
        baseline: sdkSeries,
        paired: true,
        target: TARGET,
        note: note(
          `a lone miss waits one batch window (2 ms) for company before its single GetSecretValue: median cost over the SDK ${(median(out.w2) - median(out.sdk)).toFixed(2)} ms`,
        ),
      },
      {
        suite: SUITE,
        figure: 'miss: first fetch through pscache, BATCH_WINDOW_MILLIS=0',
        subject: series('pscache, batching off', 'ms', out.w0),
        baseline: sdkSeries,
        paired: true,
        target: TARGET,
        note: note(
          `upstream calls over the suite: GetSecretValue ${calls['GetSecretValue'] ?? 0}, BatchGetSecretValue ${calls['BatchGetSecretValue'] ?? 0} (expected ${3 * total} and 0)`,
        ),
      },
    ];
  } finally {
    sdk.destroy();
    for (const a of agents) a.destroy();
    for (const d of daemons) await d.stop();
    await emu.close();
  }
}
