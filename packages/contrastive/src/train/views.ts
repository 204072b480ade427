// Each replica returns its rows view-major over its own images ([view 1 of its images; view 2;
// ...]); the loss wants them view-major over the whole batch, images numbered across replicas.

/** The global view-major rows [views·n, dim] of replicas' parts, and n (images in all). */
export function gatherViewMajor(parts: { z: Float32Array; count: number }[], dim: number, views: number): { rows: Float32Array; n: number } {
  const n = parts.reduce((a, p) => a + p.count, 0);
  // Row v·n + i is view v of image i.
  const rows = new Float32Array(views * n * dim);
  let first = 0;
  for (const p of parts) {
    for (let v = 0; v < views; v++) rows.set(p.z.subarray(v * p.count * dim, (v + 1) * p.count * dim), (v * n + first) * dim);
    first += p.count;
  }
  return { rows, n };
}

/** The inverse of gatherViewMajor: each part's rows of a global view-major array, view-major over its own images. */
export function scatterViewMajor(rows: Float32Array, parts: { count: number }[], dim: number, views: number): Float32Array[] {
  const n = parts.reduce((a, p) => a + p.count, 0);
  let first = 0;
  return parts.map((p) => {
    const out = new Float32Array(views * p.count * dim);
    for (let v = 0; v < views; v++) out.set(rows.subarray((v * n + first) * dim, (v * n + first + p.count) * dim), v * p.count * dim);
    first += p.count;
    return out;
  });
}
