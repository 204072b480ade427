// The training recipe: the one place where fedclr's tuned defaults live (like lightly's
// SimCLRTransform, a library object with its defaults). `fedclr train`, `fedclr coordinator` and
// `fedclr simulate` take their defaults from here, the coordinator library's training defaults
// too, and a federation's coordinator sends the resolved recipe with every round, so that agents
// build exactly this model and augmentation.
//
// Every number below was measured (README.md, "Representation quality"):
// - convnet-s 32/64/512 + MLP head 512-128 (a 256-wide representation beat 128 by 1.6 points; on
//   the native kernels 512 beat 256 by 1.3 points in 10 minutes: 0.8976 against 0.8847);
// - Adam, lr 4e-3 (beat 2e-3), batch 64 (beat 128 and 256 in 10 minutes), temperature 0.2 (beat
//   0.5 by 0.9 points; 0.15 and 0.3 did not help), NT-Xent;
// - the smallest random crop 40% of the area for grayscale (beat 20%); SimCLR's 8% for RGB;
// - view size: crops are resized to a fraction of the image side for grayscale. The rule is one
//   per setting, each the size its setting was measured with: 4/7 of the side for central
//   training (16 px for 28 px: 0.8881 validation probe in 10 minutes against 0.8808 at 20 px),
//   5/7 for federated training (20 px: the 0.8671 of the federated runs; 16 px was never run
//   federated, so it is not assumed to carry over). RGB trains on full-size views (measured once,
//   on 1524 Noto emoji at 32 px: above random init, below raw pixels; docs/results.md, "RGB").
// - schedule: central training warms up for 2% of the run, then decays by a cosine to 0; a
//   federation decays by a cosine over the rounds to 5% of the rate (agents train each round at
//   the one rate the round carries);
// - the federation's FedAvg server step is 2 (x + 2 x the mean delta; 0.8671 against 0.8638
//   for plain averaging).
// The other losses' hyperparameters were not tuned here: they are the papers' and libraries'
// (see RECIPE_DEFAULTS.losses).
// - MoCo (loss 'moco'; not measured against NT-Xent yet, README "MoCo"): key-encoder EMA 0.99 and
//   a queue of 4096 keys. MoCo v2's 0.999 suits ~1M steps; a 10-minute run is a few thousand and a
//   round a few hundred, and 0.999's 1000-step memory would keep the keys close to the initial
//   (or round-start) model for a whole round. With 0.99 (a 100-step memory) and batch 64, 4096 keys
//   span 64 steps, inside that memory (MoCo's own 65536 at batch 256 span 256 steps of 0.999's
//   1000), and 7% of Fashion-MNIST's 60k images (MoCo: 5% of ImageNet). The temperature is the
//   recipe's 0.2, MoCo v2's too.
import type { GraphSpec } from '@fedclr/tensor';
import { gray28Config, simclrRgbConfig, type AugmentConfig } from './augment/index.js';
import { convnetS, CONVNET_S_WIDTHS, representationWidth, resnetSmall, withProjectionHead, type EncoderName, type InputShape } from './encoders/index.js';
import { InvalidRecipeError } from './errors.js';
import type { OptimizerConfig } from './train/index.js';
import { isMocoLoss, type TrainingLoss } from './train/engine.js';
import { ntXentPairLoss, type PairLoss } from './train/loss.js';
import { mocoLoss, queueCapacityFor, type MocoState } from './train/moco.js';
import { marginPairLoss } from './train/losses/margin.js';
import { supConPairLoss } from './train/losses/supcon.js';
import { TRIPLET_MININGS, tripletPairLoss, type TripletMining } from './train/losses/triplet.js';

/**
 * One meaning per name, in every command and on the wire: 'adam' is Adam, 'sgd' plain SGD (no
 * momentum), 'momentum' SGD with Nesterov momentum RECIPE_MOMENTUM.
 */
export const RECIPE_OPTIMIZERS = ['adam', 'sgd', 'momentum'] as const;
export type RecipeOptimizer = (typeof RECIPE_OPTIMIZERS)[number];
export const RECIPE_ENCODERS: readonly EncoderName[] = ['convnet-s', 'resnet-s'];
/** Momentum of the 'momentum' optimizer (Nesterov). */
export const RECIPE_MOMENTUM = 0.9;
/** Where a recipe is used: the view size differs (see the top of this file). */
export type RecipeSetting = 'central' | 'federated';

/**
 * The losses, one name each in every command and on the wire (@fedclr/protocol's LOSSES is this
 * list): 'ntxent' NT-Xent (SimCLR); 'dcl' decoupled NT-Xent (Yeh et al. 2022: the positive left
 * out of the denominator); 'moco' MoCo-style InfoNCE (momentum encoder, queue of negatives);
 * 'triplet' triplet loss with online mining; 'margin' margin contrastive (Hadsell et al. 2006);
 * 'supcon' Supervised Contrastive (Khosla et al. 2020, needs labels).
 */
export const RECIPE_LOSSES = ['ntxent', 'dcl', 'moco', 'triplet', 'margin', 'supcon'] as const;
export type RecipeLoss = (typeof RECIPE_LOSSES)[number];
/** Triplet mining: 'all' valid triplets (batch-all), each anchor's 'hard'est (batch-hard), FaceNet's 'semi-hard'. */
export const RECIPE_MININGS = TRIPLET_MININGS;
export type RecipeMining = TripletMining;

/**
 * What each loss does with class labels. 'optional': its supervised form (positives: rows of the
 * anchor's class) when the images have labels, else its label-free form (positives: the other
 * view of the anchor's image; negatives: the other images' views). 'required': none without.
 */
export const RECIPE_LOSS_LABELS: Readonly<Record<RecipeLoss, 'none' | 'optional' | 'required'>> = Object.freeze({
  ntxent: 'none',
  dcl: 'none',
  moco: 'none',
  triplet: 'optional',
  margin: 'optional',
  supcon: 'required',
});

/** The hyperparameters each loss uses; a recipe carries margin and mining only for the losses that use them. */
export const RECIPE_LOSS_PARAMETERS: Readonly<Record<RecipeLoss, readonly ('temperature' | 'margin' | 'mining')[]>> = Object.freeze({
  ntxent: ['temperature'],
  dcl: ['temperature'],
  moco: ['temperature'],
  triplet: ['margin', 'mining'],
  margin: ['margin'],
  supcon: ['temperature'],
});

/** A loss and its hyperparameters, as a recipe carries them. */
export interface LossRecipe {
  readonly loss: RecipeLoss;
  /** Softmax temperature of ntxent, dcl, moco and supcon (triplet and margin carry one they do not use). */
  readonly temperature: number;
  /** triplet and margin only: the margin, in euclidean distance between unit embeddings. */
  readonly margin?: number;
  /** triplet only. */
  readonly mining?: RecipeMining;
}

/** The architecture: encoder, its widths, the projection head and the input shape. */
export interface ModelRecipe {
  readonly encoder: EncoderName;
  /** convnet-s: filters of its three convolutions; resnet-s: channels per stage (one block each). */
  readonly widths: readonly number[];
  readonly head: { readonly hidden: number; readonly out: number };
  readonly input: InputShape;
}

/** The augmentation: SimCLR's pipeline (grayscale or RGB by the input's channels) with these knobs. */
export interface AugmentRecipe {
  /** Side of the training views: random crops are resized to it (the model still takes full images). */
  readonly viewSize: number;
  /** Smallest random crop, as a fraction of the image area, in (0, 1]. */
  readonly cropMin: number;
  /** Colour-jitter strength s. */
  readonly strength: number;
}

/** Everything one training run needs besides its data and budget. */
export interface Recipe extends LossRecipe {
  readonly model: ModelRecipe;
  readonly augment: AugmentRecipe;
  readonly optimizer: RecipeOptimizer;
  readonly learningRate: number;
  /** Decoupled weight decay (Adam) or L2 (SGD) on kernels. */
  readonly weightDecay: number;
  readonly batchSize: number;
  /** Loss 'moco': its hyperparameters (RECIPE_DEFAULTS.moco when absent). */
  readonly moco?: MocoRecipe | undefined;
}

/** MoCo's hyperparameters (the temperature is the recipe's). */
export interface MocoRecipe {
  /** EMA rate m of the key encoder, in [0, 1). */
  readonly momentum: number;
  /** Keys in the queue of negatives (an agent keeps at most half its images). */
  readonly queueSize: number;
}

/** The learning rate over a central run: linear warm-up, then cosine to finalFraction of the peak. */
export interface CentralSchedule {
  readonly warmupFraction: number;
  readonly finalFraction: number;
}

/** A federation's settings beyond the local recipe. */
export interface FederatedRecipe extends Recipe {
  /**
   * The rate of each round: the recipe's is a cosine over the run's rounds down to finalFraction of
   * learningRate ('constant': learningRate every round); each round trains at one rate.
   */
  readonly lrSchedule: { readonly kind: 'cosine'; readonly finalFraction: number } | { readonly kind: 'constant' };
  /** The server step: FedAvg's x + serverLr x the agents' mean delta (the recipe's is 2). */
  readonly serverLr: number;
  readonly localEpochs: number;
}

/** NT-Xent's temperature, measured (top of this file). */
const TUNED_TEMPERATURE = 0.2;

/** The tuned numbers. */
export const RECIPE_DEFAULTS = Object.freeze({
  encoder: { gray: 'convnet-s', rgb: 'resnet-s' } as const,
  widths: { 'convnet-s': [...CONVNET_S_WIDTHS], 'resnet-s': [32, 64, 128, 256] } as const,
  /** Projection head output; its hidden layer is as wide as the representation. */
  headOut: 128,
  optimizer: 'adam' as RecipeOptimizer,
  /** Default rate of each optimizer: Adam's was tuned; SGD's (train's former Nesterov default) was not. */
  learningRates: { adam: 4e-3, sgd: 0.3, momentum: 0.3 } as const,
  weightDecay: 0,
  batchSize: 64,
  loss: 'ntxent' as RecipeLoss,
  temperature: TUNED_TEMPERATURE,
  /** Each loss's own hyperparameters (losses without a temperature carry `temperature` above, unused). */
  losses: {
    ntxent: { temperature: TUNED_TEMPERATURE },
    // DCL changes only the denominator of NT-Xent: NT-Xent's tuned temperature (not re-tuned).
    dcl: { temperature: TUNED_TEMPERATURE },
    // MoCo v2's temperature (Chen et al. 2020, "Improved Baselines with Momentum Contrastive Learning").
    moco: { temperature: 0.2 },
    // FaceNet's margin 0.2 on unit embeddings (Schroff et al. 2015), with its semi-hard mining,
    // which also avoids the collapse batch-hard mining is prone to early in training.
    triplet: { margin: 0.2, mining: 'semi-hard' as RecipeMining },
    // pytorch-metric-learning's ContrastiveLoss neg_margin 1 (its pos_margin 0 is Hadsell's d²):
    // on unit embeddings d < 1 means cosine > 0.5, so negatives are pushed until 60 degrees apart.
    margin: { margin: 1 },
    // Khosla et al. 2020 train with temperature 0.1.
    supcon: { temperature: 0.1 },
  } as Readonly<Record<RecipeLoss, { readonly temperature?: number; readonly margin?: number; readonly mining?: RecipeMining }>>,
  /** Loss 'moco': the key encoder's EMA rate and the queue size (see the top of this file). */
  moco: { momentum: 0.99, queueSize: 4096 } as MocoRecipe,
  cropMin: { gray: 0.4, rgb: 0.08 } as const,
  strength: 0.5,
  /** View side as a fraction of the image side, grayscale only (RGB: full size). */
  viewFraction: { central: 4 / 7, federated: 5 / 7 } as const,
  centralSchedule: { warmupFraction: 0.02, finalFraction: 0 } as CentralSchedule,
  lrSchedule: { kind: 'cosine', finalFraction: 0.05 } as const,
  serverLr: 2,
  localEpochs: 1,
});

/** The default view side for an input: RECIPE_DEFAULTS.viewFraction of the side for grayscale (>= 4 px), the full side for RGB. */
export function defaultViewSize(input: Pick<InputShape, 'height' | 'channels'>, setting: RecipeSetting): number {
  return input.channels === 1 ? Math.max(4, Math.round(input.height * RECIPE_DEFAULTS.viewFraction[setting])) : input.height;
}

/** The default architecture for an input (convnet-s for grayscale, resnet-s for RGB). */
export function defaultModelRecipe(input: InputShape, encoder?: EncoderName): ModelRecipe {
  const name = encoder ?? (input.channels === 1 ? RECIPE_DEFAULTS.encoder.gray : RECIPE_DEFAULTS.encoder.rgb);
  const widths = [...RECIPE_DEFAULTS.widths[name]];
  return { encoder: name, widths, head: { hidden: widths[widths.length - 1] as number, out: RECIPE_DEFAULTS.headOut }, input: { ...input } };
}

/** A loss with its default hyperparameters (RECIPE_DEFAULTS.losses). */
export function defaultLossRecipe(loss: RecipeLoss): LossRecipe {
  const d = RECIPE_DEFAULTS.losses[loss];
  return {
    loss,
    temperature: d.temperature ?? RECIPE_DEFAULTS.temperature,
    ...(d.margin !== undefined ? { margin: d.margin } : {}),
    ...(d.mining !== undefined ? { mining: d.mining } : {}),
  };
}

/** The recipe's defaults for an input shape and a setting (and a loss: default NT-Xent). */
export function defaultRecipe(input: InputShape, setting: RecipeSetting, loss: RecipeLoss = RECIPE_DEFAULTS.loss): Recipe {
  return {
    model: defaultModelRecipe(input),
    augment: {
      viewSize: defaultViewSize(input, setting),
      cropMin: input.channels === 1 ? RECIPE_DEFAULTS.cropMin.gray : RECIPE_DEFAULTS.cropMin.rgb,
      strength: RECIPE_DEFAULTS.strength,
    },
    optimizer: RECIPE_DEFAULTS.optimizer,
    learningRate: RECIPE_DEFAULTS.learningRates[RECIPE_DEFAULTS.optimizer],
    weightDecay: RECIPE_DEFAULTS.weightDecay,
    batchSize: RECIPE_DEFAULTS.batchSize,
    ...defaultLossRecipe(loss),
    ...(loss === 'moco' ? { moco: { ...RECIPE_DEFAULTS.moco } } : {}),
  };
}

/** The federated defaults: the local recipe (federated view size) plus schedule, server step and local epochs. */
export function defaultFederatedRecipe(input: InputShape, loss: RecipeLoss = RECIPE_DEFAULTS.loss): FederatedRecipe {
  return {
    ...defaultRecipe(input, 'federated', loss),
    lrSchedule: { ...RECIPE_DEFAULTS.lrSchedule },
    serverLr: RECIPE_DEFAULTS.serverLr,
    localEpochs: RECIPE_DEFAULTS.localEpochs,
  };
}

const isInt = (v: unknown, min: number, max = 1 << 20): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Checks that a model recipe can be built (a known encoder, widths it takes, a head, an input),
 * throwing FEDCLR_CONTRASTIVE_INVALID_RECIPE naming the field.
 */
export function checkModelRecipe(model: ModelRecipe, field = 'model'): void {
  if (!(RECIPE_ENCODERS as readonly string[]).includes(model.encoder)) throw new InvalidRecipeError(`${field}.encoder`, `expected one of ${RECIPE_ENCODERS.join(', ')}, got '${String(model.encoder)}'`);
  const n = model.encoder === 'convnet-s' ? 3 : undefined;
  if (!Array.isArray(model.widths) || model.widths.length < 1 || model.widths.length > 8 || (n !== undefined && model.widths.length !== n) || !model.widths.every((w) => isInt(w, 1, 4096))) {
    throw new InvalidRecipeError(`${field}.widths`, `expected ${n ?? '1 to 8'} integers in [1, 4096] for ${model.encoder}, got [${String(model.widths)}]`);
  }
  if (!isInt(model.head?.hidden, 1, 4096) || !isInt(model.head?.out, 1, 4096)) throw new InvalidRecipeError(`${field}.head`, 'expected { hidden, out }, integers in [1, 4096]');
  const { input } = model;
  if (!isInt(input?.height, 8, 512) || !isInt(input?.width, 8, 512)) throw new InvalidRecipeError(`${field}.input`, `expected height and width, integers in [8, 512], got ${input?.height}x${input?.width}`);
  if (input.channels !== 1 && input.channels !== 3) throw new InvalidRecipeError(`${field}.input.channels`, `expected 1 or 3, got ${String(input.channels)}`);
}

/** Checks a whole recipe (FEDCLR_CONTRASTIVE_INVALID_RECIPE naming the field). */
export function checkRecipe(recipe: Recipe): void {
  checkModelRecipe(recipe.model);
  checkAugmentRecipe(recipe.augment, recipe.model.input);
  if (!(RECIPE_OPTIMIZERS as readonly string[]).includes(recipe.optimizer)) throw new InvalidRecipeError('optimizer', `expected one of ${RECIPE_OPTIMIZERS.join(', ')}, got '${String(recipe.optimizer)}'`);
  if (!isNum(recipe.learningRate) || recipe.learningRate <= 0 || recipe.learningRate > 10) throw new InvalidRecipeError('learningRate', `expected a number in (0, 10], got ${String(recipe.learningRate)}`);
  if (!isNum(recipe.weightDecay) || recipe.weightDecay < 0 || recipe.weightDecay > 1) throw new InvalidRecipeError('weightDecay', `expected a number in [0, 1], got ${String(recipe.weightDecay)}`);
  if (!isInt(recipe.batchSize, 2, 65536)) throw new InvalidRecipeError('batchSize', `expected an integer in [2, 65536], got ${String(recipe.batchSize)}`);
  checkLossRecipe(recipe);
  if (recipe.moco !== undefined) checkMocoRecipe(recipe.moco);
}

/** Largest margin a recipe takes: distances between unit embeddings are at most 2, differences of two at most 4. */
export const RECIPE_MAX_MARGIN = 4;

/**
 * Checks a loss and its hyperparameters: a known name, a temperature, and margin and mining
 * exactly for the losses that use them (FEDCLR_CONTRASTIVE_INVALID_RECIPE naming the field).
 */
export function checkLossRecipe(recipe: LossRecipe): void {
  if (!(RECIPE_LOSSES as readonly string[]).includes(recipe.loss)) throw new InvalidRecipeError('loss', `expected one of ${RECIPE_LOSSES.join(', ')}, got '${String(recipe.loss)}'`);
  if (!isNum(recipe.temperature) || recipe.temperature <= 0 || recipe.temperature > 100) throw new InvalidRecipeError('temperature', `expected a number in (0, 100], got ${String(recipe.temperature)}`);
  const uses = RECIPE_LOSS_PARAMETERS[recipe.loss];
  if (uses.includes('margin')) {
    if (!isNum(recipe.margin) || recipe.margin < 0 || recipe.margin > RECIPE_MAX_MARGIN) throw new InvalidRecipeError('margin', `expected a number in [0, ${RECIPE_MAX_MARGIN}] for loss '${recipe.loss}', got ${String(recipe.margin)}`);
  } else if (recipe.margin !== undefined) throw new InvalidRecipeError('margin', `loss '${recipe.loss}' takes no margin (triplet and margin do)`);
  if (uses.includes('mining')) {
    if (!(RECIPE_MININGS as readonly string[]).includes(recipe.mining as string)) throw new InvalidRecipeError('mining', `expected one of ${RECIPE_MININGS.join(', ')} for loss '${recipe.loss}', got '${String(recipe.mining)}'`);
  } else if (recipe.mining !== undefined) throw new InvalidRecipeError('mining', `loss '${recipe.loss}' takes no mining (triplet does)`);
}

/** MoCo's hyperparameters of a recipe: its own, else the defaults. */
export function recipeMoco(recipe: { readonly moco?: MocoRecipe | undefined }): MocoRecipe {
  return recipe.moco ?? RECIPE_DEFAULTS.moco;
}

/**
 * The trainer's loss for a recipe's loss, built the same way by `fedclr train` and by agents.
 * MoCo (momentum key encoder and a queue of negatives; the recipe's `moco` block, else the
 * defaults) keeps a queue of at most half of the `images` it trains on (queueCapacityFor),
 * continuing `state` when given; the other losses are pair losses.
 */
export function recipeLoss(recipe: LossRecipe & { readonly loss: Exclude<RecipeLoss, 'moco'> }): PairLoss;
export function recipeLoss(recipe: LossRecipe & { readonly moco?: MocoRecipe | undefined }, images?: number, state?: MocoState): TrainingLoss;
export function recipeLoss(recipe: LossRecipe & { readonly moco?: MocoRecipe | undefined }, images = Number.POSITIVE_INFINITY, state?: MocoState): TrainingLoss {
  checkLossRecipe(recipe);
  const { temperature } = recipe;
  switch (recipe.loss) {
    case 'ntxent':
    case 'dcl':
      return ntXentPairLoss({ temperature, decoupled: recipe.loss === 'dcl' });
    case 'supcon':
      return supConPairLoss({ temperature });
    case 'triplet':
      return tripletPairLoss({ margin: recipe.margin as number, mining: recipe.mining as RecipeMining });
    case 'margin':
      return marginPairLoss({ margin: recipe.margin as number });
    case 'moco': {
      const moco = recipeMoco(recipe);
      checkMocoRecipe(moco);
      return mocoLoss({ temperature, momentum: moco.momentum, queueSize: queueCapacityFor(moco.queueSize, images), ...(state !== undefined ? { state } : {}) });
    }
  }
}

/** A pair loss of a recipe (every loss but 'moco', which needs a key encoder and a queue: recipeLoss). */
export function recipePairLoss(recipe: LossRecipe): PairLoss {
  const loss = recipeLoss(recipe);
  if (isMocoLoss(loss)) throw new InvalidRecipeError('loss', "'moco' is not a pair loss (it trains a key encoder and a queue)");
  return loss;
}

/** One line for logs: the loss, its hyperparameters, and whether it trains on labels (label-aware) or on views alone (label-free). */
export function describeLoss(recipe: LossRecipe, labelled: boolean): string {
  const uses = RECIPE_LOSS_PARAMETERS[recipe.loss];
  const parameters = [
    uses.includes('temperature') ? `temperature ${recipe.temperature}` : undefined,
    uses.includes('margin') ? `margin ${recipe.margin}` : undefined,
    uses.includes('mining') ? `${recipe.mining} mining` : undefined,
  ].filter((p) => p !== undefined);
  const form = labelled
    ? 'label-aware: positives are the rows of the anchor\'s class'
    : RECIPE_LOSS_LABELS[recipe.loss] === 'none'
      ? 'label-free'
      : 'label-free: the positive is the other view of the anchor\'s image, negatives the other images\' views';
  return `${recipe.loss} (${parameters.join(', ')}), ${form}`;
}

/** Checks MoCo's hyperparameters (the same bounds as the wire's). */
export function checkMocoRecipe(moco: MocoRecipe, field = 'moco'): void {
  if (!isNum(moco.momentum) || moco.momentum < 0 || moco.momentum >= 1) throw new InvalidRecipeError(`${field}.momentum`, `expected a number in [0, 1), got ${String(moco.momentum)}`);
  if (!isInt(moco.queueSize, 0, 65536)) throw new InvalidRecipeError(`${field}.queueSize`, `expected an integer in [0, 65536], got ${String(moco.queueSize)}`);
}

/** Checks an augmentation recipe against the input it augments. */
export function checkAugmentRecipe(augment: AugmentRecipe, input: InputShape, field = 'augment'): void {
  const side = Math.min(input.height, input.width);
  if (!isInt(augment.viewSize, 4, side)) throw new InvalidRecipeError(`${field}.viewSize`, `expected an integer between 4 and the image side ${side}, got ${String(augment.viewSize)}`);
  if (!isNum(augment.cropMin) || augment.cropMin <= 0 || augment.cropMin > 1) throw new InvalidRecipeError(`${field}.cropMin`, `expected a number in (0, 1], got ${String(augment.cropMin)}`);
  if (!isNum(augment.strength) || augment.strength < 0 || augment.strength > 2.5) throw new InvalidRecipeError(`${field}.strength`, `expected a number in [0, 2.5], got ${String(augment.strength)}`);
}

/** The contrastive model (encoder + projection head) of a model recipe. */
export function recipeModelSpec(model: ModelRecipe): GraphSpec {
  checkModelRecipe(model);
  const encoder =
    model.encoder === 'convnet-s'
      ? convnetS({ ...model.input, widths: model.widths as [number, number, number] })
      : resnetSmall({ ...model.input, widths: [...model.widths] });
  return withProjectionHead(encoder, representationWidth(encoder), { hidden: model.head.hidden, out: model.head.out });
}

/**
 * The augmentation pipeline's config: the grayscale pipeline (gray28Config) for 1 channel,
 * SimCLR's RGB one without blur for 3, crops of [cropMin, cropMax] of the area resized to viewSize.
 */
export function recipeAugmentConfig(augment: AugmentRecipe, channels: number, cropMax = 1): AugmentConfig {
  const base = channels === 1 ? gray28Config({ strength: augment.strength }) : simclrRgbConfig({ strength: augment.strength, blur: false });
  if (!base.crop) return base;
  return { ...base, crop: { ...base.crop, scale: [augment.cropMin, cropMax], size: [augment.viewSize, augment.viewSize] } };
}

/** The trainer's optimizer for a recipe optimizer name (see RECIPE_OPTIMIZERS for the meanings). */
export function recipeOptimizer(kind: RecipeOptimizer, weightDecay: number): OptimizerConfig {
  switch (kind) {
    case 'adam':
      return { kind: 'adam', weightDecay };
    case 'sgd':
      return { kind: 'sgd', momentum: 0, weightDecay };
    case 'momentum':
      return { kind: 'sgd', momentum: RECIPE_MOMENTUM, nesterov: true, weightDecay };
  }
}
