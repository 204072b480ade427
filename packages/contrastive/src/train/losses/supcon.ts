// Supervised Contrastive loss for training (Khosla et al. 2020): the library's supConLoss
// (losses/supcon.ts) on both views with the images' class labels, with its gradient in closed
// form through the trainer's softmax contrastive gradient. It needs labels: without them it is
// NT-Xent (use 'ntxent').
import * as tf from '@tensorflow/tfjs-core';
import { LabelsRequiredError } from '../../errors.js';
import { checkPositive, LOGIT_MASK_VALUE } from '../../losses/common.js';
import { supConLoss } from '../../losses/index.js';
import { softmaxContrastive, type PairLoss } from '../loss.js';
import { pairMasks, rowLabels } from './geometry.js';

export interface SupConPairLossOptions {
  readonly temperature: number;
}

function given(labels: Int32Array | undefined): Int32Array {
  if (labels === undefined) throw new LabelsRequiredError('supcon', 'give the class label of every image (SupCon without labels is NT-Xent: use ntxent)');
  return labels;
}

/**
 * SupCon's L_out over the 2n rows [view 1; view 2]: every row is an anchor whose positives are
 * the other rows of its class (its own other view included), each weighted 1/|P(a)|, against all
 * other rows. The scale factor temperature / baseTemperature is 1 (baseTemperature = temperature):
 * a constant factor that Adam, the recipe's optimizer, does not see.
 */
export function supConPairLoss(options: SupConPairLossOptions): PairLoss {
  const { temperature } = options;
  checkPositive(temperature, 'temperature');
  return Object.assign(
    (z1: tf.Tensor2D, z2: tf.Tensor2D, labels?: Int32Array): tf.Scalar =>
      tf.tidy(() => supConLoss(tf.stack([z1, z2], 1) as tf.Tensor3D, given(labels), { temperature, baseTemperature: temperature })),
    {
      labels: 'required' as const,
      valueAndGradient: (z1: tf.Tensor2D, z2: tf.Tensor2D, labels?: Int32Array) =>
        tf.tidy(() => {
          const rows = 2 * z1.shape[0];
          const { positive } = pairMasks(rowLabels(z1.shape[0], given(labels)));
          // Each anchor's positives weigh 1/|P(a)|; with two views |P(a)| >= 1 (its other view).
          const weights = tf.div(positive, tf.sum(positive, 1, true));
          const selfMask = tf.mul(tf.eye(rows), LOGIT_MASK_VALUE);
          const { loss, dz } = softmaxContrastive(tf.concat([z1, z2], 0), weights, selfMask, temperature);
          const [dz1, dz2] = tf.split(dz, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
          return { loss, dz1, dz2 };
        }),
    },
  );
}
