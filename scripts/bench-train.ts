// npm run bench:train -- [--encoder convnet-s|resnet-s] [--batch 256] [--view-size 28] [--image-size 28]
//   [--widths 32,64,512] [--head 512,128] [--steps 10] [--warmup 3] [--workers 2] [--loss ntxent|moco] [--skip-augment]
// Times a contrastive training step of the recipe (both views forward + loss + backward +
// optimiser) and a forward of both views; prints one JSON object as its last line. The plain
// step feeds view-size images (what the network sees); the augmented one crops image-size images
// to view-size views, as `fedclr train` does. --loss moco times MoCo's step (the recipe's EMA and
// queue, the queue full from the first step) instead.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { initBackend } from '@fedclr/tensor';
import {
  RECIPE_DEFAULTS,
  createStepEngine,
  defaultModelRecipe,
  defaultRecipe,
  mocoLoss,
  ntXentPairLoss,
  recipeAugmentConfig,
  recipeModelSpec,
  type EncoderName,
  type ModelRecipe,
  type TrainingLoss,
} from '@fedclr/contrastive';

const { values } = parseArgs({
  options: {
    encoder: { type: 'string', default: 'convnet-s' },
    batch: { type: 'string', default: '256' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    workers: { type: 'string', default: String(Math.min(2, availableParallelism())) },
    'view-size': { type: 'string' },
    'image-size': { type: 'string' },
    widths: { type: 'string' },
    head: { type: 'string' },
    'skip-augment': { type: 'boolean', default: false },
    loss: { type: 'string', default: 'ntxent' },
  },
});

const encoder = values.encoder as EncoderName;
if (encoder !== 'convnet-s' && encoder !== 'resnet-s') throw new Error(`--encoder must be convnet-s or resnet-s, got ${values.encoder}`);
if (values.loss !== 'ntxent' && values.loss !== 'moco') throw new Error(`--loss must be ntxent or moco, got ${values.loss}`);
const rgb = encoder === 'resnet-s';
const integer = (name: string, raw: string | undefined, fallback: number, min: number): number => {
  const v = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got ${String(raw)}`);
  return v;
};
const integers = (name: string, raw: string | undefined, fallback: readonly number[], count: number): number[] => {
  if (raw === undefined) return [...fallback];
  const list = raw.split(',').map(Number);
  if (list.length !== count || !list.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new Error(`--${name} must be ${count} positive integers separated by commas, got ${raw}`);
  }
  return list;
};
const batch = integer('batch', values.batch, 256, 2);
const steps = integer('steps', values.steps, 10, 1);
const warmup = integer('warmup', values.warmup, 3, 0);
const workers = integer('workers', values.workers, 2, 0);
const imageSize = integer('image-size', values['image-size'], rgb ? 32 : 28, 4);
const viewSize = integer('view-size', values['view-size'], imageSize, 4);
if (viewSize > imageSize) throw new Error(`--view-size ${viewSize} is larger than --image-size ${imageSize}`);
const channels = rgb ? 3 : 1;
const base = defaultModelRecipe({ height: imageSize, width: imageSize, channels }, encoder);
const widths = integers('widths', values.widths, base.widths, base.widths.length);
const [hidden, out] = integers('head', values.head, [base.head.hidden, base.head.out], 2) as [number, number];
const modelAt = (side: number): ModelRecipe => ({ encoder, widths, head: { hidden, out }, input: { height: side, width: side, channels } });
const recipe = defaultRecipe({ height: imageSize, width: imageSize, channels }, 'central');
const augmentConfig = recipeAugmentConfig({ ...recipe.augment, viewSize }, channels);

const backend = await initBackend();

/** Deterministic pseudo-images: timing does not depend on content. */
function pseudoImages(side: number): Float32Array {
  const images = new Float32Array(batch * side * side * channels);
  let s = 12345;
  for (let i = 0; i < images.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    images[i] = s / 4294967296;
  }
  return images;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The loss to time; MoCo's queue is filled with unit keys once the engine has bound it. */
function benchLoss(): { loss: TrainingLoss; fill: () => void } {
  if (values.loss !== 'moco') return { loss: ntXentPairLoss({ temperature: recipe.temperature }), fill: () => undefined };
  const { momentum, queueSize } = RECIPE_DEFAULTS.moco;
  const loss = mocoLoss({ temperature: RECIPE_DEFAULTS.temperature, momentum, queueSize });
  const fill = (): void => {
    const queue = loss.state.queue;
    if (queue === undefined) return;
    const keys = new Float32Array(queueSize * queue.dim).fill(1 / Math.sqrt(queue.dim));
    queue.enqueue(keys, queueSize);
  };
  return { loss, fill };
}

async function timeEngine(augment: boolean): Promise<{ forwardMs: number; stepMs: number; loss: number }> {
  const { loss: trainingLoss, fill } = benchLoss();
  const side = augment ? imageSize : viewSize;
  const images = pseudoImages(side);
  const engine = await createStepEngine({
    spec: recipeModelSpec(modelAt(side)),
    augment: augment ? augmentConfig : null,
    loss: trainingLoss,
    optimizer: { kind: 'adam' },
    workers,
    maxBatch: batch,
    seed: 1,
  });
  fill();
  try {
    const forward: number[] = [];
    const step: number[] = [];
    let loss = Number.NaN;
    for (let i = 0; i < warmup + steps; i++) {
      let t = performance.now();
      await engine.forward(images, batch, i);
      if (i >= warmup) forward.push(performance.now() - t);
      t = performance.now();
      loss = (await engine.step(images, batch, 1e-3, i)).loss;
      if (i >= warmup) step.push(performance.now() - t);
    }
    return { forwardMs: median(forward), stepMs: median(step), loss };
  } finally {
    await engine.dispose();
  }
}

const plain = await timeEngine(false);
const augmented = values['skip-augment'] ? undefined : await timeEngine(true);
const round = (x: number): number => Math.round(x * 10) / 10;
const result = {
  backend: backend.name,
  encoder,
  loss: values.loss,
  widths,
  head: [hidden, out],
  batch,
  forwardMs: round(plain.forwardMs),
  stepMs: round(plain.stepMs),
  imagesPerSec: round((batch * 1000) / plain.stepMs),
  stepOverForward: Math.round((plain.stepMs / plain.forwardMs) * 100) / 100,
  workers,
  steps,
  viewSize,
  imageSize,
  input: `${viewSize}x${viewSize}x${channels}`,
  ...(augmented
    ? {
        stepWithAugmentMs: round(augmented.stepMs),
        augmentShareOfStep: Math.round(((augmented.stepMs - plain.stepMs) / augmented.stepMs) * 1000) / 1000,
      }
    : {}),
};
console.log(JSON.stringify(result));
