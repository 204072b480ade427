// Issue 11's attacks, each run twice against a scripted coordinator: once on a normal agent (the
// attack is refused, with a catalogued error, and the connection goes on), once on a
// deliberately weakened agent (verification skipped, or a policy that allows it), which falls
// for the very same script: it uploads a plain update, or it stops. The second run is what
// shows each test can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import nacl from 'tweetnacl';
import { respondToHello } from '@fedclr/protocol';
import type { AgentMessage, ErrorMessage, UpdateMessage } from '@fedclr/protocol';
import { startAgent, type AgentHandle, type AgentOptions } from '../src/agent.js';
import { createFakeTrainer } from '../src/fake-trainer.js';
import { checkRoundPolicy, POLICY_DEFAULTS, POLICY_FILE, resolvePolicy } from '../src/policy.js';
import { COORDINATOR, COORDINATOR_KEY, FakeNetwork, roundStart, CONFIG, type FakeConnection } from './fake-coordinator.js';

const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'attack-test' } });
const tmp = () => mkdtempSync(join(tmpdir(), 'fedclr-attack-'));
/** Plain rounds accepted: the signature attacks below are refused by verification alone. */
const PLAIN_OK = { requireSecure: false, minCohort: 1 };
const QUIET_MS = 300;

interface Run {
  agent: AgentHandle;
  net: FakeNetwork;
  c: FakeConnection;
  refused: { type: string; code: string | undefined }[];
}

async function connected(options: Partial<AgentOptions> = {}): Promise<Run> {
  const net = new FakeNetwork();
  const agent = await startAgent({
    coordinatorUrl: 'https://coordinator.test',
    stateDir: tmp(),
    agentId: 'target-agent',
    trainer: createFakeTrainer({ seed: 'a', exampleCount: 11, scale: 0.1, delayMs: 5 }),
    connector: net.connector,
    logger,
    reconnect: { initialDelayMs: 5, maxDelayMs: 10 },
    coordinatorKey: COORDINATOR_KEY,
    policy: PLAIN_OK,
    ...options,
  });
  const refused: Run['refused'] = [];
  agent.events.on('message-refused', (r) => refused.push({ type: r.type, code: (r.error as { code?: string }).code }));
  const c = await net.connection(0);
  await c.handshake();
  return { agent, net, c, refused };
}

const isUpdate = (roundId: number) => (m: AgentMessage) => m.type === 'update' && m.roundId === roundId;

/** The plain update of `roundId` if the agent sends one within `ms`. */
async function uploaded(c: FakeConnection, roundId: number, ms = QUIET_MS): Promise<UpdateMessage | undefined> {
  try {
    return (await c.next('update', isUpdate(roundId), ms)) as UpdateMessage;
  } catch {
    return undefined;
  }
}

/** The agent refused the attack and the connection goes on: a genuine round right after it is trained. */
async function assertRefusedAndAlive(r: Run, roundId: number, code: string): Promise<void> {
  assert.equal(await uploaded(r.c, roundId), undefined, `round ${roundId} must not be trained`);
  assert.ok(r.refused.some((x) => x.code === code), `expected ${code}; refused: ${JSON.stringify(r.refused)}`);
  r.c.deliver(roundStart(roundId + 100));
  assert.ok((await uploaded(r.c, roundId + 100, 5000)) !== undefined, 'the connection goes on: a genuine round is trained');
  assert.equal(r.agent.state() === 'stopped', false);
}

/** The weakened agent fell for it: a plain update of its raw delta went out. */
async function assertFellFor(r: Run, roundId: number): Promise<void> {
  const u = await uploaded(r.c, roundId, 5000);
  assert.ok(u !== undefined, `the weakened agent uploads round ${roundId}`);
  assert.equal(u.exampleCount, 11, 'a plain update: the raw delta and the example count');
}

// ---- forged or replayed messages: refused by verification ------------------------------------

test('attack: unsigned downgrade round-start (aggregation plain) -> refused; weakened agent (no verification) uploads its raw update', async () => {
  const attack = (c: FakeConnection): void => c.deliverRaw(roundStart(1, { aggregation: 'plain' }));
  const r = await connected();
  try {
    attack(r.c);
    await assertRefusedAndAlive(r, 1, 'FEDCLR_AGENT_MESSAGE_UNSIGNED');
  } finally {
    await r.agent.close();
  }
  const w = await connected({ insecureSkipVerification: true });
  try {
    attack(w.c);
    await assertFellFor(w, 1);
  } finally {
    await w.agent.close();
  }
});

test('attack: an edited signed round-start (secure -> plain) -> refused; weakened agent uploads', async () => {
  const attack = (c: FakeConnection): void => {
    const genuine = c.sign(roundStart(2, { aggregation: 'secure' }));
    c.deliverRaw({ ...genuine, config: { ...genuine.config, aggregation: 'plain' } });
  };
  const r = await connected();
  try {
    attack(r.c);
    await assertRefusedAndAlive(r, 2, 'FEDCLR_AGENT_MESSAGE_BAD_SIGNATURE');
  } finally {
    await r.agent.close();
  }
  const w = await connected({ insecureSkipVerification: true });
  try {
    attack(w.c);
    await assertFellFor(w, 2);
  } finally {
    await w.agent.close();
  }
});

test('attack: a round-start correctly signed by another key -> refused; weakened agent uploads', async () => {
  const rogue = nacl.sign.keyPair();
  const attack = (c: FakeConnection): void => c.deliverRaw(c.sign(roundStart(3), rogue));
  const r = await connected();
  try {
    attack(r.c);
    await assertRefusedAndAlive(r, 3, 'FEDCLR_AGENT_MESSAGE_BAD_SIGNATURE');
  } finally {
    await r.agent.close();
  }
  const w = await connected({ insecureSkipVerification: true });
  try {
    attack(w.c);
    await assertFellFor(w, 3);
  } finally {
    await w.agent.close();
  }
});

test('attack: a round-start replayed from an earlier connection (another nonce and session) -> refused; weakened agent uploads', async () => {
  const attack = async (r: Run): Promise<void> => {
    const captured = r.c.sign(roundStart(4)); // genuinely signed, for connection 0
    r.c.drop();
    const c1 = await r.net.connection(1);
    await c1.handshake();
    r.c = c1;
    c1.deliverRaw(captured);
  };
  const r = await connected();
  try {
    await attack(r);
    await assertRefusedAndAlive(r, 4, 'FEDCLR_AGENT_MESSAGE_BAD_SIGNATURE');
  } finally {
    await r.agent.close();
  }
  const w = await connected({ insecureSkipVerification: true });
  try {
    await attack(w);
    await assertFellFor(w, 4);
  } finally {
    await w.agent.close();
  }
});

test('attack: a round-start replayed within the connection (an older round again) -> refused; weakened agent retrains it', async () => {
  const attack = async (r: Run): Promise<void> => {
    const first = r.c.sign(roundStart(5));
    r.c.deliverRaw(first);
    await r.c.next('update', isUpdate(5), 5000);
    r.c.sent.length = 0;
    r.c.deliverRaw(first);
  };
  const r = await connected();
  try {
    await attack(r);
    await assertRefusedAndAlive(r, 5, 'FEDCLR_AGENT_MESSAGE_REPLAYED');
  } finally {
    await r.agent.close();
  }
  const w = await connected({ insecureSkipVerification: true });
  try {
    await attack(w);
    await assertFellFor(w, 5);
  } finally {
    await w.agent.close();
  }
});

test('attack: a round-start signed for another agent (re-addressed) -> refused; weakened agent uploads', async () => {
  const attack = (c: FakeConnection): void => {
    // Same key, same session and nonce: only the addressee differs.
    c.deliverRaw(c.sign(roundStart(6), COORDINATOR, { ...c.binding, agentId: 'other-agent' }));
  };
  const r = await connected();
  try {
    attack(r.c);
    await assertRefusedAndAlive(r, 6, 'FEDCLR_AGENT_MESSAGE_BAD_SIGNATURE');
  } finally {
    await r.agent.close();
  }
  const w = await connected({ insecureSkipVerification: true });
  try {
    attack(w.c);
    await assertFellFor(w, 6);
  } finally {
    await w.agent.close();
  }
});

test('attack: an unsigned shutdown -> refused, the agent keeps working; weakened agent stops', async () => {
  const attack = (c: FakeConnection): void => c.deliverRaw({ type: 'shutdown', reason: 'stopping' });
  const r = await connected();
  try {
    attack(r.c);
    await new Promise((res) => setTimeout(res, 50));
    assert.ok(r.refused.some((x) => x.type === 'shutdown' && x.code === 'FEDCLR_AGENT_MESSAGE_UNSIGNED'));
    assert.equal(r.c.connected, true, 'still connected');
    r.c.deliver(roundStart(7));
    assert.ok((await uploaded(r.c, 7, 5000)) !== undefined, 'still training');
    // A genuine shutdown still works.
    r.c.deliver({ type: 'shutdown', reason: 'stopping' });
    assert.equal((await r.agent.done).reason, 'stopping');
  } finally {
    await r.agent.close();
  }
  const w = await connected({ insecureSkipVerification: true });
  try {
    attack(w.c);
    assert.equal((await w.agent.done).reason, 'stopping', 'the weakened agent obeys the forged shutdown');
  } finally {
    await w.agent.close();
  }
});

test('attack: an unsigned round-end "aborted" mid-training -> ignored, the update goes out; weakened agent drops its work', async () => {
  const slow = { trainer: createFakeTrainer({ seed: 'a', exampleCount: 11, scale: 0.1, delayMs: 300 }) };
  const attack = (c: FakeConnection): void => {
    c.deliver(roundStart(9));
    c.deliverRaw({ type: 'round-end', roundId: 9, outcome: 'aborted', reason: 'forged abort' });
  };
  const r = await connected(slow);
  try {
    attack(r.c);
    assert.ok((await uploaded(r.c, 9, 5000)) !== undefined, 'training went on');
    assert.ok(r.refused.some((x) => x.type === 'round-end' && x.code === 'FEDCLR_AGENT_MESSAGE_UNSIGNED'));
  } finally {
    await r.agent.close();
  }
  const w = await connected({ ...slow, insecureSkipVerification: true });
  try {
    attack(w.c);
    assert.equal(await uploaded(w.c, 9, 800), undefined, 'the weakened agent aborted its training');
  } finally {
    await w.agent.close();
  }
});

test('attack: a forged (necessarily unsigned) reject after the welcome -> the agent reconnects instead of stopping; weakened agent stops', async () => {
  const attack = (c: FakeConnection): void => c.deliverRaw({ type: 'reject', reason: 'not-enrolled', message: 'forged', protocolVersion: '2.0' });
  const r = await connected();
  try {
    attack(r.c);
    const c1 = await r.net.connection(1);
    await c1.handshake();
    c1.deliver(roundStart(8));
    assert.ok((await uploaded(c1, 8, 5000)) !== undefined, 'back in business on a new connection');
  } finally {
    await r.agent.close();
  }
  const w = await connected({ insecureSkipVerification: true });
  try {
    attack(w.c);
    assert.equal((await w.agent.done).reason, 'rejected', 'the weakened agent gives up for good');
  } finally {
    await w.agent.close();
  }
});

test('attack: an impostor welcome (another coordinator key than the pinned one) -> no session; with that key pinned it is accepted', async () => {
  const impostor = nacl.sign.keyPair();
  const net = new FakeNetwork(impostor);
  const refused: string[] = [];
  const agent = await startAgent({ coordinatorUrl: 'https://coordinator.test', stateDir: tmp(), trainer: createFakeTrainer(), connector: net.connector, logger, coordinatorKey: COORDINATOR_KEY, policy: PLAIN_OK });
  agent.events.on('message-refused', (r) => refused.push(String((r.error as { code?: string }).code)));
  try {
    const c = await net.connection(0);
    const hello = await c.open();
    c.deliver(respondToHello(hello, { sessionId: c.sessionId, coordinatorKey: impostor.publicKey, heartbeatIntervalMs: 60_000 }));
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(refused, ['FEDCLR_AGENT_COORDINATOR_KEY_MISMATCH']);
    assert.ok(!c.sent.some((m) => m.type === 'ready'), 'no ready: the impostor gets no session');
  } finally {
    await agent.close();
  }
  // Control: the same script with the impostor's key pinned is a normal session.
  const net2 = new FakeNetwork(impostor);
  const a2 = await startAgent({ coordinatorUrl: 'https://coordinator.test', stateDir: tmp(), trainer: createFakeTrainer(), connector: net2.connector, logger, coordinatorKey: impostor.publicKey, policy: PLAIN_OK });
  try {
    await (await net2.connection(0)).handshake();
  } finally {
    await a2.close();
  }
});

// ---- a malicious (validly signing) coordinator: refused by the agent's policy ------------------

interface PolicyCase {
  readonly name: string;
  readonly policy: AgentOptions['policy'];
  readonly weakened: AgentOptions['policy'];
  readonly config: Partial<typeof CONFIG>;
  readonly rule: RegExp;
}

const POLICY_CASES: PolicyCase[] = [
  { name: 'aggregation plain (default policy: secure only)', policy: { minCohort: 1 }, weakened: { minCohort: 1, requireSecure: false }, config: { aggregation: 'plain' }, rule: /require-secure/ },
  { name: 'dp removed (--min-noise-multiplier 1)', policy: { ...PLAIN_OK, minNoiseMultiplier: 1 }, weakened: PLAIN_OK, config: {}, rule: /min-noise-multiplier.*configures no differential privacy/ },
  {
    name: 'noise below policy (0.3 < 1)',
    policy: { ...PLAIN_OK, minNoiseMultiplier: 1 },
    weakened: PLAIN_OK,
    config: { dp: { noiseMultiplier: 0.3, noise: 'coordinator' } },
    rule: /min-noise-multiplier.*0\.3.*at least 1/,
  },
  { name: 'cohort below policy (3 < 5, the default)', policy: { requireSecure: false }, weakened: PLAIN_OK, config: { cohortSize: 3 }, rule: /min-cohort.*3 agent\(s\).*at least 5/ },
  {
    name: "DP with the agents' noise in a plain round (each visible update would carry 1/sqrt(n_min) of it)",
    policy: PLAIN_OK,
    weakened: undefined,
    config: { dp: { noiseMultiplier: 1, noise: 'agents' } },
    rule: /dp-noise.*'agents' in a plain round/,
  },
  {
    name: 'DP with coordinator noise in a secure round (the coordinator would hold the noiseless sum)',
    policy: PLAIN_OK,
    weakened: undefined,
    config: { aggregation: 'secure', dp: { noiseMultiplier: 1, noise: 'coordinator' } },
    rule: /dp-noise.*'coordinator' in a secure round/,
  },
  {
    name: 'central DP (plain, coordinator noise) with the default policy (secure only)',
    policy: { minCohort: 1 },
    weakened: PLAIN_OK,
    config: { dp: { noiseMultiplier: 1, noise: 'coordinator' } },
    rule: /require-secure/,
  },
];

for (const pc of POLICY_CASES) {
  test(`attack (signed by the coordinator): ${pc.name} -> refused with FEDCLR_AGENT_POLICY_REFUSED, reported; ${pc.weakened === undefined ? 'always refused' : 'a lax policy trains it'}`, async () => {
    const roundId = 20;
    const r = await connected({ policy: pc.policy });
    try {
      r.c.deliver(roundStart(roundId, pc.config));
      const e = (await r.c.next('error', (m) => m.type === 'error' && m.roundId === roundId)) as ErrorMessage;
      assert.equal(e.code, 'FEDCLR_AGENT_POLICY_REFUSED');
      assert.match(e.message, pc.rule);
      assert.equal(await uploaded(r.c, roundId), undefined, 'nothing trained or uploaded');
    } finally {
      await r.agent.close();
    }
    if (pc.weakened === undefined) return;
    const w = await connected({ policy: pc.weakened });
    try {
      w.c.deliver(roundStart(roundId, pc.config));
      await assertFellFor(w, roundId);
    } finally {
      await w.agent.close();
    }
  });
}

test('attack (signed): dp on with clipNorm 0 -> refused by the protocol schema (not even a weakened agent trains it); clipNorm 1 is trained', async () => {
  const config = { dp: { noiseMultiplier: 1, noise: 'coordinator' as const }, clipNorm: 0 };
  // No agent-side switch can let this through: the protocol validator refuses the message.
  const w = await connected({ insecureSkipVerification: true, policy: PLAIN_OK });
  try {
    w.c.deliver(roundStart(30, config));
    assert.equal(await uploaded(w.c, 30), undefined);
    // The same round with a clip norm is trained: the test can fail.
    w.c.deliver(roundStart(31, { ...config, clipNorm: 1 }));
    assert.ok((await uploaded(w.c, 31, 5000)) !== undefined);
  } finally {
    await w.agent.close();
  }
  // And the policy itself refuses it, for callers that bypass the validator.
  assert.equal(checkRoundPolicy({ ...POLICY_DEFAULTS, requireSecure: false }, { ...CONFIG, ...config })?.rule, 'dp-clip-norm');
});

// ---- trust and policy configuration ------------------------------------------------------------

test('no coordinator key and no trust on first use: startAgent refuses, saying how to get the key', async () => {
  await assert.rejects(
    startAgent({ coordinatorUrl: 'https://coordinator.test', stateDir: tmp(), trainer: createFakeTrainer() }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FEDCLR_AGENT_COORDINATOR_KEY_REQUIRED');
      assert.match(err.message, /--coordinator-key KEY.*GET \/api\/status.*--trust-on-first-use/);
      return true;
    },
  );
  await assert.rejects(startAgent({ coordinatorUrl: 'https://x', stateDir: tmp(), trainer: createFakeTrainer(), coordinatorKey: 'not-a-key' }), /coordinatorKey/);
});

test('trust on first use: the first welcome key is remembered (0600); a later connection with another key is refused', async () => {
  const stateDir = tmp();
  const first = new FakeNetwork(COORDINATOR);
  const a = await startAgent({ coordinatorUrl: 'https://coordinator.test', stateDir, trainer: createFakeTrainer(), connector: first.connector, logger, trustOnFirstUse: true, policy: PLAIN_OK });
  try {
    await (await first.connection(0)).handshake();
  } finally {
    await a.close();
  }
  await new Promise((res) => setTimeout(res, 50));
  const file = join(stateDir, 'coordinator-keys.json');
  assert.equal(JSON.parse(readFileSync(file, 'utf8'))['https://coordinator.test'], COORDINATOR_KEY);
  assert.equal(statSync(file).mode & 0o777, 0o600);

  const other = nacl.sign.keyPair();
  const second = new FakeNetwork(other);
  const refused: string[] = [];
  const b = await startAgent({ coordinatorUrl: 'https://coordinator.test', stateDir, trainer: createFakeTrainer(), connector: second.connector, logger, trustOnFirstUse: true, policy: PLAIN_OK });
  b.events.on('message-refused', (r) => refused.push(String((r.error as { code?: string }).code)));
  try {
    const c = await second.connection(0);
    const hello = await c.open();
    c.deliver(respondToHello(hello, { sessionId: c.sessionId, coordinatorKey: other.publicKey, heartbeatIntervalMs: 60_000 }));
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(refused, ['FEDCLR_AGENT_COORDINATOR_KEY_MISMATCH']);
    assert.ok(!c.sent.some((m) => m.type === 'ready'));
  } finally {
    await b.close();
  }
});

test('policy persistence: set, restart without flags, still applied; later flags override and are saved (0600)', async () => {
  const stateDir = tmp();
  const net = new FakeNetwork();
  const set = { requireSecure: false, minCohort: 7, minNoiseMultiplier: 0.5, requireSampling: false };
  const a = await startAgent({ coordinatorUrl: 'https://coordinator.test', stateDir, trainer: createFakeTrainer(), connector: net.connector, logger, coordinatorKey: COORDINATOR_KEY, policy: set });
  assert.deepEqual(a.policy, set);
  await a.close();
  const file = join(stateDir, POLICY_FILE);
  assert.equal(statSync(file).mode & 0o777, 0o600);

  // Restart with no policy option: the stored one applies to rounds.
  const net2 = new FakeNetwork();
  const b = await startAgent({ coordinatorUrl: 'https://coordinator.test', stateDir, trainer: createFakeTrainer(), connector: net2.connector, logger, coordinatorKey: COORDINATOR_KEY });
  try {
    assert.deepEqual(b.policy, set);
    const c = await net2.connection(0);
    await c.handshake();
    c.deliver(roundStart(1, { cohortSize: 6, dp: { noiseMultiplier: 0.5, noise: 'coordinator' } }));
    const e = (await c.next('error', (m) => m.type === 'error' && m.roundId === 1)) as ErrorMessage;
    assert.match(e.message, /min-cohort.*at least 7/);
    c.deliver(roundStart(2, { cohortSize: 7, dp: { noiseMultiplier: 0.5, noise: 'coordinator' } }));
    assert.ok((await uploaded(c, 2, 5000)) !== undefined, 'a compliant round is trained');
  } finally {
    await b.close();
  }
  // A later flag overrides one field and is saved; the others stay.
  const { policy, saved } = await resolvePolicy(stateDir, { minCohort: 3 });
  assert.equal(saved, true);
  assert.deepEqual(policy, { ...set, minCohort: 3 });
  assert.deepEqual((await resolvePolicy(stateDir)).policy, { ...set, minCohort: 3 });
  assert.equal((await resolvePolicy(stateDir)).saved, false, 'unchanged: not rewritten');
  assert.equal(statSync(file).mode & 0o777, 0o600);
});

test('policy: defaults are secure-only, cohort >= 5, any noise; bad values are refused naming the flag', async () => {
  const { policy } = await resolvePolicy(tmp());
  assert.deepEqual(policy, { requireSecure: true, minCohort: 5, minNoiseMultiplier: 0, requireSampling: false });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ minCohort: -1 }, /--min-cohort.*integer from 1.*-1/],
    [{ minCohort: 2.5 }, /--min-cohort.*integer.*2\.5/],
    [{ minCohort: 0 }, /--min-cohort/],
    [{ minNoiseMultiplier: -0.1 }, /--min-noise-multiplier.*from 0.*-0\.1/],
    [{ minNoiseMultiplier: Number.NaN }, /--min-noise-multiplier/],
    [{ requireSecure: 'yes' }, /--allow-plain \/ --require-secure/],
    [{ requireSampling: 1 }, /--require-sampling \/ --allow-coordinator-sampling/],
  ];
  for (const [p, re] of bad) {
    await assert.rejects(
      startAgent({ coordinatorUrl: 'https://x', stateDir: tmp(), trainer: createFakeTrainer(), coordinatorKey: COORDINATOR_KEY, policy: p as AgentOptions['policy'] }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'FEDCLR_AGENT_POLICY_INVALID');
        assert.match(err.message, re);
        return true;
      },
    );
  }
  // A corrupt stored policy names its file.
  const dir = tmp();
  writeFileSync(join(dir, POLICY_FILE), JSON.stringify({ version: 1, requireSecure: true, minCohort: -3, minNoiseMultiplier: 0 }));
  await assert.rejects(resolvePolicy(dir), /--min-cohort \(in .*policy\.json\)/);
});

test('coordinator signatures made with node:crypto verify with tweetnacl (byte-compatible keys and signatures)', async () => {
  const r = await connected();
  try {
    const signed = r.c.sign(roundStart(40));
    const { coordinatorSigningPayload } = await import('@fedclr/protocol');
    assert.ok(nacl.sign.detached.verify(coordinatorSigningPayload(signed, r.c.binding), signed.sig as Uint8Array, COORDINATOR.publicKey));
  } finally {
    await r.agent.close();
  }
});
