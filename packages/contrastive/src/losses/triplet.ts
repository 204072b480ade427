// Triplet loss with online miners: batch-all and batch-hard (Hermans et al. 2017, "In Defense
// of the Triplet Loss"), semi-hard (Schroff et al. 2015, FaceNet; as in TF-Addons'
// triplet_semihard_loss).
import * as tf from '@tensorflow/tfjs-core';
import {
  checkEmbeddings,
  checkLabels,
  checkNonNegative,
  checkOneOf,
  DISTANCE_MASK_VALUE,
  l2Normalize,
  labelsTensor,
  pairwiseDistances,
  sameLabelMask,
  type LabelsLike,
} from './common.js';

export type TripletMiner = 'batch-all' | 'batch-hard' | 'semi-hard';

export interface TripletOptions {
  /** Margin m >= 0 in distance units. Default 1.0 (torch's TripletMarginLoss default). */
  margin?: number;
  /** Which triplets to use (see tripletLoss). Default 'batch-all'. */
  miner?: TripletMiner;
  /** Squared euclidean distance instead of euclidean. Default false. */
  squared?: boolean;
  /** L2-normalise the embeddings first (FaceNet; then try margin ~0.2). Default false. */
  normalize?: boolean;
}

/**
 * Triplet loss max(0, d(a,p) - d(a,n) + m) on embeddings [N, D] with integer labels [N]; a
 * positive p != a shares a's label, a negative n has another label.
 *
 * - 'batch-all': all valid triplets (a, p, n); the loss is the mean over the triplets whose
 *   loss is > 0 (Hermans et al.'s "BA, non-zero" variant: averaging in the easy triplets would
 *   shrink the gradient as training progresses). The count is treated as a constant by
 *   autodiff.
 * - 'batch-hard': per anchor, the farthest positive and the closest negative; the mean over
 *   the anchors that have at least one positive and one negative.
 * - 'semi-hard': per positive pair (a, p), the closest negative farther than p
 *   (d(a,n) > d(a,p)); if there is none, the farthest negative (TF-Addons' choice). The mean
 *   over all positive pairs whose anchor has at least one negative.
 *
 * Anchors (pairs) with no valid triplet are excluded from the mean; with none at all the
 * loss is 0. 'batch-all' and 'semi-hard' build [N, N, N] tensors (N = 256: 64 MiB each), so
 * keep N in the hundreds. Distances come from `pairwiseDistances` (euclidean uses a sqrt with
 * zero gradient at 0, so coincident embeddings do not produce NaN gradients).
 */
export function tripletLoss(embeddings: tf.Tensor2D, labels: LabelsLike, options: TripletOptions = {}): tf.Scalar {
  const margin = options.margin ?? 1.0;
  const miner = options.miner ?? 'batch-all';
  const squared = options.squared ?? false;
  const normalize = options.normalize ?? false;
  checkEmbeddings(embeddings, 'embeddings');
  checkNonNegative(margin, 'margin');
  checkOneOf(miner, ['batch-all', 'batch-hard', 'semi-hard'], 'miner');
  const n = embeddings.shape[0];
  const checkedLabels = checkLabels(labels, n, 'labels');

  return tf.tidy(() => {
    const x = normalize ? l2Normalize(embeddings) : embeddings;
    const dist = pairwiseDistances(x, squared); // [N, N]
    const l = labelsTensor(checkedLabels);
    const same = sameLabelMask(l, l);
    const posMask = tf.mul(same, tf.sub(1, tf.eye(n))) as tf.Tensor2D; // p != a, same label
    const negMask = tf.sub(1, same) as tf.Tensor2D; // different label (so n != a and n != p)
    if (miner === 'batch-all') return batchAll(dist, posMask, negMask, margin);
    if (miner === 'batch-hard') return batchHard(dist, posMask, negMask, margin);
    return semiHard(dist, posMask, negMask, margin);
  });
}

function batchAll(dist: tf.Tensor2D, posMask: tf.Tensor2D, negMask: tf.Tensor2D, margin: number): tf.Scalar {
  // t[a, p, n] = d(a,p) - d(a,n) + m, valid where p is a positive and n a negative of a.
  const t = tf.add(tf.sub(tf.expandDims(dist, 2), tf.expandDims(dist, 1)), margin); // [N, N, N]
  const valid = tf.mul(tf.expandDims(posMask, 2), tf.expandDims(negMask, 1));
  const losses = tf.mul(tf.relu(t), valid);
  const numActive = tf.sum(tf.step(losses)); // # triplets with loss > 0; zero gradient
  return tf.div(tf.sum(losses), tf.maximum(numActive, 1)) as tf.Scalar;
}

function batchHard(dist: tf.Tensor2D, posMask: tf.Tensor2D, negMask: tf.Tensor2D, margin: number): tf.Scalar {
  // Distances are >= 0, so masking the non-positives to 0 leaves the maximum intact.
  const hardestPos = tf.max(tf.mul(dist, posMask), 1); // [N]
  const hardestNeg = tf.min(tf.add(tf.mul(dist, negMask), tf.mul(tf.sub(1, negMask), DISTANCE_MASK_VALUE)), 1);
  const validAnchor = tf.mul(tf.max(posMask, 1), tf.max(negMask, 1)); // labels only
  const losses = tf.mul(tf.relu(tf.add(tf.sub(hardestPos, hardestNeg), margin)), validAnchor);
  return tf.div(tf.sum(losses), tf.maximum(tf.sum(validAnchor), 1)) as tf.Scalar;
}

function semiHard(dist: tf.Tensor2D, posMask: tf.Tensor2D, negMask: tf.Tensor2D, margin: number): tf.Scalar {
  const dAP = tf.expandDims(dist, 2); // [N, N, 1]: d(a, p)
  const dAN = tf.expandDims(dist, 1); // [N, 1, N]: d(a, n)
  const negAN = tf.expandDims(negMask, 1); // [N, 1, N]
  // Negatives of a that are farther than p (zero-gradient step: d(a,n) - d(a,p) > 0).
  const outside = tf.mul(tf.step(tf.sub(dAN, dAP)), negAN); // [N, N, N]
  const closestOutside = tf.min(tf.add(tf.mul(dAN, outside), tf.mul(tf.sub(1, outside), DISTANCE_MASK_VALUE)), 2); // [N, N]
  const hasOutside = tf.max(outside, 2); // [N, N] in {0, 1}
  const farthestNeg = tf.max(tf.mul(dist, negMask), 1, true); // [N, 1]; distances >= 0
  const chosen = tf.add(tf.mul(closestOutside, hasOutside), tf.mul(farthestNeg, tf.sub(1, hasOutside))); // [N, N]
  const validPair = tf.mul(posMask, tf.max(negMask, 1, true)); // labels only
  const losses = tf.mul(tf.relu(tf.add(tf.sub(dist, chosen), margin)), validPair);
  return tf.div(tf.sum(losses), tf.maximum(tf.sum(validPair), 1)) as tf.Scalar;
}
