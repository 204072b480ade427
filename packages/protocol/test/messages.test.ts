import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AGENT_TO_COORDINATOR,
  COORDINATOR_TO_AGENT,
  DEFAULT_LIMITS,
  createProtocol,
  isProtocolError,
  parseMessage,
  validateMessage,
  encodeFrame,
  LOSSES,
  type AgentMessage,
  type CoordinatorMessage,
  type RoundConfig,
  type RoundStartMessage,
} from '../src/index.js';
import { assertCode, overTheWire, roundConfig, sampleMessages, sampleTensors } from './helpers.js';

const up = AGENT_TO_COORDINATOR;
const down = COORDINATOR_TO_AGENT;

/** A structurally cloned, mutable copy of a sample message of the given type. */
function agentMsg(type: AgentMessage['type']): Record<string, unknown> {
  const m = sampleMessages().agent.find((x) => x.type === type);
  assert.ok(m);
  return { ...(m as unknown as Record<string, unknown>) };
}
function coordMsg(type: CoordinatorMessage['type']): Record<string, unknown> {
  const m = sampleMessages().coordinator.find((x) => x.type === type);
  assert.ok(m);
  return { ...(m as unknown as Record<string, unknown>) };
}

describe('message round-trips', () => {
  const { agent, coordinator } = sampleMessages();
  const agentTypes = new Set(agent.map((m) => m.type));
  const coordTypes = new Set(coordinator.map((m) => m.type));

  it('covers every message type', () => {
    assert.deepEqual([...agentTypes].sort(), ['error', 'heartbeat', 'hello', 'ready', 'sampling-answer', 'secagg', 'update']);
    assert.deepEqual(
      [...coordTypes].sort(),
      ['reject', 'round-end', 'round-start', 'sampling-invite', 'secagg', 'shutdown', 'update-rejected', 'welcome'],
    );
  });

  for (const msg of agent) {
    it(`agent -> coordinator: ${msg.type}${'sig' in msg ? ' (signed)' : ''}`, () => {
      const received = overTheWire(msg);
      const parsed = parseMessage(up, received);
      assert.deepEqual(parsed, msg);
      assert.equal(parsed.type, msg.type);
    });
  }
  for (const msg of coordinator) {
    it(`coordinator -> agent: ${msg.type}`, () => {
      const parsed = parseMessage(down, overTheWire(msg));
      assert.deepEqual(parsed, msg);
    });
  }

  it('narrows on the type discriminant', () => {
    const m = parseMessage(up, overTheWire(agentMsg('update')));
    if (m.type !== 'update') assert.fail('expected update');
    assert.equal(m.metrics?.loss, 2.31); // typed access without casts
  });

  it('accepts a hello of a newer minor of the same major', () => {
    assert.equal(parseMessage(up, { ...agentMsg('hello'), protocolVersion: '4.7' }).type, 'hello');
  });
});

describe('envelope errors', () => {
  it('rejects non-objects', () => {
    for (const raw of [null, undefined, 'hello', 42, [], Buffer.from('{}'), new (class Hello {})()]) {
      assertCode(() => parseMessage(up, raw), 'FEDCLR_PROTO_NOT_AN_OBJECT');
    }
  });
  it('rejects a missing or non-string type', () => {
    assertCode(() => parseMessage(up, { agentId: 'x' }), 'FEDCLR_PROTO_MISSING_FIELD', /'type'/);
    assertCode(() => parseMessage(up, { type: 7 }), 'FEDCLR_PROTO_WRONG_TYPE', /'type' must be a string/);
  });
  it('rejects unknown types, listing the accepted ones', () => {
    assertCode(() => parseMessage(up, { type: 'bogus' }), 'FEDCLR_PROTO_UNKNOWN_TYPE', /"bogus".*hello, ready, update/);
  });
  it('rejects a type sent in the wrong direction', () => {
    assertCode(() => parseMessage(up, coordMsg('welcome')), 'FEDCLR_PROTO_WRONG_DIRECTION', /coordinator-to-agent/);
    assertCode(() => parseMessage(down, agentMsg('update')), 'FEDCLR_PROTO_WRONG_DIRECTION');
  });
});

describe('field validation', () => {
  it('rejects an unknown top-level field, naming it and the allowed fields', () => {
    const err = assertCode(
      () => parseMessage(up, { ...agentMsg('heartbeat'), cpu: 0.5 }),
      'FEDCLR_PROTO_UNKNOWN_FIELD',
      /'heartbeat' message: unknown field 'cpu'; allowed fields here: type, sentAt, state/,
    );
    assert.equal((err as { statusCode?: number }).statusCode, 400);
  });
  it('rejects unknown nested fields and metric names off-pattern', () => {
    const rs = coordMsg('round-start');
    rs['config'] = { ...roundConfig(), momentum: 0.9 };
    assertCode(() => parseMessage(down, rs), 'FEDCLR_PROTO_UNKNOWN_FIELD', /'config\.momentum'/);
    const up1 = agentMsg('update');
    up1['metrics'] = { loss: 1, extra: { '9lives': 1 } };
    assertCode(() => parseMessage(up, up1), 'FEDCLR_PROTO_UNKNOWN_FIELD', /'metrics\.extra\.9lives'.*keys matching/);
  });
  it('rejects missing required fields', () => {
    const u = agentMsg('update');
    delete u['modelVersion'];
    assertCode(() => parseMessage(up, u), 'FEDCLR_PROTO_MISSING_FIELD', /'update' message: required field 'modelVersion'/);
  });
  it('rejects wrong types', () => {
    assertCode(() => parseMessage(up, { ...agentMsg('update'), roundId: '3' }), 'FEDCLR_PROTO_WRONG_TYPE', /'roundId' must be an integer; got "3"/);
    assertCode(() => parseMessage(up, { ...agentMsg('update'), roundId: 3.5 }), 'FEDCLR_PROTO_WRONG_TYPE', /integer/);
    assertCode(() => parseMessage(up, { ...agentMsg('update'), frame: [1, 2, 3] }), 'FEDCLR_PROTO_WRONG_TYPE', /'frame' must be a Uint8Array/);
    assertCode(() => parseMessage(up, { ...agentMsg('update'), metrics: { loss: NaN } }), 'FEDCLR_PROTO_WRONG_TYPE', /'metrics\.loss' must be a finite number; got NaN/);
    assertCode(() => parseMessage(up, { ...agentMsg('update'), metrics: { loss: Infinity } }), 'FEDCLR_PROTO_WRONG_TYPE');
    assertCode(() => parseMessage(up, { ...agentMsg('error'), fatal: 'yes' }), 'FEDCLR_PROTO_WRONG_TYPE', /boolean/);
  });
  it('rejects out-of-range numbers with the bounds', () => {
    const rs = (c: object) => ({ ...coordMsg('round-start'), config: roundConfig(c) });
    assertCode(() => parseMessage(down, rs({ batchSize: 1 })), 'FEDCLR_PROTO_OUT_OF_RANGE', /'config\.batchSize'.*>= 2/);
    assertCode(() => parseMessage(down, rs({ learningRate: 0 })), 'FEDCLR_PROTO_OUT_OF_RANGE', /> 0/);
    assertCode(() => parseMessage(down, rs({ temperature: -1 })), 'FEDCLR_PROTO_OUT_OF_RANGE');
    assertCode(() => parseMessage(down, rs({ deadlineMs: 10 })), 'FEDCLR_PROTO_OUT_OF_RANGE', /deadlineMs/);
    assertCode(() => parseMessage(up, { ...agentMsg('heartbeat'), progress: 1.5 }), 'FEDCLR_PROTO_OUT_OF_RANGE', /<= 1/);
    assertCode(() => parseMessage(up, { ...agentMsg('update'), exampleCount: 0 }), 'FEDCLR_PROTO_OUT_OF_RANGE');
    assertCode(() => parseMessage(up, { ...agentMsg('update'), roundId: -1 }), 'FEDCLR_PROTO_OUT_OF_RANGE');
  });
  it('checks Poisson sampling fields (3.1): rates in (0, 1], a cohort within the invited agents', () => {
    for (const rate of [0, -0.1, 1.5]) {
      assertCode(() => parseMessage(down, { ...coordMsg('sampling-invite'), rate }), 'FEDCLR_PROTO_OUT_OF_RANGE', /'rate'/);
    }
    assert.equal(parseMessage(down, { ...coordMsg('sampling-invite'), rate: 1 }).type, 'sampling-invite');
    assertCode(() => parseMessage(up, { ...agentMsg('sampling-answer'), volunteer: 1 }), 'FEDCLR_PROTO_WRONG_TYPE', /'volunteer' must be a boolean/);
    const rs = (sampling: object, cohortSize = 3) => ({ ...coordMsg('round-start'), config: roundConfig({ cohortSize, sampling: sampling as { rate: number; invited: number } }) });
    assertCode(() => parseMessage(down, rs({ rate: 0, invited: 12 })), 'FEDCLR_PROTO_OUT_OF_RANGE', /'config\.sampling\.rate'/);
    assertCode(() => parseMessage(down, rs({ rate: 0.5 })), 'FEDCLR_PROTO_MISSING_FIELD', /'config\.sampling\.invited'/);
    assertCode(() => parseMessage(down, rs({ rate: 0.5, invited: 2 })), 'FEDCLR_PROTO_INCONSISTENT', /cohortSize 3 exceeds config\.sampling\.invited 2/);
    assert.equal(parseMessage(down, rs({ rate: 0.5, invited: 3 })).type, 'round-start');
  });
  it('rejects invalid enum values, patterns and fixed sizes', () => {
    const rs = { ...coordMsg('round-start'), config: roundConfig({ optimizer: 'rmsprop' as 'sgd' }) };
    assertCode(() => parseMessage(down, rs), 'FEDCLR_PROTO_INVALID_VALUE', /'config\.optimizer'.*one of "sgd" or "momentum" or "adam"; got "rmsprop"/);
    const agg = { ...coordMsg('round-start'), config: roundConfig({ aggregation: 'homomorphic' as 'plain' }) };
    assertCode(() => parseMessage(down, agg), 'FEDCLR_PROTO_INVALID_VALUE', /aggregation/);
    assertCode(() => parseMessage(up, { ...agentMsg('update'), modelVersion: 'ABC' }), 'FEDCLR_PROTO_INVALID_VALUE', /modelVersion.*\[0-9a-f\]\{64\}/);
    assertCode(() => parseMessage(up, { ...agentMsg('hello'), agentId: '../etc' }), 'FEDCLR_PROTO_INVALID_VALUE', /agentId/);
    assertCode(() => parseMessage(up, { ...agentMsg('hello'), publicKey: Buffer.alloc(31) }), 'FEDCLR_PROTO_INVALID_VALUE', /'publicKey'.*exactly 32 bytes; got Buffer\(31 bytes\)/);
    assertCode(() => parseMessage(up, { ...agentMsg('hello'), publicKey: Buffer.alloc(33) }), 'FEDCLR_PROTO_INVALID_VALUE', /exactly 32 bytes/);
    assertCode(() => parseMessage(up, { ...agentMsg('ready'), sig: Buffer.alloc(63) }), 'FEDCLR_PROTO_INVALID_VALUE', /exactly 64 bytes/);
    assertCode(() => parseMessage(up, { ...agentMsg('hello'), capabilities: ['dp', 'dp'] }), 'FEDCLR_PROTO_INVALID_VALUE', /duplicates/);
    assertCode(() => parseMessage(up, { ...agentMsg('secagg'), to: 'bad address!' }), 'FEDCLR_PROTO_INVALID_VALUE', /'to'.*"@coordinator"/);
  });
  it('hello.token: optional, an opaque token of [A-Za-z0-9._-], at most 256 characters', () => {
    const token = `fedclr-et1.${'A'.repeat(22)}.1800000000000.${'b'.repeat(43)}`;
    assert.equal((parseMessage(up, { ...agentMsg('hello'), token }) as { token?: string }).token, token);
    assert.equal((parseMessage(up, agentMsg('hello')) as { token?: string }).token, undefined);
    assertCode(() => parseMessage(up, { ...agentMsg('hello'), token: 'has space' }), 'FEDCLR_PROTO_INVALID_VALUE', /'token'/);
    assertCode(() => parseMessage(up, { ...agentMsg('hello'), token: '' }), 'FEDCLR_PROTO_INVALID_VALUE', /'token'/);
    assertCode(() => parseMessage(up, { ...agentMsg('hello'), token: 'x'.repeat(257) }), 'FEDCLR_PROTO_PAYLOAD_TOO_LARGE', /'token'.*256 characters/);
    assertCode(() => parseMessage(up, { ...agentMsg('hello'), token: 42 }), 'FEDCLR_PROTO_WRONG_TYPE', /'token'/);
  });
  it('rejects cross-field contradictions', () => {
    const rs = { ...coordMsg('round-start'), config: roundConfig({ clipNorm: 0, dp: { noiseMultiplier: 1, noise: 'agents' } }) };
    assertCode(() => parseMessage(down, rs), 'FEDCLR_PROTO_INCONSISTENT', /clipNorm > 0/);
    assertCode(() => parseMessage(up, { ...agentMsg('secagg'), to: 'edge-01' }), 'FEDCLR_PROTO_INCONSISTENT', /from and to/);
    assertCode(() => parseMessage(down, { ...coordMsg('secagg'), from: '@all', to: 'edge-02' }), 'FEDCLR_PROTO_INCONSISTENT');
  });
  it('DP (3.0): dp is {noiseMultiplier > 0, noise}; the old dp.cohortSize and a missing field are refused by name', () => {
    const rs = (dp: unknown) => ({ ...coordMsg('round-start'), config: { ...roundConfig({ clipNorm: 1 }), dp } });
    const ok = parseMessage(down, rs({ noiseMultiplier: 0.8, noise: 'coordinator' })) as RoundStartMessage;
    assert.deepEqual(ok.config.dp, { noiseMultiplier: 0.8, noise: 'coordinator' });
    assertCode(() => parseMessage(down, rs({})), 'FEDCLR_PROTO_MISSING_FIELD', /'config\.dp\.noiseMultiplier'/);
    assertCode(() => parseMessage(down, rs({ noiseMultiplier: 1 })), 'FEDCLR_PROTO_MISSING_FIELD', /'config\.dp\.noise'/);
    assertCode(() => parseMessage(down, rs({ noiseMultiplier: 1, noise: 'agents', cohortSize: 10 })), 'FEDCLR_PROTO_UNKNOWN_FIELD', /'config\.dp\.cohortSize'/);
    for (const sigma of [0, -1, 1001]) assertCode(() => parseMessage(down, rs({ noiseMultiplier: sigma, noise: 'agents' })), 'FEDCLR_PROTO_OUT_OF_RANGE', /'config\.dp\.noiseMultiplier'/);
    assertCode(() => parseMessage(down, rs({ noiseMultiplier: Number.NaN, noise: 'agents' })), 'FEDCLR_PROTO_WRONG_TYPE', /'config\.dp\.noiseMultiplier'/);
    assertCode(() => parseMessage(down, rs({ noiseMultiplier: 1, noise: 'server' })), 'FEDCLR_PROTO_INVALID_VALUE', /'config\.dp\.noise'/);
  });
  it('names the losses agents train (2.2), with margin and mining exactly for the losses that take them', () => {
    const rs = (c: Partial<RoundConfig>) => ({ ...coordMsg('round-start'), config: roundConfig(c) });
    assert.deepEqual([...LOSSES], ['ntxent', 'dcl', 'moco', 'triplet', 'margin', 'supcon']);
    for (const loss of ['ntxent', 'dcl', 'moco', 'supcon'] as const) assert.equal((parseMessage(down, rs({ loss })) as RoundStartMessage).config.loss, loss);
    const triplet = parseMessage(down, rs({ loss: 'triplet', margin: 0.2, mining: 'semi-hard' })) as RoundStartMessage;
    assert.deepEqual([triplet.config.margin, triplet.config.mining], [0.2, 'semi-hard']);
    assert.equal((parseMessage(down, rs({ loss: 'margin', margin: 1 })) as RoundStartMessage).config.margin, 1);
    for (const stale of ['infonce', 'contrastive']) assertCode(() => parseMessage(down, rs({ loss: stale as 'ntxent' })), 'FEDCLR_PROTO_INVALID_VALUE', /'config\.loss'/);
    assertCode(() => parseMessage(down, rs({ loss: 'triplet', mining: 'hard' })), 'FEDCLR_PROTO_INCONSISTENT', /config\.loss 'triplet' needs config\.margin/);
    assertCode(() => parseMessage(down, rs({ loss: 'triplet', margin: 0.2 })), 'FEDCLR_PROTO_INCONSISTENT', /needs config\.mining/);
    assertCode(() => parseMessage(down, rs({ margin: 0.2 })), 'FEDCLR_PROTO_INCONSISTENT', /config\.margin goes only with config\.loss triplet or margin, not 'ntxent'/);
    assertCode(() => parseMessage(down, rs({ loss: 'margin', margin: 1, mining: 'all' })), 'FEDCLR_PROTO_INCONSISTENT', /config\.mining goes only with config\.loss triplet/);
    assertCode(() => parseMessage(down, rs({ loss: 'margin', margin: 4.5 })), 'FEDCLR_PROTO_OUT_OF_RANGE', /'config\.margin'/);
    assertCode(() => parseMessage(down, rs({ loss: 'triplet', margin: 0.2, mining: 'easy' as 'all' })), 'FEDCLR_PROTO_INVALID_VALUE', /'config\.mining'/);
  });
  it('carries a training recipe in the round config and checks every field of it', () => {
    const recipe = {
      model: { encoder: 'convnet-s', widths: [32, 64, 256], head: { hidden: 256, out: 128 }, input: { height: 28, width: 28, channels: 1 } },
      augment: { viewSize: 20, cropMin: 0.4, strength: 0.5 },
      weightDecay: 0,
    };
    const rs = (r: unknown) => ({ ...coordMsg('round-start'), config: { ...roundConfig(), recipe: r } });
    const parsed = parseMessage(down, rs(recipe));
    assert.ok(parsed.type === 'round-start');
    assert.deepEqual(parsed.config.recipe, recipe);
    assertCode(() => parseMessage(down, rs({ ...recipe, augment: { ...recipe.augment, cropMin: 0 } })), 'FEDCLR_PROTO_OUT_OF_RANGE', /'config\.recipe\.augment\.cropMin'.*> 0/);
    assertCode(() => parseMessage(down, rs({ ...recipe, model: { ...recipe.model, widths: [] } })), 'FEDCLR_PROTO_INVALID_VALUE', /'config\.recipe\.model\.widths'.*at least 1/);
    assertCode(() => parseMessage(down, rs({ ...recipe, crop: 0.4 })), 'FEDCLR_PROTO_UNKNOWN_FIELD', /'config\.recipe\.crop'/);
    assertCode(() => parseMessage(down, rs({ model: recipe.model, weightDecay: 0 })), 'FEDCLR_PROTO_MISSING_FIELD', /'config\.recipe\.augment'/);
  });
  it("carries loss 'moco' and the recipe's moco block, in range", () => {
    const recipe = {
      model: { encoder: 'convnet-s', widths: [32, 64, 256], head: { hidden: 256, out: 128 }, input: { height: 28, width: 28, channels: 1 } },
      augment: { viewSize: 20, cropMin: 0.4, strength: 0.5 },
      weightDecay: 0,
      moco: { momentum: 0.99, queueSize: 4096 },
    };
    const rs = (r: unknown) => ({ ...coordMsg('round-start'), config: { ...roundConfig(), loss: 'moco', recipe: r } });
    const parsed = parseMessage(down, rs(recipe));
    assert.ok(parsed.type === 'round-start');
    assert.equal(parsed.config.loss, 'moco');
    assert.deepEqual(parsed.config.recipe?.moco, { momentum: 0.99, queueSize: 4096 });
    assertCode(() => parseMessage(down, rs({ ...recipe, moco: { momentum: 1, queueSize: 4096 } })), 'FEDCLR_PROTO_OUT_OF_RANGE', /'config\.recipe\.moco\.momentum'/);
    assertCode(() => parseMessage(down, rs({ ...recipe, moco: { momentum: 0.99, queueSize: 1 << 20 } })), 'FEDCLR_PROTO_OUT_OF_RANGE', /'config\.recipe\.moco\.queueSize'/);
    assertCode(() => parseMessage(down, rs({ ...recipe, moco: { momentum: 0.99 } })), 'FEDCLR_PROTO_MISSING_FIELD', /'config\.recipe\.moco\.queueSize'/);
  });
  it('treats __proto__ and constructor keys from JSON as unknown fields', () => {
    assertCode(() => parseMessage(up, JSON.parse('{"type":"ready","__proto__":{"admin":true}}')), 'FEDCLR_PROTO_UNKNOWN_FIELD', /'__proto__'/);
    assertCode(() => parseMessage(up, JSON.parse('{"type":"ready","constructor":1}')), 'FEDCLR_PROTO_UNKNOWN_FIELD', /'constructor'/);
  });
  it('validateMessage returns the error instead of throwing', () => {
    const bad = validateMessage(up, { type: 'ready', extra: 1 });
    assert.equal(bad.ok, false);
    if (!bad.ok) {
      assert.ok(isProtocolError(bad.error, 'FEDCLR_PROTO_UNKNOWN_FIELD'));
      assert.match(bad.error.message, /'extra'/);
    }
    const good = validateMessage(up, { type: 'ready' });
    assert.deepEqual(good, { ok: true, message: { type: 'ready' } });
  });
});

describe('hello version gate', () => {
  it('rejects another major before looking at the fields', () => {
    const v5 = { ...agentMsg('hello'), protocolVersion: '5.0', someV5Field: true };
    const err = assertCode(() => parseMessage(up, v5), 'FEDCLR_PROTO_VERSION_INCOMPATIBLE', /5\.0 is incompatible with local version 4\.0/);
    assert.equal((err as { statusCode?: number }).statusCode, 426);
  });
  it('rejects malformed versions', () => {
    for (const v of ['1', '1.0.0', 'v1.0', '01.0', '', 1]) {
      assertCode(() => parseMessage(up, { ...agentMsg('hello'), protocolVersion: v }), 'FEDCLR_PROTO_VERSION_MALFORMED');
    }
    assertCode(() => parseMessage(up, { type: 'hello' }), 'FEDCLR_PROTO_VERSION_MALFORMED', /undefined/);
  });
});

describe('size limits', () => {
  const small = createProtocol({ limits: { maxFrameBytes: 4096, maxSecaggPayloadBytes: 64, maxTextLength: 32, maxCapabilities: 2 } });

  it('rejects an oversize frame attachment with 413 and the limit', () => {
    const big = encodeFrame([{ name: 'w', shape: [2048], dtype: 'float32', data: new Float32Array(2048) }]);
    const msg = { ...agentMsg('update'), frame: big };
    assert.equal(parseMessage(up, msg).type, 'update'); // fine under the default limits
    const err = assertCode(
      () => small.parseMessage(up, msg),
      'FEDCLR_PROTO_PAYLOAD_TOO_LARGE',
      /'update' message: field 'frame' exceeds its size limit of 4096 bytes; got 8320 bytes/,
    );
    assert.equal((err as { statusCode?: number }).statusCode, 413);
    const rs = { ...coordMsg('round-start'), weights: big };
    assertCode(() => small.parseMessage(down, rs), 'FEDCLR_PROTO_PAYLOAD_TOO_LARGE', /'weights'/);
  });
  it('rejects oversize secagg payloads, texts and lists', () => {
    assertCode(() => small.parseMessage(up, { ...agentMsg('secagg'), payload: Buffer.alloc(65) }), 'FEDCLR_PROTO_PAYLOAD_TOO_LARGE', /'payload'.*64 bytes; got 65 bytes/);
    assertCode(() => small.parseMessage(up, { ...agentMsg('error'), message: 'x'.repeat(33) }), 'FEDCLR_PROTO_PAYLOAD_TOO_LARGE', /32 characters/);
    assertCode(() => small.parseMessage(up, { ...agentMsg('hello'), capabilities: ['a', 'b', 'c'] }), 'FEDCLR_PROTO_PAYLOAD_TOO_LARGE', /2 items/);
    assertCode(
      () => parseMessage(up, { ...agentMsg('secagg'), payload: Buffer.alloc(DEFAULT_LIMITS.maxSecaggPayloadBytes + 1) }),
      'FEDCLR_PROTO_PAYLOAD_TOO_LARGE',
    );
  });
  it('rejects invalid limits', () => {
    assertCode(() => createProtocol({ limits: { maxFrameBytes: 0 } }), 'FEDCLR_PROTO_INVALID_LIMITS', /maxFrameBytes/);
    assertCode(() => createProtocol({ limits: { maxFrameBytes: 1.5 } }), 'FEDCLR_PROTO_INVALID_LIMITS');
    assertCode(() => createProtocol({ limits: { maxFrames: 3 } as never }), 'FEDCLR_PROTO_INVALID_LIMITS', /unknown limit/);
    assertCode(() => createProtocol({ limits: { maxFrameBytes: 1024, maxManifestBytes: 2048 } }), 'FEDCLR_PROTO_INVALID_LIMITS');
  });
  it('exposes the limits and the schemas it was built with', () => {
    assert.equal(small.limits.maxFrameBytes, 4096);
    assert.equal(small.limits.maxTensors, DEFAULT_LIMITS.maxTensors);
    assert.equal(small.schemas.agentToCoordinator.update.properties.frame.maxByteLength, 4096);
    assert.equal(sampleTensors().length, 4);
  });
});
