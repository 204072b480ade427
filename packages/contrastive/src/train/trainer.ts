// Local contrastive training over a dataset: epochs or a wall-clock budget, warm-up + cosine
// learning rate, per-epoch loss, and checkpoints that resume exactly where they stopped (same
// shuffles, same optimiser moments).
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng, type ImageDataset } from '@fedclr/data';
import { loadModel, saveModel, type GraphSpec, type WeightManifest } from '@fedclr/tensor';
import type { AugmentConfig } from '../augment/index.js';
import { InvalidTrainingConfigError, LabelsRequiredError } from '../errors.js';
import { isMocoLoss, type StepEngine, type TrainingLoss } from './engine.js';
import { RECIPE_DEFAULTS } from '../recipe.js';
import { createStepEngine } from './parallel.js';
import { loadMocoCheckpoint, saveMocoCheckpoint } from './moco-checkpoint.js';
import type { LocalViews } from './replica.js';
import type { OptimizerConfig, ProximalTerm } from './optimizer.js';

export interface TrainerConfig {
  spec: GraphSpec;
  augment: AugmentConfig | null;
  /** Multi-crop: extra small views per image, from their own augmentation. */
  localViews?: LocalViews | undefined;
  /** A pair loss (NT-Xent, DCL, triplet, margin, SupCon), or MoCo, whose state (key encoder, queue) the run updates and checkpoints. */
  loss: TrainingLoss;
  /**
   * Give the loss the dataset's class labels (its supervised form; the loss must take labels,
   * PairLoss.labels; MoCo is label-free). Default false: labels are never used.
   */
  useLabels?: boolean;
  optimizer: OptimizerConfig;
  /** FedProx: adds mu·(w - anchor) to the gradient of every trainable weight (anchor: the global model). */
  proximal?: ProximalTerm;
  learningRate: number;
  /** Steps of linear warm-up. Default: 2% of the run (at least 1 step). */
  warmupSteps?: number;
  /** Learning rate at the end of the cosine, as a fraction of the peak. Default 0. */
  finalFraction?: number;
  batchSize: number;
  /** Stop after this many epochs... */
  epochs?: number;
  /** ...or this many minutes of wall-clock time (the cosine then runs over time), whichever first. */
  minutes?: number;
  /** Hard cap on optimiser steps (tests, smoke runs). */
  maxSteps?: number;
  workers?: number;
  seed: number;
  initialWeights?: Float32Array;
  /** Where to keep a resumable checkpoint; `resume` continues from it if it exists. */
  checkpointDir?: string;
  checkpointEveryMinutes?: number;
  resume?: boolean;
  onProgress?: (progress: TrainProgress) => void;
  signal?: AbortSignal;
}

export interface TrainProgress {
  step: number;
  epoch: number;
  /** Fraction of the whole run done, 0..1. */
  fraction: number;
  loss: number;
  learningRate: number;
  elapsedMs: number;
  etaMs: number;
  imagesPerSec: number;
  /** Set on the last step of an epoch: that epoch's mean loss. */
  epochLoss?: number;
}

export interface TrainResult {
  weights: Float32Array;
  manifest: WeightManifest;
  steps: number;
  epochsCompleted: number;
  epochLosses: number[];
  elapsedMs: number;
  imagesSeen: number;
  stoppedBy: 'epochs' | 'minutes' | 'maxSteps' | 'signal';
}

interface TrainerState {
  version: 1;
  architecture: string;
  seed: number;
  batchSize: number;
  step: number;
  epoch: number;
  batchInEpoch: number;
  elapsedMs: number;
  imagesSeen: number;
  epochLosses: number[];
  epochLossSum: number;
  epochBatches: number;
  optimizerStep: number;
  optimizerKind: string;
}

const STATE_FILE = 'trainer.json';
const MOMENTS_FILE = 'optimizer.bin';
const MODEL_DIR = 'model';

function check(config: TrainerConfig, count: number, pixels: number, dataset: ImageDataset): void {
  const { height, width, channels } = config.spec.input;
  if (dataset.height !== height || dataset.width !== width || dataset.channels !== channels) {
    throw new InvalidTrainingConfigError('dataset', `images are ${dataset.height}x${dataset.width}x${dataset.channels}, the model takes ${height}x${width}x${channels}`);
  }
  if (!Number.isInteger(config.batchSize) || config.batchSize < 2) throw new InvalidTrainingConfigError('batchSize', `expected an integer >= 2, got ${config.batchSize}`);
  if (count < config.batchSize) throw new InvalidTrainingConfigError('batchSize', `${config.batchSize} exceeds the ${count} images available`);
  if (config.epochs === undefined && config.minutes === undefined && config.maxSteps === undefined) {
    throw new InvalidTrainingConfigError('budget', 'give epochs, minutes or maxSteps');
  }
  for (const [name, v] of [['epochs', config.epochs], ['minutes', config.minutes], ['maxSteps', config.maxSteps], ['learningRate', config.learningRate]] as const) {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new InvalidTrainingConfigError(name, `expected a positive number, got ${String(v)}`);
  }
  if (dataset.images.length < count * pixels) throw new InvalidTrainingConfigError('dataset', 'image buffer shorter than count images');
  if (config.useLabels === true) {
    if (isMocoLoss(config.loss)) throw new InvalidTrainingConfigError('useLabels', 'MoCo takes no labels (it is label-free)');
    if (dataset.labels === null || dataset.labels.length < count) throw new InvalidTrainingConfigError('useLabels', 'the dataset has no labels (read an image folder with labeled: true)');
    if (config.loss.labels === undefined) throw new InvalidTrainingConfigError('useLabels', 'this loss takes no labels (it is label-free)');
  } else if (!isMocoLoss(config.loss) && config.loss.labels === 'required') {
    throw new LabelsRequiredError('this loss', 'set useLabels with a labeled dataset');
  }
}

async function saveCheckpoint(dir: string, engine: StepEngine, config: TrainerConfig, state: TrainerState): Promise<void> {
  const temp = `${dir}.tmp-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  await saveModel(join(temp, MODEL_DIR), config.spec, engine.params, { step: state.step, epoch: state.epoch });
  const { m, v } = engine.optimizer.state;
  const moments = new Float32Array(m.length + v.length);
  moments.set(m, 0);
  moments.set(v, m.length);
  await writeFile(join(temp, MOMENTS_FILE), new Uint8Array(moments.buffer));
  await writeFile(join(temp, STATE_FILE), JSON.stringify(state, null, 1));
  if (isMocoLoss(config.loss)) await saveMocoCheckpoint(temp, config.loss.state);
  await rm(dir, { recursive: true, force: true });
  await rename(temp, dir);
}

async function loadCheckpoint(dir: string, config: TrainerConfig): Promise<{ state: TrainerState; weights: Float32Array; moments: Float32Array } | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // no checkpoint yet: a fresh run
    throw err;
  }
  const state = JSON.parse(text) as TrainerState;
  if (state.version !== 1 || state.architecture !== config.spec.name || state.seed !== config.seed || state.batchSize !== config.batchSize) {
    throw new InvalidTrainingConfigError(
      'resume',
      `checkpoint in ${dir} is for ${state.architecture} seed ${state.seed} batch ${state.batchSize}; this run is ${config.spec.name} seed ${config.seed} batch ${config.batchSize}`,
    );
  }
  const model = await loadModel(join(dir, MODEL_DIR), config.spec);
  const bytes = await readFile(join(dir, MOMENTS_FILE));
  return { state, weights: model.weights, moments: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) };
}

/** Trains a contrastive model on the images of a dataset (and their labels, with useLabels). */
export async function trainContrastive(dataset: ImageDataset, config: TrainerConfig): Promise<TrainResult> {
  const count = dataset.count;
  const pixels = dataset.height * dataset.width * dataset.channels;
  check(config, count, pixels, dataset);
  const batchSize = config.batchSize;
  const batchesPerEpoch = Math.floor(count / batchSize);

  const resumed = config.resume && config.checkpointDir ? await loadCheckpoint(config.checkpointDir, config) : undefined;
  // Before the engine binds the state: it then continues the saved key encoder and queue.
  if (resumed && isMocoLoss(config.loss)) await loadMocoCheckpoint(config.checkpointDir as string, config.loss.state);
  const engine = await createStepEngine({
    spec: config.spec,
    augment: config.augment,
    ...(config.localViews !== undefined ? { localViews: config.localViews } : {}),
    loss: config.loss,
    optimizer: config.optimizer,
    ...(config.proximal !== undefined ? { proximal: config.proximal } : {}),
    seed: config.seed,
    workers: config.workers ?? 0,
    maxBatch: batchSize,
    ...(resumed ? { initialWeights: resumed.weights } : config.initialWeights ? { initialWeights: config.initialWeights } : {}),
  });
  const state: TrainerState = resumed?.state ?? {
    version: 1,
    architecture: config.spec.name,
    seed: config.seed,
    batchSize,
    step: 0,
    epoch: 0,
    batchInEpoch: 0,
    elapsedMs: 0,
    imagesSeen: 0,
    epochLosses: [],
    epochLossSum: 0,
    epochBatches: 0,
    optimizerStep: 0,
    optimizerKind: config.optimizer.kind,
  };
  if (resumed) {
    const { m, v } = engine.optimizer.state;
    engine.optimizer.restore({ kind: engine.optimizer.state.kind, step: state.optimizerStep, m: resumed.moments.subarray(0, m.length), v: resumed.moments.subarray(m.length, m.length + v.length) });
  }

  const totalSteps = config.epochs !== undefined ? Math.ceil(config.epochs * batchesPerEpoch) : undefined;
  const stepCap = Math.min(totalSteps ?? Infinity, config.maxSteps ?? Infinity);
  const budgetMs = config.minutes !== undefined ? config.minutes * 60_000 : Infinity;
  // The recipe's central schedule (recipe.ts): warm-up for 2% of the run, cosine to 0.
  const warmup = config.warmupSteps ?? Math.max(1, Math.round(RECIPE_DEFAULTS.centralSchedule.warmupFraction * (Number.isFinite(stepCap) ? stepCap : batchesPerEpoch)));
  const finalFraction = config.finalFraction ?? RECIPE_DEFAULTS.centralSchedule.finalFraction;
  const rootRng = createRng(config.seed);
  const batch = new Float32Array(batchSize * pixels);
  const labels = config.useLabels === true ? dataset.labels : null;
  const batchLabels = labels === null ? undefined : new Int32Array(batchSize);
  const started = performance.now() - state.elapsedMs;
  let lastCheckpoint = performance.now();
  let order = rootRng.fork(`epoch:${state.epoch}`).shuffle(Int32Array.from({ length: count }, (_, i) => i));
  let stoppedBy: TrainResult['stoppedBy'] = 'maxSteps';
  const fractionDone = (elapsed: number): number => Math.min(1, Math.max(state.step / stepCap, elapsed / budgetMs));

  try {
    for (;;) {
      const elapsed = performance.now() - started;
      if (state.step >= stepCap) {
        stoppedBy = totalSteps !== undefined && state.step >= totalSteps ? 'epochs' : 'maxSteps';
        break;
      }
      if (elapsed >= budgetMs) {
        stoppedBy = 'minutes';
        break;
      }
      if (config.signal?.aborted) {
        stoppedBy = 'signal';
        break;
      }
      const begin = state.batchInEpoch * batchSize;
      for (let i = 0; i < batchSize; i++) {
        const src = (order[begin + i] as number) * pixels;
        for (let p = 0; p < pixels; p++) batch[i * pixels + p] = (dataset.images[src + p] as number) / 255;
        if (batchLabels !== undefined) batchLabels[i] = (labels as Uint8Array)[order[begin + i] as number] as number;
      }
      const fraction = fractionDone(elapsed);
      const learningRate =
        state.step < warmup
          ? (config.learningRate * (state.step + 1)) / warmup
          : config.learningRate * (finalFraction + (1 - finalFraction) * 0.5 * (1 + Math.cos(Math.PI * fraction)));
      const { loss } = await engine.step(batch, batchSize, learningRate, config.seed * 1_000_003 + state.step, batchLabels);
      // An in-process step blocks the thread; let I/O (an agent's socket heartbeats) run between steps.
      await new Promise((resolve) => setImmediate(resolve));
      if (!Number.isFinite(loss)) throw new InvalidTrainingConfigError('learningRate', `the loss diverged (${loss}) at step ${state.step}; lower the learning rate`);
      state.step++;
      state.imagesSeen += batchSize;
      state.epochLossSum += loss;
      state.epochBatches++;
      state.batchInEpoch++;
      let epochLoss: number | undefined;
      if (state.batchInEpoch === batchesPerEpoch) {
        epochLoss = state.epochLossSum / state.epochBatches;
        state.epochLosses.push(epochLoss);
        state.epoch++;
        state.batchInEpoch = 0;
        state.epochLossSum = 0;
        state.epochBatches = 0;
        order = rootRng.fork(`epoch:${state.epoch}`).shuffle(Int32Array.from({ length: count }, (_, i) => i));
      }
      const now = performance.now() - started;
      state.elapsedMs = now;
      state.optimizerStep = engine.optimizer.state.step;
      const done = fractionDone(now);
      config.onProgress?.({
        step: state.step,
        epoch: state.epoch,
        fraction: done,
        loss,
        learningRate,
        elapsedMs: now,
        etaMs: done > 0 ? (now / done) * (1 - done) : Infinity,
        imagesPerSec: (state.imagesSeen * 1000) / Math.max(1, now),
        ...(epochLoss !== undefined ? { epochLoss } : {}),
      });
      if (config.checkpointDir && performance.now() - lastCheckpoint > (config.checkpointEveryMinutes ?? 5) * 60_000) {
        await saveCheckpoint(config.checkpointDir, engine, config, state);
        lastCheckpoint = performance.now();
      }
    }
    if (config.checkpointDir) await saveCheckpoint(config.checkpointDir, engine, config, state);
    return {
      weights: Float32Array.from(engine.params),
      manifest: engine.manifest,
      steps: state.step,
      epochsCompleted: state.epoch,
      epochLosses: [...state.epochLosses],
      elapsedMs: state.elapsedMs,
      imagesSeen: state.imagesSeen,
      stoppedBy,
    };
  } finally {
    await engine.dispose();
  }
}
