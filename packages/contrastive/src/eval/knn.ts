// Weighted k-nearest-neighbour classifier on cosine similarity, the monitor of instance
// discrimination (Wu et al. 2018, "Unsupervised Feature Learning via Non-Parametric Instance
// Discrimination", sec. 3.4): features are L2-normalised, the k most similar train examples
// vote with weight exp(sim / T), and the class with the largest total wins.
// Defaults: k = 20, T = 0.07, the protocol of DINO (Caron et al. 2021) and solo-learn; Wu et al.
// (and the MoCo/SimCLR-style kNN monitors derived from them) used k = 200 with the same T. Both
// can be had in one pass through `extraK: [200]`, which reuses the same neighbour lists. On
// Fashion-MNIST raw pixels k = 20 scores 0.846 and k = 200 0.791: with 6000 examples per class
// and similarities that T = 0.07 weights almost uniformly, 200 neighbours reach into other classes.
//
// Cost: one [chunk, d] x [d, n] product per chunk of test rows (the normalised train matrix is
// laid out as [d, n] once, so every product is plain) and a bounded heap per row in JS.
// Ties: equal similarities rank the lower train index first; equal votes pick the lower class.
import * as tf from '@tensorflow/tfjs-core';
import { EvalInvalidOptionError } from './errors.js';
import { checkAborted, ensureBackend, readAndDispose, validateSplits, yieldToEventLoop, type FeatureSet, type ValidatedSplits } from './features.js';

export const DEFAULT_KNN_K = 20;
export const DEFAULT_KNN_TEMPERATURE = 0.07;

export type KnnWeighting = 'exponential' | 'majority';

export interface KnnOptions {
  /** Neighbours; clamped to the train size. Default 20. */
  readonly k?: number;
  /** Further k values scored from the same neighbour lists (e.g. [20]). */
  readonly extraK?: readonly number[];
  /** Temperature of the exp(sim / T) weights. Default 0.07. */
  readonly temperature?: number;
  /** 'exponential' (default, Wu et al.) or 'majority' (one vote per neighbour). */
  readonly weighting?: KnnWeighting;
  /** Test rows per similarity product; default: as many as keep a chunk at ~4M similarities (16 MB). */
  readonly chunkRows?: number;
  /** Number of classes; default: largest label in either split + 1. */
  readonly numClasses?: number;
  readonly signal?: AbortSignal;
}

export interface KnnResult {
  /** Test accuracy at `k`. */
  readonly accuracy: number;
  /** The k used (after clamping to the train size). */
  readonly k: number;
  /** Accuracy for k and every extraK (clamped, deduplicated, ascending). */
  readonly accuracyByK: readonly { readonly k: number; readonly accuracy: number }[];
  readonly temperature: number;
  readonly weighting: KnnWeighting;
  /** Predicted class per test example at `k`. */
  readonly predictions: Int32Array;
  readonly numClasses: number;
  readonly trainCount: number;
  readonly testCount: number;
  readonly chunkRows: number;
  readonly timeMs: number;
}

/**
 * Similarities held per chunk when chunkRows is not given: 4M floats = 16 MB. Measured on wasm:
 * the matrix product runs as fast with 64 rows as with 1024, but reading back a chunk beyond
 * ~20 MB costs up to 8x more per byte (fresh large ArrayBuffers), so chunks stay small.
 */
const CHUNK_BUDGET = 1 << 22;

/** Row-wise L2 normalisation of rows [start, start + m) into `out` (zero rows stay zero). */
function normalizeRows(x: Float32Array, start: number, m: number, d: number, out: Float32Array): void {
  for (let r = 0; r < m; r++) {
    const base = (start + r) * d;
    let s = 0;
    for (let j = 0; j < d; j++) {
      const v = x[base + j] as number;
      s += v * v;
    }
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    const o = r * d;
    for (let j = 0; j < d; j++) out[o + j] = (x[base + j] as number) * inv;
  }
}

/** The normalised train matrix laid out as [d, n] (blocked transpose). */
function normalizedTransposed(x: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(d * n);
  const BLOCK = 64;
  const rows = new Float32Array(BLOCK * d);
  for (let r0 = 0; r0 < n; r0 += BLOCK) {
    const m = Math.min(BLOCK, n - r0);
    normalizeRows(x, r0, m, d, rows);
    for (let j = 0; j < d; j++) {
      const o = j * n + r0;
      for (let r = 0; r < m; r++) out[o + r] = rows[r * d + j] as number;
    }
  }
  return out;
}

/**
 * Selects the `kMax` largest values of row `sims[off .. off + n)` into (topS, topI), sorted best
 * first (similarity descending, index ascending). Min-heap on (similarity, -index) while scanning.
 */
function topK(sims: Float32Array, off: number, n: number, kMax: number, topS: Float64Array, topI: Int32Array): void {
  // Worse(a, b): a ranks after b.
  const worse = (sa: number, ia: number, sb: number, ib: number): boolean => sa < sb || (sa === sb && ia > ib);
  const siftDown = (pos: number, size: number): void => {
    const s = topS[pos] as number;
    const i = topI[pos] as number;
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= size) break;
      const right = child + 1;
      if (right < size && worse(topS[right] as number, topI[right] as number, topS[child] as number, topI[child] as number)) child = right;
      if (!worse(topS[child] as number, topI[child] as number, s, i)) break;
      topS[pos] = topS[child] as number;
      topI[pos] = topI[child] as number;
      pos = child;
    }
    topS[pos] = s;
    topI[pos] = i;
  };
  for (let j = 0; j < kMax; j++) {
    topS[j] = sims[off + j] as number;
    topI[j] = j;
  }
  for (let p = (kMax >> 1) - 1; p >= 0; p--) siftDown(p, kMax);
  let threshold = topS[0] as number;
  for (let j = kMax; j < n; j++) {
    const s = sims[off + j] as number;
    // Later indices lose ties, so only a strictly larger similarity enters.
    if (s > threshold) {
      topS[0] = s;
      topI[0] = j;
      siftDown(0, kMax);
      threshold = topS[0] as number;
    }
  }
  // Heap sort in place: repeatedly move the worst to the end -> best-first order.
  for (let size = kMax - 1; size > 0; size--) {
    const s = topS[0] as number;
    const i = topI[0] as number;
    topS[0] = topS[size] as number;
    topI[0] = topI[size] as number;
    topS[size] = s;
    topI[size] = i;
    siftDown(0, size);
  }
}

function resolveK(k: number | undefined, extra: readonly number[] | undefined, n: number): { k: number; ks: number[] } {
  const checkK = (v: unknown, name: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new EvalInvalidOptionError(name, `expected an integer >= 1, got ${String(v)}`);
    return Math.min(v, n);
  };
  const main = checkK(k ?? DEFAULT_KNN_K, 'knn.k');
  if (extra !== undefined && !Array.isArray(extra)) throw new EvalInvalidOptionError('knn.extraK', 'expected an array of integers >= 1');
  const all = new Set<number>([main, ...(extra ?? []).map((e) => checkK(e, 'knn.extraK'))]);
  return { k: main, ks: [...all].sort((a, b) => a - b) };
}

/** Runs the kNN on already validated splits (used by evaluateRepresentation). */
export async function knnValidated(train: FeatureSet, test: FeatureSet, v: ValidatedSplits, options: KnnOptions): Promise<KnnResult> {
  const { trainCount: n, testCount: nTest, dim: d, numClasses: C } = v;
  const { k, ks } = resolveK(options.k, options.extraK, n);
  const temperature = options.temperature ?? DEFAULT_KNN_TEMPERATURE;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature <= 0) {
    throw new EvalInvalidOptionError('knn.temperature', `expected a finite number > 0, got ${String(temperature)}`);
  }
  const weighting = options.weighting ?? 'exponential';
  if (weighting !== 'exponential' && weighting !== 'majority') {
    throw new EvalInvalidOptionError('knn.weighting', `expected 'exponential' or 'majority', got ${String(weighting)}`);
  }
  let chunkRows: number;
  if (options.chunkRows === undefined) chunkRows = Math.max(1, Math.min(nTest, Math.floor(CHUNK_BUDGET / n)));
  else {
    const c = options.chunkRows;
    if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 1) throw new EvalInvalidOptionError('knn.chunkRows', `expected an integer >= 1, got ${String(c)}`);
    chunkRows = Math.min(c, nTest);
  }
  await ensureBackend();
  const started = performance.now();

  const kMax = ks[ks.length - 1] as number;
  const kIndex = new Map(ks.map((kk, i) => [kk, i]));
  const predsByK = ks.map(() => new Int32Array(nTest));
  const topS = new Float64Array(kMax);
  const topI = new Int32Array(kMax);
  const votes = new Float64Array(C);
  const queries = new Float32Array(chunkRows * d);
  const trainT = tf.tensor2d(normalizedTransposed(train.features, n, d), [d, n]);
  try {
    for (let start = 0; start < nTest; start += chunkRows) {
      checkAborted(options.signal);
      const m = Math.min(chunkRows, nTest - start);
      normalizeRows(test.features, start, m, d, queries);
      const sims = readAndDispose(tf.tidy(() => tf.matMul(tf.tensor2d(queries.subarray(0, m * d), [m, d]), trainT)));
      for (let r = 0; r < m; r++) {
        topK(sims, r * n, n, kMax, topS, topI);
        votes.fill(0);
        const sBest = topS[0] as number;
        let next = 0; // position in ks of the next k to read off
        for (let j = 0; j < kMax; j++) {
          const w = weighting === 'exponential' ? Math.exp(((topS[j] as number) - sBest) / temperature) : 1;
          const y = v.trainLabels[topI[j] as number] as number;
          votes[y] = (votes[y] as number) + w;
          if (j + 1 === ks[next]) {
            let best = 0;
            for (let c = 1; c < C; c++) if ((votes[c] as number) > (votes[best] as number)) best = c;
            (predsByK[next] as Int32Array)[start + r] = best;
            next++;
          }
        }
      }
      await yieldToEventLoop();
    }
  } finally {
    trainT.dispose();
  }
  const accuracyByK = ks.map((kk, i) => {
    const p = predsByK[i] as Int32Array;
    let hits = 0;
    for (let t = 0; t < nTest; t++) if (p[t] === v.testLabels[t]) hits++;
    return { k: kk, accuracy: hits / nTest };
  });
  const main = kIndex.get(k) as number;
  return {
    accuracy: (accuracyByK[main] as { accuracy: number }).accuracy,
    k,
    accuracyByK,
    temperature,
    weighting,
    predictions: predsByK[main] as Int32Array,
    numClasses: C,
    trainCount: n,
    testCount: nTest,
    chunkRows,
    timeMs: performance.now() - started,
  };
}

/** Weighted kNN accuracy of `test` against `train` on cosine similarity. Validates both splits first. */
export async function knn(train: FeatureSet, test: FeatureSet, options: KnnOptions = {}): Promise<KnnResult> {
  const v = validateSplits(train, test, options.numClasses);
  return knnValidated(train, test, v, options);
}
