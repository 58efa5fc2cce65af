// Shared benchmark helpers: child spawning and timing, RSS reading, statistics, results and table printing.
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type Agent, request } from 'node:http';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Job, LoadResult } from './loadgen.ts';

// ---------------------------------------------------------------------------------------------
// Statistics

/** The p-th percentile (0..100) with linear interpolation between the closest ranks. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const s = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo);
}

export const median = (samples: readonly number[]): number => percentile(samples, 50);
export const min = (samples: readonly number[]): number =>
  samples.length === 0 ? Number.NaN : Math.min(...samples);
export const max = (samples: readonly number[]): number =>
  samples.length === 0 ? Number.NaN : Math.max(...samples);

export interface Summary {
  n: number;
  min: number;
  p25: number;
  median: number;
  p75: number;
  max: number;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    n: samples.length,
    min: min(samples),
    p25: percentile(samples, 25),
    median: median(samples),
    p75: percentile(samples, 75),
    max: max(samples),
  };
}

// ---------------------------------------------------------------------------------------------
// Results

export type Unit = 'ms' | 'MiB' | 'KiB' | 'count' | 'req/s' | 'calls/s';

/** Raw samples of one measured thing. */
export interface Series {
  label: string;
  unit: Unit;
  samples: number[];
}

/**
 * What a figure must meet, judged on medians:
 * - `ratio`: subject / baseline ≤ max (per-round ratios when paired)
 * - `minRatio`: subject / baseline ≥ min, for figures where more is better (requests/s)
 * - `affine`: median(subject) ≤ ratio × median(baseline) + plus, in the series' unit
 * - `delta`: subject − baseline ≤ max, in the series' unit (per-round differences when paired)
 * - `value`: subject ≤ max (`worst`: every sample, not the median)
 * - `equal`: every sample is exactly `value`
 */
export type Target =
  | { kind: 'ratio'; max: number }
  | { kind: 'minRatio'; min: number }
  | { kind: 'affine'; ratio: number; plus: number }
  | { kind: 'delta'; max: number }
  | { kind: 'value'; max: number; worst?: boolean }
  | { kind: 'equal'; value: number };

export interface Result {
  suite: string;
  figure: string;
  /** The pscache side; null for a reference-only row (the baseline column alone). */
  subject: Series | null;
  baseline: Series | null;
  /** Subject and baseline sample i were taken in the same round: compare them pairwise. */
  paired?: boolean;
  target?: Target;
  note?: string;
}

/** Per-round (paired) or whole-series comparison of subject against baseline. */
export interface Comparison {
  /** Median ratio and its spread (IQR of per-round ratios when paired, else the single ratio of medians). */
  ratio: Summary | null;
  delta: Summary | null;
  met: boolean | null;
}

function pairwise(a: number[], b: number[], f: (x: number, y: number) => number): number[] {
  return a.map((x, i) => f(x, b[i]!));
}

export function compare(r: Result): Comparison {
  const s = r.subject?.samples ?? [];
  const b = r.baseline?.samples ?? [];
  let ratio: Summary | null = null;
  let delta: Summary | null = null;
  if (s.length > 0 && b.length > 0) {
    if (r.paired && s.length === b.length) {
      ratio = summarize(pairwise(s, b, (x, y) => x / y));
      delta = summarize(pairwise(s, b, (x, y) => x - y));
    } else {
      ratio = summarize([median(s) / median(b)]);
      delta = summarize([median(s) - median(b)]);
    }
  }
  let met: boolean | null = null;
  const t = r.target;
  if (t?.kind === 'ratio' && ratio) met = ratio.median <= t.max;
  else if (t?.kind === 'minRatio' && ratio) met = ratio.median >= t.min;
  else if (t?.kind === 'affine' && s.length > 0 && b.length > 0)
    met = median(s) <= t.ratio * median(b) + t.plus;
  else if (t?.kind === 'delta' && delta) met = delta.median <= t.max;
  else if (t?.kind === 'value' && s.length > 0) met = (t.worst ? max(s) : median(s)) <= t.max;
  else if (t?.kind === 'equal' && s.length > 0) met = s.every((x) => x === t.value);
  return { ratio, delta, met };
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmt(v: number, unit: Unit): string {
  if (!Number.isFinite(v)) return '—';
  switch (unit) {
    case 'ms':
      return v < 10 ? v.toFixed(2) : v.toFixed(1);
    case 'MiB':
      return v.toFixed(1);
    case 'KiB':
      return v.toFixed(1);
    case 'count':
      return Number.isInteger(v) ? String(v) : v.toFixed(1);
    case 'req/s':
      return String(Math.round(v));
    case 'calls/s':
      return v < 10 ? v.toFixed(2) : v.toFixed(1);
  }
}

export const withUnit = (v: number, unit: Unit): string =>
  unit === 'count' ? fmt(v, unit) : `${fmt(v, unit)} ${unit}`;

/** "median (p25–p75)", or just the value for a single sample. */
function cell(series: Series | null): string {
  if (!series || series.samples.length === 0) return '—';
  const x = summarize(series.samples);
  if (x.n === 1) return withUnit(x.median, series.unit);
  return `${withUnit(x.median, series.unit)} (${fmt(x.p25, series.unit)}–${fmt(x.p75, series.unit)})`;
}

function targetText(r: Result): string {
  const t = r.target;
  if (!t) return '—';
  const unit = r.subject?.unit ?? 'count';
  if (t.kind === 'ratio') return `≤ ${t.max} ×`;
  if (t.kind === 'minRatio') return `≥ ${t.min} ×`;
  if (t.kind === 'affine') return `≤ ${t.ratio} × baseline + ${withUnit(t.plus, unit)}`;
  if (t.kind === 'delta') return `≤ baseline + ${withUnit(t.max, unit)}`;
  if (t.kind === 'equal') return `= ${withUnit(t.value, unit)}, every run`;
  return `≤ ${withUnit(t.max, unit)}${t.worst ? ', every run' : ''}`;
}

function ratioText(c: Comparison): string {
  if (!c.ratio) return '—';
  const x = c.ratio;
  if (x.n === 1) return `${x.median.toFixed(2)} ×`;
  return `${x.median.toFixed(2)} × (${x.p25.toFixed(2)}–${x.p75.toFixed(2)})`;
}

function metText(r: Result, c: Comparison): string {
  if (c.met === null) return '—';
  const yes = c.met ? 'yes' : '**no**';
  if (r.target?.kind === 'delta' && c.delta && r.subject) {
    const d = c.delta.median;
    return `${yes} (${d >= 0 ? '+' : ''}${withUnit(d, r.subject.unit)})`;
  }
  if (r.target?.kind === 'affine' && r.subject && r.baseline) {
    const limit = r.target.ratio * median(r.baseline.samples) + r.target.plus;
    return `${yes} (limit ${withUnit(limit, r.subject.unit)})`;
  }
  return yes;
}

export function markdownTable(header: string[], rows: string[][]): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const lines = [
    `| ${header.map(esc).join(' | ')} |`,
    `|${header.map(() => ' --- ').join('|')}|`,
    ...rows.map((row) => `| ${row.map(esc).join(' | ')} |`),
  ];
  return lines.join('\n');
}

/** The main table: figure | pscache | baseline | ratio | target | met?  (cells: median (IQR)). */
export function resultsTable(results: Result[]): string {
  return markdownTable(
    ['figure', 'pscache', 'baseline', 'ratio', 'target', 'met?'],
    results.map((r) => {
      const c = compare(r);
      const baseline = r.baseline ? `${cell(r.baseline)} ${r.baseline.label}` : '—';
      return [r.figure, cell(r.subject), baseline, ratioText(c), targetText(r), metText(r, c)];
    }),
  );
}

/** Every series with its full spread: n, min, p25, median, p75, max. */
export function spreadTable(results: Result[]): string {
  const rows: string[][] = [];
  const seen = new Set<Series>();
  for (const r of results) {
    for (const s of [r.subject, r.baseline]) {
      if (!s || seen.has(s) || s.samples.length < 2) continue;
      seen.add(s);
      const x = summarize(s.samples);
      rows.push([
        r.figure,
        s.label,
        String(x.n),
        fmt(x.min, s.unit),
        fmt(x.p25, s.unit),
        fmt(x.median, s.unit),
        fmt(x.p75, s.unit),
        fmt(x.max, s.unit),
        s.unit,
      ]);
    }
  }
  return markdownTable(['figure', 'series', 'n', 'min', 'p25', 'median', 'p75', 'max', 'unit'], rows);
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface Child {
  readonly child: ChildProcess;
  readonly pid: number;
  /** performance.now() just before spawn(). */
  readonly t0: number;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  hasExited(): boolean;
  /** SIGTERM (or `signal`), SIGKILL after `killAfterMs`, resolves on exit. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<void>;
}

/** Spawns `command args` with exactly `env` plus PATH (nothing else inherited), stdout/stderr piped. */
export function spawnChild(command: string, args: string[], env: Record<string, string> = {}): Child {
  const t0 = performance.now();
  const child = spawn(command, args, {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let done = false;
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        done = true;
        resolve({ code, signal, at: performance.now() });
      });
    },
  );
  if (child.pid === undefined) throw new Error(`could not spawn ${command}`);
  return {
    child,
    pid: child.pid,
    t0,
    output: () => out,
    exited,
    hasExited: () => done,
    async stop(signal = 'SIGTERM', killAfterMs = 5000) {
      if (done) return;
      child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** Milliseconds from spawn to exit (rejects on a non-zero exit). */
export async function timeToExit(command: string, args: string[], env: Record<string, string> = {}) {
  const c = spawnChild(command, args, env);
  const r = await c.exited;
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}:\n${c.output()}`);
  return r.at - c.t0;
}

/**
 * One raw HTTP/1.1 GET on a fresh TCP connection; resolves with the status code as soon as the status line
 * arrives (the body is not awaited), or rejects with the connection error (ECONNREFUSED while not listening).
 */
export function rawGetStatus(port: number, path: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = '';
    const timer = setTimeout(() => sock.destroy(new Error(`GET ${path} timed out`)), timeoutMs);
    const finish = (err: Error | null, status = 0) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(status);
    };
    sock.once('connect', () =>
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`),
    );
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf.slice(0, eol));
      finish(m ? null : new Error(`bad status line ${JSON.stringify(buf.slice(0, eol))}`), Number(m?.[1]));
    });
    sock.once('error', (e) => finish(e));
    sock.once('end', () => finish(new Error('connection closed before a status line')));
  });
}

export interface ReadyOptions {
  path?: string;
  /** Pause after a refused/failed attempt before the next fresh connection (0 = next turn of the loop). */
  retryMs?: number;
  timeoutMs?: number;
}

/**
 * Polls `path` on a fresh connection until it answers 200; resolves with ms since the child's spawn and the
 * number of attempts. Rejects if the child exits first or the deadline passes.
 */
export async function waitFor200(
  c: Child,
  port: number,
  opts: ReadyOptions = {},
): Promise<{ ms: number; attempts: number }> {
  const path = opts.path ?? '/ping';
  const retryMs = opts.retryMs ?? 1;
  const deadline = c.t0 + (opts.timeoutMs ?? 15000);
  let attempts = 0;
  while (performance.now() < deadline) {
    if (c.hasExited()) throw new Error(`process exited before ${path} answered 200:\n${c.output()}`);
    attempts++;
    try {
      const status = await rawGetStatus(port, path);
      if (status === 200) return { ms: performance.now() - c.t0, attempts };
    } catch {
      // not listening yet
    }
    await (retryMs > 0
      ? new Promise((res) => setTimeout(res, retryMs))
      : new Promise((res) => setImmediate(res)));
  }
  throw new Error(`${path} did not answer 200 within ${opts.timeoutMs ?? 15000} ms:\n${c.output()}`);
}

/** Resident set size of a live process from /proc/PID/status (VmRSS), in MiB. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

export const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** An integer ≥ `least` from the environment, else the default (for quick runs: BENCH_RUNS=5 npm run bench). */
export function envInt(name: string, fallback: number, least = 1): number {
  const raw = process.env[name];
  const v = Number(raw);
  return raw !== undefined && raw !== '' && Number.isInteger(v) && v >= least ? v : fallback;
}

/** A Series from its parts. */
export const series = (label: string, unit: Unit, samples: number[] = []): Series => ({
  label,
  unit,
  samples,
});

// ---------------------------------------------------------------------------------------------
// CPU time, HTTP timing, metrics, plots, load generator

let ticks: number | undefined;
/** User + system CPU time a live process has used, in ms (from /proc/PID/stat; 10 ms resolution). */
export function cpuMs(pid: number): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / ticks;
}

export interface Timed {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** request() → last byte of the body, ms. */
  ms: number;
}

/** One GET through `agent` (keep-alive, as a function's HTTP client would be), timed to the last body byte. */
export function timedGet(
  port: number,
  path: string,
  agent: Agent,
  headers: Record<string, string>,
): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
          ms: performance.now() - t0,
        }),
      );
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The value of an unlabelled metric in Prometheus text, or NaN. */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/**
 * `npm run bench -- --publish` (or BENCH_PUBLISH=1): the run's results replace the published ones, which
 * are tracked (bench/results.md, bench/results.json, bench/plots/, the results section of
 * docs/benchmarks.md). Any other run writes under bench/out/, which git ignores.
 */
export const PUBLISH = process.argv.slice(2).includes('--publish') || process.env['BENCH_PUBLISH'] === '1';
export const OUT_DIR = new URL(PUBLISH ? './' : './out/', import.meta.url);
export const PLOTS_DIR = new URL('./plots/', OUT_DIR);
const REPO = new URL('../', import.meta.url);

/** Writes an SVG under the run's plots directory; returns its path relative to the repository root. */
export function writePlot(file: string, svg: string): string {
  mkdirSync(PLOTS_DIR, { recursive: true });
  const url = new URL(file, PLOTS_DIR);
  writeFileSync(url, svg);
  return url.href.slice(REPO.href.length);
}

export interface Loadgen {
  run(job: Job): Promise<LoadResult>;
  close(): void;
}

/** Forks bench/loadgen.ts: the load generator gets its own process (and core), never the server's. */
export function startLoadgen(): Loadgen {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const child = fork(fileURLToPath(new URL('./loadgen.ts', import.meta.url)), [], {
    cwd: root,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let next = 0;
  const waiting = new Map<number, { resolve: (r: LoadResult) => void; reject: (e: Error) => void }>();
  child.on('message', (m: { id: number; result?: LoadResult; error?: string }) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.result) w.resolve(m.result);
    else w.reject(new Error(`load generator: ${m.error}`));
  });
  child.on('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`load generator exited (${code})`));
    waiting.clear();
  });
  return {
    run(job) {
      const id = next++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        child.send({ id, job });
      });
    },
    close() {
      if (child.connected) child.disconnect();
    },
  };
}

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** A seeded PRNG (mulberry32): uniform in [0, 1), the same sequence for the same seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Extra Markdown sections (title, body) a suite adds to the report after the main table. */
export const sections: { title: string; body: string }[] = [];
export function addSection(title: string, body: string): void {
  sections.push({ title, body });
}
