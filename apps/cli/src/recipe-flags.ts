// The recipe flags: one parser for the flags that set the training recipe, shared by `fedclr
// train`, `fedclr coordinator` and `fedclr simulate` (and the model flags of `fedclr eval`), so
// that a flag means the same in every command and every default is @fedclr/contrastive's recipe.
import {
  checkRecipe,
  defaultModelRecipe,
  defaultRecipe,
  RECIPE_DEFAULTS,
  RECIPE_ENCODERS,
  RECIPE_OPTIMIZERS,
  type EncoderName,
  type InputShape,
  type ModelRecipe,
  type Recipe,
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
  optimizer: { type: 'string' },
  'weight-decay': { type: 'string' },
  strength: { type: 'string' },
  'crop-min': { type: 'string' },
  'view-size': { type: 'string' },
  loss: { type: 'string' },
  'moco-momentum': { type: 'string' },
  'moco-queue': { type: 'string' },
} as const;

/** The help lines of the recipe flags; `setting` picks the default view size the text states. */
export function recipeFlagsHelp(setting: RecipeSetting): string {
  const fraction = setting === 'central' ? '4/7' : '5/7';
  const px = setting === 'central' ? 16 : 20;
  const d = RECIPE_DEFAULTS;
  return `  the recipe (defaults: @fedclr/contrastive's tuned recipe, the same in train, coordinator and simulate):
  --encoder convnet-s|resnet-s  default convnet-s for 1 channel, resnet-s for 3
  --widths 32,64,256            convnet-s filters per layer (the last is the representation)
  --batch ${d.batchSize} --lr ${d.learningRates.adam} --temperature ${d.temperature} --weight-decay ${d.weightDecay}
  --optimizer adam|sgd|momentum adam (default); sgd: plain SGD; momentum: SGD with Nesterov momentum 0.9
                                (--lr defaults to ${d.learningRates.adam} for adam, ${d.learningRates.sgd} for sgd and momentum)
  --strength ${d.strength}                colour-jitter strength
  --crop-min F                  smallest random crop, fraction of the area (default ${d.cropMin.gray} grayscale, ${d.cropMin.rgb} RGB)
  --view-size N                 side of the training views (crops are resized to it; the model still takes full
                                images; default ${fraction} of the side for grayscale, ${px} px for 28 px images; RGB: the image size)
  --loss ntxent|moco            NT-Xent (default), or MoCo: a momentum key encoder and a queue of negatives
  --moco-momentum ${d.moco.momentum} --moco-queue ${d.moco.queueSize}
                                MoCo's key-encoder EMA rate and queue size (an agent queues at most half its images)`;
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
}

/** --loss, and MoCo's --moco-momentum and --moco-queue (which need --loss moco). */
function lossFromFlags(values: Record<string, unknown>, fallback: string): Pick<Recipe, 'loss' | 'moco'> {
  const loss = (values['loss'] as string | undefined) ?? fallback;
  if (loss !== 'ntxent' && loss !== 'moco') throw new UsageError(`--loss must be ntxent or moco, got '${loss}'`);
  const given = ['moco-momentum', 'moco-queue'].filter((f) => values[f] !== undefined);
  if (loss !== 'moco') {
    if (given.length > 0) throw new UsageError(`--${given[0]} goes with --loss moco`);
    return { loss };
  }
  const d = RECIPE_DEFAULTS.moco;
  return { loss, moco: { momentum: nonNegativeOption(values, 'moco-momentum', d.momentum), queueSize: intOption(values, 'moco-queue', d.queueSize, 0) } };
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
  const base = defaultRecipe(input, setting);
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
    temperature: numberOption(values, 'temperature', over.temperature ?? base.temperature) as number,
    ...lossFromFlags(values, over.loss ?? base.loss),
  };
  try {
    checkRecipe(recipe);
  } catch (err) {
    throw new UsageError(`the training recipe is not valid: ${(err as Error).message}`);
  }
  return recipe;
}
