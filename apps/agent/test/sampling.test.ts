// Poisson self-sampling (issue 15): the coin and the agent's refusal of rounds its coin did not
// pick. The coin tests pin the specification (an independent re-implementation of the HMAC) and
// its statistics over seeded keys; the agent tests script a validly signing coordinator that tries
// to include an agent that declined or was never invited, next to the genuine volunteer it trains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import nacl from 'tweetnacl';
import type { AgentMessage, ErrorMessage } from '@fedclr/protocol';
import { startAgent, type AgentHandle } from '../src/agent.js';
import { createFakeTrainer } from '../src/fake-trainer.js';
import { checkRoundPolicy, POLICY_DEFAULTS, POLICY_FILE, resolvePolicy } from '../src/policy.js';
import { SamplingMemory, deriveSamplingKey, samplingCoin, volunteers } from '../src/sampling.js';
import { COORDINATOR_KEY, FakeNetwork, roundStart, type FakeConnection } from './fake-coordinator.js';

const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'sampling-test' } });
const seeded = (i: number) => nacl.sign.keyPair.fromSeed(Uint8Array.from({ length: 32 }, (_, j) => (i * 31 + j * 7 + 1) & 0xff));
const COORD_A = seeded(1000).publicKey;
const COORD_B = seeded(1001).publicKey;

// ---- the coin --------------------------------------------------------------------------------

test('coin: the specified HMAC (independent re-implementation), deterministic, in [0, 1), keyed by the agent secret', () => {
  const agent = seeded(1);
  const key = deriveSamplingKey(agent.secretKey);
  const expectedKey = Buffer.from(hkdfSync('sha256', agent.secretKey.subarray(0, 32), Buffer.alloc(0), 'fedclr-sampling-key-v1', 32));
  assert.deepEqual(key, expectedKey);
  assert.notDeepEqual(key, Buffer.from(agent.secretKey.subarray(0, 32)), 'a derived key, not the signing seed itself');
  for (const roundId of [0, 1, 7, 2 ** 40 + 3]) {
    const round = Buffer.alloc(8);
    round.writeBigUInt64BE(BigInt(roundId));
    const mac = createHmac('sha256', expectedKey).update('fedclr-sampling-v1\0').update(COORD_A).update(round).digest();
    const u = Number(mac.readBigUInt64BE(0) >> 11n) / 2 ** 53;
    assert.equal(samplingCoin(key, COORD_A, roundId), u);
    assert.equal(samplingCoin(deriveSamplingKey(agent.secretKey), COORD_A, roundId), u, 'deterministic');
    assert.ok(u >= 0 && u < 1);
  }
  // Another agent's key, another coordinator key or another round: another coin.
  assert.notEqual(samplingCoin(key, COORD_A, 5), samplingCoin(deriveSamplingKey(seeded(2).secretKey), COORD_A, 5));
  assert.notEqual(samplingCoin(key, COORD_A, 5), samplingCoin(key, COORD_B, 5));
  assert.notEqual(samplingCoin(key, COORD_A, 5), samplingCoin(key, COORD_A, 6));
  assert.throws(() => samplingCoin(key, COORD_A, -1), RangeError);
  assert.throws(() => deriveSamplingKey(new Uint8Array(10)), RangeError);
});

test('coin: over 20 seeded agents x 400 rounds, the volunteer fraction at q is within 5 binomial sigmas, for several q', () => {
  const keys = Array.from({ length: 20 }, (_, i) => deriveSamplingKey(seeded(i + 10).secretKey));
  const coins: number[] = [];
  for (const k of keys) for (let r = 1; r <= 400; r++) coins.push(samplingCoin(k, COORD_A, r));
  const n = coins.length;
  for (const q of [0.05, 0.25, 0.5, 0.75, 0.95]) {
    const hits = coins.filter((u) => volunteers(u, q)).length;
    const sigma = Math.sqrt(n * q * (1 - q));
    assert.ok(Math.abs(hits - n * q) < 5 * sigma, `q=${q}: ${hits} of ${n} volunteered, expected ${n * q} +- ${5 * sigma}`);
  }
  // q = 1 always volunteers; the coin does not depend on q (the same u is compared to every rate).
  assert.equal(coins.filter((u) => volunteers(u, 1)).length, n);
  // Rounds are independent: the lag-1 correlation of one agent's coins is near 0.
  const one = coins.slice(0, 400);
  const mean = one.reduce((s, u) => s + u, 0) / one.length;
  let cov = 0;
  let v = 0;
  for (let i = 0; i < one.length; i++) {
    v += ((one[i] as number) - mean) ** 2;
    if (i > 0) cov += ((one[i] as number) - mean) * ((one[i - 1] as number) - mean);
  }
  assert.ok(Math.abs(cov / v) < 5 / Math.sqrt(one.length), `lag-1 correlation ${cov / v}`);
});

test('SamplingMemory: the same round gets the same answer; a second rate for it is a conflict; check() names not-sampled', () => {
  const m = new SamplingMemory(seeded(3).secretKey);
  const key = deriveSamplingKey(seeded(3).secretKey);
  // Find one round the coin declines at q = 0.5 and one it volunteers for.
  const declined = [...Array(64).keys()].find((r) => !volunteers(samplingCoin(key, COORD_A, r), 0.5)) as number;
  const chosen = [...Array(64).keys()].find((r) => volunteers(samplingCoin(key, COORD_A, r), 0.5)) as number;
  assert.deepEqual(m.invite(COORD_A, declined, 0.5), { volunteer: false });
  assert.deepEqual(m.invite(COORD_A, declined, 0.5), { volunteer: false }, 're-inviting cannot re-roll');
  assert.deepEqual(m.invite(COORD_A, declined, 1), { conflict: 0.5 }, 'nor can raising the rate');
  assert.deepEqual(m.invite(COORD_A, chosen, 0.5), { volunteer: true });
  assert.equal(m.check(COORD_A, chosen, { sampling: { rate: 0.5, invited: 10 } }), undefined);
  assert.match(m.check(COORD_A, declined, { sampling: { rate: 0.5, invited: 10 } })?.problem ?? '', /declined round/);
  assert.equal(m.check(COORD_A, declined, {})?.rule, 'not-sampled', 'a declined round is refused even without config.sampling');
  assert.match(m.check(COORD_A, 999, { sampling: { rate: 0.5, invited: 10 } })?.problem ?? '', /never invited/);
  assert.match(m.check(COORD_A, chosen, { sampling: { rate: 0.9, invited: 10 } })?.problem ?? '', /claims rate 0\.9/);
  assert.match(m.check(COORD_B, chosen, { sampling: { rate: 0.5, invited: 10 } })?.problem ?? '', /never invited/, 'answers are per coordinator key');
  assert.equal(m.check(COORD_A, 999, {}), undefined, 'a coordinator-sampled round is left to the other rules');
});

// ---- the agent against a validly signing coordinator -------------------------------------------

interface Run {
  agent: AgentHandle;
  c: FakeConnection;
  refused: { type: string; code: string | undefined }[];
}

async function connected(policy: Partial<typeof POLICY_DEFAULTS> = {}): Promise<Run> {
  const net = new FakeNetwork();
  const agent = await startAgent({
    coordinatorUrl: 'https://coordinator.test',
    stateDir: mkdtempSync(join(tmpdir(), 'fedclr-sampling-')),
    agentId: 'sampled-agent',
    trainer: createFakeTrainer({ seed: 's', exampleCount: 11, scale: 0.1, delayMs: 5 }),
    connector: net.connector,
    logger,
    reconnect: { initialDelayMs: 5, maxDelayMs: 10 },
    coordinatorKey: COORDINATOR_KEY,
    policy: { requireSecure: false, minCohort: 1, ...policy },
  });
  const refused: Run['refused'] = [];
  agent.events.on('message-refused', (r) => refused.push({ type: r.type, code: (r.error as { code?: string }).code }));
  const c = await net.connection(0);
  await c.handshake();
  return { agent, c, refused };
}

const forRound = (type: string, roundId: number) => (m: AgentMessage) => m.type === type && 'roundId' in m && m.roundId === roundId;

async function answer(c: FakeConnection, roundId: number, rate: number): Promise<boolean> {
  c.deliver({ type: 'sampling-invite', roundId, rate });
  const a = await c.next('sampling-answer', forRound('sampling-answer', roundId));
  assert.equal(a.type, 'sampling-answer');
  return (a as { volunteer: boolean }).volunteer;
}

async function refusedNotSampled(c: FakeConnection, roundId: number): Promise<void> {
  const e = (await c.next('error', forRound('error', roundId))) as ErrorMessage;
  assert.equal(e.code, 'FEDCLR_AGENT_POLICY_REFUSED');
  assert.match(e.message, /not-sampled/);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.sent.some(forRound('update', roundId)), false, `round ${roundId} must not be trained`);
}

test('attack (signed by the coordinator): round-start of a Poisson round to an agent that declined or was never invited -> refused (not-sampled); the volunteer is trained', async () => {
  const r = await connected();
  try {
    // A rate of 1e-12 declines (u < 1e-12 has probability 1e-12); a rate of 1 always volunteers.
    assert.equal(await answer(r.c, 10, 1e-12), false);
    r.c.deliver(roundStart(10, { cohortSize: 4, sampling: { rate: 1e-12, invited: 8 } }));
    await refusedNotSampled(r.c, 10);
    // The declined round once more, now posing as a coordinator-sampled round: still refused.
    assert.equal(await answer(r.c, 11, 1e-12), false);
    r.c.deliver(roundStart(11));
    await refusedNotSampled(r.c, 11);
    // Never invited.
    r.c.deliver(roundStart(12, { cohortSize: 4, sampling: { rate: 0.5, invited: 8 } }));
    await refusedNotSampled(r.c, 12);
    // Volunteered at rate 1, but the round-start claims another rate.
    assert.equal(await answer(r.c, 13, 1), true);
    r.c.deliver(roundStart(13, { cohortSize: 4, sampling: { rate: 0.1, invited: 8 } }));
    await refusedNotSampled(r.c, 13);
    // A second invitation of an answered round at another rate: ignored, no answer.
    r.c.deliver({ type: 'sampling-invite', roundId: 10, rate: 1 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(r.refused.some((x) => x.type === 'sampling-invite' && x.code === 'FEDCLR_AGENT_SAMPLING_CONFLICT'), JSON.stringify(r.refused));
    assert.equal(r.c.sent.filter(forRound('sampling-answer', 10)).length, 1);
    // The control: the same script for a round the agent volunteered for is trained.
    assert.equal(await answer(r.c, 14, 1), true);
    r.c.deliver(roundStart(14, { cohortSize: 4, sampling: { rate: 1, invited: 8 } }));
    const u = await r.c.next('update', forRound('update', 14));
    assert.equal(u.type, 'update');
  } finally {
    await r.agent.close();
  }
});

test('policy --require-sampling: a coordinator-sampled round (no config.sampling) is refused (require-sampling); a Poisson round the agent volunteered for is trained', async () => {
  const lax = { ...POLICY_DEFAULTS, requireSecure: false, minCohort: 1 };
  assert.equal(checkRoundPolicy(lax, { ...roundStart(1).config }), undefined, 'off by default');
  assert.equal(checkRoundPolicy({ ...lax, requireSampling: true }, { ...roundStart(1).config })?.rule, 'require-sampling');
  assert.equal(checkRoundPolicy({ ...lax, requireSampling: true }, { ...roundStart(1).config, sampling: { rate: 0.5, invited: 8 } }), undefined);
  const r = await connected({ requireSampling: true });
  try {
    r.c.deliver(roundStart(20));
    const e = (await r.c.next('error', forRound('error', 20))) as ErrorMessage;
    assert.equal(e.code, 'FEDCLR_AGENT_POLICY_REFUSED');
    assert.match(e.message, /require-sampling.*not a Poisson round/);
    assert.equal(await answer(r.c, 21, 1), true);
    r.c.deliver(roundStart(21, { cohortSize: 4, sampling: { rate: 1, invited: 8 } }));
    assert.equal((await r.c.next('update', forRound('update', 21))).type, 'update');
  } finally {
    await r.agent.close();
  }
  // Saved in policy.json; a file written before the field existed means off.
  const dir = mkdtempSync(join(tmpdir(), 'fedclr-sampling-policy-'));
  assert.equal((await resolvePolicy(dir, { requireSampling: true })).policy.requireSampling, true);
  assert.equal((await resolvePolicy(dir)).policy.requireSampling, true, 'kept across restarts');
  const old = mkdtempSync(join(tmpdir(), 'fedclr-sampling-policy-'));
  writeFileSync(join(old, POLICY_FILE), JSON.stringify({ version: 1, requireSecure: true, minCohort: 5, minNoiseMultiplier: 0 }));
  assert.equal((await resolvePolicy(old)).policy.requireSampling, false);
});
