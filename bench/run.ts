// Benchmark entry (`npm run bench`): runs each suite, prints the Markdown table, writes results.json/.md.
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { benchLambda } from './lambda.ts';
import { compare, type Result, resultsTable, spreadTable, summarize } from './lib.ts';
import { benchStartup } from './startup.ts';

/** Each suite is one exported function; add new ones here. */
const SUITES: { name: string; run: () => Promise<Result[]> }[] = [
  { name: 'startup', run: benchStartup },
  { name: 'lambda', run: benchLambda },
];

const OUT = new URL('./', import.meta.url);

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

const results: Result[] = [];
const timings: Record<string, number> = {};
for (const suite of SUITES) {
  const t = performance.now();
  process.stderr.write(`bench: ${suite.name}...\n`);
  results.push(...(await suite.run()));
  timings[suite.name] = Math.round(performance.now() - t);
}
const loadavgAfter = loadavg();
const totalMs = Math.round(performance.now() - started);

const notes = results.filter((r) => r.note).map((r) => `- ${r.figure}: ${r.note}`);
const md = [
  `# pscache benchmark — ${date}`,
  '',
  `Node ${machine.node}, ${machine.cpu} × ${machine.cores} cores, ${machine.platform}; ` +
    `load average ${machine.loadavgBefore.map((x) => x.toFixed(2)).join(' ')} before, ` +
    `${loadavgAfter.map((x) => x.toFixed(2)).join(' ')} after; ${(totalMs / 1000).toFixed(1)} s.`,
  '',
  'Cells: median (p25–p75). Ratio: median of per-round ratios (p25–p75) when the two sides ran ' +
    'interleaved in the same rounds, else ratio of medians. Targets are judged on the medians.',
  '',
  resultsTable(results),
  '',
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
const missed = results.filter((r) => compare(r).met === false);
if (missed.length > 0) {
  process.stderr.write(`bench: target missed: ${missed.map((r) => r.figure).join('; ')}\n`);
}
