// Shared fixtures for the protocol tests.
import assert from 'node:assert/strict';
import {
  encodeFrame,
  computeModelHash,
  type AgentMessage,
  type CoordinatorMessage,
  type ProtocolErrorCode,
  type RoundConfig,
  type Tensor,
} from '../src/index.js';

/** Asserts that fn throws a catalogued error with `code` (and a message matching `pattern`). */
export function assertCode(fn: () => unknown, code: ProtocolErrorCode, pattern?: RegExp): Error {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof Error, `expected ${code} to be thrown, nothing was`);
  assert.equal((caught as { code?: string }).code, code, `expected ${code}, got ${String((caught as { code?: string }).code)}: ${caught.message}`);
  if (pattern !== undefined) assert.match(caught.message, pattern);
  return caught;
}

/** A tiny model: a conv kernel, a bias, a scalar and an int32 counter. */
export function sampleTensors(): Tensor[] {
  const kernel = new Float32Array(3 * 3 * 1 * 4);
  for (let i = 0; i < kernel.length; i++) kernel[i] = Math.sin(i) * 0.1;
  return [
    { name: 'conv1/kernel', shape: [3, 3, 1, 4], dtype: 'float32', data: kernel },
    { name: 'conv1/bias', shape: [4], dtype: 'float32', data: Float32Array.of(0.5, -0.25, 0, 1e-30) },
    { name: 'scale', shape: [], dtype: 'float32', data: Float32Array.of(2) },
    { name: 'step', shape: [1], dtype: 'int32', data: Int32Array.of(-7) },
  ];
}

export const sampleManifest = () => sampleTensors().map(({ name, shape, dtype }) => ({ name, shape, dtype }));

export const roundConfig = (overrides: Partial<RoundConfig> = {}): RoundConfig => ({
  localEpochs: 2,
  batchSize: 64,
  learningRate: 0.05,
  optimizer: 'sgd',
  loss: 'ntxent',
  temperature: 0.5,
  fedproxMu: 0.01,
  clipNorm: 1,
  deadlineMs: 60_000,
  aggregation: 'plain',
  cohortSize: 10,
  ...overrides,
});

export function sampleMessages(): { agent: AgentMessage[]; coordinator: CoordinatorMessage[]; modelVersion: string } {
  const tensors = sampleTensors();
  const weights = encodeFrame(tensors);
  const modelVersion = computeModelHash(tensors);
  const update = encodeFrame(tensors.map((t) => ({ ...t })));
  const sig = Buffer.alloc(64, 7);
  const agent: AgentMessage[] = [
    {
      type: 'hello',
      protocolVersion: '4.0',
      agentId: 'edge-01',
      publicKey: Buffer.alloc(32, 1),
      nonce: Buffer.alloc(32, 3),
      capabilities: ['secagg', 'dp'],
      exampleCount: 6000,
    },
    { type: 'ready' },
    { type: 'ready', sig },
    {
      type: 'update',
      roundId: 3,
      modelVersion,
      exampleCount: 600,
      metrics: { loss: 2.31, steps: 20, durationMs: 1500, extra: { 'loss.first': 4.1, accuracy: 0.5 } },
      frame: update,
      sig,
    },
    { type: 'error', code: 'OUT_OF_MEMORY', message: 'batch too large', roundId: 3, fatal: false },
    { type: 'heartbeat', sentAt: 1_700_000_000_000, state: 'training', roundId: 3, progress: 0.25 },
    { type: 'secagg', roundId: 3, stage: 'share-keys', from: 'edge-01', to: '@coordinator', payload: Buffer.alloc(100, 9), sig },
    { type: 'sampling-answer', roundId: 3, volunteer: true, sig },
  ];
  const coordinator: CoordinatorMessage[] = [
    {
      type: 'welcome',
      protocolVersion: '4.0',
      sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
      coordinatorId: 'coord-1',
      heartbeatIntervalMs: 5000,
      limits: { maxFrameBytes: 1 << 20, maxSecaggPayloadBytes: 1 << 16 },
      modelVersion,
      coordinatorKey: Buffer.alloc(32, 4),
      sig,
    },
    { type: 'reject', reason: 'not-enrolled', message: 'unknown key', protocolVersion: '4.0' },
    {
      type: 'round-start',
      roundId: 3,
      modelVersion,
      config: roundConfig({ aggregation: 'secure', dp: { noiseMultiplier: 1.1, noise: 'agents' }, seed: 42 }),
      weights,
    },
    { type: 'round-end', roundId: 3, outcome: 'completed', modelVersion, participants: 9, included: true, metrics: { loss: 2.2 } },
    { type: 'round-end', roundId: 4, outcome: 'aborted', reason: 'too few survivors' },
    { type: 'update-rejected', roundId: 3, reason: 'non-finite', code: 'FEDCLR_PROTO_FRAME_NON_FINITE', message: 'NaN' },
    { type: 'shutdown', reason: 'restarting', message: 'upgrade', reconnectAfterMs: 10_000 },
    { type: 'secagg', roundId: 3, stage: 'unmask', from: '@coordinator', to: '@all', payload: Buffer.alloc(0) },
    { type: 'sampling-invite', roundId: 5, rate: 0.25 },
    {
      type: 'round-start',
      roundId: 5,
      modelVersion,
      config: roundConfig({ cohortSize: 3, sampling: { rate: 0.25, invited: 12 } }),
      weights,
    },
  ];
  return { agent, coordinator, modelVersion };
}

/**
 * What socket.io does to a message: binary leaves become attachments, the rest becomes JSON;
 * the receiver gets the JSON parsed back and each attachment as a Buffer, here deliberately at
 * an odd offset inside a larger allocation (as a slice of a socket read buffer would be).
 */
export function overTheWire<T>(message: T): unknown {
  const attachments: Uint8Array[] = [];
  const deconstruct = (v: unknown): unknown => {
    if (v instanceof Uint8Array) {
      attachments.push(v);
      return { _placeholder: true, num: attachments.length - 1 };
    }
    if (Array.isArray(v)) return v.map(deconstruct);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deconstruct(x)]));
    }
    return v;
  };
  const json = JSON.stringify(deconstruct(message));
  const received = attachments.map((a) => {
    const pool = Buffer.alloc(a.length + 3);
    pool.set(a, 1);
    return pool.subarray(1, 1 + a.length);
  });
  return JSON.parse(json, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && (value as { _placeholder?: unknown })._placeholder === true) {
      return received[(value as { num: number }).num];
    }
    return value;
  });
}
