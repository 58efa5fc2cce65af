// Builds the layer zips from the current source, once per test process (Node downloads are cached, so
// this takes about a second), with scripts/layer.mjs exactly as `npm run layer` does, into a directory of
// the process's own: test files running at once never write (or read) each other's zips.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ROOT } from './daemon.ts';
import { tempDir } from './temp.ts';

export interface LayerInfo {
  layer: 'nodejs' | 'x86_64' | 'arm64';
  file: string;
  zipped: number;
  unzipped: number;
  /** Standalone layers: bytes of pscache/pscache.v8cache, 0 when this machine could not make it. */
  codeCache?: number;
}

export interface Layers {
  node: string;
  nodejs: LayerInfo;
  x86_64: LayerInfo;
  arm64: LayerInfo;
}

let built: Promise<Layers> | undefined;

export function buildLayers(): Promise<Layers> {
  built ??= (async () => {
    // The first build on a machine downloads two ~50 MB packages and deflates two ~120 MB binaries.
    const out = tempDir('layers');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [`${ROOT}scripts/layer.mjs`, '--json', '--out', out],
      {
        cwd: ROOT,
        timeout: 180_000,
        maxBuffer: 1024 * 1024,
      },
    );
    const doc = JSON.parse(stdout.trim().split('\n').pop()!) as { node: string; layers: LayerInfo[] };
    const by = Object.fromEntries(doc.layers.map((l) => [l.layer, l]));
    return { node: doc.node, nodejs: by['nodejs']!, x86_64: by['x86_64']!, arm64: by['arm64']! };
  })();
  return built;
}
