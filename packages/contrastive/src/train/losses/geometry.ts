// Shared pieces of the closed-form gradients of the distance losses (triplet, margin): the rows
// of both views and their labels, unit rows and the way back through the normalisation, and the
// gradient through squared pairwise distances. Call inside a tf.tidy.
import * as tf from '@tensorflow/tfjs-core';
import { pairwiseDistances, safeSqrt } from '../../losses/index.js';
import { sameLabelMask } from '../../losses/common.js';

/**
 * The label of each of the 2n rows [view 1; view 2]: the images' class labels twice (the
 * supervised form: same-class rows are positives), or without labels the image index twice (the
 * label-free form: an anchor's only positive is the other view of its image).
 */
export function rowLabels(n: number, labels: Int32Array | undefined): Int32Array {
  const rows = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const label = labels === undefined ? i : (labels[i] as number);
    rows[i] = label;
    rows[n + i] = label;
  }
  return rows;
}

/** Positive (same label, another row) and negative (another label) masks of rows, float32 [R, R]. */
export function pairMasks(rows: Int32Array): { positive: tf.Tensor2D; negative: tf.Tensor2D } {
  const l = tf.tensor1d(rows, 'int32');
  const same = sameLabelMask(l, l);
  return { positive: tf.sub(same, tf.eye(rows.length)) as tf.Tensor2D, negative: tf.sub(1, same) as tf.Tensor2D };
}

/** Unit rows u = z/|z| (the losses' l2Normalize) and the norms [R, 1]. */
export function unitRows(z: tf.Tensor2D): { u: tf.Tensor2D; norm: tf.Tensor2D } {
  const norm = tf.sqrt(tf.maximum(tf.sum(tf.square(z), 1, true), 1e-24)) as tf.Tensor2D;
  return { u: tf.div(z, norm), norm };
}

/** Back through u = z/|z|: dz = (du - u·<du, u>) / |z|. */
export function throughNormalization(du: tf.Tensor2D, u: tf.Tensor2D, norm: tf.Tensor2D): tf.Tensor2D {
  return tf.div(tf.sub(du, tf.mul(u, tf.sum(tf.mul(du, u), 1, true))), norm) as tf.Tensor2D;
}

/** Squared and plain euclidean distances between rows, as the library losses compute them. */
export function distances(u: tf.Tensor2D): { squared: tf.Tensor2D; plain: tf.Tensor2D } {
  const squared = pairwiseDistances(u, true);
  return { squared, plain: safeSqrt(squared) };
}

/**
 * dL/dD² from dL/dD: G / (2D), and 0 where D = 0 (the library's sqrt has a zero gradient there,
 * so coincident rows get none).
 */
export function toSquaredGradient(gradient: tf.Tensor2D, plain: tf.Tensor2D): tf.Tensor2D {
  const positive = tf.step(plain);
  return tf.mul(tf.div(gradient, tf.add(tf.mul(plain, 2), tf.sub(1, positive))), positive) as tf.Tensor2D;
}

/**
 * dL/du from G = dL/dD² over ordered pairs, with D²_ij = |u_i|² + |u_j|² - 2<u_i, u_j>:
 * dL/du_k = 2 Σ_j S_kj (u_k - u_j) with S = G + Gᵀ, i.e. 2 (diag(S·1) U - S U).
 */
export function throughSquaredDistances(u: tf.Tensor2D, gradient: tf.Tensor2D): tf.Tensor2D {
  const s = tf.add(gradient, tf.transpose(gradient));
  return tf.mul(tf.sub(tf.mul(tf.sum(s, 1, true), u), tf.matMul(s, u)), 2) as tf.Tensor2D;
}

/** The distance loss's dz1, dz2 from dL/dD² of the unit rows of [z1; z2]. */
export function splitRowGradient(u: tf.Tensor2D, norm: tf.Tensor2D, squaredGradient: tf.Tensor2D): { dz1: tf.Tensor2D; dz2: tf.Tensor2D } {
  const dz = throughNormalization(throughSquaredDistances(u, squaredGradient), u, norm);
  const [dz1, dz2] = tf.split(dz, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
  return { dz1, dz2 };
}
