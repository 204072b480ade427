// Generic reader for the IDX format (LeCun's MNIST container, also used by Fashion-MNIST):
//   bytes 0-1: zero; byte 2: element type; byte 3: number of dimensions;
//   then one big-endian uint32 per dimension; then the elements, big-endian, row-major.
import { readFile } from 'node:fs/promises';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import {
  IdxBadMagicError,
  IdxBadShapeError,
  IdxReadError,
  IdxTrailingDataError,
  IdxTruncatedError,
  IdxUnknownTypeError,
} from './errors.js';

const gunzipAsync = promisify(gunzip);

export type IdxDataType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A parsed IDX tensor. `data` owns its buffer (never a view into the input). */
export interface IdxArray {
  readonly type: IdxDataType;
  readonly dims: readonly number[];
  readonly data: IdxData;
}

interface TypeInfo {
  readonly type: IdxDataType;
  readonly size: number;
}

const TYPES: ReadonlyMap<number, TypeInfo> = new Map([
  [0x08, { type: 'uint8', size: 1 }],
  [0x09, { type: 'int8', size: 1 }],
  [0x0b, { type: 'int16', size: 2 }],
  [0x0c, { type: 'int32', size: 4 }],
  [0x0d, { type: 'float32', size: 4 }],
  [0x0e, { type: 'float64', size: 8 }],
]);

function hex(bytes: Uint8Array, n: number): string {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Parse IDX bytes (already decompressed). `source` names the data in error messages.
 * Throws on a bad magic number, unknown element type, truncated data or trailing bytes.
 */
export function parseIdx(bytes: Uint8Array, source = 'IDX data'): IdxArray {
  if (bytes.length < 4) throw new IdxTruncatedError(source, 4, bytes.length);
  if (bytes[0] !== 0 || bytes[1] !== 0) throw new IdxBadMagicError(source, hex(bytes, 4));
  const typeCode = bytes[2] as number;
  const info = TYPES.get(typeCode);
  if (info === undefined) throw new IdxUnknownTypeError(source, typeCode.toString(16).padStart(2, '0'));
  const ndims = bytes[3] as number;
  if (ndims === 0) throw new IdxBadShapeError(source, 'no dimensions', 'at least one dimension');
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) throw new IdxTruncatedError(source, headerBytes, bytes.length);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const expected = headerBytes + count * info.size;
  if (bytes.length < expected) throw new IdxTruncatedError(source, expected, bytes.length);
  if (bytes.length > expected) throw new IdxTrailingDataError(source, expected, bytes.length);

  // Copy out of the input so the result never aliases a pooled or larger buffer.
  let data: IdxData;
  switch (info.type) {
    case 'uint8':
      data = bytes.slice(headerBytes, expected);
      break;
    case 'int8':
      data = new Int8Array(bytes.slice(headerBytes, expected).buffer);
      break;
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(headerBytes + 2 * i, false);
      data = out;
      break;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(headerBytes + 4 * i, false);
      data = out;
      break;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(headerBytes + 4 * i, false);
      data = out;
      break;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(headerBytes + 8 * i, false);
      data = out;
      break;
    }
  }
  return { type: info.type, dims, data };
}

/** True when the bytes start with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Read an IDX file, gunzipping it first when its content is gzip (whatever its name). */
export async function readIdxFile(path: string): Promise<IdxArray> {
  let raw: Uint8Array;
  try {
    raw = await readFile(path);
  } catch (err) {
    throw new IdxReadError(path, (err as Error).message, { cause: err });
  }
  if (isGzip(raw)) {
    try {
      // Async gunzip runs on the libuv pool, so a 26 MB file does not stall the event loop.
      raw = await gunzipAsync(raw);
    } catch (err) {
      // A cut-off .gz file fails here ("unexpected end of file"): report it as truncated data.
      throw new IdxReadError(path, `gzip data is corrupt or truncated (${(err as Error).message})`, { cause: err });
    }
  }
  return parseIdx(raw, path);
}

/**
 * Check an IDX tensor's type and shape; `null` in `dims` accepts any size for that axis.
 * `what` describes the expectation in the error message.
 */
export function expectIdxShape(
  idx: IdxArray,
  source: string,
  type: IdxDataType,
  dims: readonly (number | null)[],
  what: string,
): void {
  const ok =
    idx.type === type && idx.dims.length === dims.length && dims.every((d, i) => d === null || d === idx.dims[i]);
  if (!ok) throw new IdxBadShapeError(source, `shape [${idx.dims.join(', ')}] of ${idx.type}`, what);
}

/** Serialize a tensor to IDX bytes (used by tests and to write fixtures). Uint8 data only. */
export function encodeIdxUint8(dims: readonly number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (dims.length === 0 || dims.length > 255 || count !== data.length) {
    throw new IdxBadShapeError(
      'encodeIdxUint8 input',
      `dims [${dims.join(', ')}] and ${data.length} bytes`,
      '1 to 255 dims whose product equals the byte count',
    );
  }
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, header);
  return out;
}
