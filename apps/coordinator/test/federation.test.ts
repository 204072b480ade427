// Federation over real sockets on loopback, in one process: a connected agent that never answers.
// (The tests with agent processes are in the top-level test/federation-processes.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createFakeTrainer, startAgent } from '@fedclr/agent';
import type { RoundSummary } from '../src/engine.js';
import { startTestCoordinator, tamperingConnector, tempDir, trust, waitFor } from './harness.js';

test('a connected agent that never answers is cut off by the deadline; the quorum completes the round', async () => {
  const dir = tempDir();
  const { coordinator } = await startTestCoordinator({
    stateDir: join(dir, 'coordinator'),
    rounds: 1,
    minCohort: 3,
    maxCohort: 3,
    deadlineMs: 1000,
    deadlineGraceMs: 200,
    quorum: { fraction: 0.5, minCount: 2 },
  });
  // Agent 2 trains for a minute and its error reports (its own deadline) are swallowed: it
  // stays connected and silent, so only the coordinator's deadline can close the round.
  const agents = await Promise.all(
    [0, 1, 2].map((i) =>
      startAgent({
        coordinatorUrl: coordinator.url,
        stateDir: join(dir, `agent-${i}`),
        agentId: `agent-${i}`,
        trainer: createFakeTrainer({ seed: i, exampleCount: 5, delayMs: i === 2 ? 60_000 : 0 }),
        logger: coordinator.logger.child({ svc: 'agent' }),
        ...trust(coordinator.publicKey),
        ...(i === 2 ? { connector: tamperingConnector(join(dir, `agent-${i}`), { drop: (m) => m.type === 'error' || m.type === 'update' }) } : {}),
      }),
    ),
  );
  try {
    const started = Date.now();
    const [summary] = await waitFor<[RoundSummary]>(
      (l) => {
        coordinator.events.on('round-completed', l);
        return () => coordinator.events.off('round-completed', l);
      },
      () => true,
      10_000,
      'round-completed',
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 5000, `closed at the deadline (${elapsed} ms)`);
    const status = Object.fromEntries(summary.participants.map((p) => [p.agentId, p.status]));
    assert.deepEqual(status, { 'agent-0': 'included', 'agent-1': 'included', 'agent-2': 'timeout' });
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    await coordinator.close();
  }
});
