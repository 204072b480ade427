// @fedclr/agent: the edge client of fedclr federated training.
export { startAgent, socketIoConnector } from './agent.js';
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
export type { LocalTrainer, TrainInput, TrainOutput, ProgressCallback } from './trainer.js';
export { createFakeTrainer, fakeLocalWeights } from './fake-trainer.js';
export type { FakeTrainerOptions } from './fake-trainer.js';
export { loadOrCreateIdentity, defaultAgentId, IDENTITY_FILE } from './identity.js';
export type { AgentIdentity } from './identity.js';
export { Backoff, BACKOFF_DEFAULTS } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { buildUpdate, cryptoGaussian } from './update.js';
export type { BuiltUpdate, UpdateInput } from './update.js';
export * from './errors.js';
