// npm run bench:train -- [--encoder convnet-s|resnet-s] [--batch 256] [--steps 10] [--warmup 3] [--workers 2] [--loss ntxent|moco]
// Times a contrastive training step (both views forward + NT-Xent + backward + Adam) and a
// forward of both views; prints one JSON object as its last line. --loss moco times MoCo's step
// (the recipe's EMA and queue, the queue full from the first step) instead.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { initBackend } from '@fedclr/tensor';
import { RECIPE_DEFAULTS, contrastiveModel, createStepEngine, gray28Config, mocoLoss, ntXentPairLoss, simclrRgbConfig, type EncoderName, type TrainingLoss } from '@fedclr/contrastive';

const { values } = parseArgs({
  options: {
    encoder: { type: 'string', default: 'convnet-s' },
    batch: { type: 'string', default: '256' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    workers: { type: 'string', default: String(Math.min(2, availableParallelism())) },
    size: { type: 'string' },
    'skip-augment': { type: 'boolean', default: false },
    loss: { type: 'string', default: 'ntxent' },
  },
});

const encoder = values.encoder as EncoderName;
if (encoder !== 'convnet-s' && encoder !== 'resnet-s') throw new Error(`--encoder must be convnet-s or resnet-s, got ${values.encoder}`);
if (values.loss !== 'ntxent' && values.loss !== 'moco') throw new Error(`--loss must be ntxent or moco, got ${values.loss}`);
const batch = Number(values.batch);
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const workers = Number(values.workers);
for (const [name, v, min] of [['batch', batch, 2], ['steps', steps, 1], ['warmup', warmup, 0], ['workers', workers, 0]] as const) {
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got ${String(v)}`);
}

const backend = await initBackend();
const rgb = encoder === 'resnet-s';
const side = Number(values.size ?? (rgb ? 32 : 28));
const input = { height: side, width: side, channels: rgb ? 3 : 1 };
const spec = contrastiveModel(encoder, input);
const pixels = side * side * input.channels;

// Deterministic pseudo-images: timing does not depend on content.
const images = new Float32Array(batch * pixels);
let s = 12345;
for (let i = 0; i < images.length; i++) {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  images[i] = s / 4294967296;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The loss to time; MoCo's queue is filled with unit keys once the engine has bound it. */
function benchLoss(): { loss: TrainingLoss; fill: () => void } {
  if (values.loss !== 'moco') return { loss: ntXentPairLoss({ temperature: 0.5 }), fill: () => undefined };
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
  const engine = await createStepEngine({
    spec,
    augment: augment ? (rgb ? simclrRgbConfig({ strength: 0.5, blur: false }) : gray28Config()) : null,
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
  batch,
  forwardMs: round(plain.forwardMs),
  stepMs: round(plain.stepMs),
  imagesPerSec: round((batch * 1000) / plain.stepMs),
  stepOverForward: Math.round((plain.stepMs / plain.forwardMs) * 100) / 100,
  workers,
  steps,
  input: `${side}x${side}x${input.channels}`,
  ...(augmented
    ? {
        stepWithAugmentMs: round(augmented.stepMs),
        augmentShareOfStep: Math.round(((augmented.stepMs - plain.stepMs) / augmented.stepMs) * 1000) / 1000,
      }
    : {}),
};
console.log(JSON.stringify(result));
