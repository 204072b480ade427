// startCoordinator: wires the pure round engine to its edges (fastify HTTP + socket.io on the
// same server, SQLite, checkpoint files, timers, logs, metrics) and runs its actions.
//
// The driver is a tiny event loop: `dispatch(event)` queues the event; events are handed to
// the engine one at a time and its actions are carried out in order. A commit is the one
// asynchronous action: checkpoint files first, then the DB transaction, then 'commit-done' (or
// 'commit-failed') goes back to the engine. A completed round is therefore on disk before any
// agent hears about it, and a crash at any point loses nothing that completed.
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { Server } from 'socket.io';
import { canonicalManifest, createProtocol, elementCount, FRAME_HEADER_BYTES } from '@fedclr/protocol';
import type { Manifest, ProtocolLimits, UpdateRejectReason } from '@fedclr/protocol';
import type { GraphSpec } from '@fedclr/tensor';
import { plainAggregator, type AggregatorFactory } from './aggregation.js';
import { loadOrCreateSecaggIdentity, newRunId, secureAggregator } from './secure-aggregation.js';
import { adminRoutes, installHttpSecurity } from './admin.js';
import { Admission, EnrolmentTokens, loadOrCreateAdminToken } from './admission.js';
import { resolveConfig, type CoordinatorConfig, type ResolvedConfig } from './config.js';
import { StateDb } from './db.js';
import {
  RoundEngine,
  type CommitRecord,
  type EngineAction,
  type EngineEvent,
  type EnginePhase,
  type EngineStatus,
  type GlobalModel,
  type RoundStartedRecord,
  type RoundSummary,
  type TimerName,
} from './engine.js';
import { ModelMismatchError, ModelMissingError } from './errors.js';
import { PrivacyLedger } from './privacy-ledger.js';
import { Gateway, MESSAGE_EVENT } from './gateway.js';
import { httpRoutes } from './http.js';
import { dashboardPlugin, dashboardRoutes, threatModel, type RunInfo } from './dashboard.js';
import { LiveFeed, liveRoutes } from './live.js';
import { HISTORY_EVENTS, HistoryCache } from './history-cache.js';
import { checkSpecManifest, layersModelSource } from './layers-model.js';
import { createCoordinatorMetrics, type CoordinatorMetrics } from './metrics.js';
import { checkpointDirName, FileModelStore, type Checkpoint, type CheckpointExporter, type ModelStore } from './model-store.js';
import { createStrategy, statisticsMask, withAveragedStatistics } from './strategy.js';

/** The model a fresh run starts from. */
export interface InitialModel {
  /** Architecture id (e.g. 'resnet-mini-v1'); a resumed run must have the same. */
  readonly architecture: string;
  readonly manifest: Manifest;
  readonly weights: Float32Array;
}

export interface CoordinatorDeps {
  /** Required for a fresh state dir; on resume it is checked against the checkpoint (architecture, manifest). */
  readonly initialModel?: InitialModel;
  /** Default: FileModelStore in <stateDir>/checkpoints. */
  readonly modelStore?: ModelStore;
  /** Extra writers for the default store (e.g. tfjs layers format). */
  readonly exporters?: readonly CheckpointExporter[];
  /**
   * The model's graph spec (its weights must be the model's tensors): GET /api/model/model.json
   * then serves the latest global model in the tfjs layers format. Needs a tfjs backend.
   */
  readonly modelSpec?: GraphSpec;
  /** Default: from config.aggregation (SecAgg+ unless 'plain'). */
  readonly aggregator?: AggregatorFactory;
  readonly logger?: Logger;
}

export interface CloseOptions {
  /** What agents are told: 'stopping' (do not reconnect) or 'restarting' (reconnect later). */
  readonly reason?: 'stopping' | 'restarting';
  /** Override config.shutdown.mode. */
  readonly mode?: 'abort' | 'finish';
}

export interface CoordinatorEvents {
  'round-started': [RoundStartedRecord];
  'round-completed': [RoundSummary];
  'round-failed': [RoundSummary];
  'update-rejected': [{ roundId: number; agentId: string; reason: UpdateRejectReason; message: string }];
  'update-accepted': [{ roundId: number; agentId: string }];
  /** Metrics added to a committed round after its commit (recordRoundMetrics: an evaluation). */
  'round-evaluated': [{ roundId: number; metrics: Readonly<Record<string, number>> }];
  /** The engine's phase (waiting, inviting, collecting, aggregating, committing, finished, stopped) changed. */
  stage: [{ phase: EnginePhase; roundId: number | null }];
  finished: [number];
  closed: [];
}

export interface CoordinatorHandle {
  /** http://host:port, or https:// with config.tls (the bound port when config.port was 0). */
  readonly url: string;
  readonly port: number;
  /** The coordinator's Ed25519 public key (hex): agents pin it (fedclr agent --coordinator-key). */
  readonly publicKey: string;
  readonly config: ResolvedConfig;
  readonly events: EventEmitter<CoordinatorEvents>;
  readonly logger: Logger;
  readonly metrics: CoordinatorMetrics;
  status(): EngineStatus;
  globalModel(): GlobalModel;
  /** Resolves when the configured number of rounds has completed. */
  readonly finished: Promise<number>;
  /**
   * Adds metrics to a committed round (finite numbers only; e.g. evalLinearProbe, evalKnn from an
   * evaluation that ran after the commit): stored with the round, shown by GET /api/rounds and
   * the dashboard (event 'round-evaluated').
   */
  recordRoundMetrics(roundId: number, metrics: Readonly<Record<string, number>>): void;
  /** Graceful shutdown: stop accepting, end the round (config.shutdown), tell agents, close everything. */
  close(options?: CloseOptions): Promise<void>;
}

const MiB = 1024 * 1024;
/** The engine phases a round goes through (fedclr_round_stage_duration_seconds{stage}). */
const ROUND_STAGES: ReadonlySet<EnginePhase> = new Set(['inviting', 'collecting', 'aggregating', 'committing']);
/** run_meta key of the privacy ledger (privacy-ledger.ts). */
const PRIVACY_LEDGER_META = 'privacy-ledger';

/** Protocol limits: maxFrameBytes defaults to twice the model frame (at least 1 MiB). */
function limitsFor(config: ResolvedConfig, manifest: Manifest): Partial<ProtocolLimits> {
  const n = manifest.reduce((s, t) => s + elementCount(t.shape), 0);
  const frameBytes = FRAME_HEADER_BYTES + Buffer.byteLength(canonicalManifest(manifest)) + 64 + n * 4;
  const maxFrameBytes = Math.max(MiB, 2 * frameBytes);
  return { maxFrameBytes, ...config.limits };
}

/** The recipe's scalar settings, flattened (`recipe.model.width` style keys), for GET /api/run. */
function recipeSummary(config: ResolvedConfig): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = { localEpochs: config.localEpochs, lrSchedule: config.lrSchedule.kind };
  const add = (prefix: string, o: object, depth: number): void => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[`${prefix}${k}`] = v;
      else if (depth > 0 && typeof v === 'object' && v !== null && !Array.isArray(v)) add(`${prefix}${k}.`, v as object, depth - 1);
    }
  };
  add('', config.training, 0);
  if (config.recipe !== null) add('recipe.', config.recipe, 2);
  return out;
}

function sameManifest(a: Manifest, b: Manifest): boolean {
  return canonicalManifest(a) === canonicalManifest(b);
}

export async function startCoordinator(input: CoordinatorConfig, deps: CoordinatorDeps = {}): Promise<CoordinatorHandle> {
  const config = resolveConfig(input);
  // The time budget (config.budgetEndsAt) counts from here.
  const startedAt = Date.now();
  const logger = deps.logger ?? pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? config.logLevel, base: { svc: 'coordinator' } });
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });

  // ---- state: database, checkpoints, resume ----------------------------------------------------
  const db = new StateDb(join(config.stateDir, 'coordinator.db'));
  let started = false;
  try {
    const interrupted = db.markInterrupted(Date.now());
    if (interrupted.length > 0) logger.warn({ rounds: interrupted }, 'rounds interrupted by the previous stop were marked interrupted');
    const store = deps.modelStore ?? new FileModelStore({ dir: join(config.stateDir, 'checkpoints'), ...(deps.exporters === undefined ? {} : { exporters: deps.exporters }) });
    await store.sweep();
    const committed = new Set(db.completedRoundIds());
    for (const id of await store.list()) {
      if (!committed.has(id)) {
        logger.warn({ roundId: id }, 'removing a checkpoint without a committed round (crash between files and commit)');
        await store.remove(id);
      }
    }
    const latestRow = db.latestCompleted();
    const checkpoint = await store.loadLatest(
      (id) => committed.has(id),
      (id, err) => logger.error({ roundId: id, err }, 'checkpoint unreadable; trying an older one'),
    );
    if (latestRow !== undefined && (checkpoint === undefined || checkpoint.roundId !== latestRow.id)) {
      logger.error(
        { lastCompleted: latestRow.id, restoredFrom: checkpoint?.roundId },
        'the checkpoint of the last completed round is missing or corrupt; resuming from an older one',
      );
    }
    if (checkpoint !== undefined) {
      const row = db.getRound(checkpoint.roundId);
      if (row?.modelVersion !== checkpoint.modelVersion) {
        throw new ModelMismatchError(`checkpoint of round ${checkpoint.roundId} has model ${checkpoint.modelVersion}; its row says ${row?.modelVersion}`);
      }
    }
    const init = deps.initialModel;
    if (checkpoint !== undefined && init !== undefined) {
      if (init.architecture !== checkpoint.architecture) {
        throw new ModelMismatchError(`the run in ${config.stateDir} trains architecture '${checkpoint.architecture}', not '${init.architecture}'`);
      }
      if (!sameManifest(init.manifest, checkpoint.manifest)) {
        throw new ModelMismatchError(`the initial model's manifest differs from the checkpoint of round ${checkpoint.roundId}`);
      }
    }
    if (checkpoint === undefined && init === undefined) throw new ModelMissingError(config.stateDir);
    const model: Checkpoint | (InitialModel & { roundId: number; completedRounds: number }) =
      checkpoint ?? { ...(init as InitialModel), roundId: 0, completedRounds: 0 };
    const architectureMeta = db.getMeta('architecture');
    if (architectureMeta !== undefined && architectureMeta !== model.architecture) {
      throw new ModelMismatchError(`the state dir's run trains '${architectureMeta}', not '${model.architecture}'`);
    }
    if (deps.modelSpec !== undefined) checkSpecManifest(deps.modelSpec, model.manifest);
    db.setMeta('architecture', model.architecture);
    db.setMeta('manifest', canonicalManifest(model.manifest));

    const protocol = createProtocol({ limits: limitsFor(config, model.manifest) });
    const strategy = withAveragedStatistics(createStrategy(config.strategy), statisticsMask(model.manifest));
    let strategyState = checkpoint?.strategyState;
    if (strategyState !== undefined && strategyState.strategy !== strategy.name) {
      logger.warn({ from: strategyState.strategy, to: strategy.name }, 'strategy changed since the checkpoint; its server state starts fresh');
      strategyState = undefined;
    }
    let runId = db.getMeta('run-id');
    if (runId === undefined) {
      runId = newRunId();
      db.setMeta('run-id', runId);
    }
    // The coordinator's Ed25519 identity (<stateDir>, mode 0600), in every mode: it signs every
    // message to agents (gateway.ts) and, in secure mode, the secure-aggregation envelopes.
    const identity = await loadOrCreateSecaggIdentity(config.stateDir);
    const coordinatorKey = Buffer.from(identity.publicKey).toString('hex');
    // Admission (admission.ts): enrolments in the DB, one-time tokens, the admin bearer token.
    const admission = new Admission({
      mode: config.enrolment.mode,
      ...(config.enrolment.mode === 'allow-list' && config.enrolment.publicKeys !== undefined ? { configKeys: config.enrolment.publicKeys } : {}),
      db,
      tokens: await EnrolmentTokens.open(config.stateDir, db),
    });
    const adminToken = await loadOrCreateAdminToken(config.stateDir);
    if (adminToken.created) {
      // Printed once: later starts only say where it is.
      logger.warn({ path: adminToken.path }, `admin token created (printed once; it is in ${adminToken.path}, mode 0600): ${adminToken.value}`);
    }
    if (config.enrolment.mode === 'open') {
      logger.warn('OPEN ENROLMENT: any agent that reaches this coordinator joins the federation (and stays enrolled); use it only on a test bench');
    }
    let secaggInfo: { publicKey: string; clip: number; maxWeight: number; dropoutFraction: number; corruptFraction: number } | undefined;
    let aggregator: AggregatorFactory;
    if (deps.aggregator !== undefined) {
      aggregator = deps.aggregator;
    } else if (config.aggregation === 'secure') {
      const sa = config.secagg;
      aggregator = secureAggregator({
        runId,
        identity,
        publicKeyOf: (id) => db.getEnrolment(id)?.publicKey,
        clip: sa.clip,
        maxWeight: sa.maxWeight,
        dropoutFraction: sa.dropoutFraction,
        corruptFraction: sa.corruptFraction,
        stageTimeoutMs: sa.stageTimeoutMs,
        prg: sa.prg,
        maxPayloadBytes: protocol.limits.maxSecaggPayloadBytes,
      });
      secaggInfo = {
        publicKey: Buffer.from(identity.publicKey).toString('hex'),
        clip: sa.clip,
        maxWeight: sa.maxWeight,
        dropoutFraction: sa.dropoutFraction,
        corruptFraction: sa.corruptFraction,
      };
    } else {
      aggregator = plainAggregator;
    }
    // The privacy ledger lives in run_meta, written in each round's commit transaction.
    const dpConfig = config.training.dp;
    let privacy: PrivacyLedger | undefined;
    if (dpConfig !== undefined && config.privacy !== null) {
      const settings = {
        noiseMultiplier: dpConfig.noiseMultiplier,
        delta: config.privacy.delta,
        ...(config.privacy.targetEpsilon === null ? {} : { targetEpsilon: config.privacy.targetEpsilon }),
      };
      const saved = db.getMeta(PRIVACY_LEDGER_META);
      privacy = saved === undefined ? PrivacyLedger.fresh(settings) : PrivacyLedger.restore(settings, saved);
    } else if (db.getMeta(PRIVACY_LEDGER_META) !== undefined) {
      logger.warn('this run spent privacy budget in earlier rounds, and now runs without DP: its new rounds are not differentially private');
    }
    const engine = new RoundEngine({
      settings: {
        rounds: config.rounds,
        minCohort: config.minCohort,
        maxCohort: config.maxCohort,
        cohortWaitMs: config.cohortWaitMs,
        firstRoundAgents: config.firstRoundAgents,
        sampling: config.sampling,
        roundConfig: { ...config.training, localEpochs: config.localEpochs, deadlineMs: config.deadlineMs, ...(config.recipe === null ? {} : { recipe: config.recipe }) },
        lrSchedule: config.lrSchedule,
        ...(config.budgetEndsAt === null ? {} : { budget: { startsAt: startedAt, endsAt: config.budgetEndsAt } }),
        deadlineGraceMs: config.deadlineGraceMs,
        aggregationDeadlineMs: config.aggregationDeadlineMs,
        quorum: config.quorum,
        ...(config.stragglerGraceMs === null ? {} : { stragglerGraceMs: config.stragglerGraceMs }),
        retryDelayMs: config.retryDelayMs,
        seed: config.seed,
        maxExampleCount: config.maxExampleCount,
        maxUpdateNorm: config.maxUpdateNorm,
        limits: protocol.limits,
      },
      strategy,
      aggregator,
      model: {
        architecture: model.architecture,
        manifest: model.manifest,
        weights: model.weights,
        roundId: model.roundId,
        completedRounds: model.completedRounds,
      },
      ...(strategyState === undefined ? {} : { strategyState }),
      ...(privacy === undefined ? {} : { privacy }),
      nextRoundId: Math.max(db.nextRoundId(), model.roundId + 1),
    });
    logger.info(
      {
        stateDir: config.stateDir,
        resumedFrom: checkpoint?.roundId ?? null,
        completedRounds: model.completedRounds,
        coordinatorKey,
        modelVersion: engine.globalModel.modelVersion,
        parameters: model.weights.length,
        strategy: strategy.name,
        aggregation: aggregator.mode,
        ...(secaggInfo === undefined ? {} : { secagg: secaggInfo }),
        learningRate: config.training.learningRate,
        lrSchedule: config.lrSchedule,
        ...(config.budgetEndsAt === null ? {} : { budgetEndsAt: new Date(config.budgetEndsAt).toISOString() }),
      },
      checkpoint === undefined ? 'starting a fresh run' : 'resuming from the last completed round',
    );
    const dp = config.training.dp;
    if (dp !== undefined) {
      const info = { ...dp, clipNorm: config.training.clipNorm, noiseStdOfSum: dp.noiseMultiplier * config.training.clipNorm, privacy: engine.status().privacy };
      if (dp.noise === 'coordinator') {
        logger.warn(info, 'CENTRAL DP (dp.noise coordinator): this coordinator sees every clipped update and adds the noise itself; agents must trust it with their updates (a weaker trust model than secure aggregation with agents\' noise)');
      } else {
        logger.info(info, 'distributed DP: each agent adds its share of the noise under secure aggregation; the mean divides by the sampled cohort size');
      }
    }

    // ---- servers -----------------------------------------------------------------------------
    const tls = config.tls;
    const app = Fastify({
      // https with config.tls: socket.io below attaches to the same server, so agents get wss.
      serverFactory: (handler: RequestListener): HttpServer =>
        tls === null ? createHttpServer(handler) : (createHttpsServer({ cert: tls.cert, key: tls.key }, handler) as unknown as HttpServer),
      loggerInstance: logger,
      logController: new LogController({ disableRequestLogging: true }),
      forceCloseConnections: true,
      // Unknown fields are refused (400), not silently dropped (fastify's default strips them).
      ajv: { customOptions: { removeAdditional: false } },
    });
    const io = new Server(app.server, {
      serveClient: false,
      // Transport limit above the protocol's: a slightly oversize frame still arrives and is
      // rejected with a reason ('too-large'); only grossly oversize packets drop the connection.
      maxHttpBufferSize: protocol.limits.maxFrameBytes + 4 * MiB,
      pingInterval: Math.min(25_000, config.heartbeatIntervalMs * 2),
      pingTimeout: config.pingTimeoutMs,
      // websocket only: long-polling would buffer whole request bodies per HTTP request, out of
      // reach of the gateway's pre-handshake byte count (the agent uses websocket only).
      transports: ['websocket'],
      // Limits before trust: caps on pending connections (per IP too), checked before the upgrade.
      allowRequest: (req, callback) => gateway.allowRequest(req, callback),
      connectTimeout: config.handshakeTimeoutMs,
    });

    const events = new EventEmitter<CoordinatorEvents>();
    const live = new LiveFeed(events);
    const history = new HistoryCache();
    for (const name of HISTORY_EVENTS) events.on(name, () => history.bump());
    let finishedResolve: (n: number) => void = () => undefined;
    const finished = new Promise<number>((resolve) => {
      finishedResolve = resolve;
    });
    let stoppedResolve: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => {
      stoppedResolve = resolve;
    });

    // The gateway (declared below) and the driver refer to each other through closures.
    const metrics = createCoordinatorMetrics({
      connected: () => gateway.connected,
      authenticated: () => gateway.authenticated,
      ready: () => engine.status().readyAgents,
      cohort: () => engine.status().round?.cohortSize ?? 0,
      streams: () => live.listeners,
      active: () => engine.status().activeAgents,
      round: () => engine.status().round?.roundId ?? engine.globalModel.roundId,
      ...(privacy === undefined ? {} : { epsilon: () => engine.status().privacy?.epsilon ?? 0, delta: privacy.settings.delta, targetEpsilon: privacy.settings.targetEpsilon }),
    });

    // ---- the driver ----------------------------------------------------------------------------
    const timers = new Map<TimerName, NodeJS.Timeout>();
    const queue: EngineEvent[] = [];
    let draining = false;
    let failed: Error | undefined;

    const dispatch = (event: EngineEvent): void => {
      queue.push(event);
      if (draining) return;
      draining = true;
      try {
        for (let ev = queue.shift(); ev !== undefined; ev = queue.shift()) {
          let actions: EngineAction[];
          try {
            actions = engine.handle(ev, Date.now());
          } catch (err) {
            failed = err as Error;
            logger.fatal({ err, event: ev.type }, 'round engine failed; shutting down');
            void handle.close({ mode: 'abort' });
            return;
          }
          for (const a of actions) run(a);
        }
        const phase = engine.phase;
        if (phase !== lastPhase) {
          const now = Date.now();
          if (lastPhase !== undefined && ROUND_STAGES.has(lastPhase)) metrics.stageDuration.observe({ stage: lastPhase }, (now - phaseSince) / 1000);
          lastPhase = phase;
          phaseSince = now;
          events.emit('stage', { phase, roundId: engine.status().round?.roundId ?? null });
        }
      } finally {
        draining = false;
      }
    };
    let lastPhase: EnginePhase | undefined;
    let phaseSince = Date.now();

    const run = (a: EngineAction): void => {
      switch (a.type) {
        case 'send':
          gateway.send(a.to, a.message);
          if (a.message.type === 'shutdown') {
            const id = a.to;
            setTimeout(() => gateway.disconnect(id), 200).unref();
          }
          return;
        case 'set-timer': {
          const old = timers.get(a.timer);
          if (old !== undefined) clearTimeout(old);
          const t = setTimeout(() => {
            timers.delete(a.timer);
            dispatch({ type: 'timer', timer: a.timer, roundId: a.roundId });
          }, a.delayMs);
          timers.set(a.timer, t);
          return;
        }
        case 'clear-timer': {
          const t = timers.get(a.timer);
          if (t !== undefined) clearTimeout(t);
          timers.delete(a.timer);
          return;
        }
        case 'round-started':
          try {
            db.roundStarted(a.record);
          } catch (err) {
            logger.error({ err, roundId: a.record.roundId }, 'could not record the round start');
          }
          metrics.roundsStarted.inc();
          events.emit('round-started', a.record);
          return;
        case 'commit':
          void commit(a.roundId, a.record);
          return;
        case 'round-failed':
          metrics.roundsFailed.inc({ status: a.summary.status });
          try {
            db.failRound(a.summary);
          } catch (err) {
            logger.error({ err, roundId: a.summary.roundId }, 'could not record the failed round');
          }
          events.emit('round-failed', a.summary);
          return;
        case 'update-accepted':
          metrics.updatesAccepted.inc();
          events.emit('update-accepted', { roundId: a.roundId, agentId: a.agentId });
          return;
        case 'update-rejected':
          metrics.updatesRejected.inc({ reason: a.reason });
          logger.warn({ roundId: a.roundId, agentId: a.agentId, reason: a.reason, detail: a.message }, 'update rejected');
          if (a.late) {
            try {
              db.markLate(a.roundId, a.agentId);
            } catch (err) {
              logger.error({ err, roundId: a.roundId, agentId: a.agentId }, 'could not mark a late participant');
            }
          }
          events.emit('update-rejected', { roundId: a.roundId, agentId: a.agentId, reason: a.reason, message: a.message });
          return;
        case 'finished':
          logger.info({ completedRounds: a.completedRounds, reason: a.reason, privacy: engine.status().privacy }, a.reason === 'rounds' ? 'all rounds completed' : 'the privacy budget is spent: no further round');
          finishedResolve(a.completedRounds);
          events.emit('finished', a.completedRounds);
          return;
        case 'stopped':
          stoppedResolve();
          return;
        case 'log':
          logger[a.level](a.data ?? {}, a.msg);
          return;
      }
    };

    const commit = async (roundId: number, record: CommitRecord): Promise<void> => {
      const { model: m, summary } = record;
      try {
        await store.save({
          roundId,
          completedRounds: m.completedRounds,
          architecture: m.architecture,
          manifest: m.manifest,
          weights: m.weights,
          modelVersion: m.modelVersion,
          strategyState: record.strategyState,
        });
        db.commitRound(summary, m.completedRounds, checkpointDirName(roundId), record.privacyState === undefined ? undefined : { [PRIVACY_LEDGER_META]: JSON.stringify(record.privacyState) });
      } catch (err) {
        logger.error({ err, roundId }, 'commit failed');
        dispatch({ type: 'commit-failed', roundId, error: (err as Error).message });
        return;
      }
      try {
        const keep = new Set(db.completedRoundIds().slice(-config.keepLastK));
        for (const id of await store.list()) if (!keep.has(id)) await store.remove(id);
      } catch (err) {
        logger.error({ err }, 'pruning old checkpoints failed');
      }
      metrics.roundsCompleted.inc();
      metrics.roundDuration.observe(summary.durationMs / 1000);
      events.emit('round-completed', summary);
      dispatch({ type: 'commit-done', roundId });
    };

    const gateway: Gateway = new Gateway({
      io,
      protocol,
      logger,
      db,
      admission,
      metrics,
      coordinatorId: config.coordinatorId,
      identity,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      requireSignatures: config.requireSignatures,
      maxAgents: config.maxAgents,
      pending: config.connections,
      uploadRefusal: (agentId, roundId) => engine.uploadRefusal(agentId, roundId),
      dispatch,
      modelVersion: () => engine.globalModel.modelVersion,
    });

    app.setErrorHandler((err: FastifyError, req, reply) => {
      const status = err.statusCode ?? 500;
      if (status >= 500) req.log.error({ err }, 'request failed');
      void reply.status(status).send({ statusCode: status, code: err.code, error: err.name, message: err.message });
    });
    // (the root instance, so the hooks cover every route; cast: its logger type is pino's own)
    await installHttpSecurity(app as unknown as FastifyInstance, { http: config.http, adminToken: adminToken.value, publicRoutes: dashboardRoutes() });
    await app.register(
      adminRoutes({
        db,
        tokens: admission.tokens,
        mode: admission.mode,
        evict: (id, reason) => gateway.evict(id, reason),
        connected: (id) => gateway.isConnected(id),
      }),
    );
    await app.register(
      httpRoutes({
        db,
        status: () => engine.status(),
        model: () => engine.globalModel,
        ...(deps.modelSpec === undefined ? {} : { layersModel: layersModelSource(deps.modelSpec, () => engine.globalModel) }),
        agents: () => ({ connected: gateway.connected, authenticated: gateway.authenticated, list: gateway.agents() }),
        cohort: () => engine.cohort(),
        metrics: metrics.registry,
        startedAt: Date.now(),
        coordinatorId: config.coordinatorId,
        coordinatorKey,
        strategy: { name: strategy.name, params: strategy.params },
        aggregation: aggregator.mode,
        ...(secaggInfo === undefined ? {} : { secagg: secaggInfo }),
        history,
      }),
    );

    await app.register(liveRoutes(live));
    const runInfo: RunInfo = {
      model: { architecture: engine.globalModel.architecture, parameters: engine.globalModel.weights.length },
      recipe: recipeSummary(config),
      strategy: { name: strategy.name, params: { ...strategy.params } },
      aggregation: aggregator.mode,
      sampling: config.sampling.mode,
      rounds: config.rounds,
      cohort: { min: config.minCohort, max: config.maxCohort },
      threatModel: threatModel({ aggregation: aggregator.mode, dpNoise: config.training.dp?.noise ?? null, sampling: config.sampling.mode, enrolment: config.enrolment.mode }),
      dp:
        config.training.dp === undefined || privacy === undefined
          ? null
          : { noiseMultiplier: config.training.dp.noiseMultiplier, clipNorm: config.training.clipNorm, noise: config.training.dp.noise, delta: privacy.settings.delta, targetEpsilon: privacy.settings.targetEpsilon ?? null },
    };
    await app.register(
      dashboardPlugin({
        run: () => runInfo,
        ...(store instanceof FileModelStore ? { checkpointsDir: store.dir } : {}),
        checkpoints: () => store.list(),
        history,
      }),
    );

    const address = await app.listen({ port: config.port, host: config.host });
    const bound = app.server.address();
    const port = typeof bound === 'object' && bound !== null ? bound.port : config.port;
    const scheme = tls === null ? 'http' : 'https';
    const url = address.startsWith('http') ? address.replace(/^https?:/, `${scheme}:`).replace(/:\d+$/, `:${port}`) : `${scheme}://${config.host}:${port}`;
    started = true;
    logger.info(
      { url, coordinatorKey, enrolment: config.enrolment.mode, publicRead: config.http.publicRead, adminToken: adminToken.path },
      'coordinator listening',
    );
    logger.info({ coordinatorKey }, `coordinator public key ${coordinatorKey}: agents pin it with --coordinator-key ${coordinatorKey}`);

    // ---- shutdown ------------------------------------------------------------------------------
    let closing: Promise<void> | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'signal received; shutting down gracefully');
      handle.close({ reason: 'restarting' }).then(
        () => process.exit(failed === undefined ? 0 : 1),
        (err: unknown) => {
          logger.fatal({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    if (config.handleSignals) {
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    }

    const close = async (options: CloseOptions = {}): Promise<void> => {
      const mode = options.mode ?? config.shutdown.mode;
      gateway.stopAccepting();
      const notice = options.reason === 'restarting' ? { reason: 'restarting' as const, reconnectAfterMs: 2000 } : { reason: 'stopping' as const };
      dispatch({ type: 'shutdown', mode, notice });
      if (engine.phase !== 'stopped') {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), config.shutdown.timeoutMs);
        });
        const outcome = await Promise.race([stopped.then(() => 'stopped' as const), timeout]);
        if (timer !== undefined) clearTimeout(timer);
        if (outcome === 'timeout') {
          logger.warn({ timeoutMs: config.shutdown.timeoutMs }, 'the round did not finish in time; aborting it');
          dispatch({ type: 'shutdown', mode: 'abort' });
          await stopped;
        }
      }
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      await new Promise((resolve) => setTimeout(resolve, 50)); // let the last messages flush
      gateway.disconnectAll();
      io.removeAllListeners();
      await new Promise<void>((resolve) => {
        void io.close(() => resolve());
      });
      await app.close();
      db.close();
      if (config.handleSignals) {
        process.removeListener('SIGTERM', onSignal);
        process.removeListener('SIGINT', onSignal);
      }
      logger.info('coordinator closed');
      events.emit('closed');
    };

    const handle: CoordinatorHandle = {
      url,
      port,
      publicKey: coordinatorKey,
      config,
      events,
      logger,
      metrics,
      status: () => engine.status(),
      globalModel: () => engine.globalModel,
      finished,
      recordRoundMetrics: (roundId, m) => {
        const finite = Object.fromEntries(Object.entries(m).filter(([, v]) => Number.isFinite(v)));
        db.addRoundMetrics(roundId, finite);
        events.emit('round-evaluated', { roundId, metrics: finite });
      },
      close: (options) => {
        closing ??= close(options);
        return closing;
      },
    };

    dispatch({ type: 'start' });
    return handle;
  } finally {
    if (!started) db.close();
  }
}

export { MESSAGE_EVENT };
