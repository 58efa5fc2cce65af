// CPU profile of the hit path (`node --import tsx bench/profile.ts`): an unminified bundle run with
// --cpu-prof under keep-alive load from the forked load generator; prints the top self-time frames.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type BuildOptions, build } from 'esbuild';
import { startEmulator } from '../packages/emulator/index.ts';
import { daemonEnv, freePort, httpGet, ROOT, TEST_CREDENTIALS, TEST_TOKEN } from '../test/helpers/daemon.ts';
import { envInt, markdownTable, spawnChild, startLoadgen, waitFor200 } from './lib.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const SECRET = 'bench/profile/secret';
const PATH = `/secretsmanager/get?secretId=${encodeURIComponent(SECRET)}`;

export interface Frame {
  frame: string;
  selfMs: number;
  selfPct: number;
  totalPct: number;
}

/** Self and inclusive time per function (name + file:line), from a .cpuprofile. */
export function topFrames(p: Profile, count: number): Frame[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n: ProfileNode) => {
    const f = n.callFrame;
    const file = f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'} ${file}`.trim();
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  p.samples.forEach((id, i) => {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    all += dt;
    const n = byId.get(id)!;
    self.set(key(n), (self.get(key(n)) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + dt);
    }
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([frame, ms]) => ({
      frame,
      selfMs: ms,
      selfPct: (100 * ms) / all,
      totalPct: (100 * (total.get(frame) ?? 0)) / all,
    }));
}

/** The hit suite's baseline server, plus an exit on SIGTERM so that --cpu-prof gets to write the profile. */
const BARE_SERVER = `const b=Buffer.from(process.env.BODY_B64,'base64');const h=JSON.parse(process.env.HEADERS_JSON);
require('http').createServer((q,s)=>{s.writeHead(200,h);s.end(b)}).listen(+process.env.PORT,'127.0.0.1');
process.on('SIGTERM',()=>process.exit(0))`;

/** Runs `args` under --cpu-prof into `dir`, loads it for `seconds` after a 1 s warm-up, returns the profile. */
async function profileOf(
  dir: string,
  args: string[],
  env: Record<string, string>,
  port: number,
  seconds: number,
): Promise<{ profile: Profile; file: string; rps: number }> {
  mkdirSync(dir, { recursive: true });
  const d = spawnChild(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...args], env);
  const loadgen = startLoadgen();
  let rps = 0;
  try {
    await waitFor200(d, port);
    await httpGet(port, PATH);
    const job = {
      kind: 'keepalive',
      port,
      path: PATH,
      headers: { 'X-Aws-Parameters-Secrets-Token': TEST_TOKEN },
      connections: 16,
    } as const;
    await loadgen.run({ ...job, seconds: 1 });
    rps = (await loadgen.run({ ...job, seconds })).rps;
  } finally {
    loadgen.close();
    await d.stop();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written:\n${d.output()}`);
  return {
    profile: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile,
    file: join(dir, file),
    rps,
  };
}

const table = (frames: Frame[]) =>
  markdownTable(
    ['frame', 'self ms', 'self %', 'total %'],
    frames.map((f) => [f.frame, f.selfMs.toFixed(0), f.selfPct.toFixed(1), f.totalPct.toFixed(1)]),
  );

async function main(): Promise<void> {
  const seconds = envInt('BENCH_PROFILE_SECONDS', 5);
  const top = envInt('BENCH_PROFILE_TOP', 25);
  const dir = join(ROOT, 'bench', 'out', 'profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const { bundleOptions } = (await import(join(ROOT, 'scripts', 'build.mjs') as string)) as {
    bundleOptions: BuildOptions;
  };
  const bundle = join(dir, 'pscache.cjs');
  // Unminified, names kept: the profile then names src/ functions.
  await build({ ...bundleOptions, minify: false, keepNames: true, outfile: bundle });

  const emu = await startEmulator({
    port: 0,
    store: { parameters: [], secrets: [{ name: SECRET, secretString: 'x'.repeat(200) }] },
    credentials: [TEST_CREDENTIALS],
  });
  try {
    const port = await freePort();
    const ps = await profileOf(
      join(dir, 'pscache'),
      [bundle, 'serve'],
      daemonEnv(emu.url, port),
      port,
      seconds,
    );
    const hit = await (async () => {
      const d = spawnChild(process.execPath, [bundle, 'serve'], daemonEnv(emu.url, port));
      try {
        await waitFor200(d, port);
        return await httpGet(port, PATH);
      } finally {
        await d.stop();
      }
    })();
    const barePort = await freePort();
    const bare = await profileOf(
      join(dir, 'bare'),
      ['-e', BARE_SERVER],
      {
        PORT: String(barePort),
        BODY_B64: Buffer.from(hit.body).toString('base64'),
        HEADERS_JSON: JSON.stringify({
          'Content-Type': String(hit.headers['content-type']),
          'Cache-Control': String(hit.headers['cache-control']),
          'Content-Length': String(hit.headers['content-length']),
          'X-Pscache': 'hit',
        }),
      },
      barePort,
      seconds,
    );
    const text = [
      `## pscache hit path (${Math.round(ps.rps)} req/s under --cpu-prof)`,
      '',
      table(topFrames(ps.profile, top)),
      '',
      `## bare http.createServer, same bytes (${Math.round(bare.rps)} req/s under --cpu-prof)`,
      '',
      table(topFrames(bare.profile, top)),
      '',
      `profiles: ${ps.file}, ${bare.file}`,
      '',
    ].join('\n');
    writeFileSync(join(dir, 'top.md'), text);
    process.stdout.write(text);
  } finally {
    await emu.close();
  }
}

await main();
