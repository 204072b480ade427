// Secure aggregation (SecAgg+) behind the AggregationSession interface: packages/secagg's
// SecAggServer, wired to the round engine.
//
// Wire format. Every secagg message travels as a protocol `secagg` envelope whose opaque payload
// is the secagg package's canonical encoding (`encodeCanonical`):
//   coordinator -> agent  one envelope per recipient, payload = encode({envelope, signer}) where
//                         `envelope` is the signed SecAggServer message and `signer` the
//                         coordinator's Ed25519 public key (agents pin it, or trust it on first use)
//   agent -> coordinator  payload = encode(envelope), the signed SecAggAgent message
// The masked input is the exception: 4 (d + 1) bytes can exceed the 4 MiB secagg payload limit,
// so the agent sends the signed masked-input envelope *without its vector* (payload {maskedWith}) as a
// `secagg` message and then the vector as an `update` whose frame holds one uint32 tensor
// ('secagg/masked', shape [d + 1]). The session re-attaches the vector to the envelope, whose
// signature covers it, and hands the whole to the server. The update path gives the masked input
// the engine's usual checks (round, cohort, duplicate, stale model, frame hash and layout) and
// counts it towards the quorum.
//
// Synchronous. SecAggServer is messages in, messages out: every interface method here returns the
// translated step at once, and no state changes between calls.
//
// Deadlines. advertise, share-keys, share-check and consistency: `stageTimeoutMs` each (a stage
// also closes early once every agent it waits for answered or left); masked-input: the round
// deadline (the engine's collection close); unmask: the engine's aggregation deadline (its second
// close()).
//
// Misbehaviour. An agent the server proves misbehaved (a bad share ciphertext, a false
// complaint, a bad revealed share) is excluded with the proof's summary as the reason.
//
// What the coordinator holds. The server adds each masked vector into one running sum on arrival;
// the session keeps signed masked-input envelopes without their vectors, and nothing else per
// agent. The only unmasked vector ever produced is the survivors' sum (`Aggregate.weightedSum`).
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecodedFrame, Manifest, SecaggMessage } from '@fedclr/protocol';
import {
  SecAggServer,
  checkEnvelope,
  decodeCanonical,
  deriveDpEncoding,
  deriveFixedPoint,
  deriveSecAggParams,
  encodeCanonical,
  generateSigningKeyPair,
  minHonestSurvivors,
  sumNoiseStd,
  weightedMean,
  ErrorCodes,
  type AggregationResult,
  type CanonicalValue,
  type FixedPointParams,
  type PrgAlgorithm,
  type RandomBytes,
  type SecAggParams,
  type ServerMessage,
  type ServerStatus,
  type ServerStep,
  type SigningKeyPair,
} from '@fedclr/secagg';
import { dpDenominator, dpMetrics } from './aggregation.js';
import type {
  Aggregate,
  AggregationRound,
  AggregationSession,
  AggregationStatus,
  AggregationStep,
  AggregatorFactory,
  OutboundSecagg,
  UpdateContribution,
} from './aggregation.js';
import { AggregationInputError, AggregationStateError, SecaggIdentityError } from './errors.js';

/** The coordinator's endpoint id inside secagg envelopes (cannot collide with an agent id). */
export const SECAGG_SERVER_ID = '@coordinator';
/** Name of the single uint32 tensor of a masked-input update frame. */
export const MASKED_TENSOR = 'secagg/masked';

/** The update-frame layout of a masked input for a model of `dimension` parameters. */
export function maskedManifest(dimension: number): Manifest {
  return [{ name: MASKED_TENSOR, shape: [dimension + 1], dtype: 'uint32' }];
}

/** The session id of a round: unique per run and round (replay protection hangs on it). */
export function secaggSessionId(runId: string, roundId: number): string {
  return `fedclr/${runId}/round-${roundId}`;
}

export interface SecureAggregationOptions {
  /** Random id of this run (state dir); with the round id it makes the session id. */
  readonly runId: string;
  /** The coordinator's Ed25519 key pair (tweetnacl layout) that signs its secagg messages. */
  readonly identity: SigningKeyPair;
  /** Enrolled Ed25519 public key of an agent (the key it proved in the handshake). */
  readonly publicKeyOf: (agentId: string) => Uint8Array | undefined;
  /** Per-coordinate clip c of an agent's delta: values are clipped to [-c, c] before encoding (DP rounds derive their own). */
  readonly clip: number;
  /** Largest weight (example count) of one agent; agents clamp larger counts to it (DP rounds: 1). */
  readonly maxWeight: number;
  readonly dropoutFraction: number;
  readonly corruptFraction: number;
  /** Deadline of the advertise and share-keys stages, each. */
  readonly stageTimeoutMs: number;
  /** Largest secagg payload the protocol allows (a bigger message aborts the round). */
  readonly maxPayloadBytes: number;
  readonly prg?: PrgAlgorithm;
  /** Randomness for the neighbour-graph seed (tests); default node:crypto. */
  readonly random?: RandomBytes;
}

/**
 * Fixed-point parameters for a round (derived, no-wrap checked): weighted by example count, or
 * in a DP round unweighted with room and grid for the agents' noise (secagg deriveDpEncoding).
 */
export function roundEncoding(
  options: Pick<SecureAggregationOptions, 'clip' | 'maxWeight'>,
  dimension: number,
  params: SecAggParams,
  dp?: AggregationRound['dp'],
): FixedPointParams {
  if (dp !== undefined) return deriveDpEncoding(dp, dimension, params);
  return deriveFixedPoint({ dimension, clip: options.clip, cohortSize: params.cohortSize, maxWeight: options.maxWeight, weighted: true });
}

/** Opens one SecureAggregationSession per round. */
export function secureAggregator(options: SecureAggregationOptions): AggregatorFactory {
  return { mode: 'secure', open: (round) => new SecureAggregationSession(round, options) };
}

const NONE: readonly OutboundSecagg[] = Object.freeze([]);

/** Stages closed by their own timer (masked-input and unmask follow the engine's deadlines). */
const TIMED_STAGES: ReadonlySet<string> = new Set(['advertise', 'share-keys', 'share-check', 'consistency']);

/** What an agent the server stops expecting at the start of a stage failed to do. */
const MISSED: Readonly<Record<string, string>> = {
  'share-keys': 'advertise its keys',
  'share-check': 'send its key shares',
  'masked-input': 'confirm the shares it received',
};

type Header = Record<string, CanonicalValue>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/**
 * One round of SecAgg+ as an AggregationSession. The weighted sum it reveals is
 * sum_i w_i clip(delta_i) (to within the quantisation bound), with the weights summed under the
 * same masks, so the strategy divides exactly as in plain mode. A DP round reveals the unweighted
 * sum of the clipped, noised deltas; its denominator is the round's fixed one (aggregation.ts dpDenominator).
 */
export class SecureAggregationSession implements AggregationSession {
  readonly mode = 'secure' as const;
  readonly updateManifest: Manifest;
  /** The fixed-point parameters of this round (undefined if the session could not be set up). */
  readonly encoding: FixedPointParams | undefined;
  readonly session: string;
  private readonly round: AggregationRound;
  private readonly options: SecureAggregationOptions;
  private readonly server: SecAggServer | undefined;
  private readonly setupError: string | undefined;
  /** Signed masked-input envelopes whose vector has not arrived yet (no vector in them). */
  private readonly headers = new Map<string, Header>();
  /** Agents that left or gave up: a stage waiting only for them closes at once. */
  private readonly gone = new Set<string>();
  /** Agents still in the protocol (the current stage's expected set). */
  private active: ReadonlySet<string>;
  private closes = 0;
  private terminal: AggregationStatus | undefined;
  /** The server stage the last translated step was in (stage transitions arm timers, exclude agents). */
  private stageSeen = 'setup';

  constructor(round: AggregationRound, options: SecureAggregationOptions) {
    this.round = round;
    this.options = options;
    this.updateManifest = maskedManifest(round.dimension);
    this.session = secaggSessionId(options.runId, round.roundId);
    this.active = new Set(round.cohort);
    let server: SecAggServer | undefined;
    let encoding: FixedPointParams | undefined;
    let setupError: string | undefined;
    try {
      const params = deriveSecAggParams({ cohortSize: round.cohort.length, dropoutFraction: options.dropoutFraction, corruptFraction: options.corruptFraction });
      encoding = roundEncoding(options, round.dimension, params, round.dp);
      const enrolled = new Map<string, Uint8Array>();
      for (const id of round.cohort) {
        const key = options.publicKeyOf(id);
        if (key !== undefined) enrolled.set(id, Uint8Array.from(key));
      }
      server = new SecAggServer({
        session: this.session,
        serverId: SECAGG_SERVER_ID,
        identity: options.identity,
        enrolled,
        cohort: round.cohort,
        dropoutFraction: options.dropoutFraction,
        corruptFraction: options.corruptFraction,
        encoding,
        ...(round.dp === undefined ? {} : { dp: round.dp }),
        ...(options.prg === undefined ? {} : { prg: options.prg }),
        ...(options.random === undefined ? {} : { random: options.random }),
      });
    } catch (err) {
      // Reported as the round's abort reason by start() (e.g. a cohort too small for a threshold).
      setupError = `${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`;
    }
    this.server = server;
    this.encoding = encoding;
    this.setupError = setupError;
  }

  /** Neighbour count k and threshold t of this round. */
  get params(): { readonly neighbours: number; readonly threshold: number } | undefined {
    return this.server === undefined ? undefined : { neighbours: this.server.params.neighbours, threshold: this.server.params.threshold };
  }

  start(): AggregationStep {
    const server = this.server;
    if (server === undefined) {
      this.terminal = { kind: 'aborted', reason: `secure aggregation could not be set up for this cohort: ${this.setupError ?? 'unknown'}` };
      return { messages: NONE, status: this.terminal };
    }
    const messages = this.outbound(server.start());
    if (this.terminal !== undefined) return { messages: NONE, status: this.terminal };
    this.stageSeen = 'advertise';
    return { messages, status: { kind: 'collecting' }, stageTimer: { stage: 'advertise', delayMs: this.options.stageTimeoutMs } };
  }

  receive(agentId: string, message: SecaggMessage): AggregationStep {
    const server = this.live('receive');
    if (message.from !== agentId || message.to !== SECAGG_SERVER_ID) {
      throw new AggregationInputError(`secagg messages from ${agentId} must be addressed from it to ${SECAGG_SERVER_ID}`);
    }
    if (message.roundId !== this.round.roundId) {
      throw new AggregationInputError(`secagg message of round ${message.roundId} in round ${this.round.roundId}`);
    }
    const envelope = decodeCanonical(message.payload, 'secagg payload');
    if (!isRecord(envelope)) throw new AggregationInputError('the secagg payload is not an envelope');
    if (envelope['sender'] !== agentId) {
      throw new AggregationInputError(`the envelope's sender ${String(envelope['sender'])} is not the connection's agent ${agentId}`);
    }
    if (envelope['stage'] !== message.stage) {
      throw new AggregationInputError(`the envelope's stage ${String(envelope['stage'])} differs from the message's ${message.stage}`);
    }
    if (message.stage === 'masked-input') {
      // The vector follows as an update; keep the signed header (no vector in it) until then.
      const payload = envelope['payload'];
      if (!isRecord(payload) || Object.keys(payload).join() !== 'maskedWith' || !(payload['maskedWith'] instanceof Uint8Array)) {
        throw new AggregationInputError('a masked-input secagg message carries the envelope with payload {maskedWith}; the vector travels as the update frame');
      }
      if (this.headers.has(agentId)) throw new AggregationInputError(`a second masked-input envelope from ${agentId}`);
      this.headers.set(agentId, envelope as Header);
      return { messages: NONE, status: this.statusNow() };
    }
    return this.run(() => this.afterReceive(server.receive(envelope)), agentId);
  }

  addUpdate(agentId: string, update: UpdateContribution): AggregationStep {
    const server = this.live('addUpdate');
    if (update.exampleCount !== undefined) {
      throw new AggregationInputError('a secure update must not carry a plaintext exampleCount (the weight is inside the masked vector)');
    }
    const words = maskedWords(update.frame, this.round.dimension + 1);
    const header = this.headers.get(agentId);
    if (header === undefined) {
      throw new AggregationInputError(`a masked input from ${agentId} needs its signed secagg envelope (stage 'masked-input') first`);
    }
    const envelope = { ...header, payload: { masked: words, maskedWith: (header['payload'] as Header)['maskedWith'] as Uint8Array } };
    // Verify now (signature over the vector, session, stage, addressing) so a bad masked input is
    // rejected as an update rather than silently left out of the sum.
    checkEnvelope(envelope, { session: this.session, stages: ['masked-input'], state: 'receiving masked inputs', recipient: SECAGG_SERVER_ID }, (sender) => {
      const key = this.options.publicKeyOf(sender);
      if (key === undefined || sender !== agentId) throw new AggregationInputError(`no enrolled key for ${sender}`);
      return key;
    });
    this.headers.delete(agentId);
    return this.run(() => [server.receive(envelope)], agentId);
  }

  drop(agentId: string): AggregationStep {
    if (this.server === undefined || this.terminal !== undefined) return { messages: NONE, status: this.statusNow() };
    this.gone.add(agentId);
    this.headers.delete(agentId);
    const server = this.server;
    // masked-input is closed by the engine (collection close); the other stages close as soon as
    // everyone they wait for has answered or left.
    return this.run(() => (this.waitingOnlyForGone(server.stage) ? [server.stageDeadline()] : undefined));
  }

  close(): AggregationStep {
    this.closes++;
    // Already over (the engine may not have applied that step yet): report it, do not throw.
    if (this.server === undefined || this.terminal !== undefined) return { messages: NONE, status: this.statusNow() };
    const server = this.server;
    if (this.closes === 1) {
      // End of collection: close masked-input (unless every masked input arrived and the server
      // already moved on); the consistency check goes out.
      return this.run(() => {
        const stage = server.stage;
        if (stage === 'masked-input') return [server.stageDeadline()];
        if (stage === 'consistency' || stage === 'unmask') return undefined;
        this.terminal = { kind: 'aborted', reason: `the round's collection closed while secure aggregation was in stage '${stage}'` };
        return undefined;
      });
    }
    if (this.closes === 2) {
      // The aggregation deadline: unmask with the shares that arrived; the result is final.
      return this.run(() => {
        const stage = server.stage;
        if (stage === 'unmask') return [server.stageDeadline()];
        this.terminal = { kind: 'aborted', reason: `secure aggregation was still in stage '${stage}' at the aggregation deadline` };
        return undefined;
      });
    }
    throw new AggregationStateError('close', 'closed twice already');
  }

  stageTimeout(stage: string): AggregationStep {
    const server = this.server;
    if (server === undefined || this.terminal !== undefined) return { messages: NONE, status: this.statusNow() };
    if (!TIMED_STAGES.has(stage)) return { messages: NONE, status: this.statusNow() };
    // Only if the server is still in that stage (it may have closed meanwhile).
    return this.run(() => (server.stage === stage ? [server.stageDeadline()] : undefined));
  }

  // ---- internals ------------------------------------------------------------------------------

  private live(operation: string): SecAggServer {
    if (this.server === undefined) throw new AggregationStateError(operation, 'secure aggregation could not be set up');
    if (this.terminal !== undefined) throw new AggregationStateError(operation, `the session is ${this.terminal.kind}`);
    return this.server;
  }

  /** After a receive: a stage still waiting only for agents that left closes now. */
  private afterReceive(step: ServerStep): ServerStep[] {
    const server = this.server as SecAggServer;
    if (this.waitingOnlyForGone(server.stage)) return [step, server.stageDeadline()];
    return [step];
  }

  /** The stage (other than masked-input, which the engine closes) waits only for agents that left. */
  private waitingOnlyForGone(stage: string): boolean {
    const server = this.server;
    if (server === undefined || server.stage !== stage || stage === 'masked-input') return false;
    const status = server.status;
    return status.kind === 'running' && status.waitingFor.length > 0 && status.waitingFor.every((id) => this.gone.has(id));
  }

  /**
   * Runs `task` (server calls) and translates its steps. A refusal of an agent's message (state
   * unchanged) becomes `refused`; any other failure aborts the round.
   */
  private run(task: () => readonly ServerStep[] | undefined, agentId?: string): AggregationStep {
    if (this.terminal !== undefined) return { messages: NONE, status: this.terminal };
    let steps: readonly ServerStep[] | undefined;
    try {
      steps = task();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (agentId !== undefined && code !== ErrorCodes.INTERNAL) {
        return { messages: NONE, status: this.statusNow(), refused: { agentId, error: err as Error } };
      }
      this.terminal = { kind: 'aborted', reason: `secure aggregation failed: ${String(code ?? '')} ${(err as Error).message}`.trim() };
      return { messages: NONE, status: this.terminal };
    }
    if (this.terminal !== undefined) return { messages: NONE, status: this.terminal };
    if (steps === undefined || steps.length === 0) return { messages: NONE, status: this.statusNow() };
    try {
      return merge(steps.map((step) => this.translate(step)));
    } catch (err) {
      this.terminal = { kind: 'aborted', reason: `secure aggregation failed while relaying: ${(err as Error).message}` };
      return { messages: NONE, status: this.terminal };
    }
  }

  /** The status as known now (without waiting for queued work). */
  private statusNow(): AggregationStatus {
    if (this.terminal !== undefined) return this.terminal;
    const server = this.server;
    if (server === undefined) return { kind: 'aborted', reason: 'secure aggregation could not be set up' };
    return this.fromServer(server.status);
  }

  private fromServer(status: ServerStatus): AggregationStatus {
    switch (status.kind) {
      case 'running':
        return status.stage === 'unmask' || status.stage === 'consistency' ? { kind: 'finishing', waitingFor: status.waitingFor } : { kind: 'collecting' };
      case 'aborted': {
        const a = status.abort;
        const server = this.server as SecAggServer;
        return {
          kind: 'aborted',
          reason: `secure aggregation aborted (${a.reason}) in stage '${a.stage}'${a.agent === undefined ? '' : ` at ${a.agent}`}: ${a.message}`,
          metrics: { secaggThreshold: server.params.threshold, secaggNeighbours: server.params.neighbours, secaggAvailable: a.available },
        };
      }
      case 'done':
        return this.done(status.result);
    }
  }

  /** Translates a server step: addressing, stage timers, exclusions, the final aggregate. */
  private translate(step: ServerStep): AggregationStep {
    const messages = this.outbound(step.messages);
    if (this.terminal !== undefined) return { messages: NONE, status: this.terminal };
    const status = this.fromServer(step.status);
    if (status.kind === 'done' || status.kind === 'aborted') this.terminal = status;
    const out: { -readonly [K in keyof AggregationStep]: AggregationStep[K] } = { messages, status };
    if (step.status.kind === 'running' && step.status.stage !== this.stageSeen) {
      // A stage began (the serial chain guarantees nothing was received in it yet): whoever the
      // server no longer expects is out of the round, and key sharing gets its own deadline.
      const stage = step.status.stage;
      this.stageSeen = stage;
      if (TIMED_STAGES.has(stage)) out.stageTimer = { stage, delayMs: this.options.stageTimeoutMs };
      const missed = MISSED[stage];
      if (missed !== undefined) {
        const next = new Set(step.status.waitingFor);
        const excluded = [...this.active].filter((id) => !next.has(id));
        this.active = next;
        if (excluded.length > 0) out.excluded = excluded.map((agentId) => ({ agentId, reason: this.exclusionReason(agentId, missed) }));
      }
    }
    return out;
  }

  /** Why an agent left the protocol: proven misbehaviour first, else the stage it missed. */
  private exclusionReason(agentId: string, missed: string): string {
    const proven = (this.server as SecAggServer).misbehaviour.filter((m) => m.agent === agentId);
    if (proven.length > 0) return `excluded for misbehaviour (${proven[0]?.kind}): ${proven.map((m) => m.details).join('; ')}`;
    return `did not ${missed} before secure aggregation moved on`;
  }

  /**
   * The aggregate: sum_i w_i clip(delta_i) = W * (decoded value sum), total weight = decoded
   * weight sum; in a DP round the unweighted noisy sum over the fixed denominator (dpDenominator).
   */
  private done(result: AggregationResult): AggregationStatus {
    const encoding = this.encoding as FixedPointParams;
    const server = this.server as SecAggServer;
    const { decoded } = result;
    const dp = this.round.dp;
    let sum: Aggregate;
    try {
      sum = dp === undefined ? weightedAggregate(result, encoding) : dpAggregate(result, dpDenominator(this.round));
    } catch (err) {
      return { kind: 'aborted', reason: `the unmasked total weight is unusable: ${(err as Error).message}` };
    }
    const d = result.dropouts;
    const aggregate: Aggregate = {
      ...sum,
      metrics: {
        ...sum.metrics,
        secaggThreshold: server.params.threshold,
        secaggNeighbours: server.params.neighbours,
        secaggSurvivors: result.survivors.length,
        secaggDropouts: d.advertise.length + d.shareKeys.length + d.shareCheck.length + d.maskedInput.length,
        secaggUnmaskSilent: d.consistency.length + d.unmask.length,
        secaggMisbehaving: new Set(result.misbehaviour.map((m) => m.agent)).size,
        secaggClip: encoding.clip,
        secaggScale: encoding.scale,
        ...(dp === undefined ? {} : dpRecord(dp, decoded.count, dpDenominator(this.round), minHonestSurvivors(server.params))),
      },
    };
    return { kind: 'done', aggregate };
  }

  /** One protocol `secagg` envelope per recipient; a payload over the limit aborts the round. */
  private outbound(messages: readonly ServerMessage[]): OutboundSecagg[] {
    const out: OutboundSecagg[] = [];
    for (const m of messages) {
      const payload = encodeCanonical({ envelope: m as unknown as CanonicalValue, signer: this.options.identity.publicKey });
      if (payload.byteLength > this.options.maxPayloadBytes) {
        this.terminal = {
          kind: 'aborted',
          reason: `the secagg '${m.stage}' message is ${payload.byteLength} bytes, over the protocol's maxSecaggPayloadBytes (${this.options.maxPayloadBytes}); raise limits.maxSecaggPayloadBytes or shrink the cohort`,
        };
        return [];
      }
      for (const to of m.recipients) {
        out.push({
          to: [to],
          message: { type: 'secagg', roundId: this.round.roundId, stage: m.stage, from: SECAGG_SERVER_ID, to, payload },
        });
      }
    }
    return out;
  }
}

/** A weighted round's aggregate: sum_i w_i clip(delta_i) = W * (decoded value sum), over the decoded weight sum. */
function weightedAggregate(result: AggregationResult, encoding: FixedPointParams): Aggregate {
  const { decoded } = result;
  const bound = weightedMean(decoded, encoding).errorBound;
  const W = encoding.maxWeight;
  const weightedSum = new Float64Array(decoded.values.length);
  for (let i = 0; i < weightedSum.length; i++) weightedSum[i] = (decoded.values[i] as number) * W;
  // secaggQuantisationBound: per-coordinate bound on |mean delta - exact weighted mean of the clipped deltas|.
  return { weightedSum, totalWeight: decoded.weight, contributors: [...result.survivors], metrics: { secaggQuantisationBound: bound } };
}

/** A DP round's aggregate: the unweighted sum of the noisy inputs over the sampled cohort size. */
function dpAggregate(result: AggregationResult, denominator: number): Aggregate {
  const { decoded } = result;
  return {
    weightedSum: decoded.values,
    totalWeight: denominator,
    contributors: [...result.survivors],
    metrics: { secaggQuantisationBound: decoded.valueErrorBound / denominator },
  };
}

/** What a DP round's sum carried: sqrt(survivors / n_min) sigma C (the survivors assumed honest), n_min, the denominator. */
function dpRecord(dp: NonNullable<AggregationRound['dp']>, survivors: number, denominator: number, minHonest: number): Record<string, number> {
  return dpMetrics(denominator, sumNoiseStd(dp, survivors, minHonest), minHonest);
}

/** Several translated steps as one (in order: messages concatenated, the last status). */
function merge(steps: readonly AggregationStep[]): AggregationStep {
  if (steps.length === 1) return steps[0] as AggregationStep;
  const last = steps[steps.length - 1] as AggregationStep;
  const stageTimer = [...steps].reverse().find((x) => x.stageTimer !== undefined)?.stageTimer;
  const excluded = steps.flatMap((x) => x.excluded ?? []);
  return {
    messages: steps.flatMap((x) => x.messages),
    status: last.status,
    ...(stageTimer === undefined ? {} : { stageTimer }),
    ...(excluded.length === 0 ? {} : { excluded }),
  };
}

/** The masked vector of an update frame (one uint32 tensor of `length` words), as a view. */
function maskedWords(frame: DecodedFrame, length: number): Uint32Array {
  const t = frame.tensors;
  if (t.length !== 1 || t[0]?.dtype !== 'uint32' || t[0].name !== MASKED_TENSOR) {
    throw new AggregationInputError(`a secure update frame holds one uint32 tensor '${MASKED_TENSOR}'`);
  }
  const data = frame.data;
  if (data.byteLength !== length * 4 || (data.byteOffset & 3) !== 0) {
    throw new AggregationInputError(`masked data is ${data.byteLength} bytes at offset ${data.byteOffset}; expected ${length * 4} aligned bytes`);
  }
  return new Uint32Array(data.buffer, data.byteOffset, length);
}

// ---- the coordinator's secagg identity -----------------------------------------------------

export const SECAGG_IDENTITY_FILE = 'secagg-identity.json';

/**
 * Loads (or creates, mode 0600) the coordinator's Ed25519 key pair that signs secagg messages,
 * in <stateDir>/secagg-identity.json. Kept across restarts: agents pin its public key.
 */
export async function loadOrCreateSecaggIdentity(stateDir: string): Promise<SigningKeyPair> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, SECAGG_IDENTITY_FILE);
  let text: string | undefined;
  try {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) throw new SecaggIdentityError(path, `mode 0${(st.mode & 0o777).toString(8)} lets others read the secret key (chmod 600)`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    let f: { version?: unknown; publicKey?: unknown; secretKey?: unknown };
    try {
      f = JSON.parse(text) as typeof f;
    } catch (err) {
      throw new SecaggIdentityError(path, `not JSON (${(err as Error).message})`);
    }
    if (f.version !== 1 || typeof f.publicKey !== 'string' || typeof f.secretKey !== 'string') {
      throw new SecaggIdentityError(path, 'expected {version: 1, publicKey (hex), secretKey (base64)}');
    }
    const publicKey = new Uint8Array(Buffer.from(f.publicKey, 'hex'));
    const secretKey = new Uint8Array(Buffer.from(f.secretKey, 'base64'));
    if (publicKey.length !== 32 || secretKey.length !== 64 || Buffer.compare(Buffer.from(secretKey.subarray(32)), Buffer.from(publicKey)) !== 0) {
      throw new SecaggIdentityError(path, 'keys are not a 32-byte public key and its 64-byte tweetnacl secret key');
    }
    return { publicKey, secretKey };
  }
  const pair = generateSigningKeyPair();
  const body = { version: 1, publicKey: Buffer.from(pair.publicKey).toString('hex'), secretKey: Buffer.from(pair.secretKey).toString('base64') };
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateSecaggIdentity(stateDir);
    throw err;
  }
  try {
    await fh.writeFile(`${JSON.stringify(body, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(path, 0o600);
  return pair;
}

/** A fresh random run id (hex). */
export function newRunId(): string {
  return randomBytes(8).toString('hex');
}
