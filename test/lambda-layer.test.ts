// The layer zips as files, read by Python's zipfile and unzip (no code shared with the writer): exact
// layout, modes and line endings, the pinned Node binaries, size limits, reproducible bytes, what unzip
// unpacks, and what the launcher does outside Lambda.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { before, describe, test } from 'node:test';
import { ROOT } from './helpers/daemon.ts';
import { buildLayers, type LayerInfo, type Layers } from './helpers/lambda-layer.ts';
import { extractLayer, unpackLayer } from './helpers/lambda-sim.ts';
import { listZip, readEntry, testZip } from './helpers/lambda-zip.ts';
import { tempDir } from './helpers/temp.ts';

let layers: Layers;
let unpacked: string;

before(async () => {
  layers = await buildLayers();
  unpacked = unpackLayer(layers.nodejs.file);
});

const LIMIT_ZIPPED = 50 * 1024 * 1024;
const LIMIT_UNZIPPED = 250 * 1024 * 1024;
/** ELF e_machine of each architecture's node. */
const MACHINE = { x86_64: 62, arm64: 183 } as const;

describe('layout', () => {
  for (const name of ['nodejs', 'x86_64', 'arm64'] as const) {
    test(`pscache-${name}.zip holds exactly the launcher and pscache/, with their modes`, () => {
      const info: LayerInfo = layers[name];
      const zip = listZip(info.file);
      assert.equal(zip.firstBad, null, 'zipfile.testzip() found a bad entry');
      assert.match(testZip(info.file), /No errors detected/);
      const names = zip.entries.map((e) => e.name);
      const cached = (info.codeCache ?? 0) > 0;
      const expected = [
        'extensions/',
        'extensions/pscache',
        'pscache/',
        ...(name === 'nodejs' ? [] : ['pscache/node']),
        'pscache/pscache.cjs',
        ...(cached ? ['pscache/pscache.v8cache', 'pscache/start.cjs'] : []),
      ];
      assert.deepEqual(names, expected);
      assert.ok(!names.some((n) => n.includes('node_modules')));
      const mode = Object.fromEntries(zip.entries.map((e) => [e.name, e.mode]));
      for (const e of zip.entries) {
        assert.equal(e.system, 3, `${e.name}: modes are Unix modes`);
        assert.deepEqual(e.dateTime, [1980, 1, 1, 0, 0, 0], `${e.name}: a fixed date`);
      }
      assert.equal(mode['extensions/'], 0o40755);
      assert.equal(mode['pscache/'], 0o40755);
      assert.equal(mode['extensions/pscache'], 0o100755);
      assert.equal(mode['pscache/pscache.cjs'], 0o100644);
      if (cached) {
        assert.equal(mode['pscache/pscache.v8cache'], 0o100644);
        assert.equal(mode['pscache/start.cjs'], 0o100644);
      }

      const launcher = readEntry(info.file, 'extensions/pscache').toString('utf8');
      assert.ok(launcher.startsWith('#!/bin/sh\n'));
      assert.ok(!launcher.includes('\r'), 'LF line endings only');
      assert.ok(launcher.endsWith('\n'));
      const bundle = zip.entries.find((e) => e.name === 'pscache/pscache.cjs')!;
      assert.ok(bundle.size > 10_000);

      if (name !== 'nodejs') {
        assert.equal(mode['pscache/node'], 0o100755);
        const node = Buffer.from(zip.entries.find((e) => e.name === 'pscache/node')!.head, 'base64');
        assert.equal(node.readUInt32BE(0), 0x7f454c46, 'an ELF executable');
        assert.equal(node.readUInt16LE(18), MACHINE[name], `built for ${name}`);
      }
      assert.equal(info.zipped, statSync(info.file).size);
      assert.equal(
        info.unzipped,
        zip.entries.reduce((n, e) => n + e.size, 0),
      );
      assert.ok(info.zipped < LIMIT_ZIPPED, `${name}: ${info.zipped} bytes zipped`);
      assert.ok(info.unzipped < LIMIT_UNZIPPED, `${name}: ${info.unzipped} bytes unzipped`);
    });
  }

  test('all three layers carry the same bundle and the same launcher', () => {
    const hashes = (l: LayerInfo) =>
      Object.fromEntries(listZip(l.file).entries.map((e) => [e.name, e.sha256]));
    const [nodejs, x86, arm] = [layers.nodejs, layers.x86_64, layers.arm64].map(hashes);
    for (const n of ['pscache/pscache.cjs', 'extensions/pscache']) {
      assert.equal(nodejs![n], x86![n], n);
      assert.equal(nodejs![n], arm![n], n);
    }
  });

  test('the x86_64 layer carries a code cache made for its own bundle, and scripts/layer-start.cjs', {
    skip: !(process.platform === 'linux' && process.arch === 'x64') && 'only a Linux x86_64 machine makes it',
  }, () => {
    // Built on every Linux x86_64 machine: a build that silently lost it would be slower on every cold start.
    assert.ok((layers.x86_64.codeCache ?? 0) > 10_000, `code cache of ${layers.x86_64.codeCache} bytes`);
    assert.equal(layers.arm64.codeCache, 0, 'the arm64 node cannot run here, so no cache is made for it');
    const file = layers.x86_64.file;
    const cache = readEntry(file, 'pscache/pscache.v8cache');
    const bundle = readEntry(file, 'pscache/pscache.cjs');
    assert.equal(cache.subarray(0, 8).toString('latin1'), 'pscache\x01');
    assert.equal(cache.readUInt32LE(8), bundle.length);
    assert.ok(cache.subarray(12, 12 + bundle.length).equals(bundle), 'the source it was made for');
    assert.ok(
      readEntry(file, 'pscache/start.cjs').equals(readFileSync(join(ROOT, 'scripts/layer-start.cjs'))),
    );
  });

  test('unzip unpacks exactly the entries, with their modes and bytes: what the Lambda stand-in runs', () => {
    const zip = listZip(layers.x86_64.file);
    const dir = extractLayer(layers.x86_64.file);
    const found: string[] = [];
    const walk = (rel: string) => {
      for (const d of readdirSync(join(dir, rel), { withFileTypes: true })) {
        const name = `${rel}${d.name}${d.isDirectory() ? '/' : ''}`;
        found.push(name);
        if (d.isDirectory()) walk(name);
      }
    };
    walk('');
    assert.deepEqual(found.sort(), zip.entries.map((e) => e.name).sort());
    for (const e of zip.entries) {
      const st = statSync(join(dir, e.name));
      assert.equal(st.mode & 0o170777, e.mode, `${e.name}: mode on disk`);
      if (e.name.endsWith('/')) continue;
      const sha = createHash('sha256')
        .update(readFileSync(join(dir, e.name)))
        .digest('hex');
      assert.equal(sha, e.sha256, `${e.name}: bytes on disk`);
    }
    // The unpacked node is the one the launcher runs: it starts and reports the pinned version.
    if (process.arch === 'x64') {
      const v = spawnSync(join(dir, 'pscache', 'node'), ['--version'], { encoding: 'utf8' });
      assert.equal(v.stdout.trim(), `v${layers.node}`);
    }
  });

  // The code cache too: V8's string hash seed is fixed while it is made (scripts/layer-code-cache.cjs), and
  // of the caches a build makes the one kept is one two runs agree on (under heavy overload V8 wrote a few
  // bytes differently in 3 of ~28 builds), so it is compared like every other entry.
  test('the same source gives the same zips, byte for byte, in another time zone', () => {
    const out = tempDir('layer-again');
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/layer.mjs'), '--out', out], {
      encoding: 'utf8',
      env: {
        ...process.env,
        TZ: process.env['TZ'] === 'Pacific/Kiritimati' ? 'America/St_Johns' : 'Pacific/Kiritimati',
      },
    });
    assert.equal(r.status, 0, r.stderr);
    for (const l of [layers.nodejs, layers.x86_64, layers.arm64]) {
      const again = join(out, basename(l.file));
      if (readFileSync(again).equals(readFileSync(l.file))) continue;
      // Say which entries differ, and how, before failing.
      const [a, b] = [listZip(l.file), listZip(again)];
      const differ = a.entries
        .map((e, i) => [e, b.entries[i]] as const)
        .filter(([x, y]) => x.name !== y?.name || x.sha256 !== y.sha256)
        .map(([x, y]) => `${x.name} (${x.size} bytes) vs ${y?.name} (${y?.size} bytes)`);
      assert.fail(`${basename(l.file)} differs: ${differ.join('; ') || 'same entries, other bytes'}`);
    }
  });
});

describe('the bundle', () => {
  const bundle = () => join(unpacked, 'pscache', 'pscache.cjs');

  test('runs, and leaves the emulator to the npm package', () => {
    const version = spawnSync(process.execPath, [bundle(), '--version'], { encoding: 'utf8' });
    assert.equal(version.status, 0);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(version.stdout.trim(), pkg.version);
    const emulator = spawnSync(
      process.execPath,
      [bundle(), 'emulator', '--store', join(ROOT, 'examples/store.json'), '--port', '1'],
      { encoding: 'utf8' },
    );
    assert.notEqual(emulator.status, 0);
    assert.match(emulator.stderr, /the emulator is not part of the Lambda layer/);
    assert.ok(!readFileSync(bundle(), 'utf8').includes('/__emulator/health'));
  });
});

describe('launcher', () => {
  const launcher = () => join(unpacked, 'extensions', 'pscache');
  /** Runs the launcher outside Lambda: with no token source `serve` stops at once with a config error. */
  const run = (env: Record<string, string>, shell?: string) =>
    spawnSync(shell ?? launcher(), shell ? [launcher()] : [], { env, encoding: 'utf8', timeout: 10_000 });

  test('is valid POSIX sh for dash and for bash in POSIX mode', () => {
    for (const [sh, args] of [
      ['dash', ['-n']],
      ['bash', ['--posix', '-n']],
    ] as const) {
      if (spawnSync('sh', ['-c', `command -v ${sh}`]).status !== 0) continue;
      const r = spawnSync(sh, [...args, launcher()], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${sh}: ${r.stderr}`);
    }
  });

  test('with no node in the layer, at /var/lang/bin or on PATH: a clear message, exit 127', {
    skip: existsSync('/var/lang/bin/node') && '/var/lang/bin/node exists here',
  }, () => {
    const empty = tempDir('no-node');
    const text = run({ PATH: empty });
    assert.equal(text.status, 127);
    assert.match(
      text.stderr,
      /^\[pscache\] ERROR no node found .*pscache-x86_64\.zip or pscache-arm64\.zip\n$/,
    );
    const json = run({ PATH: empty, AWS_LAMBDA_LOG_FORMAT: 'json' });
    assert.equal(json.status, 127);
    const doc = JSON.parse(json.stderr) as Record<string, string>;
    assert.equal(doc['level'], 'ERROR');
    assert.match(doc['message']!, /^no node found/);
  });

  test('NODE_OPTIONS cannot load other code into the extension', () => {
    const dir = tempDir('node-options');
    const marker = join(dir, 'loaded');
    const preload = join(dir, 'preload.cjs');
    writeFileSync(preload, `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x');`);
    const env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      AWS_REGION: 'us-east-1',
      NODE_OPTIONS: `--require ${preload}`,
    };
    // The same setting does load code into a plain node: the check below can fail.
    spawnSync(process.execPath, ['-e', '0'], { env });
    assert.ok(existsSync(marker));
    rmSync(marker);
    const r = run(env);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /no token source/);
    assert.ok(!existsSync(marker), 'the preload ran inside the extension');
  });

  test('shell functions exported into the environment do not change what it runs', () => {
    // On Amazon Linux /bin/sh is bash, which imports BASH_FUNC_name%% variables even as sh.
    const dir = tempDir('bash-as-sh');
    const sh = join(dir, 'sh');
    symlinkSync('/bin/bash', sh);
    const evil = '() { echo EVIL; exit 99; }';
    const r = run(
      {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        AWS_REGION: 'us-east-1',
        'BASH_FUNC_cd%%': evil,
        'BASH_FUNC_test%%': evil,
        'BASH_FUNC_command%%': evil,
        'BASH_FUNC_node%%': evil,
      },
      sh,
    );
    assert.ok(!`${r.stdout}${r.stderr}`.includes('EVIL'), r.stdout);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /no token source/);
  });
});
