// Margin contrastive loss on pairs (Hadsell, Chopra & LeCun 2006, "Dimensionality Reduction by
// Learning an Invariant Mapping").
import * as tf from '@tensorflow/tfjs-core';
import { InvalidLabelsError } from '../errors.js';
import { checkEmbeddings, checkNonNegative, checkSameShape, l2Normalize, safeSqrt } from './common.js';

export interface MarginContrastiveOptions {
  /** Margin m >= 0: dissimilar pairs closer than m are pushed apart. Default 1.0. */
  margin?: number;
  /** L2-normalise x1 and x2 first (then distances are in [0, 2]). Default false. */
  normalize?: boolean;
}

/**
 * Pair loss, with d_i = ||x1_i - x2_i|| (euclidean) and y_i = 1 for a similar pair, 0 for a
 * dissimilar one:
 *
 *   loss = 1/N * sum_i [ y_i * d_i^2 + (1 - y_i) * max(0, m - d_i)^2 ]
 *
 * Factor: no 1/2. Hadsell et al. write (1/2) d^2 and (1/2) max(0, m - d)^2 (and use Y = 0 for
 * similar pairs); this is twice theirs, the mean over pairs. y is a float32 tensor [N] or
 * numbers; array values are checked to be 0 or 1 (a tensor's values are not read; values in
 * between interpolate the two terms). The similar term uses d^2 directly (no sqrt), and the
 * dissimilar term a sqrt with zero gradient at d = 0, so identical pairs give finite gradients.
 */
export function marginContrastiveLoss(
  x1: tf.Tensor2D,
  x2: tf.Tensor2D,
  y: tf.Tensor1D | ArrayLike<number>,
  options: MarginContrastiveOptions = {},
): tf.Scalar {
  const margin = options.margin ?? 1.0;
  const normalize = options.normalize ?? false;
  checkEmbeddings(x1, 'x1');
  checkEmbeddings(x2, 'x2');
  checkSameShape(x1, 'x1', x2, 'x2');
  checkNonNegative(margin, 'margin');
  const n = x1.shape[0];
  let flags: tf.Tensor1D | Float32Array;
  if (y instanceof tf.Tensor) {
    if (y.rank !== 1 || y.shape[0] !== n) throw new InvalidLabelsError('y', `expected shape [${n}], got [${y.shape.join(', ')}]`);
    if (y.dtype !== 'float32' && y.dtype !== 'int32' && y.dtype !== 'bool') {
      throw new InvalidLabelsError('y', `expected dtype float32, int32 or bool, got ${y.dtype}`);
    }
    flags = y;
  } else {
    if (y === null || typeof y !== 'object' || typeof y.length !== 'number') {
      throw new InvalidLabelsError('y', 'expected a tf.Tensor1D or an array of 0/1 flags');
    }
    if (y.length !== n) throw new InvalidLabelsError('y', `expected ${n} flags, got ${y.length}`);
    flags = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const v = y[i];
      if (v !== 0 && v !== 1) throw new InvalidLabelsError('y', `flag ${i} must be 0 or 1, got ${String(v)}`);
      flags[i] = v;
    }
  }
  return tf.tidy(() => {
    const a = normalize ? l2Normalize(x1) : x1;
    const b = normalize ? l2Normalize(x2) : x2;
    const yt = flags instanceof tf.Tensor ? tf.cast(flags, 'float32') : tf.tensor1d(flags, 'float32');
    const d2 = tf.sum(tf.square(tf.sub(a, b)), 1); // [N]
    const d = safeSqrt(d2);
    const similar = tf.mul(yt, d2);
    const dissimilar = tf.mul(tf.sub(1, yt), tf.square(tf.relu(tf.sub(margin, d))));
    return tf.mean(tf.add(similar, dissimilar)) as tf.Scalar;
  });
}
