// A node:test reporter that writes one JSON document at the end of a run: totals, each file's test count
// and time (its top-level tests' durations added up: a file's tests run one after another), the slowest
// top-level tests and every failure by its full name.
// scripts/test.mjs adds it when PSCACHE_TEST_SUMMARY names a file; the stress run reads it.
import path from 'node:path';

const ROOT = path.resolve(new URL('..', import.meta.url).pathname);
const rel = (file) => (file ? path.relative(ROOT, file) : '(no file)');

export default async function* summary(source) {
  const files = new Map();
  /** Per file, the names of the tests enclosing the current one, by nesting. */
  const stacks = new Map();
  const failures = [];
  const slowest = [];
  const totals = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0 };
  const started = Date.now();
  const fileOf = (data) => {
    const f = rel(data.file);
    let entry = files.get(f);
    if (!entry) {
      entry = { tests: 0, fail: 0, ms: 0 };
      files.set(f, entry);
    }
    return [f, entry];
  };
  for await (const event of source) {
    const { type, data } = event;
    if (type === 'test:start') {
      const [f] = fileOf(data);
      const stack = stacks.get(f) ?? [];
      stack.length = data.nesting;
      stack.push(data.name);
      stacks.set(f, stack);
    } else if (type === 'test:pass' || type === 'test:fail') {
      const [f, entry] = fileOf(data);
      const isSuite = data.details?.type === 'suite';
      if (data.nesting === 0) {
        const ms = Math.round(data.details?.duration_ms ?? 0);
        entry.ms += ms;
        slowest.push({ file: f, name: data.name, ms });
      }
      if (isSuite) {
        if (type === 'test:fail' && data.details?.error?.failureType !== 'subtestsFailed') {
          failures.push({
            file: f,
            name: fullName(stacks.get(f), data),
            error: firstLine(data.details?.error),
          });
        }
        continue;
      }
      totals.tests++;
      entry.tests++;
      if (data.skip !== undefined) totals.skipped++;
      else if (data.todo !== undefined) totals.todo++;
      else if (type === 'test:pass') totals.pass++;
      if (type === 'test:fail' && data.todo === undefined) {
        totals.fail++;
        entry.fail++;
        failures.push({
          file: f,
          name: fullName(stacks.get(f), data),
          error: firstLine(data.details?.error),
        });
      }
    }
  }
  slowest.sort((a, b) => b.ms - a.ms);
  yield `${JSON.stringify(
    {
      node: process.version,
      wallMs: Date.now() - started,
      totals,
      failures,
      files: Object.fromEntries([...files].sort((a, b) => b[1].ms - a[1].ms)),
      slowest: slowest.slice(0, 25),
    },
    null,
    2,
  )}\n`;
}

function fullName(stack, data) {
  const names = (stack ?? []).slice(0, data.nesting);
  return [...names, data.name].join(' > ');
}

function firstLine(error) {
  const cause = error?.cause ?? error;
  const text = cause instanceof Error ? cause.message : String(cause ?? '');
  return text.split('\n')[0].slice(0, 300);
}
