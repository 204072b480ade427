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

/** The rows of a [rows, d] array scaled to unit L2 norm (a copy). */
export function unitRows(values: Float32Array, d: number): Float32Array {
  const out = Float32Array.from(values);
  for (let r = 0; r < values.length / d; r++) {
    const row = out.subarray(r * d, (r + 1) * d);
    const norm = Math.hypot(...row);
    for (let i = 0; i < d; i++) row[i] = (row[i] as number) / norm;
  }
  return out;
}
