// Deterministic test inputs (a 32-bit LCG): fixtures must not depend on a backend's RNG.

/** `count` values in [0, 1). */
export function uniformArray(count: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296;
  }
  return out;
}
