// The training loss a recipe names, built the same way by `fedclr train` and by agents.
import { RECIPE_DEFAULTS, type MocoRecipe, type Recipe } from './recipe.js';
import { mocoLoss, ntXentPairLoss, queueCapacityFor, type MocoState, type TrainingLoss } from './train/index.js';

/** MoCo's hyperparameters of a recipe: its own, else the defaults. */
export function recipeMoco(recipe: Pick<Recipe, 'moco'>): MocoRecipe {
  return recipe.moco ?? RECIPE_DEFAULTS.moco;
}

/**
 * The loss of a recipe trained on `images` images: NT-Xent at the recipe's temperature, or MoCo
 * with a queue of at most half the images (queueCapacityFor), continuing `state` when given.
 */
export function recipeLoss(recipe: Pick<Recipe, 'loss' | 'temperature' | 'moco'>, images: number, state?: MocoState): TrainingLoss {
  if (recipe.loss === 'ntxent') return ntXentPairLoss({ temperature: recipe.temperature });
  const moco = recipeMoco(recipe);
  return mocoLoss({ temperature: recipe.temperature, momentum: moco.momentum, queueSize: queueCapacityFor(moco.queueSize, images), ...(state !== undefined ? { state } : {}) });
}
