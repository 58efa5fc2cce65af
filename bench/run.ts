// Benchmark entry (`npm run bench`): runs each suite, prints the Markdown table, writes results.json/.md
// and the SVG plots under bench/out/; `npm run bench -- --publish` (a full run) writes them to bench/ and
// bench/plots/ instead and rewrites the results section of docs/benchmarks.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchBatch } from './batch.ts';
import { benchFleet } from './fleet.ts';
import { benchHit } from './hit.ts';
import { benchLambda } from './lambda.ts';
import {
  compare,
  OUT_DIR,
  PUBLISH,
  type Result,
  resultsTable,
  sections,
  spreadTable,
  summarize,
} from './lib.ts';
import { benchCachedSecrets, benchChurn } from './memory.ts';
import { benchMiss } from './miss.ts';
import { RESULTS_PAGE, replaceResults } from './publish.ts';
import { benchShutdown } from './shutdown.ts';
import { benchStartup } from './startup.ts';
import { benchStream, benchUpstream } from './upstream.ts';

/**
 * Each suite is one exported function; add new ones here. A `background` suite starts where it is listed
 * and runs beside the ones after it (it must measure nothing that CPU contention changes); the run waits
 * for it at the end. Results are reported in this order. BENCH_SUITES=hit,miss runs only those.
 */
const SUITES: { name: string; run: () => Promise<Result[]>; background?: boolean }[] = [
  { name: 'startup', run: benchStartup },
  { name: 'lambda', run: benchLambda },
  { name: 'hit', run: benchHit },
  { name: 'miss', run: benchMiss },
  { name: 'upstream', run: benchUpstream },
  { name: 'shutdown', run: benchShutdown },
  { name: 'memory', run: benchCachedSecrets },
  { name: 'batch', run: benchBatch },
  // 60 s of mostly waiting that only counts upstream calls: it runs beside the fleet model and the churn.
  { name: 'stream', run: benchStream, background: true },
  { name: 'fleet', run: benchFleet },
  { name: 'churn', run: benchChurn },
];

const OUT = OUT_DIR;
const BIOME = fileURLToPath(new URL('../node_modules/@biomejs/biome/bin/biome', import.meta.url));
const only = process.env['BENCH_SUITES']?.split(',').filter(Boolean);
for (const arg of process.argv.slice(2)) {
  if (arg !== '--publish') {
    process.stderr.write(
      `bench: unknown argument ${JSON.stringify(arg)}; usage: npm run bench [-- --publish]\n`,
    );
    process.exit(2);
  }
}
// Published results are a whole run's: a partial one would leave the page half old, half new.
if (PUBLISH && only) {
  process.stderr.write('bench: --publish needs every suite; unset BENCH_SUITES\n');
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });

const machine = {
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  platform: `${process.platform} ${release()} ${process.arch}`,
  memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  loadavgBefore: loadavg(),
};
const date = new Date().toISOString();
const started = performance.now();

const bySuite = new Map<string, Result[]>();
const timings: Record<string, number> = {};
const background: Promise<void>[] = [];
for (const suite of SUITES) {
  if (only && !only.includes(suite.name)) continue;
  const t = performance.now();
  process.stderr.write(`bench: ${suite.name}${suite.background ? ' (in the background)' : ''}...\n`);
  const running = suite.run().then((r) => {
    const ms = Math.round(performance.now() - t);
    bySuite.set(suite.name, r);
    timings[suite.name] = ms;
    process.stderr.write(`bench: ${suite.name} done in ${(ms / 1000).toFixed(1)} s\n`);
  });
  if (suite.background) background.push(running);
  else await running;
}
await Promise.all(background);
const results: Result[] = SUITES.flatMap((s) => bySuite.get(s.name) ?? []);
const loadavgAfter = loadavg();
const totalMs = Math.round(performance.now() - started);

const notes = results.filter((r) => r.note).map((r) => `- ${r.figure}: ${r.note}`);
const machineLine =
  `Node ${machine.node}, ${machine.cpu} × ${machine.cores} cores, ${machine.platform}, ${machine.memoryGiB} GiB; ` +
  `load average ${machine.loadavgBefore.map((x) => x.toFixed(2)).join(' ')} before, ` +
  `${loadavgAfter.map((x) => x.toFixed(2)).join(' ')} after; ${(totalMs / 1000).toFixed(1)} s ` +
  `(${Object.entries(timings)
    .map(([k, v]) => `${k} ${(v / 1000).toFixed(0)} s`)
    .join(', ')}).`;
const legend =
  'Cells: median (p25–p75). Ratio: median of per-round ratios (p25–p75) when the two sides ran ' +
  'interleaved in the same rounds, else ratio of medians. Targets are judged on the medians unless they say "every run".';
const extra = sections.flatMap((s) => [`## ${s.title}`, '', s.body, '']);
const md = [
  `# pscache benchmark — ${date}`,
  '',
  machineLine,
  '',
  legend,
  '',
  resultsTable(results),
  '',
  ...extra,
  '## Spread',
  '',
  spreadTable(results),
  '',
  '## Notes',
  '',
  ...notes,
  '',
].join('\n');

process.stdout.write(`\n${md}`);
writeFileSync(new URL('results.md', OUT), md);
if (PUBLISH) {
  const page = fileURLToPath(RESULTS_PAGE);
  const body = [
    `Run of ${date} (\`npm run bench\`, default settings). ${machineLine}`,
    '',
    legend,
    '',
    resultsTable(results),
    '',
    ...extra.map((line) => line.replace(/^## /, '### ')),
    '### Notes',
    '',
    ...notes,
    '',
    'The spread of every series (n, min, p25, median, p75, max) is in [bench/results.md](../bench/results.md); raw samples in [bench/results.json](../bench/results.json).',
    '',
  ].join('\n');
  try {
    writeFileSync(page, replaceResults(readFileSync(page, 'utf8'), body));
    // The repository's formatter owns Markdown layout (padded tables): keep `npm run lint` clean.
    try {
      execFileSync(process.execPath, [BIOME, 'format', '--write', page], { stdio: 'ignore' });
    } catch {
      process.stderr.write('bench: could not format docs/benchmarks.md with biome\n');
    }
    process.stderr.write('bench: docs/benchmarks.md updated\n');
  } catch (e) {
    process.stderr.write(`bench: docs/benchmarks.md not updated: ${(e as Error).message}\n`);
  }
}
writeFileSync(
  new URL('results.json', OUT),
  `${JSON.stringify(
    {
      date,
      machine: { ...machine, loadavgAfter },
      durationMs: { total: totalMs, ...timings },
      figures: results.map((r) => {
        const c = compare(r);
        return {
          ...r,
          summary: {
            subject: r.subject ? summarize(r.subject.samples) : null,
            baseline: r.baseline ? summarize(r.baseline.samples) : null,
          },
          ratio: c.ratio,
          delta: c.delta,
          met: c.met,
        };
      }),
    },
    (_, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v),
    2,
  )}\n`,
);
process.stderr.write(
  PUBLISH
    ? 'bench: published to bench/results.md, bench/results.json, bench/plots/ and docs/benchmarks.md\n'
    : `bench: results in ${fileURLToPath(OUT)} (untracked); \`npm run bench -- --publish\` publishes a full run\n`,
);
const missed = results.filter((r) => compare(r).met === false);
if (missed.length > 0) {
  process.stderr.write(`bench: target missed: ${missed.map((r) => r.figure).join('; ')}\n`);
}
