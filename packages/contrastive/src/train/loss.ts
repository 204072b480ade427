// The contrastive loss over the whole batch, on embeddings gathered from every replica.
import * as tf from '@tensorflow/tfjs-core';
import { ntXentLoss, type NtXentOptions } from '../losses/index.js';
import { positiveIndicator, softmaxExclusionMask } from '../losses/ntxent.js';
import { LOGIT_MASK_VALUE } from '../losses/common.js';
import { InvalidTrainingConfigError, LabelsRequiredError } from '../errors.js';

/**
 * A loss of two aligned views' embeddings [n, d] (row i of each comes from image i), and of the
 * images' class labels [n] for a loss that uses them (see `labels`).
 */
export interface PairLoss {
  (z1: tf.Tensor2D, z2: tf.Tensor2D, labels?: Int32Array): tf.Scalar;
  /** Optional closed-form value and gradient (faster than autodiff); must agree with it. */
  valueAndGradient?: (z1: tf.Tensor2D, z2: tf.Tensor2D, labels?: Int32Array) => { loss: tf.Scalar; dz1: tf.Tensor2D; dz2: tf.Tensor2D };
  /**
   * What the loss does with class labels: 'optional', its supervised form when given them (else
   * the label-free one); 'required', it cannot run without them. Absent: it takes none.
   */
  readonly labels?: 'optional' | 'required';
  /**
   * The loss over V >= 2 views per image (multi-crop), rows view-major (row v·n + i is view v of
   * image i), with its gradient. Losses without it support two views only.
   */
  multiView?: (z: tf.Tensor2D, views: number) => { loss: tf.Scalar; dz: tf.Tensor2D };
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
 * The softmax contrastive loss with its gradient in closed form: with unit rows u, logits
 * S = U Uᵀ/τ, P = softmax over the logits `mask` keeps, and Y the positives (each row's weights
 * summing to 1), L = mean over rows of (logsumexp - <S, Y>) and dL/dS = (P - Y)/R, so
 * dL/dU = (G + Gᵀ) U / τ, projected back through the row normalisation. About 10x cheaper on
 * wasm than autodiff, whose max/equal/eye chain runs on slow kernels.
 */
export function softmaxContrastive(z: tf.Tensor2D, positives: tf.Tensor, mask: tf.Tensor, temperature: number): { loss: tf.Scalar; dz: tf.Tensor2D } {
  return tf.tidy(() => {
    const rows = z.shape[0];
    const norm = tf.sqrt(tf.add(tf.sum(tf.square(z), 1, true), 1e-12));
    const u = tf.div(z, norm);
    const logits = tf.div(tf.matMul(u, u, false, true), temperature);
    const masked = tf.add(logits, mask);
    const lse = tf.logSumExp(masked, 1, true);
    const positiveLogit = tf.sum(tf.mul(logits, positives), 1, true);
    const loss = tf.mean(tf.sub(lse, positiveLogit)) as tf.Scalar;
    const g = tf.div(tf.sub(tf.exp(tf.sub(masked, lse)), positives), rows);
    const du = tf.div(tf.matMul(tf.add(g, tf.transpose(g)), u), temperature);
    // through u = z/|z|: dz = (du - u·<du, u>) / |z|
    const dz = tf.div(tf.sub(du, tf.mul(u, tf.sum(tf.mul(du, u), 1, true))), norm) as tf.Tensor2D;
    return { loss, dz };
  });
}

/** NT-Xent (SimCLR): one positive per anchor, the other view of its image. */
function ntXentValueAndGradient(
  z1: tf.Tensor2D,
  z2: tf.Tensor2D,
  temperature: number,
  decoupled: boolean,
): { loss: tf.Scalar; dz1: tf.Tensor2D; dz2: tf.Tensor2D } {
  return tf.tidy(() => {
    const n = z1.shape[0];
    const rows = 2 * n;
    const positives = constant(`pos:${rows}`, () => positiveIndicator(n));
    // Left out of the softmax: the anchor itself, and (decoupled) its positive.
    const mask = constant(`mask:${rows}:${decoupled}`, () => softmaxExclusionMask(n, decoupled));
    const { loss, dz } = softmaxContrastive(tf.concat([z1, z2], 0), positives, mask, temperature);
    const [dz1, dz2] = tf.split(dz, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
    return { loss, dz1, dz2 };
  });
}

/**
 * NT-Xent over V views of n images (rows view-major): every anchor's positives are the other
 * V-1 views of its image, each with weight 1/(V-1), against all other rows - SupCon's 'all' mode
 * with the image as the label (Khosla et al. 2020); V = 2 is NT-Xent.
 */
function multiViewValueAndGradient(z: tf.Tensor2D, views: number, temperature: number): { loss: tf.Scalar; dz: tf.Tensor2D } {
  const rows = z.shape[0];
  const n = rows / views;
  const positives = constant(`multi-pos:${n}:${views}`, () => tf.tidy(() => tf.div(tf.sub(tf.tile(tf.eye(n), [views, views]), tf.eye(rows)), views - 1)));
  const mask = constant(`self-mask:${rows}`, () => tf.mul(tf.eye(rows), LOGIT_MASK_VALUE));
  return softmaxContrastive(z, positives, mask, temperature);
}

export function ntXentPairLoss(options: NtXentOptions = {}): PairLoss {
  const loss: PairLoss = (z1, z2) => ntXentLoss(z1, z2, options);
  if (options.normalize !== false) {
    const temperature = options.temperature ?? 0.5;
    // the autodiff loss validates options; run it once on a tiny input so bad options fail here
    tf.dispose(tf.tidy(() => ntXentLoss(tf.ones([2, 2]), tf.ones([2, 2]), options)));
    const decoupled = options.decoupled ?? false;
    loss.valueAndGradient = (z1, z2) => ntXentValueAndGradient(z1, z2, temperature, decoupled);
    // Decoupled has no multi-view form here: with several positives per anchor, which to leave out is a choice of its own.
    if (!decoupled) loss.multiView = (z, views) => multiViewValueAndGradient(z, views, temperature);
  }
  return loss;
}

/** Loss value and gradient of a loss over V views per image (rows view-major), on plain arrays. */
export function multiViewLossGradient(loss: PairLoss, z: Float32Array, views: number, n: number, d: number): { loss: number; dz: Float32Array } {
  if (views === 2) {
    const r = pairLossGradient(loss, z.subarray(0, n * d), z.subarray(n * d, 2 * n * d), n, d);
    const dz = new Float32Array(2 * n * d);
    dz.set(r.dz1, 0);
    dz.set(r.dz2, n * d);
    return { loss: r.loss, dz };
  }
  const multiView = loss.multiView;
  if (multiView === undefined) throw new InvalidTrainingConfigError('localViews', 'this loss supports two views per image only (use plain NT-Xent for multi-crop)');
  if (!Number.isInteger(views) || views < 2) throw new InvalidTrainingConfigError('views', `expected an integer >= 2, got ${views}`);
  const [value, grad] = tf.tidy(() => {
    const r = multiView(tf.tensor2d(z, [views * n, d]), views);
    return [r.loss, r.dz];
  });
  try {
    return { loss: (value.dataSync() as Float32Array)[0] as number, dz: grad.dataSync() as Float32Array };
  } finally {
    tf.dispose([value, grad]);
  }
}

/** Throws unless `labels` (one per image, or none) suit what `loss` does with labels. */
export function checkPairLossLabels(loss: PairLoss, labels: Int32Array | undefined, n: number): void {
  if (labels === undefined) {
    if (loss.labels === 'required') throw new LabelsRequiredError('this loss', 'give the class label of every image of the batch');
    return;
  }
  if (loss.labels === undefined) throw new InvalidTrainingConfigError('labels', 'this loss takes no labels (it is label-free); give none');
  if (labels.length !== n) throw new InvalidTrainingConfigError('labels', `${labels.length} labels for a batch of ${n} images`);
}

/** Loss value and gradient of a pair loss (with the images' labels, for a loss that takes them), on plain arrays. */
export function pairLossGradient(loss: PairLoss, z1: Float32Array, z2: Float32Array, n: number, d: number, labels?: Int32Array): { loss: number; dz1: Float32Array; dz2: Float32Array } {
  checkPairLossLabels(loss, labels, n);
  // Tensors leave the tidy and are read after it: tidy walks every element of a returned typed array.
  const [value, dz1, dz2] = tf.tidy(() => {
    const a = tf.tensor2d(z1, [n, d]);
    const b = tf.tensor2d(z2, [n, d]);
    if (loss.valueAndGradient) {
      const r = loss.valueAndGradient(a, b, labels);
      return [r.loss, r.dz1, r.dz2];
    }
    const { value, grads } = tf.valueAndGrads((x: tf.Tensor, y: tf.Tensor) => loss(x as tf.Tensor2D, y as tf.Tensor2D, labels))([a, b]);
    return [value, grads[0] as tf.Tensor, grads[1] as tf.Tensor];
  });
  try {
    return { loss: (value.dataSync() as Float32Array)[0] as number, dz1: dz1.dataSync() as Float32Array, dz2: dz2.dataSync() as Float32Array };
  } finally {
    tf.dispose([value, dz1, dz2]);
  }
}
