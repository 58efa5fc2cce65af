// Builds pscache/client into dist/client (or --outdir DIR): index.mjs (ESM), index.cjs (CommonJS), and
// type declarations for each (.d.mts next to the ESM files, .d.cts next to the CommonJS ones).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const i = process.argv.indexOf('--outdir');
const outdir = resolve(root, i === -1 ? 'dist/client' : process.argv[i + 1]);

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

/** @type {import('esbuild').BuildOptions} */
const common = {
  absWorkingDir: root,
  entryPoints: ['src/client/index.ts'],
  bundle: true,
  platform: 'node',
  // The library promises Node 18 (built-in fetch era); the daemon itself needs 20.
  target: 'node18',
  // Not minified: users read stack traces, and error classes keep readable names.
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
};
await build({ ...common, format: 'esm', outfile: join(outdir, 'index.mjs') });
await build({ ...common, format: 'cjs', outfile: join(outdir, 'index.cjs') });

// Declarations: tsc emits one .d.ts per source file with `./x.ts` imports (TypeScript 7 keeps them).
// Each becomes x.d.mts importing ./x.mjs and x.d.cts importing ./x.cjs, so ESM and CommonJS consumers
// both get types of their own module kind.
const tmp = mkdtempSync(join(tmpdir(), 'pscache-client-dts-'));
try {
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.client.json',
      '--outDir',
      join(tmp, 'out'),
    ],
    { cwd: root, stdio: 'inherit' },
  );
  const out = join(tmp, 'out');
  // Only the declarations the public index reaches: internal modules (and their Node types) stay out.
  const files = [];
  const queue = ['index.d.ts'];
  while (queue.length > 0) {
    const f = queue.shift();
    if (files.includes(f)) continue;
    files.push(f);
    const text = readFileSync(join(out, f), 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\()['"]\.\/([^'"]+)\.ts['"]/g))
      queue.push(`${m[1]}.d.ts`);
  }
  for (const f of files) {
    const text = readFileSync(join(out, f), 'utf8');
    const base = f.slice(0, -'.d.ts'.length);
    for (const [ext, js] of [
      ['d.mts', 'mjs'],
      ['d.cts', 'cjs'],
    ]) {
      const rewritten = text.replace(/(from\s+|import\()(['"])(\.\.?\/[^'"]+)\.ts\2/g, `$1$2$3.${js}$2`);
      if (/(from\s+|import\()['"][^'"]+\.ts['"]/.test(rewritten)) {
        throw new Error(`${f}: an import still ends in .ts after rewriting`);
      }
      writeFileSync(join(outdir, `${base}.${ext}`), rewritten);
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
