export { LocalStepEngine, initialState, isMocoLoss, type StepEngine, type StepEngineConfig, type StepResult, type TrainingLoss } from './engine.js';
export { ParallelStepEngine, createStepEngine, engineWorkers, splitBatch } from './parallel.js';
export { FlatOptimizer, learningRateAt, trainableSegments, type OptimizerConfig, type OptimizerState, type ProximalTerm, type ScheduleConfig } from './optimizer.js';
export { checkPairLossLabels, multiViewLossGradient, ntXentPairLoss, pairLossGradient, type PairLoss } from './loss.js';
export * from './losses/index.js';
export { KeyQueue, MocoState, emaUpdate, mocoLoss, mocoLossGradient, mocoValueAndGradient, queueCapacityFor, type MocoLoss, type MocoOptions } from './moco.js';
export { Replica, viewsPerImage, type LocalViews, type LossGradient, type ReplicaConfig } from './replica.js';
export { trainContrastive, type TrainerConfig, type TrainProgress, type TrainResult } from './trainer.js';
