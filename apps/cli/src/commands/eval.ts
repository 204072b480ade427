// fedclr eval: linear probe + kNN of a saved encoder's representation, or of a baseline (raw
// pixels, randomly initialised encoder), on labeled train/test splits: Fashion-MNIST's, or any
// image folder's (labels from its sub-folders; a second folder or a seeded split as the test set).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  encodeImages,
  evaluateRepresentation,
  initialState,
  rawPixelFeatures,
  recipeModelSpec,
  type EvaluationResult,
} from '@fedclr/contrastive';
import { fashionMnistProbeSplits, type LabeledImageDataset } from '@fedclr/data';
import { initBackend, loadExportedModel, type GraphSpec } from '@fedclr/tensor';
import { defaultWorkers, intOption, nonNegativeOption } from '../common.js';
import { checkLabeledFolderFlags, folderFlagsHelp, FolderReader, LABELED_FOLDER_OPTIONS, labeledFolderSplits, testFractionOption } from '../folders.js';
import { modelFromFlags } from '../recipe-flags.js';
import { UsageError } from '../errors.js';

export const evalHelp = `fedclr eval (--model DIR | --baseline raw|random) [options]
  --model DIR                 a model written by fedclr train / the coordinator (tfjs format)
  --baseline raw|random       raw pixels, or a randomly initialised encoder (--encoder, --widths, --seed; default
                              the recipe's for the input: convnet-s for grayscale, resnet-s for RGB)
  --dataset fashion-mnist     labeled train split for fitting, test split for scoring (the default)
  --split test|validation     score on the test split (default), or on 10,000 train images held
                              out from fitting (seeded by --split-seed): tune recipes on this one
  --data DIR                  a labeled image folder instead (PNG/JPEG; the label of an image is its first-level
                              sub-folder): fits the probe and is the kNN's memory
  --test-data DIR2            the folder scored (its sub-folders mapped by DIR's class names); without it,
                              --test-fraction 0.2 of each class of DIR is held out (seeded by --split-seed)
  --size N --channels 1|3     the images' size and channels for --data with --baseline (default 32, 3); a --model
                              reads them at its own input size
${folderFlagsHelp(30)}
  --k 20                      neighbours of the kNN
  --l2 1e-4|auto              probe regularisation; auto picks it on 10% of the TRAIN split
  --workers N --seed 0 --json`;

/** Representations of every image of a split through the encoder part of a model. */
export async function encodeSplit(spec: GraphSpec, weights: Float32Array, data: LabeledImageDataset, workers: number): Promise<{ features: Float32Array; dim: number }> {
  return encodeImages(spec, weights, data.images, data.count, { workers });
}

const EVAL_OPTIONS = {
  model: { type: 'string' },
  baseline: { type: 'string' },
  encoder: { type: 'string' },
  ...LABELED_FOLDER_OPTIONS,
  k: { type: 'string' },
  l2: { type: 'string' },
  widths: { type: 'string' },
  workers: { type: 'string' },
  seed: { type: 'string' },
  split: { type: 'string' },
  'split-seed': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

type EvalValues = ReturnType<typeof parseArgs<{ options: typeof EVAL_OPTIONS; strict: true }>>['values'];
type Input = { height: number; width: number; channels: 1 | 3 };

/** The subject's input: the model's own, or --size/--channels (folders) or 28x28x1 (Fashion-MNIST) for a baseline. */
function evalInput(values: EvalValues, model: GraphSpec | undefined): Input {
  const size = values.size === undefined ? undefined : intOption(values, 'size', 32, 8);
  const channels = values.channels === undefined ? undefined : intOption(values, 'channels', 3);
  if (channels !== undefined && channels !== 1 && channels !== 3) throw new UsageError(`--channels must be 1 or 3, got ${channels}`);
  if (model !== undefined) {
    const { height, width, channels: c } = model.input;
    if ((size !== undefined && (size !== height || size !== width)) || (channels !== undefined && channels !== c)) {
      throw new UsageError(`the model takes ${height}x${width}x${c} images; drop --size/--channels (images are read at the model's input size)`);
    }
    return { height, width, channels: c as 1 | 3 };
  }
  if (values.data === undefined) return { height: 28, width: 28, channels: 1 };
  return { height: size ?? 32, width: size ?? 32, channels: (channels ?? 3) as 1 | 3 };
}

/** The labeled (fit, score) splits, and where the scored one came from. */
async function evalSplits(values: EvalValues, input: Input, log: (line: string) => void): Promise<{ train: LabeledImageDataset; test: LabeledImageDataset; split: string }> {
  const splitSeed = intOption(values, 'split-seed', 0, 0);
  if (values.data === undefined) {
    const dataset = values.dataset ?? 'fashion-mnist';
    if (dataset !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${dataset}'; available: fashion-mnist (or --data DIR)`);
    const split = values.split ?? 'test';
    if (split !== 'test' && split !== 'validation') throw new UsageError(`--split must be test or validation, got '${split}'`);
    if (input.height !== 28 || input.width !== 28 || input.channels !== 1) throw new UsageError(`Fashion-MNIST images are 28x28x1, the subject takes ${input.height}x${input.width}x${input.channels}; evaluate it on its own images with --data DIR`);
    const [train, test] = await fashionMnistProbeSplits(split, splitSeed);
    return { train, test, split };
  }
  if (values.split !== undefined) throw new UsageError('--split goes with --dataset; with --data, give --test-data DIR2 or --test-fraction F');
  const reader = new FolderReader(values, 'eval', log);
  // Raw pixels hold a float copy of every image (4 bytes a value) besides the bytes.
  const share = values.baseline === 'raw' ? 1 / 5 : 1;
  const splits = await labeledFolderSplits(reader, { train: values.data, test: values['test-data'] }, input, { testFraction: testFractionOption(values), seed: splitSeed }, share);
  log(`eval: ${splits.train.count} labeled images (${splits.train.classNames.length} classes) to fit, ${splits.test.count} to score: ${splits.testSource}`);
  return { train: splits.train, test: splits.test, split: splits.testSource };
}

export async function evalCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const { values } = parseArgs({ args: argv, options: EVAL_OPTIONS, strict: true });
  checkLabeledFolderFlags(values);
  if ((values.model === undefined) === (values.baseline === undefined)) throw new UsageError('give exactly one of --model DIR or --baseline raw|random');
  if (values.baseline !== undefined && values.baseline !== 'raw' && values.baseline !== 'random') throw new UsageError(`--baseline must be raw or random, got '${values.baseline}'`);
  await initBackend();
  const loaded = values.model === undefined ? undefined : await loadExportedModel(values.model); // the encoder: head.bin is not needed
  const input = evalInput(values, loaded?.spec);
  const { train, test, split } = await evalSplits(values, input, log);
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
    if (loaded === undefined) {
      spec = recipeModelSpec(modelFromFlags(values, input));
      weights = initialState(spec, intOption(values, 'seed', 0, 0)).params;
      subject = `randomly initialised ${spec.name}`;
    } else {
      spec = loaded.spec;
      weights = loaded.weights;
      subject = `model ${values.model}`;
    }
    log(`encoding ${train.count} + ${test.count} images with ${spec.name}`);
    trainFeatures = await encodeSplit(spec, weights, train, workers);
    testFeatures = await encodeSplit(spec, weights, test, workers);
  }
  const encodeMs = performance.now() - started;
  const result: EvaluationResult = await evaluateRepresentation(
    { features: trainFeatures.features, labels: train.labels as Uint8Array, dim: trainFeatures.dim },
    { features: testFeatures.features, labels: test.labels as Uint8Array, dim: testFeatures.dim },
    { knn: { k }, linearProbe: { l2 }, ...(train.classNames.length > 0 ? { numClasses: train.classNames.length } : {}) },
  );
  const summary = {
    subject,
    data: values.data === undefined ? 'fashion-mnist' : resolve(values.data),
    input,
    classes: train.classNames,
    split,
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
  else out(`${subject}: linear probe ${(result.linearProbe * 100).toFixed(2)}%, kNN (k=${k}) ${(result.knn * 100).toFixed(2)}% on ${result.testCount} ${values.data === undefined ? `${split} images` : `test images (${split})`}`);
  return 0;
}
