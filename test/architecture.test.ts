// The layout docs/architecture.md describes, held by test: no import cycles in src/, and data flows one way
// (server -> cache -> loader -> aws), so nothing below the server knows HTTP requests and nothing outside
// aws/ knows SigV4.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from './helpers/daemon.ts';

const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** src-relative file -> the src-relative files it imports (static, re-exports and dynamic imports). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(
      /(?:^|\n)\s*(?:import|export)[^'";]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g,
    )) {
      const spec = m[1] ?? m[2]!;
      const target = normalize(join(dirname(file), spec));
      if (target.startsWith(SRC)) deps.push(relative(SRC, target));
    }
    graph.set(relative(SRC, file), deps);
  }
  return graph;
}

const graph = importGraph();

/**
 * The src-relative files `file` loads when it loads: static imports only (type-only imports are erased),
 * with `swap`'s files taken for the keys' (as a bundle built with that swap would).
 */
function staticClosure(file: string, swap: Record<string, string> = {}): Set<string> {
  const seen = new Set<string>();
  const visit = (name: string) => {
    const f = swap[name] ?? name;
    if (seen.has(f)) return;
    seen.add(f);
    const text = readFileSync(join(SRC, f), 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)(?!\s+type\b)[^'";]*?from\s+'(\.[^']+)'/g)) {
      const target = normalize(join(dirname(join(SRC, f)), m[1]!));
      if (target.startsWith(SRC)) visit(relative(SRC, target));
    }
  };
  visit(file);
  return seen;
}

describe('architecture', () => {
  test('no import cycles in src/', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (n: string) => {
      if (state.get(n) === 'open') {
        cycles.push([...stack.slice(stack.indexOf(n)), n].join(' -> '));
        return;
      }
      if (state.get(n) === 'done') return;
      state.set(n, 'open');
      stack.push(n);
      for (const d of graph.get(n) ?? []) visit(d);
      stack.pop();
      state.set(n, 'done');
    };
    for (const n of graph.keys()) visit(n);
    assert.deepEqual(cycles, []);
  });

  /** Which modules each layer may import, besides its own directory. */
  const rules: Array<{ layer: string; may: RegExp; why: string }> = [
    {
      layer: 'aws/',
      // client/token-source.ts is a leaf (node:fs only): the token files' rules, one implementation, which
      // AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is read by too.
      may: /^(aws\/|log\.ts$|version\.ts$|builtins\.ts$|clock\.ts$|arn\.ts$|client\/token-source\.ts$)/,
      why: 'upstream knows nothing of config, the cache or the server',
    },
    {
      layer: 'loader/',
      may: /^(loader\/|aws\/|items\.ts$|shapes\.ts$|log\.ts$|clock\.ts$|arn\.ts$)/,
      why: 'the loader knows nothing of the cache or the server',
    },
    {
      layer: 'cache/',
      may: /^(cache\/|loader\/|aws\/(types|client)\.ts$|items\.ts$|clock\.ts$)/,
      why: 'the cache knows nothing of HTTP, config or the daemon',
    },
  ];
  for (const rule of rules) {
    test(`${rule.layer} imports only what is below it: ${rule.why}`, () => {
      const bad: string[] = [];
      for (const [file, deps] of graph) {
        if (!file.startsWith(rule.layer)) continue;
        for (const d of deps) if (!rule.may.test(d)) bad.push(`${file} -> ${d}`);
      }
      assert.deepEqual(bad, []);
    });
  }

  test('client/token-source.ts, which aws/ and config read token files through, imports nothing of src/', () => {
    assert.deepEqual(graph.get('client/token-source.ts'), []);
  });

  test('what runs before the first event/next in the Lambda layers: the CLI loads no daemon module', () => {
    // The layers' bundle takes daemon-loader-lazy.ts for daemon-loader.ts (scripts/layer.mjs): the daemon's
    // modules load when a daemon starts. Loading them was ~5 % of the layer's INIT (docs/benchmarks.md,
    // Fifth pass). An import that pulls one of them in again (say, errors.ts importing a class from the
    // loader) fails here, by name.
    const layer = readFileSync(join(ROOT, 'scripts', 'layer.mjs'), 'utf8');
    assert.match(layer, /daemon-loader\.ts', 'daemon-loader-lazy\.ts'/, 'the layer build swaps the loader');
    const loaded = staticClosure('cli.ts', { 'daemon-loader.ts': 'daemon-loader-lazy.ts' });
    const daemonSide = [...loaded].filter((f) =>
      /^(daemon\.ts|cache\/|loader\/index\.ts|loader\/batcher\.ts|collections\.ts|health\.ts|metrics\.ts|prefetch\.ts|server\/(index|listener|pipeline|routes)\.ts|aws\/(index|client|transport|signer|credentials|sts|ssm|secretsmanager|roles)\.ts)$/.test(
        f,
      ),
    );
    assert.deepEqual(daemonSide, []);
    // And the graph walked is the real one: the lifecycle and configuration are in it.
    for (const f of [
      'lambda/lifecycle.ts',
      'lambda/http1.ts',
      'config.ts',
      'server/hold.ts',
      'daemon-loader-lazy.ts',
    ]) {
      assert.ok(loaded.has(f), f);
    }
    // The npm bundle loads them with the CLI (a sidecar starts the daemon at once; see daemon-loader.ts).
    assert.ok(staticClosure('cli.ts').has('daemon.ts'));
  });

  test('only the loader calls upstream operations', () => {
    const callers = [...graph]
      .filter(([file]) => !file.startsWith('aws/') && !file.startsWith('loader/'))
      .filter(([, deps]) => deps.some((d) => d === 'aws/ssm.ts' || d === 'aws/secretsmanager.ts'))
      .map(([file]) => file);
    assert.deepEqual(callers, []);
  });
});
