// Paired INIT launches (spawn → first event/next at the Extensions API stand-in) of unpacked layer
// directories, in rotated order each round, for comparing a change against the layer and a bare extension:
//   node scripts/layer.mjs --out /tmp/a x86_64 && mkdir /tmp/a/x && cd /tmp/a/x && unzip -q ../pscache-x86_64.zip
//   node --import tsx bench/init-ab.ts ROUNDS BARE_DIR DIR...
// prints each DIR's median and its ratios to the first DIR (ratio of medians, median of the paired ratios).
import { freePort } from '../test/helpers/daemon.ts';
import { startSim } from '../test/helpers/lambda-sim.ts';

async function once(dir: string): Promise<number> {
  const sim = await startSim();
  const port = await freePort();
  try {
    const ext = sim.launch(dir, {
      env: {
        AWS_ACCESS_KEY_ID: 'AKIAPSCACHEBENCH0001',
        AWS_SECRET_ACCESS_KEY: 'bench-secret-access-key',
        AWS_SESSION_TOKEN: 'bench-session-token',
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
      },
    });
    await sim.nextCalls(1);
    const next = sim.nexts[0]!.at - ext.startedAt;
    await sim.shutdown();
    const r = await ext.exited;
    await ext.dispose();
    if (r.code !== 0) throw new Error(`exit ${r.code}:\n${ext.output()}`);
    return next;
  } finally {
    await sim.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const [roundsArg, ...dirs] = process.argv.slice(2);
const rounds = Number(roundsArg);
const t: number[][] = dirs.map(() => []);
for (let r = -2; r < rounds; r++) {
  for (let k = 0; k < dirs.length; k++) {
    const i = (k + r + 2) % dirs.length;
    const v = await once(dirs[i]!);
    if (r >= 0) t[i]!.push(v);
  }
}
for (let i = 0; i < dirs.length; i++) {
  const ratios = t[i]!.map((v, j) => v / t[0]![j]!);
  console.log(
    `${dirs[i]}: median ${median(t[i]!).toFixed(2)} ms; ratio of medians ${(median(t[i]!) / median(t[0]!)).toFixed(3)}; median paired ratio ${median(ratios).toFixed(3)}`,
  );
}
