// Randomness for the augmentations. The ops take a minimal RandomSource so that any seeded
// generator (e.g. the one of @fedclr/data) can drive them; a small default one is here.
// All per-image random parameters are drawn in JS from the source, in a fixed order, so the
// same source state and batch shape always give the same augmented batch on every backend.

/** A stream of uniform numbers in [0, 1). */
export interface RandomSource {
  next(): number;
}

/**
 * A seeded sfc32 generator (Doolittle's Small Fast Counter, 128-bit state, passes PractRand),
 * its state filled from the seed with splitmix32. Good for augmentation; NOT for cryptography.
 * Any 32-bit integer seed is accepted (other numbers are truncated with `>>> 0`).
 */
export function createSeededRandom(seed: number): RandomSource {
  let s = seed >>> 0;
  const splitmix32 = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix32();
  let b = splitmix32();
  let c = splitmix32();
  let d = splitmix32();
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 12; i++) next(); // discard the first outputs, as sfc32's author advises
  return { next };
}

/** Uniform in [lo, hi) (exactly lo when lo === hi). */
export function uniform(rng: RandomSource, lo: number, hi: number): number {
  return lo === hi ? lo : lo + (hi - lo) * rng.next();
}

/** true with probability p (always draws one number, so the stream does not depend on p). */
export function bernoulli(rng: RandomSource, p: number): boolean {
  return rng.next() < p;
}

/** Fills `out` with standard normal draws (Box-Muller, two per pair of uniforms). */
export function fillStandardNormal(rng: RandomSource, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - rng.next(); // (0, 1]: log is finite
    const u2 = rng.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    out[i] = r * Math.cos(theta);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

/** A uniformly random permutation of `items` (Fisher-Yates), as a new array. */
export function shuffled<T>(rng: RandomSource, items: readonly T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}
