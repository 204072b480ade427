// What embed, search, probe and classify share: a saved encoder (the exported part of a model,
// with its fingerprint), and images read at its input size from a folder, Fashion-MNIST or files.
import { readFile } from 'node:fs/promises';
import { encodeImages, modelFingerprint, representationDim, type EmbeddingModel } from '@fedclr/contrastive';
import { FASHION_MNIST_CLASS_NAMES, decodeImage, loadFashionMnist, readImageFolder } from '@fedclr/data';
import { loadExportedModel, type GraphSpec } from '@fedclr/tensor';
import { defaultWorkers, intOption } from './common.js';
import { ImageReadError, ModelInputError, ModelMismatchError, NoImagesError, UsageError } from './errors.js';

/** The flags of every command that runs an encoder (--model, --workers, --json). */
export const ENCODER_OPTIONS = {
  model: { type: 'string' },
  workers: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/** ...and of those that read a whole image set (readImageSet). */
export const IMAGE_SET_OPTIONS = {
  ...ENCODER_OPTIONS,
  data: { type: 'string' },
  dataset: { type: 'string' },
  split: { type: 'string' },
} as const;

export interface Encoder {
  readonly dir: string;
  /** The exported graph: the encoder, ending at its representation. */
  readonly spec: GraphSpec;
  readonly weights: Float32Array;
  readonly dim: number;
  readonly model: EmbeddingModel;
}

/** The encoder of a saved model (model.json + weights.bin; head.bin is not needed). */
export async function loadEncoder(dir: string): Promise<Encoder> {
  const { spec, weights } = await loadExportedModel(dir);
  return { dir, spec, weights, dim: representationDim(spec), model: { architecture: spec.name, input: { ...spec.input }, fingerprint: modelFingerprint(spec, weights) } };
}

/** Refuses a file (embeddings, probe head) made with another encoder than `encoder`. */
export function checkSameEncoder(encoder: Encoder, recorded: EmbeddingModel, what: string): void {
  if (recorded.fingerprint !== encoder.model.fingerprint) {
    throw new ModelMismatchError(what, `${recorded.architecture}, fingerprint ${recorded.fingerprint.slice(0, 12)}`, `${encoder.dir} (${encoder.model.fingerprint.slice(0, 12)})`);
  }
}

function shape(input: GraphSpec['input']): string {
  return `${input.height}x${input.width}x${input.channels}`;
}

function channelsOf(encoder: Encoder): 1 | 3 {
  const { channels } = encoder.spec.input;
  if (channels !== 1 && channels !== 3) throw new ModelInputError(encoder.dir, shape(encoder.spec.input), 'only 1 (grayscale) or 3 (RGB) channel images can be read');
  return channels;
}

/** Images at the encoder's input size, with a path (or id) per image and, when labeled, labels. */
export interface ImageSet {
  readonly images: Uint8Array;
  readonly count: number;
  readonly paths: readonly string[];
  readonly labels: Uint8Array | null;
  readonly classNames: readonly string[];
  /** A folder's absolute path, or a dataset split (fashion-mnist/train). */
  readonly source: string;
}

export interface ImageSource {
  readonly data?: string | undefined;
  readonly dataset?: string | undefined;
  readonly split?: string | undefined;
}

/** Fashion-MNIST ids: fashion-mnist/<split>/<index, 5 digits>. */
function fashionMnistPath(split: string, i: number): string {
  return `fashion-mnist/${split}/${String(i).padStart(5, '0')}`;
}

/** --data DIR (labels from first-level sub-folders when `labeled`) or --dataset fashion-mnist [--split]. */
export async function readImageSet(encoder: Encoder, source: ImageSource, labeled: boolean, log: (line: string) => void): Promise<ImageSet> {
  if ((source.data === undefined) === (source.dataset === undefined)) throw new UsageError('give exactly one of --data DIR or --dataset fashion-mnist');
  const input = encoder.spec.input;
  if (source.data !== undefined) {
    if (source.split !== undefined) throw new UsageError('--split goes with --dataset');
    const folder = await readImageFolder(source.data, { height: input.height, width: input.width, channels: channelsOf(encoder), labeled });
    const first = folder.skipped[0];
    if (first !== undefined) log(`skipped ${folder.skipped.length} files, e.g. ${first.path}: ${first.reason}`);
    if (folder.count === 0) throw new NoImagesError(folder.root, first === undefined ? '' : ` (${folder.skipped.length} files skipped, e.g. ${first.path}: ${first.reason})`);
    return { images: folder.images, count: folder.count, paths: folder.paths, labels: folder.labels, classNames: folder.classNames, source: folder.root };
  }
  if (source.dataset !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${source.dataset}'; available: fashion-mnist (or --data DIR)`);
  const split = source.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new UsageError(`--split must be train or test, got '${split}'`);
  if (shape(input) !== '28x28x1') throw new ModelInputError(encoder.dir, shape(input), 'Fashion-MNIST images are 28x28x1');
  const data = await loadFashionMnist(split);
  return {
    images: data.images,
    count: data.count,
    paths: Array.from({ length: data.count }, (_, i) => fashionMnistPath(split, i)),
    labels: data.labels,
    classNames: FASHION_MNIST_CLASS_NAMES,
    source: `fashion-mnist/${split}`,
  };
}

/** PNG/JPEG files decoded to the encoder's input size (as the folder reader decodes them), HWC bytes. */
export async function readImageFiles(encoder: Encoder, files: readonly string[]): Promise<Uint8Array> {
  const { height, width } = encoder.spec.input;
  const channels = channelsOf(encoder);
  const size = height * width * channels;
  const out = new Uint8Array(files.length * size);
  for (const [i, file] of files.entries()) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      throw new ImageReadError(file, (err as Error).message);
    }
    try {
      out.set(await decodeImage(bytes, { height, width, channels }), i * size);
    } catch (err) {
      throw new ImageReadError(file, (err as Error).message);
    }
  }
  return out;
}

/** Representations of `count` images through the encoder; --workers N (default min(2, cores)). */
export async function embedImages(encoder: Encoder, images: Uint8Array, count: number, values: Record<string, unknown>): Promise<Float32Array> {
  const workers = intOption(values, 'workers', defaultWorkers(), 0);
  // Worker threads pay a start-up; a handful of query images is faster in-process.
  return (await encodeImages(encoder.spec, encoder.weights, images, count, { workers: count < 64 ? 0 : workers })).features;
}
