// A step engine owns the master copy of the weights and the optimiser, and turns a batch of
// source images into one optimiser step. The local engine computes gradients in-process; the
// parallel engine (parallel.ts) splits the batch over worker threads, one wasm backend each.
import { Network, manifestOf, totalSize, type GraphSpec, type WeightManifest, flattenWeights } from '@fedclr/tensor';
import type { AugmentConfig } from '../augment/index.js';
import { InvalidTrainingConfigError } from '../errors.js';
import { checkPairLossLabels, multiViewLossGradient, pairLossGradient, type PairLoss } from './loss.js';
import { FlatOptimizer, type OptimizerConfig, type ProximalTerm } from './optimizer.js';
import { Replica, viewsPerImage, type LocalViews } from './replica.js';

export interface StepEngineConfig {
  spec: GraphSpec;
  augment: AugmentConfig | null;
  /** Multi-crop: extra small views per image (the loss must support several views). */
  localViews?: LocalViews | undefined;
  loss: PairLoss;
  optimizer: OptimizerConfig;
  /** FedProx: pull the trainable weights towards `anchor` (applied by the optimiser, on this thread). */
  proximal?: ProximalTerm;
  /** Seed of the initial weights (ignored when `initialWeights` is given). */
  seed?: number;
  initialWeights?: Float32Array;
  /** Worker threads; 0 computes in-process. */
  workers?: number;
  /** Largest batch (source images) a step may get; sizes the workers' shared buffers. */
  maxBatch?: number;
}

export interface StepResult {
  loss: number;
}

export interface StepEngine {
  readonly manifest: WeightManifest;
  readonly workers: number;
  readonly optimizer: FlatOptimizer;
  /** The master weights (all of them, manifest order). Mutating it changes the model. */
  readonly params: Float32Array;
  /**
   * One optimiser step on `count` source images (NHWC float32 in [0, 1]); augmentation seeded by
   * `seed`; `labels` (one class per image) only for a loss that takes them (PairLoss.labels).
   */
  step(images: Float32Array, count: number, learningRate: number, seed: number, labels?: Int32Array): Promise<StepResult>;
  /** Training-mode forward of both views without gradients (for benchmarks). */
  forward(images: Float32Array, count: number, seed: number): Promise<void>;
  /** Inference-mode representations [count, dim] of a batch. */
  embed(images: Float32Array, count: number, output?: string): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** The initial flat weights and manifest of a spec. */
export function initialState(spec: GraphSpec, seed: number): { manifest: WeightManifest; params: Float32Array } {
  const network = new Network(spec, seed);
  try {
    return { manifest: manifestOf(network), params: flattenWeights(network) };
  } finally {
    network.dispose();
  }
}

export function checkBatch(images: Float32Array, count: number, pixels: number, maxBatch: number): void {
  if (!Number.isInteger(count) || count < 2) throw new InvalidTrainingConfigError('batch', `needs at least 2 images for negatives, got ${count}`);
  if (count > maxBatch) throw new InvalidTrainingConfigError('batch', `${count} images exceed the engine's maxBatch ${maxBatch}`);
  if (images.length < count * pixels) throw new InvalidTrainingConfigError('images', `${images.length} values cannot hold ${count} images of ${pixels}`);
}

const MULTI_CROP_LABELS = 'label-aware losses take two views per image (no multi-crop)';

/** Throws unless a step's labels suit the loss and the views (checked before any work starts). */
export function checkStepLabels(loss: PairLoss, labels: Int32Array | undefined, count: number, views: number): void {
  checkPairLossLabels(loss, labels, count);
  if (labels !== undefined && views !== 2) throw new InvalidTrainingConfigError('labels', MULTI_CROP_LABELS);
}

/**
 * The loss over the embeddings gathered from several replicas, each view-major ([view 1 rows;
 * view 2 rows; ...] of its own images), and each replica's share of the gradient. `labels` are
 * the whole batch's, in replica order (the order the images were split in).
 */
export function lossOverReplicas(
  loss: PairLoss,
  parts: { z: Float32Array; count: number }[],
  dim: number,
  views = 2,
  labels?: Int32Array,
): { loss: number; dz: Float32Array[] } {
  if (views !== 2) {
    if (labels !== undefined) throw new InvalidTrainingConfigError('labels', MULTI_CROP_LABELS);
    return multiViewOverReplicas(loss, parts, dim, views);
  }
  const n = parts.reduce((a, p) => a + p.count, 0);
  const z1 = new Float32Array(n * dim);
  const z2 = new Float32Array(n * dim);
  let row = 0;
  for (const p of parts) {
    z1.set(p.z.subarray(0, p.count * dim), row * dim);
    z2.set(p.z.subarray(p.count * dim, 2 * p.count * dim), row * dim);
    row += p.count;
  }
  const result = pairLossGradient(loss, z1, z2, n, dim, labels);
  row = 0;
  const dz = parts.map((p) => {
    const out = new Float32Array(2 * p.count * dim);
    out.set(result.dz1.subarray(row * dim, (row + p.count) * dim), 0);
    out.set(result.dz2.subarray(row * dim, (row + p.count) * dim), p.count * dim);
    row += p.count;
    return out;
  });
  return { loss: result.loss, dz };
}

export class LocalStepEngine implements StepEngine {
  readonly manifest: WeightManifest;
  readonly workers = 0;
  readonly optimizer: FlatOptimizer;
  readonly params: Float32Array;
  private readonly replica: Replica;
  private readonly loss: PairLoss;
  private readonly views: number;
  private readonly gradients: Float32Array;
  private readonly stats: Float32Array;
  private readonly statsOffsets: { offset: number; size: number }[];
  private readonly maxBatch: number;
  private readonly pixels: number;

  constructor(config: StepEngineConfig) {
    const init = initialState(config.spec, config.seed ?? 0);
    this.manifest = init.manifest;
    this.params = config.initialWeights ? Float32Array.from(config.initialWeights) : init.params;
    if (this.params.length !== totalSize(this.manifest)) {
      throw new InvalidTrainingConfigError('initialWeights', `${this.params.length} values, the model has ${totalSize(this.manifest)}`);
    }
    this.replica = new Replica({ spec: config.spec, augment: config.augment, localViews: config.localViews });
    this.loss = config.loss;
    this.views = viewsPerImage(config.localViews);
    this.optimizer = new FlatOptimizer(this.manifest, config.optimizer, config.proximal);
    this.gradients = new Float32Array(this.replica.gradientSize);
    this.stats = new Float32Array(this.replica.statsSize);
    this.statsOffsets = statsSegments(this.manifest);
    this.maxBatch = config.maxBatch ?? 1024;
    const { height, width, channels } = config.spec.input;
    this.pixels = height * width * channels;
  }

  async step(images: Float32Array, count: number, learningRate: number, seed: number, labels?: Int32Array): Promise<StepResult> {
    checkBatch(images, count, this.pixels, this.maxBatch);
    checkStepLabels(this.loss, labels, count, this.views);
    this.replica.load(this.params);
    let lossValue = Number.NaN;
    this.replica.gradients(images, count, seed, (z, _rows, dim) => {
      const { loss, dz } = lossOverReplicas(this.loss, [{ z, count }], dim, this.views, labels);
      lossValue = loss;
      return dz[0] as Float32Array;
    }, this.gradients, this.stats);
    this.optimizer.apply(this.params, this.gradients, learningRate);
    scatterStats(this.params, this.stats, this.statsOffsets);
    return { loss: lossValue };
  }

  async forward(images: Float32Array, count: number, seed: number): Promise<void> {
    checkBatch(images, count, this.pixels, this.maxBatch);
    this.replica.load(this.params);
    this.replica.forward(images, count, seed);
  }

  async embed(images: Float32Array, count: number, output?: string): Promise<Float32Array> {
    this.replica.load(this.params);
    return this.replica.embed(images, count, output);
  }

  async dispose(): Promise<void> {
    this.replica.dispose();
  }
}

function multiViewOverReplicas(loss: PairLoss, parts: { z: Float32Array; count: number }[], dim: number, views: number): { loss: number; dz: Float32Array[] } {
  const n = parts.reduce((a, p) => a + p.count, 0);
  // Global layout, view-major: row v·n + i is view v of image i (images numbered across replicas).
  const z = new Float32Array(views * n * dim);
  let first = 0;
  for (const p of parts) {
    for (let v = 0; v < views; v++) z.set(p.z.subarray(v * p.count * dim, (v + 1) * p.count * dim), (v * n + first) * dim);
    first += p.count;
  }
  const result = multiViewLossGradient(loss, z, views, n, dim);
  first = 0;
  const dz = parts.map((p) => {
    const out = new Float32Array(views * p.count * dim);
    for (let v = 0; v < views; v++) out.set(result.dz.subarray((v * n + first) * dim, (v * n + first + p.count) * dim), v * p.count * dim);
    first += p.count;
    return out;
  });
  return { loss: result.loss, dz };
}

/** Where the non-trainable tensors (BatchNorm statistics) sit in the flat vector. */
export function statsSegments(manifest: WeightManifest): { offset: number; size: number }[] {
  const out: { offset: number; size: number }[] = [];
  let offset = 0;
  for (const t of manifest.tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (!t.trainable) out.push({ offset, size });
    offset += size;
  }
  return out;
}

export function scatterStats(params: Float32Array, stats: Float32Array, segments: { offset: number; size: number }[]): void {
  let at = 0;
  for (const s of segments) {
    params.set(stats.subarray(at, at + s.size), s.offset);
    at += s.size;
  }
}
