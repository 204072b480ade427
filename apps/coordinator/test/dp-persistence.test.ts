// The privacy ledger across the coordinator's edges, with real agents on loopback: epsilon in
// GET /api/rounds, GET /api/status and /metrics; the ledger saved with each round and resumed
// by a restarted coordinator (epsilon goes on from where it was, not from 0); a corrupt saved
// ledger refuses the start instead of resetting the spent budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createFakeTrainer, startAgent } from '@fedclr/agent';
import { DEFAULT_ORDERS, epsilonFromRdp } from '@fedclr/privacy';
import type { CoordinatorConfig } from '../src/config.js';
import { isCoordinatorError } from '../src/errors.js';
import { startTestCoordinator, tempDir, trust, withTimeout } from './harness.js';

const SIGMA = 2;
const DELTA = 1e-6;

const closedForm = (rounds: number): number => epsilonFromRdp(DEFAULT_ORDERS, DEFAULT_ORDERS.map((a) => (rounds * a) / (2 * SIGMA * SIGMA)), DELTA).epsilon;
const near = (a: number | undefined, b: number, what: string) => assert.ok(a !== undefined && Math.abs(a - b) <= 1e-9 * b, `${what}: ${a} vs ${b}`);

/** Runs a central-DP federation of 3 fake agents until the coordinator finishes; returns its status. */
async function runFederation(dir: string, rounds: number) {
  const config: Partial<CoordinatorConfig> & { stateDir: string } = {
    stateDir: join(dir, 'coordinator'),
    rounds,
    minCohort: 3,
    maxCohort: 3,
    training: { clipNorm: 1, dp: { noiseMultiplier: SIGMA, noise: 'coordinator' } },
    privacy: { delta: DELTA, targetEpsilon: 1000 },
  };
  const { coordinator } = await startTestCoordinator(config);
  const agents = await Promise.all(
    [0, 1, 2].map((i) =>
      startAgent({
        coordinatorUrl: coordinator.url,
        stateDir: join(dir, `agent-${i}`),
        agentId: `agent-${i}`,
        trainer: createFakeTrainer({ seed: i, exampleCount: 5 }),
        logger: coordinator.logger.child({ svc: 'agent' }),
        ...trust(coordinator.publicKey),
      }),
    ),
  );
  try {
    await withTimeout(coordinator.finished, 20_000, 'the run to finish');
    const get = async (path: string) => (await fetch(`${coordinator.url}${path}`)).text();
    return {
      status: JSON.parse(await get('/api/status')) as { privacy?: { epsilon: number; rounds: number; delta: number; targetEpsilon: number } },
      rounds: (JSON.parse(await get('/api/rounds')) as { items: { roundId: number; status: string; metrics: Record<string, number> }[] }).items,
      metrics: await get('/metrics'),
    };
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    await coordinator.close();
  }
}

test('epsilon is reported per round and resumes across a restart; a corrupt ledger refuses the start', async () => {
  const dir = tempDir();
  const first = await runFederation(dir, 2);
  near(first.status.privacy?.epsilon, closedForm(2), '/api/status after 2 rounds');
  assert.equal(first.status.privacy?.rounds, 2);
  assert.equal(first.status.privacy?.delta, DELTA);
  const completed = first.rounds.filter((r) => r.status === 'completed').sort((a, b) => a.roundId - b.roundId);
  assert.equal(completed.length, 2);
  near(completed[0]?.metrics['dpEpsilon'], closedForm(1), 'round 1 in /api/rounds');
  near(completed[1]?.metrics['dpEpsilon'], closedForm(2), 'round 2 in /api/rounds');
  const gauge = /^fedclr_dp_epsilon (\S+)$/m.exec(first.metrics);
  near(gauge === null ? undefined : Number(gauge[1]), closedForm(2), '/metrics fedclr_dp_epsilon');
  assert.match(first.metrics, /^fedclr_dp_delta 0\.000001$|^fedclr_dp_delta 1e-6$/m);
  assert.match(first.metrics, /^fedclr_dp_target_epsilon 1000$/m);

  // Restarted for one more round: the ledger goes on from 2 rounds.
  const second = await runFederation(dir, 3);
  near(second.status.privacy?.epsilon, closedForm(3), '/api/status after the restart and round 3');
  assert.equal(second.status.privacy?.rounds, 3);

  // A corrupt ledger: refused, not reset to zero.
  const db = new Database(join(dir, 'coordinator', 'coordinator.db'));
  db.prepare(`UPDATE run_meta SET value = ? WHERE key = 'privacy-ledger'`).run('{"version":1,"rounds":3,"accountant":{"version":1,"orders":[2],"rdp":[-5]}}');
  db.close();
  await assert.rejects(
    startTestCoordinator({ stateDir: join(dir, 'coordinator'), rounds: 4, minCohort: 3, maxCohort: 3, training: { clipNorm: 1, dp: { noiseMultiplier: SIGMA, noise: 'coordinator' } } }),
    (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_PRIVACY_STATE_INVALID') && /rdp\[0\]/.test((e as Error).message),
  );
});
