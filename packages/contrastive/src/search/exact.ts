// Exact cosine-similarity search: every stored vector against the query, the k best kept. The
// reference every approximate index is measured against, and the index of small sets.
import { SearchDimensionMismatchError, SearchInvalidOptionError } from './errors.js';

/** The k nearest stored vectors: row ids and cosine similarities, most similar first. */
export interface Neighbours {
  readonly ids: Int32Array;
  readonly scores: Float32Array;
}

/** A searchable set of vectors. */
export interface SimilarityIndex {
  readonly kind: 'exact' | 'hnsw';
  readonly count: number;
  readonly dim: number;
  search(query: Float32Array, k: number): Neighbours;
}

/** Unit-length copies of the rows of a [count, dim] matrix (an all-zero row stays zero). */
export function normalizeRows(vectors: Float32Array, count: number, dim: number): Float32Array {
  const out = new Float32Array(count * dim);
  for (let r = 0; r < count; r++) {
    const base = r * dim;
    let sq = 0;
    for (let j = 0; j < dim; j++) sq += (vectors[base + j] as number) ** 2;
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let j = 0; j < dim; j++) out[base + j] = (vectors[base + j] as number) * inv;
  }
  return out;
}

export function checkK(k: number, count: number): number {
  if (!Number.isSafeInteger(k) || k < 1) throw new SearchInvalidOptionError('k', `expected a positive integer, got ${String(k)}`);
  return Math.min(k, count);
}

/** Throws naming the first NaN or infinite value (cosine similarity is undefined for it). */
export function checkFinite(values: Float32Array, dim: number, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v - v !== 0) throw new SearchInvalidOptionError(what, `row ${Math.floor(i / dim)}, value ${i % dim} is ${v}`);
  }
}

export function checkQuery(query: Float32Array, dim: number): void {
  if (!(query instanceof Float32Array)) throw new SearchInvalidOptionError('query', 'expected a Float32Array');
  if (query.length !== dim) throw new SearchDimensionMismatchError(query.length, dim);
  checkFinite(query, dim, 'query');
}

/** Brute force over unit vectors: exact, O(count x dim) per query. Ties go to the lower id. */
export class ExactIndex implements SimilarityIndex {
  readonly kind = 'exact';
  readonly count: number;
  readonly dim: number;
  private readonly unit: Float32Array;

  constructor(vectors: Float32Array, count: number, dim: number) {
    if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(dim) || dim < 1 || vectors.length !== count * dim) {
      throw new SearchInvalidOptionError('vectors', `expected count x dim values, got ${vectors.length} for ${count} x ${dim}`);
    }
    checkFinite(vectors, dim, 'vectors');
    this.count = count;
    this.dim = dim;
    this.unit = normalizeRows(vectors, count, dim);
  }

  search(query: Float32Array, k: number): Neighbours {
    checkQuery(query, this.dim);
    const n = checkK(k, this.count);
    const q = normalizeRows(query, 1, this.dim);
    const ids = new Int32Array(n).fill(-1);
    const scores = new Float32Array(n).fill(-Infinity);
    const { unit, dim } = this;
    for (let r = 0; r < this.count; r++) {
      const base = r * dim;
      let s = 0;
      for (let j = 0; j < dim; j++) s += (unit[base + j] as number) * (q[j] as number);
      if (s <= (scores[n - 1] as number)) continue;
      // Insertion into the sorted top-n (n is small: k).
      let at = n - 1;
      while (at > 0 && s > (scores[at - 1] as number)) {
        scores[at] = scores[at - 1] as number;
        ids[at] = ids[at - 1] as number;
        at--;
      }
      scores[at] = s;
      ids[at] = r;
    }
    return { ids, scores };
  }
}

/** Mean over queries of |approximate top-k ∩ exact top-k| / k. */
export function recallAtK(approximate: readonly Neighbours[], exact: readonly Neighbours[], k: number): number {
  if (approximate.length !== exact.length || approximate.length === 0) {
    throw new SearchInvalidOptionError('recall', `needs as many approximate as exact results, got ${approximate.length} and ${exact.length}`);
  }
  let sum = 0;
  approximate.forEach((a, i) => {
    const truth = new Set(Array.from((exact[i] as Neighbours).ids.subarray(0, k)));
    let hits = 0;
    for (const id of a.ids.subarray(0, k)) if (truth.has(id)) hits++;
    sum += hits / Math.min(k, truth.size);
  });
  return sum / approximate.length;
}
