// Writes the list of mutants accepted as equivalent in docs/architecture.md from the
// `// Stryker disable next-line <Mutators>: equivalent: <why>` comments in the mutated sources
// (`npm run docs:equivalents`). test/equivalents-doc.test.ts regenerates it in memory and fails when the
// page is stale, or when a disable comment does not say why its mutants are equivalent.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DOC = path.join(ROOT, 'docs/architecture.md');
const START = '<!-- equivalents:start -->';
const END = '<!-- equivalents:end -->';
/** What `npm run mutate` mutates (stryker.config.json's `mutate`). */
export const MUTATED = ['src/cache', 'src/loader', 'src/items.ts'];

export interface Equivalent {
  file: string;
  line: number;
  mutators: string[];
  why: string;
  code: string;
}

const MARK = /^\s*\/\/ Stryker disable next-line ([A-Za-z,]+):\s*(.*)$/;

function sources(): string[] {
  const out: string[] = [];
  for (const p of MUTATED) {
    const abs = path.join(ROOT, p);
    if (p.endsWith('.ts')) out.push(p);
    else {
      for (const f of readdirSync(abs).sort()) if (f.endsWith('.ts')) out.push(`${p}/${f}`);
    }
  }
  return out;
}

/** Every disable comment in the mutated sources, with the line of code it applies to. */
export function findEquivalents(): Equivalent[] {
  const found: Equivalent[] = [];
  for (const file of sources()) {
    const lines = readFileSync(path.join(ROOT, file), 'utf8').split('\n');
    lines.forEach((text, i) => {
      const m = MARK.exec(text);
      if (!m) return;
      found.push({
        file,
        line: i + 2,
        mutators: (m[1] ?? '').split(','),
        why: (m[2] ?? '').trim(),
        code: (lines[i + 1] ?? '').trim(),
      });
    });
  }
  return found;
}

/** Inline code; a double backtick around code that holds one, with spaces only where it starts or ends with one. */
const tick = (s: string) => {
  if (!s.includes('`')) return `\`${s}\``;
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `\`\`${pad}${s}${pad}\`\``;
};

export function renderEquivalents(): string {
  return findEquivalents()
    .map((e) => {
      const code = e.code.length > 70 ? `${e.code.slice(0, 67)}...` : e.code;
      const m = /^equivalent\b\s*(?:\(([^)]*)\))?\s*:?\s*(.*)$/.exec(e.why);
      const which = m?.[1] ? `; ${m[1]}` : '';
      return `- \`${e.file}\` ${tick(code)} (${e.mutators.join(', ')}${which}): ${m?.[2] ?? e.why}`;
    })
    .join('\n');
}

export function withEquivalents(page: string): string {
  const a = page.indexOf(START);
  const b = page.indexOf(END);
  if (a === -1 || b === -1 || b < a) throw new Error(`${DOC}: no ${START} ... ${END} block`);
  return `${page.slice(0, a + START.length)}\n${renderEquivalents()}\n${page.slice(b)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const page = readFileSync(DOC, 'utf8');
  const next = withEquivalents(page);
  if (next !== page) writeFileSync(DOC, next);
  process.stdout.write(`${DOC}: ${findEquivalents().length} equivalent mutant marks\n`);
}
