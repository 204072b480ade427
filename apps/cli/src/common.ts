// Shared option handling of the fedclr commands.
import { availableParallelism } from 'node:os';
import { loadFashionMnist, readImageFolder, type ImageDataset } from '@fedclr/data';
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

export function defaultWorkers(): number {
  return Math.min(2, availableParallelism());
}

export interface DataOptions {
  dataset?: string;
  data?: string;
  size?: number;
  channels?: 1 | 3;
}

/** The training images: Fashion-MNIST's train split, or an image folder. */
export async function loadImages(options: DataOptions, split: 'train' | 'test', log: (line: string) => void): Promise<ImageDataset> {
  if (options.dataset !== undefined && options.data !== undefined) throw new UsageError('give --dataset or --data, not both');
  if (options.data !== undefined) {
    const size = options.size ?? 32;
    const folder = await readImageFolder(options.data, { height: size, width: size, channels: options.channels ?? 3, labeled: false });
    if (folder.skipped.length > 0) log(`skipped ${folder.skipped.length} unreadable files, e.g. ${folder.skipped[0]?.path}: ${folder.skipped[0]?.reason}`);
    if (folder.count === 0) throw new UsageError(`no readable PNG or JPEG images under ${options.data}`);
    return folder;
  }
  const name = options.dataset ?? 'fashion-mnist';
  if (name !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${name}'; available: fashion-mnist (or --data DIR)`);
  return loadFashionMnist(split);
}
