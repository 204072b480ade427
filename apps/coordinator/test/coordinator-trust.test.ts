// Issue 11 end to end, a real coordinator and real agents over loopback sockets: the agent pins
// the key that GET /api/status publishes; a policy refusal is recorded where the operator looks
// (GET /api/rounds/:id); an attacker on the path who flips a secure round-start to 'plain' gets
// nothing from a normal agent, and the raw delta from a weakened one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { decodeFrame } from '@fedclr/protocol';
import { createFakeTrainer, startAgent, type AgentHandle, type AgentOptions } from '@fedclr/agent';
import type { RoundSummary } from '../src/engine.js';
import { startTestCoordinator, tamperingConnector, tempDir, trust, waitFor, withTimeout } from './harness.js';

test('loopback: /api/status publishes the key agents pin; a policy refusal is recorded in /api/rounds/:id; an agent allowing plain rounds trains', async () => {
  const dir = tempDir();
  for (const allowPlain of [false, true]) {
    const { coordinator } = await startTestCoordinator({ stateDir: join(dir, `c-${allowPlain}`), rounds: 1, minCohort: 1, maxCohort: 1, deadlineMs: 5000, retryDelayMs: 60_000 });
    let agent: AgentHandle | undefined;
    try {
      const status = (await (await fetch(`${coordinator.url}/api/status`)).json()) as { coordinatorKey: string; aggregation: string };
      assert.equal(status.coordinatorKey, coordinator.publicKey);
      assert.equal(status.aggregation, 'plain');
      const failed = waitFor<[RoundSummary]>((l) => (coordinator.events.on('round-failed', l), () => coordinator.events.off('round-failed', l)), () => true, 10_000, 'the round to fail');
      failed.catch(() => undefined);
      agent = await startAgent({
        coordinatorUrl: coordinator.url,
        stateDir: join(dir, `a-${allowPlain}`),
        agentId: 'careful',
        trainer: createFakeTrainer({ seed: 1, exampleCount: 9 }),
        logger: coordinator.logger.child({ svc: 'agent' }),
        coordinatorKey: status.coordinatorKey,
        // Default policy (secure aggregation required), or --allow-plain.
        policy: { minCohort: 1, ...(allowPlain ? { requireSecure: false } : {}) },
      });
      if (allowPlain) {
        assert.equal(await withTimeout(coordinator.finished, 10_000, 'the round'), 1, 'the weakened (plain-allowing) agent trains the plain round');
        continue;
      }
      const [summary] = await failed;
      assert.equal(summary.roundId, 1);
      const detail = (await (await fetch(`${coordinator.url}/api/rounds/1`)).json()) as { round: { status: string }; participants: { agentId: string; status: string; reason: string | null }[] };
      assert.equal(detail.participants.length, 1);
      const p = detail.participants[0];
      assert.equal(p?.agentId, 'careful');
      assert.equal(p?.status, 'failed');
      assert.match(p?.reason ?? '', /^FEDCLR_AGENT_POLICY_REFUSED: Round 1 refused by this agent's policy \(require-secure\): aggregation is 'plain'/);
    } finally {
      await agent?.close();
      await coordinator.close({ mode: 'abort' });
    }
  }
});

test('loopback MITM: a secure round-start flipped to plain on the path is refused (no raw delta leaves); a weakened agent sends its raw delta', async () => {
  const dir = tempDir();
  for (const weakened of [false, true]) {
    const { coordinator } = await startTestCoordinator({
      stateDir: join(dir, `c-${weakened}`),
      aggregation: 'secure',
      secagg: { dropoutFraction: 0, corruptFraction: 0, stageTimeoutMs: 2000, clip: 0.1, maxWeight: 1000 },
      rounds: 1,
      minCohort: 3,
      maxCohort: 3,
      deadlineMs: 4000,
      retryDelayMs: 60_000,
    });
    const leaked: Record<string, unknown>[] = [];
    const refusals: string[] = [];
    const agents: AgentHandle[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const stateDir = join(dir, `a-${weakened}-${i}`);
        const victim = i === 0;
        const options: AgentOptions = {
          coordinatorUrl: coordinator.url,
          stateDir,
          agentId: `agent-${i}`,
          trainer: createFakeTrainer({ seed: i, exampleCount: 10 + i, scale: 0.05, delayMs: 20 }),
          logger: coordinator.logger.child({ svc: 'agent' }),
          // Plain rounds allowed by policy: only the signature check stands between the attack and the delta.
          ...trust(coordinator.publicKey),
          ...(victim
            ? {
                connector: tamperingConnector(stateDir, {
                  inbound: (m) => (m['type'] === 'round-start' ? { ...m, config: { ...(m['config'] as object), aggregation: 'plain' } } : m),
                  observe: (m) => {
                    if (m['type'] === 'update' && m['exampleCount'] !== undefined) leaked.push(m);
                  },
                }),
                ...(weakened ? { insecureSkipVerification: true } : {}),
              }
            : {}),
        };
        const a = await startAgent(options);
        if (victim) a.events.on('message-refused', (r) => refusals.push(`${r.type}:${String((r.error as { code?: string }).code)}`));
        agents.push(a);
      }
      const victim = agents[0] as AgentHandle;
      if (!weakened) {
        await withTimeout(
          new Promise<void>((resolve) => victim.events.on('message-refused', (r) => r.type === 'round-start' && resolve())),
          10_000,
          'the victim to refuse the tampered round-start',
        );
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(refusals, ['round-start:FEDCLR_AGENT_MESSAGE_BAD_SIGNATURE']);
        assert.equal(leaked.length, 0, 'no plain update left the agent');
      } else {
        await withTimeout(
          new Promise<void>((resolve) => victim.events.on('update-sent', () => resolve())),
          10_000,
          'the weakened victim to upload',
        );
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(leaked.length, 1, 'the weakened agent sent a plain update on the path');
        const frame = decodeFrame(leaked[0]?.['frame'] as Uint8Array);
        assert.ok(frame.manifest.every((t) => t.dtype === 'float32'), 'its raw float32 delta, not a masked vector');
        assert.equal(leaked[0]?.['exampleCount'], 10);
      }
    } finally {
      await Promise.all(agents.map((a) => a.close()));
      await coordinator.close({ mode: 'abort' });
    }
  }
});
