// Federation with real agent processes (child_process.fork of test/fixtures/fake-agent.js, the
// agent library with a fake trainer) against an in-process coordinator, over loopback sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fakeLocalWeights } from '@fedclr/agent';
import { FileModelStore, type RoundSummary } from '@fedclr/coordinator';
import { AGENT_SCRIPT, forkProc, startTestCoordinator, tempDir, trust, withTimeout, type IpcProc } from './processes.js';

function weightedAverage(models: Float32Array[], counts: number[]): Float64Array {
  const out = new Float64Array((models[0] as Float32Array).length);
  const total = counts.reduce((a, b) => a + b, 0);
  models.forEach((m, j) => {
    for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + ((counts[j] as number) * (m[i] as number)) / total;
  });
  return out;
}

function assertClose(actual: Float32Array, expected: Float64Array, tol: number, what: string): void {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs((actual[i] as number) - (expected[i] as number)));
  assert.ok(worst <= tol, `${what}: max abs error ${worst} > ${tol}`);
}

test('3 agent processes x 2 plain rounds: each new global model is the example-weighted average of the agents\' models', async () => {
  const dir = tempDir();
  const { coordinator, weights: initial } = await startTestCoordinator({
    stateDir: join(dir, 'coordinator'),
    rounds: 2,
    minCohort: 3,
    maxCohort: 3,
    deadlineMs: 20_000,
    quorum: { fraction: 1, minCount: 3 },
  });
  const seeds = ['alpha', 'beta', 'gamma'];
  const counts = [10, 20, 70];
  const procs: IpcProc[] = seeds.map((seed, i) =>
    forkProc(AGENT_SCRIPT, {
      coordinatorUrl: coordinator.url,
      stateDir: join(dir, `agent-${i}`),
      agentId: `agent-${seed}`,
      trainer: { seed, exampleCount: counts[i], scale: 0.05, delayMs: 20 },
      ...trust(coordinator.publicKey),
    }),
  );
  try {
    const completed = await withTimeout(coordinator.finished, 30_000, 'the federation to finish');
    assert.equal(completed, 2);
    const store = new FileModelStore({ dir: join(dir, 'coordinator', 'checkpoints') });
    const r1 = await store.load(1);
    const r2 = await store.load(2);
    assert.ok(r1 !== undefined && r2 !== undefined, 'checkpoints of rounds 1 and 2');
    const locals1 = seeds.map((s) => fakeLocalWeights(initial, s, 1, 0.05));
    assertClose(r1.weights, weightedAverage(locals1, counts), 1e-6, 'round 1');
    const locals2 = seeds.map((s) => fakeLocalWeights(r1.weights, s, 2, 0.05));
    assertClose(r2.weights, weightedAverage(locals2, counts), 1e-6, 'round 2');
    assert.deepEqual(coordinator.globalModel().weights, r2.weights);
    assert.equal(coordinator.globalModel().modelVersion, r2.modelVersion);
    // The agents were told the run is complete and exited cleanly.
    for (const p of procs) {
      const exit = await p.next((m) => m['event'] === 'exit', 10_000, 'agent exit');
      assert.equal(exit['reason'], 'completed');
      assert.equal((await p.exited).code, 0);
      const sent = p.messages.filter((m) => m['event'] === 'update-sent');
      assert.deepEqual(sent.map((m) => m['roundId']), [1, 2]);
    }
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await coordinator.close();
  }
});

test('an agent process killed mid-round does not stall the round (it is dropped; the quorum completes it)', async () => {
  const dir = tempDir();
  const { coordinator } = await startTestCoordinator({
    stateDir: join(dir, 'coordinator'),
    rounds: 1,
    minCohort: 3,
    maxCohort: 3,
    deadlineMs: 30_000,
    quorum: { fraction: 0.5, minCount: 2 },
  });
  const procs = [0, 1, 2].map((i) =>
    forkProc(AGENT_SCRIPT, {
      coordinatorUrl: coordinator.url,
      stateDir: join(dir, `agent-${i}`),
      agentId: `agent-${i}`,
      trainer: { seed: i, exampleCount: 10, delayMs: i === 2 ? 20_000 : 300 },
      ...trust(coordinator.publicKey),
    }),
  );
  const victim = procs[2] as IpcProc;
  try {
    const completedP = withTimeout(new Promise<RoundSummary>((resolve) => coordinator.events.once('round-completed', resolve)), 25_000, 'round-completed');
    await victim.next((m) => m['event'] === 'round-start', 20_000, 'the victim to start training');
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    const summary = await completedP;
    assert.ok(Date.now() - killedAt < 10_000, 'the round closed long before its 30 s deadline');
    const status = Object.fromEntries(summary.participants.map((p) => [p.agentId, p.status]));
    assert.deepEqual(status, { 'agent-0': 'included', 'agent-1': 'included', 'agent-2': 'dropped' });
    assert.equal(summary.status, 'completed');
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await coordinator.close();
  }
});
