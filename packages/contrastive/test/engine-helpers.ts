// Shared by the step-engine tests: a model without BatchNorm, and the loops that train a fixed
// batch or count tensors across steps.
import * as tf from '@tensorflow/tfjs-core';
import type { GraphSpec } from '@fedclr/tensor';
import type { StepEngine } from '../src/index.js';

/** No BatchNorm: per-worker batch statistics would (rightly) make the in-process and parallel engines differ. */
export const noBatchNorm: GraphSpec = {
  name: 'plain-cnn',
  input: { height: 8, width: 8, channels: 1 },
  nodes: [
    { op: 'conv', name: 'c1', input: 'input', filters: 4, kernel: 3, stride: 1 },
    { op: 'relu', name: 'r1', input: 'c1' },
    { op: 'conv', name: 'c2', input: 'r1', filters: 8, kernel: 3, stride: 2 },
    { op: 'relu', name: 'r2', input: 'c2' },
    { op: 'gap', name: 'representation', input: 'r2' },
    { op: 'dense', name: 'projection', input: 'representation', units: 6 },
  ],
  output: 'projection',
};

/** The losses of steps `from` to `to` - 1 on one batch of `count` images. */
export async function fixedBatchLosses(engine: StepEngine, batch: Float32Array, count: number, learningRate: number, from: number, to: number): Promise<number[]> {
  const losses: number[] = [];
  for (let step = from; step < to; step++) losses.push((await engine.step(batch, count, learningRate, step)).loss);
  return losses;
}

/** tf.memory().numTensors after 3 warm-up steps, and after `steps` more. */
export async function tensorsAcrossSteps(engine: StepEngine, batch: Float32Array, count: number, steps: number): Promise<[number, number]> {
  await fixedBatchLosses(engine, batch, count, 1e-3, 0, 3);
  const before = tf.memory().numTensors;
  await fixedBatchLosses(engine, batch, count, 1e-3, 3, 3 + steps);
  return [before, tf.memory().numTensors];
}
