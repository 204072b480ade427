// What the agent needs from local training. The real trainer (tfjs, contrastive losses, the
// private image folder) is @fedclr/contrastive's; the agent only sees weights in and weights
// out, plus scalar metrics: it never handles images or features, so it cannot send them.
import type { Manifest, RoundConfig } from '@fedclr/protocol';

export interface TrainInput {
  /** Round id (for logs and seeding). */
  readonly round: number;
  /** The global model's flat float32 weights in manifest order (a private copy: the trainer may modify it). */
  readonly globalWeights: Float32Array;
  readonly manifest: Manifest;
  /** Local epochs, batch size, optimizer, loss, fedproxMu (FedProx proximal term), seed, ... */
  readonly config: RoundConfig;
  /** Which run the round belongs to (the coordinator's identity key): state a trainer keeps between rounds (MoCo's queue) is this run's only. */
  readonly lineage?: string;
}

export interface TrainOutput {
  /** The locally trained weights, same layout and length as globalWeights. */
  readonly weights: Float32Array;
  /** Number of local examples trained on: the weight of this update in the average. */
  readonly exampleCount: number;
  /** Scalar metrics; `loss` and `steps` are forwarded as such, the rest as extra metrics. */
  readonly metrics: Readonly<Record<string, number>>;
}

/** Progress in [0, 1]; the agent forwards it in heartbeats. */
export type ProgressCallback = (fraction: number) => void;

export interface LocalTrainer {
  /**
   * Trains from the global weights. Must stop promptly (rejecting) when `signal` aborts: the
   * round deadline passed, the round was aborted, the connection dropped or the agent closes.
   */
  train(input: TrainInput, signal: AbortSignal, onProgress?: ProgressCallback): Promise<TrainOutput>;
}

/**
 * A training slot, held while one local training runs (engine set-up, training loop, teardown).
 * release() must be called exactly once and must not throw; the trainer reports how long its
 * training loop ran (0 if it never started).
 */
export interface TrainingSlot {
  release(report: { readonly trainMs: number }): void;
}

/**
 * Limits how many trainers train at the same time (e.g. agents sharing one machine in a
 * simulation). acquire() resolves once a slot is free and rejects when `signal` aborts; an
 * acquisition that is aborted while waiting gives up its place (and any slot granted meanwhile).
 */
export interface TrainingGate {
  acquire(signal: AbortSignal): Promise<TrainingSlot>;
}
