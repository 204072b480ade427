// The chaos harness's model and its expected aggregates: a seeded one-layer model, and the
// FedAvg (step 1) of exactly a round's survivors, recomputed from the fake trainer's seeded
// updates (apps/agent createFakeTrainer: local = global + uniform noise) in float64.
import { fakeLocalWeights } from '@fedclr/agent';
import type { Manifest } from '@fedclr/protocol';

export interface ChaosModel {
  readonly manifest: Manifest;
  readonly weights: Float32Array;
}

export function chaosModel(parameters: number, seed = 7): ChaosModel {
  const cols = Math.min(parameters, 100);
  const rows = Math.max(1, Math.ceil(parameters / cols));
  const manifest: Manifest = [{ name: 'dense/kernel', shape: [rows, cols], dtype: 'float32' }];
  const weights = new Float32Array(rows * cols);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < weights.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    weights[i] = (x / 2 ** 32 - 0.5) * 0.2;
  }
  return { manifest, weights };
}

/** What the harness knows of one agent's fake trainer. */
export interface AgentSpec {
  readonly id: string;
  readonly seed: number;
  readonly exampleCount: number;
}

/**
 * base + sum_i w_i delta_i / sum_i w_i over `included`, w_i = min(exampleCount, maxWeight),
 * delta_i = float32(fake local weights - base), as the agents upload it; per-coordinate clip c.
 */
export function expectedFedAvg(base: Float32Array, included: readonly AgentSpec[], roundId: number, scale: number, maxWeight: number, clip: number): Float64Array {
  const sum = new Float64Array(base.length);
  let total = 0;
  const delta = new Float32Array(base.length);
  for (const a of included) {
    const w = Math.min(a.exampleCount, maxWeight);
    const local = fakeLocalWeights(base, a.seed, roundId, scale);
    for (let i = 0; i < base.length; i++) delta[i] = (local[i] as number) - (base[i] as number);
    for (let i = 0; i < base.length; i++) sum[i] = (sum[i] as number) + w * Math.max(-clip, Math.min(clip, delta[i] as number));
    total += w;
  }
  const out = new Float64Array(base.length);
  for (let i = 0; i < base.length; i++) out[i] = (base[i] as number) + (total > 0 ? (sum[i] as number) / total : 0);
  return out;
}
