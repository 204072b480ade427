// The chaos harness's invariant checkers (scripts/chaos-invariants.ts) on a synthetic run: they
// hold on a correct one and each catches its own kind of breakage (a corrupt checkpoint, a
// checkpoint that is not its survivors' aggregate, a double or half commit, a failed round
// without its reason, an agent that never rejoined, memory over the bound, missing rounds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeModelHash } from '@fedclr/protocol';
import { checkInvariants, type CheckpointFacts, type RoundFacts, type RunFacts } from '@fedclr/scripts/dist/chaos-invariants.js';
import { chaosModel, expectedFedAvg, type AgentSpec } from '@fedclr/scripts/dist/chaos-model.js';

const model = chaosModel(60);
const agents: AgentSpec[] = [
  { id: 'a', seed: 1, exampleCount: 30 },
  { id: 'b', seed: 2, exampleCount: 70 },
  { id: 'c', seed: 3, exampleCount: 110 },
];
const SCALE = 0.001;
const version = (w: Float32Array): string => computeModelHash({ manifest: model.manifest, data: w });
const aggregate = (base: Float32Array, ids: string[], roundId: number): Float32Array =>
  Float32Array.from(expectedFedAvg(base, agents.filter((a) => ids.includes(a.id)), roundId, SCALE, 10_000, 0.1));

/** Round 1 completes with a, b; round 2 is interrupted by a kill; round 3 completes with a, c. */
function goodRun(): { facts: RunFacts; rounds: RoundFacts[]; checkpoints: Map<number, CheckpointFacts> } {
  const v0 = version(model.weights);
  const w1 = aggregate(model.weights, ['a', 'b'], 1);
  const w3 = aggregate(w1, ['a', 'c'], 3);
  const rounds: RoundFacts[] = [
    { id: 1, status: 'completed', baseModelVersion: v0, modelVersion: version(w1), completedRounds: 1, reason: null, checkpoint: 'round-00000001', metrics: { secaggQuantisationBound: 1e-7 }, included: ['a', 'b'] },
    { id: 2, status: 'interrupted', baseModelVersion: version(w1), modelVersion: null, completedRounds: null, reason: 'coordinator stopped during the round', checkpoint: null, metrics: {}, included: [] },
    { id: 3, status: 'completed', baseModelVersion: version(w1), modelVersion: version(w3), completedRounds: 2, reason: null, checkpoint: 'round-00000003', metrics: { secaggQuantisationBound: 1e-7 }, included: ['a', 'c'] },
  ];
  const checkpoints = new Map<number, CheckpointFacts>([
    [1, { modelVersion: version(w1), weights: w1 }],
    [3, { modelVersion: version(w3), weights: w3 }],
  ]);
  const facts: RunFacts = {
    targetRounds: 2,
    manifest: model.manifest,
    initialWeights: model.weights,
    rounds,
    checkpoints,
    agents: new Map(agents.map((a) => [a.id, a])),
    scale: SCALE,
    maxWeight: 10_000,
    clip: 0.1,
    uploaded: new Map([
      [1, new Set(['a', 'b', 'c'])],
      [3, new Set(['a', 'c'])],
    ]),
    restarts: [1000],
    welcomes: new Map([
      ['a', [10, 1100]],
      ['b', [10, 1200]],
      ['c', [10, 1300]],
    ]),
    endedAt: 5000,
    peakRssBytes: 200 * 2 ** 20,
    maxRssBytes: 1024 * 2 ** 20,
  };
  return { facts, rounds, checkpoints };
}

function failing(facts: RunFacts): string[] {
  return checkInvariants(facts).invariants.filter((i) => !i.held).map((i) => i.name);
}

test('every invariant holds on a correct run (a kill mid-round, two commits)', () => {
  const { invariants, maxAggregateError } = checkInvariants(goodRun().facts);
  assert.deepEqual(invariants.filter((i) => !i.held), []);
  assert.ok(maxAggregateError < 1e-6);
});

test('a checkpoint whose weights were altered fails checkpoints-intact (hash) and the aggregate check', () => {
  const { facts, checkpoints } = goodRun();
  const cp = checkpoints.get(3) as { modelVersion: string; weights: Float32Array };
  const bad = cp.weights.slice();
  bad[7] = (bad[7] as number) + 0.01;
  checkpoints.set(3, { modelVersion: cp.modelVersion, weights: bad });
  assert.deepEqual(failing(facts), ['checkpoints-intact', 'checkpoint-equals-survivors-aggregate']);
});

test('a self-consistent checkpoint of the wrong survivors (an extra agent) fails only the aggregate check', () => {
  const { facts, rounds, checkpoints } = goodRun();
  const w1 = (checkpoints.get(1) as { weights: Float32Array }).weights;
  const wrong = aggregate(w1, ['a', 'b', 'c'], 3); // b dropped out of round 3 but is summed anyway
  checkpoints.set(3, { modelVersion: version(wrong), weights: wrong });
  rounds[2] = { ...(rounds[2] as RoundFacts), modelVersion: version(wrong) };
  assert.deepEqual(failing({ ...facts, rounds }), ['checkpoint-equals-survivors-aggregate']);
  // and an included agent the harness never saw upload is caught too
  const { facts: f2, rounds: r2 } = goodRun();
  r2[0] = { ...(r2[0] as RoundFacts), included: ['a', 'b', 'c'] };
  assert.ok(failing({ ...f2, rounds: r2 }).includes('checkpoint-equals-survivors-aggregate'));
});

test('a round committed twice fails no-double-or-half-commit', () => {
  const { facts, rounds } = goodRun();
  const again = { ...(rounds[0] as RoundFacts), id: 4 };
  assert.ok(failing({ ...facts, rounds: [...rounds, again], targetRounds: 3 }).includes('no-double-or-half-commit'));
});

test('a half commit (checkpoint of a round that did not commit, or a round left running) fails', () => {
  const { facts, checkpoints } = goodRun();
  checkpoints.set(2, checkpoints.get(1) as CheckpointFacts);
  assert.deepEqual(failing(facts), ['no-double-or-half-commit', 'failed-rounds-left-model-unchanged']);
  const { facts: f2, rounds } = goodRun();
  rounds[1] = { ...(rounds[1] as RoundFacts), status: 'running' };
  assert.ok(failing({ ...f2, rounds }).includes('no-double-or-half-commit'));
});

test('a failed round without its reason, or one after which the model changed, fails', () => {
  const { facts, rounds } = goodRun();
  rounds[1] = { ...(rounds[1] as RoundFacts), reason: '' };
  assert.deepEqual(failing({ ...facts, rounds }), ['failed-rounds-left-model-unchanged']);
  const { facts: f2, rounds: r2 } = goodRun();
  r2[1] = { ...(r2[1] as RoundFacts), baseModelVersion: 'f'.repeat(64) };
  assert.deepEqual(failing({ ...f2, rounds: r2 }), ['failed-rounds-left-model-unchanged']);
});

test('missing rounds, memory over the bound and an agent that never rejoined each fail their invariant', () => {
  const { facts } = goodRun();
  assert.deepEqual(failing({ ...facts, targetRounds: 3 }), ['all-rounds-finished']);
  assert.deepEqual(failing({ ...facts, peakRssBytes: 2 ** 31 }), ['coordinator-memory-bounded']);
  assert.deepEqual(failing({ ...facts, welcomes: new Map([['a', [10, 1100]], ['b', [10]], ['c', [10, 1300]]]) }), ['agents-rejoined-after-restarts']);
});
