// One copy of the model that turns a batch of source images into gradients. A replica runs
// in-process or inside a worker thread; the contrastive loss itself is computed elsewhere (it
// needs every replica's embeddings), reached through the `lossGradient` callback.
import * as tf from '@tensorflow/tfjs-core';
import { Network, manifestOf, sizeOf, type GraphSpec, type WeightManifest } from '@fedclr/tensor';
import { augmentTwoViews, createAugmentPipeline, createSeededRandom, type AugmentConfig, type AugmentPipeline } from '../augment/index.js';
import { InvalidTrainingConfigError } from '../errors.js';

export interface ReplicaConfig {
  spec: GraphSpec;
  /** Augmentation for the two views; null feeds the source images as both views. */
  augment: AugmentConfig | null;
  /** Extra small views per image (multi-crop, Caron et al. 2020); they leave BatchNorm's moving statistics alone. */
  localViews?: LocalViews | undefined;
}

/** Multi-crop: `count` more views of every image, from their own (smaller) augmentation. */
export interface LocalViews {
  count: number;
  augment: AugmentConfig;
}

/** Views per image: the two global ones and any local ones. */
export function viewsPerImage(localViews: LocalViews | undefined): number {
  return 2 + (localViews?.count ?? 0);
}

/**
 * Given the embeddings [rows, dim] of both views, returns dLoss/dEmbeddings of the same size.
 * With a key encoder (MoCo), `keys` are its embeddings of the same views, rows alike.
 */
export type LossGradient = (z: Float32Array, rows: number, dim: number, keys?: Float32Array) => Float32Array;

/** Overwrites every weight of a network from a flat vector in manifest order (no manifest check: hot path). */
export function loadWeights(network: Network, params: Float32Array): void {
  let offset = 0;
  tf.tidy(() => {
    for (const w of network.weights) {
      const size = sizeOf(w.shape);
      w.variable.assign(tf.tensor(params.subarray(offset, offset + size), w.shape, 'float32'));
      offset += size;
    }
  });
}

export class Replica {
  readonly network: Network;
  readonly manifest: WeightManifest;
  readonly gradientSize: number;
  readonly statsSize: number;
  private readonly pipeline: AugmentPipeline | null;
  private readonly local: { count: number; pipeline: AugmentPipeline } | null;
  private readonly trainable: tf.Variable[];
  private readonly pixels: number;

  constructor(config: ReplicaConfig) {
    this.network = new Network(config.spec);
    this.manifest = manifestOf(this.network);
    this.pipeline = config.augment === null ? null : createAugmentPipeline(config.augment);
    const local = config.localViews;
    if (local !== undefined && !(Number.isInteger(local.count) && local.count >= 0)) {
      throw new InvalidTrainingConfigError('localViews.count', `expected an integer >= 0, got ${local.count}`);
    }
    this.local = local !== undefined && local.count > 0 ? { count: local.count, pipeline: createAugmentPipeline(local.augment) } : null;
    this.trainable = this.network.trainableVariables();
    const sizes = this.network.weights.map((w) => ({ trainable: w.trainable, size: sizeOf(w.shape) }));
    this.gradientSize = sizes.filter((s) => s.trainable).reduce((a, s) => a + s.size, 0);
    this.statsSize = sizes.filter((s) => !s.trainable).reduce((a, s) => a + s.size, 0);
    const { height, width, channels } = config.spec.input;
    this.pixels = height * width * channels;
  }

  /** Overwrites every weight from a flat vector in manifest order (no manifest check: hot path). */
  load(params: Float32Array): void {
    loadWeights(this.network, params);
  }

  private batch(images: Float32Array, count: number): tf.Tensor4D {
    if (images.length < count * this.pixels) {
      throw new InvalidTrainingConfigError('images', `${images.length} values cannot hold ${count} images of ${this.pixels}`);
    }
    const { height, width, channels } = this.network.spec.input;
    return tf.tensor4d(images.subarray(0, count * this.pixels), [count, height, width, channels]);
  }

  /**
   * The augmented views, view-major: `global` is [view 1 of every image; view 2 of every image],
   * `local` (multi-crop) [local view 1 of every image; ...], drawn after the global ones from the
   * same random stream (so adding local views leaves the global ones unchanged).
   */
  views(images: Float32Array, count: number, seed: number): { global: tf.Tensor4D; local: tf.Tensor4D | null } {
    const [global, local] = tf.tidy(() => {
      const source = this.batch(images, count);
      const rng = createSeededRandom(seed);
      const globalViews = tf.concat(this.pipeline === null ? [source, source] : augmentTwoViews(this.pipeline, source, rng), 0);
      if (this.local === null) return [globalViews];
      const { pipeline } = this.local;
      return [globalViews, tf.concat(Array.from({ length: this.local.count }, () => pipeline.apply(source, rng)), 0)];
    });
    return { global: global as tf.Tensor4D, local: local ?? null };
  }

  /** Training-mode embeddings of all views, view-major (global, then local); only global views update BatchNorm's statistics. */
  private embedViews(views: { global: tf.Tensor4D; local: tf.Tensor4D | null }): tf.Tensor2D {
    const global = this.network.apply(views.global, true) as tf.Tensor2D;
    if (views.local === null) return global;
    // Another spatial size: its own forward pass (and batch statistics).
    const local = this.network.apply(views.local, true, undefined, { updateStats: false }) as tf.Tensor2D;
    return tf.concat([global, local], 0);
  }

  /** Training-mode forward of all views (BatchNorm on batch statistics); returns the embeddings. */
  forward(images: Float32Array, count: number, seed: number): Float32Array {
    const views = this.views(images, count, seed);
    try {
      const z = tf.tidy(() => this.embedViews(views));
      const values = z.dataSync() as Float32Array;
      z.dispose();
      return values;
    } finally {
      disposeViews(views);
    }
  }

  /** Inference-mode output of a node (default: the representation) for a batch of images. */
  embed(images: Float32Array, count: number, output?: string): Float32Array {
    // read after the tidy: tidy walks every element of a returned typed array
    const out = tf.tidy(() => this.network.apply(this.batch(images, count), false, output));
    try {
      return out.dataSync() as Float32Array;
    } finally {
      out.dispose();
    }
  }

  /**
   * Gradients of the loss w.r.t. every trainable weight (concatenated in manifest order) into
   * `gradients`, and the updated BatchNorm moving statistics into `stats`. With `keyEncoder`
   * (MoCo), the loss also gets that network's embeddings of the same global views, off the
   * gradient tape (BatchNorm on the views' batch statistics, moving statistics untouched).
   */
  gradients(images: Float32Array, count: number, seed: number, lossGradient: LossGradient, gradients: Float32Array, stats: Float32Array, keyEncoder?: Network): void {
    const views = this.views(images, count, seed);
    try {
      const keys = keyEncoder === undefined ? undefined : this.keyEmbeddings(keyEncoder, views.global);
      const { value, grads } = tf.variableGrads(() => {
        const z = this.embedViews(views);
        const [rows, dim] = z.shape;
        const dz = lossGradient(z.dataSync() as Float32Array, rows, dim, keys);
        // d/dθ of <z, dz> is exactly the chain rule through the embeddings.
        return tf.sum(tf.mul(z, tf.tensor2d(dz, [rows, dim])));
      }, this.trainable);
      value.dispose();
      let offset = 0;
      for (const v of this.trainable) {
        const g = grads[v.name] as tf.Tensor;
        gradients.set(g.dataSync() as Float32Array, offset);
        offset += g.size;
      }
      tf.dispose(grads);
      offset = 0;
      for (const w of this.network.weights) {
        if (w.trainable) continue;
        const values = w.variable.dataSync() as Float32Array;
        stats.set(values, offset);
        offset += values.length;
      }
    } finally {
      disposeViews(views);
    }
  }

  private keyEmbeddings(keyEncoder: Network, global: tf.Tensor4D): Float32Array {
    // Batch statistics of these views; the key encoder's moving statistics stay as they are.
    const keys = tf.tidy(() => keyEncoder.apply(global, true, undefined, { updateStats: false }));
    try {
      return keys.dataSync() as Float32Array;
    } finally {
      keys.dispose();
    }
  }

  dispose(): void {
    this.network.dispose();
  }
}

function disposeViews(views: { global: tf.Tensor4D; local: tf.Tensor4D | null }): void {
  views.global.dispose();
  views.local?.dispose();
}
