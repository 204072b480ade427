// Aggregation: turning the cohort's updates into one aggregate, the only thing a strategy sees.
//
// An AggregationSession lives for one round. The round engine feeds it validated updates (and,
// for secure aggregation, `secagg` envelopes) and asks it to close; it answers with steps:
// messages to relay to agents plus a status. The plain implementation adds each weighted delta
// into a Float64 running sum and forgets it, so it exposes nothing but the weighted sum and the
// total weight at the end, which is also all a SecAgg+ session can reveal. The secure session
// (secure-aggregation.ts: packages/secagg's SecAggServer behind this interface) maps:
//   start()          -> the signed setup broadcast (and the advertise stage timer),
//   receive()        -> advertise / share-keys / unmask-response envelopes, relaying keys and
//                       ciphertexts; the masked-input envelope comes without its vector,
//   addUpdate()      -> the masked fixed-point vector (update frame of uint32, `updateManifest`),
//   stageTimeout()   -> a protocol-stage deadline (advertise, share-keys) expired,
//   close()          -> end of masked-input: the unmask request (status 'finishing'); a second
//                       close() (the engine's aggregation deadline) ends the unmask stage,
//   and reports 'done' with the decoded weighted sum and weight, or 'aborted' with a reason.
//
// Synchronous: every method returns its step at once (no promises), so the engine stays pure.
//
// DP rounds (round.dp; DP-FedAvg, McMahan et al. 2018): the sum is unweighted over deltas clipped
// to C and the aggregate's totalWeight is a fixed denominator (the sampled cohort size, or under
// Poisson sampling q * invited), so one agent moves the mean by at most C / denominator however
// many images it has and whoever else drops out (the strategy divides as usual). The noise: the agents' (secure) or, with dp.noise
// 'coordinator' (plain only), N(0, sigma^2 C^2) the plain session adds to the sum itself.
import type { AggregationMode, DecodedFrame, DpNoisePlacement, Manifest, SecaggMessage } from '@fedclr/protocol';
import { cryptoGaussian, type DpNoiseSpec, type GaussianSource } from '@fedclr/secagg';
import { AggregationInputError, AggregationStateError } from './errors.js';

/** What a round's aggregation reveals: the sum of weighted deltas, never a single update. */
export interface Aggregate {
  /** Sum over included agents of w_i * (local_i - global), in float64 (DP: w_i = 1, plus the noise). */
  readonly weightedSum: Float64Array;
  /** Sum of the weights w_i (example counts; DP rounds: the sampled cohort size, a fixed denominator). */
  readonly totalWeight: number;
  /** Agents whose updates are in the sum. */
  readonly contributors: readonly string[];
  /** Round metrics the aggregation adds (e.g. secure aggregation's threshold and quantisation bound). */
  readonly metrics?: Readonly<Record<string, number>>;
}

export type AggregationStatus =
  | { readonly kind: 'collecting' }
  /** Collection is closed but more messages are needed (secure aggregation's unmask stage). */
  | { readonly kind: 'finishing'; readonly waitingFor: readonly string[] }
  | { readonly kind: 'done'; readonly aggregate: Aggregate }
  | { readonly kind: 'aborted'; readonly reason: string; readonly metrics?: Readonly<Record<string, number>> };

/** A secagg envelope to deliver to one or more agents. */
export interface OutboundSecagg {
  readonly to: readonly string[];
  readonly message: SecaggMessage;
}

export interface AggregationStep {
  readonly messages: readonly OutboundSecagg[];
  /** The status after the step. */
  readonly status: AggregationStatus;
  /** Arm the protocol-stage timer: after `delayMs` the engine calls `stageTimeout(stage)`. */
  readonly stageTimer?: { readonly stage: string; readonly delayMs: number };
  /** Cohort members that can no longer contribute (they missed a protocol stage). */
  readonly excluded?: readonly { readonly agentId: string; readonly reason: string }[];
  /** An agent message was refused (state unchanged); the engine logs it. */
  readonly refused?: { readonly agentId: string; readonly error: Error };
}

/** What a session knows about its round. */
export interface AggregationRound {
  readonly roundId: number;
  readonly modelVersion: string;
  /** Sorted agent ids of the cohort. */
  readonly cohort: readonly string[];
  /** The model manifest (all float32). */
  readonly manifest: Manifest;
  /** Number of model parameters. */
  readonly dimension: number;
  /** Plain mode: each update's delta is scaled down to at most this L2 norm (default: no bound). */
  readonly maxUpdateNorm?: number;
  /** A DP round: round config dp with its clipNorm. */
  readonly dp?: AggregationDp;
}

/** A DP round's promise as the aggregation needs it: sigma, C, who adds the noise, the fixed denominator. */
export interface AggregationDp extends DpNoiseSpec {
  readonly noise: DpNoisePlacement;
  /**
   * The fixed denominator: the engine sets it from the round, never from who turned up. A
   * coordinator-sampled round: the cohort size (the default). A Poisson round: q * invited, the
   * expected cohort size (DP-FedAvg), so that it does not depend on who was sampled.
   */
  readonly denominator?: number;
}

/** A DP round's fixed denominator (AggregationDp.denominator, else the cohort size). */
export function dpDenominator(round: AggregationRound): number {
  return round.dp?.denominator ?? round.cohort.length;
}

/** A validated update, ready to be summed. */
export interface UpdateContribution {
  /** The decoded update frame; it already matched `updateManifest`, hash and NaN/Inf checks. */
  readonly frame: DecodedFrame;
  /** The weight: present in plain mode, absent in secure mode. */
  readonly exampleCount: number | undefined;
}

export interface AggregationSession {
  readonly mode: AggregationMode;
  /** The layout an update frame must have (plain: the model manifest; secure: the masked vector). */
  readonly updateManifest: Manifest;
  /** Round start: messages to send along with round-start (none in plain mode). */
  start(): AggregationStep;
  /** A validated update from a cohort member. Throws a catalogued error if it cannot be summed. */
  addUpdate(agentId: string, update: UpdateContribution): AggregationStep;
  /** A secagg envelope from a cohort member. */
  receive(agentId: string, message: SecaggMessage): AggregationStep;
  /** The agent will not contribute (disconnected, failed, rejected). */
  drop(agentId: string): AggregationStep;
  /** Ends the current collection stage with whoever answered (all answered, or a deadline). */
  close(): AggregationStep;
  /** The stage timer a step armed expired (sessions that arm none need not implement it). */
  stageTimeout?(stage: string): AggregationStep;
}

/** Opens one session per round. */
export interface AggregatorFactory {
  readonly mode: AggregationMode;
  open(round: AggregationRound): AggregationSession;
}

// ---- plain (unmasked) aggregation ----------------------------------------------------------

const NONE: readonly OutboundSecagg[] = Object.freeze([]);

/**
 * Plain aggregation: sum_i w_i * delta_i accumulated in float64 as updates arrive. Float64 has
 * 29 more mantissa bits than the float32 inputs, so for any realistic cohort (up to millions of
 * agents) the accumulated rounding error stays far below one float32 ulp of the result. DP
 * rounds: w_i = 1, every delta scaled to norm <= C, and with dp.noise 'coordinator' the session
 * adds N(0, sigma^2 C^2) per coordinate to the sum when collection closes.
 */
export class PlainAggregationSession implements AggregationSession {
  readonly mode = 'plain' as const;
  readonly updateManifest: Manifest;
  private readonly round: AggregationRound;
  private sum: Float64Array | undefined;
  private weight = 0;
  private readonly contributors: string[] = [];
  private readonly cohort: ReadonlySet<string>;
  private readonly maxNorm: number;
  private readonly gaussian: GaussianSource;
  private clippedUpdates = 0;
  private closed = false;

  constructor(round: AggregationRound, gaussian: GaussianSource = cryptoGaussian) {
    this.round = round;
    this.updateManifest = round.manifest;
    this.cohort = new Set(round.cohort);
    this.sum = new Float64Array(round.dimension);
    // DP: the server enforces the clip norm itself, whatever an agent sent (C bounds its influence).
    this.maxNorm = Math.min(round.maxUpdateNorm ?? Number.POSITIVE_INFINITY, round.dp?.clipNorm ?? Number.POSITIVE_INFINITY);
    this.gaussian = gaussian;
  }

  start(): AggregationStep {
    return { messages: NONE, status: { kind: 'collecting' } };
  }

  addUpdate(agentId: string, update: UpdateContribution): AggregationStep {
    if (this.closed || this.sum === undefined) throw new AggregationStateError('addUpdate', 'closed');
    if (!this.cohort.has(agentId)) throw new AggregationInputError(`agent '${agentId}' is not in round ${this.round.roundId}'s cohort`);
    if (this.contributors.includes(agentId)) throw new AggregationInputError(`agent '${agentId}' already contributed`);
    const count = update.exampleCount;
    if (count === undefined || !Number.isSafeInteger(count) || count < 1) {
      throw new AggregationInputError(`plain aggregation needs a positive integer exampleCount; got ${String(count)}`);
    }
    const data = update.frame.data;
    if (data.byteLength !== this.round.dimension * 4 || (data.byteOffset & 3) !== 0) {
      throw new AggregationInputError(
        `update data is ${data.byteLength} bytes at offset ${data.byteOffset}; expected ${this.round.dimension * 4} aligned bytes`,
      );
    }
    for (const t of update.frame.tensors) {
      if (t.dtype !== 'float32') throw new AggregationInputError(`tensor '${t.name}' is ${t.dtype}; plain updates are float32`);
    }
    const delta = new Float32Array(data.buffer, data.byteOffset, this.round.dimension);
    // The server's norm bound: one update moves the weighted mean by at most maxUpdateNorm.
    let sq = 0;
    for (let i = 0; i < delta.length; i++) sq += (delta[i] as number) * (delta[i] as number);
    const norm = Math.sqrt(sq);
    const scale = norm > this.maxNorm ? this.maxNorm / norm : 1;
    if (scale < 1) this.clippedUpdates++;
    // DP rounds are unweighted: an agent's example count buys it no extra influence.
    const w = this.round.dp === undefined ? count : 1;
    const ws = w * scale;
    const sum = this.sum;
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + ws * (delta[i] as number);
    this.weight += w;
    this.contributors.push(agentId);
    return { messages: NONE, status: { kind: 'collecting' } };
  }

  receive(_agentId: string, message: SecaggMessage): AggregationStep {
    throw new AggregationInputError(`a plain round takes no secagg messages (got stage '${message.stage}')`);
  }

  drop(_agentId: string): AggregationStep {
    return { messages: NONE, status: this.closed ? this.doneStatus() : { kind: 'collecting' } };
  }

  close(): AggregationStep {
    if (this.closed) throw new AggregationStateError('close', 'already closed');
    this.closed = true;
    const dp = this.round.dp;
    if (dp?.noise === 'coordinator' && this.sum !== undefined && this.contributors.length > 0) {
      const noise = new Float64Array(this.sum.length);
      this.gaussian(noise);
      const std = dp.noiseMultiplier * dp.clipNorm;
      for (let i = 0; i < noise.length; i++) this.sum[i] = (this.sum[i] as number) + std * (noise[i] as number);
    }
    return { messages: NONE, status: this.doneStatus() };
  }

  private doneStatus(): AggregationStatus {
    if (this.contributors.length === 0 || this.sum === undefined) return { kind: 'aborted', reason: 'no updates to aggregate' };
    const dp = this.round.dp;
    return {
      kind: 'done',
      aggregate: {
        weightedSum: this.sum,
        totalWeight: dp === undefined ? this.weight : dpDenominator(this.round),
        contributors: [...this.contributors],
        metrics: {
          clippedUpdates: this.clippedUpdates,
          ...(Number.isFinite(this.maxNorm) ? { maxUpdateNorm: this.maxNorm } : {}),
          ...(dp === undefined ? {} : dpMetrics(dpDenominator(this.round), dp.noise === 'coordinator' ? dp.noiseMultiplier * dp.clipNorm : 0)),
        },
      },
    };
  }
}

/**
 * A DP round's record: the noise standard deviation the sum carried per coordinate and the fixed
 * denominator (plus, secure rounds, n_min).
 */
export function dpMetrics(denominator: number, noiseStd: number, minHonest?: number): Record<string, number> {
  return { dpNoiseStd: noiseStd, dpDenominator: denominator, ...(minHonest === undefined ? {} : { dpMinHonest: minHonest }) };
}

/** Plain aggregation; `gaussian` is the central DP noise source (default cryptoGaussian; tests seed it). */
export function createPlainAggregator(options: { readonly gaussian?: GaussianSource } = {}): AggregatorFactory {
  return { mode: 'plain', open: (round) => new PlainAggregationSession(round, options.gaussian) };
}

export const plainAggregator: AggregatorFactory = createPlainAggregator();
