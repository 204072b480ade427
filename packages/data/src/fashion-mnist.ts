// Fashion-MNIST (Xiao et al. 2017) from the IDX .gz files of Debian's `dataset-fashion-mnist`.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { subsetDataset, type LabeledImageDataset } from './dataset.js';
import { createRng } from './rng.js';
import {
  FashionMnistBadLabelError,
  FashionMnistInvalidOptionError,
  FashionMnistMismatchError,
  FashionMnistNotFoundError,
  IdxReadError,
} from './errors.js';
import { expectIdxShape, readIdxFile } from './idx.js';

/** Where `apt-get install dataset-fashion-mnist` puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASS_NAMES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

export type FashionMnistSplit = 'train' | 'test';

export interface FashionMnistOptions {
  /** Folder holding the four IDX files; default FASHION_MNIST_DIR. */
  readonly dir?: string;
  /** Keep only the first `limit` examples (the files are still read whole). */
  readonly limit?: number;
}

/** Paths of a split's image and label files. */
export function fashionMnistFiles(split: FashionMnistSplit, dir = FASHION_MNIST_DIR): { images: string; labels: string } {
  if (split !== 'train' && split !== 'test') {
    throw new FashionMnistInvalidOptionError(`split must be 'train' or 'test', got ${String(split)}`);
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  return {
    images: join(dir, `${prefix}-images-idx3-ubyte.gz`),
    labels: join(dir, `${prefix}-labels-idx1-ubyte.gz`),
  };
}

async function requireFile(path: string): Promise<void> {
  try {
    const info = await stat(path);
    if (info.isFile()) return;
  } catch (err) {
    // Only "does not exist" means "not installed"; permission errors and the like surface as is.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new IdxReadError(path, (err as Error).message, { cause: err });
    }
  }
  throw new FashionMnistNotFoundError(path);
}

/** Load one split: 60000 (train) or 10000 (test) 28x28x1 images with labels 0..9. */
export async function loadFashionMnist(
  split: FashionMnistSplit,
  options: FashionMnistOptions = {},
): Promise<LabeledImageDataset> {
  const files = fashionMnistFiles(split, options.dir);
  const limit = options.limit;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
    throw new FashionMnistInvalidOptionError(`limit must be a non-negative integer, got ${String(limit)}`);
  }
  await Promise.all([requireFile(files.images), requireFile(files.labels)]);
  const [imagesIdx, labelsIdx] = await Promise.all([readIdxFile(files.images), readIdxFile(files.labels)]);
  expectIdxShape(imagesIdx, files.images, 'uint8', [null, 28, 28], 'uint8 images of shape [n, 28, 28]');
  expectIdxShape(labelsIdx, files.labels, 'uint8', [null], 'uint8 labels of shape [n]');
  const n = imagesIdx.dims[0] as number;
  const nLabels = labelsIdx.dims[0] as number;
  if (n !== nLabels) throw new FashionMnistMismatchError(files.images, n, files.labels, nLabels);

  const labels = labelsIdx.data as Uint8Array;
  const bad = labels.findIndex((l) => l >= FASHION_MNIST_CLASS_NAMES.length);
  if (bad >= 0) throw new FashionMnistBadLabelError(files.labels, labels[bad] as number, bad);

  const count = limit === undefined ? n : Math.min(limit, n);
  const images = imagesIdx.data as Uint8Array;
  return {
    // slice() copies only when trimming, so the untrimmed case stays one 47 MB buffer.
    images: count === n ? images : images.slice(0, count * 28 * 28),
    labels: count === n ? labels : labels.slice(0, count),
    count,
    height: 28,
    width: 28,
    channels: 1,
    classNames: FASHION_MNIST_CLASS_NAMES,
  };
}

/** Images held out of the train split by `fedclr eval --split validation`. */
export const FASHION_MNIST_VALIDATION_SIZE = 10_000;

/**
 * The (fit, score) splits a probe uses: train / test, or train minus a seeded held-out part of it
 * / that part (so the test split plays no part in choosing a recipe).
 */
export async function fashionMnistProbeSplits(split: 'test' | 'validation', seed: number): Promise<[LabeledImageDataset, LabeledImageDataset]> {
  const train = await loadFashionMnist('train');
  if (split === 'test') return [train, await loadFashionMnist('test')];
  const order = createRng(seed).shuffle(Array.from({ length: train.count }, (_, i) => i));
  return [subsetDataset(train, order.slice(FASHION_MNIST_VALIDATION_SIZE)), subsetDataset(train, order.slice(0, FASHION_MNIST_VALIDATION_SIZE))];
}
