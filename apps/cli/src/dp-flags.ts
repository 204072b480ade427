// The client-level DP flags of `fedclr coordinator` and `fedclr simulate`: --dp-noise SIGMA,
// --dp-clip C and --dp-central, mapped onto the config's training.clipNorm and training.dp (the
// same object --config's "training" sets; the flags override the file).
//
// --dp-clip has no default: C bounds one agent's update and sets the noise scale (sigma C), and
// the right value depends on the model's update norms (too small clips the learning away, too
// large adds noise for nothing). --dp-noise takes it from --dp-clip or from the file's
// training.clipNorm and refuses to guess.
import type { AggregationMode } from '@fedclr/protocol';
import type { DpSettings } from '@fedclr/coordinator';
import { numberOption } from './common.js';
import { UsageError } from './errors.js';

export const DP_FLAG_OPTIONS = {
  'dp-noise': { type: 'string' },
  'dp-clip': { type: 'string' },
  'dp-central': { type: 'boolean' },
} as const;

export const DP_FLAGS_HELP = `  --dp-noise SIGMA --dp-clip C client-level DP (DP-FedAvg): every update clipped to L2 norm C, the mean
                                divided by the sampled cohort size, Gaussian noise of std SIGMA C in the sum, each
                                agent adding its share under secure aggregation (sized from the signed SecAgg+
                                parameters). --dp-clip is required with --dp-noise (or training.clipNorm in --config)
  --dp-central                  the coordinator adds the noise itself (needs --aggregation plain): it sees every
                                clipped update, a weaker trust model than the agents' noise`;

/** What the DP flags set (absent: the file's training.clipNorm and training.dp stand). */
export interface DpFlagSettings {
  readonly clipNorm?: number;
  readonly dp?: DpSettings;
}

const MAX_NOISE = 1000;

/** --dp-noise, --dp-clip, --dp-central over the file's training block, for a run aggregating with `aggregation`. */
export function dpFromFlags(values: Record<string, unknown>, file: { clipNorm?: number; dp?: DpSettings } | undefined, aggregation: AggregationMode): DpFlagSettings {
  const sigma = numberOption(values, 'dp-noise', undefined);
  const clip = numberOption(values, 'dp-clip', undefined);
  const central = values['dp-central'] === true;
  if (sigma === undefined && file?.dp === undefined) {
    if (clip !== undefined || central) throw new UsageError(`--${clip !== undefined ? 'dp-clip' : 'dp-central'} goes with --dp-noise SIGMA (or training.dp in --config)`);
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
  return { clipNorm, dp };
}

/** The flags that give `settings` to `fedclr coordinator` (fedclr simulate's pass-through). */
export function dpFlags(settings: DpFlagSettings): string[] {
  if (settings.dp === undefined || settings.clipNorm === undefined) return [];
  return ['--dp-noise', String(settings.dp.noiseMultiplier), '--dp-clip', String(settings.clipNorm), ...(settings.dp.noise === 'coordinator' ? ['--dp-central'] : [])];
}
