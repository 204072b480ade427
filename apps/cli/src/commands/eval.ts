// fedclr eval: linear probe + kNN of a saved encoder's representation, or of a baseline (raw
// pixels, randomly initialised encoder), on labeled train/test splits.
import { parseArgs } from 'node:util';
import {
  encodeImages,
  evaluateRepresentation,
  initialState,
  rawPixelFeatures,
  recipeModelSpec,
  type EvaluationResult,
} from '@fedclr/contrastive';
import { createRng, loadFashionMnist, subsetDataset, type LabeledImageDataset } from '@fedclr/data';
import { initBackend, loadExportedModel, type GraphSpec } from '@fedclr/tensor';
import { defaultWorkers, intOption, nonNegativeOption } from '../common.js';
import { modelFromFlags } from '../recipe-flags.js';
import { UsageError } from '../errors.js';

export const evalHelp = `fedclr eval (--model DIR | --baseline raw|random) [options]
  --model DIR                 a model written by fedclr train / the coordinator (tfjs format)
  --baseline raw|random       raw pixels, or a randomly initialised encoder (--encoder, --widths, --seed)
  --dataset fashion-mnist     labeled train split for fitting, test split for scoring
  --split test|validation     score on the test split (default), or on 10,000 train images held
                              out from fitting (seeded by --split-seed): tune recipes on this one
  --k 20                      neighbours of the kNN
  --l2 1e-4|auto              probe regularisation; auto picks it on 10% of the TRAIN split
  --workers N --seed 0 --json`;

/** Representations of every image of a split through the encoder part of a model. */
export async function encodeSplit(spec: GraphSpec, weights: Float32Array, data: LabeledImageDataset, workers: number): Promise<{ features: Float32Array; dim: number }> {
  return encodeImages(spec, weights, data.images, data.count, { workers });
}

const VALIDATION_SIZE = 10_000;

/** (fit, score) splits: train/test, or train minus a seeded held-out part of it / that part. */
async function heldOutSplits(split: 'test' | 'validation', seed: number): Promise<[LabeledImageDataset, LabeledImageDataset]> {
  const train = (await loadFashionMnist('train')) as LabeledImageDataset;
  if (split === 'test') return [train, (await loadFashionMnist('test')) as LabeledImageDataset];
  const order = createRng(seed).shuffle(Array.from({ length: train.count }, (_, i) => i));
  return [subsetDataset(train, order.slice(VALIDATION_SIZE)), subsetDataset(train, order.slice(0, VALIDATION_SIZE))];
}

export async function evalCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      baseline: { type: 'string' },
      encoder: { type: 'string', default: 'convnet-s' },
      dataset: { type: 'string', default: 'fashion-mnist' },
      k: { type: 'string' },
      l2: { type: 'string' },
      widths: { type: 'string' },
      workers: { type: 'string' },
      seed: { type: 'string' },
      split: { type: 'string', default: 'test' },
      'split-seed': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if ((values.model === undefined) === (values.baseline === undefined)) throw new UsageError('give exactly one of --model DIR or --baseline raw|random');
  if (values.dataset !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${values.dataset}'; available: fashion-mnist`);
  if (values.split !== 'test' && values.split !== 'validation') throw new UsageError(`--split must be test or validation, got '${values.split}'`);
  await initBackend();
  const [train, test] = await heldOutSplits(values.split, intOption(values, 'split-seed', 0, 0));
  const workers = intOption(values, 'workers', defaultWorkers(), 0);
  const k = intOption(values, 'k', 20);
  const l2: number | 'auto' = values.l2 === 'auto' ? 'auto' : nonNegativeOption(values, 'l2', 1e-4);
  const started = performance.now();

  let subject: string;
  let trainFeatures: { features: Float32Array; dim: number };
  let testFeatures: { features: Float32Array; dim: number };
  if (values.baseline === 'raw') {
    subject = 'raw pixels';
    const pixels = train.height * train.width * train.channels;
    trainFeatures = { features: rawPixelFeatures(train.images, train.count, pixels), dim: pixels };
    testFeatures = { features: rawPixelFeatures(test.images, test.count, pixels), dim: pixels };
  } else {
    let spec: GraphSpec;
    let weights: Float32Array;
    if (values.baseline === 'random') {
      spec = recipeModelSpec(modelFromFlags(values, { height: train.height, width: train.width, channels: train.channels }));
      weights = initialState(spec, intOption(values, 'seed', 0, 0)).params;
      subject = `randomly initialised ${spec.name}`;
    } else if (values.baseline !== undefined) {
      throw new UsageError(`--baseline must be raw or random, got '${values.baseline}'`);
    } else {
      const loaded = await loadExportedModel(values.model as string); // the encoder: head.bin is not needed
      spec = loaded.spec;
      weights = loaded.weights;
      subject = `model ${values.model}`;
    }
    log(`encoding ${train.count} + ${test.count} images with ${spec.name}`);
    trainFeatures = await encodeSplit(spec, weights, train as LabeledImageDataset, workers);
    testFeatures = await encodeSplit(spec, weights, test as LabeledImageDataset, workers);
  }
  const encodeMs = performance.now() - started;
  const result: EvaluationResult = await evaluateRepresentation(
    { features: trainFeatures.features, labels: train.labels as Uint8Array, dim: trainFeatures.dim },
    { features: testFeatures.features, labels: test.labels as Uint8Array, dim: testFeatures.dim },
    { knn: { k }, linearProbe: { l2 } },
  );
  const summary = {
    subject,
    split: values.split,
    linearProbe: result.linearProbe,
    knn: result.knn,
    dim: result.dim,
    trainCount: result.trainCount,
    testCount: result.testCount,
    k,
    l2: result.details.linearProbe.l2,
    encodeMs: Math.round(encodeMs),
    evalMs: Math.round(result.timeMs),
  };
  if (values.json) out(JSON.stringify(summary));
  else out(`${subject}: linear probe ${(result.linearProbe * 100).toFixed(2)}%, kNN (k=${k}) ${(result.knn * 100).toFixed(2)}% on ${result.testCount} ${values.split} images`);
  return 0;
}
