// Shared option handling of the fedclr commands.
import { availableParallelism } from 'node:os';
import { recipeAugmentConfig, type LocalViews, type Recipe } from '@fedclr/contrastive';
import { UsageError } from './errors.js';

export function intOption(values: Record<string, unknown>, name: string, fallback: number, min = 1): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${String(raw)}'`);
  return v;
}

export function numberOption(values: Record<string, unknown>, name: string, fallback: number | undefined, min = 0): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= min) throw new UsageError(`--${name} must be a number > ${min}, got '${String(raw)}'`);
  return v;
}

/** A number >= 0 (weight decay, L2 strength), or the fallback when the flag is absent. */
export function nonNegativeOption(values: Record<string, unknown>, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v) || v < 0) throw new UsageError(`--${name} must be a number >= 0, got '${String(raw)}'`);
  return v;
}

/** --crop-min F: the smallest random crop, as a fraction of the image area, in (0, 1]. */
export function cropMinOption(values: Record<string, unknown>): number | undefined {
  const cropMin = numberOption(values, 'crop-min', undefined);
  if (cropMin !== undefined && cropMin > 1) throw new UsageError(`--crop-min must be in (0, 1], got ${cropMin}`);
  return cropMin;
}

/** --fedprox-mu MU: FedProx's proximal coefficient, 0 (plain local training) to 1000 (the coordinator's limit). */
export function fedproxMuOption(values: Record<string, unknown>): number | undefined {
  const raw = values['fedprox-mu'];
  if (raw === undefined) return undefined;
  const mu = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(mu) || mu < 0 || mu > 1000) {
    throw new UsageError(`--fedprox-mu must be a number in [0, 1000], got '${String(raw)}'`);
  }
  return mu;
}

/** Smallest local (multi-crop) view, as a fraction of the image area; the largest is the global views' smallest. */
export const LOCAL_CROP_MIN = 0.1;

/**
 * --local-views M [--local-size S]: multi-crop's M extra views per image, crops of LOCAL_CROP_MIN
 * up to the recipe's smallest crop, resized to S px (default 12 for 28 px images: 3/7 of the side).
 */
export function localViewsOption(values: Record<string, unknown>, recipe: Recipe): LocalViews | undefined {
  const count = intOption(values, 'local-views', 0, 0);
  if (count === 0) {
    if (values['local-size'] !== undefined) throw new UsageError('--local-size needs --local-views M (M >= 1)');
    return undefined;
  }
  const imageSize = recipe.model.input.height;
  const size = intOption(values, 'local-size', Math.max(4, Math.round((imageSize * 3) / 7)), 4);
  if (size > imageSize) throw new UsageError(`--local-size must be between 4 and the image size ${imageSize}, got ${size}`);
  const globalMin = recipe.augment.cropMin;
  if (globalMin <= LOCAL_CROP_MIN) throw new UsageError(`--local-views needs the global views' smallest crop (--crop-min) above ${LOCAL_CROP_MIN}, got ${globalMin}`);
  return { count, augment: recipeAugmentConfig({ viewSize: size, cropMin: LOCAL_CROP_MIN, strength: recipe.augment.strength }, recipe.model.input.channels, globalMin) };
}

/** --view-size N: side of the training views in pixels (crops are resized to it); the model is still evaluated on full images. */
export function viewSizeOption(values: Record<string, unknown>, imageSize: number): number | undefined {
  if (values['view-size'] === undefined) return undefined;
  const size = intOption(values, 'view-size', imageSize, 4);
  if (size > imageSize) throw new UsageError(`--view-size must be between 4 and the image size ${imageSize}, got ${size}`);
  return size;
}

export function defaultWorkers(): number {
  return Math.min(2, availableParallelism());
}
