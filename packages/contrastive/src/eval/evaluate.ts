// One call that reads a representation the way the self-supervised literature does: a linear
// probe and a weighted kNN on the same frozen train/test features. Run it on the learned
// features and on the two baselines (raw pixels via rawPixelFeatures, and a randomly initialised
// encoder) and read the numbers against each other.
import { validateSplits, type FeatureSet } from './features.js';
import { knnValidated, type KnnOptions, type KnnResult } from './knn.js';
import { linearProbeValidated, type LinearProbeOptions, type LinearProbeResult } from './linear-probe.js';

export interface EvaluateOptions {
  readonly linearProbe?: LinearProbeOptions;
  readonly knn?: KnnOptions;
  /** Number of classes for both; default: largest label in either split + 1. */
  readonly numClasses?: number;
  readonly signal?: AbortSignal;
}

export interface EvaluationResult {
  /** Linear-probe test accuracy. */
  readonly linearProbe: number;
  /** kNN test accuracy (at the kNN's main k). */
  readonly knn: number;
  readonly numClasses: number;
  readonly dim: number;
  readonly trainCount: number;
  readonly testCount: number;
  readonly details: {
    readonly linearProbe: LinearProbeResult;
    readonly knn: KnnResult;
  };
  readonly timeMs: number;
}

/** Validates the splits once, then runs the linear probe and the kNN. */
export async function evaluateRepresentation(train: FeatureSet, test: FeatureSet, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  const started = performance.now();
  const v = validateSplits(train, test, options.numClasses);
  const signal = options.signal;
  const withSignal = <T extends { signal?: AbortSignal }>(o: T | undefined): T =>
    ({ ...(o ?? {}), ...(signal !== undefined && o?.signal === undefined ? { signal } : {}) }) as T;
  const probe = await linearProbeValidated(train, test, v, withSignal(options.linearProbe));
  const neighbours = await knnValidated(train, test, v, withSignal(options.knn));
  return {
    linearProbe: probe.accuracy,
    knn: neighbours.accuracy,
    numClasses: v.numClasses,
    dim: v.dim,
    trainCount: v.trainCount,
    testCount: v.testCount,
    details: { linearProbe: probe, knn: neighbours },
    timeMs: performance.now() - started,
  };
}
