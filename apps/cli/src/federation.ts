// Pieces shared by `fedclr coordinator`, `fedclr agent` and `fedclr simulate`: the simulated
// federation's data split, and the messages a coordinator process sends its parent. (The model
// is the recipe's: recipe-flags.ts and @fedclr/contrastive's recipe.)
import type { RoundSummary } from '@fedclr/coordinator';
import { createRng, loadFashionMnist, partition, type LabeledImageDataset, type PartitionSpec } from '@fedclr/data';
import { intOption, numberOption } from './common.js';
import { UsageError } from './errors.js';

// ---- the simulated federation's data ---------------------------------------------------------

/**
 * How a simulation splits Fashion-MNIST's train split (optionally only its first `limit` images)
 * among the clients. The test split, which no agent ever sees, scores the linear probe and the
 * kNN. By default (holdout 0) the whole train split is partitioned and the probe is fitted on its
 * labels, which agents never get: the protocol of `fedclr eval`, of the centralised comparison and
 * of the federated self-supervised literature (FedX, FedU). With `holdout` H > 0, H labeled images
 * are carved out first, no agent sees them, and they alone fit the probe and are the kNN's memory.
 * Every process derives the same split from this spec, so agents load their share themselves and
 * no image crosses a process boundary.
 */
export interface SimulationDataSpec {
  readonly dataset: 'fashion-mnist';
  readonly clients: number;
  readonly partition: PartitionSpec;
  readonly seed: number;
  /** Labeled train images kept from the agents to fit the probe; default 0 (the probe fits on the train split). */
  readonly holdout?: number;
  /** Use only the first `limit` train images and the first `limit` test images. */
  readonly limit?: number;
}

export interface SimulationSplit {
  /** Indices into the (limited) train split. */
  readonly holdout: number[];
  /** One ascending index list per client, disjoint from the holdout (empty: none). */
  readonly parts: number[][];
}

/** What splitSimulation uses of a spec: the same for Fashion-MNIST and for a labeled folder (simulate --data). */
export type SplitSpec = Pick<SimulationDataSpec, 'clients' | 'partition' | 'seed' | 'holdout'>;

function holdoutSize(spec: SplitSpec, trainCount: number): number {
  const h = spec.holdout ?? 0;
  if (h !== 0 && (h < 10 || h > trainCount - 2 * spec.clients)) {
    throw new UsageError(`the holdout (${h} images) must be 0 (none), or at least 10 and leave at least 2 images per client out of ${trainCount}`);
  }
  return h;
}

export function splitSimulation(labels: ArrayLike<number>, spec: SplitSpec): SimulationSplit {
  const n = labels.length;
  const h = holdoutSize(spec, n);
  const root = createRng(`fedclr-simulate:${spec.seed}`);
  const order = root.fork('holdout').shuffle(Array.from({ length: n }, (_, i) => i));
  const holdout = order.slice(0, h).sort((a, b) => a - b);
  const pool = order.slice(h).sort((a, b) => a - b);
  const poolLabels = pool.map((i) => labels[i] as number);
  const parts = partition(poolLabels, spec.clients, spec.partition, root.fork('partition')).map((p) => p.map((j) => pool[j] as number));
  return { holdout, parts };
}

export async function loadSimulationTrain(spec: SimulationDataSpec): Promise<LabeledImageDataset> {
  return loadFashionMnist('train', spec.limit === undefined ? {} : { limit: spec.limit });
}

export async function loadSimulationTest(spec: SimulationDataSpec): Promise<LabeledImageDataset> {
  return loadFashionMnist('test', spec.limit === undefined ? {} : { limit: spec.limit });
}

/** Parses the partition flags shared by simulate and agent. */
export function partitionOption(values: Record<string, unknown>): PartitionSpec {
  const kind = (values['partition'] as string | undefined) ?? 'iid';
  if (kind === 'iid') return { kind };
  if (kind === 'dirichlet') return { kind, alpha: numberOption(values, 'alpha', 0.5) as number };
  if (kind === 'shards') return { kind, shardsPerClient: intOption(values, 'shards-per-client', 2) };
  throw new UsageError(`--partition must be iid, dirichlet or shards, got '${kind}'`);
}

// ---- coordinator process -> parent (fedclr simulate) -----------------------------------------

export type CoordinatorIpcMessage =
  | { type: 'listening'; url: string; coordinatorKey: string; modelVersion: string; architecture: string; parameters: number; completedRounds: number; at: number }
  | { type: 'round-started'; roundId: number; cohort: number; at: number }
  | { type: 'round-completed'; summary: RoundSummary; completedRounds: number; checkpointDir: string; at: number }
  | { type: 'round-failed'; summary: RoundSummary; at: number }
  /** --eval-data: a committed round's checkpoint was scored (metrics evalLinearProbe, evalKnn, evalMs). */
  | { type: 'round-evaluated'; roundId: number; metrics: Readonly<Record<string, number>>; at: number }
  | { type: 'stopping'; reason: StopReason; completedRounds: number; at: number };

export type StopReason = 'rounds' | 'privacy-budget' | 'minutes' | 'signal' | 'parent-gone';

/** Sends a message to the parent process if there is one that listens (fork with IPC). */
export function sendToParent(message: CoordinatorIpcMessage): void {
  if (typeof process.send === 'function' && process.connected) process.send(message);
}
