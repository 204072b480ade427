// Fixed-point encoding of an update into Z_{2^32}, with the example weight as an extra masked
// coordinate so weighted averaging needs no plaintext count.
//
// Layout: words[0..d-1] hold the values, words[d] holds the weight.
//   value  z_i = clip(x_i, -c, c) * (weighted ? w / W : 1)  (|z_i| <= c), q_i = SR(z_i * s),
//          stored as two's complement mod 2^32.
//   weight w in [0, W], q_d = SR(w * s_w), unsigned.
// SR is stochastic rounding: floor(v) + 1 with probability frac(v) (drawn as a uint32 from the
// given RandomWords, so the probability is ceil(frac 2^32)/2^32: bias < 2^-32), so E[q] = v*s
// and |q - v*s| < 1.
// No wrap, provably: s and s_w are powers of two chosen so that n ceil(c s) <= 2^31 - 1 and
// n ceil(W s_w) <= 2^32 - 1. Any m <= n encoded vectors then sum (as integers) inside
// [-(2^31-1), 2^31-1] for values and [0, 2^32-1] for the weight, so the sum mod 2^32 decodes
// exactly as int32 / uint32. Powers of two make z*s and q/s exact in float64.
// Quantisation bound: the decoded sum of m vectors differs from the sum of the z_i (computed in
// float64) by less than m/s per coordinate, and the decoded weight from sum w by less than m/s_w.
// DP rounds encode x = clipped delta + Gaussian noise (added in float64 before SR, unweighted):
// dp.ts bounds how little SR's rounding can depend on the data then.
import { ConfigError, EncodingInputError, NoWrapError } from './errors.js';
import { randomFillSync } from 'node:crypto';
import type { RandomWords } from './prg.js';

const INT32_LIMIT = 0x7fffffff;
const UINT32_LIMIT = 0xffffffff;

export interface FixedPointRequest {
  /** Number of model parameters d. */
  readonly dimension: number;
  /** Clip bound c > 0: each coordinate is clipped to [-c, c]. */
  readonly clip: number;
  /** Largest number of vectors ever summed (the cohort size n). */
  readonly cohortSize: number;
  /** Largest weight (e.g. example count) W > 0. Default 1. */
  readonly maxWeight?: number;
  /** Pre-multiply values by w/W so the sum is a weighted sum. Default true. */
  readonly weighted?: boolean;
  /** Explicit value scale (a power of two); checked against no-wrap. Default: the largest safe. */
  readonly scale?: number;
  /** Explicit weight scale (a power of two); checked against no-wrap. Default: the largest safe. */
  readonly weightScale?: number;
  /** Required bound on the per-coordinate error of the decoded value sum; checked. */
  readonly maxSumError?: number;
}

// A type alias so it can travel inside the signed session config.
export type FixedPointParams = {
  readonly dimension: number;
  readonly clip: number;
  readonly cohortSize: number;
  readonly maxWeight: number;
  readonly weighted: boolean;
  readonly scale: number;
  readonly weightScale: number;
  /** Number of uint32 words per encoded vector: dimension + 1. */
  readonly length: number;
  /** ceil(c s): largest |word| of one value coordinate (as int32). */
  readonly maxValueWord: number;
  /** ceil(W s_w): largest weight word. */
  readonly maxWeightWord: number;
  /** n/s: bound on the per-coordinate error of a decoded cohort value sum. */
  readonly sumErrorBound: number;
  /** n/s_w: bound on the error of a decoded cohort weight sum. */
  readonly weightErrorBound: number;
};

function isPowerOfTwo(x: number): boolean {
  if (!(x > 0) || !Number.isFinite(x)) return false;
  const e = Math.round(Math.log2(x));
  return 2 ** e === x;
}

/** Largest power of two s with n * ceil(bound * s) <= limit, or undefined. */
function largestSafeScale(n: number, bound: number, limit: number): number | undefined {
  if (n > limit) return undefined;
  let e = Math.floor(Math.log2(limit / (n * bound)));
  // log2 is inexact near powers of two: settle e by direct checks.
  while (n * Math.ceil(bound * 2 ** e) > limit) e--;
  while (n * Math.ceil(bound * 2 ** (e + 1)) <= limit) e++;
  return 2 ** e;
}

function positive(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(name, `must be a finite number > 0, got ${String(value)}`);
  }
}

/** Derives and checks the fixed-point parameters. Throws ENCODING_NO_WRAP when impossible. */
export function deriveFixedPoint(request: FixedPointRequest): FixedPointParams {
  const { dimension, clip, cohortSize: n } = request;
  if (!Number.isInteger(dimension) || dimension < 1 || dimension > 2 ** 28) {
    throw new ConfigError('dimension', `must be an integer in [1, 2^28], got ${String(dimension)}`);
  }
  positive('clip', clip);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError('cohortSize', `must be an integer >= 1, got ${String(n)}`);
  const maxWeight = request.maxWeight ?? 1;
  positive('maxWeight', maxWeight);
  const weighted = request.weighted ?? true;

  let scale: number;
  if (request.scale !== undefined) {
    if (!isPowerOfTwo(request.scale)) throw new ConfigError('scale', `must be a power of two, got ${request.scale}`);
    scale = request.scale;
    if (n * Math.ceil(clip * scale) > INT32_LIMIT) {
      const safe = largestSafeScale(n, clip, INT32_LIMIT);
      throw new NoWrapError(
        `scale ${scale} lets ${n} values of magnitude ${clip} reach ${n * Math.ceil(clip * scale)} > 2^31-1; ` +
          (safe === undefined ? 'the cohort is too large for a 32-bit modulus' : `use scale <= ${safe}, a smaller clip or a smaller cohort`),
      );
    }
  } else {
    const safe = largestSafeScale(n, clip, INT32_LIMIT);
    if (safe === undefined) throw new NoWrapError(`a cohort of ${n} exceeds 2^31-1 summands`);
    scale = safe;
  }

  let weightScale: number;
  if (request.weightScale !== undefined) {
    if (!isPowerOfTwo(request.weightScale)) {
      throw new ConfigError('weightScale', `must be a power of two, got ${request.weightScale}`);
    }
    weightScale = request.weightScale;
    if (n * Math.ceil(maxWeight * weightScale) > UINT32_LIMIT) {
      throw new NoWrapError(
        `weightScale ${weightScale} lets ${n} weights of ${maxWeight} reach ${n * Math.ceil(maxWeight * weightScale)} > 2^32-1; lower weightScale or maxWeight`,
      );
    }
  } else {
    const safe = largestSafeScale(n, maxWeight, UINT32_LIMIT);
    if (safe === undefined) throw new NoWrapError(`a cohort of ${n} exceeds 2^32-1 summands`);
    weightScale = safe;
  }

  const sumErrorBound = n / scale;
  if (request.maxSumError !== undefined) {
    positive('maxSumError', request.maxSumError);
    if (sumErrorBound > request.maxSumError) {
      throw new NoWrapError(
        `an error bound of ${request.maxSumError} needs scale >= ${n / request.maxSumError}, but scale ${scale} is the largest that cannot wrap ` +
          `for clip ${clip} and ${n} agents (bound ${sumErrorBound}); lower clip, the cohort size, or accept a larger error`,
      );
    }
  }
  return {
    dimension,
    clip,
    cohortSize: n,
    maxWeight,
    weighted,
    scale,
    weightScale,
    length: dimension + 1,
    maxValueWord: Math.ceil(clip * scale),
    maxWeightWord: Math.ceil(maxWeight * weightScale),
    sumErrorBound,
    weightErrorBound: n / weightScale,
  };
}

/** RandomWords from node:crypto's CSPRNG: the production choice for stochastic rounding. */
export const cryptoRandomWords: RandomWords = (out) => {
  randomFillSync(out);
};

const CHUNK = 1 << 14;
const TWO_POW_32 = 0x100000000;

/** The values z_i that `encodeFixedPoint` rounds (clipped, weighted), for checks and tests. */
export function preQuantized(values: ArrayLike<number>, weight: number, params: FixedPointParams): Float64Array {
  const factor = params.weighted ? weight / params.maxWeight : 1;
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i] as number;
    out[i] = (x > params.clip ? params.clip : x < -params.clip ? -params.clip : x) * factor;
  }
  return out;
}

/**
 * Encodes one agent's update and weight (length `params.length`). `random` drives stochastic
 * rounding: pass a CSPRNG-backed source in production, a seeded one for reproducible tests.
 */
export function encodeFixedPoint(
  values: ArrayLike<number>,
  weight: number,
  params: FixedPointParams,
  random: RandomWords,
): Uint32Array {
  if (values.length !== params.dimension) {
    throw new EncodingInputError('values', `expected ${params.dimension} values, got ${values.length}`);
  }
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > params.maxWeight) {
    throw new EncodingInputError('weight', `must be in [0, ${params.maxWeight}], got ${String(weight)}`);
  }
  const { clip, scale } = params;
  const factor = params.weighted ? weight / params.maxWeight : 1;
  const out = new Uint32Array(params.length);
  const coins = new Uint32Array(Math.min(CHUNK, params.length));
  let used = coins.length;
  const coin = (): number => {
    if (used === coins.length) {
      random(coins);
      used = 0;
    }
    return coins[used++] as number;
  };
  for (let i = 0; i < params.dimension; i++) {
    const x = values[i] as number;
    // A NaN or infinite coordinate means a diverged update; clipping would hide it.
    if (!Number.isFinite(x)) throw new EncodingInputError('values', `coordinate ${i} is ${x}`);
    const v = (x > clip ? clip : x < -clip ? -clip : x) * factor * scale;
    const floor = Math.floor(v);
    const q = coin() < (v - floor) * TWO_POW_32 ? floor + 1 : floor;
    out[i] = q >>> 0;
  }
  const vw = weight * params.weightScale;
  const fw = Math.floor(vw);
  out[params.dimension] = (coin() < (vw - fw) * TWO_POW_32 ? fw + 1 : fw) >>> 0;
  return out;
}

export interface DecodedSum {
  /** Sum over the m vectors of z_i, decoded. */
  readonly values: Float64Array;
  /** Sum of the weights, decoded. */
  readonly weight: number;
  /** Number of vectors summed (m). */
  readonly count: number;
  /** |values[i] - exact sum of z_i| < valueErrorBound = m/s. */
  readonly valueErrorBound: number;
  /** |weight - exact sum of w| < weightErrorBound = m/s_w. */
  readonly weightErrorBound: number;
}

/** Decodes a sum of `count` encoded vectors (count <= cohortSize guarantees no wrap). */
export function decodeFixedPointSum(sum: Uint32Array, params: FixedPointParams, count: number): DecodedSum {
  if (sum.length !== params.length) {
    throw new EncodingInputError('sum', `expected ${params.length} words, got ${sum.length}`);
  }
  if (!Number.isInteger(count) || count < 0 || count > params.cohortSize) {
    throw new EncodingInputError('count', `must be an integer in [0, ${params.cohortSize}] to rule out wrap, got ${count}`);
  }
  const values = new Float64Array(params.dimension);
  for (let i = 0; i < params.dimension; i++) values[i] = ((sum[i] as number) | 0) / params.scale;
  return {
    values,
    weight: (sum[params.dimension] as number) / params.weightScale,
    count,
    valueErrorBound: count / params.scale,
    weightErrorBound: count / params.weightScale,
  };
}

export interface WeightedMean {
  readonly mean: Float64Array;
  /** Per-coordinate bound on |mean - exact weighted mean of the clipped values|. */
  readonly errorBound: number;
}

/**
 * Weighted mean sum(w x)/sum(w) from a decoded sum (unweighted mode: sum(x)/sum(w), so pass
 * w = 1 per agent for a plain mean). Bound: with S, W the decoded sums and eS, eW their bounds,
 * |S'/W' - S/W| <= (eS W + |S| eW) / (W (W - eW)), maximised over coordinates.
 */
export function weightedMean(decoded: DecodedSum, params: FixedPointParams): WeightedMean {
  const multiplier = params.weighted ? params.maxWeight : 1;
  const W = decoded.weight;
  if (!(W > decoded.weightErrorBound)) {
    throw new EncodingInputError('weight sum', `${W} is not above its error bound ${decoded.weightErrorBound}`);
  }
  const mean = new Float64Array(decoded.values.length);
  let maxAbs = 0;
  for (let i = 0; i < mean.length; i++) {
    const s = (decoded.values[i] as number) * multiplier;
    mean[i] = s / W;
    maxAbs = Math.max(maxAbs, Math.abs(s));
  }
  const eS = decoded.valueErrorBound * multiplier;
  const errorBound = (eS * W + maxAbs * decoded.weightErrorBound) / (W * (W - decoded.weightErrorBound));
  return { mean, errorBound };
}

/**
 * Range check of an unmasked sum of `count` inputs before anyone uses it: each honest input has
 * |value word| <= maxValueWord and weight word <= maxWeightWord, so the sum must stay within
 * count times those (a corrupt agent can mask arbitrary words, and masking cannot stop it).
 * Returns why the sum is out of range, or undefined when it is in range.
 */
export function checkSumRange(sum: Uint32Array, params: FixedPointParams, count: number): string | undefined {
  if (sum.length !== params.length) return `the sum has ${sum.length} words, expected ${params.length}`;
  const valueBound = count * params.maxValueWord;
  for (let i = 0; i < params.dimension; i++) {
    const v = (sum[i] as number) | 0;
    if (v > valueBound || v < -valueBound) {
      return `coordinate ${i} of the sum is ${v / params.scale}, outside the ${count} x clip ${params.clip} = ${valueBound / params.scale} that ${count} clipped inputs can reach`;
    }
  }
  const weight = sum[params.dimension] as number;
  const weightBound = count * params.maxWeightWord;
  if (weight > weightBound) {
    return `the total weight ${weight / params.weightScale} is above ${count} x maxWeight ${params.maxWeight}`;
  }
  if (weight === 0) return `the total weight of ${count} inputs is 0: there is nothing to average`;
  return undefined;
}
