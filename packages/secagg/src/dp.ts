// Client-level differential privacy on the secure-aggregation grid: DP-FedAvg (McMahan et al.
// 2018) with the Gaussian noise split among the agents (distributed DP, as TFF's DistributedDp).
//
// Each agent clips its delta to L2 norm C and adds N(0, sigma^2 C^2 / n_min) to every
// coordinate, in float64, before encodeFixedPoint's stochastic rounding (SR). n_min = n - D - C_
// (cohort size, tolerated dropouts, tolerated corrupt agents), derived from the signed SecAgg+
// parameters. Agents refuse to reveal shares for fewer than n - D survivors (rule
// survivor-floor), so any sum the coordinator can unmask holds at least n_min honest noises:
// variance >= sigma^2 C^2, whatever corrupt agents add (they may add none). With s survivors, all
// honest, it is (s / n_min) sigma^2 C^2 (sumNoiseStd, what a round records).
//
// The grid. SR to the grid 1/s leaves the decoded sum within m/s of sum_i (z_i + n_i) per
// coordinate (encoding.ts). Its randomness depends on the fractional part of v = s (z + n) =
// a + N(0, tau^2), a = s z, tau = sigma C s / sqrt(n_min). By Poisson summation the density of
// frac(v) is 1 + 2 sum_{k>=1} exp(-2 pi^2 k^2 tau^2) cos(2 pi k (x - a)): it is uniform to within
// 2 sum_{k>=1} exp(-2 pi^2 k^2 tau^2) in total variation, whatever a is. We require tau >= 4
// (MIN_GRID_NOISE), where that bound is below 1e-130, and refuse coarser grids. That is all we
// claim: the rounding's dependence on the data is negligible. (C cancels out of tau: the scale s
// is the largest that cannot wrap for a clip proportional to C.)
//
// Room. The encoding also clips each coordinate to [-c, c]; that must not cut the noise. An
// L2-clipped delta has |z_i| <= C, and cryptoGaussian's draws never exceed sqrt(2 ln 2^53) < 8.6
// standard deviations (53-bit uniforms), so c = C + 9 noise std (dpEncodingClip) never touches an
// honest agent's noisy value.
import { cryptoRandomWords, deriveFixedPoint, type FixedPointParams } from './encoding.js';
import { ConfigError, DpGridTooCoarseError, ParamsMismatchError } from './errors.js';
import type { SecAggParams } from './params.js';
import type { RandomWords } from './prg.js';

/** What a DP round promises: the noise multiplier sigma and the clip norm C. */
export interface DpNoiseSpec {
  /** sigma: the standard deviation of the summed noise, in units of the clip norm. */
  readonly noiseMultiplier: number;
  /** C: the L2 norm bound of one agent's delta. */
  readonly clipNorm: number;
}

/** The noise one agent adds, as derived from the signed session parameters. */
export interface DpNoisePlan {
  /** n_min = n - D - C_: honest survivors of any sum that can be unmasked. */
  readonly minHonest: number;
  /** Standard deviation of one agent's noise per coordinate: sigma C / sqrt(n_min). */
  readonly agentStd: number;
  /** tau: that standard deviation in grid steps (agentStd * scale). */
  readonly gridNoise: number;
}

/** Smallest tau (one agent's noise std in grid steps) a DP round may have. */
export const MIN_GRID_NOISE = 4;
/** The encoding's per-coordinate clip leaves this many noise standard deviations above C. */
export const NOISE_HEADROOM = 9;
/** Relative slack on C for the float32 rounding of an L2-clipped delta. */
const CLIP_SLACK = 2 ** -20;

type CohortBounds = Pick<SecAggParams, 'cohortSize' | 'maxDropouts' | 'maxCorrupt'>;

function checkSpec(spec: DpNoiseSpec): void {
  const { noiseMultiplier: sigma, clipNorm: c } = spec;
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || sigma <= 0) throw new ConfigError('dp.noiseMultiplier', `must be a finite number > 0, got ${String(sigma)}`);
  if (typeof c !== 'number' || !Number.isFinite(c) || c <= 0) throw new ConfigError('dp.clipNorm', `must be a finite number > 0, got ${String(c)}`);
}

/** n_min = n - D - C_: the honest agents left in any sum the survivor floor lets through. */
export function minHonestSurvivors(bounds: CohortBounds): number {
  const nMin = bounds.cohortSize - bounds.maxDropouts - bounds.maxCorrupt;
  if (!(nMin >= 1)) {
    throw new ConfigError('dp', `a cohort of ${bounds.cohortSize} tolerating ${bounds.maxDropouts} dropouts and ${bounds.maxCorrupt} corrupt agents leaves no honest survivor to add noise`);
  }
  return nMin;
}

/** One agent's noise standard deviation per coordinate: sigma C / sqrt(n_min). */
export function agentNoiseStd(spec: DpNoiseSpec, minHonest: number): number {
  return (spec.noiseMultiplier * spec.clipNorm) / Math.sqrt(minHonest);
}

/** The noise standard deviation of an unmasked sum of `survivors` honest inputs: sqrt(survivors / n_min) sigma C. */
export function sumNoiseStd(spec: DpNoiseSpec, survivors: number, minHonest: number): number {
  return Math.sqrt(survivors / minHonest) * spec.noiseMultiplier * spec.clipNorm;
}

/** The per-coordinate encoding clip of a DP round: C + NOISE_HEADROOM noise standard deviations. */
export function dpEncodingClip(spec: DpNoiseSpec, minHonest: number): number {
  return spec.clipNorm * (1 + CLIP_SLACK) + NOISE_HEADROOM * agentNoiseStd(spec, minHonest);
}

/**
 * Checks that a session's encoding can carry the DP noise (an agent runs it on the signed
 * config): unweighted, unit weight, room for the noise, a fine enough grid. Throws
 * PARAMS_MISMATCH or DP_GRID_TOO_COARSE; returns the noise to add.
 */
export function checkDpEncoding(spec: DpNoiseSpec, encoding: FixedPointParams, bounds: CohortBounds): DpNoisePlan {
  checkSpec(spec);
  // Example-count weighting would scale each agent's noise (and influence) by w / W.
  if (encoding.weighted) throw new ParamsMismatchError('config.encoding.weighted', 'true', 'false in a DP round (no example-count weighting)');
  if (encoding.maxWeight !== 1) throw new ParamsMismatchError('config.encoding.maxWeight', String(encoding.maxWeight), '1 in a DP round (each agent counts once)');
  const minHonest = minHonestSurvivors(bounds);
  const needed = dpEncodingClip(spec, minHonest);
  if (encoding.clip < needed) {
    throw new ParamsMismatchError('config.encoding.clip', String(encoding.clip), `>= ${needed} in a DP round (clipNorm plus ${NOISE_HEADROOM} noise standard deviations, so the clip never cuts the noise)`);
  }
  const agentStd = agentNoiseStd(spec, minHonest);
  const gridNoise = agentStd * encoding.scale;
  if (!(gridNoise >= MIN_GRID_NOISE)) {
    throw new DpGridTooCoarseError(gridNoise.toPrecision(4), String(spec.noiseMultiplier), String(spec.clipNorm), String(encoding.scale), String(minHonest));
  }
  return { minHonest, agentStd, gridNoise };
}

/** The encoding of a DP round (coordinator side): unweighted, unit weight, dpEncodingClip; checked like an agent checks it. */
export function deriveDpEncoding(spec: DpNoiseSpec, dimension: number, bounds: CohortBounds): FixedPointParams {
  checkSpec(spec);
  const clip = dpEncodingClip(spec, minHonestSurvivors(bounds));
  const encoding = deriveFixedPoint({ dimension, clip, cohortSize: bounds.cohortSize, maxWeight: 1, weighted: false });
  checkDpEncoding(spec, encoding, bounds);
  return encoding;
}

/** A Gaussian source: fills `out` with independent N(0, 1) draws. */
export type GaussianSource = (out: Float64Array) => void;

/**
 * Box-Muller on `random`'s words: u1 = (k + 1) / 2^53 in (0, 1] (never log 0), u2 = k' / 2^53
 * in [0, 1), each from 53 random bits, exact in float64; |draw| <= sqrt(2 ln 2^53) < 8.6.
 */
export function boxMullerGaussian(random: RandomWords): GaussianSource {
  return (out) => {
    const words = new Uint32Array(4 * Math.ceil(out.length / 2));
    random(words);
    for (let i = 0, w = 0; i < out.length; i += 2, w += 4) {
      const u1 = ((words[w] as number) * 2 ** 21 + ((words[w + 1] as number) >>> 11) + 1) / 2 ** 53;
      const u2 = ((words[w + 2] as number) * 2 ** 21 + ((words[w + 3] as number) >>> 11)) / 2 ** 53;
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
  };
}

/** N(0, 1) draws from the OS CSPRNG (node:crypto): the production noise source. */
export const cryptoGaussian: GaussianSource = boxMullerGaussian(cryptoRandomWords);

/** values + N(0, std^2) per coordinate, in float64 (added before any rounding). */
export function addGaussianNoise(values: ArrayLike<number>, std: number, gaussian: GaussianSource = cryptoGaussian): Float64Array {
  const noisy = new Float64Array(values.length);
  gaussian(noisy);
  for (let i = 0; i < noisy.length; i++) noisy[i] = (values[i] as number) + std * (noisy[i] as number);
  return noisy;
}
