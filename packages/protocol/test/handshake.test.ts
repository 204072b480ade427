import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AGENT_TO_COORDINATOR,
  COORDINATOR_TO_AGENT,
  PROTOCOL_ERROR_CODES,
  PROTOCOL_VERSION,
  acceptWelcome,
  assertCompatibleVersion,
  computeModelHash,
  createProtocol,
  createSessionId,
  encodeFrame,
  isCompatibleVersion,
  isProtocolError,
  negotiateVersion,
  openRoundStart,
  openUpdate,
  parseMessage,
  parseProtocolVersion,
  rejectForError,
  rejectMessage,
  respondToHello,
  signingPayload,
  updateRejectReasonFor,
  updateRejectedForError,
  type HelloMessage,
  type RoundStartMessage,
  type UpdateMessage,
} from '../src/index.js';
import { assertCode, overTheWire, roundConfig, sampleManifest, sampleMessages, sampleTensors } from './helpers.js';

const hello = (): HelloMessage => ({
  type: 'hello',
  protocolVersion: '1.3',
  agentId: 'edge-07',
  publicKey: Buffer.alloc(32, 2),
  nonce: Buffer.alloc(32, 5),
  capabilities: ['secagg'],
});

describe('versions', () => {
  it('parses, compares and negotiates MAJOR.MINOR', () => {
    assert.deepEqual(parseProtocolVersion('12.34'), { major: 12, minor: 34 });
    assert.equal(PROTOCOL_VERSION, '4.0');
    assert.ok(isCompatibleVersion('1.9', '1.0'));
    assert.ok(!isCompatibleVersion('2.0', '1.0'));
    assert.ok(!isCompatibleVersion('junk', '1.0'));
    assert.equal(negotiateVersion('1.9', '1.2'), '1.2');
    assert.equal(negotiateVersion('1.1', '1.2'), '1.1');
    assertCode(() => negotiateVersion('0.9', '1.0'), 'FEDCLR_PROTO_VERSION_INCOMPATIBLE');
    assertCode(() => assertCompatibleVersion('1.0.1'), 'FEDCLR_PROTO_VERSION_MALFORMED', /'1\.0\.1' is malformed/);
    assertCode(() => createProtocol({ version: 'one' }), 'FEDCLR_PROTO_VERSION_MALFORMED');
  });
});

describe('hello / welcome handshake', () => {
  const coordinator = createProtocol({ version: '1.5' });

  it('welcomes a compatible agent with the negotiated version and the limits', () => {
    const sessionId = createSessionId();
    const parsed = coordinator.parseMessage(AGENT_TO_COORDINATOR, overTheWire(hello()));
    assert.equal(parsed.type, 'hello');
    const reply = respondToHello(parsed as HelloMessage, {
      sessionId,
      coordinatorKey: Buffer.alloc(32, 6),
      heartbeatIntervalMs: 5000,
      coordinatorId: 'coord-a',
      limits: coordinator.limits,
      version: coordinator.version,
    });
    const received = parseMessage(COORDINATOR_TO_AGENT, overTheWire(reply));
    if (received.type !== 'welcome') assert.fail(`expected welcome, got ${received.type}`);
    assert.equal(received.protocolVersion, '1.3');
    assert.equal(received.sessionId, sessionId);
    assert.equal(received.limits.maxFrameBytes, coordinator.limits.maxFrameBytes);
    assert.equal(acceptWelcome(received, '1.3'), received);
  });

  it('rejects an incompatible major with a clear reason the old agent can read', () => {
    const raw = overTheWire({ ...hello(), protocolVersion: '2.1', attestation: 'new in v2' });
    let reply;
    try {
      coordinator.parseMessage(AGENT_TO_COORDINATOR, raw);
      assert.fail('a 2.x hello must not parse');
    } catch (err) {
      assert.ok(isProtocolError(err, 'FEDCLR_PROTO_VERSION_INCOMPATIBLE'));
      reply = rejectForError(err, coordinator.version);
    }
    assert.equal(reply.reason, 'version-incompatible');
    assert.match(reply.message, /2\.1 is incompatible with local version 1\.5/);
    assert.equal(reply.protocolVersion, '1.5');
    const atAgent = parseMessage(COORDINATOR_TO_AGENT, overTheWire(reply));
    assert.equal(atAgent.type, 'reject');
    assertCode(
      () => acceptWelcome(atAgent as typeof reply, '2.1'),
      'FEDCLR_PROTO_VERSION_INCOMPATIBLE',
      /1\.5 is incompatible with local version 2\.1.*upgrade/,
    );
  });

  it('respondToHello refuses an incompatible parsed hello too', () => {
    const reply = respondToHello({ ...hello(), protocolVersion: '5.0' }, { sessionId: createSessionId(), coordinatorKey: Buffer.alloc(32, 6), heartbeatIntervalMs: 1000 });
    assert.equal(reply.type, 'reject');
  });

  it('maps other hello errors to invalid-hello and other rejects to HANDSHAKE_REJECTED', () => {
    let err: unknown;
    try {
      parseMessage(AGENT_TO_COORDINATOR, { ...hello(), protocolVersion: '4.0', publicKey: Buffer.alloc(8) });
    } catch (e) {
      err = e;
    }
    const r = rejectForError(err);
    assert.equal(r.reason, 'invalid-hello');
    assert.match(r.message, /publicKey/);
    assertCode(() => acceptWelcome(rejectMessage('not-enrolled', 'key not enrolled')), 'FEDCLR_PROTO_HANDSHAKE_REJECTED', /'not-enrolled'.*key not enrolled/);
    const welcome = sampleMessages().coordinator[0];
    assert.ok(welcome?.type === 'welcome');
    assertCode(() => acceptWelcome({ ...welcome, protocolVersion: '5.0' }), 'FEDCLR_PROTO_VERSION_INCOMPATIBLE');
  });

  it('session ids are random and valid', () => {
    const a = createSessionId();
    assert.notEqual(a, createSessionId());
    assert.match(a, /^[A-Za-z0-9_-]{22}$/);
  });
});

describe('round checks', () => {
  const tensors = sampleTensors();
  const modelVersion = computeModelHash(tensors);
  const start = (): RoundStartMessage => ({ type: 'round-start', roundId: 5, modelVersion, config: roundConfig(), weights: encodeFrame(tensors) });
  const update = (o: Partial<UpdateMessage> = {}): UpdateMessage => ({
    type: 'update',
    roundId: 5,
    modelVersion,
    exampleCount: 10,
    metrics: { loss: 1 },
    frame: encodeFrame(tensors),
    ...o,
  });
  const round = { roundId: 5, modelVersion, config: { aggregation: 'plain' as const } };

  it('openRoundStart verifies the announced model version against the frame', () => {
    const msg = parseMessage(COORDINATOR_TO_AGENT, overTheWire(start())) as RoundStartMessage;
    const w = openRoundStart(msg, { expected: sampleManifest() });
    assert.equal(w.hash, modelVersion);
    assertCode(() => openRoundStart({ ...msg, modelVersion: 'b'.repeat(64) }), 'FEDCLR_PROTO_HASH_MISMATCH', /model version/);
  });

  it('openUpdate accepts a matching update and rejects each mismatch', () => {
    assert.equal(openUpdate(update(), round, { expected: sampleManifest() }).tensors.length, 4);
    assertCode(() => openUpdate(update({ roundId: 4 }), round), 'FEDCLR_PROTO_ROUND_MISMATCH', /round 4 but the current round is 5/);
    assertCode(() => openUpdate(update({ modelVersion: 'c'.repeat(64) }), round), 'FEDCLR_PROTO_HASH_MISMATCH', /stale model/);
    const { exampleCount: _omit, ...noCount } = update();
    assertCode(() => openUpdate(noCount, round), 'FEDCLR_PROTO_INCONSISTENT', /exampleCount is required/);
    assertCode(() => openUpdate(update(), { ...round, config: { aggregation: 'secure' } }), 'FEDCLR_PROTO_INCONSISTENT', /must be absent/);
    assertCode(
      () => openUpdate(update(), round, { expected: sampleManifest().slice(1) }),
      'FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH',
    );
    const bad = sampleTensors();
    (bad[1]?.data as Float32Array)[0] = Infinity;
    assertCode(() => openUpdate(update({ frame: encodeFrame(bad) }), round), 'FEDCLR_PROTO_FRAME_NON_FINITE', /'conv1\/bias'/);
  });

  it('turns errors into update-rejected messages that validate', () => {
    const bad = sampleTensors();
    (bad[1]?.data as Float32Array)[0] = NaN;
    let err: unknown;
    try {
      openUpdate(update({ frame: encodeFrame(bad) }), round);
    } catch (e) {
      err = e;
    }
    const msg = updateRejectedForError(5, err);
    assert.equal(msg.reason, 'non-finite');
    assert.equal(msg.code, 'FEDCLR_PROTO_FRAME_NON_FINITE');
    assert.deepEqual(parseMessage(COORDINATOR_TO_AGENT, msg), msg);
    assert.equal(updateRejectReasonFor(new Error('x')), 'invalid-message');
    const wire = updateRejectedForError(5, 'plain string');
    assert.equal(wire.code, undefined);
    assert.deepEqual(parseMessage(COORDINATOR_TO_AGENT, wire), wire);
  });
});

describe('signing payload', () => {
  const msg = (): UpdateMessage => {
    const m = sampleMessages().agent.find((x) => x.type === 'update');
    assert.ok(m?.type === 'update');
    return m;
  };

  it('is canonical: key order and the sig field do not matter', () => {
    const a = msg();
    const { sig: _sig, ...unsigned } = a;
    const reordered = Object.fromEntries(Object.entries(unsigned).reverse()) as UpdateMessage;
    const p = signingPayload(a, 'S'.repeat(22));
    assert.deepEqual(signingPayload(reordered, 'S'.repeat(22)), p);
    assert.ok(p.toString('utf8').startsWith(`fedclr-sig-v1\0${'S'.repeat(22)}\0{"exampleCount":600,"frame":{"$bytes":`));
  });

  it('binds the session, the binary content and every field', () => {
    const a = msg();
    const p = signingPayload(a, 'S'.repeat(22));
    assert.notDeepEqual(signingPayload(a, 'T'.repeat(22)), p);
    const frame = Buffer.from(a.frame);
    frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 1;
    assert.notDeepEqual(signingPayload({ ...a, frame }, 'S'.repeat(22)), p);
    assert.notDeepEqual(signingPayload({ ...a, metrics: { ...a.metrics, loss: 2.32 } }, 'S'.repeat(22)), p);
  });

  it('refuses non-JSON values', () => {
    assertCode(() => signingPayload({ ...msg(), metrics: { loss: NaN } }, 'S'.repeat(22)), 'FEDCLR_PROTO_INVALID_VALUE');
  });
});

describe('error catalog', () => {
  it('has unique FEDCLR_PROTO_* codes', () => {
    const all = Object.values(PROTOCOL_ERROR_CODES).flat();
    assert.equal(new Set(all).size, all.length);
    for (const c of all) assert.match(c, /^FEDCLR_PROTO_[A-Z_]+$/);
  });
});
