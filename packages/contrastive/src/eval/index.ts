// Evaluation of frozen representations: linear probe, weighted kNN, baselines' feature helpers.
export {
  accuracy,
  confusionMatrix,
  extractFeatures,
  rawPixelFeatures,
  validateSplits,
  type EmbedFunction,
  type ExtractedFeatures,
  type FeatureSet,
  type LabelArray,
  type ValidatedSplits,
} from './features.js';
export {
  DEFAULT_PROBE_L2,
  DEFAULT_PROBE_L2_CANDIDATES,
  linearProbe,
  linearProbeProbabilities,
  predictLinearProbe,
  stratifiedSplit,
  type L2SearchEntry,
  type LinearProbeModel,
  type LinearProbeOptions,
  type LinearProbeResult,
} from './linear-probe.js';
export { DEFAULT_KNN_K, DEFAULT_KNN_TEMPERATURE, knn, type KnnOptions, type KnnResult, type KnnWeighting } from './knn.js';
export { evaluateRepresentation, type EvaluateOptions, type EvaluationResult } from './evaluate.js';
export { minimizeLbfgs, type LbfgsOptions, type LbfgsProgress, type LbfgsResult, type LbfgsStopReason, type Objective } from './lbfgs.js';
export { PROBE_HEAD_FORMAT, fitProbeHead, parseProbeHead, probeHeadModel, type ProbeHead, type ProbeHeadOptions } from './probe-head.js';
export { gaussianBlobs, xorBlobs, type BlobsOptions } from './synthetic.js';
export * from './errors.js';
