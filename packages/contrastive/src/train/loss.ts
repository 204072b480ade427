// The contrastive loss over the whole batch, on embeddings gathered from every replica.
import * as tf from '@tensorflow/tfjs-core';
import { ntXentLoss, type NtXentOptions } from '../losses/index.js';
import { positiveIndicator, softmaxExclusionMask } from '../losses/ntxent.js';

/** A loss of two aligned views' embeddings [n, d] (row i of each comes from image i). */
export interface PairLoss {
  (z1: tf.Tensor2D, z2: tf.Tensor2D): tf.Scalar;
  /** Optional closed-form value and gradient (faster than autodiff); must agree with it. */
  valueAndGradient?: (z1: tf.Tensor2D, z2: tf.Tensor2D) => { loss: tf.Scalar; dz1: tf.Tensor2D; dz2: tf.Tensor2D };
}

const constants = new Map<string, tf.Tensor>();

/** Per-size constant tensors (self mask, positive one-hot), kept for the life of the process. */
function constant(key: string, make: () => tf.Tensor): tf.Tensor {
  let t = constants.get(key);
  if (t === undefined || t.isDisposed) {
    t = tf.keep(make());
    constants.set(key, t);
  }
  return t;
}

/**
 * NT-Xent with its gradient in closed form: with unit rows u, logits S = U Uᵀ/τ (diagonal
 * masked) and P = softmax(S), dL/dS = (P - Y)/2N for one-hot positives Y, so
 * dL/dU = (G + Gᵀ) U / τ, projected back through the row normalisation. About 10x cheaper on
 * wasm than autodiff, whose max/equal/eye chain runs on slow kernels.
 */
function ntXentValueAndGradient(
  z1: tf.Tensor2D,
  z2: tf.Tensor2D,
  temperature: number,
  decoupled: boolean,
): { loss: tf.Scalar; dz1: tf.Tensor2D; dz2: tf.Tensor2D } {
  return tf.tidy(() => {
    const n = z1.shape[0];
    const rows = 2 * n;
    const z = tf.concat([z1, z2], 0);
    const norm = tf.sqrt(tf.add(tf.sum(tf.square(z), 1, true), 1e-12));
    const u = tf.div(z, norm);
    const positives = constant(`pos:${rows}`, () => positiveIndicator(n));
    // Left out of the softmax: the anchor itself, and (decoupled) its positive.
    const mask = constant(`mask:${rows}:${decoupled}`, () => softmaxExclusionMask(n, decoupled));
    const logits = tf.div(tf.matMul(u, u, false, true), temperature);
    const masked = tf.add(logits, mask);
    const lse = tf.logSumExp(masked, 1, true);
    const positiveLogit = tf.sum(tf.mul(logits, positives), 1, true);
    const loss = tf.mean(tf.sub(lse, positiveLogit)) as tf.Scalar;
    // dL/dS = (softmax over the kept logits - Y) / 2N
    const g = tf.div(tf.sub(tf.exp(tf.sub(masked, lse)), positives), rows);
    const du = tf.div(tf.matMul(tf.add(g, tf.transpose(g)), u), temperature);
    // through u = z/|z|: dz = (du - u·<du, u>) / |z|
    const dz = tf.div(tf.sub(du, tf.mul(u, tf.sum(tf.mul(du, u), 1, true))), norm);
    const [dz1, dz2] = tf.split(dz, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
    return { loss, dz1, dz2 };
  });
}

export function ntXentPairLoss(options: NtXentOptions = {}): PairLoss {
  const loss: PairLoss = (z1, z2) => ntXentLoss(z1, z2, options);
  if (options.normalize !== false) {
    const temperature = options.temperature ?? 0.5;
    // the autodiff loss validates options; run it once on a tiny input so bad options fail here
    tf.dispose(tf.tidy(() => ntXentLoss(tf.ones([2, 2]), tf.ones([2, 2]), options)));
    const decoupled = options.decoupled ?? false;
    loss.valueAndGradient = (z1, z2) => ntXentValueAndGradient(z1, z2, temperature, decoupled);
  }
  return loss;
}

/** Loss value and gradient of a pair loss, on plain arrays. */
export function pairLossGradient(loss: PairLoss, z1: Float32Array, z2: Float32Array, n: number, d: number): { loss: number; dz1: Float32Array; dz2: Float32Array } {
  // Tensors leave the tidy and are read after it: tidy walks every element of a returned typed array.
  const [value, dz1, dz2] = tf.tidy(() => {
    const a = tf.tensor2d(z1, [n, d]);
    const b = tf.tensor2d(z2, [n, d]);
    if (loss.valueAndGradient) {
      const r = loss.valueAndGradient(a, b);
      return [r.loss, r.dz1, r.dz2];
    }
    const { value, grads } = tf.valueAndGrads((x: tf.Tensor, y: tf.Tensor) => loss(x as tf.Tensor2D, y as tf.Tensor2D))([a, b]);
    return [value, grads[0] as tf.Tensor, grads[1] as tf.Tensor];
  });
  try {
    return { loss: (value.dataSync() as Float32Array)[0] as number, dz1: dz1.dataSync() as Float32Array, dz2: dz2.dataSync() as Float32Array };
  } finally {
    tf.dispose([value, dz1, dz2]);
  }
}
