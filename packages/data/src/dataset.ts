// The in-memory dataset shape every reader returns: raw bytes, NHWC, plus optional labels.
// Bytes (not floats) keep Fashion-MNIST at 47 MB instead of 188 MB; convert per batch.
import { DatasetInvalidError } from './errors.js';

export interface ImageDataset {
  /** count * height * width * channels bytes, row-major NHWC, 0..255. */
  readonly images: Uint8Array;
  /** One class index per image, or null for an unlabeled dataset. */
  readonly labels: Uint8Array | null;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /** Class index -> name; empty for an unlabeled dataset. */
  readonly classNames: readonly string[];
}

export interface LabeledImageDataset extends ImageDataset {
  readonly labels: Uint8Array;
}

/** Bytes per image (height * width * channels). */
export function imageSize(dataset: ImageDataset): number {
  return dataset.height * dataset.width * dataset.channels;
}

/** A view (no copy) of image i's bytes, HWC. */
export function imageView(dataset: ImageDataset, index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= dataset.count) {
    throw new DatasetInvalidError(`image index ${index} is outside 0..${dataset.count - 1}`);
  }
  const size = imageSize(dataset);
  return dataset.images.subarray(index * size, (index + 1) * size);
}

/**
 * Scale bytes to floats in [0, 1] (x / 255). Writes into `out` when given (it must have the same
 * length), so a training loop can reuse one batch buffer.
 */
export function toFloat32(bytes: Uint8Array, out?: Float32Array): Float32Array {
  const target = out ?? new Float32Array(bytes.length);
  if (target.length !== bytes.length) {
    throw new DatasetInvalidError(`toFloat32 output has length ${target.length}, input has ${bytes.length}`);
  }
  const scale = 1 / 255;
  for (let i = 0; i < bytes.length; i++) target[i] = (bytes[i] as number) * scale;
  return target;
}

/** A new dataset holding copies of the listed examples, in the listed order. */
export function subsetDataset(dataset: LabeledImageDataset, indices: ArrayLike<number>): LabeledImageDataset;
export function subsetDataset(dataset: ImageDataset, indices: ArrayLike<number>): ImageDataset;
export function subsetDataset(dataset: ImageDataset, indices: ArrayLike<number>): ImageDataset {
  const size = imageSize(dataset);
  const images = new Uint8Array(indices.length * size);
  const labels = dataset.labels === null ? null : new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k] as number;
    if (!Number.isInteger(i) || i < 0 || i >= dataset.count) {
      throw new DatasetInvalidError(`subset index ${i} (position ${k}) is outside 0..${dataset.count - 1}`);
    }
    images.set(dataset.images.subarray(i * size, (i + 1) * size), k * size);
    if (labels !== null && dataset.labels !== null) labels[k] = dataset.labels[i] as number;
  }
  return {
    images,
    labels,
    count: indices.length,
    height: dataset.height,
    width: dataset.width,
    channels: dataset.channels,
    classNames: dataset.classNames,
  };
}
