// @fedclr/privacy: Rényi DP accounting of the sampled Gaussian mechanism, pure and dependency-free
// apart from the error catalog. See README.md.
export * from './errors.js';
export { MAX_ORDER } from './validate.js';
export { logAdd, logSub, logErfc } from './logmath.js';
export { computeRdp, rdpAtOrder, sampledGaussianRdp, type RdpRequest } from './rdp.js';
export {
  epsilonFromRdp,
  balleEpsilon,
  mironovEpsilon,
  CONVERSIONS,
  type Conversion,
  type PrivacySpent,
} from './conversion.js';
export { DEFAULT_ORDERS } from './orders.js';
export { RdpAccountant, ACCOUNTANT_STATE_VERSION, type RdpAccountantState } from './accountant.js';
export {
  calibrateNoise,
  DEFAULT_CALIBRATION_TOLERANCE,
  DEFAULT_MAX_NOISE_MULTIPLIER,
  type CalibrationRequest,
  type Calibration,
} from './calibrate.js';
