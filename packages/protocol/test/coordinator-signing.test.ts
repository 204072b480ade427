// Coordinator -> agent signatures: bound to the agent id, the agent's per-connection nonce and
// the session id, with their own domain tag; any edit, re-addressing or replay into another
// connection fails verification. Also: openUpdate refuses per-agent metrics in secure rounds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  canonicalJson,
  coordinatorSigningPayload,
  createConnectionNonce,
  ed25519Sign,
  ed25519Verify,
  isUsableEd25519Key,
  encodeFrame,
  openUpdate,
  parseMessage,
  COORDINATOR_TO_AGENT,
  signCoordinatorMessage,
  signingPayload,
  verifyCoordinatorMessage,
  type ConnectionBinding,
  type RoundStartMessage,
  type UpdateMessage,
} from '../src/index.js';
import { assertCode, overTheWire, roundConfig, sampleMessages, sampleTensors } from './helpers.js';

/** A tweetnacl-layout Ed25519 key pair (seed || public key) made with node:crypto. */
function keyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const d = Buffer.from(jwk.d as string, 'base64url');
  const x = Buffer.from(jwk.x as string, 'base64url');
  return { publicKey: new Uint8Array(x), secretKey: new Uint8Array(Buffer.concat([d, x])) };
}

const coordinator = keyPair();
const binding: ConnectionBinding = { agentId: 'edge-01', nonce: new Uint8Array(32).fill(9), sessionId: 'S'.repeat(22) };

function roundStart(): RoundStartMessage {
  const m = sampleMessages().coordinator.find((x) => x.type === 'round-start');
  assert.ok(m?.type === 'round-start');
  const { sig: _sig, ...unsigned } = m;
  return unsigned;
}

describe('coordinator signatures', () => {
  it('sign then verify; the signature survives the wire (socket.io Buffers)', () => {
    const signed = signCoordinatorMessage(roundStart(), binding, coordinator.secretKey);
    assert.equal(verifyCoordinatorMessage(signed, binding, coordinator.publicKey), undefined);
    const received = parseMessage(COORDINATOR_TO_AGENT, overTheWire(signed));
    assert.ok(received.type === 'round-start');
    assert.equal(verifyCoordinatorMessage(received, binding, coordinator.publicKey), undefined);
  });

  it('an unsigned message is "unsigned"; one signed by another key is "bad-signature"', () => {
    assert.equal(verifyCoordinatorMessage(roundStart(), binding, coordinator.publicKey), 'unsigned');
    const forged = signCoordinatorMessage(roundStart(), binding, keyPair().secretKey);
    assert.equal(verifyCoordinatorMessage(forged, binding, coordinator.publicKey), 'bad-signature');
  });

  it('an edit (aggregation plain, dp removed, clipNorm 0, cohort size) breaks the signature', () => {
    const signed = signCoordinatorMessage(roundStart(), binding, coordinator.secretKey);
    const { dp: _dp, ...noDp } = signed.config;
    const edits: RoundStartMessage[] = [
      { ...signed, config: { ...signed.config, aggregation: 'plain' } },
      { ...signed, config: noDp },
      { ...signed, config: { ...signed.config, clipNorm: 0 } },
      { ...signed, config: { ...signed.config, cohortSize: 100 } },
      { ...signed, roundId: signed.roundId + 1 },
    ];
    for (const e of edits) assert.equal(verifyCoordinatorMessage(e, binding, coordinator.publicKey), 'bad-signature');
    const weights = Buffer.from(signed.weights);
    weights[weights.length - 1] = (weights[weights.length - 1] as number) ^ 1;
    assert.equal(verifyCoordinatorMessage({ ...signed, weights }, binding, coordinator.publicKey), 'bad-signature');
  });

  it('is bound to the agent, the connection nonce and the session: re-addressed or replayed messages fail', () => {
    const signed = signCoordinatorMessage({ type: 'shutdown', reason: 'stopping' }, binding, coordinator.secretKey);
    assert.equal(verifyCoordinatorMessage(signed, binding, coordinator.publicKey), undefined);
    assert.equal(verifyCoordinatorMessage(signed, { ...binding, agentId: 'edge-02' }, coordinator.publicKey), 'bad-signature');
    assert.equal(verifyCoordinatorMessage(signed, { ...binding, nonce: createConnectionNonce() }, coordinator.publicKey), 'bad-signature');
    assert.equal(verifyCoordinatorMessage(signed, { ...binding, sessionId: 'T'.repeat(22) }, coordinator.publicKey), 'bad-signature');
  });

  it('has its own domain: an agent-direction signature never verifies as the coordinator', () => {
    const ready = { type: 'ready' } as const;
    const agentSig = ed25519Sign(signingPayload(ready, binding.sessionId), coordinator.secretKey);
    const p = coordinatorSigningPayload({ type: 'shutdown', reason: 'stopping' }, binding);
    assert.ok(p.toString('utf8').startsWith(`fedclr-coordinator-sig-v1\0edge-01\0${'09'.repeat(32)}\0${'S'.repeat(22)}\0{`));
    assert.ok(!ed25519Verify(p, agentSig, coordinator.publicKey));
  });

  it('a precomputed canonical JSON (one message to a whole cohort) gives the same payload', () => {
    const m = roundStart();
    assert.deepEqual(coordinatorSigningPayload(m, binding, canonicalJson(m)), coordinatorSigningPayload(m, binding));
    const other = { ...binding, agentId: 'edge-02' };
    assert.equal(verifyCoordinatorMessage(signCoordinatorMessage(m, other, coordinator.secretKey, canonicalJson(m)), other, coordinator.publicKey), undefined);
  });

  it('ed25519Verify is false, not a throw, for malformed keys and signatures', () => {
    assert.equal(ed25519Verify(Buffer.from('x'), new Uint8Array(64), new Uint8Array(31)), false);
    assert.equal(ed25519Verify(Buffer.from('x'), new Uint8Array(63), coordinator.publicKey), false);
    // The all-zero key is a small-order point: OpenSSL would accept an all-zero signature under it.
    assert.equal(ed25519Verify(Buffer.from('x'), new Uint8Array(64), new Uint8Array(32)), false);
    assert.equal(isUsableEd25519Key(new Uint8Array(32)), false);
    assert.equal(isUsableEd25519Key(coordinator.publicKey), true);
  });

  it('connection nonces are fresh 32-byte values', () => {
    const a = createConnectionNonce();
    assert.equal(a.length, 32);
    assert.notDeepEqual(a, createConnectionNonce());
  });
});

describe('side channel: secure updates carry no per-agent metrics', () => {
  const frame = encodeFrame(sampleTensors());
  const round = { roundId: 3, modelVersion: 'a'.repeat(64), config: { aggregation: 'secure' as const } };
  const update = (extra: Partial<UpdateMessage> = {}): UpdateMessage => ({ type: 'update', roundId: 3, modelVersion: 'a'.repeat(64), frame, ...extra });

  it('openUpdate refuses metrics in a secure round and accepts the update without them', () => {
    assert.ok(openUpdate(update(), round).tensors.length > 0);
    assertCode(() => openUpdate(update({ metrics: { loss: 1 } }), round), 'FEDCLR_PROTO_INCONSISTENT', /metrics must be absent/);
  });

  it('plain rounds may still report metrics; the schema makes them optional', () => {
    const plain = { ...round, config: { aggregation: 'plain' as const } };
    assert.ok(openUpdate(update({ exampleCount: 5, metrics: { loss: 1 } }), plain).tensors.length > 0);
    assert.equal(parseMessage('agent-to-coordinator', overTheWire(update())).type, 'update');
  });

  it('round config requires cohortSize', () => {
    const { cohortSize: _c, ...missing } = roundConfig();
    const msg = { ...roundStart(), config: missing };
    assertCode(() => parseMessage(COORDINATOR_TO_AGENT, overTheWire(msg)), 'FEDCLR_PROTO_MISSING_FIELD', /cohortSize/);
  });
});
