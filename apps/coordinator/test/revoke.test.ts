// A revocation takes effect at once through the gateway and the engine: the revoked agent, in the
// middle of a round, gets a signed shutdown 'evicted' naming the revocation, the round completes
// without it, it is never sampled again, and its next hello is refused as revoked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { createFakeTrainer, loadOrCreateIdentity, startAgent, type AgentHandle } from '@fedclr/agent';
import type { RoundStartedRecord } from '../src/engine.js';
import { startTestCoordinator, tempDir, trust, withTimeout } from './harness.js';

const agentLogger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'agent' } });

test('revoke during a round: evicted at once, the round completes without it, never sampled again, refused at its next hello', async () => {
  const dir = tempDir();
  const stateDir = join(dir, 'coordinator');
  const { coordinator } = await startTestCoordinator({
    stateDir,
    enrolment: { mode: 'allow-list' },
    rounds: 3,
    minCohort: 2,
    maxCohort: 3,
    cohortWaitMs: 3000,
    quorum: { fraction: 0.5, minCount: 2 },
    deadlineMs: 10_000,
  });
  const admin = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
  const api = async (path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const r = await fetch(`${coordinator.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> };
  };
  const starts: RoundStartedRecord[] = [];
  coordinator.events.on('round-started', (r) => starts.push(r));
  const agents: AgentHandle[] = [];
  const start = async (i: number, delayMs: number): Promise<AgentHandle> => {
    const a = await startAgent({
      coordinatorUrl: coordinator.url,
      stateDir: join(dir, `agent-${i}`),
      agentId: `agent-${i}`,
      trainer: createFakeTrainer({ seed: i, exampleCount: 10, delayMs }),
      reconnect: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 3 },
      logger: agentLogger,
      ...trust(coordinator.publicKey),
    });
    agents.push(a);
    return a;
  };
  try {
    // Enrol three agents over the admin API (their keys, as `fedclr agent id` prints them).
    for (let i = 0; i < 3; i++) {
      const id = await loadOrCreateIdentity(join(dir, `agent-${i}`), `agent-${i}`);
      const r = await api('/api/admin/enrolments', { agentId: `agent-${i}`, publicKey: Buffer.from(id.publicKey).toString('hex') });
      assert.equal(r.status, 201);
    }
    await start(0, 50);
    await start(1, 50);
    const a2 = await start(2, 1500);
    // Round 1 samples all three; agent-2 is still training when the operator revokes it.
    await withTimeout(new Promise((resolve) => coordinator.events.once('round-started', resolve)), 10_000, 'round 1');
    assert.deepEqual([...(starts[0] as RoundStartedRecord).cohort].sort(), ['agent-0', 'agent-1', 'agent-2']);
    const revoked = await api('/api/admin/enrolments/agent-2/revoke', { reason: 'key leaked' });
    assert.equal(revoked.status, 200);
    assert.equal(revoked.json['status'], 'revoked');
    const exit = await withTimeout(a2.done, 5000, 'agent-2 to be evicted');
    assert.equal(exit.reason, 'evicted');
    assert.match(exit.message ?? '', /revoked by the operator: key leaked/);
    const done = await withTimeout(coordinator.finished, 20_000, 'three rounds');
    assert.equal(done, 3);
    assert.deepEqual(starts.map((r) => r.roundId), [1, 2, 3], 'round 1 completed without the revoked agent (no retry)');
    for (const r of starts.slice(1)) assert.deepEqual([...r.cohort].sort(), ['agent-0', 'agent-1'], `round ${r.roundId} never samples agent-2`);

    // Its next hello is refused, naming the revocation.
    const again = await start(2, 10);
    const refused = await withTimeout(again.done, 5000, 'agent-2 to be refused');
    assert.equal(refused.reason, 'rejected');
    assert.match(refused.error?.message ?? refused.message ?? '', /was revoked by the operator at .*: key leaked/);
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    await coordinator.close();
  }
});
