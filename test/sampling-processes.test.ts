// Poisson self-sampling with real agent processes (test/fixtures/fake-agent.js) against an
// in-process coordinator over loopback: 8 agents, rate 0.75, 2 plain rounds. Every round's cohort
// is exactly the agents whose own coins volunteered them, recomputed here from their identity files
// and the coordinator's key; no agent trains a round it declined. The keys are seeded (identity
// files written before the processes start), so the coins, and the cohorts, are the same every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deriveSamplingKey, samplingCoin } from '@fedclr/agent';
import type { CoordinatorConfig, RoundSummary } from '@fedclr/coordinator';
import { AGENT_SCRIPT, forkProc, startTestCoordinator, tempDir, trust, withTimeout, type IpcProc } from './processes.js';

const AGENTS = 8;
const RATE = 0.75;

/** A seeded Ed25519 key pair (tweetnacl layout: secret = seed || public) written as an identity file (the agents' and the coordinator's layout). */
function seededIdentity(dir: string, file: string, seed: number, extra: Record<string, unknown> = {}): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const seedBytes = Buffer.from(Array.from({ length: 32 }, (_, j) => (seed * 37 + j * 11 + 5) & 0xff));
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seedBytes]);
  const jwk = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
  const publicKey = Buffer.from(jwk.x as string, 'base64url');
  const pair = { publicKey, secretKey: Buffer.concat([seedBytes, publicKey]) };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const body = { version: 1, ...extra, publicKey: Buffer.from(pair.publicKey).toString('hex'), secretKey: Buffer.from(pair.secretKey).toString('base64') };
  writeFileSync(join(dir, file), `${JSON.stringify(body)}\n`, { mode: 0o600 });
  return pair;
}

async function federation(extra: Partial<CoordinatorConfig>): Promise<RoundSummary[]> {
  const dir = tempDir();
  const coordinatorPair = seededIdentity(join(dir, 'coordinator'), 'secagg-identity.json', 100);
  const keys = Array.from({ length: AGENTS }, (_, i) => deriveSamplingKey(seededIdentity(join(dir, `agent-${i}`), 'identity.json', i, { agentId: `agent-${i}` }).secretKey));
  const volunteersOf = (roundId: number) => keys.flatMap((k, i) => (samplingCoin(k, coordinatorPair.publicKey, roundId) < RATE ? [`agent-${i}`] : [])).sort();
  // The seeded coins: some agents decline each round (else the test would not tell a cohort of everyone from the volunteers).
  assert.ok(volunteersOf(1).length < AGENTS && volunteersOf(2).length < AGENTS, `${volunteersOf(1).length} and ${volunteersOf(2).length} volunteers`);
  const { coordinator } = await startTestCoordinator({
    stateDir: join(dir, 'coordinator'),
    rounds: 2,
    minCohort: 1,
    maxCohort: AGENTS,
    // Every agent connects before the first invitation (it goes out as soon as all 8 are ready).
    cohortWaitMs: 20_000,
    sampling: { mode: 'poisson', rate: RATE, invitationWaitMs: 5000 },
    deadlineMs: 20_000,
    quorum: { fraction: 1, minCount: 1 },
    ...extra,
  });
  const summaries: RoundSummary[] = [];
  coordinator.events.on('round-completed', (s) => summaries.push(s));
  coordinator.events.on('round-failed', (s) => summaries.push(s));
  const procs: IpcProc[] = Array.from({ length: AGENTS }, (_, i) =>
    forkProc(AGENT_SCRIPT, {
      coordinatorUrl: coordinator.url,
      stateDir: join(dir, `agent-${i}`),
      agentId: `agent-${i}`,
      trainer: { seed: `s${i}`, exampleCount: 10 + i, scale: 0.05, delayMs: 20 },
      ...trust(coordinator.publicKey),
    }),
  );
  try {
    assert.equal(await withTimeout(coordinator.finished, 60_000, 'the federation to finish'), 2);
    assert.equal(coordinator.publicKey, Buffer.from(coordinatorPair.publicKey).toString('hex'), 'the coordinator runs on the seeded key');
    assert.ok(summaries.filter((s) => s.status === 'completed').length === 2);
    for (const s of summaries) {
      assert.deepEqual([...s.cohort].sort(), volunteersOf(s.roundId), `round ${s.roundId}: the cohort is the volunteers`);
      assert.equal(s.metrics['samplingRate'], RATE);
      assert.equal(s.metrics['sampledFrom'], AGENTS);
    }
    for (const [i, p] of procs.entries()) {
      await p.next((m) => m['event'] === 'exit', 10_000, 'agent exit');
      const answered = p.messages.filter((m) => m['event'] === 'sampling');
      for (const a of answered) assert.equal(a['volunteer'], volunteersOf(a['roundId'] as number).includes(`agent-${i}`), `agent-${i}'s answer for round ${String(a['roundId'])}`);
      for (const u of p.messages.filter((m) => m['event'] === 'update-sent')) {
        assert.ok(volunteersOf(u['roundId'] as number).includes(`agent-${i}`), `agent-${i} trained round ${String(u['roundId'])} only if it volunteered`);
      }
      assert.equal(p.messages.filter((m) => m['event'] === 'round-refused').length, 0, 'an honest coordinator never sends a round-start its agents refuse');
    }
    return summaries;
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await coordinator.close();
  }
}

test('8 agent processes, sampling rate 0.75, 2 plain rounds: each cohort is exactly the volunteers of the agents\' own coins', async () => {
  await federation({});
});

test('8 agent processes, sampling rate 0.75, 2 secure DP rounds: the cohorts are the volunteers and the denominator is 0.75 x 8 = 6', async () => {
  const summaries = await federation({ aggregation: 'secure', minCohort: 3, training: { clipNorm: 0.5, dp: { noiseMultiplier: 0.5 } } });
  for (const s of summaries.filter((x) => x.status === 'completed')) {
    assert.equal(s.metrics['dpDenominator'], RATE * AGENTS);
    assert.equal(s.totalWeight, RATE * AGENTS);
  }
});
