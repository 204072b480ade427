// Writes dataset images as PNG files: the image folders an agent reads (fedclr partition, tests),
// and labeled folders (one sub-folder per class) as the evaluation commands read them.
// PNG is lossless, so a folder written here reads back as exactly the same bytes.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { imageView, type ImageDataset, type LabeledImageDataset } from './dataset.js';
import { DatasetInvalidError } from './errors.js';

/** Images encoded at once: sharp encodes on its own thread pool. */
const ENCODE_BATCH = 64;

/** Image `index` of a dataset as PNG bytes (grayscale or RGB, as the dataset). */
export function encodePng(dataset: ImageDataset, index: number): Promise<Buffer> {
  const { width, height, channels } = dataset;
  if (channels !== 1 && channels !== 3) throw new DatasetInvalidError(`PNG export takes 1 or 3 channels, the dataset has ${channels}`);
  return sharp(imageView(dataset, index), { raw: { width, height, channels } }).png().toBuffer();
}

/**
 * Writes the listed images of `dataset` into `dir` (created), image i as `name(i)` (default
 * `img-<i zero-padded to the dataset's largest index>.png`, so sorted names keep index order).
 */
export async function writePngFolder(dataset: ImageDataset, indices: readonly number[], dir: string, name?: (index: number) => string): Promise<void> {
  const digits = String(Math.max(0, dataset.count - 1)).length;
  const fileName = name ?? ((i: number) => `img-${String(i).padStart(digits, '0')}.png`);
  await mkdir(dir, { recursive: true });
  for (let start = 0; start < indices.length; start += ENCODE_BATCH) {
    await Promise.all(indices.slice(start, start + ENCODE_BATCH).map(async (i) => writeFile(join(dir, fileName(i)), await encodePng(dataset, i))));
  }
}

/**
 * A class name as a folder name: path separators and other characters a file name should not
 * hold become '-' (Fashion-MNIST's 'T-shirt/top' is the folder 'T-shirt-top').
 */
export function classFolderName(className: string): string {
  const name = className.replace(/[^\p{L}\p{N} ._-]+/gu, '-').trim().replace(/^\.+/, '');
  if (name === '') throw new DatasetInvalidError(`the class name '${className}' leaves no folder name`);
  return name;
}

/**
 * Writes the listed images of a labeled dataset as a labeled folder: image i as
 * `dir/<classFolderName(class of i)>/img-<i>.png`, the layout `readImageFolder` labels by
 * (fedclr eval --data, fedclr coordinator --eval-data). Readers number the classes by the folders'
 * sorted names, which may differ from dataset.classNames' order (the classes are the same).
 */
export async function writeLabeledPngFolder(dataset: LabeledImageDataset, indices: readonly number[], dir: string): Promise<void> {
  const folders = dataset.classNames.map(classFolderName);
  if (new Set(folders).size !== folders.length) throw new DatasetInvalidError(`two class names map to the same folder name: ${folders.join(', ')}`);
  const byClass = new Map<number, number[]>();
  for (const i of indices) {
    const label = dataset.labels[i] as number;
    if (folders[label] === undefined) throw new DatasetInvalidError(`image ${i} has label ${label}, outside the ${folders.length} class names`);
    byClass.set(label, [...(byClass.get(label) ?? []), i]);
  }
  for (const [label, members] of byClass) await writePngFolder(dataset, members, join(dir, folders[label] as string));
}
