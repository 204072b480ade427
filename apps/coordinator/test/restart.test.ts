// Graceful close() of an in-process coordinator mid-round, and a restart from the same state.
// (The crash and signal tests with a coordinator process are in the top-level
// test/restart-processes.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { createFakeTrainer, startAgent, type AgentHandle } from '@fedclr/agent';
import { startTestCoordinator, tempDir, trust, withTimeout } from './harness.js';

const agentLogger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'agent' } });

async function agentsFor(url: string, dir: string, n: number, delayMs: number, coordinatorKey: string): Promise<AgentHandle[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      startAgent({
        coordinatorUrl: url,
        stateDir: join(dir, `agent-${i}`),
        agentId: `agent-${i}`,
        trainer: createFakeTrainer({ seed: i, exampleCount: 10 + i, delayMs }),
        reconnect: { initialDelayMs: 50, maxDelayMs: 300, jitter: 0.5 },
        logger: agentLogger,
        ...trust(coordinatorKey),
      }),
    ),
  );
}

test('close() mid-round aborts it cleanly; agents stop; a restart continues from the same state', async () => {
  const dir = tempDir();
  const stateDir = join(dir, 'coordinator');
  const first = await startTestCoordinator({ stateDir, rounds: 3, minCohort: 2, maxCohort: 2, deadlineMs: 30_000 });
  const agents = await agentsFor(first.coordinator.url, dir, 2, 20_000, first.coordinator.publicKey);
  await new Promise<void>((resolve) => first.coordinator.events.once('round-started', () => resolve()));
  await first.coordinator.close();
  const exits = await Promise.all(agents.map((a) => withTimeout(a.done, 5000, 'agents to stop')));
  assert.deepEqual(exits.map((e) => e.reason), ['stopping', 'stopping']);
  const second = await startTestCoordinator({ stateDir, rounds: 3, minCohort: 2, maxCohort: 2, deadlineMs: 30_000 });
  try {
    const s = second.coordinator.status();
    assert.equal(s.completedRounds, 0);
    assert.equal(s.modelVersion, first.coordinator.globalModel().modelVersion);
  } finally {
    await second.coordinator.close();
  }
});
