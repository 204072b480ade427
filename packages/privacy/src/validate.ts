// Argument checks shared by the public functions. Each throws InvalidArgumentError naming the
// parameter, the value received and the allowed range, so a misconfigured coordinator says what
// to fix instead of accounting NaN.
import { InvalidArgumentError } from './errors.js';

/**
 * Largest accepted RDP order. The integer series sums order + 1 terms and the fractional one at
 * least as many, so a huge order would stall the caller; optima lie far below (TF-Privacy and
 * Opacus stop at 1024 at most).
 */
export const MAX_ORDER = 10_000;

function describe(value: unknown): string {
  return typeof value === 'number' ? String(value) : `${typeof value} ${JSON.stringify(value) ?? ''}`;
}

function requireNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new InvalidArgumentError(name, `must be a number, got ${describe(value)}`);
  }
  return value;
}

/** Poisson sampling rate q: the probability that one client takes part in a round. */
export function checkSamplingRate(value: unknown, name = 'samplingRate'): number {
  const q = requireNumber(name, value);
  if (!(q >= 0 && q <= 1)) {
    throw new InvalidArgumentError(name, `must be a probability in [0, 1], got ${q}`);
  }
  return q;
}

/** Noise multiplier sigma = noise standard deviation / L2 sensitivity (the clipping norm). */
export function checkNoiseMultiplier(value: unknown, name = 'noiseMultiplier'): number {
  const sigma = requireNumber(name, value);
  if (!(sigma >= 0 && Number.isFinite(sigma))) {
    throw new InvalidArgumentError(name, `must be a finite number >= 0 (noise std / clipping norm), got ${sigma}`);
  }
  return sigma;
}

/** One Rényi order alpha, in (1, MAX_ORDER]. */
export function checkOrder(value: unknown, name = 'order'): number {
  const alpha = requireNumber(name, value);
  if (!(alpha > 1 && alpha <= MAX_ORDER)) {
    throw new InvalidArgumentError(name, `must be a Rényi order in (1, ${MAX_ORDER}], got ${alpha}`);
  }
  return alpha;
}

/** A non-empty list of orders; returns a copy. */
export function checkOrders(value: unknown, name = 'orders'): number[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidArgumentError(name, `must be a non-empty array of Rényi orders, got ${describe(value)}`);
  }
  return value.map((alpha: unknown, i) => checkOrder(alpha, `${name}[${i}]`));
}

/** Target delta of (epsilon, delta)-DP, in (0, 1). */
export function checkDelta(value: unknown, name = 'delta'): number {
  const delta = requireNumber(name, value);
  if (!(delta > 0 && delta < 1)) {
    throw new InvalidArgumentError(name, `must be in (0, 1) (typically below 1 / number of clients), got ${delta}`);
  }
  return delta;
}

/** A count of rounds or steps: a non-negative safe integer (minimum `min`). */
export function checkCount(value: unknown, name: string, min = 0): number {
  const n = requireNumber(name, value);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new InvalidArgumentError(name, `must be an integer >= ${min}, got ${n}`);
  }
  return n;
}

/** A target epsilon: finite and > 0. */
export function checkEpsilon(value: unknown, name = 'targetEpsilon'): number {
  const eps = requireNumber(name, value);
  if (!(eps > 0 && Number.isFinite(eps))) {
    throw new InvalidArgumentError(name, `must be a finite number > 0, got ${eps}`);
  }
  return eps;
}

/** An RDP value: >= 0, possibly Infinity (no privacy at that order). */
export function checkRdpValue(value: unknown, name: string): number {
  const r = requireNumber(name, value);
  if (!(r >= 0)) {
    throw new InvalidArgumentError(name, `must be an RDP value >= 0 (or Infinity), got ${r}`);
  }
  return r;
}
