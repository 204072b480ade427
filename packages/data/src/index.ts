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
  fashionMnistFiles,
  loadFashionMnist,
} from './fashion-mnist.js';
export type { FashionMnistOptions, FashionMnistSplit } from './fashion-mnist.js';

export { decodeImage, readImageFolder, sniffImageFormat } from './image-folder.js';
export { encodePng, writePngFolder } from './image-writer.js';
export type {
  DecodeOptions,
  FitMode,
  FolderDataset,
  ImageFolderOptions,
  ImageFormat,
  SkippedFile,
} from './image-folder.js';

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
