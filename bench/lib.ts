// Shared benchmark helpers: child spawning and timing, RSS reading, statistics, results and table printing.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';

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

export type Unit = 'ms' | 'MiB' | 'KiB' | 'count';

/** Raw samples of one measured thing. */
export interface Series {
  label: string;
  unit: Unit;
  samples: number[];
}

/**
 * What a figure must meet, judged on medians:
 * - `ratio`: subject / baseline ≤ max (per-round ratios when paired)
 * - `delta`: subject − baseline ≤ max, in the series' unit (per-round differences when paired)
 * - `value`: subject ≤ max
 */
export type Target =
  | { kind: 'ratio'; max: number }
  | { kind: 'delta'; max: number }
  | { kind: 'value'; max: number };

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
  else if (t?.kind === 'delta' && delta) met = delta.median <= t.max;
  else if (t?.kind === 'value' && s.length > 0) met = median(s) <= t.max;
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
  }
}

const withUnit = (v: number, unit: Unit): string =>
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
  if (t.kind === 'delta') return `≤ baseline + ${withUnit(t.max, unit)}`;
  return `≤ ${withUnit(t.max, unit)}`;
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
