// Supervised Contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning", eq. 2,
// the L^sup_out variant), after the authors' reference implementation (HobbitLong/SupContrast).
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';
import {
  checkOneOf,
  checkPositive,
  l2Normalize,
  checkLabels,
  labelsTensor,
  LOGIT_MASK_VALUE,
  sameLabelMask,
  type LabelsLike,
} from './common.js';

export type SupConContrastMode = 'all' | 'one';

export interface SupConOptions {
  /** Softmax temperature tau > 0. Default 0.07 (paper). */
  temperature?: number;
  /** The loss is scaled by temperature / baseTemperature. Default 0.07 (paper), i.e. factor 1. */
  baseTemperature?: number;
  /**
   * 'all' (default): every view of every sample is an anchor (V*N anchors).
   * 'one': only view 0 of each sample is an anchor (N anchors); all V*N views are contrasted.
   */
  contrastMode?: SupConContrastMode;
  /** L2-normalise the features first. Default true (the reference expects unit features). */
  normalize?: boolean;
}

/**
 * SupCon loss of features [N, D] (one view per sample) or [N, V, D] (V views per sample) and
 * integer class labels [N].
 *
 * The V*N views are stacked view-major (row v*N + i is view v of sample i). For anchor a with
 * logits s_aj = <f_a, f_j> / tau over all contrast rows j != a, positives P(a) are the rows
 * j != a with the same label as a (the other views of a's own sample included):
 *
 *   l_a = -(tau / baseTau) * 1/|P(a)| * sum_{p in P(a)} [ s_ap - log sum_{j != a} exp(s_aj) ]
 *
 * and the loss is the mean of l_a over the anchors that have at least one positive. Anchors
 * with no positive (a sample whose class occurs once in a one-view batch) carry no signal and
 * are EXCLUDED from the mean; the reference implementation instead counts them as 0 in the
 * mean, which only rescales the loss. If no anchor has a positive the loss is 0 (gradient 0).
 *
 * Without labels, positives are the other views of the same sample only (SimCLR with V views);
 * for V = 2, contrastMode 'all' and temperature = baseTemperature this equals NT-Xent.
 */
export function supConLoss(
  features: tf.Tensor2D | tf.Tensor3D,
  labels?: LabelsLike,
  options: SupConOptions = {},
): tf.Scalar {
  const temperature = options.temperature ?? 0.07;
  const baseTemperature = options.baseTemperature ?? 0.07;
  const contrastMode = options.contrastMode ?? 'all';
  const normalize = options.normalize ?? true;
  if (!(features instanceof tf.Tensor) || (features.rank !== 2 && features.rank !== 3)) {
    throw new ShapeError('features', 'expected a tensor [N, D] or [N, V, D]');
  }
  if (features.dtype !== 'float32') throw new ShapeError('features', `expected dtype float32, got ${features.dtype}`);
  if (features.shape.some((s) => s < 1)) {
    throw new ShapeError('features', `every dimension must be >= 1, got [${features.shape.join(', ')}]`);
  }
  checkPositive(temperature, 'temperature');
  checkPositive(baseTemperature, 'baseTemperature');
  checkOneOf(contrastMode, ['all', 'one'], 'contrastMode');
  const n = features.shape[0];
  const views = features.rank === 3 ? features.shape[1] : 1;
  const dim = features.shape[features.rank - 1] as number;
  const checkedLabels = labels === undefined ? undefined : checkLabels(labels, n, 'labels');

  return tf.tidy(() => {
    let labelMask: tf.Tensor2D = tf.eye(n);
    if (checkedLabels !== undefined) {
      const l = labelsTensor(checkedLabels);
      labelMask = sameLabelMask(l, l);
    }
    const f = normalize ? l2Normalize(features) : features;
    // [N, V, D] -> [V, N, D] -> [V*N, D], view-major like torch.cat(torch.unbind(f, 1), 0).
    const contrast = (features.rank === 3 ? tf.reshape(tf.transpose(f, [1, 0, 2]), [views * n, dim]) : f) as tf.Tensor2D;
    const anchorCount = contrastMode === 'all' ? views : 1;
    const rows = anchorCount * n;
    const anchors = contrastMode === 'all' ? contrast : tf.slice(contrast, [0, 0], [n, dim]);

    const logits = tf.div(tf.matMul(anchors, contrast, false, true), temperature); // [rows, V*N]
    // Anchor r is contrast row r in both modes (view-major order), so its self column is r.
    const self = tf.eye(rows, views * n);
    const positives = tf.mul(tf.tile(labelMask, [anchorCount, views]), tf.sub(1, self)); // [rows, V*N]
    const lse = tf.logSumExp(tf.add(logits, tf.mul(self, LOGIT_MASK_VALUE)), 1); // [rows]
    const numPositives = tf.sum(positives, 1); // [rows]
    const hasPositive = tf.cast(tf.greater(numPositives, 0), 'float32'); // labels only: no gradient needed
    const meanPositiveLogit = tf.div(tf.sum(tf.mul(positives, logits), 1), tf.maximum(numPositives, 1));
    const perAnchor = tf.mul(tf.sub(meanPositiveLogit, lse), -temperature / baseTemperature); // [rows]
    const numValid = tf.sum(hasPositive);
    return tf.div(tf.sum(tf.mul(perAnchor, hasPositive)), tf.maximum(numValid, 1)) as tf.Scalar;
  });
}
