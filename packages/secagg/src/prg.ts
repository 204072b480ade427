// Cryptographic PRG for masks: a stream cipher keystream under a 256-bit key, read as
// little-endian uint32 words. Three ciphers are available; the session config fixes one
// (both sides must agree). Default AES-256-CTR: measured fastest here (see README), and
// XSalsa20 (tweetnacl's crypto_stream) stays selectable as the design's reference.
// Never a 32-bit-seeded generator: every mask is keyed by 32 bytes from X25519 or a CSPRNG.
import { createCipheriv, type Cipher } from 'node:crypto';
import { endianness } from 'node:os';
import { ConfigError, InternalError } from './errors.js';
import { naclLowLevel } from './crypto.js';

export type PrgAlgorithm = 'aes-256-ctr' | 'chacha20' | 'xsalsa20';
export const PRG_ALGORITHMS: readonly PrgAlgorithm[] = ['aes-256-ctr', 'chacha20', 'xsalsa20'];
export const DEFAULT_PRG: PrgAlgorithm = 'aes-256-ctr';

/** Keys are 32 bytes; nonces 24 bytes (XSalsa20 uses all, the others a prefix). */
export const PRG_KEY_LENGTH = 32;
export const PRG_NONCE_LENGTH = 24;

const LITTLE_ENDIAN = endianness() === 'LE';
// 64 KiB chunks keep the keystream in L2 and avoid a fresh 4 MB allocation per mask.
const CHUNK_BYTES = 1 << 16;
const ZEROS = new Uint8Array(CHUNK_BYTES);

export function assertPrgAlgorithm(value: unknown): PrgAlgorithm {
  if (typeof value !== 'string' || !(PRG_ALGORITHMS as readonly string[]).includes(value)) {
    throw new ConfigError('prg', `must be one of ${PRG_ALGORITHMS.join(', ')}, got ${String(value)}`);
  }
  return value as PrgAlgorithm;
}

function checkKey(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== PRG_KEY_LENGTH) throw new InternalError(`PRG key must be ${PRG_KEY_LENGTH} bytes`);
  if (nonce.length !== PRG_NONCE_LENGTH) throw new InternalError(`PRG nonce must be ${PRG_NONCE_LENGTH} bytes`);
}

function nodeCipher(algorithm: 'aes-256-ctr' | 'chacha20', key: Uint8Array, nonce: Uint8Array): Cipher {
  const iv = new Uint8Array(16);
  // AES-CTR: 64-bit nonce then a 64-bit block counter from zero, so the counter cannot wrap.
  // ChaCha20 (OpenSSL layout): 32-bit little-endian counter from zero, then a 96-bit nonce.
  if (algorithm === 'aes-256-ctr') iv.set(nonce.subarray(0, 8), 0);
  else iv.set(nonce.subarray(0, 12), 4);
  return createCipheriv(algorithm, key, iv);
}

function asWords(bytes: Uint8Array, count: number): Uint32Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
  const out = new Uint32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getUint32(4 * i, true);
  return out;
}

let xsalsaScratch = new Uint8Array(0);

/**
 * Calls `consume(words, offset)` on successive chunks of the keystream, `length` words in all.
 * The chunk is only valid during the call.
 */
function forEachChunk(
  algorithm: PrgAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  length: number,
  consume: (words: Uint32Array, offset: number) => void,
): void {
  checkKey(key, nonce);
  if (algorithm === 'xsalsa20') {
    // tweetnacl's crypto_stream cannot resume at a counter, so it writes the whole stream once.
    const bytes = 4 * length;
    if (xsalsaScratch.length < bytes) xsalsaScratch = new Uint8Array(bytes);
    naclLowLevel.crypto_stream(xsalsaScratch, 0, bytes, nonce, key);
    consume(asWords(xsalsaScratch, length), 0);
    return;
  }
  const cipher = nodeCipher(algorithm, key, nonce);
  const chunkWords = CHUNK_BYTES / 4;
  for (let offset = 0; offset < length; offset += chunkWords) {
    const count = Math.min(chunkWords, length - offset);
    const out = cipher.update(count === chunkWords ? ZEROS : ZEROS.subarray(0, 4 * count));
    consume(asWords(out, count), offset);
  }
}

/** One mask term: sign * PRG(key, nonce). */
export interface MaskTerm {
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
  readonly sign: 1 | -1;
}

function asInt32(bytes: Uint8Array, count: number): Int32Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Int32Array(bytes.buffer, bytes.byteOffset, count);
  return new Int32Array(asWords(bytes, count).buffer, 0, count);
}

/**
 * acc[i] += sum over terms of sign * PRG(key, nonce)[i] mod 2^32, in place.
 * Chunk-major: every 64 KiB slice of `acc` takes all terms while it sits in cache, instead of
 * streaming the whole vector through memory once per term.
 */
export function applyMasks(acc: Uint32Array, terms: readonly MaskTerm[], algorithm: PrgAlgorithm = DEFAULT_PRG): void {
  for (const term of terms) checkKey(term.key, term.nonce);
  if (algorithm === 'xsalsa20') {
    // tweetnacl's crypto_stream cannot resume at a counter: one whole stream per term.
    for (const term of terms) addPrg(acc, term.key, term.nonce, term.sign, algorithm);
    return;
  }
  const a32 = new Int32Array(acc.buffer, acc.byteOffset, acc.length);
  const ciphers = terms.map((term) => nodeCipher(algorithm, term.key, term.nonce));
  const chunkWords = CHUNK_BYTES / 4;
  for (let offset = 0; offset < acc.length; offset += chunkWords) {
    const count = Math.min(chunkWords, acc.length - offset);
    const input = count === chunkWords ? ZEROS : ZEROS.subarray(0, 4 * count);
    const slice = a32.subarray(offset, offset + count);
    for (let t = 0; t < ciphers.length; t++) {
      const w = asInt32((ciphers[t] as Cipher).update(input), count);
      // Int32 arithmetic with |0 wraps exactly like uint32 mod 2^32 and stays in machine words.
      if ((terms[t] as MaskTerm).sign === 1) for (let i = 0; i < count; i++) slice[i] = ((slice[i] as number) + (w[i] as number)) | 0;
      else for (let i = 0; i < count; i++) slice[i] = ((slice[i] as number) - (w[i] as number)) | 0;
    }
  }
}

/** acc[i] = acc[i] + sign * PRG(key, nonce)[i] mod 2^32, in place. */
export function addPrg(
  acc: Uint32Array,
  key: Uint8Array,
  nonce: Uint8Array,
  sign: 1 | -1,
  algorithm: PrgAlgorithm = DEFAULT_PRG,
): void {
  if (algorithm !== 'xsalsa20') {
    applyMasks(acc, [{ key, nonce, sign }], algorithm);
    return;
  }
  forEachChunk(algorithm, key, nonce, acc.length, (words, offset) => {
    const n = words.length;
    if (sign === 1) {
      for (let i = 0; i < n; i++) acc[offset + i] = ((acc[offset + i] as number) + (words[i] as number)) >>> 0;
    } else {
      for (let i = 0; i < n; i++) acc[offset + i] = ((acc[offset + i] as number) - (words[i] as number)) >>> 0;
    }
  });
}

/** The first `length` words of PRG(key, nonce). */
export function prgWords(
  length: number,
  key: Uint8Array,
  nonce: Uint8Array,
  algorithm: PrgAlgorithm = DEFAULT_PRG,
): Uint32Array {
  const out = new Uint32Array(length);
  forEachChunk(algorithm, key, nonce, length, (words, offset) => out.set(words, offset));
  return out;
}

/** Fills arrays of uint32 words with uniformly random values. */
export type RandomWords = (out: Uint32Array) => void;

/**
 * A resumable deterministic word stream (AES-256-CTR under `key`): the seeded RNG for the
 * neighbour graph and for reproducible stochastic rounding.
 */
export function seededRandomWords(key: Uint8Array, nonce: Uint8Array = new Uint8Array(PRG_NONCE_LENGTH)): RandomWords {
  checkKey(key, nonce);
  const cipher = nodeCipher('aes-256-ctr', key, nonce);
  return (out) => {
    for (let offset = 0; offset < out.length; offset += CHUNK_BYTES / 4) {
      const count = Math.min(CHUNK_BYTES / 4, out.length - offset);
      out.set(asWords(cipher.update(ZEROS.subarray(0, 4 * count)), count), offset);
    }
  };
}

/** Uniform integer in [0, bound) from a word stream, by rejection (no modulo bias). */
export function uniformInt(words: RandomWords, bound: number): number {
  if (!Number.isInteger(bound) || bound < 1 || bound > 0x100000000) throw new InternalError('bad uniformInt bound');
  const limit = Math.floor(0x100000000 / bound) * bound;
  const one = new Uint32Array(1);
  for (;;) {
    words(one);
    const w = one[0] as number;
    if (w < limit) return w % bound;
  }
}
