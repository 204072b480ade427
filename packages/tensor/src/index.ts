export { initBackend, currentBackend, type BackendChoice, type BackendName } from './backend.js';
export { installFastWasmKernels } from './wasm/register.js';
export { getLogger, setLogger, type Logger } from './log.js';
export * from './errors.js';
export { Network, exportedSpec, inferShapes, weightSpecs, type GraphSpec, type NodeSpec, type Weight, type WeightSpec } from './nn/graph.js';
export { batchNormInfer, batchNormTrain, channelAffine, channelMeans, globalAveragePool, type BatchStats } from './nn/ops.js';
export {
  assertSameManifest,
  flattenWeights,
  loadFlatWeights,
  manifestOf,
  manifestOfSpec,
  segmentsOf,
  sizeOf,
  totalSize,
  type Segment,
  type WeightManifest,
} from './weights.js';
export {
  HEAD_WEIGHTS_FILE,
  MODEL_FILE,
  WEIGHTS_FILE,
  layersModelArtifacts,
  loadExportedModel,
  loadModel,
  saveModel,
  toLayersModel,
  type FedclrModelMetadata,
  type LayersModelArtifacts,
  type LayersModelJson,
  type LoadedModel,
  type WeightsGroup,
} from './model-io.js';
