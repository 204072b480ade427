// What a simulation records of each round and each evaluation (the report's rounds and evaluations).
import type { CoordinatorIpcMessage } from '../federation.js';

export interface RoundRecord {
  /** Completed rounds after this one. */
  round: number;
  roundId: number;
  cohort: number;
  participants: number;
  /** Cohort members left out of the aggregate, with the coordinator's reason (e.g. proven misbehaviour). */
  excluded: { agentId: string; status: string; reason: string | null }[];
  /** Mean of the included agents' local losses, weighted by their example counts. */
  loss: number | null;
  /** The learning rate the coordinator sent for this round (--lr-schedule). */
  learningRate: number | null;
  /** Images trained on in this round, summed over the included agents (null in DP rounds: no count is summed). */
  examples: number | null;
  /** DP rounds: the noise standard deviation the round's sum carried per coordinate (else null). */
  dpNoiseStd: number | null;
  /** DP rounds: epsilon spent after this round (RDP accountant, at dpDelta), else null. */
  dpEpsilon: number | null;
  dpDelta: number | null;
  /** gapMs + roundMs: since the previous round ended. */
  wallMs: number;
  /** Between the previous round's end and this round's start (scheduling, agents getting ready). */
  gapMs: number;
  /** From round start to committed (broadcast, training, uploads, aggregation, checkpoint). */
  roundMs: number;
  /** Of roundMs, after the last update arrived: aggregation, server update, checkpoint files. */
  commitMs: number;
  /**
   * With training slots: how long at least one agent's training loop ran during the round (the
   * union of the loops' intervals). Without: the longest training loop of an included agent
   * (the round's critical path).
   */
  trainMs: number | null;
  /** The longest local training loop of an included agent. */
  agentTrainMs: number | null;
  /** The longest wait of an included agent for its training slot (null without slots). */
  slotWaitMs: number | null;
  /** The longest engine set-up/tear-down of an included agent. */
  setupMs: number | null;
  /** wallMs - trainMs. */
  nonTrainingMs: number | null;
  /** nonTrainingMs / wallMs. */
  nonTrainingShare: number | null;
  meanDeltaNorm: number | null;
  elapsedMs: number;
  eval?: EvalRecord;
  /** --eval-data: the coordinator's own score of this round's checkpoint on that folder (it arrives after the round). */
  coordinatorEval?: { linearProbe: number; knn: number; evalMs: number | null };
}

export interface EvalRecord {
  afterRound: number;
  linearProbe: number;
  knn: number;
  evalMs: number;
}

export function maxMetric(summary: Extract<CoordinatorIpcMessage, { type: 'round-completed' }>['summary'], name: string): number | null {
  let best: number | null = null;
  for (const p of summary.participants) {
    const v = p.status === 'included' ? p.metrics?.[name] : undefined;
    if (v !== undefined && (best === null || v > best)) best = v;
  }
  return best;
}

export const round4 = (v: number | null): number | null => (v === null ? null : Math.round(v * 1e4) / 1e4);


/** The times of one round as the simulation measured them (see RoundRecord). */
export interface RoundTimes {
  readonly wallMs: number;
  readonly gapMs: number;
  readonly roundMs: number;
  readonly trainMs: number | null;
  readonly agentTrainMs: number | null;
  readonly elapsedMs: number;
}

/** The record of a completed round: the coordinator's summary and the simulation's times. */
export function roundRecord(m: Extract<CoordinatorIpcMessage, { type: 'round-completed' }>, t: RoundTimes): RoundRecord {
  const s = m.summary;
  return {
    round: m.completedRounds,
    roundId: s.roundId,
    cohort: s.cohort.length,
    participants: s.metrics['included'] ?? 0,
    excluded: s.participants.filter((p) => p.status !== 'included').map((p) => ({ agentId: p.agentId, status: p.status, reason: p.reason ?? null })),
    loss: round4(s.metrics['loss'] ?? null),
    learningRate: s.metrics['learningRate'] ?? null,
    // A DP round's totalWeight is its fixed denominator (the cohort), not an example count.
    examples: s.metrics['dpDenominator'] === undefined ? (s.totalWeight ?? 0) : null,
    dpNoiseStd: s.metrics['dpNoiseStd'] ?? null,
    dpEpsilon: s.metrics['dpEpsilon'] === undefined ? null : Math.round(s.metrics['dpEpsilon'] * 1e4) / 1e4,
    dpDelta: s.metrics['dpDelta'] ?? null,
    wallMs: t.wallMs,
    gapMs: t.gapMs,
    roundMs: t.roundMs,
    commitMs: Math.max(0, m.at - s.endedAt),
    trainMs: t.trainMs,
    agentTrainMs: t.agentTrainMs,
    slotWaitMs: maxMetric(s, 'slotWaitMs'),
    setupMs: maxMetric(s, 'setupMs'),
    nonTrainingMs: t.trainMs === null ? null : Math.max(0, t.wallMs - t.trainMs),
    nonTrainingShare: t.trainMs === null || t.wallMs === 0 ? null : round4(Math.max(0, t.wallMs - t.trainMs) / t.wallMs),
    meanDeltaNorm: round4(s.metrics['meanDeltaNorm'] ?? null),
    elapsedMs: t.elapsedMs,
  };
}
