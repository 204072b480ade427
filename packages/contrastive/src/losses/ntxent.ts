// NT-Xent (SimCLR, Chen et al. 2020) and InfoNCE against an explicit set of negatives (MoCo,
// He et al. 2020; van den Oord et al. 2018).
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';
import { checkEmbeddings, checkPositive, checkSameShape, l2Normalize, LOGIT_MASK_VALUE } from './common.js';

export interface NtXentOptions {
  /** Softmax temperature tau > 0. Default 0.5 (SimCLR's CIFAR-10 setting; 0.1 for ImageNet). */
  temperature?: number;
  /** L2-normalise the rows first, so logits are cosine similarities / tau. Default true. */
  normalize?: boolean;
  /**
   * Decoupled contrastive loss (DCL, Yeh et al. 2022): the positive is left out of the
   * log-sum-exp, which removes the negative-positive coupling that slows small-batch and short
   * training. Default false (plain NT-Xent).
   */
  decoupled?: boolean;
}

/**
 * Symmetric NT-Xent loss of two views z1, z2 [N, D] (row i of z1 and row i of z2 come from the
 * same image).
 *
 * The 2N rows z = [z1; z2] are all anchors. Anchor k's positive is its other view; its
 * negatives are the other 2N - 2 rows. With s_kj = <z_k, z_j> / tau (after L2 normalisation):
 *
 *   loss = 1/(2N) * sum_k [ -s_k,pos(k) + log sum_{j != k} exp(s_kj) ]
 *
 * (decoupled: the sum runs over the 2N - 2 negatives only, j != k, pos(k)).
 * The self-similarity s_kk is excluded by adding a large finite negative before a stable
 * log-sum-exp. Returns a scalar; differentiable w.r.t. z1 and z2. N = 1 gives 0 (no negatives).
 */
export function ntXentLoss(z1: tf.Tensor2D, z2: tf.Tensor2D, options: NtXentOptions = {}): tf.Scalar {
  const temperature = options.temperature ?? 0.5;
  const normalize = options.normalize ?? true;
  checkEmbeddings(z1, 'z1');
  checkEmbeddings(z2, 'z2');
  checkSameShape(z1, 'z1', z2, 'z2');
  checkPositive(temperature, 'temperature');
  return tf.tidy(() => {
    const n = z1.shape[0];
    const a = normalize ? l2Normalize(z1) : z1;
    const b = normalize ? l2Normalize(z2) : z2;
    const z = tf.concat([a, b], 0); // [2N, D]
    const logits = tf.div(tf.matMul(z, z, false, true), temperature); // [2N, 2N]
    const lse = tf.logSumExp(tf.add(logits, softmaxExclusionMask(n, options.decoupled ?? false)), 1); // [2N]
    // The positive logit of anchor k and of anchor k + N is the same <a_k, b_k> / tau, so the
    // mean over 2N anchors of the positive term equals the mean over the N pairs.
    const positive = tf.div(tf.sum(tf.mul(a, b), 1), temperature); // [N]
    return tf.sub(tf.mean(lse), tf.mean(positive)) as tf.Scalar;
  });
}

/** [2N, 2N] one-hot of each anchor's positive: row k has a 1 at k + N (k < N) or k - N. */
export function positiveIndicator(n: number): tf.Tensor2D {
  // int32 one-hot, then cast: tfjs-backend-wasm 4.22's OneHot writes int bit patterns into a float32 output.
  return tf.tidy(() => tf.cast(tf.oneHot(tf.concat([tf.range(n, 2 * n, 1, 'int32'), tf.range(0, n, 1, 'int32')]), 2 * n), 'float32') as tf.Tensor2D);
}

/** Additive [2N, 2N] logit mask leaving out each anchor itself and, when decoupled, its positive. */
export function softmaxExclusionMask(n: number, decoupled: boolean): tf.Tensor2D {
  return tf.tidy(() => tf.mul(decoupled ? tf.add(tf.eye(2 * n), positiveIndicator(n)) : tf.eye(2 * n), LOGIT_MASK_VALUE) as tf.Tensor2D);
}

export interface InfoNceOptions {
  /** Softmax temperature tau > 0. Default 0.07 (MoCo v1/v2; SimCLR-style use 0.1-0.5). */
  temperature?: number;
  /** L2-normalise query, keys and negatives first. Default true. */
  normalize?: boolean;
}

/**
 * InfoNCE of queries q [N, D] against their positive keys k [N, D] and a shared set of
 * negatives [K, D] (a MoCo queue, or a memory bank):
 *
 *   loss = 1/N * sum_i [ -<q_i, k_i>/tau + log( exp(<q_i, k_i>/tau) + sum_j exp(<q_i, n_j>/tau) ) ]
 *
 * i.e. cross-entropy with the positive as class 0 of K + 1 logits. Gradients flow into every
 * input that is a function of the differentiated variables; MoCo treats keys and queue as
 * constants, which in tfjs means computing them outside the function given to tf.grad /
 * optimizer.minimize (or from non-trainable weights). K = 0 is allowed and gives 0.
 */
export function infoNceLoss(
  query: tf.Tensor2D,
  positiveKey: tf.Tensor2D,
  negatives: tf.Tensor2D,
  options: InfoNceOptions = {},
): tf.Scalar {
  const temperature = options.temperature ?? 0.07;
  const normalize = options.normalize ?? true;
  checkEmbeddings(query, 'query');
  checkEmbeddings(positiveKey, 'positiveKey');
  checkSameShape(query, 'query', positiveKey, 'positiveKey');
  if (!(negatives instanceof tf.Tensor) || negatives.rank !== 2 || negatives.dtype !== 'float32') {
    throw new ShapeError('negatives', 'expected a float32 tensor of rank 2 [K, D]');
  }
  if (negatives.shape[1] !== query.shape[1]) {
    throw new ShapeError('negatives', `feature size ${negatives.shape[1]} differs from query's ${query.shape[1]}`);
  }
  checkPositive(temperature, 'temperature');
  return tf.tidy(() => {
    const q = normalize ? l2Normalize(query) : query;
    const k = normalize ? l2Normalize(positiveKey) : positiveKey;
    const positive = tf.div(tf.sum(tf.mul(q, k), 1, true), temperature); // [N, 1]
    let logits = positive; // K = 0: a single logit per row, loss 0 (with a zero gradient).
    if (negatives.shape[0] > 0) {
      const neg = normalize ? l2Normalize(negatives) : negatives;
      const negLogits = tf.div(tf.matMul(q, neg, false, true), temperature); // [N, K]
      logits = tf.concat([positive, negLogits], 1); // [N, 1 + K]
    }
    const lse = tf.logSumExp(logits, 1); // [N]
    return tf.sub(tf.mean(lse), tf.mean(positive)) as tf.Scalar;
  });
}
