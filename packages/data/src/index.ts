// Public API of @fedclr/data: seeded RNG, dataset readers, partitioners, error catalog.
export { createRng, SeededRng } from './rng.js';
export type { MutableArrayLike, Rng, RngState, Seed } from './rng.js';

export { imageSize, imageView, subsetDataset, toFloat32 } from './dataset.js';
export type { ImageDataset, LabeledImageDataset } from './dataset.js';

export { encodeIdxUint8, expectIdxShape, isGzip, parseIdx, readIdxFile } from './idx.js';
export type { IdxArray, IdxData, IdxDataType } from './idx.js';

export {
  FASHION_MNIST_CLASS_NAMES,
  FASHION_MNIST_DIR,
  FASHION_MNIST_VALIDATION_SIZE,
  fashionMnistFiles,
  fashionMnistProbeSplits,
  loadFashionMnist,
} from './fashion-mnist.js';
export type { FashionMnistOptions, FashionMnistSplit } from './fashion-mnist.js';

export { classFolderName, encodePng, writeLabeledPngFolder, writePngFolder } from './image-writer.js';
export { decodeImage, sniffImageFormat } from './image-decode.js';
export type { DecodeOptions, FitMode, ImageFormat } from './image-decode.js';
export { defaultMaxDecodedBytes, readImageFolder } from './image-folder.js';
export type { FolderDataset, ImageFolderOptions } from './image-folder.js';
export { formatSkipped, SKIP_CATEGORIES, summarizeSkipped } from './skipped.js';
export type { SkipCategory, SkippedFile, SkipSummary } from './skipped.js';
export { stratifiedSplit } from './split.js';
export type { TrainTestSplit } from './split.js';

export {
  formatLabelHistogram,
  labelCounts,
  labelSkew,
  partition,
  partitionDirichlet,
  partitionIid,
  partitionShards,
} from './partition.js';
export type { DirichletOptions, HistogramOptions, IidOptions, Partition, PartitionSpec, ShardOptions } from './partition.js';

export * as errors from './errors.js';
