// Refusals and misbehaviour: tampered, unsigned, replayed, mis-addressed and out-of-stage
// messages; a lying coordinator (inconsistent survivor views, altered or withheld relays,
// weakened parameters); corrupt agents (bad ciphertexts, false complaints, bad revealed shares,
// out-of-range inputs) that are detected, recorded and survived or cleanly aborted on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SERVER_ID,
  ErrorCodes,
  SecAggAgent,
  SecAggServer,
  applyMasks,
  boxBefore,
  combineShares,
  decodeCanonical,
  deriveFixedPoint,
  encodeCanonical,
  maskNonce,
  neighbourKeysStatement,
  pairwiseMaskKey,
  pairwiseSign,
  runInProcess,
  selfMaskKey,
  signEnvelope,
  verifyDetached,
  type MaskTerm,
  type MaskedInputMessage,
  type ParticipantsMessage,
  type AdvertiseMessage,
  type EncryptedShare,
  type AgentMessage,
  type AggregationResult,
  type CheckMessage,
  type ConsistencyMessage,
  type KeysMessage,
  type ServerMessage,
  type ServerStatus,
  type SetupMessage,
  type ShareCheckMessage,
  type ShareKeysMessage,
  type SharesMessage,
  type UnmaskMessage,
  type UnmaskResponseMessage,
} from '../src/index.js';
import { boxOpen, boxSeal, generateBoxKeyPair, signDetached } from '../src/crypto.js';
import { shareCommitment, shareStatement } from '../src/masks.js';
import { checkSumRange } from '../src/encoding.js';
import { deliver, makeFederation, plainSum, runUntil, seededBytes, submit, throwsWithCode, type Federation } from './helpers.js';

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

/** The same agent message with a new payload, re-signed by that agent (a corrupt agent). */
function asAgent<M extends AgentMessage>(fed: Federation, message: M, payload: M['payload']): M {
  const identity = fed.identities.get(message.sender);
  assert.ok(identity);
  return signEnvelope(
    { session: message.session, stage: message.stage, sender: message.sender, recipients: message.recipients, payload },
    identity.secretKey,
  ) as M;
}

const first = <T>(list: readonly T[] | undefined): T => {
  const item = list?.[0];
  assert.ok(item !== undefined);
  return item;
};

function flipByte(bytes: Uint8Array, at = 0): Uint8Array {
  const out = bytes.slice();
  out[at] = (out[at] as number) ^ 0xff;
  return out;
}

function expectDone(status: ServerStatus): AggregationResult {
  if (status.kind !== 'done') assert.fail(`expected done, got ${status.kind}: ${status.kind === 'aborted' ? status.abort.message : ''}`);
  return status.result;
}

function assertExact(fed: Federation, result: AggregationResult): void {
  assert.deepEqual(result.sum, plainSum(result.survivors.map((id) => fed.input(id)), fed.encoding.length), 'bit-exact sum');
}


/** A corrupt agent signs whatever share it sends (its statement covers the ciphertext). */
function signShare(fed: Federation, from: string, share: EncryptedShare): EncryptedShare {
  const secretKey = (fed.identities.get(from) as { secretKey: Uint8Array }).secretKey;
  return { ...share, signature: signDetached(shareStatement(fed.session, from, share.peer, share), secretKey) };
}

test('agent refuses a tampered or unsigned setup, then accepts the genuine one', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'tamper-setup' });
  const setup = first(fed.server.start()) as SetupMessage;
  const agent = fed.agents.get(first(fed.ids));
  assert.ok(agent);
  throwsWithCode(() => agent.receive(flipSignature(setup)), ErrorCodes.BAD_SIGNATURE);
  throwsWithCode(() => agent.receive({ ...setup, signature: new Uint8Array(0) }), ErrorCodes.BAD_SIGNATURE);
  const { signature: _dropped, ...unsigned } = setup;
  throwsWithCode(() => agent.receive(unsigned), ErrorCodes.MALFORMED);
  // Payload changed under a genuine signature.
  const altered = { ...setup, payload: { config: { ...setup.payload.config, threshold: 2 } } };
  throwsWithCode(() => agent.receive(altered), ErrorCodes.BAD_SIGNATURE);
  throwsWithCode(() => agent.receive({ ...setup, protocol: 'other/1' }), ErrorCodes.PROTOCOL_MISMATCH);
  assert.equal(agent.state, 'awaiting-setup', 'refusals from the network leave the state unchanged');
  const out = agent.receive(setup);
  assert.equal(out.length, 1);
  assert.equal(first(out).stage, 'advertise');
  assert.equal(agent.state, 'awaiting-keys');
});

test('coordinator refuses tampered, unknown-signer, duplicate and out-of-stage agent messages', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'tamper-server' });
  const replies = deliver(fed, fed.server.start());
  const [id, msgs] = first([...replies]);
  const advert = first(msgs) as AdvertiseMessage;
  const maskKey = advert.payload.maskKey.slice();
  maskKey[0] = (maskKey[0] as number) ^ 1;
  throwsWithCode(() => fed.server.receive({ ...advert, payload: { ...advert.payload, maskKey } }), ErrorCodes.BAD_SIGNATURE);
  throwsWithCode(() => fed.server.receive({ ...advert, sender: 'mallory' }), ErrorCodes.UNKNOWN_SIGNER);
  // A genuine message of a later stage is out of order.
  throwsWithCode(() => fed.server.receive({ ...advert, stage: 'masked-input' }), ErrorCodes.UNEXPECTED_STAGE);
  // Signed, but without one inbox key per neighbour.
  throwsWithCode(() => fed.server.receive(asAgent(fed, advert, { ...advert.payload, inboxKeys: advert.payload.inboxKeys.slice(1) })), ErrorCodes.MALFORMED);
  fed.server.receive(advert);
  throwsWithCode(() => fed.server.receive(advert), ErrorCodes.DUPLICATE_MESSAGE);
  assert.equal(fed.server.status.kind, 'running');
  if (fed.server.status.kind === 'running') assert.ok(!fed.server.status.waitingFor.includes(id));
});

test('messages replayed from another round are refused (session mismatch)', () => {
  const round1 = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'replay', session: 'replay/round-1' });
  const setup1 = first(round1.server.start()) as SetupMessage;
  const replies1 = deliver(round1, [setup1]);
  const advert1 = first(first([...replies1.values()])) as AdvertiseMessage;
  const keys1 = first(submit(round1, replies1)) as KeysMessage;

  // Same identities, next round.
  const round2 = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'replay', session: 'replay/round-2' });
  const setup2 = first(round2.server.start()) as SetupMessage;
  const id = first(keys1.recipients);
  const agent = round2.agents.get(id);
  assert.ok(agent);
  throwsWithCode(() => agent.receive(setup1), ErrorCodes.SESSION_MISMATCH);
  throwsWithCode(() => round2.server.receive(advert1), ErrorCodes.SESSION_MISMATCH);
  // Rewriting the session id breaks the signature instead.
  throwsWithCode(() => round2.server.receive({ ...advert1, session: 'replay/round-2' }), ErrorCodes.BAD_SIGNATURE);
  // An agent that learnt its session from round 2's setup refuses round 1's relay.
  const identity = round2.identities.get(id);
  assert.ok(identity);
  const free = new SecAggAgent({ id, identity, serverPublicKey: round2.serverIdentity.publicKey });
  free.receive(setup2);
  throwsWithCode(() => free.receive(keys1), ErrorCodes.SESSION_MISMATCH);
});

test('mis-addressed messages are refused', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'misaddressed' });
  const shares = runUntil(fed, 'shares') as SharesMessage[];
  const forA = first(shares);
  const b = fed.agents.get(fed.ids[1] as string);
  assert.deepEqual(forA.recipients, [fed.ids[0]], 'shares are addressed one recipient per message');
  assert.ok(b);
  throwsWithCode(() => b.receive(forA), ErrorCodes.MISADDRESSED);
  assert.equal(b.state, 'awaiting-shares');
  // The same payload addressed to several agents at once: the coordinator signed it, so the
  // agent fails (one message per recipient is the rule).
  const agentA = fed.agents.get(fed.ids[0] as string);
  assert.ok(agentA);
  throwsWithCode(() => agentA.receive(asServer(fed, forA, forA.payload, [fed.ids[0] as string, fed.ids[1] as string])), ErrorCodes.RELAY_INCONSISTENT);
  assert.equal(agentA.state, 'failed');

  // An agent message addressed to someone else than the coordinator.
  const fed2 = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'misaddressed-2' });
  const setup = first(fed2.server.start()) as SetupMessage;
  const id = first(fed2.ids);
  fed2.agents.get(id)?.receive(setup);
  const identity = fed2.identities.get(id);
  assert.ok(identity);
  const wrongRecipient = signEnvelope(
    {
      session: fed2.session,
      stage: 'advertise',
      sender: id,
      recipients: ['another-coordinator'],
      payload: { encryptionKey: new Uint8Array(32).fill(9), maskKey: new Uint8Array(32).fill(9), inboxKeys: [] },
    },
    identity.secretKey,
  );
  throwsWithCode(() => fed2.server.receive(wrongRecipient), ErrorCodes.MISADDRESSED);
});

test('inconsistent survivor announcement in the check stage: the agent refuses and says why', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'announce' });
  const checks = runUntil(fed, 'check') as CheckMessage[];
  const [a, b, c] = fed.ids as [string, string, string];
  const forA = first(checks.filter((m) => m.recipients[0] === a));
  const forC = first(checks.filter((m) => m.recipients[0] === c));
  const agentA = fed.agents.get(a);
  const agentC = fed.agents.get(c);
  assert.ok(agentA && agentC);
  // b both survived and dropped: revealing would hand out both of b's secrets.
  const both = asServer(fed, forA, { ...forA.payload, dropouts: [b] });
  const err = throwsWithCode(() => agentA.receive(both), ErrorCodes.INCONSISTENT_ANNOUNCEMENT);
  assert.match(err.message, /both as survivor and as dropout/);
  assert.equal(agentA.state, 'failed');
  // Once failed, even the genuine announcement is refused.
  throwsWithCode(() => agentA.receive(forA), ErrorCodes.SESSION_ENDED);

  // Omitting a participant breaks the partition rule.
  const omitted = asServer(fed, forC, { ...forC.payload, survivors: forC.payload.survivors.filter((id) => id !== b), dropouts: [] });
  const err2 = throwsWithCode(() => agentC.receive(omitted), ErrorCodes.CONSISTENCY);
  assert.match(err2.message, /rule partition/);
  assert.equal(agentC.state, 'failed');
});

test('check: a missing masked-with signature of a surviving neighbour is refused (participants-split)', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'check-sigs' });
  const check = first(runUntil(fed, 'check')) as CheckMessage;
  const agent = fed.agents.get(first(check.recipients));
  assert.ok(agent);
  const err = throwsWithCode(() => agent.receive(asServer(fed, check, { ...check.payload, maskedWith: check.payload.maskedWith.slice(1) })), ErrorCodes.CONSISTENCY);
  assert.match(err.message, /rule participants-split/);
  assert.equal(agent.state, 'failed');
});

test('unmask: the view must be the one the agent signed, with t neighbour signatures over it', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'unmask-view' });
  const unmask = runUntil(fed, 'unmask') as UnmaskMessage[];
  const t = fed.server.params.threshold;
  const [forA, forB] = unmask as [UnmaskMessage, UnmaskMessage];
  const agentA = fed.agents.get(first(forA.recipients));
  const agentB = fed.agents.get(first(forB.recipients));
  assert.ok(agentA && agentB);
  assert.equal(agentA.state, 'awaiting-unmask');
  // Another (internally consistent) view than the one it signed in the consistency stage.
  const last = forA.payload.survivors[forA.payload.survivors.length - 1] as string;
  const other = asServer(fed, forA, { ...forA.payload, survivors: forA.payload.survivors.filter((id) => id !== last), dropouts: [last] });
  assert.match(throwsWithCode(() => agentA.receive(other), ErrorCodes.CONSISTENCY).message, /rule second-view/);
  assert.equal(agentA.state, 'failed');
  // The right view, but only t - 1 neighbours' consistency signatures.
  assert.ok(forB.payload.signatures.length >= t);
  const few = asServer(fed, forB, { ...forB.payload, signatures: forB.payload.signatures.slice(0, t - 1) });
  assert.match(throwsWithCode(() => agentB.receive(few), ErrorCodes.CONSISTENCY).message, /rule consistency-signatures/);
  assert.equal(agentB.state, 'failed');
});

test('a second, different unmask request is refused; an identical one is answered the same', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'conflict' });
  const unmask = first(runUntil(fed, 'unmask')) as UnmaskMessage;
  const a = first(unmask.recipients);
  const agent = fed.agents.get(a);
  assert.ok(agent);
  const answer = first(agent.receive(unmask)) as UnmaskResponseMessage;
  const b = first(answer.payload.seedShares).owner;
  assert.notEqual(b, a);
  const again = first(agent.receive(unmask));
  assert.deepEqual(again, answer);
  // Now claim b dropped: that would release b's key share too.
  const survivors = unmask.payload.survivors.filter((id) => id !== b);
  const lie = asServer(fed, unmask, { ...unmask.payload, survivors, dropouts: [b] });
  throwsWithCode(() => agent.receive(lie), ErrorCodes.UNMASK_CONFLICT);
  assert.equal(agent.state, 'failed');
});

test('a second, different check announcement is refused; an identical one is answered the same', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'check-twice' });
  const check = first(runUntil(fed, 'check')) as CheckMessage;
  const agent = fed.agents.get(first(check.recipients));
  assert.ok(agent);
  const answer = agent.receive(check);
  assert.equal(first(answer).stage, 'consistency');
  assert.deepEqual(agent.receive(check), answer);
  const last = check.payload.survivors[check.payload.survivors.length - 1] as string;
  const other = asServer(fed, check, { ...check.payload, survivors: check.payload.survivors.filter((id) => id !== last), dropouts: [last] });
  assert.match(throwsWithCode(() => agent.receive(other), ErrorCodes.CONSISTENCY).message, /rule second-view/);
  assert.equal(agent.state, 'failed');
});

test('coordinator refuses a consistency signature that does not sign the announced view', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'bad-consistency' });
  const replies = deliver(fed, runUntil(fed, 'check'));
  const message = first(first([...replies.values()])) as ConsistencyMessage;
  assert.equal(message.stage, 'consistency');
  throwsWithCode(() => fed.server.receive(asAgent(fed, message, { signature: flipByte(message.payload.signature, 5) })), ErrorCodes.MALFORMED);
  fed.server.receive(message);
});

test('a ciphertext rerouted or garbled by the relay fails the agent without a complaint (no inbox secret leaks); withheld shares fail it too', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'reroute' });
  const adverts = deliver(fed, fed.server.start());
  const shares = submit(fed, deliver(fed, submit(fed, adverts))) as SharesMessage[];
  const [forA, forB] = shares as [SharesMessage, SharesMessage];
  const a = first(forA.recipients);
  const agentA = fed.agents.get(a);
  assert.ok(agentA);
  // Give A the ciphertext C made for B, labelled as coming from C: C's signature names B.
  const fromCtoB = forB.payload.shares.find((s) => s.peer !== a);
  assert.ok(fromCtoB);
  const c = fromCtoB.peer;
  const rerouted = forA.payload.shares.map((s) => (s.peer === c ? fromCtoB : s));
  const error = throwsWithCode(() => agentA.receive(asServer(fed, forA, { ...forA.payload, shares: rerouted })), ErrorCodes.RELAY_INCONSISTENT);
  assert.match(error.message, /do not carry its signature/);
  assert.equal(agentA.state, 'failed', 'the relay tampered: the agent leaves, revealing nothing');

  // A garbled ciphertext (one byte flipped by the relay): the same.
  const agentB = fed.agents.get(first(forB.recipients));
  assert.ok(agentB);
  const garbled = forB.payload.shares.map((s, i) => (i === 0 ? { ...s, ciphertext: flipByte(s.ciphertext, 20) } : s));
  throwsWithCode(() => agentB.receive(asServer(fed, forB, { ...forB.payload, shares: garbled })), ErrorCodes.RELAY_INCONSISTENT);

  const fed2 = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'withhold' });
  const shares2 = runUntil(fed2, 'shares') as SharesMessage[];
  const msg = first(shares2);
  const agent = fed2.agents.get(first(msg.recipients));
  assert.ok(agent);
  const withheld = asServer(fed2, msg, { ...msg.payload, shares: msg.payload.shares.slice(1) });
  throwsWithCode(() => agent.receive(withheld), ErrorCodes.RELAY_INCONSISTENT);
  assert.equal(agent.state, 'failed');
});

test('a corrupt agent sending a bad ciphertext is proven guilty by the complaint, excluded, and the sum is exact', () => {
  const fed = makeFederation({ n: 8, dropoutFraction: 0.25, corruptFraction: 0.125, label: 'bad-ciphertext' });
  const [victim, corrupt] = [fed.ids[2] as string, fed.ids[5] as string];
  const outcome = runInProcess({
    server: fed.server,
    agents: fed.agents,
    input: (id) => fed.input(id),
    tamper: (from, message) => {
      if (from !== corrupt || message.stage !== 'share-keys') return undefined;
      const m = message as ShareKeysMessage;
      const shares = m.payload.shares.map((s) => (s.peer === victim ? signShare(fed, corrupt, { ...s, ciphertext: flipByte(s.ciphertext, 3) }) : s));
      return asAgent(fed, m, { ...m.payload, shares });
    },
  });
  const result = expectDone(outcome.status);
  assert.equal(outcome.failed.size, 0);
  assert.equal(result.misbehaviour.length, 1);
  const entry = first(result.misbehaviour);
  assert.equal(entry.agent, corrupt);
  assert.equal(entry.kind, 'bad-share');
  assert.equal(entry.witness, victim);
  assert.equal(entry.stage, 'share-check');
  assert.deepEqual(fed.server.misbehaviour, result.misbehaviour);
  assert.deepEqual(result.dropouts.shareCheck, [corrupt]);
  assert.deepEqual(result.survivors, fed.ids.filter((id) => id !== corrupt));
  assert.equal(fed.agents.get(corrupt)?.state, 'awaiting-participants', 'it never gets the participants');
  assertExact(fed, result);
});

test('a false complaint is caught (the revealed secret is not the advertised inbox key): the accuser is excluded', () => {
  const fed = makeFederation({ n: 8, dropoutFraction: 0.25, corruptFraction: 0.125, label: 'false-complaint' });
  const [accuser, accused] = [fed.ids[1] as string, fed.ids[6] as string];
  const outcome = runInProcess({
    server: fed.server,
    agents: fed.agents,
    input: (id) => fed.input(id),
    tamper: (from, message) => {
      if (from !== accuser || message.stage !== 'share-check') return undefined;
      const m = message as ShareCheckMessage;
      return asAgent(fed, m, { complaints: [{ peer: accused, inboxSecret: new Uint8Array(32).fill(7), reason: 'made up' }] });
    },
  });
  const result = expectDone(outcome.status);
  assert.equal(result.misbehaviour.length, 1);
  const entry = first(result.misbehaviour);
  assert.equal(entry.agent, accuser);
  assert.equal(entry.kind, 'false-complaint');
  assert.equal(entry.witness, accused);
  assert.deepEqual(result.dropouts.shareCheck, [accuser]);
  assert.ok(result.survivors.includes(accused));
  assert.ok(!result.survivors.includes(accuser));
  assertExact(fed, result);
});

test('a bad revealed share is detected, skipped and recorded against its holder; the sum stays exact', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0, corruptFraction: 0, label: 'bad-share' });
  const { neighbours: k, threshold: t } = fed.server.params;
  assert.ok(k > t, 'one spare share per owner');
  const replies = deliver(fed, runUntil(fed, 'unmask'));
  // One corrupt shareholder alters its share of one owner's seed (signed by the shareholder).
  const victim = first(fed.ids);
  const [holder, messages] = first([...replies].filter(([id]) => id !== victim));
  const response = first(messages) as UnmaskResponseMessage;
  const seedShares = response.payload.seedShares.map((s) => (s.owner === victim ? { ...s, share: flipByte(s.share) } : s));
  replies.set(holder, [asAgent(fed, response, { ...response.payload, seedShares })]);
  submit(fed, replies);
  const result = expectDone(fed.server.status);
  assert.equal(result.misbehaviour.length, 1);
  const entry = first(result.misbehaviour);
  assert.equal(entry.agent, holder);
  assert.equal(entry.kind, 'bad-revealed-share');
  assert.equal(entry.witness, victim);
  assert.equal(entry.stage, 'unmask');
  assert.deepEqual(result.survivors, fed.ids);
  assertExact(fed, result);
});

test('too many bad revealed shares of one owner abort with insufficient-neighbours naming it, not a wrong sum', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0, corruptFraction: 0, label: 'bad-shares' });
  const { neighbours: k, threshold: t } = fed.server.params;
  const replies = deliver(fed, runUntil(fed, 'unmask'));
  const victim = first(fed.ids);
  // k - t + 1 holders lie about the victim's seed share: t - 1 valid shares remain.
  const liars = [...replies.keys()].filter((id) => id !== victim).slice(0, k - t + 1);
  for (const id of liars) {
    const response = first(replies.get(id)) as UnmaskResponseMessage;
    const seedShares = response.payload.seedShares.map((s) => (s.owner === victim ? { ...s, share: flipByte(s.share, 2) } : s));
    replies.set(id, [asAgent(fed, response, { ...response.payload, seedShares })]);
  }
  submit(fed, replies);
  const status = fed.server.status;
  assert.equal(status.kind, 'aborted');
  if (status.kind !== 'aborted') return;
  assert.equal(status.abort.reason, 'insufficient-neighbours');
  assert.equal(status.abort.agent, victim);
  assert.equal(status.abort.stage, 'unmask');
  assert.equal(status.abort.available, t - 1);
  assert.equal(fed.server.result, undefined);
  assert.deepEqual(fed.server.misbehaviour.map((m) => [m.agent, m.kind]), liars.map((id) => [id, 'bad-revealed-share']));
});

test('an owner dealing shares that match its commitments but do not reconstruct aborts with reconstruction-failed naming it', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0, corruptFraction: 0, label: 'inconsistent' });
  const { neighbours: k, threshold: t } = fed.server.params;
  const owner = fed.ids[1] as string;
  // The owner's encryption key pair: the first key its seeded randomness makes (checked below).
  const encryption = generateBoxKeyPair(seededBytes(`inconsistent/${fed.session}/agent-random/${owner}`));
  const adverts = new Map<string, AdvertiseMessage>();
  const outcome = runInProcess({
    server: fed.server,
    agents: fed.agents,
    input: (id) => fed.input(id),
    tamper: (from, message) => {
      if (message.stage === 'advertise') adverts.set(from, message as AdvertiseMessage);
      if (from !== owner || message.stage !== 'share-keys') return undefined;
      assert.deepEqual(encryption.publicKey, adverts.get(owner)?.payload.encryptionKey);
      const m = message as ShareKeysMessage;
      // k - t + 1 holders get a different (but committed) seed share: every t-subset has one.
      const altered = new Set(m.payload.shares.map((s) => s.peer).slice(0, k - t + 1));
      const shares = m.payload.shares.map((s, i) => {
        if (!altered.has(s.peer)) return s;
        const inbox = adverts.get(s.peer)?.payload.inboxKeys.find((e) => e.peer === owner)?.key;
        assert.ok(inbox);
        const key = boxBefore(inbox, encryption.secretKey, s.peer);
        const opened = boxOpen(s.ciphertext, s.nonce, key);
        assert.ok(opened);
        const plain = decodeCanonical(opened) as Record<string, Uint8Array | string>;
        // A different byte per altered share (equal changes could cancel out in the Lagrange
        // sum: for x = 1, 2, 3 all the weights are 1 in GF(2^8)); the x-coordinate stays.
        const seedShare = flipByte(plain.seedShare as Uint8Array, i);
        const seedSalt = plain.seedSalt as Uint8Array;
        const ciphertext = boxSeal(encodeCanonical({ ...plain, seedShare }), s.nonce, key);
        return signShare(fed, owner, { ...s, ciphertext, seedShareCommitment: shareCommitment(fed.session, owner, s.peer, 'seed', seedShare, seedSalt) });
      });
      return asAgent(fed, m, { ...m.payload, shares });
    },
  });
  const status = outcome.status;
  assert.equal(status.kind, 'aborted');
  if (status.kind !== 'aborted') return;
  assert.equal(status.abort.reason, 'reconstruction-failed');
  assert.equal(status.abort.agent, owner);
  assert.equal(status.abort.stage, 'unmask');
  assert.deepEqual(fed.server.misbehaviour.map((m) => [m.agent, m.kind]), [[owner, 'inconsistent-sharing']]);
  assert.equal(fed.server.result, undefined);
});

test('relayed keys that alter a peer advertisement or omit the agent are refused', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'keys' });
  const all = runUntil(fed, 'keys') as KeysMessage[];
  const keys = first(all);
  const a = first(keys.recipients);
  const { own, neighbours } = keys.payload;
  const b = first(neighbours).agent;
  // The coordinator swaps in its own mask key for b: b's signature no longer verifies.
  const forged = neighbours.map((e) => (e.agent === b ? { ...e, maskKey: new Uint8Array(32).fill(7) } : e));
  const agentA = fed.agents.get(a);
  assert.ok(agentA);
  throwsWithCode(() => agentA.receive(asServer(fed, keys, { own, neighbours: forged })), ErrorCodes.BAD_SIGNATURE);
  // b's keys for another agent c, relayed to a as if they were for a: the signature names c.
  const forC = all.find((m) => first(m.recipients) !== a && m.payload.neighbours.some((e) => e.agent === b));
  const rerouted = forC?.payload.neighbours.find((e) => e.agent === b);
  assert.ok(rerouted);
  throwsWithCode(() => agentA.receive(asServer(fed, keys, { own, neighbours: neighbours.map((e) => (e.agent === b ? rerouted : e)) })), ErrorCodes.BAD_SIGNATURE);
  // a's own advertisement altered.
  throwsWithCode(() => agentA.receive(asServer(fed, keys, { own: { ...own, payload: { ...own.payload, maskKey: new Uint8Array(32).fill(7) } }, neighbours })), ErrorCodes.BAD_SIGNATURE);
  const withoutA = { ...own, sender: b };
  throwsWithCode(() => agentA.receive(asServer(fed, keys, { own: withoutA, neighbours })), ErrorCodes.UNKNOWN_SIGNER);
  throwsWithCode(() => agentA.receive(asServer(fed, keys, { neighbours } as unknown as KeysMessage['payload'])), ErrorCodes.RELAY_INCONSISTENT);
  assert.equal(agentA.state, 'failed');
});

test('each agent is relayed O(k) keys: its own advertisement and, per neighbour, only the entry signed for it', () => {
  const fed = makeFederation({ n: 12, dropoutFraction: 0.25, corruptFraction: 0, label: 'keys-size' });
  const keysMessages = runUntil(fed, 'keys') as KeysMessage[];
  const k = fed.server.params.neighbours;
  for (const m of keysMessages) {
    const to = first(m.recipients);
    assert.equal(m.payload.own.sender, to);
    assert.deepEqual(m.payload.neighbours.map((e) => e.agent).sort(), fed.server.graph.neighbours(to).slice().sort());
    assert.equal(m.payload.neighbours.length, k);
    for (const e of m.payload.neighbours) {
      assert.deepEqual(Object.keys(e).sort(), ['agent', 'encryptionKey', 'inboxKey', 'maskKey', 'signature']);
      const ok = verifyDetached(neighbourKeysStatement(fed.session, e.agent, to, e), e.signature, fed.identities.get(e.agent)?.publicKey as Uint8Array);
      assert.ok(ok, `the keys of ${e.agent} for ${to} carry ${e.agent}'s signature`);
    }
  }
});

test('an advertisement whose per-neighbour signature is bad is refused by the coordinator (it costs only its sender)', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'keys-sig' });
  const replies = deliver(fed, fed.server.start());
  const id = first(fed.ids);
  const advert = first(replies.get(id)) as AdvertiseMessage;
  const inboxKeys = advert.payload.inboxKeys.map((e, i) => (i === 0 ? { ...e, signature: flipByte(e.signature) } : e));
  throwsWithCode(() => fed.server.receive(asAgent(fed, advert, { ...advert.payload, inboxKeys })), ErrorCodes.MALFORMED);
  const withoutSignatures = advert.payload.inboxKeys.map(({ peer, key }) => ({ peer, key }));
  throwsWithCode(() => fed.server.receive(asAgent(fed, advert, { ...advert.payload, inboxKeys: withoutSignatures } as unknown as AdvertiseMessage['payload'])), ErrorCodes.MALFORMED);
  fed.server.receive(advert);
});

test('agents refuse weakened parameters even when the coordinator signs them', () => {
  const fed = makeFederation({ n: 8, dropoutFraction: 0.25, corruptFraction: 0.125, label: 'params' });
  const setup = first(fed.server.start()) as SetupMessage;
  const agent = fed.agents.get(first(fed.ids));
  assert.ok(agent);
  const config = setup.payload.config;
  const weaker = asServer(fed, setup, { config: { ...config, threshold: config.threshold - 1 } });
  throwsWithCode(() => agent.receive(weaker), ErrorCodes.PARAMS_MISMATCH);
  const wrapping = asServer(fed, setup, { config: { ...config, encoding: { ...config.encoding, scale: config.encoding.scale * 2 } } });
  throwsWithCode(() => agent.receive(wrapping), ErrorCodes.ENCODING_NO_WRAP);
  const myKey = config.cohort.map((m) => (m.id === agent.id ? { ...m, signingKey: new Uint8Array(32).fill(1) } : m));
  throwsWithCode(() => agent.receive(asServer(fed, setup, { config: { ...config, cohort: myKey } })), ErrorCodes.PARAMS_MISMATCH);
});

test('a late message of a closed stage is refused; the deadline makes its sender a dropout', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'late' });
  const replies = deliver(fed, fed.server.start());
  const late = first([...replies.keys()]);
  const lateReplies = replies.get(late) as AgentMessage[];
  replies.delete(late);
  const keys = submit(fed, replies);
  assert.equal(keys.length, 0, 'still waiting for one agent');
  const step = fed.server.stageDeadline();
  assert.equal(first(step.messages).stage, 'keys');
  assert.ok(step.messages.every((m) => !m.recipients.includes(late)));
  throwsWithCode(() => fed.server.receive(first(lateReplies)), ErrorCodes.UNEXPECTED_STAGE);
});

test('checkSumRange: in range, one coordinate just out, weight too large, weight 0', () => {
  const params = deriveFixedPoint({ dimension: 4, clip: 1, cohortSize: 10, maxWeight: 100 });
  const count = 3;
  const valueBound = count * params.maxValueWord;
  const weightBound = count * params.maxWeightWord;
  const sum = (values: number[], weight: number): Uint32Array => Uint32Array.from([...values.map((v) => v >>> 0), weight]);
  // Exactly at the bounds is in range (count inputs at +clip / -clip and maximal weight).
  assert.equal(checkSumRange(sum([valueBound, -valueBound, 0, 1], weightBound), params, count), undefined);
  assert.equal(checkSumRange(sum([0, 0, 0, 0], 1), params, count), undefined);
  const over = checkSumRange(sum([0, 0, valueBound + 1, 0], 5), params, count);
  assert.match(over ?? '', /coordinate 2/);
  assert.match(checkSumRange(sum([0, -valueBound - 1, 0, 0], 5), params, count) ?? '', /coordinate 1/);
  assert.match(checkSumRange(sum([0, 0, 0, 0], weightBound + 1), params, count) ?? '', /total weight/);
  assert.match(checkSumRange(sum([0, 0, 0, 0], 0), params, count) ?? '', /weight of 3 inputs is 0/);
  // A wrong length is reported, not thrown.
  assert.match(checkSumRange(new Uint32Array(3), params, count) ?? '', /3 words/);
  // The bound scales with the count: what is out for 3 inputs is in for 4.
  assert.equal(checkSumRange(sum([0, 0, valueBound + 1, 0], 5), params, count + 1), undefined);
});

test('an agent masking out-of-range words makes the coordinator abort with sum-out-of-range', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'out-of-range' });
  const corrupt = fed.ids[3] as string;
  const outcome = runInProcess({
    server: fed.server,
    agents: fed.agents,
    // Every value word of the corrupt agent is 0x60000000 (far beyond clip * scale).
    input: (id) => (id === corrupt ? new Uint32Array(fed.encoding.length).fill(0x60000000) : fed.input(id)),
  });
  const status = outcome.status;
  assert.equal(status.kind, 'aborted');
  if (status.kind !== 'aborted') return;
  assert.equal(status.abort.code, ErrorCodes.ABORTED);
  assert.equal(status.abort.reason, 'sum-out-of-range');
  assert.equal(status.abort.stage, 'unmask');
  assert.match(status.abort.message, /coordinate 0 of the sum/);
  assert.equal(fed.server.result, undefined);
  // The same run with honest inputs is in range.
  const honest = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'out-of-range' });
  expectDone(runInProcess({ server: honest.server, agents: honest.agents, input: (id) => honest.input(id) }).status);
});

// A complaint reveals the complainer's inbox secret for the accused, which opens the accused's
// genuine ciphertext that the coordinator holds. If relayed ciphertexts carried no signature of
// their sender, the coordinator itself could garble an honest agent's ciphertexts, collect t
// complaints, decrypt t genuine shares of both of its secrets and unmask its input alone.
function garblingAttack(fed: Federation): { recovered: boolean; refused: number; complaints: number } {
  const t = fed.server.params.threshold;
  const victim = fed.ids[2] as string;
  const adverts = deliver(fed, fed.server.start());
  const keyReplies = deliver(fed, submit(fed, adverts));
  const genuine = first(keyReplies.get(victim)) as ShareKeysMessage;
  const shares = submit(fed, keyReplies) as SharesMessage[];
  // The coordinator garbles the victim's ciphertexts to t of its neighbours.
  const framed = shares.filter((m) => m.recipients[0] !== victim).slice(0, t);
  const complaints = new Map<string, Uint8Array>();
  let refused = 0;
  for (const m of framed) {
    const garbled = m.payload.shares.map((s) => (s.peer === victim ? { ...s, ciphertext: flipByte(s.ciphertext, 1) } : s));
    const holder = first(m.recipients);
    let out: AgentMessage[];
    try {
      out = (fed.agents.get(holder) as SecAggAgent).receive(asServer(fed, m, { ...m.payload, shares: garbled }));
    } catch {
      refused++; // the holder saw the relay was tampered with and stopped: the attack fails
      continue;
    }
    for (const c of (first(out) as ShareCheckMessage).payload.complaints) if (c.peer === victim) complaints.set(holder, c.inboxSecret);
  }
  // The others (victim included) get their genuine shares.
  for (const m of shares.filter((x) => !framed.includes(x))) (fed.agents.get(first(m.recipients)) as SecAggAgent).receive(m);
  // Open the victim's genuine ciphertexts with the revealed inbox secrets.
  const victimAdvert = first(adverts.get(victim)) as AdvertiseMessage;
  const seedShares: Uint8Array[] = [];
  const keyShares: Uint8Array[] = [];
  for (const [holder, inboxSecret] of complaints) {
    const sent = genuine.payload.shares.find((s) => s.peer === holder);
    assert.ok(sent);
    const opened = boxOpen(sent.ciphertext, sent.nonce, boxBefore(victimAdvert.payload.encryptionKey, inboxSecret, victim));
    if (opened === null) continue;
    const plain = decodeCanonical(opened) as { seedShare: Uint8Array; keyShare: Uint8Array };
    seedShares.push(plain.seedShare);
    keyShares.push(plain.keyShare);
  }
  let recovered = false;
  if (seedShares.length >= t) {
    const seed = combineShares(seedShares.slice(0, t));
    const maskSecret = combineShares(keyShares.slice(0, t));
    // Keep everybody among the participants and take the victim's masked input.
    const participants = signEnvelope(
      { session: fed.session, stage: 'participants', sender: DEFAULT_SERVER_ID, recipients: [victim], payload: { participants: [...fed.ids] } },
      fed.serverIdentity.secretKey,
    ) as ParticipantsMessage;
    const masked = (first((fed.agents.get(victim) as SecAggAgent).receive(participants)) as MaskedInputMessage).payload.masked.slice();
    const nonce = maskNonce(fed.session);
    const terms: MaskTerm[] = [{ key: selfMaskKey(seed, fed.session, victim), nonce, sign: -1 }];
    for (const v of fed.server.graph.neighbours(victim)) {
      const peerKey = (first(adverts.get(v)) as AdvertiseMessage).payload.maskKey;
      const key = pairwiseMaskKey(fed.session, victim, victimAdvert.payload.maskKey, maskSecret, v, peerKey);
      terms.push({ key, nonce, sign: pairwiseSign(victim, v) === 1 ? -1 : 1 });
    }
    applyMasks(masked, terms, fed.server.config.prg);
    recovered = masked.every((w, i) => w === fed.input(victim)[i]);
  }
  return { recovered, refused, complaints: complaints.size };
}

/** Takes relayed shares without checking their sender's signature (the behaviour before the fix). */
class UncheckedSharesAgent extends SecAggAgent {
  protected override senderSigned(): boolean {
    return true;
  }
}

test('a coordinator garbling an honest agent\'s ciphertexts cannot collect its shares through complaints', () => {
  const label = 'frame';
  const honest = makeFederation({ n: 5, dropoutFraction: 0, corruptFraction: 0.2, label });
  const attack = garblingAttack(honest);
  assert.ok(!attack.recovered, `the coordinator alone recovered the victim's input from ${attack.complaints} framed complaints`);
  assert.equal(attack.complaints, 0);
  assert.equal(attack.refused, honest.server.params.threshold, 'every framed holder saw the tampering and stopped');

  // Control: agents that do not check the sender's signature complain, and the same script
  // recovers the victim's input from the revealed inbox secrets.
  const weak = makeFederation({ n: 5, dropoutFraction: 0, corruptFraction: 0.2, label });
  for (const id of weak.ids) weak.agents.set(id, new UncheckedSharesAgent(weak.agentOptions(id)));
  const control = garblingAttack(weak);
  assert.ok(control.recovered, `without the check the attack should work (${control.complaints} complaints)`);
});

// A corrupt agent advertising small-order inbox keys would make every neighbour throw WEAK_KEY
// when it encrypts its shares to them (state unchanged, so it never answers share-keys): one
// agent would take the whole round down instead of losing its own place.
function weakKeyRound(fed: Federation): { refused: boolean; failures: Map<string, string>; status: ServerStatus; corrupt: string } {
  const corrupt = fed.ids[4] as string;
  const replies = deliver(fed, fed.server.start());
  const advert = first(replies.get(corrupt)) as AdvertiseMessage;
  replies.delete(corrupt);
  let refused = false;
  try {
    const secretKey = fed.identities.get(corrupt)?.secretKey as Uint8Array;
    const { encryptionKey, maskKey } = advert.payload;
    // Signed by the corrupt agent itself, so only the key check can catch it.
    const inboxKeys = advert.payload.inboxKeys.map((e) => {
      const key = new Uint8Array(32);
      return { peer: e.peer, key, signature: signDetached(neighbourKeysStatement(fed.session, corrupt, e.peer, { encryptionKey, maskKey, inboxKey: key }), secretKey) };
    });
    fed.server.receive(asAgent(fed, advert, { ...advert.payload, inboxKeys }));
  } catch (err) {
    refused = [ErrorCodes.WEAK_KEY, ErrorCodes.MALFORMED].includes((err as { code: string }).code as 'FEDCLR_SECAGG_WEAK_KEY');
  }
  // Run to the end; an agent that throws goes silent (the corrupt one stays silent from here).
  const failures = new Map<string, string>();
  let messages = submit(fed, replies);
  while (fed.server.status.kind === 'running') {
    if (messages.length === 0) {
      messages = fed.server.stageDeadline().messages;
      continue;
    }
    const next: ServerMessage[] = [];
    for (const m of messages) {
      for (const id of m.recipients) {
        const agent = fed.agents.get(id);
        if (agent === undefined || id === corrupt || failures.has(id)) continue;
        try {
          const out = agent.receive(m);
          if (m.stage === 'setup') out.push(...agent.setInput(fed.input(id)));
          for (const reply of out) next.push(...fed.server.receive(reply).messages);
        } catch (err) {
          failures.set(id, (err as { code: string }).code);
        }
      }
    }
    messages = next;
  }
  return { refused, failures, status: fed.server.status, corrupt };
}

/** Accepts any advertised key (the behaviour before the fix). */
class UncheckedKeysServer extends SecAggServer {
  protected override checkAdvertKey(): void {}
}

test('a corrupt agent advertising a small-order key is refused; the round goes on without it', () => {
  const options = { n: 8, dropoutFraction: 0.25, corruptFraction: 0.125, label: 'weak-key' };
  const fed = makeFederation(options);
  const { refused, failures, status, corrupt } = weakKeyRound(fed);
  const summary = `status ${status.kind}${status.kind === 'aborted' ? ` (${status.abort.reason})` : ''}, agents that threw: ${JSON.stringify([...failures])}`;
  assert.ok(refused, `the coordinator accepted small-order inbox keys; ${summary}`);
  assert.equal(failures.size, 0, summary);
  const result = expectDone(status);
  assert.ok(!result.survivors.includes(corrupt));
  assertExact(fed, result);

  // Control: a coordinator that relays the weak keys loses the round to that one agent.
  const weak = weakKeyRound(makeFederation({ ...options, serverClass: UncheckedKeysServer }));
  assert.equal(weak.refused, false);
  assert.ok(weak.status.kind === 'aborted' || weak.failures.size > 0, `without the check the round should break (${weak.status.kind})`);
});
