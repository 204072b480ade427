// The chaos harness's seeded fault plan: which agent drops at which secure-aggregation stage of
// which round, which agents are slow or stragglers, and when the coordinator is killed. Pure: the
// same seed gives the same plan in every process (the agent hosts and the orchestrator agree
// without talking).

/** Where an agent leaves a round: before sending that secagg stage's message, or mid-upload. */
export const DROP_POINTS = ['advertise', 'share-keys', 'share-check', 'masked-input', 'upload-cut', 'consistency', 'unmask-response'] as const;
export type DropPoint = (typeof DROP_POINTS)[number];

/** When the coordinator is SIGKILLed: mid-unmask, mid-checkpoint-write, or at a random moment of a round. */
export const KILL_KINDS = ['unmask', 'checkpoint', 'random'] as const;
export type KillKind = (typeof KILL_KINDS)[number];

export interface KillPlan {
  /** Armed once this many rounds have completed. */
  readonly afterCompleted: number;
  readonly kind: KillKind;
  /** For 'random': the delay after the round started, as a fraction of `randomWindowMs`. */
  readonly at: number;
}

/** FNV-1a of a string, as a uint32. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A uniform number in [0, 1) determined by the seed and the labels. */
export function unit(seed: number, ...labels: (string | number)[]): number {
  let a = fnv1a(`fedclr-chaos\0${seed}\0${labels.join('\0')}`);
  // one mulberry32 step: spreads FNV's low-entropy high bits
  a = (a + 0x6d2b79f5) >>> 0;
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** The stage at which `agentId` leaves round `roundId`, or undefined if it stays (probability 1 - fraction). */
export function dropPoint(seed: number, agentId: string, roundId: number, fraction: number): DropPoint | undefined {
  if (unit(seed, 'drop', agentId, roundId) >= fraction) return undefined;
  const i = Math.floor(unit(seed, 'drop-stage', agentId, roundId) * DROP_POINTS.length);
  return DROP_POINTS[Math.min(i, DROP_POINTS.length - 1)];
}

/** Whether agent `index` belongs to a fixed fraction of the fleet (slow links, stragglers). */
export function inFraction(seed: number, what: string, agentId: string, fraction: number): boolean {
  return unit(seed, what, agentId) < fraction;
}

/** `kills` coordinator kills spread evenly over `rounds` rounds, kinds cycling unmask, checkpoint, random. */
export function killPlan(seed: number, kills: number, rounds: number): KillPlan[] {
  const plan: KillPlan[] = [];
  for (let i = 0; i < kills; i++) {
    const afterCompleted = Math.min(rounds - 1, Math.floor(((i + 1) * rounds) / (kills + 1)));
    plan.push({ afterCompleted: Math.max(0, afterCompleted), kind: KILL_KINDS[i % KILL_KINDS.length] as KillKind, at: unit(seed, 'kill', i) });
  }
  return plan;
}
