// The recipe flags: one parser for the flags that set the training recipe, shared by `fedclr
// train`, `fedclr coordinator` and `fedclr simulate` (and the model flags of `fedclr eval`), so
// that a flag means the same in every command and every default is @fedclr/contrastive's recipe.
import {
  checkRecipe,
  defaultLossRecipe,
  defaultModelRecipe,
  defaultRecipe,
  RECIPE_DEFAULTS,
  RECIPE_ENCODERS,
  RECIPE_LOSS_PARAMETERS,
  RECIPE_LOSSES,
  RECIPE_MININGS,
  RECIPE_OPTIMIZERS,
  recipeMoco,
  type EncoderName,
  type InputShape,
  type LossRecipe,
  type ModelRecipe,
  type Recipe,
  type RecipeLoss,
  type RecipeMining,
  type RecipeOptimizer,
  type RecipeSetting,
} from '@fedclr/contrastive';
import { cropMinOption, intOption, nonNegativeOption, numberOption, viewSizeOption } from './common.js';
import { UsageError } from './errors.js';

/** parseArgs options of the recipe flags (every command that trains or runs a federation takes them). */
export const RECIPE_FLAG_OPTIONS = {
  encoder: { type: 'string' },
  widths: { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
  temperature: { type: 'string' },
  loss: { type: 'string' },
  margin: { type: 'string' },
  mining: { type: 'string' },
  optimizer: { type: 'string' },
  'weight-decay': { type: 'string' },
  strength: { type: 'string' },
  'crop-min': { type: 'string' },
  'view-size': { type: 'string' },
  'moco-momentum': { type: 'string' },
  'moco-queue': { type: 'string' },
} as const;

/** The help lines of the recipe flags; `setting` picks the default view size the text states. */
export function recipeFlagsHelp(setting: RecipeSetting): string {
  const fraction = setting === 'central' ? '4/7' : '5/7';
  const px = setting === 'central' ? 16 : 20;
  const d = RECIPE_DEFAULTS;
  const l = d.losses;
  const labelsWhere = setting === 'central' ? '(--labels)' : '(agents opt in with --labels)';
  return `  the recipe (defaults: @fedclr/contrastive's tuned recipe, the same in train, coordinator and simulate):
  --encoder convnet-s|resnet-s  default convnet-s for 1 channel, resnet-s for 3
  --widths 32,64,512            convnet-s filters per layer (the last is the representation)
  --batch ${d.batchSize} --lr ${d.learningRates.adam} --temperature ${d.temperature} --weight-decay ${d.weightDecay}
  --loss ${RECIPE_LOSSES.join('|')}
                                default ${d.loss} (NT-Xent); dcl: decoupled NT-Xent (temperature ${l.dcl.temperature}); moco: MoCo, a
                                momentum key encoder and a queue of negatives (label-free, two views:
                                --moco-momentum, --moco-queue); triplet: --margin ${l.triplet.margin} --mining ${l.triplet.mining}; margin: margin
                                contrastive, --margin ${l.margin.margin}; supcon: Supervised Contrastive, --temperature ${l.supcon.temperature},
                                needs labels ${labelsWhere}. Triplet and margin use labels when given them
                                (positives: same class), else the two views of an image
  --margin M                    triplet and margin only: the margin between distances of unit embeddings
  --mining ${RECIPE_MININGS.join('|')}   triplet only: all valid triplets, each anchor's hardest, or FaceNet's
                                semi-hard ones (--temperature goes with ntxent, dcl, moco and supcon)
  --optimizer adam|sgd|momentum adam (default); sgd: plain SGD; momentum: SGD with Nesterov momentum 0.9
                                (--lr defaults to ${d.learningRates.adam} for adam, ${d.learningRates.sgd} for sgd and momentum)
  --strength ${d.strength}                colour-jitter strength
  --crop-min F                  smallest random crop, fraction of the area (default ${d.cropMin.gray} grayscale, ${d.cropMin.rgb} RGB)
  --view-size N                 side of the training views (crops are resized to it; the model still takes full
                                images; default ${fraction} of the side for grayscale, ${px} px for 28 px images; RGB: the image size)
  --moco-momentum ${d.moco.momentum} --moco-queue ${d.moco.queueSize}
                                moco only: the key encoder's EMA rate and the queue size (a run queues at most half its images)`;
}

/** Values from a config file, between the recipe's defaults and the flags. */
export interface RecipeOverrides {
  readonly encoder?: string | undefined;
  readonly widths?: string | readonly number[] | undefined;
  readonly head?: { readonly hidden: number; readonly out: number } | undefined;
  readonly batchSize?: number | undefined;
  readonly learningRate?: number | undefined;
  readonly optimizer?: string | undefined;
  readonly temperature?: number | undefined;
  readonly weightDecay?: number | undefined;
  readonly loss?: string | undefined;
  readonly margin?: number | undefined;
  readonly mining?: string | undefined;
}

/**
 * --loss and its hyperparameters (--temperature, --margin, --mining), over `over` and the loss's
 * defaults, and MoCo's --moco-momentum and --moco-queue; a flag the loss does not use is refused.
 */
export function lossFromFlags(values: Record<string, unknown>, over: RecipeOverrides = {}): LossRecipe & Pick<Recipe, 'moco'> {
  const name = (values['loss'] as string | undefined) ?? over.loss ?? RECIPE_DEFAULTS.loss;
  if (!(RECIPE_LOSSES as readonly string[]).includes(name)) throw new UsageError(`--loss must be one of ${RECIPE_LOSSES.join(', ')}, got '${name}'`);
  const loss = name as RecipeLoss;
  const uses = RECIPE_LOSS_PARAMETERS[loss];
  for (const flag of ['temperature', 'margin', 'mining'] as const) {
    if (values[flag] !== undefined && !uses.includes(flag)) {
      const takers = RECIPE_LOSSES.filter((l) => RECIPE_LOSS_PARAMETERS[l].includes(flag));
      throw new UsageError(`--${flag} goes with --loss ${takers.join(', ')}; --loss ${loss} does not use it`);
    }
  }
  const mocoGiven = ['moco-momentum', 'moco-queue'].filter((f) => values[f] !== undefined);
  if (loss !== 'moco' && mocoGiven.length > 0) throw new UsageError(`--${mocoGiven[0] as string} goes with --loss moco; --loss ${loss} does not use it`);
  const base = defaultLossRecipe(loss);
  const mining = (values['mining'] as string | undefined) ?? over.mining ?? base.mining;
  if (mining !== undefined && !(RECIPE_MININGS as readonly string[]).includes(mining)) throw new UsageError(`--mining must be one of ${RECIPE_MININGS.join(', ')}, got '${mining}'`);
  const margin = base.margin === undefined ? undefined : nonNegativeOption(values, 'margin', over.margin ?? base.margin);
  return {
    loss,
    temperature: numberOption(values, 'temperature', over.temperature ?? base.temperature) as number,
    ...(margin !== undefined ? { margin } : {}),
    ...(base.mining !== undefined ? { mining: mining as RecipeMining } : {}),
    ...(loss === 'moco'
      ? { moco: { momentum: nonNegativeOption(values, 'moco-momentum', RECIPE_DEFAULTS.moco.momentum), queueSize: intOption(values, 'moco-queue', RECIPE_DEFAULTS.moco.queueSize, 0) } }
      : {}),
  };
}

/** The flags that give `loss` to another fedclr command (fedclr simulate to its coordinator). */
export function lossFlags(loss: LossRecipe & Pick<Recipe, 'moco'>): string[] {
  const uses = RECIPE_LOSS_PARAMETERS[loss.loss];
  return [
    '--loss', loss.loss,
    ...(uses.includes('temperature') ? ['--temperature', String(loss.temperature)] : []),
    ...(loss.margin !== undefined ? ['--margin', String(loss.margin)] : []),
    ...(loss.mining !== undefined ? ['--mining', loss.mining] : []),
    ...(loss.loss === 'moco' ? ['--moco-momentum', String(recipeMoco(loss).momentum), '--moco-queue', String(recipeMoco(loss).queueSize)] : []),
  ];
}

function widthsList(raw: string | readonly number[], flag: string): number[] {
  const widths = typeof raw === 'string' ? raw.split(',').map(Number) : [...raw];
  if (widths.length !== 3 || widths.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new UsageError(`${flag} takes three positive integers for convnet-s, e.g. 32,64,256; got '${String(raw)}'`);
  }
  return widths;
}

/** --encoder, --widths (and --head HIDDEN,OUT when `head` is given) over the recipe's architecture for `input`. */
export function modelFromFlags(values: Record<string, unknown>, input: InputShape, over: RecipeOverrides = {}): ModelRecipe {
  const encoder = (values['encoder'] as string | undefined) ?? over.encoder;
  if (encoder !== undefined && !(RECIPE_ENCODERS as readonly string[]).includes(encoder)) throw new UsageError(`--encoder must be ${RECIPE_ENCODERS.join(' or ')}, got '${encoder}'`);
  const model = defaultModelRecipe(input, encoder as EncoderName | undefined);
  const rawWidths = (values['widths'] as string | undefined) ?? over.widths;
  let widths = model.widths;
  if (rawWidths !== undefined) {
    if (model.encoder !== 'convnet-s') throw new UsageError(`--widths takes three positive integers for convnet-s, e.g. 32,64,256; got '${String(rawWidths)}' with --encoder ${model.encoder}`);
    widths = widthsList(rawWidths, '--widths');
  }
  let head = { hidden: widths[widths.length - 1] as number, out: model.head.out };
  if (over.head !== undefined) head = { ...over.head };
  const headFlag = values['head'] as string | undefined;
  if (headFlag !== undefined) {
    const sizes = headFlag.split(',').map(Number);
    if (sizes.length !== 2 || sizes.some((w) => !Number.isInteger(w) || w < 1)) throw new UsageError(`--head takes two positive integers (hidden, output), e.g. 512,128; got '${headFlag}'`);
    head = { hidden: sizes[0] as number, out: sizes[1] as number };
  }
  return { ...model, widths, head };
}

/**
 * The recipe the flags ask for: the recipe's defaults for `input` and `setting` (central: `fedclr
 * train`; federated: `fedclr coordinator`, `fedclr simulate`), then `over` (a config file), then
 * the flags. Checked as a whole (UsageError naming the field).
 */
export function recipeFromFlags(values: Record<string, unknown>, input: InputShape, setting: RecipeSetting, over: RecipeOverrides = {}): Recipe {
  const loss = lossFromFlags(values, over);
  const base = defaultRecipe(input, setting, loss.loss);
  const optimizer = (values['optimizer'] as string | undefined) ?? over.optimizer ?? base.optimizer;
  if (!(RECIPE_OPTIMIZERS as readonly string[]).includes(optimizer)) throw new UsageError(`--optimizer must be adam, sgd or momentum, got '${optimizer}'`);
  const kind = optimizer as RecipeOptimizer;
  const cropMin = cropMinOption(values) ?? base.augment.cropMin;
  const recipe: Recipe = {
    model: modelFromFlags(values, input, over),
    augment: {
      viewSize: viewSizeOption(values, input.height) ?? base.augment.viewSize,
      cropMin,
      strength: nonNegativeOption(values, 'strength', base.augment.strength),
    },
    optimizer: kind,
    learningRate: numberOption(values, 'lr', over.learningRate ?? RECIPE_DEFAULTS.learningRates[kind]) as number,
    weightDecay: nonNegativeOption(values, 'weight-decay', over.weightDecay ?? base.weightDecay),
    batchSize: intOption(values, 'batch', over.batchSize ?? base.batchSize, 2),
    ...loss,
  };
  try {
    checkRecipe(recipe);
  } catch (err) {
    throw new UsageError(`the training recipe is not valid: ${(err as Error).message}`);
  }
  return recipe;
}
