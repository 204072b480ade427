// Shared fixtures: a seeded federation (coordinator + agents), seeded inputs, plaintext sums.
import { createHash } from 'node:crypto';
import {
  SecAggAgent,
  SecAggServer,
  deriveDpEncoding,
  deriveFixedPoint,
  deriveSecAggParams,
  encodeFixedPoint,
  generateSigningKeyPair,
  seededRandomWords,
  type FixedPointParams,
  type PrgAlgorithm,
  type RandomBytes,
  type RandomWords,
  type SigningKeyPair,
  type AgentMessage,
  type AgentOptions,
  type DpNoiseSpec,
  type ServerMessage,
} from '../src/index.js';

export function keyFrom(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(label).digest());
}

/** Deterministic RandomWords from a label. */
export function seededWords(label: string): RandomWords {
  return seededRandomWords(keyFrom(label));
}

/** Deterministic RandomBytes from a label (AES-CTR keystream). */
export function seededBytes(label: string): RandomBytes {
  const words = seededWords(label);
  return (length) => {
    const w = new Uint32Array(Math.ceil(length / 4));
    words(w);
    return new Uint8Array(w.buffer, 0, length).slice();
  };
}

/** Deterministic floats in [-range, range]. */
export function seededFloats(label: string, length: number, range: number): Float32Array {
  const w = new Uint32Array(length);
  seededWords(label)(w);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = ((w[i] as number) / 0x100000000 * 2 - 1) * range;
  return out;
}

export interface FederationOptions {
  readonly n: number;
  readonly dimension?: number;
  readonly dropoutFraction?: number;
  readonly corruptFraction?: number;
  readonly neighbours?: number;
  readonly securityBits?: number;
  readonly clip?: number;
  readonly maxWeight?: number;
  readonly session?: string;
  readonly label?: string;
  readonly prg?: PrgAlgorithm;
  /** The coordinator's class (a deliberately weakened subclass in the red-team controls). */
  readonly serverClass?: typeof SecAggServer;
  /** A DP round: the DP encoding (unit weights), agents' policy dp, and the server's survivor floor. */
  readonly dp?: DpNoiseSpec;
  /** With dp: false gives a coordinator that skips the survivor floor (a malicious one). Default true. */
  readonly serverFloor?: boolean;
}

export interface Federation {
  readonly server: SecAggServer;
  readonly agents: Map<string, SecAggAgent>;
  readonly identities: Map<string, SigningKeyPair>;
  readonly serverIdentity: SigningKeyPair;
  readonly encoding: FixedPointParams;
  readonly session: string;
  readonly ids: string[];
  /** Raw float updates and weights, per agent. */
  readonly updates: Map<string, { values: Float32Array; weight: number }>;
  /** Encoded inputs, memoised on first use (what the agent uploads, before masking). */
  readonly encoded: Map<string, Uint32Array>;
  readonly input: (id: string) => Uint32Array;
  /** A new agent object for `id` (e.g. for a second session). */
  readonly makeAgent: (id: string, session?: string) => SecAggAgent;
  /** The options makeAgent uses (to build a subclass, e.g. a deliberately weakened agent). */
  readonly agentOptions: (id: string, session?: string) => AgentOptions;
}

export function agentId(i: number): string {
  return `agent-${String(i).padStart(3, '0')}`;
}

export function makeFederation(options: FederationOptions): Federation {
  const label = options.label ?? 'fed';
  const session = options.session ?? `${label}/round-1`;
  const dimension = options.dimension ?? 64;
  const clip = options.clip ?? 1;
  const maxWeight = options.dp === undefined ? (options.maxWeight ?? 100) : 1;
  const dropoutFraction = options.dropoutFraction ?? 0.2;
  const corruptFraction = options.corruptFraction ?? 0.1;
  const ids = Array.from({ length: options.n }, (_, i) => agentId(i));
  const identities = new Map(ids.map((id) => [id, generateSigningKeyPair(seededBytes(`${label}/identity/${id}`))]));
  const serverIdentity = generateSigningKeyPair(seededBytes(`${label}/identity/server`));
  const encoding =
    options.dp === undefined
      ? deriveFixedPoint({ dimension, clip, cohortSize: options.n, maxWeight })
      : deriveDpEncoding(options.dp, dimension, deriveSecAggParams({ cohortSize: options.n, dropoutFraction, corruptFraction }));
  const server = new (options.serverClass ?? SecAggServer)({
    session,
    identity: serverIdentity,
    enrolled: new Map([...identities].map(([id, pair]) => [id, pair.publicKey])),
    cohort: ids,
    dropoutFraction,
    corruptFraction,
    encoding,
    ...(options.dp !== undefined && options.serverFloor !== false ? { dp: options.dp } : {}),
    graphSeed: keyFrom(`${label}/graph`),
    ...(options.neighbours !== undefined ? { neighbours: options.neighbours } : {}),
    ...(options.securityBits !== undefined ? { securityBits: options.securityBits } : {}),
    ...(options.prg !== undefined ? { prg: options.prg } : {}),
  });
  const agentOptions = (id: string, agentSession = session): AgentOptions => ({
    id,
    identity: identities.get(id) as SigningKeyPair,
    serverPublicKey: serverIdentity.publicKey,
    session: agentSession,
    random: seededBytes(`${label}/${agentSession}/agent-random/${id}`),
    policy: { minSecurityBits: options.securityBits ?? 40, ...(options.dp === undefined ? {} : { dp: options.dp }) },
  });
  const makeAgent = (id: string, agentSession = session): SecAggAgent => new SecAggAgent(agentOptions(id, agentSession));
  const agents = new Map(ids.map((id) => [id, makeAgent(id)]));
  const updates = new Map(
    ids.map((id, i) => [
      id,
      { values: seededFloats(`${label}/update/${id}`, dimension, 1.5 * clip), weight: 1 + ((i * 37) % maxWeight) },
    ]),
  );
  const encoded = new Map<string, Uint32Array>();
  const input = (id: string): Uint32Array => {
    let vector = encoded.get(id);
    if (vector === undefined) {
      const u = updates.get(id);
      if (u === undefined) throw new Error(`no update for ${id}`);
      vector = encodeFixedPoint(u.values, u.weight, encoding, seededWords(`${label}/rounding/${id}`));
      encoded.set(id, vector);
    }
    return vector;
  };
  return { server, agents, identities, serverIdentity, encoding, session, ids, updates, encoded, input, makeAgent, agentOptions };
}

/** Plaintext sum mod 2^32 of the given vectors. */
export function plainSum(vectors: readonly Uint32Array[], length: number): Uint32Array {
  const out = new Uint32Array(length);
  for (const v of vectors) for (let i = 0; i < length; i++) out[i] = ((out[i] as number) + (v[i] as number)) >>> 0;
  return out;
}

/** Chi-square statistic of byte frequencies against uniform (255 degrees of freedom). */
export function chiSquareBytes(bytes: Uint8Array): number {
  const counts = new Float64Array(256);
  for (const b of bytes) counts[b] = (counts[b] as number) + 1;
  const expected = bytes.length / 256;
  let chi = 0;
  for (const c of counts) chi += ((c - expected) * (c - expected)) / expected;
  return chi;
}

/** Critical value of chi-square with 255 degrees of freedom at p = 0.001. */
export const CHI2_255_P001 = 330.52;

/** Expects `fn` to throw an error with a given code; returns the error. */
export function throwsWithCode(fn: () => unknown, code: string): Error & { code: string } {
  try {
    fn();
  } catch (err) {
    const e = err as Error & { code: string };
    if (e.code !== code) throw new Error(`expected ${code}, got ${String(e.code)}: ${e.message}`);
    return e;
  }
  throw new Error(`expected an error with ${code}, but it returned`);
}

/** Delivers coordinator messages to their recipient agents; returns each agent's replies. */
export function deliver(
  fed: Federation,
  messages: readonly ServerMessage[],
  skip: ReadonlySet<string> = new Set(),
): Map<string, AgentMessage[]> {
  const replies = new Map<string, AgentMessage[]>();
  for (const message of messages) {
    for (const id of message.recipients) {
      const agent = fed.agents.get(id);
      if (agent === undefined || skip.has(id)) continue;
      const out = agent.receive(message);
      if (message.stage === 'setup') out.push(...agent.setInput(fed.input(id)));
      replies.set(id, [...(replies.get(id) ?? []), ...out]);
    }
  }
  return replies;
}

/** Sends agents' replies to the coordinator; returns what it sends next. */
export function submit(fed: Federation, replies: ReadonlyMap<string, readonly AgentMessage[]>): ServerMessage[] {
  const next: ServerMessage[] = [];
  for (const messages of replies.values()) {
    for (const m of messages) next.push(...fed.server.receive(m).messages);
  }
  return next;
}

/** Runs the protocol until the coordinator is about to send `stage`; returns those messages. */
export function runUntil(fed: Federation, stage: ServerMessage['stage']): ServerMessage[] {
  let messages: ServerMessage[] = fed.server.start();
  while (messages[0]?.stage !== stage) {
    if (messages.length === 0) throw new Error(`protocol stalled before ${stage}`);
    messages = submit(fed, deliver(fed, messages));
  }
  return messages;
}
