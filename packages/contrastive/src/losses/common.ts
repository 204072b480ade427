// Shared helpers of the contrastive losses: input validation, L2 normalisation, label masks and
// pairwise distances.
//
// Autodiff note. tfjs has no gradient for the comparison kernels Greater, Less, Equal and
// LogicalNot, and its tape refuses to backpropagate through any op that lies between an input
// and the loss, even one that only builds a boolean mask. So masks that depend on the
// embeddings are built with `tf.step` (whose gradient is zero) and applied arithmetically
// (`a * m + b * (1 - m)`, exact for m in {0, 1}), never with `tf.where` on a comparison of the
// embeddings. Masks built from labels alone may use `tf.equal`: labels are not on the path
// from the embeddings to the loss.
import * as tf from '@tensorflow/tfjs-core';
import { InvalidLabelsError, InvalidOptionError, ShapeError } from '../errors.js';

/** Class labels: an int32 (or float32 holding integers) tensor [N], or plain integers. */
export type LabelsLike = tf.Tensor1D | ArrayLike<number>;

/**
 * Added to logits that must not take part in a softmax (self-similarities). Finite, so that
 * `0 * mask` stays 0 (no `-Infinity * 0 = NaN`), and large enough that `exp(logit - max)` is
 * exactly 0 in float32 for any logit of a sane temperature.
 */
export const LOGIT_MASK_VALUE = -1e9;

/** Stands for "+infinity" in masked minimum searches over distances. */
export const DISTANCE_MASK_VALUE = 1e9;

/** Throws unless `t` is a float32 tensor of rank 2 with at least one row and one column. */
export function checkEmbeddings(t: tf.Tensor, name: string): asserts t is tf.Tensor2D {
  if (!(t instanceof tf.Tensor)) throw new ShapeError(name, 'expected a tf.Tensor');
  if (t.rank !== 2) throw new ShapeError(name, `expected rank 2 [N, D], got shape [${t.shape.join(', ')}]`);
  if (t.dtype !== 'float32') throw new ShapeError(name, `expected dtype float32, got ${t.dtype}`);
  const [n, d] = t.shape as [number, number];
  if (n < 1 || d < 1) throw new ShapeError(name, `expected N >= 1 and D >= 1, got [${n}, ${d}]`);
}

/** Throws unless `a` and `b` have identical shapes. */
export function checkSameShape(a: tf.Tensor, nameA: string, b: tf.Tensor, nameB: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((s, i) => s !== b.shape[i])) {
    throw new ShapeError(nameB, `shape [${b.shape.join(', ')}] differs from ${nameA} [${a.shape.join(', ')}]`);
  }
}

/** Throws unless `value` is a finite number > 0. */
export function checkPositive(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(name, `expected a finite number > 0, got ${String(value)}`);
  }
}

/** Throws unless `value` is a finite number >= 0. */
export function checkNonNegative(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionError(name, `expected a finite number >= 0, got ${String(value)}`);
  }
}

/** Throws unless `value` is one of `allowed`. */
export function checkOneOf<T extends string>(value: T, allowed: readonly T[], name: string): void {
  if (!allowed.includes(value)) {
    throw new InvalidOptionError(name, `expected one of ${allowed.join(', ')}, got ${String(value)}`);
  }
}

/**
 * Validates labels against a batch of `n` rows. A tensor is returned as is (shape and dtype
 * checked; its values are not read, to avoid a device sync); plain numbers are checked to be
 * 32-bit integers and copied into an Int32Array. Pass the result to `labelsTensor` inside a
 * tf.tidy.
 */
export function checkLabels(labels: LabelsLike, n: number, name: string): tf.Tensor1D | Int32Array {
  if (labels instanceof tf.Tensor) {
    if (labels.rank !== 1 || labels.shape[0] !== n) {
      throw new InvalidLabelsError(name, `expected shape [${n}], got [${labels.shape.join(', ')}]`);
    }
    if (labels.dtype !== 'int32' && labels.dtype !== 'float32') {
      throw new InvalidLabelsError(name, `expected dtype int32 or float32, got ${labels.dtype}`);
    }
    return labels;
  }
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
    throw new InvalidLabelsError(name, 'expected a tf.Tensor1D or an array of integers');
  }
  if (labels.length !== n) throw new InvalidLabelsError(name, `expected ${n} labels, got ${labels.length}`);
  const values = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = labels[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > 2 ** 31 - 1) {
      throw new InvalidLabelsError(name, `label ${i} is not a 32-bit integer: ${String(v)}`);
    }
    values[i] = v;
  }
  return values;
}

/** The tensor form of checked labels (uploads an Int32Array; call inside a tf.tidy). */
export function labelsTensor(labels: tf.Tensor1D | Int32Array): tf.Tensor1D {
  return labels instanceof tf.Tensor ? labels : tf.tensor1d(labels, 'int32');
}

/** float32 [N, M] with 1 where labels a_i === b_j, else 0 (labels only: safe for autodiff). */
export function sameLabelMask(a: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.cast(tf.equal(tf.expandDims(a, 1), tf.expandDims(b, 0)), 'float32') as tf.Tensor2D;
}

/**
 * Row-wise L2 normalisation x / max(||x||, eps), eps = 1e-12 as in torch's F.normalize, so a
 * zero row stays zero instead of becoming NaN.
 */
export function l2Normalize<T extends tf.Tensor>(x: T, axis = -1): T {
  return tf.tidy(() => {
    const sumSq = tf.sum(tf.square(x), axis, true);
    return tf.mul(x, tf.rsqrt(tf.maximum(sumSq, 1e-24))) as T;
  });
}

/**
 * sqrt with a zero (not infinite, not NaN) gradient at 0: for d2 > 0 it is exactly sqrt(d2);
 * at d2 <= 0 it is 0. Used for euclidean distances, whose true gradient at 0 is undefined.
 */
export function safeSqrt<T extends tf.Tensor>(d2: T): T {
  return tf.tidy(() => {
    const positive = tf.step(d2); // 1 where d2 > 0, else 0; zero gradient.
    const safe = tf.add(tf.mul(d2, positive), tf.sub(1, positive)); // d2 where positive, else 1.
    return tf.mul(tf.sqrt(safe), positive) as T;
  });
}

/**
 * Pairwise distances between the rows of x [N, D]: [N, N], squared euclidean or euclidean.
 * Uses ||a||^2 - 2 a.b + ||b||^2 (one matmul), clamps the float error below 0 and sets the
 * diagonal to exactly 0.
 */
export function pairwiseDistances(x: tf.Tensor2D, squared: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    const n = x.shape[0];
    const sq = tf.sum(tf.square(x), 1); // [N]
    const dot = tf.matMul(x, x, false, true); // [N, N]
    const d2raw = tf.add(tf.sub(tf.expandDims(sq, 1), tf.mul(dot, 2)), tf.expandDims(sq, 0));
    const offDiagonal = tf.sub(1, tf.eye(n));
    const d2 = tf.mul(tf.relu(d2raw), offDiagonal) as tf.Tensor2D;
    return squared ? d2 : safeSqrt(d2);
  });
}
