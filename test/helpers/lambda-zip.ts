// Reads the layer zips with tools that share no code with the writer: Python's zipfile lists and checks
// them, Info-ZIP's unzip tests them and unpacks them as Lambda does.
import { spawnSync } from 'node:child_process';

export interface ZipEntry {
  name: string;
  /** Host system of "version made by": 3 = UNIX (the mode is in the external attributes). */
  system: number;
  /** Unix mode from the external attributes, file type bits included (0o100755, 0o040755). */
  mode: number;
  /** The whole external attributes field (Unix mode above, MS-DOS attributes in the low byte). */
  externalAttr: number;
  /** Year, month, day, hour, minute, second as stored. */
  dateTime: number[];
  size: number;
  compressedSize: number;
  /** SHA-256 of the inflated contents, hex. */
  sha256: string;
  /** The first 64 bytes of the contents, base64. */
  head: string;
}

export interface ZipListing {
  /** Python's testzip(): the first entry whose CRC or header is wrong, or null. */
  firstBad: string | null;
  entries: ZipEntry[];
}

// Each entry is read to its end once: zipfile checks its CRC there (raising BadZipFile), which is all its
// testzip() does, in a second pass over ~120 MB.
const LIST = `
import base64, hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = None
    entries = []
    for i in z.infolist():
        sha, head = hashlib.sha256(), b''
        try:
            with z.open(i) as f:
                while chunk := f.read(1 << 20):
                    head = head or chunk[:64]
                    sha.update(chunk)
        except zipfile.BadZipFile:
            bad = bad or i.filename
        entries.append({
            'name': i.filename, 'system': i.create_system, 'mode': i.external_attr >> 16,
            'externalAttr': i.external_attr, 'dateTime': list(i.date_time), 'size': i.file_size,
            'compressedSize': i.compress_size, 'sha256': sha.hexdigest(),
            'head': base64.b64encode(head).decode(),
        })
json.dump({'firstBad': bad, 'entries': entries}, sys.stdout)
`;

const READ = `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    sys.stdout.buffer.write(z.read(sys.argv[2]))
`;

function run(cmd: string, args: string[], what: string): Buffer {
  const r = spawnSync(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(`${cmd} is not installed: the layer tests need it (Debian: apt-get install ${cmd})`);
  }
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(`${what} failed (${r.status}): ${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout;
}

const listings = new Map<string, ZipListing>();

/**
 * Entries, modes and content hashes as Python's zipfile reads them, and its CRC check of every entry.
 * Once per file and process: a standalone layer takes a second to inflate.
 */
export function listZip(file: string): ZipListing {
  let listing = listings.get(file);
  if (!listing) {
    listing = JSON.parse(
      run('python3', ['-c', LIST, file], `zipfile on ${file}`).toString('utf8'),
    ) as ZipListing;
    listings.set(file, listing);
  }
  return listing;
}

/** One entry's contents, inflated by Python's zipfile. */
export function readEntry(file: string, name: string): Buffer {
  return run('python3', ['-c', READ, file, name], `zipfile reading ${name} from ${file}`);
}

/** `unzip -t`: every entry inflates and matches its CRC. Returns unzip's report. */
export function testZip(file: string): string {
  return run('unzip', ['-t', file], `unzip -t ${file}`).toString('utf8');
}

/** Unpacks into `dir` with unzip, which restores the Unix modes stored in the zip, as Lambda does into /opt. */
export function extractZip(file: string, dir: string): void {
  run('unzip', ['-q', '-o', file, '-d', dir], `unzip ${file}`);
}
