// @fedclr/secagg: SecAgg+ secure aggregation, pure and transport-free. See README.md.
export * from './errors.js';
export {
  encodeCanonical,
  decodeCanonical,
  canonicalDigest,
  canonicalLength,
  type CanonicalValue,
} from './canonical.js';
export {
  generateSigningKeyPair,
  generateBoxKeyPair,
  signDetached,
  verifyDetached,
  x25519,
  boxBefore,
  defaultRandomBytes,
  type RandomBytes,
  type SigningKeyPair,
  type BoxKeyPair,
} from './crypto.js';
export {
  addPrg,
  applyMasks,
  prgWords,
  seededRandomWords,
  uniformInt,
  PRG_ALGORITHMS,
  DEFAULT_PRG,
  PRG_KEY_LENGTH,
  PRG_NONCE_LENGTH,
  type PrgAlgorithm,
  type MaskTerm,
  type RandomWords,
} from './prg.js';
export {
  deriveSecAggParams,
  toleratedCounts,
  log2HypergeometricTail,
  DEFAULT_SECURITY_BITS,
  DEFAULT_CORRECTNESS_BITS,
  COMPLETE_GRAPH_MAX_COHORT,
  MAX_SHARES,
  type SecAggParams,
  type SecAggParamsRequest,
} from './params.js';
export { splitSecret, combineShares } from './shamir.js';
export { buildNeighbourGraph, sortAgents, seededShuffle, type NeighbourGraph } from './graph.js';
export {
  deriveFixedPoint,
  encodeFixedPoint,
  decodeFixedPointSum,
  checkSumRange,
  weightedMean,
  preQuantized,
  cryptoRandomWords,
  type FixedPointRequest,
  type FixedPointParams,
  type DecodedSum,
  type WeightedMean,
} from './encoding.js';
export {
  checkDpEncoding,
  deriveDpEncoding,
  dpEncodingClip,
  minHonestSurvivors,
  agentNoiseStd,
  sumNoiseStd,
  addGaussianNoise,
  cryptoGaussian,
  boxMullerGaussian,
  MIN_GRID_NOISE,
  NOISE_HEADROOM,
  type DpNoiseSpec,
  type DpNoisePlan,
  type GaussianSource,
} from './dp.js';
export {
  maskNonce,
  selfMaskKey,
  pairwiseMaskKey,
  pairwiseSign,
  seedCommitment,
  shareCommitment,
  shareStatement,
  neighbourKeysStatement,
  maskedWithStatement,
  consistencyStatement,
} from './masks.js';
export * from './messages.js';
export { SecAggAgent, type AgentOptions, type AgentPolicy, type AgentState, type Rule } from './agent.js';
export {
  SecAggServer,
  type ServerOptions,
  type ServerStage,
  type ServerStatus,
  type ServerStep,
  type AbortInfo,
  type AbortReason,
  type AggregationResult,
  type StageDropouts,
  type Misbehaviour,
} from './server.js';
export { runInProcess, type SimulationOptions, type SimulationOutcome, type TimingEvent, type DropPoint } from './simulate.js';
