// Secure aggregation end to end: a real coordinator and real agents (fake trainer) on loopback
// sockets. The new global model must equal the plain-mode result to within the quantisation
// bound the round reports; dropouts at the share and masked-input stages are survived; too many
// dropouts abort the round cleanly (model unchanged, reason in SQLite and GET /api/rounds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createFakeTrainer, fakeLocalWeights, startAgent, type AgentHandle } from '@fedclr/agent';
import type { CoordinatorHandle } from '../src/coordinator.js';
import type { RoundSummary } from '../src/engine.js';
import { startTestCoordinator, tamperingConnector, tempDir, trust, waitFor } from './harness.js';

const SEEDS = ['s0', 's1', 's2', 's3', 's4'];
const COUNTS = [10, 20, 30, 40, 100];
const SCALE = 0.05;

interface Federation {
  readonly coordinator: CoordinatorHandle;
  readonly initial: Float32Array;
  readonly agents: AgentHandle[];
  close(): Promise<void>;
}

/**
 * 5 agents. `victims` disconnect when the coordinator's secagg message of that stage arrives;
 * a stage prefixed 'silent:' keeps the victim connected but swallows its own message of that stage.
 */
async function federation(
  dir: string,
  { victims = new Map(), retryDelayMs = 100, stageTimeoutMs = 3000, aggregationDeadlineMs = 5000 }: { victims?: ReadonlyMap<number, string>; retryDelayMs?: number; stageTimeoutMs?: number; aggregationDeadlineMs?: number } = {},
): Promise<Federation> {
  const { coordinator, weights } = await startTestCoordinator({
    stateDir: join(dir, 'coordinator'),
    aggregation: 'secure',
    secagg: { dropoutFraction: 0.2, corruptFraction: 0, stageTimeoutMs, clip: 0.1, maxWeight: 1000 },
    rounds: 1,
    minCohort: 5,
    maxCohort: 5,
    deadlineMs: 20_000,
    aggregationDeadlineMs,
    quorum: { fraction: 0.5, minCount: 3 },
    retryDelayMs,
  });
  const agents = await Promise.all(
    SEEDS.map((seed, i) => {
      const stage = victims.get(i);
      const stateDir = join(dir, `agent-${i}`);
      return startAgent({
        coordinatorUrl: coordinator.url,
        stateDir,
        agentId: `agent-${i}`,
        trainer: createFakeTrainer({ seed, exampleCount: COUNTS[i] as number, scale: SCALE, delayMs: 40 }),
        logger: coordinator.logger.child({ svc: 'agent' }),
        ...trust(coordinator.publicKey),
        ...(stage === undefined
          ? {}
          : stage.startsWith('silent:')
            ? { connector: tamperingConnector(stateDir, { drop: (m) => m.type === 'secagg' && m.stage === stage.slice('silent:'.length) }) }
            : {
                connector: tamperingConnector(stateDir, { disconnectOn: (m) => m['type'] === 'secagg' && m['stage'] === stage }),
                // Stay away for the rest of the test.
                reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
              }),
      });
    }),
  );
  return {
    coordinator,
    initial: weights,
    agents,
    close: async () => {
      await Promise.all(agents.map((a) => a.close()));
      await coordinator.close();
    },
  };
}

function roundEvent(c: CoordinatorHandle, event: 'round-completed' | 'round-failed', timeoutMs = 20_000): Promise<[RoundSummary]> {
  return waitFor<[RoundSummary]>(
    (l) => {
      c.events.on(event, l);
      return () => c.events.off(event, l);
    },
    () => true,
    timeoutMs,
    event,
  );
}

/** Plain mode's model, computed as the plain path does: float32 deltas, float64 weighted mean, float32 result. */
function plainResult(initial: Float32Array, included: readonly number[], roundId: number): Float32Array {
  const total = included.reduce((s, i) => s + (COUNTS[i] as number), 0);
  const mean = new Float64Array(initial.length);
  for (const i of included) {
    const local = fakeLocalWeights(initial, SEEDS[i] as string, roundId, SCALE);
    const delta = new Float32Array(initial.length);
    for (let k = 0; k < delta.length; k++) delta[k] = (local[k] as number) - (initial[k] as number);
    for (let k = 0; k < delta.length; k++) mean[k] = (mean[k] as number) + ((COUNTS[i] as number) * (delta[k] as number)) / total;
  }
  return Float32Array.from(initial, (x, k) => x + (mean[k] as number));
}

/** |secure - plain| <= quantisation bound + one float32 rounding of the result, per coordinate. */
function assertWithinBound(actual: Float32Array, expected: Float32Array, bound: number): void {
  assert.ok(bound > 0 && bound < 1e-6, `a small positive quantisation bound, got ${bound}`);
  let worst = 0;
  for (let k = 0; k < actual.length; k++) {
    const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(expected[k] as number), 1e-30))) - 23);
    const excess = Math.abs((actual[k] as number) - (expected[k] as number)) - bound - ulp;
    worst = Math.max(worst, excess);
  }
  assert.ok(worst <= 0, `secure differs from plain by ${worst} beyond bound + 1 ulp`);
}

test('secure round, 5 agents: the new global model equals the plain-mode result within the quantisation bound', async () => {
  const dir = tempDir();
  const f = await federation(dir);
  try {
    const [summary] = await roundEvent(f.coordinator, 'round-completed');
    assert.equal(summary.status, 'completed');
    assert.deepEqual(summary.participants.map((p) => p.status), ['included', 'included', 'included', 'included', 'included']);
    assert.equal(summary.totalWeight, 200, 'the masked example counts sum exactly');
    assert.equal(summary.metrics['secaggThreshold'], 3);
    assert.equal(summary.metrics['secaggSurvivors'], 5);
    await withFinished(f.coordinator);
    assertWithinBound(f.coordinator.globalModel().weights, plainResult(f.initial, [0, 1, 2, 3, 4], 1), summary.metrics['secaggQuantisationBound'] ?? Number.NaN);
    // No plaintext example count reached the coordinator.
    assert.ok(summary.participants.every((p) => p.exampleCount === undefined));
    // Nor any per-agent metric (issue 11: the update of a secure round carries none).
    assert.ok(summary.participants.every((p) => p.loss === undefined && p.metrics === undefined));
    const status = (await (await fetch(`${f.coordinator.url}/api/status`)).json()) as { aggregation: string; coordinatorKey: string; secagg: { publicKey: string } };
    assert.equal(status.aggregation, 'secure');
    assert.match(status.secagg.publicKey, /^[0-9a-f]{64}$/);
    // One key signs the protocol messages and the secagg envelopes; the agents had it pinned
    // (nothing trusted on first use, so nothing remembered).
    assert.equal(status.coordinatorKey, status.secagg.publicKey);
    assert.equal(f.coordinator.publicKey, status.secagg.publicKey);
    assert.ok(!existsSync(join(dir, 'agent-0', 'coordinator-keys.json')));
  } finally {
    await f.close();
  }
});

async function withFinished(c: CoordinatorHandle): Promise<void> {
  await Promise.race([c.finished, new Promise((_, reject) => setTimeout(() => reject(new Error('not finished')), 10_000).unref())]);
}

test('secure round: a dropout at the share stage, one at the masked-input stage, and a silent agent (share-keys stage deadline) are survived', async () => {
  for (const [stage, victim] of [['keys', 4], ['shares', 1], ['silent:share-keys', 2]] as const) {
    const dir = tempDir();
    const started = Date.now();
    const f = await federation(dir, { victims: new Map([[victim, stage]]), stageTimeoutMs: 600 });
    try {
      const [summary] = await roundEvent(f.coordinator, 'round-completed');
      const status = Object.fromEntries(summary.participants.map((p) => [p.agentId, p.status]));
      assert.equal(status[`agent-${victim}`], 'dropped', `${stage}: the victim is a dropout`);
      const included = [0, 1, 2, 3, 4].filter((i) => i !== victim);
      for (const i of included) assert.equal(status[`agent-${i}`], 'included');
      assert.equal(summary.metrics['secaggSurvivors'], 4);
      if (stage.startsWith('silent:')) {
        assert.match(summary.participants.find((p) => p.agentId === `agent-${victim}`)?.reason ?? '', /did not send its key shares/);
        assert.ok(Date.now() - started >= 600, 'the share-keys stage closed at its deadline');
      }
      assert.equal(summary.metrics['secaggDropouts'], 1);
      assert.equal(summary.totalWeight, included.reduce((s, i) => s + (COUNTS[i] as number), 0));
      await withFinished(f.coordinator);
      assertWithinBound(f.coordinator.globalModel().weights, plainResult(f.initial, included, 1), summary.metrics['secaggQuantisationBound'] ?? Number.NaN);
    } finally {
      await f.close();
    }
  }
});

test('secure round: a survivor silent in the unmask stage: the aggregation deadline unmasks with the other shares (its input stays in the sum)', async () => {
  const dir = tempDir();
  const started = Date.now();
  const f = await federation(dir, { victims: new Map([[0, 'silent:unmask-response']]), aggregationDeadlineMs: 700 });
  try {
    const [summary] = await roundEvent(f.coordinator, 'round-completed');
    assert.ok(Date.now() - started >= 700, 'closed by the aggregation deadline');
    assert.deepEqual(summary.participants.map((p) => p.status), ['included', 'included', 'included', 'included', 'included']);
    assert.equal(summary.metrics['secaggUnmaskSilent'], 1);
    await withFinished(f.coordinator);
    assertWithinBound(f.coordinator.globalModel().weights, plainResult(f.initial, [0, 1, 2, 3, 4], 1), summary.metrics['secaggQuantisationBound'] ?? Number.NaN);
  } finally {
    await f.close();
  }
});

test('secure round: too many dropouts abort the round cleanly (model unchanged, reason in SQLite and GET /api/rounds)', async () => {
  const dir = tempDir();
  const f = await federation(dir, { victims: new Map([[3, 'shares'], [4, 'shares']]), retryDelayMs: 60_000 });
  try {
    const before = f.coordinator.globalModel().modelVersion;
    const [summary] = await roundEvent(f.coordinator, 'round-failed');
    assert.equal(summary.status, 'failed');
    // The two victims never confirm their shares: the share check closes with 3 of 5, which leaves
    // each of them 2 masking neighbours, fewer than t = 3.
    assert.match(summary.reason ?? '', /secure aggregation aborted \(insufficient-neighbours\) in stage 'share-check'/);
    assert.equal(summary.metrics['secaggThreshold'], 3);
    assert.equal(f.coordinator.globalModel().modelVersion, before, 'the global model is unchanged');
    assert.equal(f.coordinator.status().completedRounds, 0);
    const page = (await (await fetch(`${f.coordinator.url}/api/rounds`)).json()) as { items: { roundId: number; status: string; reason: string | null; modelVersion: string | null }[] };
    const row = page.items.find((r) => r.roundId === summary.roundId);
    assert.ok(row !== undefined);
    assert.equal(row.status, 'failed');
    assert.equal(row.modelVersion, null);
    assert.match(row.reason ?? '', /insufficient-neighbours/);
  } finally {
    await f.close();
  }
});
