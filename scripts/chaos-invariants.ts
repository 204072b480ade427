// The chaos harness's invariants, checked after every run over what the run left behind (the
// coordinator's SQLite rows, its checkpoints, and what the orchestrator observed). Pure: every
// checker takes plain data and returns {name, held, detail}, so each can be shown to fail on a
// deliberately broken run (test/chaos-invariants.test.ts).
import { computeModelHash, type Manifest } from '@fedclr/protocol';
import { expectedFedAvg, type AgentSpec } from './chaos-model.js';

/** The fields of a coordinator round row the checks read (StateDb RoundRow). */
export interface RoundFacts {
  readonly id: number;
  readonly status: string;
  readonly baseModelVersion: string;
  readonly modelVersion: string | null;
  readonly completedRounds: number | null;
  readonly reason: string | null;
  readonly checkpoint: string | null;
  readonly metrics: Readonly<Record<string, number>>;
  /** Agents whose update is in the round's aggregate (participants with status 'included'). */
  readonly included: readonly string[];
}

/** A checkpoint as read from disk, or why it could not be read. */
export type CheckpointFacts = { readonly modelVersion: string; readonly weights: Float32Array } | { readonly error: string };

export interface RunFacts {
  readonly targetRounds: number;
  readonly manifest: Manifest;
  readonly initialWeights: Float32Array;
  readonly rounds: readonly RoundFacts[];
  /** Checkpoints on disk by round id (all of them: keepLastK covers the run). */
  readonly checkpoints: ReadonlyMap<number, CheckpointFacts>;
  readonly agents: ReadonlyMap<string, AgentSpec>;
  readonly scale: number;
  readonly maxWeight: number;
  readonly clip: number;
  /** Per round: agents that were seen to send their masked input (an included agent must be one). */
  readonly uploaded?: ReadonlyMap<number, ReadonlySet<string>>;
  /** Coordinator restarts (ms, orchestrator clock) and each agent's welcomes (same clock). */
  readonly restarts: readonly number[];
  readonly welcomes: ReadonlyMap<string, readonly number[]>;
  readonly endedAt: number;
  readonly peakRssBytes: number;
  readonly maxRssBytes: number;
}

export interface InvariantResult {
  readonly name: string;
  readonly held: boolean;
  readonly detail: string;
}

const MAX_DETAILS = 5;

function result(name: string, problems: string[], ok: string): InvariantResult {
  const shown = problems.slice(0, MAX_DETAILS).join('; ');
  return { name, held: problems.length === 0, detail: problems.length === 0 ? ok : `${shown}${problems.length > MAX_DETAILS ? `; ... ${problems.length - MAX_DETAILS} more` : ''}` };
}

function completedInOrder(f: RunFacts): RoundFacts[] {
  return f.rounds.filter((r) => r.status === 'completed').sort((a, b) => a.id - b.id);
}

/** Every completed round's checkpoint reads back and hashes to the model version its row records. */
export function checkpointsIntact(f: RunFacts): InvariantResult {
  const problems: string[] = [];
  for (const r of completedInOrder(f)) {
    const cp = f.checkpoints.get(r.id);
    if (cp === undefined) problems.push(`round ${r.id}: no checkpoint on disk`);
    else if ('error' in cp) problems.push(`round ${r.id}: checkpoint unreadable: ${cp.error}`);
    else {
      const hash = computeModelHash({ manifest: f.manifest, data: cp.weights });
      if (hash !== r.modelVersion) problems.push(`round ${r.id}: weights hash to ${hash.slice(0, 12)}, the row says ${String(r.modelVersion).slice(0, 12)}`);
      if (cp.modelVersion !== r.modelVersion) problems.push(`round ${r.id}: checkpoint.json says ${cp.modelVersion.slice(0, 12)}, the row ${String(r.modelVersion).slice(0, 12)}`);
    }
  }
  return result('checkpoints-intact', problems, `${completedInOrder(f).length} checkpoints hash to their rows' model versions`);
}

/**
 * Every completed round's model equals base + FedAvg of exactly its included agents' seeded
 * updates, within the round's fixed-point bound (secaggQuantisationBound) plus float32 rounding.
 */
export function checkpointsEqualAggregates(f: RunFacts): { result: InvariantResult; maxError: number } {
  const problems: string[] = [];
  let base = f.initialWeights;
  let maxError = 0;
  for (const r of completedInOrder(f)) {
    const cp = f.checkpoints.get(r.id);
    if (cp === undefined || 'error' in cp) {
      problems.push(`round ${r.id}: no readable checkpoint to compare`);
      continue;
    }
    const specs: AgentSpec[] = [];
    for (const id of r.included) {
      const spec = f.agents.get(id);
      if (spec === undefined) problems.push(`round ${r.id}: included agent ${id} is not one of the harness's agents`);
      else specs.push(spec);
      const up = f.uploaded?.get(r.id);
      if (up !== undefined && !up.has(id)) problems.push(`round ${r.id}: ${id} is counted in the aggregate but never sent its masked input`);
    }
    if (specs.length === 0) problems.push(`round ${r.id}: completed with no included agent`);
    const expected = expectedFedAvg(base, specs, r.id, f.scale, f.maxWeight, f.clip);
    const bound = (r.metrics['secaggQuantisationBound'] ?? 0) * 1.01 + 1e-6;
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs((cp.weights[i] as number) - (expected[i] as number)));
    maxError = Math.max(maxError, worst);
    if (!(worst <= bound)) problems.push(`round ${r.id}: the checkpoint differs from the survivors' aggregate by ${worst.toExponential(2)} > bound ${bound.toExponential(2)} (${specs.length} included)`);
    base = cp.weights;
  }
  return { result: result('checkpoint-equals-survivors-aggregate', problems, `max |checkpoint - recomputed| = ${maxError.toExponential(2)}, within each round's bound`), maxError };
}

/**
 * No round is committed twice or half: completed rows number 1..k once each in id order, each
 * builds on the previous one's model, has its checkpoint, and no checkpoint lacks a committed row;
 * no round is left 'running'.
 */
export function noDoubleOrHalfCommit(f: RunFacts): InvariantResult {
  const problems: string[] = [];
  const done = completedInOrder(f);
  let version = computeModelHash({ manifest: f.manifest, data: f.initialWeights });
  done.forEach((r, i) => {
    if (r.completedRounds !== i + 1) problems.push(`round ${r.id}: completedRounds ${r.completedRounds}, expected ${i + 1} (counted twice or skipped)`);
    if (r.baseModelVersion !== version) problems.push(`round ${r.id}: trained from ${r.baseModelVersion.slice(0, 12)}, not the previous committed model ${version.slice(0, 12)}`);
    if (r.checkpoint === null || r.modelVersion === null) problems.push(`round ${r.id}: completed without checkpoint or model version (half commit)`);
    version = r.modelVersion ?? version;
  });
  const versions = new Set(done.map((r) => r.modelVersion));
  if (versions.size !== done.length) problems.push('two completed rounds share one model version');
  const committed = new Set(done.map((r) => r.id));
  for (const id of f.checkpoints.keys()) if (!committed.has(id)) problems.push(`checkpoint of round ${id} on disk without a committed row (half commit)`);
  for (const r of f.rounds) if (r.status === 'running') problems.push(`round ${r.id} left 'running'`);
  return result('no-double-or-half-commit', problems, `${done.length} commits, one per round, each on its predecessor`);
}

/** A round that did not complete left no model and no checkpoint, recorded why, and the next round reused its base. */
export function failedRoundsLeftModelUnchanged(f: RunFacts): InvariantResult {
  const problems: string[] = [];
  const sorted = [...f.rounds].sort((a, b) => a.id - b.id);
  let failed = 0;
  sorted.forEach((r, i) => {
    if (r.status === 'completed') return;
    failed++;
    if (r.reason === null || r.reason.trim() === '') problems.push(`round ${r.id} (${r.status}) has no reason recorded`);
    if (r.modelVersion !== null || r.checkpoint !== null) problems.push(`round ${r.id} (${r.status}) recorded a model or checkpoint`);
    if (f.checkpoints.has(r.id)) problems.push(`round ${r.id} (${r.status}) has a checkpoint on disk`);
    const next = sorted.slice(i + 1).find((n) => n.status === 'completed');
    if (next !== undefined && next.baseModelVersion !== r.baseModelVersion) problems.push(`round ${r.id} (${r.status}) changed the model: the next completed round ${next.id} trained from another base`);
  });
  return result('failed-rounds-left-model-unchanged', problems, `${failed} rounds failed or were interrupted, each with its reason, none changed the model`);
}

export function allRoundsFinished(f: RunFacts): InvariantResult {
  const n = completedInOrder(f).length;
  return result('all-rounds-finished', n === f.targetRounds ? [] : [`${n} of ${f.targetRounds} rounds completed`], `${n} of ${f.targetRounds} rounds completed`);
}

export function memoryBounded(f: RunFacts): InvariantResult {
  const mib = (b: number): string => `${Math.round(b / 2 ** 20)} MiB`;
  return result('coordinator-memory-bounded', f.peakRssBytes < f.maxRssBytes ? [] : [`peak RSS ${mib(f.peakRssBytes)} >= ${mib(f.maxRssBytes)}`], `peak RSS ${mib(f.peakRssBytes)} < ${mib(f.maxRssBytes)}`);
}

/** After each coordinator restart, every agent was welcomed again before the next restart (or the end). */
export function agentsRejoined(f: RunFacts): InvariantResult {
  const problems: string[] = [];
  const times = [...f.restarts].sort((a, b) => a - b);
  times.forEach((t, i) => {
    const until = times[i + 1] ?? f.endedAt;
    const missing = [...f.agents.keys()].filter((id) => !(f.welcomes.get(id) ?? []).some((w) => w >= t && w <= until));
    if (missing.length > 0) problems.push(`restart ${i + 1}: ${missing.length} agents never rejoined (${missing.slice(0, 3).join(', ')})`);
  });
  return result('agents-rejoined-after-restarts', problems, `all ${f.agents.size} agents rejoined after each of ${times.length} restarts`);
}

export function checkInvariants(f: RunFacts): { invariants: InvariantResult[]; maxAggregateError: number } {
  const agg = checkpointsEqualAggregates(f);
  const invariants = [checkpointsIntact(f), agg.result, noDoubleOrHalfCommit(f), failedRoundsLeftModelUnchanged(f), allRoundsFinished(f), memoryBounded(f), agentsRejoined(f)];
  return { invariants, maxAggregateError: agg.maxError };
}
