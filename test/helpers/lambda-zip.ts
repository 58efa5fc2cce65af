// Reads the layer zips in plain JS (central directory, modes, contents) and unpacks them as Lambda does.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import * as zlib from 'node:zlib';

export interface ZipEntry {
  name: string;
  /** Host system of "version made by": 3 = UNIX (the mode is in the external attributes). */
  madeBy: number;
  /** Unix mode from the external attributes, file type bits included (0o100755, 0o040755). */
  mode: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

export interface Zip {
  size: number;
  entries: ZipEntry[];
  /** The entry's bytes, inflated and checked against its CRC-32 and size. */
  read(entry: ZipEntry | string): Buffer;
}

let table: Uint32Array | undefined;
/** CRC-32 of the zip format: zlib's where this Node has it (a 120 MB binary takes a second in JS). */
export function crc32(data: Uint8Array, useZlib = true): number {
  if (useZlib && typeof zlib.crc32 === 'function') return zlib.crc32(data) >>> 0;
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function readZip(file: string): Zip {
  const buf = readFileSync(file);
  // The end record is the last thing in the file, followed by a comment of up to 64 KB.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file}: no end of central directory record`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${i}`);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    entries.push({
      name: buf.toString('utf8', p + 46, p + 46 + nameLen),
      madeBy: buf.readUInt16LE(p + 4) >> 8,
      mode: buf.readUInt32LE(p + 38) >>> 16,
      method: buf.readUInt16LE(p + 10),
      crc: buf.readUInt32LE(p + 16),
      compressedSize: buf.readUInt32LE(p + 20),
      size: buf.readUInt32LE(p + 24),
      localOffset: buf.readUInt32LE(p + 42),
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  const read = (which: ZipEntry | string): Buffer => {
    const e = typeof which === 'string' ? entries.find((x) => x.name === which) : which;
    if (!e) throw new Error(`${file}: no entry ${String(which)}`);
    const l = e.localOffset;
    if (buf.readUInt32LE(l) !== 0x04034b50) throw new Error(`${file}: bad local header for ${e.name}`);
    const start = l + 30 + buf.readUInt16LE(l + 26) + buf.readUInt16LE(l + 28);
    const raw = buf.subarray(start, start + e.compressedSize);
    const data =
      e.method === 8
        ? zlib.inflateRawSync(raw)
        : e.method === 0
          ? Buffer.from(raw)
          : (() => {
              throw new Error(`${e.name}: compression method ${e.method}`);
            })();
    if (data.length !== e.size || crc32(data) !== e.crc) throw new Error(`${file}: ${e.name} is corrupt`);
    return data;
  };
  return { size: buf.length, entries, read };
}

/** Unpacks into `dir` with the modes stored in the zip, as Lambda unpacks a layer into /opt. */
export function extractZip(file: string, dir: string): void {
  const zip = readZip(file);
  for (const e of zip.entries) {
    const target = join(dir, normalize(e.name));
    if (!target.startsWith(dir)) throw new Error(`${e.name} escapes the target directory`);
    if (e.name.endsWith('/')) {
      mkdirSync(target, { recursive: true });
      chmodSync(target, e.mode & 0o7777);
      continue;
    }
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, zip.read(e));
    chmodSync(target, e.mode & 0o7777);
  }
}
