// Shared-memory layout between the parallel engine and its workers. Commands travel by
// postMessage; the per-step handshakes (embeddings ready, loss gradient ready, gradients ready,
// done) travel through Atomics on shared cells, so a worker can wait for the loss gradient
// synchronously in the middle of its gradient tape, and for its peers' gradients before it
// sums and applies its slice of the update.
import type { GraphSpec } from '@fedclr/tensor';
import type { AugmentConfig } from '../augment/index.js';
import type { OptimizerConfig, ProximalTerm } from './optimizer.js';
import type { LocalViews } from './replica.js';

export const CELL = { zReady: 0, dzReady: 1, done: 2, failed: 3, gradientsReady: 4 } as const;
export const CELLS_PER_WORKER = 5;

export interface WorkerBuffers {
  control: SharedArrayBuffer;
  weights: SharedArrayBuffer;
  input: SharedArrayBuffer;
  z: SharedArrayBuffer;
  dz: SharedArrayBuffer;
  gradients: SharedArrayBuffer;
  /** Every worker's `gradients`, in worker order: each worker sums its slice of all of them. */
  peerGradients: SharedArrayBuffer[];
  /** The optimiser's state (m, then v for Adam), updated in place slice by slice. */
  moments: { m: SharedArrayBuffer; v: SharedArrayBuffer };
  /** MoCo only: the key encoder's weights (written by the engine before each step), and the worker's key embeddings. */
  keyWeights?: SharedArrayBuffer;
  keys?: SharedArrayBuffer;
}

export interface WorkerInit {
  type: 'init';
  index: number;
  backend: string | undefined;
  spec: GraphSpec;
  augment: AugmentConfig | null;
  localViews: LocalViews | null;
  optimizer: OptimizerConfig;
  proximal: ProximalTerm | null;
  buffers: WorkerBuffers;
}

/** A step's update: the optimiser step number, the rate, and this worker's gradient slice [start, end). */
export interface StepUpdate {
  learningRate: number;
  optimizerStep: number;
  start: number;
  end: number;
  /** Workers in this step (a small batch may use fewer than all). */
  active: number;
}

export type WorkerCommand =
  | WorkerInit
  | { type: 'step'; seq: number; count: number; seed: number; update: StepUpdate }
  | { type: 'forward'; seq: number; count: number; seed: number }
  | { type: 'embed'; seq: number; count: number; output: string | undefined }
  | { type: 'close' };

export type WorkerReply = { type: 'ready'; gradientSize: number; statsSize: number } | { type: 'error'; seq: number; message: string };

/** Longest a worker waits for the loss gradient before giving up (the main thread died or hung). */
export const DZ_TIMEOUT_MS = 10 * 60 * 1000;
