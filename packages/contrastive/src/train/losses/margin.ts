// Margin contrastive loss for training (Hadsell, Chopra & LeCun 2006): the library's
// marginContrastiveLoss (losses/margin.ts) over every pair of the 2n rows of both views, positive
// pairs and negative pairs averaged separately, with its gradient in closed form. Label-free, the
// positive pairs are the two views of each image; with labels, every two rows of one class.
import * as tf from '@tensorflow/tfjs-core';
import { checkNonNegative } from '../../losses/common.js';
import { marginContrastiveLoss } from '../../losses/index.js';
import type { PairLoss } from '../loss.js';
import { distances, pairMasks, rowLabels, splitRowGradient, toSquaredGradient, unitRows } from './geometry.js';

export interface MarginPairLossOptions {
  /** Negative pairs closer than this (euclidean distance of unit embeddings, in [0, 2]) are pushed apart. */
  readonly margin: number;
}

/** The pairs i < j of rows, split by whether their labels agree. */
function pairsByLabel(rows: Int32Array): { positive: [number[], number[]]; negative: [number[], number[]] } {
  const positive: [number[], number[]] = [[], []];
  const negative: [number[], number[]] = [[], []];
  for (let i = 0; i < rows.length; i++) {
    for (let j = i + 1; j < rows.length; j++) {
      const side = rows[i] === rows[j] ? positive : negative;
      side[0].push(i);
      side[1].push(j);
    }
  }
  return { positive, negative };
}

/** The library's loss of one side's pairs (all similar or all dissimilar), 0 without pairs. */
function sideLoss(z: tf.Tensor2D, pairs: [number[], number[]], similar: 0 | 1, margin: number): tf.Scalar {
  const [first, second] = pairs;
  if (first.length === 0) return tf.scalar(0);
  const x1 = tf.gather(z, tf.tensor1d(first, 'int32')) as tf.Tensor2D;
  const x2 = tf.gather(z, tf.tensor1d(second, 'int32')) as tf.Tensor2D;
  return marginContrastiveLoss(x1, x2, new Float32Array(first.length).fill(similar), { margin, normalize: true });
}

/**
 * On unit embeddings, with d the euclidean distance: the mean over positive pairs of d², plus the
 * mean over negative pairs of max(0, margin - d)². Averaging the two sides apart keeps the few
 * positive pairs (n of them label-free) from being drowned by the ~2n² negative ones.
 */
export function marginPairLoss(options: MarginPairLossOptions): PairLoss {
  const { margin } = options;
  checkNonNegative(margin, 'margin');
  return Object.assign(
    (z1: tf.Tensor2D, z2: tf.Tensor2D, labels?: Int32Array): tf.Scalar =>
      tf.tidy(() => {
        const z = tf.concat([z1, z2], 0);
        const pairs = pairsByLabel(rowLabels(z1.shape[0], labels));
        return tf.add(sideLoss(z, pairs.positive, 1, margin), sideLoss(z, pairs.negative, 0, margin)) as tf.Scalar;
      }),
    {
      labels: 'optional' as const,
      valueAndGradient: (z1: tf.Tensor2D, z2: tf.Tensor2D, labels?: Int32Array) =>
        tf.tidy(() => {
          const { u, norm } = unitRows(tf.concat([z1, z2], 0));
          const { squared, plain } = distances(u);
          const { positive, negative } = pairMasks(rowLabels(z1.shape[0], labels));
          // Sums over ordered pairs (each pair twice) divided by ordered counts: the means over pairs.
          const positives = tf.sum(positive);
          const negatives = tf.maximum(tf.sum(negative), 1);
          const hinge = tf.mul(tf.relu(tf.sub(margin, plain)), negative);
          const loss = tf.add(tf.div(tf.sum(tf.mul(positive, squared)), positives), tf.div(tf.sum(tf.square(hinge)), negatives)) as tf.Scalar;
          // d/dD² of the positive side; d/dD of the negative side (-2 (m - d)), taken to D².
          const pull = tf.div(positive, positives) as tf.Tensor2D;
          const push = toSquaredGradient(tf.div(tf.mul(hinge, -2), negatives) as tf.Tensor2D, plain);
          return { loss, ...splitRowGradient(u, norm, tf.add(pull, push) as tf.Tensor2D) };
        }),
    },
  );
}
