// The learning-rate schedule across rounds, decided by the coordinator: every round's config
// carries one learning rate, which agents train with for the whole round. 'constant' sends
// training.learningRate every round; 'cosine' decays it like centralised training does over a
// run (without the warm-up: one round is already many local steps), from the full rate to
// finalFraction of it:
//
//   lr(p) = lr · (f + (1 − f) · ½(1 + cos(π·p)))
//
// where p ∈ [0, 1] is the run's progress at the round's expected midpoint: the further of
//   rounds:  (completedRounds + ½) / rounds
//   time:    (elapsed + ½ · the last completed round's duration) / budget   (when the run has a
//            time budget; the first round, with no duration yet, uses its start)
// Pure functions: no clock, no state.

export const LR_SCHEDULES = ['constant', 'cosine'] as const;
export type LrScheduleName = (typeof LR_SCHEDULES)[number];

/** A resolved schedule. */
export type LrSchedule = { readonly kind: 'constant' } | { readonly kind: 'cosine'; readonly finalFraction: number };

/** Cosine's last rate as a fraction of the base rate (agents need a rate > 0, so it is never 0). */
export const DEFAULT_FINAL_FRACTION = 0.05;

export const CONSTANT_SCHEDULE: LrSchedule = Object.freeze({ kind: 'constant' });

/** The run's time budget, epoch ms: progress by time is (now - startsAt) / (endsAt - startsAt). */
export interface TimeBudget {
  readonly startsAt: number;
  readonly endsAt: number;
}

const clamp01 = (v: number): number => (v > 1 ? 1 : v > 0 ? v : 0);

/** The schedule's multiplier of the base rate at progress p (clamped to [0, 1]). */
export function lrFactor(schedule: LrSchedule, progress: number): number {
  if (schedule.kind === 'constant') return 1;
  const f = schedule.finalFraction;
  return f + (1 - f) * 0.5 * (1 + Math.cos(Math.PI * clamp01(progress)));
}

/** The learning rate a round gets: exactly `base` under 'constant'. */
export function scheduledLearningRate(base: number, schedule: LrSchedule, progress: number): number {
  return schedule.kind === 'constant' ? base : base * lrFactor(schedule, progress);
}

export interface RunProgressInput {
  /** Completed rounds before this one. */
  readonly completedRounds: number;
  /** The run's target rounds (> 0). */
  readonly rounds: number;
  /** When the round starts (epoch ms; only used with a budget). */
  readonly now: number;
  readonly budget?: TimeBudget | undefined;
  /** Expected duration of this round (the last completed round's), ms; 0 or absent: unknown. */
  readonly expectedRoundMs?: number | undefined;
}

/** The run's progress in [0, 1] at the expected midpoint of a round starting now (see the top). */
export function runProgress(input: RunProgressInput): number {
  const { completedRounds, rounds, now, budget } = input;
  let p = rounds > 0 ? (completedRounds + 0.5) / rounds : 1;
  if (budget !== undefined) {
    const total = budget.endsAt - budget.startsAt;
    const half = 0.5 * Math.max(0, input.expectedRoundMs ?? 0);
    p = Math.max(p, total > 0 ? (now - budget.startsAt + half) / total : 1);
  }
  return clamp01(p);
}
