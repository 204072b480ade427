// The simulation's evaluation of a global encoder: linear probe and kNN on labeled images no agent
// trains on (or whose labels no agent gets).
import { evaluateRepresentation } from '@fedclr/contrastive';
import type { LabeledImageDataset } from '@fedclr/data';
import type { GraphSpec } from '@fedclr/tensor';
import { encodeSplit } from '../commands/eval.js';
import type { EvalRecord } from './records.js';

export interface Evaluator {
  /** Fits the probe and is the kNN's memory: the labeled holdout, or the whole train split. */
  probe: LabeledImageDataset;
  test: LabeledImageDataset;
  k: number;
}

export async function evaluateModel(ev: Evaluator, spec: GraphSpec, weights: Float32Array, workers: number, afterRound: number): Promise<EvalRecord> {
  const started = performance.now();
  const train = await encodeSplit(spec, weights, ev.probe, workers);
  const test = await encodeSplit(spec, weights, ev.test, workers);
  const result = await evaluateRepresentation(
    { features: train.features, labels: ev.probe.labels, dim: train.dim },
    { features: test.features, labels: ev.test.labels, dim: test.dim },
    { knn: { k: ev.k }, numClasses: ev.probe.classNames.length },
  );
  return { afterRound, linearProbe: result.linearProbe, knn: result.knn, evalMs: Math.round(performance.now() - started) };
}

