// The ZIP container of NumPy's .npz files: a writer of stored (uncompressed) members, which
// np.load reads and which keeps the float32 matrix as plain bytes, and a reader of stored and
// deflated members (np.savez and np.savez_compressed), checking every member's CRC-32.
import { crc32, inflateRawSync } from 'node:zlib';
import { EmbeddingsFileError } from './errors.js';

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const END = 0x06054b50;
const ZIP64_END = 0x06064b50;
const MAX32 = 0xffffffff;
// 1980-01-01 00:00 in DOS time: a fixed stamp keeps files byte-identical for identical content.
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

export interface ZipMember {
  readonly name: string;
  readonly data: Uint8Array;
}

/** A ZIP archive of stored members. Members (and the archive) must stay below 4 GiB. */
export function writeZip(members: readonly ZipMember[]): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const name = new TextEncoder().encode(m.name);
    if (m.data.length >= MAX32 || offset >= MAX32) throw new EmbeddingsFileError(m.name, 'members of 4 GiB and more are not supported');
    const crc = crc32(m.data);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, LOCAL, true);
    lv.setUint16(4, 20, true); // version needed: 2.0
    lv.setUint16(6, 0x0800, true); // UTF-8 names
    lv.setUint16(8, 0, true); // stored
    lv.setUint16(10, 0, true);
    lv.setUint16(12, DOS_DATE, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, m.data.length, true);
    lv.setUint32(22, m.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const central = new Uint8Array(46 + name.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, CENTRAL, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(8, 0x0800, true);
    cv.setUint16(10, 0, true);
    cv.setUint16(14, DOS_DATE, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, m.data.length, true);
    cv.setUint32(24, m.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    central.set(name, 46);
    locals.push(local, m.data);
    centrals.push(central);
    offset += local.length + m.data.length;
  }
  const directorySize = centrals.reduce((a, c) => a + c.length, 0);
  if (offset + directorySize >= MAX32) throw new EmbeddingsFileError('(archive)', 'archives of 4 GiB and more are not supported');
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, END, true);
  ev.setUint16(8, members.length, true);
  ev.setUint16(10, members.length, true);
  ev.setUint32(12, directorySize, true);
  ev.setUint32(16, offset, true);
  const out = new Uint8Array(offset + directorySize + end.length);
  let at = 0;
  for (const part of [...locals, ...centrals, end]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The 64-bit values of a zip64 extra field (0x0001) that replace 0xFFFFFFFF fields, in order. */
function zip64Values(extra: DataView): bigint[] {
  for (let at = 0; at + 4 <= extra.byteLength; ) {
    const id = extra.getUint16(at, true);
    const size = extra.getUint16(at + 2, true);
    if (id === 0x0001) {
      const values: bigint[] = [];
      for (let v = at + 4; v + 8 <= at + 4 + size && v + 8 <= extra.byteLength; v += 8) values.push(extra.getBigUint64(v, true));
      return values;
    }
    at += 4 + size;
  }
  return [];
}

function findEnd(view: DataView, where: string): number {
  for (let at = view.byteLength - 22; at >= Math.max(0, view.byteLength - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === END) return at;
  }
  throw new EmbeddingsFileError(where, 'not a ZIP/.npz file (no end of central directory)');
}

/** The central directory's entry count and offset, from the zip64 end record when there is one. */
function directory(view: DataView, endAt: number, where: string): { entries: number; offset: number } {
  let entries = view.getUint16(endAt + 10, true);
  let offset = view.getUint32(endAt + 16, true);
  if ((entries === 0xffff || offset === MAX32) && endAt >= 20 && view.getUint32(endAt - 20, true) === 0x07064b50) {
    const recordAt = Number(view.getBigUint64(endAt - 20 + 8, true));
    if (recordAt + 56 > view.byteLength || view.getUint32(recordAt, true) !== ZIP64_END) throw new EmbeddingsFileError(where, 'bad zip64 end record');
    entries = Number(view.getBigUint64(recordAt + 32, true));
    offset = Number(view.getBigUint64(recordAt + 48, true));
  }
  return { entries, offset };
}

/** Every member of a ZIP archive, CRC-checked; a damaged archive is an error naming the member. */
export function readZip(bytes: Uint8Array, where: string): ZipMember[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 22) throw new EmbeddingsFileError(where, `not a ZIP/.npz file (${bytes.length} bytes)`);
  const { entries, offset } = directory(view, findEnd(view, where), where);
  const members: ZipMember[] = [];
  let at = offset;
  for (let i = 0; i < entries; i++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== CENTRAL) throw new EmbeddingsFileError(where, `central directory entry ${i} is damaged`);
    const method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    let compressed = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let localAt = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    const wide = zip64Values(new DataView(bytes.buffer, bytes.byteOffset + at + 46 + nameLength, Math.min(extraLength, bytes.length - at - 46 - nameLength)));
    if (size === MAX32) size = Number(wide.shift() ?? 0n);
    if (compressed === MAX32) compressed = Number(wide.shift() ?? 0n);
    if (localAt === MAX32) localAt = Number(wide.shift() ?? 0n);
    at += 46 + nameLength + extraLength + commentLength;
    if (localAt + 30 > bytes.length || view.getUint32(localAt, true) !== LOCAL) throw new EmbeddingsFileError(where, `member ${name}: local header is damaged`);
    const dataAt = localAt + 30 + view.getUint16(localAt + 26, true) + view.getUint16(localAt + 28, true);
    if (dataAt + compressed > bytes.length) throw new EmbeddingsFileError(where, `member ${name} is truncated`);
    const raw = bytes.subarray(dataAt, dataAt + compressed);
    let data: Uint8Array;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = inflateRawSync(raw);
      } catch (err) {
        throw new EmbeddingsFileError(where, `member ${name} does not inflate (${(err as Error).message})`);
      }
    } else throw new EmbeddingsFileError(where, `member ${name} uses ZIP method ${method}; only stored and deflated members are read`);
    if (data.length !== size || crc32(data) !== crc) throw new EmbeddingsFileError(where, `member ${name} fails its CRC-32 check (damaged file)`);
    members.push({ name, data });
  }
  return members;
}
