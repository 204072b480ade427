// One secure-aggregation round on the agent side: packages/secagg's SecAggAgent, wired to the
// protocol's `secagg` envelopes, running while the local trainer trains.
//
//   round-start (aggregation 'secure') ──> SecureRound created, training starts
//   secagg setup / keys / shares / participants / check / unmask ──> checked here, then SecAggAgent.receive; its answers
//                                             go back as signed `secagg` messages
//   training done ──> delta (clipped) ──> wait for the session config (setup) ──>
//                     encodeSecureInput: DP rounds add their noise (sized from the signed
//                     parameters) and encode with weight 1, others encode (delta, example count)
//                     ──> SecAggAgent.setInput ──> masked input
//   masked input ──> a `secagg` 'masked-input' message carrying the signed envelope without its
//                    vector (payload {maskedWith}) + an `update` whose frame is the vector (one uint32
//                    tensor 'secagg/masked'); the envelope's signature covers the vector
//
// Wire payloads (see the coordinator's secure-aggregation.ts): from the coordinator
// encode({envelope, signer}); to it encode(envelope), secagg's canonical encoding.
//
// Refusals. A message that is mis-addressed, malformed, unsigned or badly signed, signed by an
// untrusted coordinator key, from another round or session (replay), or out of stage is refused
// with FEDCLR_AGENT_SECAGG_REFUSED and ignored (the round goes on). When the coordinator proves
// inconsistent (e.g. it asks for both shares of one neighbour) or proposes parameters this agent
// refuses, the agent leaves the round: FEDCLR_AGENT_SECAGG_FAILED, reported to the coordinator.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { encodeFrame } from '@fedclr/protocol';
import type { SecaggMessage, UpdateMessage } from '@fedclr/protocol';
import {
  SecAggAgent,
  addGaussianNoise,
  checkDpEncoding,
  cryptoGaussian,
  cryptoRandomWords,
  decodeCanonical,
  encodeCanonical,
  encodeFixedPoint,
  shareStatement,
  signDetached,
  signEnvelope,
  ErrorCodes,
  type AgentMessage as SecAggAgentMessage,
  type AgentPolicy,
  type CanonicalValue,
  type DpNoiseSpec,
  type FixedPointParams,
  type GaussianSource,
  type RandomWords,
  type SecAggParams,
  type ShareKeysPayload,
  type SigningKeyPair,
} from '@fedclr/secagg';
import { RoundAbortedError, SecaggFailedError, SecaggRefusedError } from './errors.js';

/** The coordinator's endpoint id in secagg envelopes and `secagg` messages. */
export const COORDINATOR_ADDRESS = '@coordinator';
/** Name of the uint32 tensor of a masked-input update frame (the coordinator expects it). */
export const MASKED_TENSOR = 'secagg/masked';

export interface SecureRoundOptions {
  readonly roundId: number;
  readonly modelVersion: string;
  readonly agentId: string;
  /** The agent's Ed25519 identity (tweetnacl layout), also its secagg signing key. */
  readonly identity: SigningKeyPair;
  /** Which key may sign for the coordinator (pinned, or trusted on first use: see CoordinatorKeys). */
  readonly trust: {
    /** Throws a typed error if `key` contradicts the pinned or previously used key. */
    check(key: Uint8Array, stage: string): Promise<void>;
    /** Trust `key` from now on; called only after a setup verified under it. */
    remember(key: Uint8Array): Promise<void>;
  };
  /** Session ids this agent already took part in (shared across rounds: replay protection). */
  readonly usedSessions: Set<string>;
  readonly policy?: AgentPolicy;
  /** The round's DP promise (round config dp and clipNorm): noised input, survivor floor. */
  readonly dp?: DpNoiseSpec;
  /** DP noise source (default cryptoGaussian; tests pass a seeded one). */
  readonly gaussian?: GaussianSource;
  /** Signs and sends a message; false when the connection is gone. */
  readonly send: (message: SecaggMessage | UpdateMessage) => boolean;
  readonly maxFrameBytes: number;
  readonly log: Logger;
  /** A message was refused (the round goes on) or this agent left the round (fatal). */
  readonly onError: (error: Error, fatal: boolean) => void;
  /**
   * Red-team mode for robustness tests (`fedclr simulate --byzantine N`): 'garbage-shares' sends
   * random bytes in place of every encrypted share, validly signed. Honest neighbours prove it
   * and the coordinator excludes this agent; nothing else changes.
   */
  readonly redTeam?: RedTeamMode;
  /**
   * Called before this agent's first unmask answer (the shares that let the sum be computed):
   * false leaves the round without answering (the agent's privacy budget, budget.ts).
   */
  readonly beforeReveal?: () => boolean;
}

export const RED_TEAM_MODES = ['garbage-shares'] as const;
export type RedTeamMode = (typeof RED_TEAM_MODES)[number];

export interface SecureInput {
  readonly delta: Float32Array;
  readonly exampleCount: number;
  readonly metrics: NonNullable<UpdateMessage['metrics']>;
}

export interface SecureInputResult {
  /** Weight encoded (the example count clamped to the session's maxWeight; 1 in a DP round). */
  readonly weight: number;
  /** Standard deviation of the DP noise added per coordinate (0 without DP). */
  readonly noiseStd: number;
  /** Coordinates of the delta that the per-coordinate clip changed. */
  readonly clippedCoordinates: number;
  readonly encoding: FixedPointParams;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

const MAX_USED_SESSIONS = 10_000;

export class SecureRound {
  readonly roundId: number;
  private readonly o: SecureRoundOptions;
  private agent: SecAggAgent | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private failed = false;
  private meta: UpdateMessage['metrics'] | undefined;
  private resolveConfig: (encoding: FixedPointParams) => void = () => undefined;
  private rejectConfig: (err: Error) => void = () => undefined;
  private readonly configReady: Promise<FixedPointParams>;
  private maskedSent = false;

  constructor(options: SecureRoundOptions) {
    this.o = options;
    this.roundId = options.roundId;
    this.configReady = new Promise<FixedPointParams>((resolve, reject) => {
      this.resolveConfig = resolve;
      this.rejectConfig = reject;
    });
    // provideInput may never be called (training failed): the rejection is expected then.
    this.configReady.catch((err: unknown) => options.log.debug({ err, roundId: options.roundId }, 'secure round ended before its setup'));
  }

  /** True once the masked input went out (the round then only needs the unmask answer). */
  get submitted(): boolean {
    return this.maskedSent;
  }

  /** The SecAggAgent's state (for logs and tests). */
  get state(): string {
    return this.failed ? 'failed' : (this.agent?.state ?? 'awaiting-setup');
  }

  /** Handles one coordinator `secagg` message (in arrival order; never throws). */
  handle(message: SecaggMessage): Promise<void> {
    // Each message's work (O(k) signatures, key agreements and Shamir shares) starts in its own
    // macrotask: a host running many agents (the chaos harness: 50 per process) gets every
    // stage's message for all of them at once, and chained as microtasks their work blocked the
    // event loop for seconds, long enough for socket.io to miss pings and drop the links.
    const run = this.queue.then(nextMacrotask).then(() => this.process(message));
    this.queue = run;
    return run;
  }

  /**
   * Encodes the update once the session config is known and hands it to the SecAggAgent; the
   * masked input goes out as soon as the neighbours' shares are in. Rejects if the round ends
   * (or `signal` aborts) before the setup arrived.
   */
  async provideInput(input: SecureInput, signal: AbortSignal): Promise<SecureInputResult> {
    const encoding = await raceAbort(this.configReady, signal);
    const agent = this.agent;
    if (agent === undefined || this.closed || this.failed) throw new RoundAbortedError(this.roundId, 'the secure round ended');
    const { dp, gaussian } = this.o;
    const { words, weight, clippedCoordinates, noiseStd } = encodeSecureInput({
      ...input,
      encoding,
      params: agent.params as SecAggParams,
      ...(dp === undefined ? {} : { dp }),
      ...(gaussian === undefined ? {} : { gaussian }),
    });
    if (weight < input.exampleCount && dp === undefined) {
      this.o.log.info({ roundId: this.roundId, exampleCount: input.exampleCount, maxWeight: encoding.maxWeight }, 'example count clamped to the session maxWeight');
    }
    // The caller leaves room for this one extra metric (maxMetrics - 1).
    const extra = { ...input.metrics.extra, secaggClippedFraction: input.delta.length === 0 ? 0 : clippedCoordinates / input.delta.length };
    this.meta = { ...input.metrics, extra };
    // Through the queue: setInput must not overtake a message being handled.
    await this.enqueue(async () => {
      if (this.closed || this.failed) return;
      const out = agent.setInput(words);
      this.sendAll(out);
    });
    return { weight, noiseStd, clippedCoordinates, encoding };
  }

  /** Ends the round locally (round-end, disconnect, a newer round): nothing more is sent. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.agent = undefined;
    this.rejectConfig(new RoundAbortedError(this.roundId, reason));
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Runs `task` after everything queued; its failure goes to the caller (the queue itself goes on). */
  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.then(
      () => undefined,
      () => undefined, // reported through `run`, which the caller awaits
    );
    return run;
  }

  private async process(message: SecaggMessage): Promise<void> {
    if (this.closed) {
      this.o.log.debug({ roundId: this.roundId, stage: message.stage }, 'secagg message after the round ended: ignored');
      return;
    }
    const stage = message.stage;
    try {
      await this.accept(message);
    } catch (err) {
      const fatal = this.failed || (err as { code?: unknown }).code === 'FEDCLR_AGENT_SECAGG_FAILED';
      const error =
        (err as { code?: unknown }).code === 'FEDCLR_AGENT_SECAGG_REFUSED' || (err as { code?: unknown }).code === 'FEDCLR_AGENT_SECAGG_FAILED'
          ? (err as Error)
          : fatal
            ? withCause(new SecaggFailedError(this.roundId, stage, describe(err)), err)
            : withCause(new SecaggRefusedError(this.roundId, stage, describe(err)), err);
      if (fatal) {
        this.failed = true;
        this.rejectConfig(error);
      }
      this.o.onError(error, fatal);
    }
  }

  private async accept(message: SecaggMessage): Promise<void> {
    const { roundId, stage } = message;
    if (this.failed) throw new SecaggRefusedError(roundId, stage, 'this agent already left the round');
    if (message.from !== COORDINATOR_ADDRESS || message.to !== this.o.agentId) {
      throw new SecaggRefusedError(roundId, stage, `mis-addressed: from '${message.from}' to '${message.to}'; this agent is '${this.o.agentId}'`);
    }
    if (roundId !== this.roundId) throw new SecaggRefusedError(roundId, stage, `it belongs to round ${roundId}, not the running round ${this.roundId}`);
    const wrapper = decodeCanonical(message.payload, 'secagg payload');
    if (!isRecord(wrapper) || !isRecord(wrapper['envelope']) || !(wrapper['signer'] instanceof Uint8Array) || wrapper['signer'].length !== 32) {
      throw new SecaggRefusedError(roundId, stage, 'the payload is not {envelope, signer (32-byte Ed25519 key)}');
    }
    const envelope = wrapper['envelope'];
    const signer = wrapper['signer'];
    if (envelope['stage'] !== stage) throw new SecaggRefusedError(roundId, stage, `the envelope is of stage '${String(envelope['stage'])}'`);
    await this.o.trust.check(signer, stage);
    let agent = this.agent;
    if (agent === undefined) {
      if (stage !== 'setup') throw new SecaggRefusedError(roundId, stage, 'no setup message was accepted for this round yet');
      const session = envelope['session'];
      if (typeof session !== 'string' || !session.endsWith(`/round-${this.roundId}`)) {
        throw new SecaggRefusedError(roundId, stage, `session ${JSON.stringify(session)} is not one of round ${this.roundId} (replayed from another round?)`);
      }
      if (this.o.usedSessions.has(session)) throw new SecaggRefusedError(roundId, stage, `session ${session} was already used (replay)`);
      const policy: AgentPolicy = { ...this.o.policy, ...(this.o.dp === undefined ? {} : { dp: this.o.dp }) };
      agent = new SecAggAgent({ id: this.o.agentId, identity: this.o.identity, serverPublicKey: signer, serverId: COORDINATOR_ADDRESS, session, policy });
      let out: SecAggAgentMessage[];
      try {
        out = agent.receive(envelope);
      } catch (err) {
        // A validly signed setup this agent will not accept (parameters, policy): leave the round.
        const code = (err as { code?: unknown }).code;
        if (code === ErrorCodes.PARAMS_MISMATCH || code === ErrorCodes.DP_GRID_TOO_COARSE || agent.state === 'failed') {
          throw withCause(new SecaggFailedError(roundId, stage, describe(err)), err);
        }
        throw err;
      }
      // The setup verified under `signer`: only now may a first-use key be remembered.
      await this.o.trust.remember(signer);
      this.agent = agent;
      this.o.usedSessions.add(session);
      if (this.o.usedSessions.size > MAX_USED_SESSIONS) this.o.usedSessions.delete(this.o.usedSessions.values().next().value as string);
      this.resolveConfig((agent.config as { encoding: FixedPointParams }).encoding);
      this.sendAll(out);
      return;
    }
    let out: SecAggAgentMessage[];
    try {
      out = agent.receive(envelope);
    } catch (err) {
      if (agent.state === 'failed') throw withCause(new SecaggFailedError(roundId, stage, describe(err)), err);
      throw err;
    }
    this.sendAll(out);
  }

  private sendAll(messages: readonly SecAggAgentMessage[]): void {
    if (this.closed) return;
    for (const original of messages) {
      const m = this.o.redTeam === 'garbage-shares' && original.stage === 'share-keys' ? this.garbleShares(original) : original;
      if (m.stage === 'masked-input') {
        this.sendMasked(m);
        continue;
      }
      if (m.stage === 'unmask-response' && this.o.beforeReveal?.() === false) {
        throw new SecaggFailedError(this.roundId, 'unmask', "this agent's privacy budget does not allow revealing its shares for this round (--max-epsilon)");
      }
      const payload = encodeCanonical(m as unknown as CanonicalValue);
      this.o.send({ type: 'secagg', roundId: this.roundId, stage: m.stage, from: this.o.agentId, to: COORDINATOR_ADDRESS, payload });
    }
  }

  /** Red team: every ciphertext replaced by random bytes of its length, re-signed by this agent. */
  private garbleShares(m: SecAggAgentMessage): SecAggAgentMessage {
    const payload = m.payload as unknown as ShareKeysPayload;
    const shares = payload.shares.map((s) => {
      const garbled = { ...s, ciphertext: new Uint8Array(randomBytes(s.ciphertext.length)) };
      return { ...garbled, signature: signDetached(shareStatement(m.session, m.sender, s.peer, garbled), this.o.identity.secretKey) };
    });
    this.o.log.warn({ roundId: this.roundId }, 'red team: sending garbage encrypted shares');
    return signEnvelope(
      { session: m.session, stage: m.stage, sender: m.sender, recipients: m.recipients, payload: { ...payload, shares } as unknown as CanonicalValue },
      this.o.identity.secretKey,
    ) as SecAggAgentMessage;
  }

  /** The masked input: the signed envelope without its vector, then the vector as an update frame. */
  private sendMasked(m: SecAggAgentMessage): void {
    const { masked, maskedWith } = m.payload as { masked?: unknown; maskedWith?: unknown };
    if (!(masked instanceof Uint32Array) || !(maskedWith instanceof Uint8Array)) {
      throw new SecaggFailedError(this.roundId, m.stage, 'the masked input is missing its vector or its masked-with signature');
    }
    // The header keeps the masked-with signature; the vector travels as the update frame.
    const header = encodeCanonical({ ...(m as unknown as Record<string, CanonicalValue>), payload: { maskedWith } });
    const frame = encodeFrame(
      { manifest: [{ name: MASKED_TENSOR, shape: [masked.length], dtype: 'uint32' }], data: masked },
      { limits: { maxFrameBytes: this.o.maxFrameBytes } },
    );
    // Issue 11 (side channel): no per-agent metrics in a secure round's update; they stay in this agent's log.
    this.o.log.debug({ roundId: this.roundId, metrics: this.meta }, 'local metrics (not sent in secure rounds)');
    const sentHeader = this.o.send({ type: 'secagg', roundId: this.roundId, stage: m.stage, from: this.o.agentId, to: COORDINATOR_ADDRESS, payload: header });
    const sentUpdate = sentHeader && this.o.send({ type: 'update', roundId: this.roundId, modelVersion: this.o.modelVersion, frame });
    this.maskedSent = sentUpdate;
    if (!sentUpdate) this.o.log.warn({ roundId: this.roundId }, 'connection lost before the masked input was sent');
    else this.o.log.info({ roundId: this.roundId, bytes: frame.byteLength }, 'masked input sent');
  }
}

export interface SecureInputRequest {
  /** The clipped delta (prepareDelta). */
  readonly delta: Float32Array;
  readonly exampleCount: number;
  /** The session's signed encoding and SecAgg+ parameters (SecAggAgent.config.encoding, .params). */
  readonly encoding: FixedPointParams;
  readonly params: SecAggParams;
  /** The round's DP promise; without it the input is the delta weighted by its example count. */
  readonly dp?: DpNoiseSpec;
  readonly gaussian?: GaussianSource;
  /** Stochastic-rounding coins (default cryptoRandomWords). */
  readonly random?: RandomWords;
}

export interface EncodedSecureInput {
  readonly words: Uint32Array;
  readonly weight: number;
  readonly noiseStd: number;
  /** Coordinates the encoding's per-coordinate clip changed. */
  readonly clippedCoordinates: number;
}

/**
 * What an agent feeds SecAggAgent.setInput. In a DP round: the delta plus N(0, sigma^2 C^2 /
 * n_min) per coordinate, in float64 before any rounding, n_min from the signed parameters
 * (secagg dp.ts: why this size, and why the grid's rounding cannot depend on the data), encoded
 * unweighted with weight 1: an agent with more images gets no more influence and no less noise.
 */
export function encodeSecureInput(request: SecureInputRequest): EncodedSecureInput {
  const { delta, encoding, dp } = request;
  let values: ArrayLike<number> = delta;
  let weight = Math.min(request.exampleCount, encoding.maxWeight);
  let noiseStd = 0;
  if (dp !== undefined) {
    noiseStd = checkDpEncoding(dp, encoding, request.params).agentStd;
    values = addGaussianNoise(delta, noiseStd, request.gaussian ?? cryptoGaussian);
    weight = 1;
  }
  let clippedCoordinates = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i] as number;
    if (x > encoding.clip || x < -encoding.clip) clippedCoordinates++;
  }
  const words = encodeFixedPoint(values, weight, encoding, request.random ?? cryptoRandomWords);
  return { words, weight, noiseStd, clippedCoordinates };
}

/** Resolves after pending I/O callbacks had their turn (setImmediate runs after the poll phase). */
function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

function withCause<E extends Error>(error: E, cause: unknown): E {
  (error as { cause?: unknown }).cause = cause;
  return error;
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
