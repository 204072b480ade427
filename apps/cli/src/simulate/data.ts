// The simulation's data: Fashion-MNIST or a labeled image folder, split the same way. The train
// images are partitioned among the agents (labels used only to partition and to evaluate); the
// test images, which no agent sees, score the linear probe and the kNN. Each agent gets only its
// share: a Fashion-MNIST agent derives it from the partition flags (the same split every process
// computes), a folder agent is handed the list of its files (--data DIR --file-list FILE).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labelCounts, labelSkew, subsetDataset, type LabeledImageDataset, type PartitionSpec } from '@fedclr/data';
import { UsageError } from '../errors.js';
import { loadSimulationTest, loadSimulationTrain, splitSimulation, type SimulationDataSpec, type SplitSpec } from '../federation.js';
import { labeledFolderSplits, type FolderReader } from '../folders.js';
import type { Evaluator } from './evaluation.js';

export interface SimulationData {
  readonly trainCount: number;
  readonly holdoutCount: number;
  readonly testCount: number;
  /** Images per client. */
  readonly sizes: number[];
  readonly skew: number;
  readonly evaluator: Evaluator;
  /** Where the test images come from (the report's data section). */
  readonly testSource: string;
  /** The data flags of agent i. */
  agentArgs(i: number): string[];
}

/** The holdout (kept from the agents to fit the probe) and the agents' parts of `train`. */
function splitTrain(train: LabeledImageDataset, test: LabeledImageDataset, spec: SplitSpec, k: number) {
  const split = splitSimulation(train.labels, spec);
  const sizes = split.parts.map((p) => p.length);
  const small = sizes.findIndex((n) => n < 2);
  if (small >= 0) throw new UsageError(`client ${small} gets ${sizes[small]} images; contrastive training needs at least 2 (fewer clients or a larger --alpha)`);
  const skew = labelSkew(labelCounts(split.parts, train.labels, train.classNames.length));
  const evaluator: Evaluator = { probe: split.holdout.length > 0 ? subsetDataset(train, split.holdout) : train, test, k };
  return { split, sizes, skew, evaluator };
}

/** Fashion-MNIST's train split (or its first `limit` images) among the agents; its test split scores. */
export async function fashionMnistData(spec: SimulationDataSpec, k: number): Promise<SimulationData> {
  const [train, test] = await Promise.all([loadSimulationTrain(spec), loadSimulationTest(spec)]);
  const { split, sizes, skew, evaluator } = splitTrain(train, test, spec, k);
  return {
    trainCount: train.count,
    holdoutCount: split.holdout.length,
    testCount: test.count,
    sizes,
    skew,
    evaluator,
    testSource: 'the Fashion-MNIST test split',
    agentArgs: (i) => [
      '--dataset', 'fashion-mnist',
      '--client', `${i}/${spec.clients}`,
      ...partitionArgs(spec.partition),
      '--seed', String(spec.seed),
      '--holdout', String(split.holdout.length),
      ...(spec.limit !== undefined ? ['--limit', String(spec.limit)] : []),
    ],
  };
}

function partitionArgs(partition: PartitionSpec): string[] {
  return [
    '--partition', partition.kind,
    ...(partition.kind === 'dirichlet' ? ['--alpha', String(partition.alpha)] : []),
    ...(partition.kind === 'shards' ? ['--shards-per-client', String(partition.shardsPerClient)] : []),
  ];
}

export interface FolderDataOptions {
  readonly data: string;
  readonly testData: string | undefined;
  readonly testFraction: number;
  readonly input: { readonly height: number; readonly width: number; readonly channels: 1 | 3 };
  readonly split: SplitSpec;
  readonly k: number;
  /** Where the agents' file lists are written. */
  readonly outDir: string;
}

/**
 * A labeled folder: read at the model's input, a test set held out (the test folder, or a seeded
 * stratified split), the rest partitioned among the agents by its labels; agent i's file list
 * is written to <outDir>/data/agent-i.files.
 */
export async function folderData(o: FolderDataOptions, reader: FolderReader): Promise<SimulationData> {
  const splits = await labeledFolderSplits(reader, { train: o.data, test: o.testData }, o.input, { testFraction: o.testFraction, seed: o.split.seed });
  const { split, sizes, skew, evaluator } = splitTrain(splits.train, splits.test, o.split, o.k);
  const dir = join(o.outDir, 'data');
  await mkdir(dir, { recursive: true });
  const lists = split.parts.map((_, i) => join(dir, `agent-${i}.files`));
  await Promise.all(split.parts.map((part, i) => writeFile(lists[i] as string, `${part.map((j) => splits.trainPaths[j]).join('\n')}\n`)));
  return {
    trainCount: splits.train.count,
    holdoutCount: split.holdout.length,
    testCount: splits.test.count,
    sizes,
    skew,
    evaluator,
    testSource: splits.testSource,
    agentArgs: (i) => ['--data', splits.trainRoot, '--file-list', lists[i] as string],
  };
}
