// Feature sets for evaluation: the input type, its validation, and helpers that build feature
// matrices (raw pixels, batched extraction through an embedding function), plus the small
// shared numeric helpers of the probe and the kNN (standardisation, L2 normalisation, accuracy).
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend, initBackend } from '@fedclr/tensor';
import {
  EvalDimensionMismatchError,
  EvalEmbedOutputError,
  EvalInvalidFeaturesError,
  EvalInvalidLabelsError,
  EvalInvalidOptionError,
  EvalNonFiniteFeatureError,
  EvalTooFewExamplesError,
} from './errors.js';

/** Class labels, one per example: integers in [0, numClasses). */
export type LabelArray = Uint8Array | Uint16Array | Int32Array | Uint32Array | readonly number[];

/**
 * A labelled feature matrix: `features` is row-major [count, dim] with count = labels.length.
 * Features are frozen: evaluation never writes into them.
 */
export interface FeatureSet {
  readonly features: Float32Array;
  readonly labels: LabelArray;
  readonly dim: number;
}

/** Validation outcome shared by the probe and the kNN. */
export interface ValidatedSplits {
  readonly numClasses: number;
  readonly trainCount: number;
  readonly testCount: number;
  readonly dim: number;
  readonly trainLabels: Int32Array;
  readonly testLabels: Int32Array;
}

function checkFeatureSet(set: FeatureSet, split: string): number {
  if (set === null || typeof set !== 'object') throw new EvalInvalidFeaturesError(split, 'expected an object {features, labels, dim}');
  if (!(set.features instanceof Float32Array)) throw new EvalInvalidFeaturesError(split, 'features must be a Float32Array');
  const labels: unknown = set.labels;
  if (!ArrayBuffer.isView(labels) && !Array.isArray(labels)) {
    throw new EvalInvalidFeaturesError(split, 'labels must be a Uint8Array, Int32Array or array of integers');
  }
  const { dim } = set;
  if (!Number.isSafeInteger(dim) || dim < 1) throw new EvalInvalidFeaturesError(split, `dim must be a positive integer, got ${String(dim)}`);
  const count = set.labels.length;
  if (count < 1) throw new EvalInvalidFeaturesError(split, 'no examples (labels is empty)');
  if (set.features.length !== count * dim) {
    throw new EvalInvalidFeaturesError(
      split,
      `features has ${set.features.length} values but labels.length * dim = ${count} * ${dim} = ${count * dim}`,
    );
  }
  return count;
}

function checkFinite(set: FeatureSet, split: string): void {
  const x = set.features;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    // v - v is NaN exactly for NaN and +-Infinity; one subtraction per value keeps this cheap.
    if (v - v !== 0) throw new EvalNonFiniteFeatureError(split, Math.floor(i / set.dim), i % set.dim, String(v));
  }
}

function toIntLabels(labels: LabelArray, split: string): Int32Array {
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    if (!Number.isInteger(y) || y < 0 || y > 0x7fffffff) {
      throw new EvalInvalidLabelsError(split, `label ${i} is ${String(y)}; labels must be non-negative integers`);
    }
    out[i] = y;
  }
  return out;
}

function maxOf(xs: Int32Array): number {
  let m = -1;
  for (let i = 0; i < xs.length; i++) if ((xs[i] as number) > m) m = xs[i] as number;
  return m;
}

/**
 * Checks both splits (shapes, finiteness, labels) and settles the number of classes: the given
 * `numClasses`, or one more than the largest label seen in either split.
 */
export function validateSplits(train: FeatureSet, test: FeatureSet, numClasses?: number): ValidatedSplits {
  const trainCount = checkFeatureSet(train, 'train');
  const testCount = checkFeatureSet(test, 'test');
  if (train.dim !== test.dim) throw new EvalDimensionMismatchError(train.dim, test.dim);
  checkFinite(train, 'train');
  checkFinite(test, 'test');
  const trainLabels = toIntLabels(train.labels, 'train');
  const testLabels = toIntLabels(test.labels, 'test');
  let classes: number;
  if (numClasses === undefined) {
    classes = Math.max(maxOf(trainLabels), maxOf(testLabels)) + 1;
    if (classes < 2) throw new EvalInvalidLabelsError('train', 'all labels are 0; evaluation needs at least 2 classes');
  } else {
    if (!Number.isSafeInteger(numClasses) || numClasses < 2) {
      throw new EvalInvalidOptionError('numClasses', `expected an integer >= 2, got ${String(numClasses)}`);
    }
    classes = numClasses;
    for (const [split, labels] of [['train', trainLabels], ['test', testLabels]] as const) {
      const m = maxOf(labels);
      if (m >= classes) throw new EvalInvalidLabelsError(split, `label ${m} is outside 0..${classes - 1} (numClasses = ${classes})`);
    }
  }
  if (trainCount < classes) throw new EvalTooFewExamplesError(trainCount, classes);
  return { numClasses: classes, trainCount, testCount, dim: train.dim, trainLabels, testLabels };
}

/**
 * Raw pixels as features: bytes 0..255 scaled to [0, 1], one row of `pixelsPerImage` values per
 * image (the pixel baseline every representation is read against).
 */
export function rawPixelFeatures(images: Uint8Array, count: number, pixelsPerImage: number): Float32Array {
  if (!(images instanceof Uint8Array)) throw new EvalInvalidOptionError('images', 'expected a Uint8Array');
  if (!Number.isSafeInteger(count) || count < 0) throw new EvalInvalidOptionError('count', `expected a non-negative integer, got ${String(count)}`);
  if (!Number.isSafeInteger(pixelsPerImage) || pixelsPerImage < 1) {
    throw new EvalInvalidOptionError('pixelsPerImage', `expected a positive integer, got ${String(pixelsPerImage)}`);
  }
  const size = count * pixelsPerImage;
  if (images.length < size) {
    throw new EvalInvalidOptionError('images', `holds ${images.length} bytes, fewer than count * pixelsPerImage = ${size}`);
  }
  const out = new Float32Array(size);
  const scale = 1 / 255;
  for (let i = 0; i < size; i++) out[i] = (images[i] as number) * scale;
  return out;
}

/** Maps a batch of images (row-major, [count, pixels]) to its embeddings ([count, dim]). */
export type EmbedFunction = (batch: Float32Array, count: number) => Float32Array | Promise<Float32Array>;

export interface ExtractedFeatures {
  /** Row-major [count, dim]. */
  readonly features: Float32Array;
  readonly dim: number;
}

/**
 * Runs `embed` over `count` images in batches of `batchSize` and concatenates the embeddings.
 * Uint8Array images are scaled to [0, 1] per batch (x / 255, like `toFloat32` of @fedclr/data);
 * Float32Array images are passed through as views, without a copy. The embedding dimension is
 * read from the first batch and checked on every later one. Batches run one after another, so
 * `embed` may reuse its buffers, but it must not keep the `batch` array it was given (a Uint8
 * input's batch buffer is reused).
 */
export async function extractFeatures(
  embed: EmbedFunction,
  images: Uint8Array | Float32Array,
  count: number,
  batchSize = 256,
): Promise<ExtractedFeatures> {
  if (typeof embed !== 'function') throw new EvalInvalidOptionError('embed', 'expected a function');
  if (!(images instanceof Uint8Array) && !(images instanceof Float32Array)) {
    throw new EvalInvalidOptionError('images', 'expected a Uint8Array or Float32Array');
  }
  if (!Number.isSafeInteger(count) || count < 1) throw new EvalInvalidOptionError('count', `expected a positive integer, got ${String(count)}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new EvalInvalidOptionError('batchSize', `expected a positive integer, got ${String(batchSize)}`);
  }
  if (images.length % count !== 0 || images.length === 0) {
    throw new EvalInvalidOptionError('images', `length ${images.length} is not a positive multiple of count ${count}`);
  }
  const pixels = images.length / count;
  const scratch = images instanceof Uint8Array ? new Float32Array(Math.min(batchSize, count) * pixels) : null;
  let out: Float32Array | null = null;
  let dim = 0;
  for (let start = 0; start < count; start += batchSize) {
    const m = Math.min(batchSize, count - start);
    let batch: Float32Array;
    if (scratch !== null) {
      batch = scratch.subarray(0, m * pixels);
      const src = (images as Uint8Array).subarray(start * pixels, (start + m) * pixels);
      for (let i = 0; i < src.length; i++) batch[i] = (src[i] as number) / 255;
    } else {
      batch = (images as Float32Array).subarray(start * pixels, (start + m) * pixels);
    }
    const emb: unknown = await embed(batch, m);
    if (!(emb instanceof Float32Array)) throw new EvalEmbedOutputError(`batch at ${start}: expected a Float32Array`);
    if (out === null) {
      if (emb.length === 0 || emb.length % m !== 0) {
        throw new EvalEmbedOutputError(`batch at ${start}: ${emb.length} values is not a positive multiple of the batch size ${m}`);
      }
      dim = emb.length / m;
      out = new Float32Array(count * dim);
    } else if (emb.length !== m * dim) {
      throw new EvalEmbedOutputError(`batch at ${start}: ${emb.length} values, expected ${m} x ${dim} = ${m * dim}`);
    }
    out.set(emb, start * dim);
  }
  if (out === null) throw new EvalEmbedOutputError('no batch was embedded');
  return { features: out, dim };
}

/** Per-feature mean and standard deviation (population), from the TRAIN split only. */
export interface Standardizer {
  readonly mean: Float64Array;
  /** Standard deviation; features with zero variance keep std 1 (they become constant 0). */
  readonly std: Float64Array;
}

/** Mean and std of each column of a [count, dim] matrix, accumulated in float64 (two passes). */
export function fitStandardizer(features: Float32Array, count: number, dim: number, rows?: Int32Array): Standardizer {
  const n = rows === undefined ? count : rows.length;
  const mean = new Float64Array(dim);
  const m2 = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    const base = (rows === undefined ? r : (rows[r] as number)) * dim;
    for (let j = 0; j < dim; j++) mean[j] = (mean[j] as number) + (features[base + j] as number);
  }
  for (let j = 0; j < dim; j++) mean[j] = (mean[j] as number) / n;
  for (let r = 0; r < n; r++) {
    const base = (rows === undefined ? r : (rows[r] as number)) * dim;
    for (let j = 0; j < dim; j++) {
      const c = (features[base + j] as number) - (mean[j] as number);
      m2[j] = (m2[j] as number) + c * c;
    }
  }
  const std = new Float64Array(dim);
  for (let j = 0; j < dim; j++) {
    const s = Math.sqrt((m2[j] as number) / n);
    // A constant feature (0 variance, e.g. an always-black border pixel) carries no information:
    // keep it at 0 after centring instead of dividing by 0. Relative threshold against the mean
    // so that float64 rounding of a constant column does not blow it up.
    std[j] = s > 1e-12 * Math.max(1, Math.abs(mean[j] as number)) ? s : 1;
  }
  return { mean, std };
}

/**
 * Writes the standardised rows `rows` (or all) of `features` into a new [n, dim + 1] float32
 * matrix whose last column is 1 (the bias input of the probe).
 */
export function standardizeWithBias(
  features: Float32Array,
  count: number,
  dim: number,
  st: Standardizer,
  rows?: Int32Array,
): Float32Array {
  const n = rows === undefined ? count : rows.length;
  const w = dim + 1;
  const out = new Float32Array(n * w);
  const inv = new Float64Array(dim);
  for (let j = 0; j < dim; j++) inv[j] = 1 / (st.std[j] as number);
  for (let r = 0; r < n; r++) {
    const src = (rows === undefined ? r : (rows[r] as number)) * dim;
    const dst = r * w;
    for (let j = 0; j < dim; j++) out[dst + j] = ((features[src + j] as number) - (st.mean[j] as number)) * (inv[j] as number);
    out[dst + dim] = 1;
  }
  return out;
}

/** Fraction of positions where `predictions` equals `labels`. */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (predictions.length !== labels.length || labels.length === 0) {
    throw new EvalInvalidOptionError('predictions', `length ${predictions.length} differs from labels length ${labels.length} or is 0`);
  }
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) hits++;
  return hits / labels.length;
}

/** Confusion counts, row-major [numClasses (true), numClasses (predicted)]. */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, numClasses: number): Int32Array {
  if (predictions.length !== labels.length) {
    throw new EvalInvalidOptionError('predictions', `length ${predictions.length} differs from labels length ${labels.length}`);
  }
  const out = new Int32Array(numClasses * numClasses);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    const p = predictions[i] as number;
    if (y >= 0 && y < numClasses && p >= 0 && p < numClasses) out[y * numClasses + p] = (out[y * numClasses + p] as number) + 1;
  }
  return out;
}

/**
 * Makes sure tfjs has a backend. If nobody chose one (neither `initBackend` of @fedclr/tensor nor
 * `tf.setBackend`), starts the fastest available through `initBackend` (honours FEDCLR_BACKEND).
 */
export async function ensureBackend(): Promise<void> {
  if (currentBackend() !== undefined) return;
  // tfjs keeps the active backend in a private field; reading it does not trigger initialisation.
  const engine = tf.engine() as unknown as { backendInstance?: unknown };
  if (engine.backendInstance !== null && engine.backendInstance !== undefined) return;
  await initBackend();
}

/**
 * Reads a float32 tensor into JS and disposes it. (Never return a typed array from tf.tidy: tidy
 * walks the returned value looking for tensors, one property per element, which costs about a
 * second for a million values.)
 */
export function readAndDispose(t: tf.Tensor): Float32Array {
  try {
    return t.dataSync() as Float32Array;
  } finally {
    t.dispose();
  }
}

/** Lets the event loop run (timers, sockets) between heavy synchronous steps. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Throws the signal's reason if it was aborted. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) signal.throwIfAborted();
}
