// Deterministic batched image ops on NHWC float32 tensors in [0, 1], with explicit per-image
// parameters (the random pipeline draws them; tests can pin them). Forward-only.
//
// Kernel choice, measured on tfjs 4.22 (64x32x32x3 batch): on wasm, same-shape arithmetic and
// per-image broadcasts against [N, 1, 1, 1] take ~0.1-0.5 ms, channel broadcasts ([..., 1]
// against [..., 3]) and Mod ~3 ms, and Tile/BroadcastTo, Concat, SplitV, broadcasting Equal
// (so tf.where with a per-image mask) 9-16 ms. On cpu, Reverse, Tile, SplitV and every
// broadcasting binary op walk each element through an index conversion (a [N, 1, 1, 1]
// multiply of 256x28x28 costs ~6x a batched matMul doing the same products). Hence: flips are
// cropAndResize boxes, per-image choices are exact blends a * (1 - m) + b * m with m in {0, 1},
// per-image factors go through scalePerImage/offsetPerImage, channel differences are one
// matMul, trailing constants are rank-1 (the cpu kernels' fast path), nothing is tiled. All
// kernels used exist in wasm: CropAndResize, Range, Multiply, Add, Sub, RealDiv, Mod, Step,
// Abs, Neg, ClipByValue, Max, Min, Sum, Mean, OnesLike, BatchMatMul, Reshape, Transpose,
// MirrorPad, DepthwiseConv2dNative.
// Every op returns a new tensor and leaves no intermediate tensor behind.
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';

/** ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale and PIL's convert('L'). */
export const LUMA_WEIGHTS = [0.299, 0.587, 0.114] as const;

/** Throws unless `images` is a float32 NHWC batch with every dimension >= 1. */
export function checkImages(images: tf.Tensor, name = 'images'): asserts images is tf.Tensor4D {
  if (!(images instanceof tf.Tensor)) throw new ShapeError(name, 'expected a tf.Tensor');
  if (images.rank !== 4) throw new ShapeError(name, `expected rank 4 NHWC, got shape [${images.shape.join(', ')}]`);
  if (images.dtype !== 'float32') throw new ShapeError(name, `expected dtype float32, got ${images.dtype}`);
  if (images.shape.some((s) => s < 1)) throw new ShapeError(name, `every dimension must be >= 1, got [${images.shape.join(', ')}]`);
}

function checkPerImage(values: { readonly length: number }, n: number, name: string): void {
  if (values.length !== n) throw new ShapeError(name, `expected ${n} per-image values, got ${values.length}`);
}

function checkRgb(images: tf.Tensor4D, op: string): void {
  if (images.shape[3] !== 3) throw new ShapeError('images', `${op} needs 3 (RGB) channels, got ${images.shape[3]}`);
}

/** [N] per-image numbers as a [N, 1, 1, 1] tensor that broadcasts over an NHWC batch. */
function perImage(values: ArrayLike<number>): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(values), [values.length, 1, 1, 1]);
}

/**
 * x * s_i for each image i, with s a [N, 1, 1, 1] tensor. On tfjs-backend-cpu, whose
 * broadcasting Multiply converts every element's index (about 6x slower here), it is a batched
 * matMul [N, P, 1] x [N, 1, 1] instead - one product per element, so the same numbers.
 */
function scalePerImage(x: tf.Tensor4D, s: tf.Tensor4D): tf.Tensor4D {
  if (tf.getBackend() !== 'cpu') return tf.mul(x, s) as tf.Tensor4D;
  const n = x.shape[0];
  return tf.reshape(tf.matMul(tf.reshape(x, [n, -1, 1]), tf.reshape(s, [n, 1, 1])), x.shape) as tf.Tensor4D;
}

/** x + b_i for each image i, with b a [N, 1, 1, 1] tensor (see scalePerImage for the cpu path). */
function offsetPerImage(x: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  if (tf.getBackend() !== 'cpu') return tf.add(x, b) as tf.Tensor4D;
  return tf.add(x, scalePerImage(tf.onesLike(x), b)) as tf.Tensor4D;
}

/**
 * t [N, H, W, 1] over c channels, for an op against [N, H, W, c]: t itself (it broadcasts, or
 * already has c channels) on
 * backends that broadcast well, a [P, 1] x [1, c] matMul on cpu (exact: one product by 1).
 */
function channelsOf(t: tf.Tensor4D, c: number): tf.Tensor4D {
  if (tf.getBackend() !== 'cpu' || t.shape[3] === c) return t;
  const [n, h, w] = t.shape;
  return tf.reshape(tf.matMul(tf.reshape(t, [-1, 1]), tf.ones([1, c])), [n, h, w, c]) as tf.Tensor4D;
}

/**
 * Per image, `a` where flags[i] is off and `b` where it is on: a * (1 - m) + b * m with m a
 * [N, 1, 1, 1] tensor of 0/1. Exact for finite inputs (x * 1 + y * 0 = x), and `b` may have
 * one channel where `a` has several (it broadcasts).
 */
function blendPerImage(a: tf.Tensor4D, b: tf.Tensor4D, flags: ArrayLike<boolean | number>): tf.Tensor4D {
  const m = perImage(Array.from({ length: flags.length }, (_, i) => (flags[i] ? 1 : 0)));
  return tf.add(scalePerImage(a, tf.sub(1, m)), channelsOf(scalePerImage(b, m), a.shape[3])) as tf.Tensor4D;
}

/** Distance kept between a box's far edge and the image border (see cropAndResizeBoxes). */
const EDGE_MARGIN = 1e-5;

/**
 * Crops box i of image i and resizes it (bilinear) to `size`, all in one cropAndResize call.
 * `boxes` holds N * 4 normalised [y1, x1, y2, x2] in [0, 1] (tf.image.cropAndResize's
 * convention: 0 and 1 are the centres of the first and last pixel), so [0, 0, 1, 1] at the
 * input size is exactly the identity, and x1 > x2 gives a left-right mirrored crop ([0, 1, 1, 0]
 * at the input size is exactly a flip).
 *
 * The kernel steps from the first edge to the second in float arithmetic and writes 0 for a
 * sample that lands a rounding error outside the image, which would blacken the last row or
 * column. So the second edge of each axis is kept EDGE_MARGIN (1e-5, a negligible shift) inside
 * the border, except on a full-extent axis resized to its own length, where every sample falls
 * exactly on a pixel.
 */
export function cropAndResizeBoxes(images: tf.Tensor4D, boxes: ArrayLike<number>, size: readonly [number, number]): tf.Tensor4D {
  checkImages(images);
  const [n, h, w] = images.shape;
  checkPerImage({ length: boxes.length / 4 }, n, 'boxes');
  if (!size.every((v) => Number.isInteger(v) && v >= 1)) throw new ShapeError('size', `expected positive integers, got [${size.join(', ')}]`);
  const safe = new Float32Array(4 * n);
  for (let i = 0; i < 4 * n; i++) {
    const v = boxes[i] as number;
    if (!(v >= 0 && v <= 1)) throw new ShapeError('boxes', `coordinate ${i} is ${v}, outside [0, 1]`);
    safe[i] = v;
  }
  for (let b = 0; b < n; b++) {
    for (const axis of [0, 1]) {
      const first = safe[4 * b + axis] as number;
      const second = safe[4 * b + axis + 2] as number;
      const exact = Math.abs(second - first) === 1 && size[axis] === (axis === 0 ? h : w);
      if (!exact) safe[4 * b + axis + 2] = Math.min(Math.max(second, EDGE_MARGIN), 1 - EDGE_MARGIN);
    }
  }
  return tf.tidy(() => {
    const boxT = tf.tensor2d(safe, [n, 4]);
    const index = tf.range(0, n, 1, 'int32') as tf.Tensor1D;
    return tf.image.cropAndResize(images, boxT, index, [size[0], size[1]], 'bilinear');
  });
}

/**
 * Mirrors image i left-right where flags[i] is set: one cropAndResize with the boxes
 * [0, 1, 1, 0] (flipped) or [0, 0, 1, 1] (kept), both exact. Cheaper than Reverse + Select,
 * whose CPU kernels walk every element through an index conversion.
 */
export function flipHorizontal(images: tf.Tensor4D, flags: ArrayLike<boolean | number>): tf.Tensor4D {
  checkImages(images);
  const [n, h, w] = images.shape;
  checkPerImage(flags, n, 'flags');
  const boxes = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) boxes.set(flags[i] ? [0, 1, 1, 0] : [0, 0, 1, 1], 4 * i);
  return cropAndResizeBoxes(images, boxes, [h, w]);
}

/**
 * Per-image luminance [N, H, W, 1]: the BT.601 weighted sum for RGB, the image itself for one
 * channel, the channel mean otherwise.
 */
export function luminance(images: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const c = images.shape[3];
    if (c === 1) return tf.clone(images);
    if (c === 3) return tf.sum(tf.mul(images, tf.tensor1d(LUMA_WEIGHTS.slice())), 3, true) as tf.Tensor4D;
    return tf.mean(images, 3, true) as tf.Tensor4D;
  });
}

/** x * f_i, clamped to [0, 1] (torchvision's adjust_brightness). f = 1 is exactly the identity. */
export function adjustBrightness(images: tf.Tensor4D, factors: ArrayLike<number>): tf.Tensor4D {
  checkImages(images);
  checkPerImage(factors, images.shape[0], 'factors');
  return tf.tidy(() => tf.clipByValue(scalePerImage(images, perImage(factors)), 0, 1) as tf.Tensor4D);
}

/**
 * Blend with the image's mean luminance m_i: x * f_i + m_i * (1 - f_i), clamped to [0, 1]
 * (torchvision's adjust_contrast). f = 1 is exactly the identity; f = 0 gives a flat image.
 */
export function adjustContrast(images: tf.Tensor4D, factors: ArrayLike<number>): tf.Tensor4D {
  checkImages(images);
  checkPerImage(factors, images.shape[0], 'factors');
  return tf.tidy(() => {
    const f = perImage(factors);
    const meanLuma = tf.mean(images.shape[3] === 1 ? images : luminance(images), [1, 2, 3], true);
    return tf.clipByValue(offsetPerImage(scalePerImage(images, f), tf.mul(meanLuma, tf.sub(1, f))), 0, 1) as tf.Tensor4D;
  });
}

/**
 * RGB only: blend with the per-pixel luminance, x * f_i + gray * (1 - f_i), clamped
 * (torchvision's adjust_saturation). f = 1 is the identity, f = 0 grayscale.
 */
export function adjustSaturation(images: tf.Tensor4D, factors: ArrayLike<number>): tf.Tensor4D {
  checkImages(images);
  checkRgb(images, 'adjustSaturation');
  checkPerImage(factors, images.shape[0], 'factors');
  return tf.tidy(() => {
    const f = perImage(factors);
    const gray = scalePerImage(luminance(images), tf.sub(1, f) as tf.Tensor4D); // [N, H, W, 1]
    return tf.clipByValue(tf.add(scalePerImage(images, f), channelsOf(gray, 3)), 0, 1) as tf.Tensor4D;
  });
}

/**
 * Column c of this matrix maps an RGB pixel to the numerator of its hexcone hue when channel c
 * is the maximum: g - b (red), b - r (green), r - g (blue).
 */
const HUE_DIFFS = [0, -1, 1, 1, 0, -1, -1, 1, 0];

/**
 * RGB only: rotates the hue of image i by deltas[i] turns (in [-0.5, 0.5]), keeping HSV's
 * saturation and value, clamped - the result of torchvision's adjust_hue (RGB -> HSV, shift
 * H, HSV -> RGB), computed without a conditional:
 *
 *   6h = (d_c / chroma + 2c) mod 6 for a channel c holding the maximum, where d = x . HUE_DIFFS
 *        (channels tied for the maximum give the same value, so their mean is taken);
 *   out_c = max - chroma * clamp(min(k_c, 4 - k_c), 0, 1), k_c = (n_c + 6h') mod 6, n = 5, 3, 1
 *
 * Gray pixels (chroma 0) stay unchanged. Images with delta 0 are returned exactly unchanged.
 */
export function adjustHue(images: tf.Tensor4D, deltas: ArrayLike<number>): tf.Tensor4D {
  checkImages(images);
  checkRgb(images, 'adjustHue');
  checkPerImage(deltas, images.shape[0], 'deltas');
  return tf.tidy(() => {
    const shape = images.shape;
    const maxc = tf.max(images, 3, true) as tf.Tensor4D; // [N, H, W, 1] = V
    const chroma = tf.sub(maxc, tf.min(images, 3, true)) as tf.Tensor4D;
    const safeChroma = tf.add(chroma, tf.sub(1, tf.step(chroma))) as tf.Tensor4D; // 1 where chroma = 0
    const max3 = channelsOf(maxc, 3);
    const diffs = tf.reshape(tf.matMul(tf.reshape(images, [-1, 3]), tf.tensor2d(HUE_DIFFS, [3, 3])), shape);
    const candidates = tf.mod(tf.add(tf.div(diffs, channelsOf(safeChroma, 3)), tf.tensor1d([0, 2, 4])), 6);
    const isMax = tf.sub(1, tf.step(tf.sub(max3, images))); // 1 where x_c = max
    const h6 = tf.div(tf.sum(tf.mul(isMax, candidates), 3, true), tf.sum(isMax, 3, true)) as tf.Tensor4D;
    const shifted = offsetPerImage(h6, perImage(Array.from(deltas, (d) => 6 * d)));
    const k = tf.mod(tf.add(channelsOf(shifted, 3), tf.tensor1d([5, 3, 1])), 6); // [N, H, W, 3]
    const t = tf.clipByValue(tf.add(tf.neg(tf.abs(tf.sub(k, 2))), 2), 0, 1); // min(k, 4 - k) = 2 - |k - 2|
    const rgb = tf.clipByValue(tf.sub(max3, tf.mul(channelsOf(chroma, 3), t)), 0, 1) as tf.Tensor4D;
    return blendPerImage(images, rgb, Array.from(deltas, (d) => d !== 0));
  });
}

/** Replaces image i by its luminance (in every channel) where flags[i] is set. */
export function grayscaleWhere(images: tf.Tensor4D, flags: ArrayLike<boolean | number>): tf.Tensor4D {
  checkImages(images);
  checkPerImage(flags, images.shape[0], 'flags');
  return tf.tidy(() => blendPerImage(images, luminance(images), flags));
}

/** Normalised 1-D Gaussian taps exp(-t^2 / (2 sigma^2)), t = -r..r; sigma <= 0 gives a delta. */
export function gaussianKernel1d(sigma: number, radius: number): Float32Array {
  const taps = new Float32Array(2 * radius + 1);
  if (!(sigma > 0)) {
    taps[radius] = 1;
    return taps;
  }
  let total = 0;
  for (let t = -radius; t <= radius; t++) {
    const w = Math.exp(-(t * t) / (2 * sigma * sigma));
    taps[t + radius] = w;
    total += w;
  }
  for (let i = 0; i < taps.length; i++) taps[i] = (taps[i] as number) / total;
  return taps;
}

/**
 * Gaussian blur with a per-image sigma (sigma <= 0: unchanged), kernel `kernelSize` (odd; its
 * radius is capped at min(H, W) - 1), reflect padding so a constant image stays constant.
 *
 * One separable pass for the whole batch: the batch is folded into the channel axis
 * ([N, H, W, C] -> [1, H, W, N*C]) so that a depthwise convolution applies image i's own
 * kernel to image i's channels - no per-sigma buckets, no loop over images.
 */
export function gaussianBlurPerImage(images: tf.Tensor4D, sigmas: ArrayLike<number>, kernelSize: number): tf.Tensor4D {
  checkImages(images);
  const [n, h, w, c] = images.shape;
  checkPerImage(sigmas, n, 'sigmas');
  if (!Number.isInteger(kernelSize) || kernelSize < 1 || kernelSize % 2 !== 1) {
    throw new ShapeError('kernelSize', `expected an odd integer >= 1, got ${kernelSize}`);
  }
  const radius = Math.min((kernelSize - 1) / 2, h - 1, w - 1);
  if (radius === 0) return tf.clone(images);
  const channels = n * c;
  const taps = 2 * radius + 1;
  // filter[t, ch] for ch = i * C + c is image i's tap t; [1, k, NC, 1] and [k, 1, NC, 1] share it.
  const filter = new Float32Array(taps * channels);
  for (let i = 0; i < n; i++) {
    const kernel = gaussianKernel1d(sigmas[i] as number, radius);
    for (let t = 0; t < taps; t++) {
      const tap = kernel[t] as number;
      for (let ch = i * c; ch < (i + 1) * c; ch++) filter[t * channels + ch] = tap;
    }
  }
  return tf.tidy(() => {
    const folded = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [1, h, w, channels]) as tf.Tensor4D;
    const padded = tf.mirrorPad(folded, [[0, 0], [radius, radius], [radius, radius], [0, 0]], 'reflect');
    const horizontal = tf.depthwiseConv2d(padded, tf.tensor4d(filter, [1, taps, channels, 1]), 1, 'valid');
    const blurred = tf.depthwiseConv2d(horizontal, tf.tensor4d(filter, [taps, 1, channels, 1]), 1, 'valid');
    return tf.transpose(tf.reshape(blurred, [h, w, n, c]), [2, 0, 1, 3]) as tf.Tensor4D;
  });
}

/**
 * x + stds[i] * z with z the given standard-normal draws (N*H*W*C values, NHWC order). Not
 * clamped (the pipeline clamps at the end). stds[i] = 0 leaves image i exactly unchanged.
 */
export function addGaussianNoise(images: tf.Tensor4D, standardNormal: Float32Array, stds: ArrayLike<number>): tf.Tensor4D {
  checkImages(images);
  checkPerImage(stds, images.shape[0], 'stds');
  if (standardNormal.length !== images.size) {
    throw new ShapeError('standardNormal', `expected ${images.size} values, got ${standardNormal.length}`);
  }
  // Scaled in JS (one pass over data drawn in JS anyway), so the add is a same-shape kernel.
  const perImageSize = images.size / images.shape[0];
  const scaled = new Float32Array(standardNormal.length);
  for (let i = 0; i < scaled.length; i++) scaled[i] = (standardNormal[i] as number) * (stds[Math.floor(i / perImageSize)] as number);
  return tf.tidy(() => tf.add(images, tf.tensor4d(scaled, images.shape)) as tf.Tensor4D);
}
