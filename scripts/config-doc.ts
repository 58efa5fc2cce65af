// Writes the settings table of docs/configuration.md from src/config/settings.ts (`npm run docs:config`).
// test/config-doc.test.ts regenerates it in memory and fails when the page is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inPscacheTable, type Origin, SETTING_LIST, type Setting } from '../src/config/settings.ts';

export const DOC = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
const START = '<!-- settings:start -->';
const END = '<!-- settings:end -->';

const WHOSE: Record<Origin, string> = {
  official: 'official',
  pscache: 'pscache',
  provider: 'provider',
  aws: 'AWS',
};

const code = (s: string) => `\`${s}\``;
/** Table cells: pipes escaped, so a value never splits a row. */
const cell = (s: string) => s.replace(/\|/g, '\\|');

function variable(s: Setting<unknown>): string {
  if (s.env === undefined) return '—';
  const aliases = s.aliases?.length ? ` (or ${s.aliases.map(code).join(', ')})` : '';
  return code(s.env) + aliases;
}

function fileKey(s: Setting<unknown>): string {
  if (s.toml !== undefined) {
    return s.flat !== undefined && s.flat !== s.toml
      ? `${code(s.toml)} (flat: ${code(s.flat)})`
      : code(s.toml);
  }
  return inPscacheTable(s) ? `${code('[pscache]')} ${code(s.env)}` : '—';
}

function defaultOf(s: Setting<unknown>): string {
  if (s.defaultText !== undefined) return s.defaultText;
  return s.default === undefined ? '—' : String(s.default);
}

/** The Markdown table of every setting, in the table's order, with columns aligned as the formatter does. */
export function renderSettingsTable(): string {
  const head = ['variable', '`--config` key', 'default', 'allowed', 'meaning', 'whose'];
  const rows = SETTING_LIST.map(([, s]) =>
    [variable(s), fileKey(s), defaultOf(s), s.allowed, s.meaning, WHOSE[s.origin]].map(cell),
  );
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The page with the text between the markers replaced by a freshly generated table. */
export function withSettingsTable(page: string): string {
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start === -1 || end < start) throw new Error(`${DOC} lacks the ${START} ... ${END} markers`);
  return `${page.slice(0, start + START.length)}\n${renderSettingsTable()}\n${page.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const page = readFileSync(DOC, 'utf8');
  const next = withSettingsTable(page);
  if (next !== page) writeFileSync(DOC, next);
  process.stdout.write(`${next === page ? 'unchanged' : 'updated'}: ${DOC}\n`);
}
