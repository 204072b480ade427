// The real LocalTrainer: contrastive training (on two augmented views, with the round's loss:
// a pair loss such as NT-Xent, or MoCo) of the global model on the agent's private images,
// through @fedclr/contrastive's trainContrastive.
//
// What it trains is the coordinator's: every round config carries the training recipe
// (`recipe`: architecture and augmentation; the rest are the config's own fields), and the
// trainer builds its encoder and augmentation from it (@fedclr/contrastive recipeModelSpec,
// recipeAugmentConfig). Its own options only tighten its limits (steps, minutes, threads, a
// training slot). It refuses (FEDCLR_AGENT_RECIPE_REFUSED) a recipe it cannot run: none sent
// (unless the trainer was given a fixed spec for recipe-less rounds), an unknown encoder, an input
// its images cannot have (a fixed dataset of another shape), a view larger than the images.
// With a loader instead of a fixed dataset, the images are read at the recipe's input size.
//
// Round config -> trainer:
//   recipe.model  -> the model (encoder, widths, head, input); the round's manifest must be its
//   recipe.augment -> SimCLR's pipeline with the recipe's view size, smallest crop and strength
//   recipe.weightDecay -> decoupled weight decay (Adam) or L2 (SGD) on kernels
//   localEpochs   -> epochs                 (or fewer: maxStepsPerRound, maxMinutesPerRound, and
//                                             deadlineFraction * deadlineMs, whichever comes first;
//                                             time spent waiting, for a training slot or for the
//                                             previous round's training, comes off the last one)
//   batchSize     -> batchSize              (capped at the local image count)
//   learningRate  -> learningRate           (constant within a round: no warm-up, no decay, unless
//                                             the trainer options say otherwise)
//   optimizer     -> adam | sgd (plain, momentum 0) | momentum (SGD, Nesterov momentum 0.9)
//   loss, temperature, margin, mining -> the loss (@fedclr/contrastive recipeLoss); a loss that
//                    needs labels (supcon) is refused (RecipeRefusedError) when the agent has none
//                    (useLabels: opt-in, and the labels never leave the agent). Triplet and margin
//                    train label-aware with labels, label-free without. moco (recipe.moco:
//                    key-encoder EMA rate, queue size capped at half the images) is label-free;
//                    its queue is kept between the rounds of a run, the key encoder reset to each
//                    round's global weights (moco-rounds.ts)
//   fedproxMu     -> > 0: FedProx, the gradient of every trainable weight gets mu * (w - global)
//                    (the round's global weights; BatchNorm statistics are left alone)
//   seed          -> shuffling and augmentation seed (default: the round id)
//   clipNorm, dp  -> applied by the agent to the delta, not here
//
// Output: the trained weights, exampleCount = images trained on (steps x batch), and metrics
// {loss (last completed epoch's mean, else the mean of the steps run), steps, imagesPerSec,
// epochs, trainMs (the training loop), setupMs (engine creation and teardown), batchSize}, plus
// slotWaitMs (waiting for the gate's training slot) with a gate, and mocoQueued (MoCo: keys in
// the run's queue when the round began). Waiting is in neither trainMs nor setupMs.
import type { Logger } from 'pino';
import {
  checkAugmentRecipe,
  checkLossRecipe,
  checkMocoRecipe,
  checkModelRecipe,
  gray28Config,
  isMocoLoss,
  queueCapacityFor,
  RECIPE_LOSS_LABELS,
  recipeAugmentConfig,
  recipeLoss,
  recipeMoco,
  recipeModelSpec,
  recipePairLoss,
  recipeOptimizer,
  simclrRgbConfig,
  trainContrastive,
  type AugmentConfig,
  type EncoderName,
  type InputShape,
  type LossRecipe,
  type OptimizerConfig,
  type PairLoss,
  type Recipe,
  type TrainingLoss,
} from '@fedclr/contrastive';
import type { ImageDataset } from '@fedclr/data';
import type { Manifest, RoundConfig, RoundRecipe } from '@fedclr/protocol';
import { manifestOfSpec, type GraphSpec } from '@fedclr/tensor';
import { AgentConfigError, isAgentError, RecipeRefusedError, RoundAbortedError, RoundUnsupportedError, TrainingFailedError } from './errors.js';
import { MocoRounds } from './moco-rounds.js';
import type { LocalTrainer, ProgressCallback, TrainingGate, TrainingSlot, TrainInput, TrainOutput } from './trainer.js';

/** Reads the agent's images at an input shape (e.g. an image folder, resized on decode). */
export type ImageLoader = (input: InputShape) => Promise<ImageDataset>;

/** What one round trains with: the coordinator's recipe, resolved (see planRound). */
export interface TrainingPlan {
  readonly round: number;
  /** The recipe as the trainer runs it; null for a recipe-less round on the trainer's fixed spec. */
  readonly recipe: Recipe | null;
  readonly spec: GraphSpec;
  readonly augment: AugmentConfig | null;
  readonly optimizer: OptimizerConfig;
  /** The round's loss and its hyperparameters (MoCo's from the recipe's moco block), and the trainer's form of it (null for MoCo, built per round with its state). */
  readonly loss: LossRecipe & Pick<Recipe, 'moco'>;
  readonly pairLoss: PairLoss | null;
  /** True when the loss trains on this agent's labels (label-aware), false when on views alone. */
  readonly labelled: boolean;
}

/** Default share of a round's deadline that the training loop may use. */
export const DEFAULT_DEADLINE_FRACTION = 0.8;

export interface ContrastiveTrainerOptions {
  /**
   * The agent's private images: a fixed dataset (a recipe for another input shape is refused), or
   * a loader that reads them at the recipe's input shape (called once per shape, then cached).
   * Their labels are used only with `useLabels`.
   */
  readonly dataset: ImageDataset | ImageLoader;
  /**
   * Opt-in: train the losses that take labels (triplet, margin: their label-aware form; supcon,
   * which needs them) on the dataset's labels, which must be there. The labels stay on this agent:
   * only weight updates leave it. Default false: labels are never used, and a supcon round is
   * refused.
   */
  readonly useLabels?: boolean;
  /**
   * Only for rounds that carry no recipe (library use, tests): the model to train then. Rounds
   * with a recipe build their model from it. Without `spec`, a recipe-less round is refused.
   */
  readonly spec?: GraphSpec;
  /** Augmentations of recipe-less rounds; default gray28Config() for 1 channel, SimCLR RGB (strength 0.5, no blur) for 3. */
  readonly augment?: AugmentConfig | null;
  /** Training threads (0: in-process). Default 0. */
  readonly workers?: number;
  /** Hard cap on optimiser steps per round (smoke runs, simulations on small machines). */
  readonly maxStepsPerRound?: number;
  /** Hard cap on training minutes per round. */
  readonly maxMinutesPerRound?: number;
  /**
   * Share of the round's deadlineMs that the training loop may use; the rest covers engine
   * set-up, building the update and the upload. Training then stops early with a result
   * instead of being aborted at the deadline. Default 0.8. The budget is counted from the call
   * to train(): time spent waiting (for a training slot, or for the previous training) comes
   * off it.
   */
  readonly deadlineFraction?: number;
  /**
   * Acquired before each training (engine set-up, training loop, teardown) and always released
   * after it, also on failure or abort. Waiting for it counts in neither trainMs nor setupMs, but
   * in the metric slotWaitMs.
   */
  readonly gate?: TrainingGate;
  /** Weight decay of recipe-less rounds (a recipe carries its own). Default 0. */
  readonly weightDecay?: number;
  /** Linear warm-up steps at the start of each round. Default 0. */
  readonly warmupSteps?: number;
  /** Learning rate at the end of a round as a fraction of the peak (cosine). Default 1: constant. */
  readonly finalFraction?: number;
  /** MoCo's state between rounds (moco-rounds.ts); default one per trainer. Given by tests to look at it. */
  readonly moco?: MocoRounds;
  /** Called with what each round trains with, before it trains (logs, tests). */
  readonly onPlan?: (plan: TrainingPlan) => void;
  readonly logger?: Logger;
}

/** The protocol manifest (names, shapes, dtypes in flat-vector order) of a model spec. */
export function protocolManifest(spec: GraphSpec): Manifest {
  return manifestOfSpec(spec).tensors.map((t) => ({ name: t.name, shape: [...t.shape], dtype: t.dtype }));
}

/** Architecture id of a spec for a given input size, e.g. 'convnet-s+mlp128-128@28x28x1'. */
export function architectureId(spec: GraphSpec): string {
  return `${spec.name}@${spec.input.height}x${spec.input.width}x${spec.input.channels}`;
}

function positive(name: string, v: number | undefined, integer: boolean): void {
  if (v === undefined) return;
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new AgentConfigError(`trainer.${name}`, integer ? 'a positive integer' : 'a positive number', String(v));
  }
}

function manifestProblem(expected: Manifest, got: Manifest): string | undefined {
  if (expected.length !== got.length) return `the round's model has ${got.length} tensors, this agent's ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as Manifest[number];
    const g = got[i] as Manifest[number];
    if (e.name !== g.name || e.dtype !== g.dtype || e.shape.join('x') !== g.shape.join('x')) {
      return `tensor ${i} is '${g.name}' ${g.dtype}[${g.shape.join(',')}], this agent's model has '${e.name}' ${e.dtype}[${e.shape.join(',')}]`;
    }
  }
  return undefined;
}

/** The wire form of a recipe (round config `recipe`): its model, augmentation and weight decay; the rest travels in the config's own fields. */
export function wireRecipe(recipe: Recipe): RoundRecipe {
  return {
    model: { encoder: recipe.model.encoder, widths: [...recipe.model.widths], head: { ...recipe.model.head }, input: { ...recipe.model.input } },
    augment: { ...recipe.augment },
    weightDecay: recipe.weightDecay,
    ...(recipe.loss === 'moco' ? { moco: { ...recipeMoco(recipe) } } : {}),
  };
}

/** The loss of a round config: its loss, temperature, and margin and mining where it has them. */
export function roundLoss(config: RoundConfig): LossRecipe {
  return {
    loss: config.loss,
    temperature: config.temperature,
    ...(config.margin !== undefined ? { margin: config.margin } : {}),
    ...(config.mining !== undefined ? { mining: config.mining } : {}),
  };
}

/** The contrastive recipe of a round: the wire recipe plus the config's optimizer, rate, batch and loss. */
export function roundRecipe(config: RoundConfig, wire: RoundRecipe): Recipe {
  return {
    model: { encoder: wire.model.encoder as EncoderName, widths: [...wire.model.widths], head: { ...wire.model.head }, input: { ...wire.model.input } },
    augment: { ...wire.augment },
    optimizer: config.optimizer,
    learningRate: config.learningRate,
    weightDecay: wire.weightDecay,
    batchSize: config.batchSize,
    ...roundLoss(config),
    ...(wire.moco !== undefined ? { moco: { ...wire.moco } } : {}),
  };
}

/**
 * The round's loss for this agent: refused (RecipeRefusedError, the reason the coordinator
 * records) when this build cannot train it, or when it needs labels this agent does not use.
 */
function lossOfRound(round: number, loss: LossRecipe, useLabels: boolean): { pairLoss: PairLoss | null; labelled: boolean } {
  const use = RECIPE_LOSS_LABELS[loss.loss];
  if (use === 'required' && !useLabels) {
    throw new RecipeRefusedError(round, `loss '${loss.loss}' needs class labels and this agent trains without them (an agent opts in to its own labels, e.g. fedclr agent --labels folders; they never leave it)`);
  }
  try {
    checkLossRecipe(loss);
    // MoCo is label-free (an agent's labels are not used) and built per round (its state: moco-rounds.ts).
    if (loss.loss === 'moco') return { pairLoss: null, labelled: false };
    return { pairLoss: recipePairLoss(loss), labelled: useLabels && use !== 'none' };
  } catch (err) {
    throw new RecipeRefusedError(round, (err as Error).message);
  }
}

function abortError(round: number, signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (isAgentError(reason)) return reason;
  return new RoundAbortedError(round, reason instanceof Error ? reason.message : String(reason ?? 'aborted'));
}

/** A LocalTrainer that trains the global model contrastively on `options.dataset`. */
export function createContrastiveTrainer(options: ContrastiveTrainerOptions): LocalTrainer {
  const fixed = typeof options.dataset === 'function' ? undefined : options.dataset;
  const useLabels = options.useLabels ?? false;
  const checkImages = (dataset: ImageDataset, field: string): void => {
    if (!Number.isInteger(dataset.count) || dataset.count < 2) {
      throw new AgentConfigError(field, 'at least 2 images (contrastive training needs negatives)', String(dataset.count));
    }
    if (useLabels && dataset.labels === null) throw new AgentConfigError(field, 'labelled images (useLabels is set)', 'images without labels');
  };
  if (fixed !== undefined) {
    checkImages(fixed, 'trainer.dataset');
    if (options.spec !== undefined) {
      const { height, width, channels } = options.spec.input;
      if (fixed.height !== height || fixed.width !== width || fixed.channels !== channels) {
        throw new AgentConfigError('trainer.dataset', `images of ${height}x${width}x${channels} (the model's input)`, `${fixed.height}x${fixed.width}x${fixed.channels}`);
      }
    }
  }
  positive('maxStepsPerRound', options.maxStepsPerRound, true);
  positive('maxMinutesPerRound', options.maxMinutesPerRound, false);
  positive('deadlineFraction', options.deadlineFraction, false);
  if ((options.deadlineFraction ?? DEFAULT_DEADLINE_FRACTION) > 1) throw new AgentConfigError('trainer.deadlineFraction', 'at most 1', String(options.deadlineFraction));
  const workers = options.workers ?? 0;
  if (!Number.isInteger(workers) || workers < 0) throw new AgentConfigError('trainer.workers', 'an integer >= 0', String(workers));
  const log = options.logger;
  // Loaded images, per input shape (a loader is called once per shape).
  const loaded = new Map<string, Promise<ImageDataset>>();

  /** The images at `input`: the fixed dataset (which must have that shape), or the loader's. */
  const imagesFor = async (round: number, input: InputShape): Promise<ImageDataset> => {
    const shape = `${input.height}x${input.width}x${input.channels}`;
    if (fixed !== undefined) {
      const own = `${fixed.height}x${fixed.width}x${fixed.channels}`;
      if (own !== shape) throw new RecipeRefusedError(round, `the recipe's model takes ${shape} images; this agent's images are ${own} and it cannot resize them`);
      return fixed;
    }
    let pending = loaded.get(shape);
    if (pending === undefined) {
      pending = (options.dataset as ImageLoader)(input);
      loaded.set(shape, pending);
      pending.catch(() => loaded.delete(shape));
    }
    const dataset = await pending;
    if (dataset.height !== input.height || dataset.width !== input.width || dataset.channels !== input.channels) {
      throw new RecipeRefusedError(round, `the image loader returned ${dataset.height}x${dataset.width}x${dataset.channels} images for a ${shape} recipe`);
    }
    checkImages(dataset, 'trainer.dataset (loaded)');
    return dataset;
  };

  /** What the round trains with: built from its recipe, or the fixed spec of a recipe-less round. */
  const planRound = (round: number, config: RoundConfig): TrainingPlan => {
    if (config.recipe === undefined) {
      if (options.spec === undefined) throw new RecipeRefusedError(round, 'the round config carries no recipe (a coordinator of protocol 2.1 or later sends the model and augmentation with every round)');
      const { channels } = options.spec.input;
      const augment = options.augment !== undefined ? options.augment : channels === 1 ? gray28Config() : simclrRgbConfig({ strength: 0.5, blur: false });
      const loss = roundLoss(config);
      return { round, recipe: null, spec: options.spec, augment, optimizer: recipeOptimizer(config.optimizer, options.weightDecay ?? 0), loss, ...lossOfRound(round, loss, useLabels) };
    }
    const recipe = roundRecipe(config, config.recipe);
    let spec: GraphSpec;
    try {
      checkModelRecipe(recipe.model, 'recipe.model');
      checkAugmentRecipe(recipe.augment, recipe.model.input, 'recipe.augment');
      if (recipe.moco !== undefined) checkMocoRecipe(recipe.moco, 'recipe.moco');
      spec = recipeModelSpec(recipe.model);
    } catch (err) {
      throw new RecipeRefusedError(round, (err as Error).message);
    }
    const loss = { ...roundLoss(config), ...(recipe.moco !== undefined ? { moco: recipe.moco } : {}) };
    return { round, recipe, spec, augment: recipeAugmentConfig(recipe.augment, recipe.model.input.channels), optimizer: recipeOptimizer(recipe.optimizer, recipe.weightDecay), loss, ...lossOfRound(round, loss, useLabels) };
  };
  const moco = options.moco ?? new MocoRounds();
  /** The round's loss: the plan's pair loss, or MoCo continuing this run's queue (moco-rounds.ts). */
  const lossFor = (input: TrainInput, plan: TrainingPlan, images: number): TrainingLoss => {
    if (plan.pairLoss !== null) return plan.pairLoss;
    // A recipe-less round: the config's loss and temperature, MoCo's default hyperparameters.
    const queueSize = queueCapacityFor(recipeMoco(plan.loss).queueSize, images);
    return recipeLoss(plan.loss, images, moco.stateFor(input.round, `${input.lineage ?? ''}|${architectureId(plan.spec)}`, queueSize, input.globalWeights));
  };
  // One training at a time: a round aborted by the agent stops at its next step, and the next
  // round waits for it so two engines never compete for the same cores.
  let running: Promise<unknown> = Promise.resolve();

  /** `calledAt`: performance.now() when train() was called, about when the round started here. */
  const trainOnce = async (input: TrainInput, signal: AbortSignal, calledAt: number, onProgress?: ProgressCallback): Promise<TrainOutput> => {
    const { round, config, globalWeights, manifest } = input;
    if (signal.aborted) throw abortError(round, signal);
    const plan = planRound(round, config);
    const { spec, augment } = plan;
    const expected = protocolManifest(spec);
    const problem = manifestProblem(expected, manifest);
    if (problem !== undefined) throw new RoundUnsupportedError(round, `model mismatch: ${problem}`);
    const parameters = expected.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
    if (globalWeights.length !== parameters) throw new RoundUnsupportedError(round, `${globalWeights.length} weights for a model of ${parameters}`);
    const dataset = await imagesFor(round, spec.input);
    if (signal.aborted) throw abortError(round, signal);
    options.onPlan?.(plan);

    const batchSize = Math.min(config.batchSize, dataset.count);
    const waitStarted = performance.now();
    let slot: TrainingSlot | undefined;
    if (options.gate !== undefined) {
      try {
        slot = await options.gate.acquire(signal);
      } catch (err) {
        if (signal.aborted) throw abortError(round, signal);
        throw new TrainingFailedError(round, `no training slot: ${(err as Error).message ?? String(err)}`);
      }
    }
    const started = performance.now();
    // The loop's budget is deadlineFraction of the deadline, counted from the call to train() (about
    // when the round reached this agent): waiting comes off it, so a late start does not run into
    // the deadline. The rest of the deadline covers set-up, the update and the upload.
    const budgetMs = (options.deadlineFraction ?? DEFAULT_DEADLINE_FRACTION) * config.deadlineMs - (started - calledAt);
    const minutes = Math.min(budgetMs / 60_000, options.maxMinutesPerRound ?? Infinity);
    let stepLossSum = 0;
    let steps = 0;
    let result: Awaited<ReturnType<typeof trainContrastive>> | undefined;
    const trainingLoss = lossFor(input, plan, dataset.count);
    // MoCo: keys this run's queue held when the round began (0 in a run's first round).
    const queued = isMocoLoss(trainingLoss) ? (trainingLoss.state.queue?.length ?? 0) : undefined;
    try {
      if (signal.aborted) throw abortError(round, signal);
      if (minutes <= 0) throw new TrainingFailedError(round, `no time left for training before the round deadline after waiting ${((started - calledAt) / 1000).toFixed(1)} s`);
      log?.debug({ round, batchSize, epochs: config.localEpochs, minutes, maxSteps: options.maxStepsPerRound, waitedMs: Math.round(started - calledAt) }, 'local training started');
      result = await trainContrastive(dataset, {
        spec,
        augment,
        loss: trainingLoss,
        useLabels: plan.labelled,
        optimizer: plan.optimizer,
        // The optimiser copies the anchor: globalWeights stays the round's global model.
        ...(config.fedproxMu > 0 ? { proximal: { mu: config.fedproxMu, anchor: globalWeights } } : {}),
        learningRate: config.learningRate,
        warmupSteps: options.warmupSteps ?? 0,
        finalFraction: options.finalFraction ?? 1,
        batchSize,
        epochs: config.localEpochs,
        minutes,
        ...(options.maxStepsPerRound !== undefined ? { maxSteps: options.maxStepsPerRound } : {}),
        workers,
        seed: config.seed ?? round,
        initialWeights: globalWeights,
        signal,
        onProgress: (p) => {
          stepLossSum += p.loss;
          steps = p.step;
          onProgress?.(p.fraction);
        },
      });
    } finally {
      slot?.release({ trainMs: Math.round(result?.elapsedMs ?? 0) });
    }
    const totalMs = performance.now() - started;
    if (signal.aborted || result.stoppedBy === 'signal') throw abortError(round, signal);
    if (result.steps === 0) throw new TrainingFailedError(round, `no training step fitted in the budget (${minutes.toFixed(3)} min)`);
    const loss = result.epochLosses.length > 0 ? (result.epochLosses[result.epochLosses.length - 1] as number) : stepLossSum / Math.max(1, steps);
    const metrics = {
      loss,
      steps: result.steps,
      imagesPerSec: (result.imagesSeen * 1000) / Math.max(1, result.elapsedMs),
      epochs: result.epochsCompleted,
      trainMs: Math.round(result.elapsedMs),
      setupMs: Math.round(Math.max(0, totalMs - result.elapsedMs)),
      batchSize,
      ...(options.gate !== undefined ? { slotWaitMs: Math.round(started - waitStarted) } : {}),
      ...(queued !== undefined ? { mocoQueued: queued } : {}),
    };
    log?.debug({ round, ...metrics, stoppedBy: result.stoppedBy }, 'local training finished');
    return { weights: result.weights, exampleCount: result.imagesSeen, metrics };
  };

  return {
    train(input, signal, onProgress) {
      const calledAt = performance.now();
      const previous = running;
      const task = (async () => {
        // Only the completion of the previous training matters here; its outcome went to its caller.
        await previous.then(
          () => undefined,
          () => undefined,
        );
        return trainOnce(input, signal, calledAt, onProgress);
      })();
      running = task;
      return task;
    },
  };
}
