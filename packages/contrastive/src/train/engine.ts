// A step engine owns the master copy of the weights and the optimiser, and turns a batch of
// source images into one optimiser step. The local engine computes gradients in-process; the
// parallel engine (parallel.ts) splits the batch over worker threads, one wasm backend each.
import { Network, inferShapes, manifestOf, totalSize, type GraphSpec, type WeightManifest, flattenWeights } from '@fedclr/tensor';
import type { AugmentConfig } from '../augment/index.js';
import { InvalidTrainingConfigError } from '../errors.js';
import { checkPairLossLabels, multiViewLossGradient, pairLossGradient, type PairLoss } from './loss.js';
import { finishMocoStep, mocoOverReplicas, type MocoLoss } from './moco.js';
import { FlatOptimizer, type OptimizerConfig, type ProximalTerm } from './optimizer.js';
import { Replica, loadWeights, viewsPerImage, type LocalViews } from './replica.js';
import { gatherViewMajor, scatterViewMajor } from './views.js';

/** What a step engine minimises: a loss of the views' embeddings, or MoCo (which also needs a key encoder and a queue). */
export type TrainingLoss = PairLoss | MocoLoss;

export function isMocoLoss(loss: TrainingLoss): loss is MocoLoss {
  return (loss as Partial<MocoLoss>).kind === 'moco';
}

export interface StepEngineConfig {
  spec: GraphSpec;
  augment: AugmentConfig | null;
  /** Multi-crop: extra small views per image (the loss must support several views). */
  localViews?: LocalViews | undefined;
  /** With MoCo, the engine binds the loss's state (key encoder, queue) and updates it every step. */
  loss: TrainingLoss;
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
export function checkStepLabels(loss: TrainingLoss, labels: Int32Array | undefined, count: number, views: number): void {
  if (isMocoLoss(loss)) {
    if (labels !== undefined) throw new InvalidTrainingConfigError('labels', 'MoCo is label-free: it takes no labels (its positive is the key of the same image)');
    return;
  }
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

/**
 * MoCo's share of an engine's set-up: two views only, and the loss's state bound to the model
 * (a fresh key encoder starts as these weights). Undefined for other losses.
 */
export function bindMoco(config: StepEngineConfig, params: Float32Array): MocoLoss | undefined {
  const loss = config.loss;
  if (!isMocoLoss(loss)) return undefined;
  if (viewsPerImage(config.localViews) !== 2) throw new InvalidTrainingConfigError('localViews', 'MoCo takes two views per image (no multi-crop)');
  const dim = inferShapes(config.spec).get(config.spec.output)?.[0] as number;
  loss.state.bind(params, dim);
  return loss;
}

/** The loss over the replicas' parts and each part's gradient; for MoCo also the keys to enqueue once the step is applied. */
export function replicaLoss(
  loss: TrainingLoss,
  parts: { z: Float32Array; count: number; keys?: Float32Array | undefined }[],
  dim: number,
  views: number,
  labels?: Int32Array,
): { loss: number; dz: Float32Array[]; enqueue?: { keys: Float32Array; count: number } } {
  if (!isMocoLoss(loss)) return lossOverReplicas(loss, parts, dim, views, labels);
  if (labels !== undefined) throw new InvalidTrainingConfigError('labels', 'MoCo is label-free: it takes no labels (its positive is the key of the same image)');
  const withKeys = parts.map((p) => {
    if (p.keys === undefined) throw new InvalidTrainingConfigError('moco', 'a replica returned no key embeddings');
    return { z: p.z, keys: p.keys, count: p.count };
  });
  const r = mocoOverReplicas(loss, withKeys, dim);
  return { loss: r.loss, dz: r.dz, enqueue: { keys: r.enqueue, count: r.count } };
}

export class LocalStepEngine implements StepEngine {
  readonly manifest: WeightManifest;
  readonly workers = 0;
  readonly optimizer: FlatOptimizer;
  readonly params: Float32Array;
  private readonly replica: Replica;
  private readonly loss: TrainingLoss;
  /** MoCo: its loss and the key encoder's network (loaded from the state's key weights each step). */
  private readonly moco: { loss: MocoLoss; network: Network } | undefined;
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
    const moco = bindMoco(config, this.params);
    this.moco = moco === undefined ? undefined : { loss: moco, network: new Network(config.spec) };
  }

  async step(images: Float32Array, count: number, learningRate: number, seed: number, labels?: Int32Array): Promise<StepResult> {
    checkBatch(images, count, this.pixels, this.maxBatch);
    checkStepLabels(this.loss, labels, count, this.views);
    this.replica.load(this.params);
    if (this.moco !== undefined) loadWeights(this.moco.network, this.moco.loss.state.key as Float32Array);
    let lossValue = Number.NaN;
    let enqueue: { keys: Float32Array; count: number } | undefined;
    this.replica.gradients(images, count, seed, (z, _rows, dim, keys) => {
      const result = replicaLoss(this.loss, [{ z, count, keys }], dim, this.views, labels);
      lossValue = result.loss;
      enqueue = result.enqueue;
      return result.dz[0] as Float32Array;
    }, this.gradients, this.stats, this.moco?.network);
    this.optimizer.apply(this.params, this.gradients, learningRate);
    scatterStats(this.params, this.stats, this.statsOffsets);
    if (this.moco !== undefined && enqueue !== undefined) finishMocoStep(this.moco.loss, this.params, enqueue.keys, enqueue.count);
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
    this.moco?.network.dispose();
  }
}

function multiViewOverReplicas(loss: PairLoss, parts: { z: Float32Array; count: number }[], dim: number, views: number): { loss: number; dz: Float32Array[] } {
  const { rows, n } = gatherViewMajor(parts, dim, views);
  const result = multiViewLossGradient(loss, rows, views, n, dim);
  return { loss: result.loss, dz: scatterViewMajor(result.dz, parts, dim, views) };
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
