// A tiny SVG line-chart plotter for the benchmark plots (no plotting dependency): axes, ticks, legend.

export interface Line {
  name: string;
  /** [x, y] points; NaN y values leave a gap. */
  points: [number, number][];
  dashed?: boolean;
  /** Draw a dot at each point. */
  dots?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  lines: Line[];
  xLog?: boolean;
  yLog?: boolean;
  /** Explicit x ticks (value, label), e.g. categorical percentiles; else computed. */
  xTicks?: [number, string][];
  /** Lower bound of the y axis (default 0, or the smallest value on a log axis). */
  yMin?: number;
  width?: number;
  height?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

const esc = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
const num = (v: number) => (Math.round(v * 100) / 100).toString();

/** 1, 2, 5 × 10^k steps covering [lo, hi] with about `count` ticks. */
function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (hi <= lo) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  // From the last step at or below lo to the first at or above hi, so that every value is inside.
  const last = Math.ceil(hi / step - 1e-9);
  for (let k = Math.floor(lo / step); k <= last; k++) out.push(k * step);
  return out;
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

function label(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${num(v / 1e6)}M`;
  if (a >= 1e4) return `${num(v / 1e3)}k`;
  if (a < 0.01) return v.toExponential(0);
  return num(v);
}

export function lineChart(o: ChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 400;
  const m = { left: 70, right: 215, top: 40, bottom: 55 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const pts = o.lines.flatMap((l) => l.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const positive = (v: number[]) => v.filter((x) => x > 0);
  let x0 = o.xTicks ? Math.min(...o.xTicks.map((t) => t[0])) : Math.min(...xs);
  let x1 = o.xTicks ? Math.max(...o.xTicks.map((t) => t[0])) : Math.max(...xs);
  if (o.xLog) {
    x0 = 10 ** Math.floor(Math.log10(Math.min(...positive(xs))));
    x1 = 10 ** Math.ceil(Math.log10(Math.max(...positive(xs))));
  }
  const yTop = Math.max(...ys);
  let y0: number;
  let y1: number;
  let yTicks: number[];
  if (o.yLog) {
    y0 = o.yMin ?? 10 ** Math.floor(Math.log10(Math.min(...positive(ys))));
    y1 = 10 ** Math.ceil(Math.log10(yTop));
    yTicks = logTicks(y0, y1);
  } else {
    yTicks = niceTicks(o.yMin ?? 0, yTop);
    y0 = yTicks[0]!;
    y1 = yTicks[yTicks.length - 1]!;
  }
  const xTicks: [number, string][] =
    o.xTicks ??
    (o.xLog ? logTicks(x0, x1) : niceTicks(x0, x1))
      .filter((v) => v >= x0 && v <= x1)
      .map((v) => [v, label(v)]);
  const sx = (x: number) =>
    m.left + (o.xLog ? Math.log10(x / x0) / Math.log10(x1 / x0) : (x - x0) / (x1 - x0 || 1)) * pw;
  const sy = (y: number) => {
    const f = o.yLog ? Math.log10(Math.max(y, y0) / y0) / Math.log10(y1 / y0) : (y - y0) / (y1 - y0 || 1);
    return m.top + ph - Math.min(1, Math.max(0, f)) * ph;
  };

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(o.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.left}" y="22" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
  );
  for (const t of yTicks) {
    const y = num(sy(t));
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(label(t))}</text>`,
    );
  }
  for (const [v, text] of xTicks) {
    const x = num(sx(v));
    out.push(
      `<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + ph}" stroke="#f0f0f0"/>`,
      `<text x="${x}" y="${m.top + ph + 16}" text-anchor="middle">${esc(text)}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  o.lines.forEach((l, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const segments: string[][] = [[]];
    for (const [x, y] of l.points) {
      if (!Number.isFinite(y) || !Number.isFinite(x)) {
        segments.push([]);
        continue;
      }
      segments[segments.length - 1]!.push(`${num(sx(x))},${num(sy(y))}`);
    }
    for (const seg of segments.filter((s) => s.length > 0)) {
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="6 4"' : ''} points="${seg.join(' ')}"/>`,
      );
    }
    if (l.dots) {
      for (const [x, y] of l.points) {
        if (Number.isFinite(x) && Number.isFinite(y))
          out.push(`<circle cx="${num(sx(x))}" cy="${num(sy(y))}" r="3" fill="${color}"/>`);
      }
    }
    const ly = m.top + 10 + i * 18;
    const lx = m.left + pw + 12;
    out.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${lx + 28}" y="${ly}" dominant-baseline="middle">${esc(l.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
