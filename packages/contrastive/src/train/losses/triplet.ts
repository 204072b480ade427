// Triplet loss for training: the library's tripletLoss (losses/triplet.ts) over the 2n rows of
// both views, with its gradient in closed form. Label-free, an anchor's positive is the other view
// of its image and its negatives every other image's views; with labels, positives are the rows of
// the anchor's class and negatives the rows of other classes.
import * as tf from '@tensorflow/tfjs-core';
import { checkNonNegative, checkOneOf, DISTANCE_MASK_VALUE } from '../../losses/common.js';
import { tripletLoss, type TripletMiner } from '../../losses/index.js';
import type { PairLoss } from '../loss.js';
import { distances, pairMasks, rowLabels, splitRowGradient, toSquaredGradient, unitRows } from './geometry.js';

/** Which triplets train: all valid ones, each anchor's hardest, or FaceNet's semi-hard negatives. */
export type TripletMining = 'all' | 'hard' | 'semi-hard';

export const TRIPLET_MININGS: readonly TripletMining[] = ['all', 'hard', 'semi-hard'];

const MINERS: Record<TripletMining, TripletMiner> = { all: 'batch-all', hard: 'batch-hard', 'semi-hard': 'semi-hard' };

export interface TripletPairLossOptions {
  /** Margin in euclidean distance between unit embeddings (so in [0, 2]). */
  readonly margin: number;
  readonly mining: TripletMining;
}

/** float32 one-hot [..., R] of int32 indices (int32 first: wasm's OneHot writes ints into float32 outputs). */
function oneHot(indices: tf.Tensor, depth: number): tf.Tensor {
  return tf.cast(tf.oneHot(indices as tf.Tensor1D, depth), 'float32');
}

/**
 * The loss and dL/dD (D: euclidean distances between rows) of each miner, exactly as the
 * library's autodiff sees it: a triplet counts where d(a,p) - d(a,n) + m > 0.
 */
function minedGradient(dist: tf.Tensor2D, positive: tf.Tensor2D, negative: tf.Tensor2D, margin: number, mining: TripletMining): { loss: tf.Scalar; gradient: tf.Tensor2D } {
  const rows = dist.shape[0];
  if (mining === 'all') {
    const t = tf.add(tf.sub(tf.expandDims(dist, 2), tf.expandDims(dist, 1)), margin); // [a, p, n]
    const valid = tf.mul(tf.expandDims(positive, 2), tf.expandDims(negative, 1));
    const active = tf.mul(tf.step(t), valid);
    // The library divides by the number of active triplets, a constant of the autodiff.
    const count = tf.maximum(tf.sum(active), 1);
    const loss = tf.div(tf.sum(tf.mul(tf.relu(t), valid)), count) as tf.Scalar;
    return { loss, gradient: tf.div(tf.sub(tf.sum(active, 2), tf.sum(active, 1)), count) as tf.Tensor2D };
  }
  const farthestNegative = tf.argMax(tf.mul(dist, negative), 1); // [a]
  if (mining === 'hard') {
    const hardestPositive = tf.argMax(tf.mul(dist, positive), 1);
    const hardestNegative = tf.argMin(tf.add(tf.mul(dist, negative), tf.mul(tf.sub(1, negative), DISTANCE_MASK_VALUE)), 1);
    const p = oneHot(hardestPositive, rows);
    const n = oneHot(hardestNegative, rows);
    const valid = tf.mul(tf.max(positive, 1), tf.max(negative, 1)); // [a]
    const t = tf.add(tf.sub(tf.sum(tf.mul(p, dist), 1), tf.sum(tf.mul(n, dist), 1)), margin);
    const count = tf.maximum(tf.sum(valid), 1);
    const loss = tf.div(tf.sum(tf.mul(tf.relu(t), valid)), count) as tf.Scalar;
    const weight = tf.expandDims(tf.div(tf.mul(tf.step(t), valid), count), 1);
    return { loss, gradient: tf.mul(tf.sub(p, n), weight) as tf.Tensor2D };
  }
  // Semi-hard: per pair (a, p), the closest negative farther than p, else the farthest negative.
  const dAP = tf.expandDims(dist, 2);
  const dAN = tf.expandDims(dist, 1);
  const outside = tf.mul(tf.step(tf.sub(dAN, dAP)), tf.expandDims(negative, 1)); // [a, p, n]
  const closestOutside = tf.argMin(tf.add(tf.mul(dAN, outside), tf.mul(tf.sub(1, outside), DISTANCE_MASK_VALUE)), 2); // [a, p]
  const hasOutside = tf.max(outside, 2); // [a, p]
  const chosen = tf.add(tf.mul(oneHot(closestOutside, rows), tf.expandDims(hasOutside, 2)), tf.mul(tf.expandDims(oneHot(farthestNegative, rows), 1), tf.expandDims(tf.sub(1, hasOutside), 2))); // [a, p, n]
  const dChosen = tf.sum(tf.mul(chosen, dAN), 2); // [a, p]
  const valid = tf.mul(positive, tf.max(negative, 1, true));
  const t = tf.add(tf.sub(dist, dChosen), margin);
  const count = tf.maximum(tf.sum(valid), 1);
  const loss = tf.div(tf.sum(tf.mul(tf.relu(t), valid)), count) as tf.Scalar;
  const weight = tf.div(tf.mul(tf.step(t), valid), count); // [a, p]
  const towardsNegatives = tf.sum(tf.mul(chosen, tf.expandDims(weight, 2)), 1); // [a, n]
  return { loss, gradient: tf.sub(weight, towardsNegatives) as tf.Tensor2D };
}

/**
 * Triplet loss max(0, d(a,p) - d(a,n) + margin) on the unit embeddings of both views, with the
 * chosen mining (see tripletLoss), and its closed-form gradient: dL/dD from the mined triplets,
 * then through the distances and the normalisation.
 */
export function tripletPairLoss(options: TripletPairLossOptions): PairLoss {
  const { margin, mining } = options;
  checkNonNegative(margin, 'margin');
  checkOneOf(mining, TRIPLET_MININGS, 'mining');
  const miner = MINERS[mining];
  const loss: PairLoss = Object.assign(
    (z1: tf.Tensor2D, z2: tf.Tensor2D, labels?: Int32Array): tf.Scalar =>
      tf.tidy(() => tripletLoss(tf.concat([z1, z2], 0), rowLabels(z1.shape[0], labels), { margin, miner, normalize: true })),
    {
      labels: 'optional' as const,
      valueAndGradient: (z1: tf.Tensor2D, z2: tf.Tensor2D, labels?: Int32Array) =>
        tf.tidy(() => {
          const { u, norm } = unitRows(tf.concat([z1, z2], 0));
          const { plain } = distances(u);
          const { positive, negative } = pairMasks(rowLabels(z1.shape[0], labels));
          const mined = minedGradient(plain, positive, negative, margin, mining);
          return { loss: mined.loss, ...splitRowGradient(u, norm, toSquaredGradient(mined.gradient, plain)) };
        }),
    },
  );
  return loss;
}
