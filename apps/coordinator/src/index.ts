// @fedclr/coordinator: fastify + socket.io coordinator of fedclr federated training.
export { startCoordinator, MESSAGE_EVENT } from './coordinator.js';
export type { CoordinatorDeps, CoordinatorHandle, CoordinatorEvents, CloseOptions, InitialModel } from './coordinator.js';
export { resolveConfig } from './config.js';
export { isLoopbackHost, DEFAULT_DP_DELTA } from './config.js';
export type { CoordinatorConfig, ResolvedConfig, EnrolmentPolicy, HttpConfig, TrainingConfig, DpSettings, PrivacyBudgetConfig, LrScheduleConfig, QuorumConfig, CohortSamplingConfig, SecAggConfig, ShutdownConfig } from './config.js';
export { CONSTANT_SCHEDULE, DEFAULT_FINAL_FRACTION, LR_SCHEDULES, lrFactor, runProgress, scheduledLearningRate } from './lr-schedule.js';
export type { LrSchedule, LrScheduleName, RunProgressInput, TimeBudget } from './lr-schedule.js';
export { PrivacyLedger, PRIVACY_LEDGER_VERSION } from './privacy-ledger.js';
export type { PrivacyLedgerSettings, PrivacyLedgerState, PrivacySpent } from './privacy-ledger.js';
export { RoundEngine, makeGlobalModel, weightsFromFrame } from './engine.js';
export type {
  CommitRecord,
  EngineAction,
  EngineEvent,
  EngineInit,
  EnginePhase,
  EngineSettings,
  EngineStatus,
  GlobalModel,
  ParticipantRecord,
  ParticipantStatus,
  RoundStartedRecord,
  RoundSummary,
  ShutdownMode,
  ShutdownNotice,
  TimerName,
} from './engine.js';
export { PlainAggregationSession, createPlainAggregator, plainAggregator } from './aggregation.js';
export {
  SecureAggregationSession,
  secureAggregator,
  maskedManifest,
  roundEncoding,
  secaggSessionId,
  loadOrCreateSecaggIdentity,
  SECAGG_SERVER_ID,
  MASKED_TENSOR,
  SECAGG_IDENTITY_FILE,
} from './secure-aggregation.js';
export type { SecureAggregationOptions } from './secure-aggregation.js';
export type {
  Aggregate,
  AggregationDp,
  AggregationRound,
  AggregationSession,
  AggregationStatus,
  AggregationStep,
  AggregatorFactory,
  OutboundSecagg,
  UpdateContribution,
} from './aggregation.js';
export { createStrategy, fedAvg, fedAvgM, fedAdam, statisticsMask, withAveragedStatistics, STRATEGY_DEFAULTS, STRATEGY_NAMES } from './strategy.js';
export type { Strategy, StrategyName, StrategyResult, StrategySpec, StrategyState } from './strategy.js';
export { FileModelStore, checkpointDirName } from './model-store.js';
export type { Checkpoint, CheckpointExporter, CheckpointWriter, ModelStore, FileModelStoreOptions } from './model-store.js';
export { StateDb, MIGRATIONS } from './db.js';
export type { AdmitResult, EnrolmentRow, EnrolmentSource, EnrolmentStatus, TokenRow } from './db.js';
export { Admission, EnrolmentTokens, ADMIN_TOKEN_FILE, TOKEN_KEY_FILE, TOKEN_PREFIX, loadOrCreateAdminToken } from './admission.js';
export type { AdmissionDecision, AdmissionMode } from './admission.js';
export { ADMIN_PREFIX, EnrolmentSchema, EnrolmentListSchema, TokensSchema, adminRoutes, installHttpSecurity } from './admin.js';
export { sampleCohort, roundSeed, SAMPLING_MODES, COORDINATOR_SAMPLING } from './sampling.js';
export type { SamplingMode, SamplingSettings } from './sampling.js';
export { parsePublicKey, verifyEd25519, ed25519PublicKey } from './auth.js';
export * from './errors.js';
export { HealthSchema, StatusSchema, RoundsPageSchema, RoundDetailSchema, ModelInfoSchema, AgentsSchema, LayersModelJsonSchema } from './http.js';
export { LAYERS_WEIGHTS_PATH, layersModelSource, type LayersModelFiles } from './layers-model.js';
export { DASHBOARD_DIR, RunSchema, CheckpointsSchema, dashboardPlugin, dashboardRoutes, threatModel, type RunInfo } from './dashboard.js';
export { LiveFeed, liveRoutes, type LiveEvent } from './live.js';
export { renderReportHtml, type ReportInput, type ReportRound } from './report-html.js';
