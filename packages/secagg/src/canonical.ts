// Canonical binary encoding of message values. Signatures are computed over this encoding, so it
// must be injective and deterministic: every value is tagged and length-prefixed, object keys are
// sorted, -0 is written as 0. It also serves as the plaintext format inside encrypted shares and
// as a byte count for wire-size estimates (the protocol package owns the real wire format).
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { MalformedMessageError } from './errors.js';

export type CanonicalValue =
  | string
  | number
  | boolean
  | Uint8Array
  | Uint32Array
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue };

const TAG_STRING = 1;
const TAG_NUMBER = 2;
const TAG_FALSE = 3;
const TAG_TRUE = 4;
const TAG_BYTES = 5;
const TAG_WORDS = 6;
const TAG_ARRAY = 7;
const TAG_OBJECT = 8;

// Uint32Array payloads are hashed through a byte view; the canonical order is little-endian.
const LITTLE_ENDIAN = endianness() === 'LE';

/** Where encoded bytes go: a buffer, a hash, or a counter. Must not keep `bytes` after write. */
export interface Sink {
  write(bytes: Uint8Array): void;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

// One scratch buffer for headers: every sink copies or consumes bytes during write().
const HEADER = new Uint8Array(9);
const HEADER_VIEW = new DataView(HEADER.buffer);

function header(tag: number, length: number): Uint8Array {
  HEADER[0] = tag;
  HEADER_VIEW.setUint32(1, length, true);
  return HEADER.subarray(0, 5);
}

function wordsAsBytes(words: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  const out = new Uint8Array(words.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(4 * i, words[i] ?? 0, true);
  return out;
}

/** Writes the canonical encoding of `value` into `sink`. */
export function encodeInto(value: CanonicalValue, sink: Sink, path = 'value'): void {
  if (typeof value === 'string') {
    writeString(value, sink);
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new MalformedMessageError(path, 'numbers must be finite');
    HEADER[0] = TAG_NUMBER;
    HEADER_VIEW.setFloat64(1, value === 0 ? 0 : value, true);
    sink.write(HEADER);
  } else if (typeof value === 'boolean') {
    sink.write(value ? TRUE_BYTE : FALSE_BYTE);
  } else if (value instanceof Uint8Array) {
    sink.write(header(TAG_BYTES, value.length));
    sink.write(value);
  } else if (value instanceof Uint32Array) {
    sink.write(header(TAG_WORDS, value.length));
    sink.write(wordsAsBytes(value));
  } else if (Array.isArray(value)) {
    const items = value as readonly CanonicalValue[];
    sink.write(header(TAG_ARRAY, items.length));
    for (let i = 0; i < items.length; i++) encodeInto(items[i] as CanonicalValue, sink, `${path}[${i}]`);
  } else if (typeof value === 'object' && value !== null) {
    const record = value as { readonly [key: string]: CanonicalValue };
    const keys = Object.keys(record).sort();
    sink.write(header(TAG_OBJECT, keys.length));
    for (const key of keys) {
      const item = record[key];
      if (item === undefined) throw new MalformedMessageError(`${path}.${key}`, 'undefined is not encodable');
      writeString(key, sink);
      encodeInto(item, sink, `${path}.${key}`);
    }
  } else {
    throw new MalformedMessageError(path, `unsupported value of type ${typeof value}`);
  }
}

const TRUE_BYTE = Uint8Array.of(TAG_TRUE);
const FALSE_BYTE = Uint8Array.of(TAG_FALSE);
// Short strings (object keys, agent ids) are most of a message's items: encode them into one
// scratch buffer instead of allocating a TextEncoder result each.
const STRING_SCRATCH = new Uint8Array(5 + 1024);
const STRING_SCRATCH_VIEW = new DataView(STRING_SCRATCH.buffer);

function writeString(value: string, sink: Sink): void {
  if (value.length <= 256) {
    // at most 3 bytes per UTF-16 unit (a surrogate pair is 4 bytes for 2 units)
    const { written } = utf8.encodeInto(value, STRING_SCRATCH.subarray(5));
    STRING_SCRATCH[0] = TAG_STRING;
    STRING_SCRATCH_VIEW.setUint32(1, written, true);
    sink.write(STRING_SCRATCH.subarray(0, 5 + written));
    return;
  }
  const bytes = utf8.encode(value);
  sink.write(header(TAG_STRING, bytes.length));
  sink.write(bytes);
}

const CHUNK_BYTES = 64 * 1024;
const SHARED_CHUNK = new Uint8Array(CHUNK_BYTES);
let chunkInUse = false;

/**
 * Collects writes into large chunks: the encoder emits many 5-byte headers, and one allocation
 * (or one native hash update) per write was most of the cost of a big message (a keys message of
 * 300 agents holds tens of thousands of items). `flush` receives each full chunk; the chunk is
 * reused afterwards, so `flush` must copy or consume it.
 */
class ChunkedSink implements Sink {
  private readonly chunk: Uint8Array;
  private readonly owner: boolean;
  private used = 0;
  constructor(private readonly flushChunk: (bytes: Uint8Array) => void) {
    // One shared chunk (encoding is synchronous and never nested); a fresh one if it is in use.
    this.chunk = chunkInUse ? new Uint8Array(CHUNK_BYTES) : SHARED_CHUNK;
    this.owner = !chunkInUse;
    chunkInUse = true;
  }
  /** Writes what is left and releases the shared chunk. */
  end(): void {
    this.flush();
    if (this.owner) chunkInUse = false;
  }
  write(bytes: Uint8Array): void {
    if (bytes.length >= this.chunk.length / 2) {
      // big payloads (masked vectors, ciphertexts) go straight through, never copied here
      this.flush();
      this.flushChunk(bytes);
      return;
    }
    if (this.used + bytes.length > this.chunk.length) this.flush();
    this.chunk.set(bytes, this.used);
    this.used += bytes.length;
  }
  flush(): void {
    if (this.used === 0) return;
    this.flushChunk(this.chunk.subarray(0, this.used));
    this.used = 0;
  }
}

/** Canonical encoding as one byte array. */
export function encodeCanonical(value: CanonicalValue): Uint8Array {
  const parts: Uint8Array[] = [];
  let length = 0;
  const sink = new ChunkedSink((bytes) => {
    parts.push(bytes.slice());
    length += bytes.length;
  });
  try {
    encodeInto(value, sink);
  } finally {
    sink.end();
  }
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Length in bytes of the canonical encoding, without materialising it. */
export function canonicalLength(value: CanonicalValue): number {
  let length = 0;
  encodeInto(value, { write: (bytes) => (length += bytes.length) });
  return length;
}

/** SHA-256 of the canonical encoding, streamed (a 4 MB masked vector is never copied). */
export function canonicalDigest(value: CanonicalValue): Uint8Array {
  const hash = createHash('sha256');
  const sink = new ChunkedSink((bytes) => hash.update(bytes));
  try {
    encodeInto(value, sink);
  } finally {
    sink.end();
  }
  return new Uint8Array(hash.digest());
}

class Reader {
  offset = 0;
  constructor(private readonly bytes: Uint8Array) {}
  private view = (): DataView => new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  take(n: number, path: string): Uint8Array {
    if (this.offset + n > this.bytes.length) throw new MalformedMessageError(path, 'truncated encoding');
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  u8(path: string): number {
    return this.take(1, path)[0] ?? 0;
  }
  u32(path: string): number {
    const at = this.offset;
    this.take(4, path);
    return this.view().getUint32(at, true);
  }
  f64(path: string): number {
    const at = this.offset;
    this.take(8, path);
    return this.view().getFloat64(at, true);
  }
  get done(): boolean {
    return this.offset === this.bytes.length;
  }
}

function decodeValue(reader: Reader, path: string, depth: number): CanonicalValue {
  if (depth > 16) throw new MalformedMessageError(path, 'nesting too deep');
  const tag = reader.u8(path);
  switch (tag) {
    case TAG_STRING:
      return utf8Decoder.decode(reader.take(reader.u32(path), path));
    case TAG_NUMBER:
      return reader.f64(path);
    case TAG_FALSE:
      return false;
    case TAG_TRUE:
      return true;
    case TAG_BYTES:
      return reader.take(reader.u32(path), path).slice();
    case TAG_WORDS: {
      const count = reader.u32(path);
      const bytes = reader.take(4 * count, path);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint32(4 * i, true);
      return out;
    }
    case TAG_ARRAY: {
      const count = reader.u32(path);
      const out: CanonicalValue[] = [];
      for (let i = 0; i < count; i++) out.push(decodeValue(reader, `${path}[${i}]`, depth + 1));
      return out;
    }
    case TAG_OBJECT: {
      const count = reader.u32(path);
      const out: { [key: string]: CanonicalValue } = {};
      let previous: string | undefined;
      for (let i = 0; i < count; i++) {
        const key = decodeValue(reader, path, depth + 1);
        if (typeof key !== 'string') throw new MalformedMessageError(path, 'object key is not a string');
        // Assigning '__proto__' would set the prototype (inherited, unsigned fields), not a key.
        if (key === '__proto__') throw new MalformedMessageError(path, "object key '__proto__' is not allowed");
        // Sorted, unique keys keep the encoding canonical (one byte string per value).
        if (previous !== undefined && !(previous < key)) {
          throw new MalformedMessageError(path, 'object keys are not sorted and unique');
        }
        previous = key;
        out[key] = decodeValue(reader, `${path}.${key}`, depth + 1);
      }
      return out;
    }
    default:
      throw new MalformedMessageError(path, `unknown tag ${tag}`);
  }
}

/** Decodes a canonical encoding; throws MALFORMED on trailing bytes or bad structure. */
export function decodeCanonical(bytes: Uint8Array, path = 'value'): CanonicalValue {
  const reader = new Reader(bytes);
  const value = decodeValue(reader, path, 0);
  if (!reader.done) throw new MalformedMessageError(path, 'trailing bytes after the encoding');
  return value;
}
