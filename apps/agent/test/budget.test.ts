// The agent's own privacy budget (--max-epsilon) against a coordinator that lies about epsilon:
// one whose ledger was reset (or that never stops) keeps sending validly signed DP rounds. The
// agent joins rounds while its own accountant allows, then refuses (rule max-epsilon), also
// after a restart (the budget is on disk); a weakened agent without a budget keeps uploading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DEFAULT_ORDERS, epsilonFromRdp } from '@fedclr/privacy';
import type { AgentMessage, ErrorMessage } from '@fedclr/protocol';
import { startAgent, type AgentOptions } from '../src/agent.js';
import { PRIVACY_BUDGET_FILE } from '../src/budget.js';
import { isAgentError } from '../src/errors.js';
import { createFakeTrainer } from '../src/fake-trainer.js';
import { COORDINATOR_KEY, FakeNetwork, roundStart } from './fake-coordinator.js';

const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'budget-test' } });
const SIGMA = 2;
const DELTA = 1e-5;
const DP_ROUND = { dp: { noiseMultiplier: SIGMA, noise: 'coordinator' as const } };
const closedForm = (rounds: number): number => epsilonFromRdp(DEFAULT_ORDERS, DEFAULT_ORDERS.map((a) => (rounds * a) / (2 * SIGMA * SIGMA)), DELTA).epsilon;
/** Room for exactly two rounds. */
const MAX_EPSILON = (closedForm(2) + closedForm(3)) / 2;

async function connect(stateDir: string, extra: Partial<AgentOptions>) {
  const net = new FakeNetwork();
  const agent = await startAgent({
    coordinatorUrl: 'https://coordinator.test',
    stateDir,
    agentId: 'budget-agent',
    trainer: createFakeTrainer({ seed: 'b', exampleCount: 7, scale: 0.1 }),
    connector: net.connector,
    logger,
    coordinatorKey: COORDINATOR_KEY,
    policy: { requireSecure: false, minCohort: 1 },
    ...extra,
  });
  const c = await net.connection(0);
  await c.handshake();
  /** 'update' or the refusal's message, for round `roundId`. */
  const outcome = async (roundId: number): Promise<string> => {
    c.deliver(roundStart(roundId, DP_ROUND));
    const ofRound = (x: AgentMessage) => 'roundId' in x && x.roundId === roundId;
    const m: AgentMessage = await Promise.race([c.next('update', ofRound, 3000), c.next('error', ofRound, 3000)]);
    return m.type === 'update' ? 'update' : `${(m as ErrorMessage).code}: ${(m as ErrorMessage).message}`;
  };
  return { agent, outcome };
}

test('attack: a coordinator that keeps sending DP rounds past the budget -> refused (max-epsilon), across a restart; a weakened agent keeps uploading', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fedclr-budget-'));
  const budget = { privacyBudget: { maxEpsilon: MAX_EPSILON, delta: DELTA } };
  const a = await connect(stateDir, budget);
  try {
    assert.equal(await a.outcome(1), 'update');
    assert.equal(await a.outcome(2), 'update');
    assert.match(await a.outcome(3), /^FEDCLR_AGENT_POLICY_REFUSED: .*\(max-epsilon\).*would take this agent's epsilon above its budget/);
  } finally {
    await a.agent.close();
  }
  const saved = JSON.parse(readFileSync(join(stateDir, PRIVACY_BUDGET_FILE), 'utf8')) as { rounds: number };
  assert.equal(saved.rounds, 2);

  // Restarted (same state dir), against a coordinator that starts its ledger over: still refused.
  const b = await connect(stateDir, budget);
  try {
    assert.match(await b.outcome(1_000), /max-epsilon/);
  } finally {
    await b.agent.close();
  }

  // The weakened agent (no budget) falls for the same script: a third and fourth DP round go out.
  const w = await connect(mkdtempSync(join(tmpdir(), 'fedclr-budget-')), {});
  try {
    for (const roundId of [1, 2, 3, 4]) assert.equal(await w.outcome(roundId), 'update', `weakened agent, round ${roundId}`);
  } finally {
    await w.agent.close();
  }
});

test('budget: a round without DP is refused; a corrupt budget file refuses the start instead of resetting', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fedclr-budget-'));
  const net = new FakeNetwork();
  const agent = await startAgent({
    coordinatorUrl: 'https://coordinator.test',
    stateDir,
    trainer: createFakeTrainer({ seed: 'c' }),
    connector: net.connector,
    logger,
    coordinatorKey: COORDINATOR_KEY,
    policy: { requireSecure: false, minCohort: 1 },
    privacyBudget: { maxEpsilon: 5, delta: DELTA },
  });
  try {
    const c = await net.connection(0);
    await c.handshake();
    c.deliver(roundStart(7));
    const e = (await c.next('error', (m) => m.type === 'error' && m.roundId === 7)) as ErrorMessage;
    assert.match(e.message, /\(max-epsilon\).*configures no differential privacy/);
  } finally {
    await agent.close();
  }
  writeFileSync(join(stateDir, PRIVACY_BUDGET_FILE), '{"version":1,"rounds":1,"accountant":{"version":1,"orders":[2],"rdp":["x"]},"charged":[]}');
  await assert.rejects(
    startAgent({ coordinatorUrl: 'https://coordinator.test', stateDir, trainer: createFakeTrainer(), coordinatorKey: COORDINATOR_KEY, logger, privacyBudget: { maxEpsilon: 5, delta: DELTA } }),
    (err: unknown) => isAgentError(err, 'FEDCLR_AGENT_PRIVACY_BUDGET_INVALID') && /rdp\[0\]/.test((err as Error).message),
  );
});
