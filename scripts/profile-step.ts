// npm run profile:step -- [--batch 64] [--view-size 16] [--image-size 28] [--workers 2] [--steps 20]
// Accounts for the milliseconds of one training step of the default recipe: every tfjs kernel
// a replica runs (forward and backward apart), the replica's own phases (weight load, views,
// gradient read-out), the main thread's loss, each worker's slice of the update (gradient sum,
// Adam), then the parallel engine's wall time per step and what those leave unexplained
// (waiting and messaging). One replica is profiled in-process on its share of the batch, which
// is exactly what each worker thread runs. Prints one JSON object as its last line.
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@fedclr/tensor';
import { FlatOptimizer, Replica, createStepEngine, defaultRecipe, initialState, pairLossGradient, recipeAugmentConfig, recipeModelSpec, recipePairLoss, splitBatch } from '@fedclr/contrastive';
import { KernelClock } from './kernel-clock.js';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '64' },
    'view-size': { type: 'string', default: '16' },
    'image-size': { type: 'string', default: '28' },
    workers: { type: 'string', default: '2' },
    steps: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    'by-shape': { type: 'boolean', default: false },
  },
});
const batch = Number(values.batch);
const workers = Number(values.workers);
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const imageSide = Number(values['image-size']);
const viewSide = Number(values['view-size']);
for (const [name, v, min] of [['batch', batch, 2], ['workers', workers, 1], ['steps', steps, 1], ['warmup', warmup, 0], ['image-size', imageSide, 4], ['view-size', viewSide, 4]] as const) {
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got ${String(v)}`);
}

const backend = await initBackend({ prefer: 'wasm' });
// `fedclr train`'s own recipe, with the view size and batch of the flags.
const base = defaultRecipe({ height: imageSide, width: imageSide, channels: 1 }, 'central');
const recipe = { ...base, batchSize: batch, augment: { ...base.augment, viewSize: viewSide } };
const spec = recipeModelSpec(recipe.model);
const augment = recipeAugmentConfig(recipe.augment, 1);
const pixels = imageSide * imageSide;
const images = new Float32Array(batch * pixels);
let s = 12345;
for (let i = 0; i < images.length; i++) {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  images[i] = s / 4294967296;
}
const loss = recipePairLoss(recipe);
const share = (splitBatch(batch, workers)[0] as { count: number }).count;
const dim = recipe.model.head.out;

/** Milliseconds per phase, summed over the timed steps. */
const phases = new Map<string, number>();
const add = (name: string, ms: number): void => {
  phases.set(name, (phases.get(name) ?? 0) + ms);
};
// One replica on its share of the batch, as a worker runs it.
const replica = new Replica({ spec, augment, localViews: undefined });
const init = initialState(spec, 1);
const clock = new KernelClock(values['by-shape']);
const gradients = new Float32Array(replica.gradientSize);
const stats = new Float32Array(replica.statsSize);
const numTensors: number[] = [];
for (let i = 0; i < warmup + steps; i++) {
  const record = i >= warmup;
  clock.enabled = record;
  clock.phase = 'load';
  const t0 = performance.now();
  replica.load(init.params);
  const t1 = performance.now();
  clock.phase = 'forward';
  let lossMs = 0;
  replica.gradients(images, share, i, (z, rows, d) => {
    const l0 = performance.now();
    // The engine's loss runs on every replica's rows; a replica's share is its rows of it.
    const out = new Float32Array(rows * d);
    const r = pairLossGradient(loss, z.subarray(0, (rows / 2) * d), z.subarray((rows / 2) * d), rows / 2, d);
    out.set(r.dz1, 0);
    out.set(r.dz2, (rows / 2) * d);
    lossMs = performance.now() - l0;
    clock.phase = 'backward';
    return out;
  }, gradients, stats);
  const t2 = performance.now();
  if (record) {
    add('replica: weight load (tensor per variable, assign)', t1 - t0);
    add('replica: views + forward + backward + read-out (wall)', t2 - t1 - lossMs);
    numTensors.push(tf.memory().numTensors);
  }
}
clock.enabled = false;

// The main thread's share of a step: the loss over the whole batch. Then each worker's share of
// the update: its slice of the gradient summed over the workers, and Adam on that slice.
const optimizer = new FlatOptimizer(init.manifest, { kind: 'adam' });
const params = Float32Array.from(init.params);
const z = new Float32Array(2 * batch * dim).map((_, i) => Math.sin(i));
const workerGrads = Array.from({ length: workers }, () => new Float32Array(replica.gradientSize).fill(1e-3));
const slice = splitBatch(replica.gradientSize, workers)[0] as { start: number; count: number };
const sum = new Float32Array(slice.count);
for (let i = 0; i < warmup + steps; i++) {
  const record = i >= warmup;
  const t0 = performance.now();
  pairLossGradient(loss, z.subarray(0, batch * dim), z.subarray(batch * dim), batch, dim);
  const t1 = performance.now();
  sum.set((workerGrads[0] as Float32Array).subarray(slice.start, slice.start + slice.count));
  for (const g of workerGrads.slice(1)) for (let j = 0; j < slice.count; j++) sum[j] = (sum[j] as number) + (g[slice.start + j] as number);
  const t2 = performance.now();
  optimizer.applyRange(params, sum, 1e-3, optimizer.advance(), slice.start, slice.start + slice.count);
  const t3 = performance.now();
  if (record) {
    add('main: loss + its gradient over the whole batch', t1 - t0);
    add('worker: its slice of the gradient sum', t2 - t1);
    add('worker: Adam on its slice', t3 - t2);
  }
}

// The real parallel engine, for its wall time per step.
const engine = await createStepEngine({ spec, augment, loss, optimizer: { kind: 'adam' }, workers, maxBatch: batch, seed: 1 });
const wall: number[] = [];
try {
  for (let i = 0; i < warmup + steps; i++) {
    const t = performance.now();
    await engine.step(images, batch, 1e-3, i);
    if (i >= warmup) wall.push(performance.now() - t);
  }
} finally {
  await engine.dispose();
}
wall.sort((a, b) => a - b);
const stepMs = wall[Math.floor(wall.length / 2)] as number;

const per = (ms: number): number => Math.round((ms / steps) * 100) / 100;
const phase = (name: string): number => per(phases.get(name) ?? 0);
const kernels = clock.report(steps);
const replicaMs = phase('replica: weight load (tensor per variable, assign)') + phase('replica: views + forward + backward + read-out (wall)');
const kernelMs = kernels.reduce((a, k) => a + k.ms, 0);
const updateMs = phase('worker: its slice of the gradient sum') + phase('worker: Adam on its slice');
const lossMs = phase('main: loss + its gradient over the whole batch');
const round2 = (x: number): number => Math.round(x * 100) / 100;
console.log(JSON.stringify({
  backend: backend.name,
  batch,
  workers,
  imagesPerReplica: share,
  input: `${imageSide}px images, ${viewSide}px views`,
  stepMs: round2(stepMs),
  imagesPerSec: Math.round((batch * 1000) / stepMs),
  // A step's critical path: a replica's work, the loss between its forward and backward, its update slice.
  replicaMs: round2(replicaMs),
  replicaKernelMs: round2(kernelMs),
  replicaOutsideKernelsMs: round2(replicaMs - kernelMs),
  lossMs,
  updateSliceMs: round2(updateMs),
  unexplainedMs: round2(stepMs - replicaMs - lossMs - updateMs),
  phases: Object.fromEntries([...phases].map(([k, v]) => [k, per(v)])),
  kernels,
  numTensorsStable: numTensors.every((n) => n === numTensors[0]),
}));
