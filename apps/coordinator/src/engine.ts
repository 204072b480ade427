// The round engine: the coordinator's protocol logic, pure and transport-free (sans-IO, like
// h11). It never touches a socket, a timer, a file or the clock: `handle(event, now)` takes
// one event (an agent became ready or left, a message arrived, a timer fired, a commit
// finished, shutdown was requested) and returns the actions the edge must carry out (send a
// message, set or clear a timer, persist a round, stop). Every decision (cohort sampling,
// deadlines, quorum, late or invalid updates, failed-round retry) is made here and is unit
// tested without sockets.
//
// Phases:
//   waiting     no round running; starts one when enough ready agents are there (after an
//               optional cohort wait and, after a failure, the retry delay)
//   inviting    sampling 'poisson' only: sampling-invite sent to every ready agent; waiting for
//               their answers (or the invitation timer); the cohort is exactly the volunteers
//   collecting  round-start sent to the cohort; updates are checked and summed
//   aggregating collection closed, the aggregation session needs more messages (secure mode)
//               or is still computing (an 'aggregation-pending' step not yet fed back)
//   committing  new model computed; waiting for the edge to persist it (commit-done / -failed)
//   finished    the configured number of rounds completed
//   stopped     after shutdown; the edge may close everything
//
// A round id names one attempt; ids only grow (a failed round is retried under a new id), so
// an update can never be confused with a later attempt's.
//
// Aggregation sessions (plain and secure) are synchronous: each call returns its step at once.
// Steps may arm a protocol-stage timer ('aggregation-stage') and exclude cohort members that
// missed a protocol stage or misbehaved, so the round need not wait for them.
import {
  decodeFrame,
  encodeFrame,
  elementCount,
  openUpdate,
  readFrameHeader,
  updateRejectedForError,
} from '@fedclr/protocol';
import type {
  CoordinatorMessage,
  ErrorMessage,
  Manifest,
  ProtocolLimits,
  RoundConfig,
  RoundEndMessage,
  RoundStartMessage,
  SamplingAnswerMessage,
  SamplingConfig,
  SecaggMessage,
  UpdateMessage,
  UpdateRejectReason,
  UpdateRejectedMessage,
} from '@fedclr/protocol';
import type { Aggregate, AggregationSession, AggregationStep, AggregatorFactory } from './aggregation.js';
import { EngineStateError, ModelMismatchError } from './errors.js';
import { CONSTANT_SCHEDULE, runProgress, scheduledLearningRate, type LrSchedule, type TimeBudget } from './lr-schedule.js';
import type { PrivacyLedger, PrivacyLedgerState, PrivacySpent } from './privacy-ledger.js';
import { COORDINATOR_SAMPLING, roundSeed, sampleCohort, type SamplingSettings } from './sampling.js';
import type { Strategy, StrategyState } from './strategy.js';

export type EnginePhase = 'waiting' | 'inviting' | 'collecting' | 'aggregating' | 'committing' | 'finished' | 'stopped';
export type TimerName = 'deadline' | 'straggler' | 'aggregation-deadline' | 'aggregation-stage' | 'cohort-wait' | 'invitation' | 'retry';
export type ShutdownMode = 'abort' | 'finish';
/** What agents are told when the coordinator stops: 'restarting' invites them to reconnect. */
export interface ShutdownNotice {
  readonly reason: 'stopping' | 'restarting';
  readonly reconnectAfterMs?: number;
}

export type ParticipantStatus =
  /** Selected, no answer yet. */
  | 'selected'
  /** Update accepted and in the aggregate. */
  | 'included'
  /** Update accepted but not in the aggregate (e.g. a secure-aggregation dropout). */
  | 'excluded'
  /** Update refused (invalid, wrong shape, non-finite, bad signature...). */
  | 'rejected'
  /** No update by the deadline. */
  | 'timeout'
  /** Disconnected during the round. */
  | 'dropped'
  /** Reported an error instead of an update. */
  | 'failed'
  /** Sent its update after the round closed. */
  | 'late';

export interface ParticipantRecord {
  readonly agentId: string;
  readonly status: ParticipantStatus;
  readonly exampleCount?: number;
  readonly loss?: number;
  readonly metrics?: Readonly<Record<string, number>>;
  readonly reason?: string;
  readonly bytes?: number;
}

export interface RoundSummary {
  readonly roundId: number;
  readonly status: 'completed' | 'failed' | 'aborted';
  readonly startedAt: number;
  readonly endedAt: number;
  readonly durationMs: number;
  readonly baseModelVersion: string;
  /** The new model version (completed rounds only). */
  readonly modelVersion?: string;
  readonly cohort: readonly string[];
  readonly participants: readonly ParticipantRecord[];
  readonly totalWeight?: number;
  readonly reason?: string;
  /** Round metrics: included, weighted mean loss, norm of the mean delta, the learning rate sent, ... */
  readonly metrics: Readonly<Record<string, number>>;
}

/** The global model as the engine holds it. */
export interface GlobalModel {
  readonly architecture: string;
  readonly manifest: Manifest;
  readonly weights: Float32Array;
  readonly modelVersion: string;
  /** The encoded weights frame (sent in round-start; its header hash is modelVersion). */
  readonly frame: Buffer;
  /** Round that produced it (0 for the initial model). */
  readonly roundId: number;
  /** Completed rounds so far. */
  readonly completedRounds: number;
}

/** What the edge persists for a completed round, atomically with its summary. */
export interface CommitRecord {
  readonly model: GlobalModel;
  readonly strategyState: StrategyState;
  readonly summary: RoundSummary;
  /** DP runs: the privacy ledger with this round charged (persist it with the round). */
  readonly privacy?: PrivacyLedger;
  readonly privacyState?: PrivacyLedgerState;
}

export interface RoundStartedRecord {
  readonly roundId: number;
  readonly startedAt: number;
  readonly baseModelVersion: string;
  readonly cohort: readonly string[];
  readonly config: RoundConfig;
  readonly required: number;
}

export type EngineEvent =
  | { readonly type: 'start' }
  /** An authenticated agent can be picked for rounds. */
  | { readonly type: 'agent-ready'; readonly agentId: string }
  | { readonly type: 'agent-left'; readonly agentId: string }
  /** A schema-valid, signature-checked update. */
  | { readonly type: 'update'; readonly agentId: string; readonly message: UpdateMessage }
  /** An update the edge could not accept (schema, signature, transport size). */
  | {
      readonly type: 'update-invalid';
      readonly agentId: string;
      readonly roundId: number | undefined;
      readonly reason: UpdateRejectReason;
      readonly code?: string;
      readonly message: string;
    }
  | { readonly type: 'agent-error'; readonly agentId: string; readonly message: ErrorMessage }
  | { readonly type: 'secagg'; readonly agentId: string; readonly message: SecaggMessage }
  /** A signature-checked answer to a Poisson round's sampling-invite. */
  | { readonly type: 'sampling-answer'; readonly agentId: string; readonly message: SamplingAnswerMessage }
  | { readonly type: 'timer'; readonly timer: TimerName; readonly roundId: number }
  | { readonly type: 'commit-done'; readonly roundId: number }
  | { readonly type: 'commit-failed'; readonly roundId: number; readonly error: string }
  /** Stop after the running round ('finish') or now ('abort'); agents get a shutdown notice. */
  | { readonly type: 'shutdown'; readonly mode: ShutdownMode; readonly notice?: ShutdownNotice };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type EngineAction =
  | { readonly type: 'send'; readonly to: string; readonly message: CoordinatorMessage }
  | { readonly type: 'set-timer'; readonly timer: TimerName; readonly roundId: number; readonly delayMs: number }
  | { readonly type: 'clear-timer'; readonly timer: TimerName }
  | { readonly type: 'round-started'; readonly record: RoundStartedRecord }
  /** Persist atomically, then feed back commit-done or commit-failed. */
  | { readonly type: 'commit'; readonly roundId: number; readonly record: CommitRecord }
  | { readonly type: 'round-failed'; readonly summary: RoundSummary }
  | { readonly type: 'update-accepted'; readonly roundId: number; readonly agentId: string; readonly exampleCount: number }
  | {
      readonly type: 'update-rejected';
      readonly roundId: number;
      readonly agentId: string;
      readonly reason: UpdateRejectReason;
      readonly message: string;
      /** The update came after its round closed (the participant record may be marked late). */
      readonly late: boolean;
    }
  | { readonly type: 'finished'; readonly completedRounds: number; readonly reason: FinishReason }
  | { readonly type: 'stopped' }
  | { readonly type: 'log'; readonly level: LogLevel; readonly msg: string; readonly data?: Readonly<Record<string, unknown>> };

/** Why a run finished: its rounds are done, or the next round would exceed the privacy budget. */
export type FinishReason = 'rounds' | 'privacy-budget';

export interface EngineSettings {
  /** Completed rounds to run. */
  readonly rounds: number;
  readonly minCohort: number;
  readonly maxCohort: number;
  readonly cohortWaitMs: number;
  /** The first round of this run waits for this many ready agents (default 0: minCohort). */
  readonly firstRoundAgents?: number;
  /** How cohorts are chosen (default: the coordinator samples them, sampleCohort). */
  readonly sampling?: SamplingSettings;
  /**
   * Round config template; aggregation comes from the aggregator, seed is derived per round, and
   * learningRate is the base of `lrSchedule`.
   */
  readonly roundConfig: Omit<RoundConfig, 'aggregation' | 'seed' | 'cohortSize' | 'sampling'>;
  /** The learning rate across rounds (default constant: roundConfig.learningRate every round). */
  readonly lrSchedule?: LrSchedule;
  /** The run's time budget, if any: the schedule's progress is also the share of it used. */
  readonly budget?: TimeBudget;
  /** Added to roundConfig.deadlineMs for the coordinator's own collection deadline. */
  readonly deadlineGraceMs: number;
  readonly aggregationDeadlineMs: number;
  readonly quorum: { readonly fraction: number; readonly minCount: number };
  /**
   * Once the quorum of updates is in, collection closes after this grace time instead of waiting
   * for the slowest agent until the deadline (secure aggregation treats the late ones as dropped).
   * Undefined: no early close.
   */
  readonly stragglerGraceMs?: number;
  readonly retryDelayMs: number;
  readonly seed: number;
  readonly maxExampleCount: number;
  /** Plain mode's server-side L2 bound on each update (default 'auto', see maxUpdateNormFor). */
  readonly maxUpdateNorm?: number | 'auto';
  readonly limits: Readonly<ProtocolLimits>;
}

/**
 * The L2 bound the server clips each plain update to. A number: that. 'auto': the round's
 * clipNorm C (honest agents already clip to it; a plain DP round's noise is the coordinator's
 * own, added after the clip); without clipNorm, the global model's own norm (at least 1): one
 * update can at most double the model. A DP round's session clips to C whatever this says.
 */
export function maxUpdateNormFor(setting: number | 'auto' | undefined, config: Pick<RoundConfig, 'clipNorm'>, global: Float32Array): number {
  if (typeof setting === 'number') return setting;
  const c = config.clipNorm ?? 0;
  if (c > 0) return c * (1 + 1e-6);
  let sq = 0;
  for (let i = 0; i < global.length; i++) sq += (global[i] as number) * (global[i] as number);
  return Math.max(1, Math.sqrt(sq));
}

export interface EngineInit {
  readonly settings: EngineSettings;
  readonly strategy: Strategy;
  readonly aggregator: AggregatorFactory;
  /** The current global model (initial, or restored from the last completed round). */
  readonly model: {
    readonly architecture: string;
    readonly manifest: Manifest;
    readonly weights: Float32Array;
    readonly roundId: number;
    readonly completedRounds: number;
  };
  readonly strategyState?: StrategyState;
  /** A DP run's privacy ledger (fresh, or restored with the model): charged per committed round. */
  readonly privacy?: PrivacyLedger;
  /** First round id to use (greater than every id ever used in this run). */
  readonly nextRoundId: number;
}

export interface EngineStatus {
  readonly phase: EnginePhase;
  readonly completedRounds: number;
  readonly targetRounds: number;
  readonly modelVersion: string;
  readonly modelRound: number;
  readonly readyAgents: number;
  readonly round?: {
    readonly roundId: number;
    readonly startedAt: number;
    readonly deadlineAt: number;
    readonly cohortSize: number;
    readonly answered: number;
    readonly accepted: number;
    readonly required: number;
  };
  readonly activeAgents: number;
  readonly stopping: boolean;
  /** Set once the run has finished. */
  readonly finishedBy?: FinishReason;
  /** DP runs: epsilon spent so far, and the budget. */
  readonly privacy?: PrivacySpent & { readonly targetEpsilon: number | null; readonly noiseMultiplier: number; readonly samplingRate: number };
}

interface Participant {
  status: ParticipantStatus;
  exampleCount?: number;
  loss?: number;
  metrics?: Record<string, number>;
  reason?: string;
  bytes?: number;
}

/** A Poisson round between its invitations and its round-start (phase 'inviting'). */
interface Invitation {
  readonly roundId: number;
  readonly startedAt: number;
  readonly rate: number;
  /** Sorted ids of the agents invited. */
  readonly invited: readonly string[];
  /** Answers so far (true: volunteered). */
  readonly answers: Map<string, boolean>;
}

interface ActiveRound {
  readonly roundId: number;
  readonly startedAt: number;
  readonly deadlineAt: number;
  readonly cohort: readonly string[];
  readonly config: RoundConfig;
  readonly required: number;
  readonly base: GlobalModel;
  readonly session: AggregationSession;
  readonly participants: Map<string, Participant>;
  accepted: number;
  pending?: CommitRecord;
  /** The aggregation deadline passed and the final close() is being computed. */
  aggregationExpired: boolean;
  /** The session was told collection is over (its first close()). */
  collectionClosed: boolean;
  /** Stage of the armed protocol-stage timer. */
  stageTimer?: string;
}

/** Builds the global-model record (encodes the frame once; its hash is the model version). */
export function makeGlobalModel(
  input: { architecture: string; manifest: Manifest; weights: Float32Array; roundId: number; completedRounds: number },
  limits?: Readonly<ProtocolLimits>,
): GlobalModel {
  for (const t of input.manifest) {
    if (t.dtype !== 'float32') throw new ModelMismatchError(`tensor '${t.name}' is ${t.dtype}; the coordinator's model is all float32`);
  }
  const n = input.manifest.reduce((s, t) => s + elementCount(t.shape), 0);
  if (n !== input.weights.length) {
    throw new ModelMismatchError(`the manifest describes ${n} weights but ${input.weights.length} were given`);
  }
  const frame = encodeFrame({ manifest: input.manifest, data: input.weights }, limits === undefined ? {} : { limits });
  const header = readFrameHeader(frame, limits === undefined ? {} : { limits });
  return {
    architecture: input.architecture,
    manifest: header.manifest,
    weights: input.weights,
    modelVersion: header.hash,
    frame,
    roundId: input.roundId,
    completedRounds: input.completedRounds,
  };
}

export class RoundEngine {
  private readonly settings: EngineSettings;
  private readonly strategy: Strategy;
  private readonly aggregator: AggregatorFactory;
  private model: GlobalModel;
  private strategyState: StrategyState;
  private nextRoundId: number;
  private phaseValue: EnginePhase = 'waiting';
  private readonly ready = new Set<string>();
  private round: ActiveRound | undefined;
  private invitation: Invitation | undefined;
  /** Highest round id that was started (closed unless it is `round`). */
  private lastRoundId: number;
  private retryAt = 0;
  /** Start to commit of the last completed round (ms): the next round's expected duration. */
  private lastRoundMs = 0;
  private cohortTimerSet = false;
  private cohortWaitOver = false;
  /** A round has started since this engine was created (firstRoundAgents no longer applies). */
  private roundStartedThisRun = false;
  private shutdownMode: ShutdownMode | undefined;
  private shutdownNotice: ShutdownNotice = { reason: 'stopping' };
  private started = false;
  private privacy: PrivacyLedger | undefined;
  private finishedBy: FinishReason | undefined;

  constructor(init: EngineInit) {
    this.settings = init.settings;
    this.strategy = init.strategy;
    this.aggregator = init.aggregator;
    this.model = makeGlobalModel(init.model, init.settings.limits);
    this.strategyState = init.strategyState ?? init.strategy.initialState(init.model.weights.length);
    this.nextRoundId = init.nextRoundId;
    this.lastRoundId = init.nextRoundId - 1;
    this.privacy = init.privacy;
    if (this.model.completedRounds >= this.settings.rounds) {
      this.phaseValue = 'finished';
      this.finishedBy = 'rounds';
    }
  }

  get phase(): EnginePhase {
    return this.phaseValue;
  }

  get globalModel(): GlobalModel {
    return this.model;
  }

  status(): EngineStatus {
    const r = this.round;
    let answered = 0;
    if (r !== undefined) for (const p of r.participants.values()) if (p.status !== 'selected') answered++;
    return {
      phase: this.phaseValue,
      completedRounds: this.model.completedRounds,
      targetRounds: this.settings.rounds,
      modelVersion: this.model.modelVersion,
      modelRound: this.model.roundId,
      readyAgents: this.ready.size,
      activeAgents: r === undefined ? 0 : [...r.participants.values()].filter((p) => p.status === 'selected').length,
      stopping: this.shutdownMode !== undefined,
      ...(this.finishedBy === undefined ? {} : { finishedBy: this.finishedBy }),
      ...(this.privacy === undefined
        ? {}
        : {
            privacy: {
              ...this.privacy.spent(),
              targetEpsilon: this.privacy.settings.targetEpsilon ?? null,
              noiseMultiplier: this.privacy.settings.noiseMultiplier,
              samplingRate: this.samplingRate(),
            },
          }),
      ...(r === undefined
        ? {}
        : {
            round: {
              roundId: r.roundId,
              startedAt: r.startedAt,
              deadlineAt: r.deadlineAt,
              cohortSize: r.cohort.length,
              answered,
              accepted: r.accepted,
              required: r.required,
            },
          }),
    };
  }

  /** Handles one event; returns the actions to carry out, in order. */
  handle(event: EngineEvent, now: number): EngineAction[] {
    const out: EngineAction[] = [];
    if (this.phaseValue === 'stopped') {
      if (event.type === 'update') {
        this.reject(out, event.agentId, event.message.roundId, 'late', 'the coordinator has stopped', true);
      }
      return out;
    }
    switch (event.type) {
      case 'start':
        this.started = true;
        if (this.phaseValue === 'finished') out.push({ type: 'finished', completedRounds: this.model.completedRounds, reason: this.finishedBy ?? 'rounds' });
        this.maybeStart(out, now);
        break;
      case 'agent-ready':
        this.onReady(out, event.agentId, now);
        break;
      case 'agent-left':
        this.onLeft(out, event.agentId, now);
        break;
      case 'update':
        this.onUpdate(out, event.agentId, event.message, now);
        break;
      case 'update-invalid':
        this.onInvalidUpdate(out, event, now);
        break;
      case 'agent-error':
        this.onAgentError(out, event.agentId, event.message, now);
        break;
      case 'secagg':
        this.onSecagg(out, event.agentId, event.message, now);
        break;
      case 'sampling-answer':
        this.onSamplingAnswer(out, event.agentId, event.message, now);
        break;
      case 'timer':
        this.onTimer(out, event.timer, event.roundId, now);
        break;
      case 'commit-done':
        this.onCommitDone(out, event.roundId, now);
        break;
      case 'commit-failed':
        this.onCommitFailed(out, event.roundId, event.error, now);
        break;
      case 'shutdown':
        if (event.notice !== undefined) this.shutdownNotice = event.notice;
        this.onShutdown(out, event.mode, now);
        break;
      default: {
        const never: never = event;
        throw new EngineStateError((never as { type: string }).type, this.phaseValue);
      }
    }
    return out;
  }

  // ---- agents ---------------------------------------------------------------------------------

  private onReady(out: EngineAction[], agentId: string, now: number): void {
    this.ready.add(agentId);
    if (this.phaseValue === 'finished') {
      out.push(send(agentId, { type: 'shutdown', reason: 'completed', message: 'the federated run is complete' }));
      return;
    }
    this.maybeStart(out, now);
  }

  private onLeft(out: EngineAction[], agentId: string, now: number): void {
    this.ready.delete(agentId);
    const inv = this.invitation;
    if (inv !== undefined && inv.invited.includes(agentId)) {
      // It cannot join the round: its answer no longer counts (a volunteer gone is dropped, which
      // a coordinator may always do), and the round need not wait for it.
      inv.answers.set(agentId, false);
      this.closeInvitationIfAllAnswered(out, inv, now);
      return;
    }
    const r = this.round;
    if (r === undefined) return;
    const p = r.participants.get(agentId);
    if (p === undefined) return;
    if (this.phaseValue !== 'collecting' && this.phaseValue !== 'aggregating') return;
    if (p.status === 'selected') {
      p.status = 'dropped';
      p.reason = 'disconnected during the round';
      out.push(log('info', 'agent dropped out of the round', { roundId: r.roundId, agentId }));
    } else if (r.session.mode === 'plain') {
      return; // its update is summed already; a plain session needs nothing more from it
    }
    // Secure mode: an agent whose masked input is in still owes the unmask stage its shares.
    this.applyStep(out, r, r.session.drop(agentId), now);
    if (this.phaseValue === 'collecting') this.closeIfAllAnswered(out, r, now);
  }

  // ---- updates --------------------------------------------------------------------------------

  private onUpdate(out: EngineAction[], agentId: string, msg: UpdateMessage, now: number): void {
    const r = this.round;
    const check = this.admissible(agentId, msg.roundId);
    if (check !== undefined) {
      this.reject(out, agentId, msg.roundId, check.reason, check.message, check.late);
      return;
    }
    const round = r as ActiveRound;
    const p = round.participants.get(agentId) as Participant;
    const fail = (reason: UpdateRejectReason, text: string, code?: string): void => {
      p.status = 'rejected';
      p.reason = `${reason}: ${text}`;
      this.reject(out, agentId, msg.roundId, reason, text, false, code);
      this.applyStep(out, round, round.session.drop(agentId), now);
      this.closeIfAllAnswered(out, round, now);
    };
    if (msg.modelVersion !== round.base.modelVersion) {
      fail('stale-model', `the update was trained from model ${msg.modelVersion}; round ${round.roundId} distributed ${round.base.modelVersion}`);
      return;
    }
    if (msg.exampleCount !== undefined && msg.exampleCount > this.settings.maxExampleCount) {
      fail('invalid-message', `exampleCount ${msg.exampleCount} exceeds the coordinator's maximum ${this.settings.maxExampleCount}`);
      return;
    }
    let step: AggregationStep;
    try {
      const frame = openUpdate(
        msg,
        { roundId: round.roundId, modelVersion: round.base.modelVersion, config: round.config },
        { expected: round.session.updateManifest, limits: this.settings.limits, checkFinite: round.config.aggregation === 'plain' },
      );
      step = round.session.addUpdate(agentId, { frame, exampleCount: msg.exampleCount });
    } catch (err) {
      const rejected = updateRejectedForError(round.roundId, err);
      fail(rejected.reason, rejected.message, rejected.code);
      return;
    }
    p.status = 'included';
    round.accepted++;
    if (msg.exampleCount !== undefined) p.exampleCount = msg.exampleCount;
    if (msg.metrics !== undefined) p.loss = msg.metrics.loss;
    if (msg.metrics?.extra !== undefined) p.metrics = { ...msg.metrics.extra };
    p.bytes = msg.frame.byteLength;
    out.push({ type: 'update-accepted', roundId: round.roundId, agentId, exampleCount: msg.exampleCount ?? 0 });
    const grace = this.settings.stragglerGraceMs;
    if (grace !== undefined && round.accepted === round.required && this.phaseValue === 'collecting' && round.accepted < round.cohort.length) {
      // The quorum is in: the slowest agents get `grace` more, not the rest of the deadline.
      out.push({ type: 'set-timer', timer: 'straggler', roundId: round.roundId, delayMs: grace });
      out.push(log('info', 'quorum reached; closing after the straggler grace', { roundId: round.roundId, accepted: round.accepted, graceMs: grace }));
    }
    this.applyStep(out, round, step, now);
    if (this.phaseValue === 'collecting') this.closeIfAllAnswered(out, round, now);
  }

  /** The running round's cohort and each member's status so far (the dashboard's agents view), or undefined between rounds. */
  cohort(): { readonly roundId: number; readonly members: readonly { readonly agentId: string; readonly status: ParticipantStatus }[] } | undefined {
    const r = this.round;
    if (r === undefined) return undefined;
    return { roundId: r.roundId, members: r.cohort.map((agentId) => ({ agentId, status: (r.participants.get(agentId) as Participant).status })) };
  }

  /**
   * Why an update for `roundId` from `agentId` cannot be taken now, or undefined if it can. Pure
   * and cheap: the gateway asks it before it validates, verifies or decodes an upload.
   */
  uploadRefusal(agentId: string, roundId: number): { reason: UpdateRejectReason; message: string; late: boolean } | undefined {
    if (this.phaseValue === 'stopped') return { reason: 'late', message: 'the coordinator has stopped', late: true };
    return this.admissible(agentId, roundId);
  }

  /** Why an update for `roundId` from `agentId` cannot be taken now, or undefined if it can. */
  private admissible(
    agentId: string,
    roundId: number,
  ): { reason: UpdateRejectReason; message: string; late: boolean } | undefined {
    const r = this.round;
    const current = r?.roundId ?? this.lastRoundId;
    if (roundId > current) {
      return { reason: 'round-mismatch', message: `round ${roundId} has not started (the latest round is ${current})`, late: false };
    }
    if (r === undefined || roundId < r.roundId) {
      return { reason: 'late', message: `round ${roundId} is closed`, late: true };
    }
    const p = r.participants.get(agentId);
    if (p === undefined) return { reason: 'not-in-cohort', message: `agent ${agentId} is not in round ${roundId}'s cohort`, late: false };
    if (this.phaseValue !== 'collecting') {
      return { reason: 'late', message: `round ${roundId} stopped collecting updates`, late: true };
    }
    switch (p.status) {
      case 'selected':
        return undefined;
      case 'dropped':
        return { reason: 'late', message: `agent ${agentId} left round ${roundId} before sending its update`, late: false };
      default:
        return { reason: 'duplicate', message: `agent ${agentId} already answered round ${roundId} (${p.status})`, late: false };
    }
  }

  private onInvalidUpdate(
    out: EngineAction[],
    ev: Extract<EngineEvent, { type: 'update-invalid' }>,
    now: number,
  ): void {
    const r = this.round;
    const roundId = ev.roundId ?? r?.roundId ?? this.lastRoundId;
    const p = r?.participants.get(ev.agentId);
    if (r !== undefined && roundId === r.roundId && p !== undefined && p.status === 'selected' && this.phaseValue === 'collecting') {
      p.status = 'rejected';
      p.reason = `${ev.reason}: ${ev.message}`;
      this.reject(out, ev.agentId, roundId, ev.reason, ev.message, false, ev.code);
      this.applyStep(out, r, r.session.drop(ev.agentId), now);
      this.closeIfAllAnswered(out, r, now);
      return;
    }
    this.reject(out, ev.agentId, Math.max(0, roundId), ev.reason, ev.message, false, ev.code);
  }

  private onAgentError(out: EngineAction[], agentId: string, msg: ErrorMessage, now: number): void {
    out.push(log('warn', 'agent reported an error', { agentId, code: msg.code, error: msg.message, roundId: msg.roundId }));
    const r = this.round;
    if (r === undefined) return;
    if (msg.roundId !== undefined && msg.roundId !== r.roundId) return;
    const p = r.participants.get(agentId);
    if (p === undefined) return;
    if (this.phaseValue === 'collecting' && p.status === 'selected') {
      p.status = 'failed';
      p.reason = `${msg.code}: ${msg.message}`;
      this.applyStep(out, r, r.session.drop(agentId), now);
      this.closeIfAllAnswered(out, r, now);
      return;
    }
    // Secure mode: an agent that gave up after its masked input (e.g. it refused an inconsistent
    // unmask request) will not answer the unmask stage; let the session stop waiting for it.
    if ((this.phaseValue === 'collecting' || this.phaseValue === 'aggregating') && r.session.mode === 'secure' && p.status === 'included') {
      // Its input stays in the sum; the reason (e.g. the secagg rule the coordinator broke) is kept.
      p.reason ??= `${msg.code}: ${msg.message}`;
      this.applyStep(out, r, r.session.drop(agentId), now);
    }
  }

  private onSecagg(out: EngineAction[], agentId: string, msg: SecaggMessage, now: number): void {
    const r = this.round;
    if (r === undefined || msg.roundId !== r.roundId || !r.participants.has(agentId) || msg.from !== agentId) {
      out.push(log('warn', 'secagg message outside its round or from the wrong sender: ignored', { agentId, roundId: msg.roundId }));
      return;
    }
    if (this.phaseValue !== 'collecting' && this.phaseValue !== 'aggregating') return;
    let step: AggregationStep;
    try {
      step = r.session.receive(agentId, msg);
    } catch (err) {
      out.push(log('warn', 'secagg message refused', { agentId, roundId: r.roundId, stage: msg.stage, code: (err as { code?: string }).code, error: (err as Error).message }));
      return;
    }
    this.applyStep(out, r, step, now);
    // A step may exclude agents the round was still waiting for.
    if (this.round === r && this.phaseValue === 'collecting') this.closeIfAllAnswered(out, r, now);
  }

  private reject(
    out: EngineAction[],
    agentId: string,
    roundId: number,
    reason: UpdateRejectReason,
    message: string,
    late: boolean,
    code?: string,
  ): void {
    const msg: UpdateRejectedMessage = { type: 'update-rejected', roundId, reason, message: message.slice(0, this.settings.limits.maxTextLength) };
    if (code !== undefined) msg.code = code;
    out.push(send(agentId, msg));
    out.push({ type: 'update-rejected', roundId, agentId, reason, message, late });
  }

  // ---- timers and lifecycle -------------------------------------------------------------------

  private onTimer(out: EngineAction[], timer: TimerName, roundId: number, now: number): void {
    const r = this.round;
    switch (timer) {
      case 'deadline':
        if (r !== undefined && r.roundId === roundId && this.phaseValue === 'collecting') this.closeCollection(out, r, now, 'deadline');
        return;
      case 'straggler':
        if (r !== undefined && r.roundId === roundId && this.phaseValue === 'collecting') this.closeCollection(out, r, now, 'stragglers');
        return;
      case 'aggregation-deadline':
        if (r !== undefined && r.roundId === roundId && this.phaseValue === 'aggregating') {
          r.aggregationExpired = true;
          this.applyStep(out, r, r.session.close(), now);
          if (this.round === r && this.phaseValue === 'aggregating') {
            this.failRound(out, r, now, 'secure aggregation did not finish in time');
          }
        }
        return;
      case 'aggregation-stage':
        if (r !== undefined && r.roundId === roundId && r.stageTimer !== undefined && r.session.stageTimeout !== undefined) {
          if (this.phaseValue !== 'collecting' && this.phaseValue !== 'aggregating') return;
          const stage = r.stageTimer;
          r.stageTimer = undefined;
          out.push(log('info', 'secure aggregation stage deadline', { roundId, stage }));
          this.applyStep(out, r, r.session.stageTimeout(stage), now);
          if (this.round === r && this.phaseValue === 'collecting') this.closeIfAllAnswered(out, r, now);
        }
        return;
      case 'invitation':
        if (this.invitation !== undefined && this.invitation.roundId === roundId) this.closeInvitation(out, this.invitation, now);
        return;
      case 'cohort-wait':
        this.cohortTimerSet = false;
        this.cohortWaitOver = true;
        this.maybeStart(out, now);
        return;
      case 'retry':
        this.retryAt = 0;
        this.maybeStart(out, now);
        return;
    }
  }

  private onShutdown(out: EngineAction[], mode: ShutdownMode, now: number): void {
    this.shutdownMode = mode === 'abort' || this.shutdownMode === 'abort' ? 'abort' : 'finish';
    out.push(log('info', 'shutdown requested', { mode: this.shutdownMode, phase: this.phaseValue }));
    if (this.invitation !== undefined) {
      // Nothing was trained yet: a shutdown of either mode drops the invitation.
      this.failInvitation(out, this.invitation, now, 'the coordinator is shutting down', 'aborted');
      return;
    }
    const r = this.round;
    if (r !== undefined && this.shutdownMode === 'abort' && (this.phaseValue === 'collecting' || this.phaseValue === 'aggregating')) {
      this.failRound(out, r, now, 'the coordinator is shutting down', 'aborted');
    }
    this.maybeStop(out);
  }

  /** Stops once no round is running or committing. */
  private maybeStop(out: EngineAction[]): void {
    if (this.shutdownMode === undefined || this.phaseValue === 'stopped') return;
    if (this.round !== undefined || this.invitation !== undefined) return;
    out.push({ type: 'clear-timer', timer: 'retry' }, { type: 'clear-timer', timer: 'cohort-wait' });
    const completed = this.phaseValue === 'finished';
    if (!completed) {
      const notice = this.shutdownNotice;
      for (const id of [...this.ready].sort()) {
        out.push(
          send(id, {
            type: 'shutdown',
            reason: notice.reason,
            message: notice.reason === 'restarting' ? 'the coordinator is restarting' : 'the coordinator is shutting down',
            ...(notice.reconnectAfterMs === undefined ? {} : { reconnectAfterMs: notice.reconnectAfterMs }),
          }),
        );
      }
    }
    this.phaseValue = 'stopped';
    out.push({ type: 'stopped' });
  }

  private maybeStart(out: EngineAction[], now: number): void {
    if (!this.started || this.phaseValue !== 'waiting' || this.shutdownMode !== undefined) return;
    // Checked before waiting for agents: a run whose budget is spent stops now, not at the next cohort.
    if (this.privacy?.wouldExceed(this.samplingRate()) === true) {
      const spent = this.privacy.spent();
      out.push(log('warn', 'the next round would exceed the privacy budget; the run is finished', { epsilon: spent.epsilon, delta: spent.delta, targetEpsilon: this.privacy.settings.targetEpsilon, rounds: spent.rounds }));
      this.finish(out, 'privacy-budget');
      return;
    }
    if (now < this.retryAt) return;
    const { minCohort, maxCohort, cohortWaitMs } = this.settings;
    if (this.ready.size < minCohort) return;
    if (!this.roundStartedThisRun && this.ready.size < (this.settings.firstRoundAgents ?? 0)) return;
    if (this.ready.size < maxCohort && cohortWaitMs > 0 && !this.cohortWaitOver) {
      if (!this.cohortTimerSet) {
        this.cohortTimerSet = true;
        out.push({ type: 'set-timer', timer: 'cohort-wait', roundId: this.nextRoundId, delayMs: cohortWaitMs });
      }
      return;
    }
    if (this.cohortTimerSet) out.push({ type: 'clear-timer', timer: 'cohort-wait' });
    this.cohortTimerSet = false;
    this.cohortWaitOver = false;
    this.roundStartedThisRun = true;
    const roundId = this.nextRoundId++;
    this.lastRoundId = roundId;
    const sampling = this.settings.sampling ?? COORDINATOR_SAMPLING;
    if (sampling.mode === 'poisson') this.invite(out, roundId, sampling, now);
    else this.startRound(out, now, roundId, sampleCohort(this.ready, this.settings.maxCohort, this.settings.seed, roundId));
  }

  // ---- Poisson sampling: invitations ------------------------------------------------------------

  /** Invites every ready agent to draw its coin for `roundId` at rate q. */
  private invite(out: EngineAction[], roundId: number, sampling: Extract<SamplingSettings, { mode: 'poisson' }>, now: number): void {
    const invited = [...this.ready].sort();
    const inv: Invitation = { roundId, startedAt: now, rate: sampling.rate, invited, answers: new Map() };
    this.invitation = inv;
    this.phaseValue = 'inviting';
    out.push(log('info', 'round invitations sent', { roundId, invited: invited.length, rate: sampling.rate }));
    for (const id of invited) out.push(send(id, { type: 'sampling-invite', roundId, rate: sampling.rate }));
    out.push({ type: 'set-timer', timer: 'invitation', roundId, delayMs: sampling.invitationWaitMs });
  }

  private onSamplingAnswer(out: EngineAction[], agentId: string, msg: SamplingAnswerMessage, now: number): void {
    const inv = this.invitation;
    if (inv === undefined || msg.roundId !== inv.roundId || !inv.invited.includes(agentId) || inv.answers.has(agentId)) {
      out.push(log('info', 'sampling answer outside its invitation (late, duplicate or not invited): ignored', { agentId, roundId: msg.roundId }));
      return;
    }
    inv.answers.set(agentId, msg.volunteer);
    this.closeInvitationIfAllAnswered(out, inv, now);
  }

  private closeInvitationIfAllAnswered(out: EngineAction[], inv: Invitation, now: number): void {
    if (this.invitation === inv && inv.answers.size === inv.invited.length) this.closeInvitation(out, inv, now);
  }

  /**
   * The cohort is exactly the volunteers still connected. Too many fail the round rather than
   * being subsampled: a coordinator-chosen subset of the volunteers would be a cohort the
   * coordinator picked, and the Poisson analysis (each agent in with probability q, independently)
   * would no longer hold. Too few fail it too; the next attempt has a new round id, so new coins.
   */
  private closeInvitation(out: EngineAction[], inv: Invitation, now: number): void {
    out.push({ type: 'clear-timer', timer: 'invitation' });
    const volunteers = inv.invited.filter((id) => inv.answers.get(id) === true && this.ready.has(id));
    const { minCohort, maxCohort } = this.settings;
    const answered = inv.answers.size;
    out.push(log('info', 'round invitations closed', { roundId: inv.roundId, invited: inv.invited.length, answered, volunteers: volunteers.length }));
    if (volunteers.length > maxCohort) {
      this.failInvitation(out, inv, now, `too many volunteers: ${volunteers.length} of ${inv.invited.length} invited agents volunteered at rate ${inv.rate}, over maxCohort ${maxCohort}; a Poisson cohort is never subsampled (the coordinator would be choosing it); lower the sampling rate or raise maxCohort`);
      return;
    }
    if (volunteers.length < minCohort) {
      this.failInvitation(out, inv, now, `too few volunteers: ${volunteers.length} of ${inv.invited.length} invited agents volunteered at rate ${inv.rate} (${answered} answered), under minCohort ${minCohort}; the next round draws new coins`);
      return;
    }
    this.invitation = undefined;
    this.startRound(out, now, inv.roundId, volunteers, { rate: inv.rate, invited: inv.invited.length });
  }

  /** A Poisson round that never reached its round-start: recorded (started, then failed), volunteers told. */
  private failInvitation(out: EngineAction[], inv: Invitation, now: number, reason: string, status: 'failed' | 'aborted' = 'failed'): void {
    out.push({ type: 'clear-timer', timer: 'invitation' });
    const cohort = inv.invited.filter((id) => inv.answers.get(id) === true);
    const sampling: SamplingConfig = { rate: inv.rate, invited: inv.invited.length };
    const config = this.roundConfigFor(inv.roundId, Math.max(1, cohort.length), now, sampling);
    out.push({ type: 'round-started', record: { roundId: inv.roundId, startedAt: inv.startedAt, baseModelVersion: this.model.modelVersion, cohort, config, required: 0 } });
    const summary: RoundSummary = {
      roundId: inv.roundId,
      status,
      startedAt: inv.startedAt,
      endedAt: now,
      durationMs: Math.max(0, now - inv.startedAt),
      baseModelVersion: this.model.modelVersion,
      cohort,
      participants: [],
      reason,
      metrics: { cohort: cohort.length, included: 0, accepted: 0, required: 0, learningRate: config.learningRate, ...samplingMetrics(sampling) },
    };
    out.push({ type: 'round-failed', summary });
    out.push(log('warn', 'round failed', { roundId: inv.roundId, reason, status }));
    for (const id of cohort) {
      if (this.ready.has(id)) out.push(send(id, { type: 'round-end', roundId: inv.roundId, outcome: 'aborted', reason: reason.slice(0, 2000), included: false }));
    }
    this.invitation = undefined;
    this.phaseValue = 'waiting';
    if (status === 'failed' && this.settings.retryDelayMs > 0) {
      this.retryAt = now + this.settings.retryDelayMs;
      out.push({ type: 'set-timer', timer: 'retry', roundId: this.nextRoundId, delayMs: this.settings.retryDelayMs });
    }
    this.afterRound(out, now);
  }

  // ---- rounds -----------------------------------------------------------------------------------

  /** The config round `roundId` sends: the template, the scheduled learning rate, the aggregation, the seed. */
  private roundConfigFor(roundId: number, cohortSize: number, now: number, sampling: SamplingConfig | undefined): RoundConfig {
    const s = this.settings;
    const progress = runProgress({ completedRounds: this.model.completedRounds, rounds: s.rounds, now, budget: s.budget, expectedRoundMs: this.lastRoundMs });
    const learningRate = scheduledLearningRate(s.roundConfig.learningRate, s.lrSchedule ?? CONSTANT_SCHEDULE, progress);
    return {
      ...s.roundConfig,
      learningRate,
      aggregation: this.aggregator.mode,
      cohortSize,
      seed: roundSeed(s.seed, roundId),
      ...(sampling === undefined ? {} : { sampling }),
    };
  }

  private startRound(out: EngineAction[], now: number, roundId: number, cohort: readonly string[], sampling?: SamplingConfig): void {
    const s = this.settings;
    const config = this.roundConfigFor(roundId, cohort.length, now, sampling);
    const learningRate = config.learningRate;
    const required = Math.min(cohort.length, Math.max(1, s.quorum.minCount, Math.ceil(s.quorum.fraction * cohort.length)));
    const base = this.model;
    const session = this.aggregator.open({
      roundId,
      modelVersion: base.modelVersion,
      cohort,
      manifest: base.manifest,
      dimension: base.weights.length,
      ...(this.aggregator.mode === 'plain' ? { maxUpdateNorm: maxUpdateNormFor(s.maxUpdateNorm, config, base.weights) } : {}),
      // The fixed denominator must not depend on who was sampled: under Poisson sampling q * invited.
      ...(config.dp === undefined ? {} : { dp: { ...config.dp, clipNorm: config.clipNorm, denominator: sampling === undefined ? cohort.length : sampling.rate * sampling.invited } }),
    });
    const deadlineMs = s.roundConfig.deadlineMs + s.deadlineGraceMs;
    const round: ActiveRound = {
      roundId,
      startedAt: now,
      deadlineAt: now + deadlineMs,
      cohort,
      config,
      required,
      base,
      session,
      participants: new Map(cohort.map((id) => [id, { status: 'selected' as ParticipantStatus }])),
      accepted: 0,
      aggregationExpired: false,
      collectionClosed: false,
    };
    this.round = round;
    this.phaseValue = 'collecting';
    out.push({ type: 'round-started', record: { roundId, startedAt: now, baseModelVersion: base.modelVersion, cohort, config, required } });
    out.push(log('info', 'round started', { roundId, cohort: cohort.length, required, ready: this.ready.size, learningRate, ...(sampling === undefined ? {} : { samplingRate: sampling.rate, sampledFrom: sampling.invited }) }));
    const start: RoundStartMessage = { type: 'round-start', roundId, modelVersion: base.modelVersion, config, weights: base.frame };
    for (const id of cohort) out.push(send(id, start));
    out.push({ type: 'set-timer', timer: 'deadline', roundId, delayMs: deadlineMs });
    this.applyStep(out, round, session.start(), now);
  }

  // ---- closing a round ------------------------------------------------------------------------

  private closeIfAllAnswered(out: EngineAction[], r: ActiveRound, now: number): void {
    if (this.phaseValue !== 'collecting' || this.round !== r) return;
    for (const p of r.participants.values()) if (p.status === 'selected') return;
    this.closeCollection(out, r, now, 'all-answered');
  }

  private closeCollection(out: EngineAction[], r: ActiveRound, now: number, why: 'deadline' | 'all-answered' | 'stragglers'): void {
    out.push({ type: 'clear-timer', timer: 'deadline' }, { type: 'clear-timer', timer: 'straggler' });
    let timedOut = 0;
    for (const p of r.participants.values()) {
      if (p.status === 'selected') {
        p.status = 'timeout';
        p.reason = why === 'stragglers' ? `no update within the straggler grace (${this.settings.stragglerGraceMs} ms) after the quorum` : 'no update by the deadline';
        timedOut++;
      }
    }
    out.push(log('info', 'round collection closed', { roundId: r.roundId, why, accepted: r.accepted, required: r.required, timedOut }));
    if (r.accepted < r.required) {
      this.failRound(out, r, now, `quorum not reached: ${r.accepted} of ${r.cohort.length} updates accepted, ${r.required} required`);
      return;
    }
    r.collectionClosed = true;
    this.applyStep(out, r, r.session.close(), now);
  }

  /** Relays an aggregation step's messages and acts on its status (and its timer, exclusions). */
  private applyStep(out: EngineAction[], r: ActiveRound, step: AggregationStep, now: number): void {
    for (const m of step.messages) {
      for (const to of m.to) if (this.ready.has(to) && r.participants.has(to)) out.push(send(to, m.message));
    }
    if (step.refused !== undefined) {
      const e = step.refused.error;
      out.push(log('warn', 'secagg message refused', { agentId: step.refused.agentId, roundId: r.roundId, code: (e as { code?: string }).code, error: e.message }));
    }
    if (this.round !== r) return;
    if (step.stageTimer !== undefined && (this.phaseValue === 'collecting' || this.phaseValue === 'aggregating')) {
      r.stageTimer = step.stageTimer.stage;
      out.push({ type: 'set-timer', timer: 'aggregation-stage', roundId: r.roundId, delayMs: step.stageTimer.delayMs });
    }
    for (const x of step.excluded ?? []) {
      const p = r.participants.get(x.agentId);
      if (p === undefined || p.status !== 'selected') continue;
      p.status = 'dropped';
      p.reason = x.reason;
      out.push(log('info', 'agent excluded from the round by the aggregation', { roundId: r.roundId, agentId: x.agentId, reason: x.reason }));
    }
    switch (step.status.kind) {
      case 'collecting':
        return;
      case 'finishing':
        if (this.phaseValue === 'collecting') {
          // Normally after closeCollection; in secure mode the session may also move on by itself
          // (every expected masked input arrived): collection is over either way.
          out.push({ type: 'clear-timer', timer: 'deadline' }, { type: 'clear-timer', timer: 'straggler' });
          for (const p of r.participants.values()) {
            if (p.status === 'selected') {
              p.status = 'timeout';
              p.reason = 'no update before the aggregation moved on';
            }
          }
          this.phaseValue = 'aggregating';
          out.push({ type: 'set-timer', timer: 'aggregation-deadline', roundId: r.roundId, delayMs: this.settings.aggregationDeadlineMs });
          if (!r.collectionClosed) {
            // Keep the session's contract: its first close() ends collection, the second the unmask stage.
            r.collectionClosed = true;
            this.applyStep(out, r, r.session.close(), now);
          }
        }
        return;
      case 'aborted':
        if (this.phaseValue === 'collecting' || this.phaseValue === 'aggregating') {
          this.failRound(out, r, now, `aggregation aborted: ${step.status.reason}`, 'failed', step.status.metrics);
        }
        return;
      case 'done':
        if (this.phaseValue === 'collecting' || this.phaseValue === 'aggregating') this.finalize(out, r, step.status.aggregate, now);
        return;
    }
  }

  private finalize(out: EngineAction[], r: ActiveRound, aggregate: Aggregate, now: number): void {
    out.push({ type: 'clear-timer', timer: 'aggregation-deadline' }, { type: 'clear-timer', timer: 'aggregation-stage' });
    const contributors = new Set(aggregate.contributors);
    for (const [id, p] of r.participants) {
      if (p.status === 'included' && !contributors.has(id)) {
        p.status = 'excluded';
        p.reason = 'not in the aggregate';
      }
    }
    if (contributors.size < r.required) {
      this.failRound(out, r, now, `quorum not reached: ${contributors.size} updates in the aggregate, ${r.required} required`);
      return;
    }
    let result;
    try {
      result = this.strategy.apply(r.base.weights, aggregate, this.strategyState);
    } catch (err) {
      this.failRound(out, r, now, `strategy ${this.strategy.name} failed: ${(err as Error).message}`);
      return;
    }
    const model = makeGlobalModel(
      {
        architecture: r.base.architecture,
        manifest: r.base.manifest,
        weights: result.weights,
        roundId: r.roundId,
        completedRounds: r.base.completedRounds + 1,
      },
      this.settings.limits,
    );
    // The round is charged here and the ledger adopted at commit-done: a failed commit publishes nothing.
    // The round's own rate: its cohort was drawn at config.sampling.rate (signed to its agents), or chosen (q = 1).
    const q = r.config.sampling?.rate ?? 1;
    const privacy = this.privacy?.afterRound(q);
    const summary = this.summarize(r, now, 'completed', undefined, model.modelVersion, aggregate, privacy === undefined ? undefined : privacyMetrics(privacy, q));
    r.pending = { model, strategyState: result.state, summary, ...(privacy === undefined ? {} : { privacy, privacyState: privacy.toJSON() }) };
    this.phaseValue = 'committing';
    out.push({ type: 'commit', roundId: r.roundId, record: r.pending });
  }

  private onCommitDone(out: EngineAction[], roundId: number, now: number): void {
    const r = this.round;
    if (r === undefined || r.roundId !== roundId || this.phaseValue !== 'committing' || r.pending === undefined) {
      throw new EngineStateError(`commit-done(${roundId})`, this.phaseValue);
    }
    const pending = r.pending;
    this.lastRoundMs = Math.max(0, now - r.startedAt);
    this.model = pending.model;
    this.strategyState = pending.strategyState;
    if (pending.privacy !== undefined) this.privacy = pending.privacy;
    this.round = undefined;
    this.phaseValue = 'waiting';
    out.push(
      log('info', 'round completed', {
        roundId,
        modelVersion: pending.model.modelVersion,
        completedRounds: pending.model.completedRounds,
        included: pending.summary.metrics['included'],
        durationMs: pending.summary.durationMs,
        ...(pending.privacy === undefined ? {} : { epsilon: pending.summary.metrics['dpEpsilon'], delta: pending.summary.metrics['dpDelta'] }),
      }),
    );
    for (const id of r.cohort) {
      if (!this.ready.has(id)) continue;
      const p = r.participants.get(id) as Participant;
      const end: RoundEndMessage = {
        type: 'round-end',
        roundId,
        outcome: 'completed',
        modelVersion: pending.model.modelVersion,
        participants: pending.summary.metrics['included'] ?? 0,
        included: p.status === 'included',
      };
      out.push(send(id, end));
    }
    this.afterRound(out, now);
  }

  private onCommitFailed(out: EngineAction[], roundId: number, error: string, now: number): void {
    const r = this.round;
    if (r === undefined || r.roundId !== roundId || this.phaseValue !== 'committing') {
      throw new EngineStateError(`commit-failed(${roundId})`, this.phaseValue);
    }
    out.push(log('error', 'persisting the round failed; the global model is unchanged', { roundId, error }));
    r.pending = undefined;
    this.failRound(out, r, now, `persisting the round failed: ${error}`);
  }

  private failRound(
    out: EngineAction[],
    r: ActiveRound,
    now: number,
    reason: string,
    status: 'failed' | 'aborted' = 'failed',
    extraMetrics?: Readonly<Record<string, number>>,
  ): void {
    out.push(
      { type: 'clear-timer', timer: 'deadline' },
      { type: 'clear-timer', timer: 'straggler' },
      { type: 'clear-timer', timer: 'aggregation-deadline' },
      { type: 'clear-timer', timer: 'aggregation-stage' },
    );
    for (const p of r.participants.values()) {
      if (p.status === 'selected') {
        p.status = 'timeout';
        p.reason = reason;
      }
    }
    const summary = this.summarize(r, now, status, reason, undefined, undefined, extraMetrics);
    out.push({ type: 'round-failed', summary });
    out.push(log('warn', 'round failed', { roundId: r.roundId, reason, status }));
    for (const id of r.cohort) {
      if (this.ready.has(id)) out.push(send(id, { type: 'round-end', roundId: r.roundId, outcome: 'aborted', reason: reason.slice(0, 2000), included: false }));
    }
    this.round = undefined;
    this.phaseValue = 'waiting';
    if (status === 'failed' && this.settings.retryDelayMs > 0) {
      this.retryAt = now + this.settings.retryDelayMs;
      out.push({ type: 'set-timer', timer: 'retry', roundId: this.nextRoundId, delayMs: this.settings.retryDelayMs });
    }
    this.afterRound(out, now);
  }

  private afterRound(out: EngineAction[], now: number): void {
    if (this.model.completedRounds >= this.settings.rounds && this.phaseValue === 'waiting') this.finish(out, 'rounds');
    if (this.shutdownMode !== undefined) {
      this.maybeStop(out);
      return;
    }
    this.maybeStart(out, now);
  }

  private finish(out: EngineAction[], reason: FinishReason): void {
    this.phaseValue = 'finished';
    this.finishedBy = reason;
    out.push({ type: 'finished', completedRounds: this.model.completedRounds, reason });
    const message = reason === 'rounds' ? 'the federated run is complete' : 'the federated run is complete: its privacy budget is spent';
    for (const id of [...this.ready].sort()) out.push(send(id, { type: 'shutdown', reason: 'completed', message }));
  }

  /**
   * Client sampling rate q of the next round, for the accountant: Poisson self-sampling's rate,
   * or 1 while the coordinator picks the cohort (no amplification claimed).
   */
  private samplingRate(): number {
    const sampling = this.settings.sampling ?? COORDINATOR_SAMPLING;
    return sampling.mode === 'poisson' ? sampling.rate : 1;
  }

  private summarize(
    r: ActiveRound,
    now: number,
    status: RoundSummary['status'],
    reason: string | undefined,
    modelVersion: string | undefined,
    aggregate: Aggregate | undefined,
    extraMetrics?: Readonly<Record<string, number>>,
  ): RoundSummary {
    const participants: ParticipantRecord[] = [];
    let lossSum = 0;
    let lossWeight = 0;
    let included = 0;
    for (const id of r.cohort) {
      const p = r.participants.get(id) as Participant;
      participants.push({ agentId: id, ...p });
      if (p.status === 'included') {
        included++;
        const w = p.exampleCount ?? 1;
        if (p.loss !== undefined) {
          lossSum += w * p.loss;
          lossWeight += w;
        }
      }
    }
    const metrics: Record<string, number> = {
      cohort: r.cohort.length,
      included,
      accepted: r.accepted,
      required: r.required,
      learningRate: r.config.learningRate,
    };
    if (r.config.sampling !== undefined) Object.assign(metrics, samplingMetrics(r.config.sampling));
    if (lossWeight > 0) metrics['loss'] = lossSum / lossWeight;
    // The round's training time: its longest local training loop (plain rounds; a secure update carries no metrics).
    const trainMs = Math.max(...participants.map((p) => (p.status === 'included' ? (p.metrics?.['trainMs'] ?? -1) : -1)));
    if (trainMs >= 0) metrics['trainMs'] = trainMs;
    if (aggregate !== undefined) {
      metrics['totalWeight'] = aggregate.totalWeight;
      let sq = 0;
      const inv = 1 / aggregate.totalWeight;
      for (let i = 0; i < aggregate.weightedSum.length; i++) {
        const d = (aggregate.weightedSum[i] as number) * inv;
        sq += d * d;
      }
      metrics['meanDeltaNorm'] = Math.sqrt(sq);
    }
    for (const [k, v] of Object.entries({ ...aggregate?.metrics, ...extraMetrics })) if (Number.isFinite(v) && !(k in metrics)) metrics[k] = v;
    const summary: RoundSummary = {
      roundId: r.roundId,
      status,
      startedAt: r.startedAt,
      endedAt: now,
      durationMs: Math.max(0, now - r.startedAt),
      baseModelVersion: r.base.modelVersion,
      cohort: r.cohort,
      participants,
      metrics,
      ...(modelVersion === undefined ? {} : { modelVersion }),
      ...(reason === undefined ? {} : { reason }),
      ...(aggregate === undefined ? {} : { totalWeight: aggregate.totalWeight }),
    };
    return summary;
  }
}

/** A Poisson round's metrics: q (the accountant reads metrics.samplingRate, default 1) and the agents invited. */
function samplingMetrics(sampling: SamplingConfig): Record<string, number> {
  return { samplingRate: sampling.rate, sampledFrom: sampling.invited };
}

function send(to: string, message: CoordinatorMessage): EngineAction {
  return { type: 'send', to, message };
}

function log(level: LogLevel, msg: string, data?: Record<string, unknown>): EngineAction {
  return data === undefined ? { type: 'log', level, msg } : { type: 'log', level, msg, data };
}

/** Decodes a weights frame into a fresh Float32Array (for tests and restores). */
export function weightsFromFrame(frame: Uint8Array, limits?: Readonly<ProtocolLimits>): { manifest: Manifest; weights: Float32Array; modelVersion: string } {
  const decoded = decodeFrame(frame, { copy: true, checkFinite: true, ...(limits === undefined ? {} : { limits }) });
  return {
    manifest: decoded.manifest,
    weights: new Float32Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength / 4),
    modelVersion: decoded.hash,
  };
}

/** A DP round's privacy metrics, after the round was charged to `ledger`. */
function privacyMetrics(ledger: PrivacyLedger, samplingRate: number): Record<string, number> {
  const spent = ledger.spent();
  return {
    dpEpsilon: spent.epsilon,
    dpDelta: spent.delta,
    ...(spent.order === null ? {} : { dpOrder: spent.order }),
    dpSamplingRate: samplingRate,
    dpRoundsAccounted: spent.rounds,
  };
}
