// Shared by the step-engine tests: a model without BatchNorm (specs.ts), and the loops that train a fixed
// batch or count tensors across steps.
import * as tf from '@tensorflow/tfjs-core';
import type { StepEngine } from '../src/index.js';

// The spec without BatchNorm is specs.ts's (one fixture for all the engine tests).
export { noBatchNorm } from './specs.js';

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
