// The client-level DP flags of `fedclr coordinator` and `fedclr simulate`: --dp-noise SIGMA,
// --dp-clip C and --dp-central, mapped onto the config's training.clipNorm and training.dp (the
// same object --config's "training" sets; the flags override the file), and the privacy budget,
// --dp-delta D and --target-epsilon E, mapped onto the config's "privacy". --target-epsilon
// without --dp-noise calibrates sigma up front: the smallest noise whose planned rounds stay
// within E (@fedclr/privacy calibrateNoise).
//
// --dp-clip has no default: C bounds one agent's update and sets the noise scale (sigma C), and
// the right value depends on the model's update norms (too small clips the learning away, too
// large adds noise for nothing). --dp-noise takes it from --dp-clip or from the file's
// training.clipNorm and refuses to guess.
import type { AggregationMode } from '@fedclr/protocol';
import { DEFAULT_DP_DELTA, type DpSettings, type PrivacyBudgetConfig } from '@fedclr/coordinator';
import { calibrateNoise } from '@fedclr/privacy';
import { numberOption } from './common.js';
import { UsageError } from './errors.js';

export const DP_FLAG_OPTIONS = {
  'dp-noise': { type: 'string' },
  'dp-clip': { type: 'string' },
  'dp-central': { type: 'boolean' },
  'dp-delta': { type: 'string' },
  'target-epsilon': { type: 'string' },
} as const;

export const DP_FLAGS_HELP = `  --dp-noise SIGMA --dp-clip C client-level DP (DP-FedAvg): every update clipped to L2 norm C, the mean
                                divided by the sampled cohort size, Gaussian noise of std SIGMA C in the sum, each
                                agent adding its share under secure aggregation (sized from the signed SecAgg+
                                parameters). --dp-clip is required with --dp-noise (or training.clipNorm in --config)
  --dp-central                  the coordinator adds the noise itself (needs --aggregation plain): it sees every
                                clipped update, a weaker trust model than the agents' noise
  --dp-delta D                  epsilon is reported at this delta after every round (default ${DEFAULT_DP_DELTA})
  --target-epsilon E            the privacy budget: no round starts that would take epsilon above E. Without
                                --dp-noise, SIGMA is calibrated for --rounds (the smallest noise that fits E)
                                Epsilon counts amplification by sampling only under --sampling-rate Q (q = Q);
                                otherwise q = 1 (the coordinator picks cohorts)`;

/** What the DP flags set (absent: the file's training.clipNorm and training.dp stand). */
export interface DpFlagSettings {
  readonly clipNorm?: number;
  readonly dp?: DpSettings;
  readonly privacy?: PrivacyBudgetConfig;
  /** Set when --target-epsilon chose sigma: what the planned rounds will spend. */
  readonly calibrated?: { readonly noiseMultiplier: number; readonly epsilon: number; readonly rounds: number; readonly samplingRate: number };
}

/** The run the DP flags are for: its planned rounds (undefined: unbounded, e.g. --minutes alone). */
export interface DpPlan {
  readonly rounds: number | undefined;
  /** Poisson self-sampling's rate (--sampling-rate); default 1, the coordinator picks cohorts. */
  readonly samplingRate?: number;
}

const MAX_NOISE = 1000;

/** --dp-noise, --dp-clip, --dp-central over the file's training block, for a run aggregating with `aggregation`. */
export function dpFromFlags(
  values: Record<string, unknown>,
  file: { clipNorm?: number; dp?: DpSettings } | undefined,
  aggregation: AggregationMode,
  plan: DpPlan = { rounds: undefined },
  filePrivacy?: PrivacyBudgetConfig,
): DpFlagSettings {
  const clip = numberOption(values, 'dp-clip', undefined);
  const central = values['dp-central'] === true;
  const privacy = privacyFromFlags(values, filePrivacy);
  const calibrated = values['dp-noise'] === undefined && file?.dp === undefined && privacy.targetEpsilon !== undefined ? calibrate(privacy, plan) : undefined;
  const sigma = calibrated?.noiseMultiplier ?? numberOption(values, 'dp-noise', undefined);
  if (sigma === undefined && file?.dp === undefined) {
    if (clip !== undefined || central) throw new UsageError(`--${clip !== undefined ? 'dp-clip' : 'dp-central'} goes with --dp-noise SIGMA (or training.dp in --config)`);
    if (values['dp-delta'] !== undefined) throw new UsageError('--dp-delta goes with --dp-noise SIGMA or --target-epsilon E (there is no epsilon to report without DP)');
    if (filePrivacy !== undefined) throw new UsageError('--config: "privacy" goes with training.dp (or --dp-noise / --target-epsilon): there is no epsilon to account without DP');
    return {};
  }
  if (sigma !== undefined && sigma > MAX_NOISE) throw new UsageError(`--dp-noise must be a number in (0, ${MAX_NOISE}], got ${sigma}`);
  const clipNorm = clip ?? file?.clipNorm;
  if (clipNorm === undefined || !(clipNorm > 0)) {
    throw new UsageError('DP needs a clip norm: give --dp-clip C (or training.clipNorm > 0 in --config); C bounds each update and scales the noise, and depends on the model, so there is no default');
  }
  const dp: DpSettings = { ...file?.dp, noiseMultiplier: sigma ?? (file?.dp as DpSettings).noiseMultiplier, ...(central ? { noise: 'coordinator' } : {}) };
  const noise = dp.noise ?? 'agents';
  if (noise === 'coordinator' && aggregation !== 'plain') throw new UsageError('--dp-central (the coordinator adds the noise, seeing every clipped update) needs --aggregation plain');
  if (noise === 'agents' && aggregation === 'plain') {
    throw new UsageError("DP with --aggregation plain needs --dp-central (the coordinator adds the noise); the agents' shares of it would not protect updates the coordinator sees. Or use --aggregation secure");
  }
  return { clipNorm, dp, privacy, ...(calibrated === undefined ? {} : { calibrated }) };
}

/** --dp-delta and --target-epsilon over the file's "privacy". */
function privacyFromFlags(values: Record<string, unknown>, file: PrivacyBudgetConfig | undefined): PrivacyBudgetConfig {
  const delta = numberOption(values, 'dp-delta', file?.delta);
  if (delta !== undefined && !(delta < 0.1)) throw new UsageError(`--dp-delta must be a number in (0, 0.1) (typically below 1 / the number of agents), got ${delta}`);
  const targetEpsilon = numberOption(values, 'target-epsilon', file?.targetEpsilon);
  return { ...(delta === undefined ? {} : { delta }), ...(targetEpsilon === undefined ? {} : { targetEpsilon }) };
}

/** Sigma for --target-epsilon over the planned rounds, at the run's sampling rate (q = 1 when the coordinator picks cohorts). */
function calibrate(privacy: PrivacyBudgetConfig, plan: DpPlan): NonNullable<DpFlagSettings['calibrated']> {
  const targetEpsilon = privacy.targetEpsilon as number;
  if (plan.rounds === undefined) {
    throw new UsageError('--target-epsilon without --dp-noise calibrates the noise for the planned rounds: give --rounds R (or --dp-noise SIGMA, and the run stops at its budget)');
  }
  const delta = privacy.delta ?? DEFAULT_DP_DELTA;
  try {
    const samplingRate = plan.samplingRate ?? 1;
    const c = calibrateNoise({ targetEpsilon, delta, rounds: plan.rounds, samplingRate, maxNoiseMultiplier: MAX_NOISE });
    return { noiseMultiplier: c.noiseMultiplier, epsilon: c.epsilon, rounds: plan.rounds, samplingRate };
  } catch (err) {
    throw new UsageError(`--target-epsilon ${targetEpsilon} over ${plan.rounds} rounds at delta ${delta}: ${(err as Error).message}`);
  }
}

/** The flags that give `settings` to `fedclr coordinator` (fedclr simulate's pass-through). */
export function dpFlags(settings: DpFlagSettings): string[] {
  if (settings.dp === undefined || settings.clipNorm === undefined) return [];
  const { delta, targetEpsilon } = settings.privacy ?? {};
  return [
    '--dp-noise',
    String(settings.dp.noiseMultiplier),
    '--dp-clip',
    String(settings.clipNorm),
    ...(settings.dp.noise === 'coordinator' ? ['--dp-central'] : []),
    ...(delta === undefined ? [] : ['--dp-delta', String(delta)]),
    ...(targetEpsilon === undefined ? [] : ['--target-epsilon', String(targetEpsilon)]),
  ];
}
