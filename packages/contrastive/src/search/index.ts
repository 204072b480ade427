// Embeddings of images through a saved encoder, fedclr's embeddings file (.npz), and cosine
// similarity search over it: exact, or approximate (HNSW) for large sets.
export { encodeImages, modelFingerprint, representationDim, representationNode, type EncodeOptions } from './encode.js';
export {
  EMBEDDINGS_FORMAT,
  decodeEmbeddings,
  encodeEmbeddings,
  readEmbeddingsFile,
  type AnnMeta,
  type EmbeddingModel,
  type Embeddings,
  type EmbeddingsMeta,
} from './embeddings-file.js';
export { writeFileAtomic } from './atomic.js';
export { ExactIndex, normalizeRows, recallAtK, type Neighbours, type SimilarityIndex } from './exact.js';
export { HNSW_DEFAULT_EF, HNSW_DEFAULTS, HNSW_LIBRARY, HnswIndex, type HnswOptions } from './hnsw.js';
export { ANN_AUTO_THRESHOLD, ANN_SUFFIX, RECALL_SAMPLE, openEmbeddings, sampledRecall, saveEmbeddings, type AnnMode, type OpenOptions, type SaveEmbeddingsOptions } from './store.js';
export * from './errors.js';
