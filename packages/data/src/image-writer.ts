// Writes dataset images as PNG files: the image folders an agent reads (fedclr partition, tests).
// PNG is lossless, so a folder written here reads back as exactly the same bytes.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { imageView, type ImageDataset } from './dataset.js';
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
