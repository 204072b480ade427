// Refusals: tampered, unsigned, replayed, mis-addressed and out-of-stage messages, and a lying
// coordinator (inconsistent dropout announcement, altered relays, weakened parameters).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SERVER_ID,
  ErrorCodes,
  SecAggAgent,
  signEnvelope,
  type AdvertiseMessage,
  type AgentMessage,
  type KeysMessage,
  type ServerMessage,
  type SetupMessage,
  type SharesMessage,
  type UnmaskMessage,
  type UnmaskResponseMessage,
} from '../src/index.js';
import { deliver, makeFederation, runUntil, submit, type Federation } from './helpers.js';

function flipSignature<T extends { signature: Uint8Array }>(message: T): T {
  const signature = message.signature.slice();
  signature[0] = (signature[0] as number) ^ 1;
  return { ...message, signature };
}

function asServer<M extends ServerMessage>(fed: Federation, message: M, payload: M['payload'], recipients = message.recipients): M {
  return signEnvelope(
    { session: message.session, stage: message.stage, sender: DEFAULT_SERVER_ID, recipients, payload },
    fed.serverIdentity.secretKey,
  ) as M;
}

const first = <T>(list: readonly T[]): T => {
  const item = list[0];
  assert.ok(item !== undefined);
  return item;
};

test('agent refuses a tampered or unsigned setup, then accepts the genuine one', async () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'tamper-setup' });
  const setup = first(fed.server.start()) as SetupMessage;
  const agent = fed.agents.get(first(fed.ids));
  assert.ok(agent);
  await assert.rejects(agent.receive(flipSignature(setup)), { code: ErrorCodes.BAD_SIGNATURE });
  await assert.rejects(agent.receive({ ...setup, signature: new Uint8Array(0) }), { code: ErrorCodes.BAD_SIGNATURE });
  const { signature: _dropped, ...unsigned } = setup;
  await assert.rejects(agent.receive(unsigned), { code: ErrorCodes.MALFORMED });
  // Payload changed under a genuine signature.
  const altered = { ...setup, payload: { config: { ...setup.payload.config, threshold: 2 } } };
  await assert.rejects(agent.receive(altered), { code: ErrorCodes.BAD_SIGNATURE });
  await assert.rejects(agent.receive({ ...setup, protocol: 'other/1' }), { code: ErrorCodes.PROTOCOL_MISMATCH });
  assert.equal(agent.state, 'awaiting-setup', 'refusals from the network leave the state unchanged');
  const out = await agent.receive(setup);
  assert.equal(out.length, 1);
  assert.equal(agent.state, 'awaiting-keys');
});

test('coordinator refuses tampered, unknown-signer, duplicate and out-of-stage agent messages', async () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'tamper-server' });
  const replies = await deliver(fed, fed.server.start());
  const [id, msgs] = first([...replies]);
  const advert = first(msgs) as AdvertiseMessage;
  const maskKey = advert.payload.maskKey.slice();
  maskKey[0] = (maskKey[0] as number) ^ 1;
  await assert.rejects(fed.server.receive({ ...advert, payload: { ...advert.payload, maskKey } }), {
    code: ErrorCodes.BAD_SIGNATURE,
  });
  await assert.rejects(fed.server.receive({ ...advert, sender: 'mallory' }), { code: ErrorCodes.UNKNOWN_SIGNER });
  // A genuine message of a later stage is out of order.
  await assert.rejects(fed.server.receive({ ...advert, stage: 'masked-input' }), { code: ErrorCodes.UNEXPECTED_STAGE });
  await fed.server.receive(advert);
  await assert.rejects(fed.server.receive(advert), { code: ErrorCodes.DUPLICATE_MESSAGE });
  assert.equal(fed.server.status.kind, 'running');
  if (fed.server.status.kind === 'running') assert.ok(!fed.server.status.waitingFor.includes(id));
});

test('messages replayed from another round are refused (session mismatch)', async () => {
  const round1 = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'replay', session: 'replay/round-1' });
  const setup1 = first(round1.server.start()) as SetupMessage;
  const replies1 = await deliver(round1, [setup1]);
  const advert1 = first(first([...replies1.values()])) as AdvertiseMessage;
  const keys1 = first(await submit(round1, replies1)) as KeysMessage;

  // Same identities, next round.
  const round2 = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'replay', session: 'replay/round-2' });
  const setup2 = first(round2.server.start()) as SetupMessage;
  const id = advert1.sender;
  const agent = round2.agents.get(id);
  assert.ok(agent);
  await assert.rejects(agent.receive(setup1), { code: ErrorCodes.SESSION_MISMATCH });
  await assert.rejects(round2.server.receive(advert1), { code: ErrorCodes.SESSION_MISMATCH });
  // Rewriting the session id breaks the signature instead.
  await assert.rejects(round2.server.receive({ ...advert1, session: 'replay/round-2' }), { code: ErrorCodes.BAD_SIGNATURE });
  // An agent that learnt its session from round 2's setup refuses round 1's relay.
  const identity = round2.identities.get(id);
  assert.ok(identity);
  const free = new SecAggAgent({ id, identity, serverPublicKey: round2.serverIdentity.publicKey });
  await free.receive(setup2);
  await assert.rejects(free.receive(keys1), { code: ErrorCodes.SESSION_MISMATCH });
});

test('mis-addressed messages are refused', async () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'misaddressed' });
  const shares = (await runUntil(fed, 'shares')) as SharesMessage[];
  const forA = first(shares);
  const b = fed.agents.get(fed.ids[1] as string);
  assert.notEqual(first(forA.recipients), fed.ids[1]);
  assert.ok(b);
  await assert.rejects(b.receive(forA), { code: ErrorCodes.MISADDRESSED });

  // An agent message addressed to someone else than the coordinator.
  const fed2 = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'misaddressed-2' });
  const setup = first(fed2.server.start()) as SetupMessage;
  const id = first(fed2.ids);
  await fed2.agents.get(id)?.receive(setup);
  const identity = fed2.identities.get(id);
  assert.ok(identity);
  const wrongRecipient = signEnvelope(
    {
      session: fed2.session,
      stage: 'advertise',
      sender: id,
      recipients: ['another-coordinator'],
      payload: { encryptionKey: new Uint8Array(32).fill(9), maskKey: new Uint8Array(32).fill(9) },
    },
    identity.secretKey,
  );
  await assert.rejects(fed2.server.receive(wrongRecipient), { code: ErrorCodes.MISADDRESSED });
});

test('inconsistent dropout announcement: the agent refuses to reveal and says why', async () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'announce' });
  const unmask = first(await runUntil(fed, 'unmask')) as UnmaskMessage;
  const [a, b, c] = fed.ids as [string, string, string];
  const agentA = fed.agents.get(a);
  const agentC = fed.agents.get(c);
  assert.ok(agentA && agentC);
  // b both survived and dropped: revealing would hand out both of b's secrets.
  const both = asServer(fed, unmask, { survivors: unmask.payload.survivors, dropouts: [b] });
  const err = await agentA.receive(both).then(
    () => assert.fail('must refuse'),
    (e: Error & { code: string }) => e,
  );
  assert.equal(err.code, ErrorCodes.INCONSISTENT_ANNOUNCEMENT);
  assert.match(err.message, /both as survivor and as dropout/);
  assert.equal(agentA.state, 'failed');
  // Once failed, even the genuine announcement is refused.
  await assert.rejects(agentA.receive(unmask), { code: ErrorCodes.SESSION_ENDED });

  // Omitting a participant is also inconsistent.
  const omitted = asServer(fed, unmask, {
    survivors: unmask.payload.survivors.filter((id) => id !== b),
    dropouts: [],
  }, unmask.recipients.filter((id) => id !== b));
  await assert.rejects(agentC.receive(omitted), { code: ErrorCodes.INCONSISTENT_ANNOUNCEMENT });
});

test('a second, different unmask request is refused; an identical one is answered the same', async () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'conflict' });
  const unmask = first(await runUntil(fed, 'unmask')) as UnmaskMessage;
  const [a, b] = fed.ids as [string, string];
  const agent = fed.agents.get(a);
  assert.ok(agent);
  const answer = first(await agent.receive(unmask)) as UnmaskResponseMessage;
  assert.ok(answer.payload.seedShares.some((s) => s.owner === b));
  const again = first(await agent.receive(unmask));
  assert.deepEqual(again, answer);
  // Now claim b dropped: that would release b's key share too.
  const survivors = unmask.payload.survivors.filter((id) => id !== b);
  const lie = asServer(fed, unmask, { survivors, dropouts: [b] }, survivors);
  await assert.rejects(agent.receive(lie), { code: ErrorCodes.UNMASK_CONFLICT });
  assert.equal(agent.state, 'failed');
});

test('rerouted or withheld shares are refused', async () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'reroute' });
  const shares = (await runUntil(fed, 'shares')) as SharesMessage[];
  const [forA, forB] = shares as [SharesMessage, SharesMessage];
  const a = first(forA.recipients);
  const agentA = fed.agents.get(a);
  assert.ok(agentA);
  // Give A the ciphertext C made for B, labelled as coming from C: it cannot open it.
  const fromCtoB = forB.payload.shares.find((s) => s.peer !== a);
  assert.ok(fromCtoB);
  const rerouted = forA.payload.shares.map((s) => (s.peer === fromCtoB.peer ? fromCtoB : s));
  await assert.rejects(agentA.receive(asServer(fed, forA, { ...forA.payload, shares: rerouted })), {
    code: ErrorCodes.DECRYPT_FAILED,
  });

  const fed2 = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'withhold' });
  const shares2 = (await runUntil(fed2, 'shares')) as SharesMessage[];
  const msg = first(shares2);
  const agent = fed2.agents.get(first(msg.recipients));
  assert.ok(agent);
  const withheld = asServer(fed2, msg, { ...msg.payload, shares: msg.payload.shares.slice(1) });
  await assert.rejects(agent.receive(withheld), { code: ErrorCodes.RELAY_INCONSISTENT });
});

test('relayed keys that alter a peer advertisement or omit the agent are refused', async () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'keys' });
  const keys = first(await runUntil(fed, 'keys')) as KeysMessage;
  const [a, b] = fed.ids as [string, string];
  const ads = keys.payload.advertisements;
  // The coordinator swaps in its own mask key for b: b's signature no longer verifies.
  const forged = ads.map((ad) =>
    ad.sender === b ? { ...ad, payload: { ...ad.payload, maskKey: new Uint8Array(32).fill(7) } } : ad,
  );
  const agentA = fed.agents.get(a);
  assert.ok(agentA);
  await assert.rejects(agentA.receive(asServer(fed, keys, { advertisements: forged })), { code: ErrorCodes.BAD_SIGNATURE });
  const withoutA = ads.filter((ad) => ad.sender !== a);
  await assert.rejects(agentA.receive(asServer(fed, keys, { advertisements: withoutA })), {
    code: ErrorCodes.RELAY_INCONSISTENT,
  });
});

test('agents refuse weakened parameters even when the coordinator signs them', async () => {
  const fed = makeFederation({ n: 8, dropoutFraction: 0.25, corruptFraction: 0.125, label: 'params' });
  const setup = first(fed.server.start()) as SetupMessage;
  const agent = fed.agents.get(first(fed.ids));
  assert.ok(agent);
  const config = setup.payload.config;
  const weaker = asServer(fed, setup, { config: { ...config, threshold: config.threshold - 1 } });
  await assert.rejects(agent.receive(weaker), { code: ErrorCodes.PARAMS_MISMATCH });
  const wrapping = asServer(fed, setup, { config: { ...config, encoding: { ...config.encoding, scale: config.encoding.scale * 2 } } });
  await assert.rejects(agent.receive(wrapping), { code: ErrorCodes.ENCODING_NO_WRAP });
  const myKey = config.cohort.map((m) => (m.id === agent.id ? { ...m, signingKey: new Uint8Array(32).fill(1) } : m));
  await assert.rejects(agent.receive(asServer(fed, setup, { config: { ...config, cohort: myKey } })), {
    code: ErrorCodes.PARAMS_MISMATCH,
  });
});

test('a late message of a closed stage is refused; the deadline makes its sender a dropout', async () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'late' });
  const replies = await deliver(fed, fed.server.start());
  const late = first([...replies.keys()]);
  const lateReplies = replies.get(late) as AgentMessage[];
  replies.delete(late);
  const keys = await submit(fed, replies);
  assert.equal(keys.length, 0, 'still waiting for one agent');
  const step = await fed.server.stageDeadline();
  assert.equal(first(step.messages).stage, 'keys');
  assert.ok(!first(step.messages).recipients.includes(late));
  await assert.rejects(fed.server.receive(first(lateReplies)), { code: ErrorCodes.UNEXPECTED_STAGE });
});

test('a bad share from a corrupt shareholder aborts with reconstruction-failed, not a wrong sum', async () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0, corruptFraction: 0, label: 'bad-share' });
  const unmask = await runUntil(fed, 'unmask');
  const replies = await deliver(fed, unmask);
  // Every shareholder corrupts its share of one owner's seed (signed by the shareholder itself).
  const victim = first(fed.ids);
  for (const [id, messages] of replies) {
    const response = first(messages) as UnmaskResponseMessage;
    const seedShares = response.payload.seedShares.map((s) =>
      s.owner === victim ? { owner: s.owner, share: s.share.map((x, i) => (i === 0 ? x ^ 0xff : x)) } : s,
    );
    const identity = fed.identities.get(id);
    assert.ok(identity);
    replies.set(id, [
      signEnvelope(
        { session: fed.session, stage: 'unmask-response', sender: id, recipients: response.recipients, payload: { ...response.payload, seedShares } },
        identity.secretKey,
      ),
    ]);
  }
  await submit(fed, replies);
  const status = fed.server.status;
  assert.equal(status.kind, 'aborted');
  if (status.kind === 'aborted') {
    assert.equal(status.abort.reason, 'reconstruction-failed');
    assert.equal(status.abort.agent, victim);
  }
});
