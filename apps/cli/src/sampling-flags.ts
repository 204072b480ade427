// --sampling-rate Q (fedclr coordinator and fedclr simulate): Poisson self-sampling, mapped onto
// the config's sampling {mode: 'poisson', rate} (the same object --config's "sampling" sets; the
// flag overrides the file's mode and rate and keeps its invitationWaitMs).
import type { CohortSamplingConfig } from '@fedclr/coordinator';
import { UsageError } from './errors.js';

export const SAMPLING_FLAG_OPTIONS = {
  'sampling-rate': { type: 'string' },
} as const;

export const SAMPLING_FLAGS_HELP = `  --sampling-rate Q             Poisson self-sampling: every ready agent is invited each round and volunteers with
                                probability Q in (0, 1] by its own secret coin; the cohort is exactly the volunteers
                                (more than --max-cohort or fewer than --min-cohort fail the round); with DP the
                                mean divides by Q x invited. Agents refuse rounds their coin did not pick`;

/** --sampling-rate over the file's sampling block (absent: the file's stands). */
export function samplingFromFlags(values: Record<string, unknown>, file: CohortSamplingConfig | undefined): CohortSamplingConfig | undefined {
  const raw = values['sampling-rate'];
  if (raw === undefined) return file;
  const rate = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(rate) || rate <= 0 || rate > 1) {
    throw new UsageError(`--sampling-rate must be a number in (0, 1] (each agent's probability of volunteering for a round), got '${String(raw)}'`);
  }
  return { ...file, mode: 'poisson', rate };
}

/** The flags that give `sampling` to `fedclr coordinator` (fedclr simulate's pass-through). */
export function samplingFlags(sampling: CohortSamplingConfig | undefined): string[] {
  return sampling?.mode === 'poisson' && sampling.rate !== undefined ? ['--sampling-rate', String(sampling.rate)] : [];
}
