// Deterministic seeded random numbers for simulation, partitioning and augmentation.
//
// Generator: xoshiro128** (Blackman & Vigna), 128-bit state, 32-bit output, fast with Math.imul.
// Seeding: the seed (number or string) is hashed with a SplitMix64-based absorber to a 128-bit key,
// so nearby seeds (0, 1, 2...) give unrelated streams and string seeds are first class.
// Forking: fork(label) derives a child key from the parent's *key* and the label, not from the
// parent's current position. A child therefore does not depend on how much the parent was used,
// and `root.fork('client:3').fork('round:7')` names one stream whatever the call order (the
// same idea as JAX's fold_in). Forking the same label twice gives the same stream, on purpose.
//
// Not for cryptography: secure aggregation masks use the XSalsa20 keystream, never this.
import { RngInvalidArgumentError, RngInvalidSeedError, RngInvalidStateError } from './errors.js';

/** A seed: any finite number, or any string (hashed, so "client-1" is a fine seed). */
export type Seed = number | string;

/** An indexable, writable sequence: plain arrays and typed arrays both qualify. */
export interface MutableArrayLike<T> {
  readonly length: number;
  [index: number]: T;
}

/** The random-number interface the other packages depend on. */
export interface Rng {
  /** Uniform float in [0, 1) with 53 random bits. */
  next(): number;
  /** Uniform unsigned 32-bit integer. */
  nextUint32(): number;
  /** Uniform integer in [0, maxExclusive), or in [minInclusive, maxExclusive). Unbiased. */
  int(maxExclusive: number): number;
  int(minInclusive: number, maxExclusive: number): number;
  /** Uniform float in [min, max). */
  uniform(min: number, max: number): number;
  /** Normal draw (Box-Muller); default mean 0, std 1. */
  normal(mean?: number, std?: number): number;
  /** Gamma(shape, scale) draw (Marsaglia-Tsang); default scale 1. */
  gamma(shape: number, scale?: number): number;
  /** Dirichlet(alpha) draw: non-negative weights summing to 1, one per entry of alpha. */
  dirichlet(alpha: ArrayLike<number>): number[];
  /** Fisher-Yates shuffle in place; returns its argument. */
  shuffle<A extends MutableArrayLike<unknown>>(array: A): A;
  /** k distinct items drawn without replacement, in random order. */
  sample<T>(items: ArrayLike<T>, k: number): T[];
  /** k distinct integers from [0, n) drawn without replacement, in random order. */
  sampleIndices(n: number, k: number): number[];
  /** Independent child stream named by label; does not advance this stream. */
  fork(label: Seed): Rng;
}

/** Serializable snapshot of a SeededRng (for checkpoints); restore with SeededRng.fromState. */
export interface RngState {
  readonly version: 1;
  /** The 128-bit key derived from the seed (identity used by fork). */
  readonly key: readonly number[];
  /** The current xoshiro128** state words. */
  readonly s: readonly number[];
  /** The cached second Box-Muller normal, if any. */
  readonly spare: number | null;
}

// --- Seed hashing (SplitMix64 finalizer as the mixing step; BigInt keeps it exact) -------------

const MASK64 = (1n << 64n) - 1n;
const GOLDEN64 = 0x9e3779b97f4a7c15n;
const TAG_NUMBER = 0x4e554d31; // distinct tags keep seed 1 and seed "1" apart
const TAG_STRING = 0x53545231;
const TAG_FORK = 0x464f524b;

/** SplitMix64 output function (a bijection on 64-bit values). Exported for tests. */
export function splitmix64Mix(x: bigint): bigint {
  let z = x & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/**
 * Hash 32-bit words to a 128-bit xoshiro key: absorb each word through the SplitMix64 mixer into a
 * 64-bit digest, then expand the digest with the SplitMix64 stream (Vigna's recommended seeding).
 */
export function hashWords(words: readonly number[]): Uint32Array {
  let h = 0n;
  for (const w of words) h = splitmix64Mix(((h + GOLDEN64) & MASK64) ^ BigInt(w >>> 0));
  const key = new Uint32Array(4);
  let x = h;
  for (let i = 0; i < 2; i++) {
    x = (x + GOLDEN64) & MASK64;
    const z = splitmix64Mix(x);
    key[2 * i] = Number(z & 0xffffffffn);
    key[2 * i + 1] = Number(z >> 32n);
  }
  // xoshiro's only forbidden state is all zeros; a 2^-128 event, but cheap to rule out.
  if (key.every((w) => w === 0)) key[0] = 1;
  return key;
}

function seedWords(seed: Seed): number[] {
  if (typeof seed === 'number') {
    if (!Number.isFinite(seed)) throw new RngInvalidSeedError(String(seed));
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, seed === 0 ? 0 : seed); // fold -0 into 0
    return [TAG_NUMBER, view.getUint32(0), view.getUint32(4)];
  }
  if (typeof seed === 'string') {
    const bytes = new TextEncoder().encode(seed);
    const words = [TAG_STRING, bytes.length];
    for (let i = 0; i < bytes.length; i += 4) {
      words.push(
        (bytes[i] ?? 0) | ((bytes[i + 1] ?? 0) << 8) | ((bytes[i + 2] ?? 0) << 16) | ((bytes[i + 3] ?? 0) << 24),
      );
    }
    return words;
  }
  throw new RngInvalidSeedError(`of type ${typeof seed}`);
}

/** The 128-bit key a seed maps to. */
export function seedKey(seed: Seed): Uint32Array {
  return hashWords(seedWords(seed));
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

function checkFinite(method: string, name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RngInvalidArgumentError(method, `${name} must be a finite number, got ${String(value)}`);
  }
}

function checkCount(method: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RngInvalidArgumentError(method, `${name} must be a non-negative integer, got ${String(value)}`);
  }
}

/** xoshiro128** generator seeded by hashing; the one implementation of Rng. */
export class SeededRng implements Rng {
  private readonly key: Uint32Array;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private hasSpare = false;
  private spare = 0;

  private constructor(key: Uint32Array) {
    this.key = key;
    this.s0 = key[0] ?? 0;
    this.s1 = key[1] ?? 0;
    this.s2 = key[2] ?? 0;
    this.s3 = key[3] ?? 0;
  }

  /** A generator for a number or string seed. */
  static fromSeed(seed: Seed): SeededRng {
    return new SeededRng(seedKey(seed));
  }

  /** Restore a generator exactly where rng.state() left it. */
  static fromState(state: RngState): SeededRng {
    const words = (v: unknown, name: string): Uint32Array => {
      if (!Array.isArray(v) || v.length !== 4 || !v.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)) {
        throw new RngInvalidStateError(`${name} must be 4 unsigned 32-bit integers`);
      }
      return Uint32Array.from(v as number[]);
    };
    if (typeof state !== 'object' || state === null || state.version !== 1) {
      throw new RngInvalidStateError('missing or unsupported version (expected 1)');
    }
    const key = words(state.key, 'key');
    const s = words(state.s, 's');
    if (s.every((w) => w === 0)) throw new RngInvalidStateError('s must not be all zeros');
    if (state.spare !== null && !Number.isFinite(state.spare)) {
      throw new RngInvalidStateError('spare must be a finite number or null');
    }
    const rng = new SeededRng(key);
    [rng.s0, rng.s1, rng.s2, rng.s3] = Array.from(s, (w) => w | 0) as [number, number, number, number];
    rng.hasSpare = state.spare !== null;
    rng.spare = state.spare ?? 0;
    return rng;
  }

  /** Snapshot of the full state (JSON-serializable). */
  state(): RngState {
    return {
      version: 1,
      key: Array.from(this.key),
      s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0],
      spare: this.hasSpare ? this.spare : null,
    };
  }

  nextUint32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const s2 = this.s2 ^ s0;
    const s3 = this.s3 ^ s1;
    this.s1 = s1 ^ s2;
    this.s0 = s0 ^ s3;
    this.s2 = s2 ^ t;
    this.s3 = rotl(s3, 11);
    return result;
  }

  next(): number {
    // 27 + 26 bits: every double in [0, 1) on the 2^-53 grid is equally likely.
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / TWO_POW_53;
  }

  int(a: number, b?: number): number {
    const min = b === undefined ? 0 : a;
    const max = b === undefined ? a : b;
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max <= min) {
      throw new RngInvalidArgumentError(
        'int',
        `need safe integers with min < max, got [${String(min)}, ${String(max)})`,
      );
    }
    const range = max - min;
    if (range > TWO_POW_53) throw new RngInvalidArgumentError('int', `range ${range} exceeds 2^53`);
    // Rejection sampling: drop the top sliver of the source range that would bias the modulo.
    if (range <= TWO_POW_32) {
      const limit = TWO_POW_32 - (TWO_POW_32 % range);
      let u = this.nextUint32();
      while (u >= limit) u = this.nextUint32();
      return min + (u % range);
    }
    const limit = TWO_POW_53 - (TWO_POW_53 % range);
    let u = this.next() * TWO_POW_53;
    while (u >= limit) u = this.next() * TWO_POW_53;
    return min + (u % range);
  }

  uniform(min: number, max: number): number {
    checkFinite('uniform', 'min', min);
    checkFinite('uniform', 'max', max);
    if (!(max >= min)) throw new RngInvalidArgumentError('uniform', `need min <= max, got [${min}, ${max})`);
    return min + (max - min) * this.next();
  }

  normal(mean = 0, std = 1): number {
    checkFinite('normal', 'mean', mean);
    checkFinite('normal', 'std', std);
    if (std < 0) throw new RngInvalidArgumentError('normal', `std must be >= 0, got ${std}`);
    return mean + std * this.standardNormal();
  }

  /** Box-Muller; each pair of uniforms yields two normals, the second is kept for the next call. */
  private standardNormal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = 1 - this.next(); // (0, 1], so the log is finite
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    this.hasSpare = true;
    return r * Math.cos(theta);
  }

  gamma(shape: number, scale = 1): number {
    checkFinite('gamma', 'shape', shape);
    checkFinite('gamma', 'scale', scale);
    if (shape <= 0) throw new RngInvalidArgumentError('gamma', `shape must be > 0, got ${shape}`);
    if (scale <= 0) throw new RngInvalidArgumentError('gamma', `scale must be > 0, got ${scale}`);
    if (shape < 1) {
      // Boost: Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia & Tsang, section 6).
      return this.gammaAtLeastOne(shape + 1) * Math.pow(1 - this.next(), 1 / shape) * scale;
    }
    return this.gammaAtLeastOne(shape) * scale;
  }

  /** Marsaglia-Tsang squeeze/rejection for shape >= 1, unit scale. */
  private gammaAtLeastOne(shape: number): number {
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.standardNormal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2) return d * v;
      if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** log of a unit-scale Gamma draw; stays finite where the draw itself would underflow to 0. */
  private logGamma(shape: number): number {
    if (shape < 1) return Math.log(this.gammaAtLeastOne(shape + 1)) + Math.log(1 - this.next()) / shape;
    return Math.log(this.gammaAtLeastOne(shape));
  }

  dirichlet(alpha: ArrayLike<number>): number[] {
    const k = alpha.length;
    if (k < 1) throw new RngInvalidArgumentError('dirichlet', 'alpha must have at least one entry');
    const logs = new Array<number>(k);
    let maxLog = -Infinity;
    for (let i = 0; i < k; i++) {
      const a = alpha[i] as number;
      if (!Number.isFinite(a) || a <= 0) {
        throw new RngInvalidArgumentError('dirichlet', `alpha[${i}] must be a finite number > 0, got ${String(a)}`);
      }
      const l = this.logGamma(a);
      logs[i] = l;
      if (l > maxLog) maxLog = l;
    }
    // Normalize in log space: with alpha << 1 the raw Gamma draws underflow to 0 and would give 0/0.
    let sum = 0;
    for (let i = 0; i < k; i++) {
      const w = Math.exp((logs[i] as number) - maxLog);
      logs[i] = w;
      sum += w;
    }
    for (let i = 0; i < k; i++) logs[i] = (logs[i] as number) / sum;
    return logs;
  }

  shuffle<A extends MutableArrayLike<unknown>>(array: A): A {
    const a: MutableArrayLike<unknown> = array;
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return array;
  }

  sampleIndices(n: number, k: number): number[] {
    checkCount('sampleIndices', 'n', n);
    checkCount('sampleIndices', 'k', k);
    if (k > n) throw new RngInvalidArgumentError('sampleIndices', `cannot draw ${k} distinct items from ${n}`);
    // Partial Fisher-Yates. For small k a Map stands in for the permuted array (O(k) memory);
    // both branches consume the stream identically, so the result does not depend on the branch.
    const out = new Array<number>(k);
    if (n <= 4 * k) {
      const perm = new Int32Array(n);
      for (let i = 0; i < n; i++) perm[i] = i;
      for (let i = 0; i < k; i++) {
        const j = i + this.int(n - i);
        const vj = perm[j] as number;
        perm[j] = perm[i] as number;
        out[i] = vj;
      }
      return out;
    }
    const moved = new Map<number, number>();
    for (let i = 0; i < k; i++) {
      const j = i + this.int(n - i);
      const vj = moved.get(j) ?? j;
      moved.set(j, moved.get(i) ?? i);
      out[i] = vj;
    }
    return out;
  }

  sample<T>(items: ArrayLike<T>, k: number): T[] {
    return this.sampleIndices(items.length, k).map((i) => items[i] as T);
  }

  fork(label: Seed): SeededRng {
    return new SeededRng(hashWords([TAG_FORK, ...this.key, ...seedWords(label)]));
  }
}

/** A seeded generator; shorthand for SeededRng.fromSeed. */
export function createRng(seed: Seed): SeededRng {
  return SeededRng.fromSeed(seed);
}
