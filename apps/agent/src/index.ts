// @fedclr/agent: the edge client of fedclr federated training.
export { startAgent, socketIoConnector, socketIoAgentSocket, tlsFailure, isLoopbackHost } from './agent.js';
export type {
  AgentEvents,
  AgentExit,
  AgentExitReason,
  AgentHandle,
  AgentOptions,
  AgentOutbound,
  AgentSocket,
  AgentState,
  Connector,
} from './agent.js';
export type { LocalTrainer, TrainInput, TrainOutput, ProgressCallback, TrainingGate, TrainingSlot } from './trainer.js';
export { createFakeTrainer, fakeLocalWeights } from './fake-trainer.js';
export type { FakeTrainerOptions } from './fake-trainer.js';
export { loadOrCreateIdentity, defaultAgentId, IDENTITY_FILE } from './identity.js';
export type { AgentIdentity } from './identity.js';
export { Backoff, BACKOFF_DEFAULTS } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { buildUpdate, prepareDelta } from './update.js';
export type { BuiltUpdate, PreparedDelta, UpdateInput } from './update.js';
export { SecureRound, encodeSecureInput, COORDINATOR_ADDRESS, MASKED_TENSOR, RED_TEAM_MODES } from './secure-round.js';
export type { EncodedSecureInput, RedTeamMode, SecureInput, SecureInputRequest, SecureInputResult, SecureRoundOptions } from './secure-round.js';
export { CoordinatorKeys, parseCoordinatorKey, COORDINATOR_KEYS_FILE } from './coordinator-keys.js';
export type { KeyVerdict } from './coordinator-keys.js';
export { POLICY_DEFAULTS, POLICY_FILE, POLICY_FLAGS, checkRoundPolicy, resolvePolicy, validatePolicy } from './policy.js';
export type { RoundPolicy } from './policy.js';
export { AgentPrivacyBudget, PRIVACY_BUDGET_FILE } from './budget.js';
export type { AgentPrivacySpent, PrivacyBudgetOptions } from './budget.js';
export { SamplingMemory, deriveSamplingKey, samplingCoin, volunteers } from './sampling.js';
export * from './errors.js';
export { createContrastiveTrainer, protocolManifest, architectureId, roundRecipe, wireRecipe, DEFAULT_DEADLINE_FRACTION } from './contrastive-trainer.js';
export type { ContrastiveTrainerOptions, ImageLoader, TrainingPlan } from './contrastive-trainer.js';
