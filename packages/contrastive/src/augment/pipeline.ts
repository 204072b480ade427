// Random augmentation pipelines: a validated config object -> a function that augments an NHWC
// float32 batch in [0, 1], with every random choice drawn per image from a RandomSource.
//
// Order (SimCLR's): random resized crop -> horizontal flip -> colour jitter -> grayscale ->
// Gaussian blur -> Gaussian noise -> clamp to [0, 1]. Every enabled op draws its per-image
// parameters for the whole batch in a fixed order, whatever the image content, so a given
// source state and batch shape always produce the same output.
import * as tf from '@tensorflow/tfjs-core';
import { InvalidAugmentConfigError, ShapeError } from '../errors.js';
import {
  addGaussianNoise,
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  checkImages,
  cropAndResizeBoxes,
  gaussianBlurPerImage,
  grayscaleWhere,
} from './ops.js';
import { bernoulli, createSeededRandom, fillStandardNormal, shuffled, uniform, type RandomSource } from './random.js';

export type AugmentRange = readonly [number, number];

export interface CropConfig {
  /** Range of the crop's area as a fraction of the image area. Default [0.08, 1]. */
  scale?: AugmentRange;
  /** Range of the crop's aspect ratio width / height (sampled log-uniformly). Default [3/4, 4/3]. */
  ratio?: AugmentRange;
  /** Output [height, width]. Default: the input's. */
  size?: readonly [number, number];
}

export interface FlipConfig {
  /** Probability of a left-right flip per image. Default 0.5. */
  p?: number;
}

export interface ColorJitterConfig {
  /** Probability that an image is jittered at all. Default 0.8. */
  p?: number;
  /** Brightness factor uniform in [max(0, 1 - b), 1 + b]. Default 0 (off). */
  brightness?: number;
  /** Contrast factor uniform in [max(0, 1 - c), 1 + c]. Default 0 (off). */
  contrast?: number;
  /** Saturation factor uniform in [max(0, 1 - s), 1 + s]; RGB only (no-op on 1 channel). Default 0. */
  saturation?: number;
  /** Hue shift uniform in [-h, h] turns, h <= 0.5; RGB only (no-op on 1 channel). Default 0. */
  hue?: number;
  /**
   * Apply the four adjustments in a random order (one order per batch, not per image: the
   * batch is processed as whole tensors). Default false (brightness, contrast, saturation, hue).
   */
  randomOrder?: boolean;
}

export interface GrayscaleConfig {
  /** Probability of converting an image to grayscale (RGB; no-op on 1 channel). Default 0.2. */
  p?: number;
}

export interface BlurConfig {
  /** Probability of blurring an image. Default 0.5. */
  p?: number;
  /** Range of the Gaussian's sigma in pixels, sampled uniformly. Default [0.1, 2.0]. */
  sigma?: AugmentRange;
  /** Odd kernel size. Default: about 10% of the smaller image side, odd, at least 3. */
  kernelSize?: number;
}

export interface NoiseConfig {
  /** Probability of adding noise to an image. Default 0.5. */
  p?: number;
  /** Range of the noise standard deviation, sampled uniformly per image. Default [0.01, 0.05]. */
  std?: AugmentRange;
}

/** A pipeline config: each op is on when given an object (fields default), off when absent/false. */
export interface AugmentConfig {
  crop?: CropConfig | false;
  flip?: FlipConfig | false;
  colorJitter?: ColorJitterConfig | false;
  grayscale?: GrayscaleConfig | false;
  blur?: BlurConfig | false;
  noise?: NoiseConfig | false;
  /** Clamp the result to [0, 1]. Default true. */
  clamp?: boolean;
}

/** A config with every default filled in (what the pipeline really does). */
export interface ResolvedAugmentConfig {
  readonly crop: { readonly scale: AugmentRange; readonly ratio: AugmentRange; readonly size: readonly [number, number] | null } | null;
  readonly flip: { readonly p: number } | null;
  readonly colorJitter: {
    readonly p: number;
    readonly brightness: number;
    readonly contrast: number;
    readonly saturation: number;
    readonly hue: number;
    readonly randomOrder: boolean;
  } | null;
  readonly grayscale: { readonly p: number } | null;
  readonly blur: { readonly p: number; readonly sigma: AugmentRange; readonly kernelSize: number | null } | null;
  readonly noise: { readonly p: number; readonly std: AugmentRange } | null;
  readonly clamp: boolean;
}

export interface AugmentPipeline {
  readonly name: string;
  readonly config: ResolvedAugmentConfig;
  /** Augments a batch [N, H, W, C] (float32 in [0, 1]); returns a new tensor, input untouched. */
  apply(images: tf.Tensor4D, rng: RandomSource): tf.Tensor4D;
}

// ---------------------------------------------------------------------------------------------
// Validation

const OP_KEYS: Record<string, readonly string[]> = {
  crop: ['scale', 'ratio', 'size'],
  flip: ['p'],
  colorJitter: ['p', 'brightness', 'contrast', 'saturation', 'hue', 'randomOrder'],
  grayscale: ['p'],
  blur: ['p', 'sigma', 'kernelSize'],
  noise: ['p', 'std'],
};

function fail(path: string, message: string): never {
  throw new InvalidAugmentConfigError(path, message);
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function probability(v: unknown, path: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!isFiniteNumber(v) || v < 0 || v > 1) fail(path, `expected a probability in [0, 1], got ${String(v)}`);
  return v;
}

function nonNegative(v: unknown, path: string, fallback: number, max = Infinity): number {
  if (v === undefined) return fallback;
  if (!isFiniteNumber(v) || v < 0 || v > max) fail(path, `expected a number in [0, ${max}], got ${String(v)}`);
  return v;
}

/** [lo, hi] with lo <= hi, both within [min, max]; minExclusive makes the lower bound strict. */
function range(v: unknown, path: string, fallback: AugmentRange, min: number, max: number, minExclusive = false): AugmentRange {
  if (v === undefined) return fallback;
  if (!Array.isArray(v) || v.length !== 2 || !v.every(isFiniteNumber)) fail(path, `expected [lo, hi], got ${JSON.stringify(v)}`);
  const [lo, hi] = v as [number, number];
  if (lo > hi) fail(path, `lo ${lo} > hi ${hi}`);
  if (minExclusive ? lo <= min : lo < min) fail(path, `lo ${lo} must be ${minExclusive ? '>' : '>='} ${min}`);
  if (hi > max) fail(path, `hi ${hi} must be <= ${max}`);
  return [lo, hi];
}

function section<T extends object>(config: AugmentConfig, key: keyof typeof OP_KEYS): Partial<T> | null {
  const v = (config as Record<string, unknown>)[key];
  if (v === undefined || v === false) return null;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(key, 'expected an object, false or undefined');
  const allowed = OP_KEYS[key] ?? [];
  for (const k of Object.keys(v)) if (!allowed.includes(k)) fail(`${key}.${k}`, `unknown option (allowed: ${allowed.join(', ')})`);
  return v as Partial<T>;
}

/** Validates a config and fills in the defaults. Throws InvalidAugmentConfigError. */
export function resolveAugmentConfig(config: AugmentConfig): ResolvedAugmentConfig {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) fail('(root)', 'expected an object');
  for (const k of Object.keys(config)) {
    if (!(k in OP_KEYS) && k !== 'clamp') fail(k, `unknown op (allowed: ${Object.keys(OP_KEYS).join(', ')}, clamp)`);
  }
  const crop = section<CropConfig>(config, 'crop');
  const flip = section<FlipConfig>(config, 'flip');
  const jitter = section<ColorJitterConfig>(config, 'colorJitter');
  const gray = section<GrayscaleConfig>(config, 'grayscale');
  const blur = section<BlurConfig>(config, 'blur');
  const noise = section<NoiseConfig>(config, 'noise');
  if (config.clamp !== undefined && typeof config.clamp !== 'boolean') fail('clamp', 'expected a boolean');

  let cropSize: readonly [number, number] | null = null;
  if (crop?.size !== undefined) {
    const s = crop.size as unknown;
    if (!Array.isArray(s) || s.length !== 2 || !s.every((x) => Number.isInteger(x) && (x as number) >= 1)) {
      fail('crop.size', `expected [height, width] positive integers, got ${JSON.stringify(s)}`);
    }
    cropSize = [s[0] as number, s[1] as number];
  }
  let kernelSize: number | null = null;
  if (blur?.kernelSize !== undefined) {
    const k = blur.kernelSize;
    if (!Number.isInteger(k) || k < 1 || k % 2 !== 1) fail('blur.kernelSize', `expected an odd integer >= 1, got ${String(k)}`);
    kernelSize = k;
  }
  if (jitter?.randomOrder !== undefined && typeof jitter.randomOrder !== 'boolean') {
    fail('colorJitter.randomOrder', 'expected a boolean');
  }

  const resolved: ResolvedAugmentConfig = {
    crop: crop
      ? {
          scale: range(crop.scale, 'crop.scale', [0.08, 1], 0, 1, true),
          ratio: range(crop.ratio, 'crop.ratio', [3 / 4, 4 / 3], 0, Infinity, true),
          size: cropSize,
        }
      : null,
    flip: flip ? { p: probability(flip.p, 'flip.p', 0.5) } : null,
    colorJitter: jitter
      ? {
          p: probability(jitter.p, 'colorJitter.p', 0.8),
          brightness: nonNegative(jitter.brightness, 'colorJitter.brightness', 0),
          contrast: nonNegative(jitter.contrast, 'colorJitter.contrast', 0),
          saturation: nonNegative(jitter.saturation, 'colorJitter.saturation', 0),
          hue: nonNegative(jitter.hue, 'colorJitter.hue', 0, 0.5),
          randomOrder: jitter.randomOrder ?? false,
        }
      : null,
    grayscale: gray ? { p: probability(gray.p, 'grayscale.p', 0.2) } : null,
    blur: blur
      ? { p: probability(blur.p, 'blur.p', 0.5), sigma: range(blur.sigma, 'blur.sigma', [0.1, 2], 0, Infinity), kernelSize }
      : null,
    noise: noise ? { p: probability(noise.p, 'noise.p', 0.5), std: range(noise.std, 'noise.std', [0.01, 0.05], 0, Infinity) } : null,
    clamp: config.clamp ?? true,
  };
  return deepFreeze(resolved);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Random parameter sampling (plain JS)

/**
 * One random-resized-crop box [y1, x1, y2, x2] (normalised), torchvision's algorithm: up to 10
 * tries of (area fraction ~ U(scale), log aspect ~ U(log ratio)) that fit, else a centre crop
 * with the aspect clamped to the range. Sizes are continuous (not rounded to whole pixels).
 */
export function sampleCropBox(rng: RandomSource, height: number, width: number, scale: AugmentRange, ratio: AugmentRange): [number, number, number, number] {
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * uniform(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniform(rng, logLo, logHi));
    const w = Math.sqrt(targetArea * aspect);
    const h = Math.sqrt(targetArea / aspect);
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const fy = h / height;
      const fx = w / width;
      const y0 = uniform(rng, 0, 1 - fy);
      const x0 = uniform(rng, 0, 1 - fx);
      return [y0, x0, y0 + fy, x0 + fx];
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = width / ratio[0];
  else if (inRatio > ratio[1]) w = height * ratio[1];
  const fy = h / height;
  const fx = w / width;
  return [(1 - fy) / 2, (1 - fx) / 2, (1 + fy) / 2, (1 + fx) / 2];
}

/** The default blur kernel: about 10% of the smaller side, made odd, at least 3. */
export function defaultBlurKernelSize(height: number, width: number): number {
  const k = Math.max(3, Math.floor(0.1 * Math.min(height, width)));
  return k % 2 === 1 ? k : k + 1;
}

type JitterOp = 'brightness' | 'contrast' | 'saturation' | 'hue';

function factorRange(strength: number): AugmentRange {
  return [Math.max(0, 1 - strength), 1 + strength];
}

/** Swaps `next` in for `current`, disposing `current` unless it is the caller's input. */
function replace(current: tf.Tensor4D, next: tf.Tensor4D, input: tf.Tensor4D): tf.Tensor4D {
  if (current !== input) current.dispose();
  return next;
}

function applyResolved(cfg: ResolvedAugmentConfig, images: tf.Tensor4D, rng: RandomSource): tf.Tensor4D {
  checkImages(images);
  const n = images.shape[0];
  const channels = images.shape[3];
  const needsRgb = cfg.grayscale !== null || (cfg.colorJitter !== null && (cfg.colorJitter.saturation > 0 || cfg.colorJitter.hue > 0));
  if (needsRgb && channels !== 1 && channels !== 3) {
    throw new ShapeError('images', `saturation, hue and grayscale need 1 or 3 channels, got ${channels}`);
  }
  let x = images;
  try {
    // Crop and flip are one cropAndResize: a flipped crop is the same box with x1 and x2 swapped.
    if (cfg.crop || cfg.flip) {
      const [h, w] = [images.shape[1], images.shape[2]];
      const boxes = new Float32Array(4 * n);
      for (let i = 0; i < n; i++) boxes.set(cfg.crop ? sampleCropBox(rng, h, w, cfg.crop.scale, cfg.crop.ratio) : [0, 0, 1, 1], 4 * i);
      let flipped = false;
      if (cfg.flip) {
        for (let i = 0; i < n; i++) {
          if (!bernoulli(rng, cfg.flip.p)) continue;
          flipped = true;
          const x1 = boxes[4 * i + 1] as number;
          boxes[4 * i + 1] = boxes[4 * i + 3] as number;
          boxes[4 * i + 3] = x1;
        }
      }
      if (cfg.crop || flipped) x = replace(x, cropAndResizeBoxes(x, boxes, cfg.crop?.size ?? [h, w]), images);
    }

    if (cfg.colorJitter) {
      const j = cfg.colorJitter;
      const applied = Array.from({ length: n }, () => bernoulli(rng, j.p));
      const strengths: Record<JitterOp, number> = {
        brightness: j.brightness,
        contrast: j.contrast,
        saturation: j.saturation,
        hue: j.hue,
      };
      const ops = (['brightness', 'contrast', 'saturation', 'hue'] as const).filter((op) => strengths[op] > 0);
      // Per-image parameters, drawn for every image (identity where not applied) in fixed order.
      const params = new Map<JitterOp, Float32Array>();
      for (const op of ops) {
        const values = new Float32Array(n);
        const [lo, hi] = op === 'hue' ? [-j.hue, j.hue] : factorRange(strengths[op]);
        for (let i = 0; i < n; i++) {
          const v = uniform(rng, lo, hi);
          values[i] = applied[i] ? v : op === 'hue' ? 0 : 1;
        }
        params.set(op, values);
      }
      const order = j.randomOrder ? shuffled(rng, ops) : ops;
      if (applied.some(Boolean)) {
        for (const op of order) {
          const values = params.get(op) as Float32Array;
          if (op === 'brightness') x = replace(x, adjustBrightness(x, values), images);
          else if (op === 'contrast') x = replace(x, adjustContrast(x, values), images);
          // Saturation and hue leave a one-channel image unchanged.
          else if (channels === 3 && op === 'saturation') x = replace(x, adjustSaturation(x, values), images);
          else if (channels === 3 && op === 'hue') x = replace(x, adjustHue(x, values), images);
        }
      }
    }

    if (cfg.grayscale) {
      const p = cfg.grayscale.p;
      const flags = Array.from({ length: n }, () => bernoulli(rng, p));
      if (channels === 3 && flags.some(Boolean)) x = replace(x, grayscaleWhere(x, flags), images); // C = 1: already gray
    }

    if (cfg.blur) {
      const b = cfg.blur;
      const sigmas = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const on = bernoulli(rng, b.p);
        const s = uniform(rng, b.sigma[0], b.sigma[1]);
        sigmas[i] = on ? s : 0;
      }
      if (sigmas.some((s) => s > 0)) {
        const k = b.kernelSize ?? defaultBlurKernelSize(x.shape[1], x.shape[2]);
        x = replace(x, gaussianBlurPerImage(x, sigmas, k), images);
      }
    }

    if (cfg.noise) {
      const z = cfg.noise;
      const stds = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const on = bernoulli(rng, z.p);
        const s = uniform(rng, z.std[0], z.std[1]);
        stds[i] = on ? s : 0;
      }
      // The noise field comes from a generator seeded by ONE draw from the source, so a costly
      // RandomSource is not called once per pixel.
      const noiseSeed = Math.floor(rng.next() * 4294967296);
      if (stds.some((s) => s > 0)) {
        const normal = fillStandardNormal(createSeededRandom(noiseSeed), new Float32Array(x.size));
        x = replace(x, addGaussianNoise(x, normal, stds), images);
      }
    }

    if (cfg.clamp) x = replace(x, tf.clipByValue(x, 0, 1), images);
    return x === images ? tf.clone(images) : x;
  } catch (err) {
    if (x !== images) x.dispose(); // an op failed: drop the intermediate result
    throw err;
  }
}

/** Builds a pipeline from a config (validated now; throws InvalidAugmentConfigError). */
export function createAugmentPipeline(config: AugmentConfig, name = 'custom'): AugmentPipeline {
  const resolved = resolveAugmentConfig(config);
  return Object.freeze({
    name,
    config: resolved,
    apply: (images: tf.Tensor4D, rng: RandomSource) => applyResolved(resolved, images, rng),
  });
}

/**
 * Two independently augmented views of the same batch (SimCLR's t(x), t'(x)): the pipeline is
 * applied twice, drawing from the same source one after the other.
 */
export function augmentTwoViews(pipeline: AugmentPipeline, images: tf.Tensor4D, rng: RandomSource): [tf.Tensor4D, tf.Tensor4D] {
  const first = pipeline.apply(images, rng);
  try {
    return [first, pipeline.apply(images, rng)];
  } catch (err) {
    first.dispose();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Named pipelines

export interface Gray28Options {
  /** Colour-jitter strength s: brightness and contrast 0.8 s. Default 0.5. */
  strength?: number;
  /** Add Gaussian blur (p 0.5, sigma [0.1, 1.0], 3x3). Default false. */
  blur?: boolean;
  /** Add Gaussian noise (p 0.5, std [0.01, 0.05]). Default false. */
  noise?: boolean;
}

/**
 * For 28x28 one-channel images (Fashion-MNIST). Crop scale [0.2, 1] rather than SimCLR's
 * [0.08, 1]: a 0.08 crop of 28 px is an 8x8 patch, which after upsampling holds too little of
 * the garment to identify it, and the objects already fill a centred frame. Flip 0.5
 * (garments are left-right symmetric classes). Jitter p 0.8 of brightness and contrast 0.8 s
 * with s = 0.5 by default (s = 1 gives factors in [0.2, 1.8], which wipes out faint items).
 * Blur and noise are opt-in: at 28 px a blur removes most of the texture.
 */
export function gray28Config(options: Gray28Options = {}): AugmentConfig {
  const s = options.strength ?? 0.5;
  if (!isFiniteNumber(s) || s < 0) fail('strength', `expected a number >= 0, got ${String(s)}`);
  return {
    crop: { scale: [0.2, 1], ratio: [3 / 4, 4 / 3] },
    flip: { p: 0.5 },
    colorJitter: { p: 0.8, brightness: 0.8 * s, contrast: 0.8 * s },
    blur: options.blur ? { p: 0.5, sigma: [0.1, 1], kernelSize: 3 } : false,
    noise: options.noise ? { p: 0.5, std: [0.01, 0.05] } : false,
    clamp: true,
  };
}

export interface SimclrRgbOptions {
  /** Colour-jitter strength s. Default 1 (SimCLR ImageNet; 0.5 for CIFAR-10). */
  strength?: number;
  /** Gaussian blur p 0.5 (SimCLR uses it on ImageNet, not on CIFAR-10). Default true. */
  blur?: boolean;
  /** Output size [h, w]. Default: the input's. */
  size?: readonly [number, number];
}

/**
 * SimCLR's RGB recipe (Chen et al. 2020, appendix A): random resized crop (0.08-1, 3/4-4/3),
 * flip 0.5, colour jitter p 0.8 with brightness 0.8 s, contrast 0.8 s, saturation 0.8 s and hue
 * 0.2 s in random order, grayscale p 0.2, Gaussian blur p 0.5 with sigma in [0.1, 2] and a
 * kernel of 10% of the image side.
 */
export function simclrRgbConfig(options: SimclrRgbOptions = {}): AugmentConfig {
  const s = options.strength ?? 1;
  if (!isFiniteNumber(s) || s < 0 || 0.2 * s > 0.5) fail('strength', `expected a number in [0, 2.5], got ${String(s)}`);
  return {
    crop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3], ...(options.size ? { size: options.size } : {}) },
    flip: { p: 0.5 },
    colorJitter: { p: 0.8, brightness: 0.8 * s, contrast: 0.8 * s, saturation: 0.8 * s, hue: 0.2 * s, randomOrder: true },
    grayscale: { p: 0.2 },
    blur: options.blur === false ? false : { p: 0.5, sigma: [0.1, 2] },
    clamp: true,
  };
}

export type AugmentPresetName = 'gray28' | 'simclr-rgb';

/** A named pipeline: 'gray28' (Fashion-MNIST-like) or 'simclr-rgb'. */
export function createPresetPipeline(name: 'gray28', options?: Gray28Options): AugmentPipeline;
export function createPresetPipeline(name: 'simclr-rgb', options?: SimclrRgbOptions): AugmentPipeline;
export function createPresetPipeline(name: AugmentPresetName, options: Gray28Options & SimclrRgbOptions = {}): AugmentPipeline {
  if (name === 'gray28') return createAugmentPipeline(gray28Config(options), name);
  if (name === 'simclr-rgb') return createAugmentPipeline(simclrRgbConfig(options), name);
  return fail('preset', `unknown preset ${String(name)} (known: gray28, simclr-rgb)`);
}
