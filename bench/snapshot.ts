// The startup-snapshot experiment of the lambda suite: the x86_64 layer started from a V8 startup snapshot
// of its bundle (`node --build-snapshot`, made with the layer's own node) instead of from its code cache.
// Not shipped: measured, it starts slower (docs/benchmarks.md, Start-up of the Lambda layer).
import { execFile } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** The blob in an unpacked layer, and the launcher line that starts node from it. */
export const SNAPSHOT = 'pscache/pscache.snapshot';

/**
 * The snapshot's builder: the bundle, wrapped as Node's CommonJS loader wraps it, loaded with the hook
 * src/cli.ts looks for (so that it runs nothing), then main() as the snapshot's deserialize function.
 * One file, as --build-snapshot takes; only Node's built-in modules can be required there.
 */
function builder(bundle: string): string {
  return `'use strict';
const hook = {};
globalThis[Symbol.for('pscache.snapshot')] = hook;
(function (exports, require, module, __filename, __dirname) {
${bundle}
})({}, require, { exports: {} }, '/opt/pscache/pscache.cjs', '/opt/pscache');
delete globalThis[Symbol.for('pscache.snapshot')];
require('node:v8').startupSnapshot.setDeserializeMainFunction(() => hook.run(process.argv.slice(2)));
`;
}

/**
 * Turns the unpacked standalone layer in `dir` into its snapshot variant: pscache/pscache.snapshot built
 * by pscache/node (in the environment `env`: nothing of it may end up in the blob), and a launcher that
 * execs node from it (no fallback: this is an experiment). Returns the blob's size in bytes.
 */
export async function snapshotLayer(dir: string, env: Record<string, string> = {}): Promise<number> {
  const node = join(dir, 'pscache', 'node');
  const entry = join(dir, 'pscache', 'snapshot-builder.cjs');
  writeFileSync(entry, builder(readFileSync(join(dir, 'pscache', 'pscache.cjs'), 'utf8')));
  await promisify(execFile)(node, ['--snapshot-blob', join(dir, SNAPSHOT), '--build-snapshot', entry], {
    cwd: dir,
    env,
    timeout: 60_000,
  });
  const launcher = join(dir, 'extensions', 'pscache');
  const text = readFileSync(launcher, 'utf8');
  const at = 'unset NODE_OPTIONS NODE_PATH\n';
  if (!text.includes(at)) throw new Error('the launcher changed: the snapshot experiment needs updating');
  writeFileSync(
    launcher,
    text.replace(
      at,
      `${at}exec "$node" --snapshot-blob "$root/${SNAPSHOT}" "$bundle" serve --lambda-extension-name "\${0##*/}"\n`,
    ),
  );
  return statSync(join(dir, SNAPSHOT)).size;
}
