// fedclr train: centralised contrastive training on a dataset or an image folder; writes a tfjs model.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { recipeAugmentConfig, recipeLoss, recipeModelSpec, recipeOptimizer, trainContrastive, type InputShape, type Recipe } from '@fedclr/contrastive';
import { initBackend, saveModel } from '@fedclr/tensor';
import { loadFashionMnist, type ImageDataset } from '@fedclr/data';
import { defaultWorkers, intOption, numberOption, localViewsOption } from '../common.js';
import { UsageError } from '../errors.js';
import { FOLDER_FLAG_OPTIONS, folderFlagsHelp, FolderReader } from '../folders.js';
import { checkLabelledImages, checkLabelsForLoss, labelsOption, labelsHelp, lossLine } from '../labels.js';
import { lossFromFlags, RECIPE_FLAG_OPTIONS, recipeFlagsHelp, recipeFromFlags } from '../recipe-flags.js';
import { createProgress } from '../progress.js';

export const trainHelp = `fedclr train [options]
  --dataset fashion-mnist | --data DIR   training images (their labels are used only with --labels)
  --size N --channels 1|3                image size and channels for --data (default 32, 3): every image is
                                         resized (centre crop) to N x N; any N from 8 to 512
${folderFlagsHelp(41)}
  --minutes M | --epochs E | --steps S   budget (at least one; the first reached stops); the learning rate warms
                                         up for 2% of the run, then decays by a cosine to 0
${recipeFlagsHelp('central')}
  --local-views M --local-size S         multi-crop: M more views per image, crops of 10% up to --crop-min of the
                                         area resized to S px (default 3/7 of the image side)
  --head 256,128                         projection head sizes (hidden, output; default: the representation's
                                         width, 128); the saved model.json outputs the encoder's representation
                                         (what tf.loadLayersModel(...).predict returns); the head's weights are
                                         kept beside it in head.bin, read only by fedclr
${labelsHelp(41)}
  --workers N                            training threads (default min(2, cores); on tfjs-node, in-process on its native threads)
  --seed 0 --out DIR --checkpoint DIR --resume --json`;

const TRAIN_OPTIONS = {
  dataset: { type: 'string' },
  data: { type: 'string' },
  size: { type: 'string' },
  channels: { type: 'string' },
  ...FOLDER_FLAG_OPTIONS,
  minutes: { type: 'string' },
  epochs: { type: 'string' },
  steps: { type: 'string' },
  ...RECIPE_FLAG_OPTIONS,
  'local-views': { type: 'string' },
  'local-size': { type: 'string' },
  workers: { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string' },
  checkpoint: { type: 'string' },
  resume: { type: 'boolean', default: false },
  labels: { type: 'string' },
  head: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/** fedclr train's flags, parsed. */
export function parseTrainArgs(argv: string[]) {
  return parseArgs({ args: argv, options: TRAIN_OPTIONS, strict: true }).values;
}

/** The recipe fedclr train trains with for images of `input` (the recipe's central defaults, then the flags). */
export function trainRecipe(values: Record<string, unknown>, input: InputShape): Recipe {
  return recipeFromFlags(values, input, 'central');
}

interface DataOptions {
  dataset?: string;
  data?: string;
  size?: number;
  channels?: 1 | 3;
  /** Label --data's images by their first-level sub-folder (Fashion-MNIST always has its labels). */
  labeled?: boolean;
}

/** The training images: Fashion-MNIST's train split, or an image folder (labelled only if asked). */
async function trainingImages(options: DataOptions, reader: FolderReader): Promise<ImageDataset> {
  if (options.dataset !== undefined && options.data !== undefined) throw new UsageError('give --dataset or --data, not both');
  if (options.data !== undefined) {
    const size = options.size ?? 32;
    if (size < 8 || size > 512) throw new UsageError(`--size must be an integer in [8, 512], got ${size}`);
    const folder = await reader.read(options.data, 'train', { height: size, width: size, channels: options.channels ?? 3, labeled: options.labeled ?? false });
    if (folder.count < 2) throw new UsageError(`${folder.count} readable PNG or JPEG images under ${options.data}; contrastive training needs at least 2`);
    return folder;
  }
  const name = options.dataset ?? 'fashion-mnist';
  if (name !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${name}'; available: fashion-mnist (or --data DIR)`);
  return loadFashionMnist('train');
}

export async function trainCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const values = parseTrainArgs(argv);
  const channels = values.channels === undefined ? undefined : intOption(values, 'channels', 3);
  if (channels !== undefined && channels !== 1 && channels !== 3) throw new UsageError('--channels must be 1 or 3');
  const labels = labelsOption(values, { data: values.data, dataset: values.dataset ?? (values.data === undefined ? 'fashion-mnist' : undefined) });
  const minutes = numberOption(values, 'minutes', undefined);
  const epochs = numberOption(values, 'epochs', undefined);
  const maxSteps = values.steps === undefined ? undefined : intOption(values, 'steps', 1);
  if (minutes === undefined && epochs === undefined && maxSteps === undefined) throw new UsageError('give a budget: --minutes, --epochs or --steps');
  // The loss and its labels are checked before any image is read.
  checkLabelsForLoss(lossFromFlags(values), labels);
  const backend = await initBackend();
  const size = values.size === undefined ? undefined : intOption(values, 'size', 32);
  const dataset = await trainingImages({ dataset: values.dataset, data: values.data, size, channels, labeled: labels === 'folders' }, new FolderReader(values, 'train', log));
  const recipe = trainRecipe(values, { height: dataset.height, width: dataset.width, channels: dataset.channels });
  if (labels !== undefined) checkLabelledImages(dataset, values.data ?? 'the dataset');
  const spec = recipeModelSpec(recipe.model);
  const encoder = recipe.model.encoder;
  const augment = recipeAugmentConfig(recipe.augment, dataset.channels);
  const localViews = localViewsOption(values, recipe);
  if (localViews !== undefined && recipe.loss !== 'ntxent') throw new UsageError(`--local-views needs --loss ntxent (--loss ${recipe.loss} takes two views per image)`);
  log(`fedclr train: ${lossLine(recipe, labels)}`);
  const outDir = values.out ?? join('runs', `train-${new Date().toISOString().replace(/[:.]/g, '-')}`, 'model');
  const progress = createProgress('train');
  const result = await trainContrastive(dataset, {
    spec,
    augment,
    localViews,
    loss: recipeLoss(recipe, dataset.count),
    useLabels: labels !== undefined,
    optimizer: recipeOptimizer(recipe.optimizer, recipe.weightDecay),
    learningRate: recipe.learningRate,
    batchSize: recipe.batchSize,
    ...(minutes !== undefined ? { minutes } : {}),
    ...(epochs !== undefined ? { epochs } : {}),
    ...(maxSteps !== undefined ? { maxSteps } : {}),
    workers: intOption(values, 'workers', defaultWorkers(), 0),
    seed: intOption(values, 'seed', 0, 0),
    ...(values.checkpoint !== undefined ? { checkpointDir: values.checkpoint, resume: values.resume } : {}),
    onProgress: (p) => progress.update(p.fraction, { step: p.step, epoch: p.epoch, loss: p.loss, lr: p.learningRate, 'img/s': Math.round(p.imagesPerSec) }),
  });
  progress.done();
  await saveModel(outDir, spec, result.weights, { steps: result.steps, epochs: result.epochsCompleted, imagesSeen: result.imagesSeen });
  const summary = {
    model: outDir,
    encoder,
    backend: backend.name,
    steps: result.steps,
    epochs: result.epochsCompleted,
    imagesSeen: result.imagesSeen,
    elapsedMs: Math.round(result.elapsedMs),
    imagesPerSec: Math.round((result.imagesSeen * 1000) / Math.max(1, result.elapsedMs)),
    epochLosses: result.epochLosses.map((l) => Math.round(l * 1e4) / 1e4),
    stoppedBy: result.stoppedBy,
    labels: labels ?? null,
    recipe,
  };
  if (values.json) out(JSON.stringify(summary));
  else out(`trained ${encoder} for ${summary.steps} steps (${summary.epochs} epochs, ${summary.imagesPerSec} img/s); model written to ${outDir}`);
  return 0;
}
