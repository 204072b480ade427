// Parts of the simulation's report computed from what it recorded: how far the model moved,
// where the rounds' time went, and the privacy budget spent.
import { DEFAULT_DP_DELTA } from '@fedclr/coordinator';
import type { DpFlagSettings } from '../dp-flags.js';
import { round4, type RoundRecord } from './records.js';

/** Whether the weights moved at all, and ||final - init|| / ||init|| (null for an all-zero init), rounded to 4 decimals. */
export function modelChange(init: Float32Array, final: Float32Array): { moved: boolean; relativeChange: number | null } {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < init.length; i++) {
    const d = (final[i] as number) - (init[i] as number);
    diff += d * d;
    norm += (init[i] as number) ** 2;
  }
  return { moved: diff > 0, relativeChange: norm > 0 ? round4(Math.sqrt(diff / norm)) : null };
}

export interface SlotStats {
  readonly capacity: number;
  readonly granted: number;
  readonly maxHeld: number;
  readonly freedOnExit: number;
}

/** The report's timing section: totals, the training share of the rounds' wall time, and what trainMs means. */
export function timingSummary(rounds: readonly RoundRecord[], t: { totalMs: number; federationMs: number; finalEvalMs: number; slots: SlotStats | undefined }) {
  const shares = rounds.map((r) => r.nonTrainingShare).filter((v): v is number => v !== null);
  const totalWall = rounds.reduce((s, r) => s + r.wallMs, 0);
  const totalTrain = rounds.reduce((s, r) => s + (r.trainMs ?? 0), 0);
  return {
    totalMs: t.totalMs,
    federationMs: t.federationMs,
    roundsWallMs: totalWall,
    trainingShare: totalWall > 0 ? round4(totalTrain / totalWall) : null,
    meanNonTrainingShare: shares.length > 0 ? round4(shares.reduce((a, b) => a + b, 0) / shares.length) : null,
    finalEvalMs: t.finalEvalMs,
    timeSplit:
      t.slots !== undefined
        ? `trainMs = the time during the round when at least one agent's training loop ran (agents train ${t.slots.capacity} at a time at most; the union of the loops' intervals [release - loop time, release], reported at each slot release); agentTrainMs = the longest loop of an included agent; nonTrainingMs = wallMs - trainMs (model broadcast, agents' engine set-up, upload, aggregation, checkpoint, scheduling gap)`
        : "trainMs = the longest local training loop among the included agents (all train at once); nonTrainingMs = wallMs - trainMs (model broadcast, agents' engine set-up, upload, aggregation, checkpoint, scheduling gap)",
    slots: t.slots ?? null,
  };
}

/** The report's privacy section (null without DP): the last committed round's epsilon, and the budget. */
export function privacySummary(rounds: readonly RoundRecord[], dp: DpFlagSettings, samplingRate: number) {
  if (dp.dp === undefined) return null;
  const last = rounds[rounds.length - 1];
  return {
    epsilon: last?.dpEpsilon ?? 0,
    delta: last?.dpDelta ?? dp.privacy?.delta ?? DEFAULT_DP_DELTA,
    targetEpsilon: dp.privacy?.targetEpsilon ?? null,
    noiseMultiplier: dp.dp.noiseMultiplier,
    clipNorm: dp.clipNorm ?? null,
    samplingRate,
    accounting:
      samplingRate < 1
        ? `RDP of the sampled Gaussian mechanism (Poisson self-sampling, q = ${samplingRate}) per committed round at the configured noise multiplier, composed over rounds, converted to (epsilon, delta) (Balle et al. 2020); amplification holds against observers of the published models, not against the coordinator, which learns each cohort`
        : 'RDP of the Gaussian mechanism per committed round at the configured noise multiplier, composed over rounds, converted to (epsilon, delta) (Balle et al. 2020); no amplification by sampling (q = 1: the coordinator picks cohorts)',
  };
}
