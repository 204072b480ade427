// A micro-benchmark of an augmentation pipeline, to weigh it against a training step.
import type * as tf from '@tensorflow/tfjs-core';
import type { AugmentPipeline } from './pipeline.js';
import { createSeededRandom, type RandomSource } from './random.js';

export interface MeasureAugmentOptions {
  /** Timed runs. Default 10. */
  iterations?: number;
  /** Untimed runs first (kernel set-up, JIT). Default 2. */
  warmup?: number;
  /** Source of the random parameters. Default createSeededRandom(0). */
  rng?: RandomSource;
}

/**
 * Mean wall-clock milliseconds to augment `batch` once with `pipeline` on the current tfjs
 * backend, including the JS-side sampling and waiting for the result's data (so asynchronous
 * backends are measured to completion). Outputs are disposed; the batch is left as is.
 */
export async function measureAugmentCost(
  pipeline: AugmentPipeline,
  batch: tf.Tensor4D,
  options: MeasureAugmentOptions = {},
): Promise<number> {
  const iterations = Math.max(1, Math.floor(options.iterations ?? 10));
  const warmup = Math.max(0, Math.floor(options.warmup ?? 2));
  const rng = options.rng ?? createSeededRandom(0);
  const runOnce = async (): Promise<void> => {
    const out = pipeline.apply(batch, rng);
    try {
      await out.data();
    } finally {
      out.dispose();
    }
  };
  for (let i = 0; i < warmup; i++) await runOnce();
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await runOnce();
  return (performance.now() - start) / iterations;
}
