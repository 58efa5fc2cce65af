// The one owner of tests' temporary directories: each under os.tmpdir(), named pscache-<what>-XXXXXX, and
// removed when its test (given one) or its test file is done, on success and on failure.
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const owned = new Set<string>();

function remove(dir: string): void {
  owned.delete(dir);
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // A test made part of it read-only (not a hindrance to root, but to anyone else): open it, try again.
    writable(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

function writable(dir: string): void {
  try {
    chmodSync(dir, 0o700);
    for (const d of readdirSync(dir, { withFileTypes: true }))
      if (d.isDirectory()) writable(join(dir, d.name));
  } catch {
    // not ours to open: rmSync reports what is left
  }
}

function removeAll(): void {
  for (const dir of [...owned]) remove(dir);
}

// Under the test runner, once the file's tests and hooks are done; in any process (a benchmark using a
// helper, a file run on its own), at exit as well, whatever the exit code.
if (process.env['NODE_TEST_CONTEXT'] !== undefined || process.execArgv.includes('--test')) after(removeAll);
process.once('exit', removeAll);

/**
 * A fresh directory (mode 0700) under os.tmpdir(). With `t`, removed when that test ends; without, when the
 * test file ends.
 */
export function tempDir(what: string, t?: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), `pscache-${what}-`));
  owned.add(dir);
  t?.after(() => remove(dir));
  return dir;
}
