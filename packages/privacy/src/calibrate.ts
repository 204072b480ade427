// Noise calibration: the smallest noise multiplier whose planned rounds stay within a budget.
// Epsilon decreases as sigma grows, so a bisection on sigma finds it; unlike Opacus's
// `get_noise_multiplier` (which stops once epsilon is within 0.01 of the target) this stops on a
// relative tolerance in sigma, and always returns a sigma that meets the target.
import { InvalidArgumentError, NumericalError, TargetUnreachableError } from './errors.js';
import { epsilonFromRdp, type Conversion } from './conversion.js';
import { DEFAULT_ORDERS } from './orders.js';
import { sampledGaussianRdp } from './rdp.js';
import { checkCount, checkDelta, checkEpsilon, checkNoiseMultiplier, checkOrders, checkSamplingRate } from './validate.js';

export const DEFAULT_CALIBRATION_TOLERANCE = 1e-4;
/** Largest noise multiplier tried by default (Opacus's MAX_SIGMA). */
export const DEFAULT_MAX_NOISE_MULTIPLIER = 1e6;
/** Bisection steps allowed; relative tolerance 1e-12 from [0, 1e6] needs under 90. */
const MAX_BISECTIONS = 200;

export interface CalibrationRequest {
  /** Budget: epsilon after all planned rounds, > 0. */
  targetEpsilon: number;
  /** Delta of the budget, in (0, 1). */
  delta: number;
  /** Planned rounds, >= 1. */
  rounds: number;
  /** Poisson sampling rate of clients per round, in [0, 1]. */
  samplingRate: number;
  /** Default DEFAULT_ORDERS. */
  orders?: readonly number[];
  /** Relative tolerance on sigma, in (0, 1): sigma * (1 - tolerance) exceeds the budget. Default 1e-4. */
  tolerance?: number;
  /** Give up (TARGET_UNREACHABLE) above this sigma. Default 1e6. */
  maxNoiseMultiplier?: number;
  conversion?: Conversion;
}

export interface Calibration {
  /** The noise multiplier: meets the budget; (1 - tolerance) times it does not. */
  noiseMultiplier: number;
  /** Epsilon after `rounds` rounds at that noise (<= targetEpsilon). */
  epsilon: number;
  /** The order attaining it. */
  order: number;
}

function checkTolerance(value: unknown): number {
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw new InvalidArgumentError('tolerance', `must be a relative tolerance in (0, 1), got ${String(value)}`);
  }
  return value;
}

/** Smallest noise multiplier (to `tolerance`) with epsilon <= targetEpsilon after `rounds` rounds. */
export function calibrateNoise(request: CalibrationRequest): Calibration {
  const target = checkEpsilon(request.targetEpsilon);
  const delta = checkDelta(request.delta);
  const rounds = checkCount(request.rounds, 'rounds', 1);
  const q = checkSamplingRate(request.samplingRate);
  const orders = checkOrders(request.orders ?? DEFAULT_ORDERS);
  const tolerance = checkTolerance(request.tolerance ?? DEFAULT_CALIBRATION_TOLERANCE);
  const maxSigma = checkNoiseMultiplier(request.maxNoiseMultiplier ?? DEFAULT_MAX_NOISE_MULTIPLIER, 'maxNoiseMultiplier');
  const spent = (sigma: number) =>
    epsilonFromRdp(orders, orders.map((alpha) => rounds * sampledGaussianRdp(q, sigma, alpha)), delta, request.conversion);

  // Nobody is ever sampled: no noise is needed.
  if (q === 0) return { noiseMultiplier: 0, ...spent(0) };
  // Bracket: eps(lo) > target >= eps(hi); sigma = 0 (no noise) has infinite epsilon.
  let lo = 0;
  let hi = Math.min(1, maxSigma);
  let best = spent(hi);
  while (best.epsilon > target) {
    if (hi >= maxSigma) {
      throw new TargetUnreachableError(
        `epsilon ${target} at delta ${delta} over ${rounds} rounds at sampling rate ${q}`,
        `even noise multiplier ${maxSigma} gives epsilon ${best.epsilon}; plan fewer rounds, sample fewer clients, or raise maxNoiseMultiplier`,
      );
    }
    lo = hi;
    hi = Math.min(2 * hi, maxSigma);
    best = spent(hi);
  }
  for (let i = 0; hi - lo > tolerance * hi; i++) {
    if (i === MAX_BISECTIONS) throw new NumericalError(`noise calibration did not converge in ${MAX_BISECTIONS} steps`);
    const mid = (lo + hi) / 2;
    const atMid = spent(mid);
    if (atMid.epsilon > target) lo = mid;
    else [hi, best] = [mid, atMid];
  }
  return { noiseMultiplier: hi, ...best };
}
