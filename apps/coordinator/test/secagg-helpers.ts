// In-process secure-aggregation agents for tests that drive a SecureAggregationSession (directly,
// or through the RoundEngine) without sockets: real SecAggAgents, the same wire payloads as
// apps/agent's SecureRound (encode({envelope, signer}) in, encode(envelope) out, masked input
// split into a header and a uint32 update frame).
import { createHash } from 'node:crypto';
import { decodeFrame, encodeFrame } from '@fedclr/protocol';
import type { DecodedFrame, SecaggMessage, UpdateMessage } from '@fedclr/protocol';
import {
  SecAggAgent,
  decodeCanonical,
  encodeCanonical,
  encodeFixedPoint,
  generateSigningKeyPair,
  seededRandomWords,
  type AgentMessage,
  type CanonicalValue,
  type SigningKeyPair,
} from '@fedclr/secagg';
import { MASKED_TENSOR, SECAGG_SERVER_ID, type SecureAggregationOptions } from '../src/secure-aggregation.js';

export interface InProcessAgent {
  readonly id: string;
  readonly keys: SigningKeyPair;
  agent: SecAggAgent | undefined;
  readonly delta: Float32Array;
  readonly weight: number;
  /** The encoded (unmasked) fixed-point input, once made: what the coordinator must never hold. */
  input?: Uint32Array;
}

export function makeAgents(ids: readonly string[], deltaOf: (i: number) => Float32Array, weightOf: (i: number) => number): Map<string, InProcessAgent> {
  const out = new Map<string, InProcessAgent>();
  ids.forEach((id, i) => out.set(id, { id, keys: generateSigningKeyPair(), agent: undefined, delta: deltaOf(i), weight: weightOf(i) }));
  return out;
}

export function sessionOptions(agents: ReadonlyMap<string, InProcessAgent>, overrides: Partial<SecureAggregationOptions> = {}): SecureAggregationOptions {
  return {
    runId: 'test-run',
    identity: generateSigningKeyPair(),
    publicKeyOf: (id) => agents.get(id)?.keys.publicKey,
    clip: 0.1,
    maxWeight: 1000,
    dropoutFraction: 0.2,
    corruptFraction: 0,
    stageTimeoutMs: 1000,
    maxPayloadBytes: 4 << 20,
    ...overrides,
  };
}

/** What an agent sends back, as protocol messages (secagg, or the masked input as header + update). */
export type Outgoing = { readonly kind: 'secagg'; readonly message: SecaggMessage } | { readonly kind: 'update'; readonly message: UpdateMessage; readonly frame: DecodedFrame };

function toWire(a: InProcessAgent, roundId: number, modelVersion: string, out: readonly AgentMessage[]): Outgoing[] {
  const result: Outgoing[] = [];
  for (const m of out) {
    if (m.stage === 'masked-input') {
      const { masked, maskedWith } = m.payload as { masked: Uint32Array; maskedWith: Uint8Array };
      const header = encodeCanonical({ ...(m as unknown as Record<string, CanonicalValue>), payload: { maskedWith } });
      result.push({ kind: 'secagg', message: { type: 'secagg', roundId, stage: m.stage, from: a.id, to: SECAGG_SERVER_ID, payload: header } });
      const frame = encodeFrame({ manifest: [{ name: MASKED_TENSOR, shape: [masked.length], dtype: 'uint32' }], data: masked });
      const update: UpdateMessage = { type: 'update', roundId, modelVersion, frame }; // no per-agent metrics in secure rounds
      result.push({ kind: 'update', message: update, frame: decodeFrame(frame) });
      continue;
    }
    result.push({ kind: 'secagg', message: { type: 'secagg', roundId, stage: m.stage, from: a.id, to: SECAGG_SERVER_ID, payload: encodeCanonical(m as unknown as CanonicalValue) } });
  }
  return result;
}

/**
 * Delivers one coordinator `secagg` message to its in-process agent and returns what the agent
 * sends back. The input is set right after setup (training overlapping key setup), encoded with
 * a seeded stochastic rounding.
 */
export async function deliverToAgent(a: InProcessAgent, message: SecaggMessage, modelVersion: string): Promise<Outgoing[]> {
  const wrapper = decodeCanonical(message.payload) as { envelope: Record<string, unknown>; signer: Uint8Array };
  if (a.agent === undefined) {
    a.agent = new SecAggAgent({ id: a.id, identity: a.keys, serverPublicKey: wrapper.signer, serverId: SECAGG_SERVER_ID });
  }
  const agent = a.agent;
  const out = [...agent.receive(wrapper.envelope)];
  if (message.stage === 'setup') {
    const encoding = agent.config?.encoding;
    if (encoding === undefined) throw new Error('no encoding after setup');
    a.input = encodeFixedPoint(a.delta, a.weight, encoding, seededRandomWords(createHash('sha256').update(`${a.id}-sr`).digest()));
    out.push(...agent.setInput(Uint32Array.from(a.input)));
  }
  return toWire(a, message.roundId, modelVersion, out);
}

/** Every typed array reachable from `root` (Maps, Sets, arrays, objects; promises are opaque). */
export function typedArraysIn(root: unknown): ArrayBufferView[] {
  const seen = new Set<unknown>();
  const found: ArrayBufferView[] = [];
  const walk = (value: unknown, depth: number): void => {
    if (value === null || typeof value !== 'object' || seen.has(value) || depth > 14) return;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      found.push(value);
      return;
    }
    const entries: unknown[] =
      value instanceof Map ? [...value.keys(), ...value.values()] : value instanceof Set ? [...value] : Object.values(value);
    for (const v of entries) walk(v, depth + 1);
  };
  walk(root, 0);
  return found;
}

/** True when `view` holds exactly the values of `target` (same length, element by element). */
export function sameValues(view: ArrayBufferView, target: ArrayLike<number>): boolean {
  const v = view as unknown as ArrayLike<number>;
  if (typeof v.length !== 'number' || v.length !== target.length || v.length === 0) return false;
  for (let i = 0; i < v.length; i++) if (v[i] !== target[i]) return false;
  return true;
}
