// Rényi DP of the sampled Gaussian mechanism (SGM): each client is included with probability q
// (Poisson sampling), the sum of clipped updates gets N(0, (sigma * clip)^2) noise.
// Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism"
// (arXiv:1908.10530), Section 3.3: RDP(alpha) = log(A_alpha) / (alpha - 1), with
//   A_alpha = E_{z ~ mu0} [((1 - q) + q mu1(z) / mu0(z))^alpha],  mu0 = N(0, s^2), mu1 = N(1, s^2).
// The series are those of TF-Privacy's rdp_accountant.py (`_compute_log_a_int`,
// `_compute_log_a_frac`, `_compute_rdp`) and Opacus's accountants/analysis/rdp.py, in log space.
import { NumericalError } from './errors.js';
import { logAdd, logErfc, logSub } from './logmath.js';
import { checkCount, checkNoiseMultiplier, checkOrder, checkOrders, checkSamplingRate } from './validate.js';

/**
 * The fractional series stops once a term is below e^-30 (A_alpha >= 1, so that is 1e-13
 * relative), as in TF-Privacy and Opacus, but only past i > alpha: see `logAFrac`.
 */
const LOG_TERM_CUTOFF = -30;
/** Guard against a series that never reaches the cutoff (it does in far fewer terms). */
const MAX_SERIES_TERMS = 1_000_000;
/** Above this the sampled and the plain Gaussian's RDP agree to 1e-15 (relative). */
const HUGE_RDP = 1e200;

/** log(A_alpha) for integer alpha: a finite binomial sum, 0 < q < 1. */
export function logAInt(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoVar = 2 * sigma * sigma;
  let logBinom = 0; // log C(alpha, i), updated term by term
  let logA = -Infinity;
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log((alpha - i + 1) / i);
    const logCoef = logBinom + i * logQ + (alpha - i) * log1mQ;
    logA = logAdd(logA, logCoef + (i * i - i) / twoVar);
  }
  return logA;
}

/**
 * log(A_alpha) for fractional alpha, 0 < q < 1: the integral split at z0, where mu1/mu0 crosses
 * (1 - q)/q, each half a binomial series with erfc weights; the generalized binomial
 * coefficients alternate in sign once i > alpha, hence the log-space subtraction.
 *
 * Deliberate difference from TF-Privacy and Opacus: they stop at the first term below e^-30,
 * but for i <= alpha the terms are binomial-like and first rise (peak near i = q alpha), so when
 * both first terms, (1-q)^alpha and ~q^alpha, are tiny they stop at i = 0 and return a negative
 * RDP (e.g. q = 0.5, sigma = 100, order 256.1: -0.683). Past i > alpha the terms decay.
 */
export function logAFrac(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoVar = 2 * sigma * sigma;
  const sqrt2Sigma = Math.SQRT2 * sigma;
  const z0 = sigma * sigma * (log1mQ - logQ) + 0.5; // sigma^2 log(1/q - 1) + 1/2
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  let logBinom = 0; // log |C(alpha, i)|
  let positive = true; // sign of C(alpha, i)
  for (let i = 0; i < MAX_SERIES_TERMS; i++) {
    if (i > 0) {
      const factor = (alpha - i + 1) / i;
      logBinom += Math.log(Math.abs(factor));
      if (factor < 0) positive = !positive;
    }
    const j = alpha - i;
    const logT0 = logBinom + i * logQ + j * log1mQ;
    const logT1 = logBinom + j * logQ + i * log1mQ;
    const logE0 = -Math.LN2 + logErfc((i - z0) / sqrt2Sigma);
    const logE1 = -Math.LN2 + logErfc((z0 - j) / sqrt2Sigma);
    const logS0 = logT0 + (i * i - i) / twoVar + logE0;
    const logS1 = logT1 + (j * j - j) / twoVar + logE1;
    if (Number.isNaN(logS0) || Number.isNaN(logS1)) {
      throw new NumericalError(`term ${i} of the series for order ${alpha} (q=${q}, sigma=${sigma}) is NaN`);
    }
    if (positive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (i > alpha && Math.max(logS0, logS1) < LOG_TERM_CUTOFF) return logAdd(logA0, logA1);
  }
  throw new NumericalError(`the series for order ${alpha} (q=${q}, sigma=${sigma}) did not converge`);
}

/**
 * RDP of one round of the sampled Gaussian mechanism at order alpha (unchecked inputs).
 * q = 0: nobody is sampled, 0. sigma = 0: no noise, Infinity. q = 1: the plain Gaussian
 * mechanism, alpha / (2 sigma^2) exactly. alpha / (2 sigma^2) > 1e200 (sigma below ~1e-100):
 * that bound itself, which the series equals to double precision there and would overflow on
 * a little further down.
 */
export function sampledGaussianRdp(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  const gaussian = alpha / (2 * sigma * sigma); // Infinity when sigma = 0 (or sigma^2 underflows)
  if (q === 1 || gaussian > HUGE_RDP) return gaussian;
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  const rdp = logA / (alpha - 1);
  if (Number.isNaN(rdp)) {
    throw new NumericalError(`RDP at order ${alpha} (q=${q}, sigma=${sigma}) is NaN`);
  }
  // 0 <= RDP <= alpha / (2 sigma^2): subsampling never hurts (Rényi divergence is jointly
  // quasi-convex). Clamping only removes rounding, e.g. -1e-17 where RDP is ~0 (large sigma,
  // tiny q), and keeps the bound valid and the conversion's input domain clean.
  return Math.min(Math.max(0, rdp), gaussian);
}

/** Arguments of `computeRdp`. */
export interface RdpRequest {
  /** Poisson sampling rate of clients per round, in [0, 1]. */
  samplingRate: number;
  /** Noise std / L2 sensitivity (the clipping norm of one client's update), >= 0. */
  noiseMultiplier: number;
  /** Rényi orders, each in (1, MAX_ORDER]. */
  orders: readonly number[];
  /** Number of rounds composed; RDP adds up over rounds, so this multiplies. Default 1. */
  steps?: number;
}

/**
 * RDP of `steps` rounds of the sampled Gaussian mechanism at each order: `steps` times the
 * one-round RDP (RDP composes additively, Mironov 2017, Proposition 1). Like TF-Privacy's and
 * Opacus's `compute_rdp(q, noise_multiplier, steps, orders)`.
 */
export function computeRdp(request: RdpRequest): number[] {
  const q = checkSamplingRate(request.samplingRate);
  const sigma = checkNoiseMultiplier(request.noiseMultiplier);
  const orders = checkOrders(request.orders);
  const steps = checkCount(request.steps ?? 1, 'steps');
  // 0 * Infinity would be NaN: zero rounds spend nothing even without noise.
  if (steps === 0) return orders.map(() => 0);
  return orders.map((alpha) => steps * sampledGaussianRdp(q, sigma, alpha));
}

/** One-round RDP at a single order, with checked inputs. */
export function rdpAtOrder(samplingRate: number, noiseMultiplier: number, order: number): number {
  return sampledGaussianRdp(checkSamplingRate(samplingRate), checkNoiseMultiplier(noiseMultiplier), checkOrder(order));
}
