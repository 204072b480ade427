export { LocalStepEngine, initialState, type StepEngine, type StepEngineConfig, type StepResult } from './engine.js';
export { ParallelStepEngine, splitBatch } from './parallel.js';
export { FlatOptimizer, learningRateAt, trainableSegments, type OptimizerConfig, type OptimizerState, type ScheduleConfig } from './optimizer.js';
export { ntXentPairLoss, pairLossGradient, type PairLoss } from './loss.js';
export { Replica, type LossGradient, type ReplicaConfig } from './replica.js';

import type { StepEngine, StepEngineConfig } from './engine.js';
import { LocalStepEngine } from './engine.js';
import { ParallelStepEngine } from './parallel.js';

/** A parallel engine when `workers` >= 1, else in-process. */
export async function createStepEngine(config: StepEngineConfig): Promise<StepEngine> {
  return (config.workers ?? 0) >= 1 ? ParallelStepEngine.create(config) : new LocalStepEngine(config);
}
