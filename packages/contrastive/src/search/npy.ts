// NumPy's .npy format (numpy.lib.format, versions 1.0-3.0), for the arrays fedclr writes into
// embeddings files: little-endian float32 and uint8 arrays and fixed-width unicode strings ('<U',
// UTF-32), C order. Enough to read back what numpy's np.save writes for the same dtypes.
import { EmbeddingsFileError } from './errors.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** An array as .npy describes it. */
export type NpyArray =
  | { readonly dtype: '<f4'; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: '|u1'; readonly shape: readonly number[]; readonly data: Uint8Array }
  | { readonly dtype: 'unicode'; readonly shape: readonly number[]; readonly data: readonly string[] };

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Code points of a string (a UTF-32 element holds one per slot). */
function codePoints(s: string): number[] {
  return Array.from(s, (ch) => ch.codePointAt(0) as number);
}

/** The header dict, padded so that the data starts at a multiple of 64 bytes (numpy's alignment). */
function header(descr: string, shape: readonly number[]): Uint8Array {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${dims}, }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1;
  const text = `${dict}${' '.repeat((64 - (unpadded % 64)) % 64)}\n`;
  if (text.length > 0xffff) throw new EmbeddingsFileError('(writing)', `an .npy header of ${text.length} bytes is too long`);
  const out = new Uint8Array(MAGIC.length + 4 + text.length);
  out.set(MAGIC, 0);
  out[6] = 1; // version 1.0
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, text.length, true);
  for (let i = 0; i < text.length; i++) out[10 + i] = text.charCodeAt(i);
  return out;
}

function concat(head: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

/** A float32 array of `shape` as .npy bytes. */
export function encodeFloat32Npy(data: Float32Array, shape: readonly number[]): Uint8Array {
  if (data.length !== sizeOf(shape)) throw new EmbeddingsFileError('(writing)', `${data.length} values do not fill shape [${shape}]`);
  return concat(header('<f4', shape), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** Strings as a fixed-width unicode array ('<U' + the longest length in code points; shape [] for one string). */
export function encodeUnicodeNpy(strings: readonly string[], shape: readonly number[] = [strings.length]): Uint8Array {
  if (strings.length !== sizeOf(shape)) throw new EmbeddingsFileError('(writing)', `${strings.length} strings do not fill shape [${shape}]`);
  const points = strings.map(codePoints);
  const width = Math.max(1, ...points.map((p) => p.length));
  const body = new Uint32Array(strings.length * width);
  points.forEach((p, i) => body.set(p, i * width));
  return concat(header(`<U${width}`, shape), new Uint8Array(body.buffer));
}

interface Header {
  readonly descr: string;
  readonly fortran: boolean;
  readonly shape: number[];
  readonly dataOffset: number;
}

function parseHeader(bytes: Uint8Array, where: string): Header {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new EmbeddingsFileError(where, 'not an .npy array (bad magic)');
  const major = bytes[6] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (major < 1 || major > 3) throw new EmbeddingsFileError(where, `.npy version ${major} is not supported`);
  const length = lengthBytes === 2 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthBytes;
  if (start + length > bytes.length) throw new EmbeddingsFileError(where, '.npy header runs past the end');
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + length));
  const descr = /'descr':\s*'([^']+)'/.exec(text)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(text)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined) throw new EmbeddingsFileError(where, `unreadable .npy header ${JSON.stringify(text.trim())}`);
  const dims = shape.split(',').map((d) => d.trim()).filter((d) => d !== '').map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new EmbeddingsFileError(where, `bad .npy shape (${shape})`);
  return { descr, fortran: fortran === 'True', shape: dims, dataOffset: start + length };
}

/** Parses .npy bytes of the dtypes above; anything else is an error naming it. */
export function decodeNpy(bytes: Uint8Array, where: string): NpyArray {
  const h = parseHeader(bytes, where);
  const count = sizeOf(h.shape);
  if (h.fortran && h.shape.length > 1) throw new EmbeddingsFileError(where, '.npy arrays in Fortran order are not supported');
  const body = bytes.subarray(h.dataOffset);
  const need = (itemBytes: number): Uint8Array => {
    if (body.length !== count * itemBytes) throw new EmbeddingsFileError(where, `.npy data has ${body.length} bytes, shape [${h.shape}] of ${h.descr} needs ${count * itemBytes}`);
    return new Uint8Array(body); // an aligned copy (typed-array views need aligned offsets; a Buffer's slice() would not copy)
  };
  if (h.descr === '<f4') return { dtype: '<f4', shape: h.shape, data: new Float32Array(need(4).buffer) };
  if (h.descr === '|u1' || h.descr === '<u1') return { dtype: '|u1', shape: h.shape, data: need(1) };
  const unicode = /^<U(\d+)$/.exec(h.descr);
  if (unicode !== null) {
    const width = Number(unicode[1]);
    const points = new Uint32Array(need(4 * width).buffer);
    const strings: string[] = [];
    for (let i = 0; i < count; i++) {
      let end = width;
      while (end > 0 && points[i * width + end - 1] === 0) end--; // numpy strips trailing NULs
      const element = points.subarray(i * width, i * width + end);
      if (element.some((p) => p > 0x10ffff)) throw new EmbeddingsFileError(where, `.npy string ${i} holds a value that is not a unicode code point`);
      strings.push(String.fromCodePoint(...element));
    }
    return { dtype: 'unicode', shape: h.shape, data: strings };
  }
  throw new EmbeddingsFileError(where, `.npy dtype '${h.descr}' is not supported (expected <f4, |u1 or <U)`);
}
