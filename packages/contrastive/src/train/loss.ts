// The contrastive loss over the whole batch, on embeddings gathered from every replica.
import * as tf from '@tensorflow/tfjs-core';
import { ntXentLoss, type NtXentOptions } from '../losses/index.js';

/** A loss of two aligned views' embeddings [n, d] (row i of each comes from image i). */
export type PairLoss = (z1: tf.Tensor2D, z2: tf.Tensor2D) => tf.Scalar;

export function ntXentPairLoss(options: NtXentOptions = {}): PairLoss {
  return (z1, z2) => ntXentLoss(z1, z2, options);
}

/** Loss value and gradient of a pair loss, on plain arrays. */
export function pairLossGradient(loss: PairLoss, z1: Float32Array, z2: Float32Array, n: number, d: number): { loss: number; dz1: Float32Array; dz2: Float32Array } {
  return tf.tidy(() => {
    const a = tf.tensor2d(z1, [n, d]);
    const b = tf.tensor2d(z2, [n, d]);
    const { value, grads } = tf.valueAndGrads((x: tf.Tensor, y: tf.Tensor) => loss(x as tf.Tensor2D, y as tf.Tensor2D))([a, b]);
    return {
      loss: (value.dataSync() as Float32Array)[0] as number,
      dz1: (grads[0] as tf.Tensor).dataSync() as Float32Array,
      dz2: (grads[1] as tf.Tensor).dataSync() as Float32Array,
    };
  });
}
