// Tensor frames: how weights and updates travel. Never JSON number arrays.
//
// Layout (all integers little-endian):
//   offset  size  field
//        0     4  magic 'FCLR' (46 43 4c 52)
//        4     2  frame format version (1)
//        6     2  flags (0; reserved)
//        8     8  total frame byte length (u64, header + manifest + padding + data)
//       16     4  manifest byte length M (u32)
//       20     4  reserved (0)
//       24    32  sha256 content hash (raw bytes; see computeModelHash)
//       56     8  reserved (0)
//       64     M  manifest: UTF-8 JSON array of {name, shape, dtype}, canonical key order
//   64 + M   pad  zero bytes up to the next multiple of 64
//        D     -  data: each tensor's elements, little-endian, concatenated in manifest order
// Every dtype is 4 bytes wide, so each tensor starts 4-byte aligned inside a 64-byte aligned
// data region, and decoding yields typed-array views onto the received buffer (zero copy) when
// the buffer itself is 4-byte aligned, or views onto one copy of the data region otherwise.
import { createHash } from 'node:crypto';
import {
  FrameBadHeaderError,
  FrameBadInputError,
  FrameBadMagicError,
  FrameBadManifestError,
  FrameLengthMismatchError,
  FrameManifestMismatchError,
  FrameNonFiniteError,
  FrameTooLargeError,
  FrameTruncatedError,
  FrameUnsupportedVersionError,
  HashMismatchError,
} from './errors.js';
import { DEFAULT_LIMITS, resolveLimits, type ProtocolLimits } from './limits.js';
import { DTYPES, HASH_PATTERN, type Dtype } from './schemas.js';

export const FRAME_MAGIC: Readonly<Uint8Array> = Uint8Array.of(0x46, 0x43, 0x4c, 0x52);
export const FRAME_FORMAT_VERSION = 1;
export const FRAME_HEADER_BYTES = 64;
export const FRAME_DATA_ALIGNMENT = 64;
/** Domain separation prefix of the content hash; bump with any change of what is hashed. */
const HASH_DOMAIN = Buffer.from('fedclr-model-v1\0', 'utf8');
const ZERO = Uint8Array.of(0);

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: Dtype;
}
export type Manifest = readonly TensorSpec[];
export type TensorData = Float32Array | Int32Array | Uint32Array;
export interface Tensor extends TensorSpec {
  readonly data: TensorData;
}
/** All tensors as one little-endian byte run (or one typed array when every dtype matches it). */
export interface FlatTensors {
  readonly manifest: Manifest;
  readonly data: Uint8Array | TensorData;
}
export type FrameInput = readonly Tensor[] | FlatTensors;

export interface FrameHeader {
  readonly formatVersion: number;
  /** Total frame length in bytes. */
  readonly byteLength: number;
  /** Header hash, lower-case hex: the model version for a weights frame. */
  readonly hash: string;
  readonly manifest: TensorSpec[];
  /** Offset of the data region in the frame. */
  readonly dataOffset: number;
  /** Length of the data region. */
  readonly dataByteLength: number;
}

export interface DecodedFrame extends FrameHeader {
  /** One view per manifest entry, in order. */
  readonly tensors: Tensor[];
  /** The data region (little-endian bytes), a view onto the same memory as `tensors`. */
  readonly data: Uint8Array;
}

export interface DecodeOptions {
  /** The manifest the receiver requires: names, shapes and dtypes must match exactly, in order. */
  expected?: Manifest;
  /** Require this header hash (e.g. the modelVersion a message announced). */
  expectedHash?: string;
  /** Recompute the content hash and compare it with the header (default true). */
  verifyHash?: boolean;
  /** Reject NaN/Infinity in float32 tensors (default false; see assertFinite). */
  checkFinite?: boolean;
  /** Copy the data even when zero-copy views are possible (so the result outlives the input buffer). */
  copy?: boolean;
  limits?: Partial<ProtocolLimits> | Readonly<ProtocolLimits>;
}

export interface EncodeOptions {
  limits?: Partial<ProtocolLimits> | Readonly<ProtocolLimits>;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const ARRAY_FOR: Record<Dtype, { name: string; make: (b: ArrayBufferLike, off: number, n: number) => TensorData }> = {
  float32: { name: 'Float32Array', make: (b, o, n) => new Float32Array(b, o, n) },
  int32: { name: 'Int32Array', make: (b, o, n) => new Int32Array(b, o, n) },
  uint32: { name: 'Uint32Array', make: (b, o, n) => new Uint32Array(b, o, n) },
};

function dtypeOf(data: unknown): Dtype | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  return undefined;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

// ---- manifest ------------------------------------------------------------------------------

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Canonical manifest JSON: entries in order, keys in the order name, shape, dtype. */
export function canonicalManifest(manifest: Manifest): string {
  return JSON.stringify(manifest.map((t) => ({ name: t.name, shape: [...t.shape], dtype: t.dtype })));
}

const formatSpec = (t: TensorSpec): string => `'${t.name}' [${t.shape.join(',')}] ${t.dtype}`;
const formatShape = (shape: readonly number[]): string => `[${shape.join(',')}]`;

/**
 * Checks a manifest (structure, names, dtypes, positive integer dims, limits) and returns a
 * normalized copy and its total data byte length. `fail` makes the error (bad manifest on
 * decode, bad input on encode).
 */
function checkManifest(
  raw: unknown,
  limits: Readonly<ProtocolLimits>,
  fail: (problem: string) => Error,
): { manifest: TensorSpec[]; dataBytes: number } {
  if (!Array.isArray(raw)) throw fail('expected a JSON array of {name, shape, dtype}');
  if (raw.length > limits.maxTensors) {
    throw new FrameTooLargeError('the tensor count', `${limits.maxTensors} tensors`, `${raw.length}`);
  }
  const names = new Set<string>();
  const manifest: TensorSpec[] = [];
  const maxElements = Math.floor(limits.maxFrameBytes / 4);
  let elements = 0;
  for (let i = 0; i < raw.length; i++) {
    const e: unknown = raw[i];
    const at = `entry #${i}`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw fail(`${at} is not an object`);
    const entry = e as Record<string, unknown>;
    for (const key of Object.keys(entry)) {
      if (key !== 'name' && key !== 'shape' && key !== 'dtype') {
        throw fail(`${at} has unknown field '${key}' (allowed: name, shape, dtype)`);
      }
    }
    const { name, shape, dtype } = entry;
    if (typeof name !== 'string' || name.length === 0 || name.length > 256 || hasControlChar(name)) {
      throw fail(`${at}: name must be a non-empty string of at most 256 printable characters`);
    }
    if (names.has(name)) throw fail(`${at}: duplicate tensor name '${name}'`);
    names.add(name);
    if (typeof dtype !== 'string' || !(DTYPES as readonly string[]).includes(dtype)) {
      throw fail(`tensor '${name}': dtype must be one of ${DTYPES.join(', ')}; got ${JSON.stringify(dtype) ?? typeof dtype}`);
    }
    if (!Array.isArray(shape)) throw fail(`tensor '${name}': shape must be an array of positive integers`);
    if (shape.length > limits.maxRank) {
      throw fail(`tensor '${name}': rank ${shape.length} exceeds maxRank ${limits.maxRank}`);
    }
    let n = 1;
    for (const d of shape as unknown[]) {
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > 2 ** 31 - 1) {
        throw fail(`tensor '${name}': shape ${JSON.stringify(shape)} must hold positive integers (no 0, -1 or fractions)`);
      }
      n *= d;
      if (n > maxElements) break;
    }
    elements += n;
    if (elements > maxElements) {
      throw new FrameTooLargeError('the tensor data', `${limits.maxFrameBytes} bytes`, `more (at tensor '${name}')`);
    }
    manifest.push({ name, shape: [...(shape as number[])], dtype: dtype as Dtype });
  }
  return { manifest, dataBytes: elements * 4 };
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20) return true;
  return false;
}

/** Returns a description of the first difference between two manifests, or undefined if equal. */
export function diffManifests(expected: Manifest, actual: Manifest): string | undefined {
  const n = Math.min(expected.length, actual.length);
  for (let i = 0; i < n; i++) {
    const e = expected[i] as TensorSpec;
    const a = actual[i] as TensorSpec;
    if (e.name !== a.name || e.dtype !== a.dtype || formatShape(e.shape) !== formatShape(a.shape)) {
      const what =
        e.name !== a.name ? 'name' : formatShape(e.shape) !== formatShape(a.shape) ? 'shape' : 'dtype';
      return `tensor #${i} differs in ${what}: expected ${formatSpec(e)}, got ${formatSpec(a)}`;
    }
  }
  if (expected.length > actual.length) {
    return `expected ${expected.length} tensors, got ${actual.length}; first missing: ${formatSpec(expected[n] as TensorSpec)}`;
  }
  if (actual.length > expected.length) {
    return `expected ${expected.length} tensors, got ${actual.length}; first extra: ${formatSpec(actual[n] as TensorSpec)}`;
  }
  return undefined;
}

/** Throws FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH naming the first difference. */
export function assertManifestMatches(expected: Manifest, actual: Manifest): void {
  const diff = diffManifests(expected, actual);
  if (diff !== undefined) throw new FrameManifestMismatchError(diff);
}

// ---- hashing -------------------------------------------------------------------------------

type Chunk = Uint8Array;

function bytesOf(data: TensorData | Uint8Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Little-endian bytes of the input's data, as one or more chunks (no copy on little-endian hosts). */
function dataChunks(input: FrameInput, fail: (problem: string) => Error, limits: Readonly<ProtocolLimits>) {
  const isFlat = !Array.isArray(input);
  // Only name, shape and dtype are framed: richer manifests (offsets, ...) are accepted.
  const given: readonly TensorSpec[] = isFlat ? (input as FlatTensors).manifest : (input as readonly Tensor[]);
  if (!Array.isArray(given)) throw fail('expected an array of tensors or {manifest, data}');
  const specs = given.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype }));
  const { manifest, dataBytes } = checkManifest(specs, limits, fail);
  const chunks: Chunk[] = [];
  if (isFlat) {
    const { data } = input as FlatTensors;
    if (!(data instanceof Uint8Array)) {
      const dt = dtypeOf(data);
      if (dt === undefined) throw fail('flat data must be a Uint8Array, Float32Array, Int32Array or Uint32Array');
      const other = manifest.find((t) => t.dtype !== dt);
      if (other !== undefined) {
        throw fail(`flat data is a ${ARRAY_FOR[dt].name} but tensor '${other.name}' is ${other.dtype}; pass the bytes as a Uint8Array`);
      }
    }
    if (data.byteLength !== dataBytes) {
      throw fail(`flat data has ${data.byteLength} bytes but the manifest needs ${dataBytes}`);
    }
    chunks.push(toLittleEndian(bytesOf(data)));
  } else {
    for (const t of input as readonly Tensor[]) {
      const dt = dtypeOf(t.data);
      if (dt !== t.dtype) {
        throw fail(`tensor '${t.name}' is ${t.dtype} and needs a ${ARRAY_FOR[t.dtype].name}; got ${describeData(t.data)}`);
      }
      const n = elementCount(t.shape);
      if (t.data.length !== n) {
        throw fail(`tensor '${t.name}' has ${t.data.length} elements but shape ${formatShape(t.shape)} needs ${n}`);
      }
      chunks.push(toLittleEndian(bytesOf(t.data)));
    }
  }
  return { manifest, dataBytes, chunks };
}

function describeData(d: unknown): string {
  return d !== null && typeof d === 'object' ? (d.constructor?.name ?? 'object') : typeof d;
}

/** On big-endian hosts, a byte-swapped copy; otherwise the input itself. */
function toLittleEndian(bytes: Uint8Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return bytes;
  const out = Uint8Array.from(bytes);
  swap32(out);
  return out;
}

function swap32(b: Uint8Array): void {
  for (let i = 0; i + 3 < b.length; i += 4) {
    const a0 = b[i] as number;
    const a1 = b[i + 1] as number;
    b[i] = b[i + 3] as number;
    b[i + 1] = b[i + 2] as number;
    b[i + 2] = a1;
    b[i + 3] = a0;
  }
}

function hashParts(manifestJson: Uint8Array, chunks: readonly Chunk[]): Buffer {
  const h = createHash('sha256');
  h.update(HASH_DOMAIN);
  h.update(manifestJson);
  h.update(ZERO);
  for (const c of chunks) h.update(c);
  return h.digest();
}

/**
 * The model-version hash: lower-case hex sha256 over a domain tag, the canonical manifest JSON,
 * a zero byte and the little-endian tensor bytes in manifest order. Equals the header hash
 * encodeFrame writes. Accepts tensors or a flat byte run plus its manifest.
 */
export function computeModelHash(input: FrameInput, options: EncodeOptions = {}): string {
  const limits = resolveLimitsLoose(options.limits);
  const { manifest, chunks } = dataChunks(input, (p) => new FrameBadInputError(p), limits);
  return hashParts(Buffer.from(canonicalManifest(manifest), 'utf8'), chunks).toString('hex');
}

// ---- encode --------------------------------------------------------------------------------

/**
 * Encodes tensors into one frame. Allocates the frame once and copies each tensor's bytes once
 * (a byte-level memcpy; no per-element work on little-endian hosts). Returns a Buffer (a
 * Uint8Array) that socket.io sends as a binary attachment.
 */
export function encodeFrame(input: FrameInput, options: EncodeOptions = {}): Buffer {
  const limits = resolveLimitsLoose(options.limits);
  const { manifest, dataBytes, chunks } = dataChunks(input, (p) => new FrameBadInputError(p), limits);
  const manifestJson = Buffer.from(canonicalManifest(manifest), 'utf8');
  if (manifestJson.length > limits.maxManifestBytes) {
    throw new FrameTooLargeError('the manifest', `${limits.maxManifestBytes} bytes`, `${manifestJson.length} bytes`);
  }
  const dataOffset = alignUp(FRAME_HEADER_BYTES + manifestJson.length, FRAME_DATA_ALIGNMENT);
  const total = dataOffset + dataBytes;
  if (total > limits.maxFrameBytes) {
    throw new FrameTooLargeError('the frame', `${limits.maxFrameBytes} bytes`, `${total} bytes`);
  }
  const out = Buffer.allocUnsafeSlow(total);
  out.fill(0, 0, dataOffset);
  out.set(FRAME_MAGIC, 0);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint16(4, FRAME_FORMAT_VERSION, true);
  view.setUint16(6, 0, true);
  view.setBigUint64(8, BigInt(total), true);
  view.setUint32(16, manifestJson.length, true);
  out.set(manifestJson, FRAME_HEADER_BYTES);
  let off = dataOffset;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  out.set(hashParts(manifestJson, [out.subarray(dataOffset)]), 24);
  return out;
}

// ---- decode --------------------------------------------------------------------------------

/**
 * Reads and checks the header and manifest (magic, version, lengths, manifest vs byte count,
 * dtypes, shapes, limits) without touching the data. Cheap: use it to peek at a frame's hash.
 */
export function readFrameHeader(frame: Uint8Array, options: Pick<DecodeOptions, 'limits'> = {}): FrameHeader {
  const limits = resolveLimitsLoose(options.limits);
  if (!(frame instanceof Uint8Array)) {
    throw new FrameBadHeaderError(`a frame must be a Uint8Array (Buffer); got ${describeData(frame)}`);
  }
  const len = frame.length;
  if (len < FRAME_MAGIC.length) throw new FrameTruncatedError('the magic', `${FRAME_MAGIC.length}`, `${len}`);
  for (let i = 0; i < FRAME_MAGIC.length; i++) {
    if (frame[i] !== FRAME_MAGIC[i]) throw new FrameBadMagicError(hex(frame.subarray(0, 4)));
  }
  if (len < FRAME_HEADER_BYTES) throw new FrameTruncatedError('the header', `${FRAME_HEADER_BYTES}`, `${len}`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const formatVersion = view.getUint16(4, true);
  if (formatVersion !== FRAME_FORMAT_VERSION) {
    throw new FrameUnsupportedVersionError(`${formatVersion}`, `${FRAME_FORMAT_VERSION}`);
  }
  const flags = view.getUint16(6, true);
  if (flags !== 0) throw new FrameBadHeaderError(`flags must be 0 in format version 1; got 0x${flags.toString(16)}`);
  if (view.getUint32(20, true) !== 0 || view.getBigUint64(56, true) !== 0n) {
    throw new FrameBadHeaderError('reserved header bytes (20..23, 56..63) must be zero');
  }
  const declared = view.getBigUint64(8, true);
  if (declared > BigInt(limits.maxFrameBytes)) {
    throw new FrameTooLargeError('the frame', `${limits.maxFrameBytes} bytes`, `${declared} bytes (declared in header)`);
  }
  const total = Number(declared);
  if (len < total) throw new FrameTruncatedError('the frame (header total length)', `${total}`, `${len}`);
  if (len > total) {
    throw new FrameLengthMismatchError(`the header declares ${total} bytes but the buffer holds ${len} (${len - total} trailing bytes)`);
  }
  const manifestBytes = view.getUint32(16, true);
  if (manifestBytes > limits.maxManifestBytes) {
    throw new FrameTooLargeError('the manifest', `${limits.maxManifestBytes} bytes`, `${manifestBytes} bytes`);
  }
  const dataOffset = alignUp(FRAME_HEADER_BYTES + manifestBytes, FRAME_DATA_ALIGNMENT);
  if (dataOffset > total) {
    throw new FrameLengthMismatchError(
      `the manifest (${manifestBytes} bytes, data starting at ${dataOffset}) does not fit in the declared ${total} bytes`,
    );
  }
  let json: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(
      frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + manifestBytes),
    );
    json = JSON.parse(text);
  } catch (err) {
    throw new FrameBadManifestError(`not UTF-8 JSON (${(err as Error).message})`);
  }
  for (let i = FRAME_HEADER_BYTES + manifestBytes; i < dataOffset; i++) {
    if (frame[i] !== 0) throw new FrameBadHeaderError(`padding byte at offset ${i} must be zero`);
  }
  const { manifest, dataBytes } = checkManifest(json, limits, (p) => new FrameBadManifestError(p));
  const dataByteLength = total - dataOffset;
  if (dataBytes !== dataByteLength) {
    throw new FrameLengthMismatchError(
      `the manifest describes ${manifest.length} tensors totalling ${dataBytes} bytes but the frame carries ${dataByteLength} data bytes`,
    );
  }
  return { formatVersion, byteLength: total, hash: hex(frame.subarray(24, 56)), manifest, dataOffset, dataByteLength };
}

/**
 * Decodes and checks a frame. Order of checks: header and manifest, expected manifest,
 * expected hash, content hash, then (optionally) NaN/Inf. Returned tensors are views (see `copy`).
 */
export function decodeFrame(frame: Uint8Array, options: DecodeOptions = {}): DecodedFrame {
  const header = readFrameHeader(frame, options);
  if (options.expected !== undefined) assertManifestMatches(options.expected, header.manifest);
  if (options.expectedHash !== undefined && options.expectedHash !== header.hash) {
    throw new HashMismatchError('the frame header (model version)', options.expectedHash, header.hash);
  }
  let data = frame.subarray(header.dataOffset, header.byteLength);
  if (options.verifyHash ?? true) {
    const manifestJson = frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + manifestLength(frame));
    const actual = hashParts(manifestJson, [data]).toString('hex');
    if (actual !== header.hash) {
      throw new HashMismatchError('the frame content (corrupted or tampered)', `header hash ${header.hash}`, actual);
    }
  }
  if (options.copy === true || !LITTLE_ENDIAN_HOST || (data.byteOffset & 3) !== 0) {
    const copy = new Uint8Array(new ArrayBuffer(data.length));
    copy.set(data);
    if (!LITTLE_ENDIAN_HOST) swap32(copy);
    data = copy;
  }
  const tensors: Tensor[] = [];
  let off = data.byteOffset;
  for (const spec of header.manifest) {
    const n = elementCount(spec.shape);
    tensors.push({ ...spec, data: ARRAY_FOR[spec.dtype].make(data.buffer, off, n) });
    off += n * 4;
  }
  if (options.checkFinite === true) assertFinite(tensors);
  return { ...header, tensors, data };
}

function manifestLength(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(16, true);
}

// ---- NaN / Infinity ------------------------------------------------------------------------

/**
 * Index of the first NaN or +-Infinity in `data`, or -1. Tests the exponent bits through a
 * Uint32Array view of the same memory: one integer AND and compare per element, no allocation.
 */
export function findNonFinite(data: Float32Array): number {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < bits.length; i++) {
    if (((bits[i] as number) & 0x7f800000) === 0x7f800000) return i;
  }
  return -1;
}

/** Throws FEDCLR_PROTO_FRAME_NON_FINITE at the first NaN/Inf of any float32 tensor. */
export function assertFinite(tensors: readonly Tensor[]): void {
  for (const t of tensors) {
    if (!(t.data instanceof Float32Array)) continue;
    const i = findNonFinite(t.data);
    if (i >= 0) throw new FrameNonFiniteError(t.name, `${i}`, String(t.data[i]));
  }
}

// ---- helpers -------------------------------------------------------------------------------

const HASH_RE = new RegExp(HASH_PATTERN);
/** True for a lower-case hex sha256. */
export function isModelHash(s: unknown): s is string {
  return typeof s === 'string' && HASH_RE.test(s);
}

function resolveLimitsLoose(l: Partial<ProtocolLimits> | Readonly<ProtocolLimits> | undefined): Readonly<ProtocolLimits> {
  return l === undefined ? DEFAULT_LIMITS : resolveLimits(l);
}
