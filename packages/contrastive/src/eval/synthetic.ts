// Seeded synthetic feature sets for tests and sanity checks of the evaluation module.
import { createRng, type Seed } from '@fedclr/data';
import type { FeatureSet } from './features.js';

export interface BlobsOptions {
  readonly count: number;
  readonly dim: number;
  readonly classes: number;
  /** Std of each blob around its centre. Default 1. */
  readonly spread?: number;
  /** Std of the class centres (drawn once per seed). Default 5. */
  readonly separation?: number;
  readonly seed?: Seed;
}

/**
 * Isotropic Gaussian blobs, one per class, labels cycling 0..classes-1. `centersSeed` fixes the
 * centres so that a train and a test split can share them while drawing different points.
 */
export function gaussianBlobs(options: BlobsOptions & { readonly centersSeed?: Seed }): FeatureSet {
  const { count, dim, classes } = options;
  const spread = options.spread ?? 1;
  const separation = options.separation ?? 5;
  const centresRng = createRng(options.centersSeed ?? 'blobs-centres');
  const centres = Array.from({ length: classes }, () => Float64Array.from({ length: dim }, () => centresRng.normal(0, separation)));
  const rng = createRng(options.seed ?? 0);
  const features = new Float32Array(count * dim);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const y = i % classes;
    labels[i] = y;
    const c = centres[y] as Float64Array;
    for (let j = 0; j < dim; j++) features[i * dim + j] = (c[j] as number) + rng.normal(0, spread);
  }
  return { features, labels, dim };
}

/**
 * 2-D XOR: four blobs at (+-1, +-1) with label 1 where x * y < 0. Not linearly separable (a
 * linear probe stays near chance), but each class owns two opposite angular sectors, so a
 * cosine kNN classifies it almost perfectly.
 */
export function xorBlobs(count: number, seed: Seed = 0, spread = 0.2): FeatureSet {
  const rng = createRng(seed);
  const features = new Float32Array(count * 2);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const sx = i % 2 === 0 ? 1 : -1;
    const sy = (i >> 1) % 2 === 0 ? 1 : -1;
    features[2 * i] = sx + rng.normal(0, spread);
    features[2 * i + 1] = sy + rng.normal(0, spread);
    labels[i] = sx * sy < 0 ? 1 : 0;
  }
  return { features, labels, dim: 2 };
}
