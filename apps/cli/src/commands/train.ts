// fedclr train: centralised contrastive training on a dataset or an image folder; writes a tfjs model.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ntXentPairLoss, trainContrastive } from '@fedclr/contrastive';
import { initBackend, saveModel } from '@fedclr/tensor';
import { DEFAULT_TEMPERATURE, augmentFor, trainViewSize, cropMinOption, defaultWorkers, headOption, intOption, loadImages, modelSpec, numberOption, nonNegativeOption, localViewsOption, viewSizeOption } from '../common.js';
import { UsageError } from '../errors.js';
import { createProgress } from '../progress.js';

export const trainHelp = `fedclr train [options]
  --dataset fashion-mnist | --data DIR   training images (labels are never used)
  --size N --channels 1|3                image size and channels for --data (default 32, 3)
  --encoder convnet-s|resnet-s           default convnet-s for 1 channel, resnet-s for 3
  --widths 32,64,256                     convnet-s filters per layer (the last is the representation)
  --minutes M | --epochs E | --steps S   budget (at least one; the first reached stops)
  --batch 64 --lr 0.004 --temperature 0.2 --optimizer adam|sgd --weight-decay 0
  --strength S --crop-min F              colour-jitter strength; smallest crop (fraction of the area; default 0.4 for grayscale)
  --view-size N                          side of the training views (crops are resized to it; default 4/7 of the
                                         image side for grayscale, 16 px for 28 px images; the image size for RGB)
  --local-views M --local-size S         multi-crop: M more views per image, crops of 10% up to --crop-min of the
                                         area resized to S px (default 3/7 of the image side)
  --head 128,128                         projection head sizes (hidden, output); the head is dropped
                                         after training, only the encoder's representation is kept
  --decoupled                            decoupled contrastive loss (NT-Xent without the positive
                                         in the denominator; Yeh et al. 2022)
  --workers N                            training threads (default min(2, cores))
  --seed 0 --out DIR --checkpoint DIR --resume --json`;

export async function trainCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dataset: { type: 'string' },
      data: { type: 'string' },
      size: { type: 'string' },
      channels: { type: 'string' },
      encoder: { type: 'string' },
      minutes: { type: 'string' },
      epochs: { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      temperature: { type: 'string' },
      optimizer: { type: 'string' },
      'weight-decay': { type: 'string' },
      strength: { type: 'string' },
      'crop-min': { type: 'string' },
      'view-size': { type: 'string' },
      'local-views': { type: 'string' },
      'local-size': { type: 'string' },
      widths: { type: 'string' },
      workers: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      checkpoint: { type: 'string' },
      resume: { type: 'boolean', default: false },
      decoupled: { type: 'boolean', default: false },
      head: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const channels = values.channels === undefined ? undefined : intOption(values, 'channels', 3);
  if (channels !== undefined && channels !== 1 && channels !== 3) throw new UsageError('--channels must be 1 or 3');
  const backend = await initBackend();
  const dataset = await loadImages({ dataset: values.dataset, data: values.data, size: values.size === undefined ? undefined : intOption(values, 'size', 32), channels }, 'train', log);
  const encoder = values.encoder ?? (dataset.channels === 1 ? 'convnet-s' : 'resnet-s');
  const optimizer = values.optimizer ?? 'adam';
  if (optimizer !== 'adam' && optimizer !== 'sgd') throw new UsageError(`--optimizer must be adam or sgd, got '${optimizer}'`);
  const minutes = numberOption(values, 'minutes', undefined);
  const epochs = numberOption(values, 'epochs', undefined);
  const maxSteps = values.steps === undefined ? undefined : intOption(values, 'steps', 1);
  if (minutes === undefined && epochs === undefined && maxSteps === undefined) throw new UsageError('give a budget: --minutes, --epochs or --steps');
  const spec = modelSpec(encoder, { height: dataset.height, width: dataset.width, channels: dataset.channels }, values.widths, headOption(values.head));
  const strength = numberOption(values, 'strength', undefined);
  const cropMin = cropMinOption(values);
  const augment = augmentFor(dataset.channels, { strength, cropMin, viewSize: viewSizeOption(values, dataset.height) ?? trainViewSize(dataset.channels, dataset.height) });
  const localViews = localViewsOption(values, dataset.channels, dataset.height, { strength, cropMin });
  if (localViews !== undefined && values.decoupled) throw new UsageError('--decoupled and --local-views do not combine (the decoupled loss takes two views per image)');
  const outDir = values.out ?? join('runs', `train-${new Date().toISOString().replace(/[:.]/g, '-')}`, 'model');
  const weightDecay = nonNegativeOption(values, 'weight-decay', 0);
  const progress = createProgress('train');
  const result = await trainContrastive(dataset, {
    spec,
    augment,
    localViews,
    loss: ntXentPairLoss({ temperature: numberOption(values, 'temperature', DEFAULT_TEMPERATURE) as number, decoupled: values.decoupled }),
    optimizer: optimizer === 'adam' ? { kind: 'adam', weightDecay } : { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay },
    learningRate: numberOption(values, 'lr', optimizer === 'adam' ? 4e-3 : 0.3) as number,
    batchSize: intOption(values, 'batch', 64, 2),
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
  };
  if (values.json) out(JSON.stringify(summary));
  else out(`trained ${encoder} for ${summary.steps} steps (${summary.epochs} epochs, ${summary.imagesPerSec} img/s); model written to ${outDir}`);
  return 0;
}
