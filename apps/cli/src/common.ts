// Shared option handling of the fedclr commands.
import { availableParallelism } from 'node:os';
import { contrastiveModel, convnetS, representationWidth, withProjectionHead, type EncoderName, type InputShape } from '@fedclr/contrastive';
import { loadFashionMnist, readImageFolder, type ImageDataset } from '@fedclr/data';
import type { GraphSpec } from '@fedclr/tensor';
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

/** The contrastive model (encoder + head) named by --encoder, optionally with --widths for convnet-s. */
export function modelSpec(encoder: string, input: InputShape, widthsFlag: string | undefined): GraphSpec {
  if (encoder !== 'convnet-s' && encoder !== 'resnet-s') throw new UsageError(`--encoder must be convnet-s or resnet-s, got '${encoder}'`);
  if (widthsFlag === undefined) return contrastiveModel(encoder as EncoderName, input);
  const widths = widthsFlag.split(',').map(Number);
  if (encoder !== 'convnet-s' || widths.length !== 3 || widths.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new UsageError(`--widths takes three positive integers for convnet-s, e.g. 32,64,128; got '${widthsFlag}'`);
  }
  const encoderSpec = convnetS({ ...input, widths: widths as [number, number, number] });
  return withProjectionHead(encoderSpec, representationWidth(encoderSpec));
}
