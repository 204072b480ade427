// The trainer's losses beyond NT-Xent (issue 13): every closed-form gradient equals tfjs autodiff
// of the library loss (src/losses/) on random inputs, label-free and label-aware; training with
// each leaks no tensor; labels reach the loss through both step engines and the trainer.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { ImageDataset } from '@fedclr/data';
import { initBackend } from '@fedclr/tensor';
import {
  convnetS,
  createStepEngine,
  defaultLossRecipe,
  marginContrastiveLoss,
  ntXentLoss,
  pairLossGradient,
  RECIPE_LOSSES,
  recipePairLoss,
  supConLoss,
  trainContrastive,
  tripletLoss,
  withProjectionHead,
  type PairLoss,
  type RecipeLoss,
  type TripletMiner,
} from '../src/index.js';
import { mulberry32 } from './losses-helpers.js';
import { uniformArray } from './seeded.js';
import { noBatchNorm } from './specs.js';

const N = 8;
const D = 5;

function randomRows(seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: N * D }, () => rng() * 2 - 1);
}

/** The labels of the 2n rows [view 1; view 2]: classes twice, or (label-free) the image index twice. */
function rows(labels: Int32Array | undefined): number[] {
  const base = labels === undefined ? Array.from({ length: N }, (_, i) => i) : [...labels];
  return [...base, ...base];
}

/** The library's margin contrastive loss over every pair i < j of rows, positive and negative pairs averaged apart. */
function libraryMargin(z: tf.Tensor2D, rowLabels: number[], margin: number): tf.Scalar {
  const side = (same: boolean): tf.Scalar => {
    const first: number[] = [];
    const second: number[] = [];
    for (let i = 0; i < rowLabels.length; i++) {
      for (let j = i + 1; j < rowLabels.length; j++) {
        if ((rowLabels[i] === rowLabels[j]) !== same) continue;
        first.push(i);
        second.push(j);
      }
    }
    const x1 = tf.gather(z, first) as tf.Tensor2D;
    const x2 = tf.gather(z, second) as tf.Tensor2D;
    return marginContrastiveLoss(x1, x2, first.map(() => (same ? 1 : 0)), { margin, normalize: true });
  };
  return tf.add(side(true), side(false)) as tf.Scalar;
}

/** Loss and gradients of a library loss of (z1, z2) by tfjs autodiff. */
function autodiff(f: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Scalar, z1: Float32Array, z2: Float32Array): { loss: number; dz1: Float32Array; dz2: Float32Array } {
  const [value, g1, g2] = tf.tidy(() => {
    const { value: v, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => f(a as tf.Tensor2D, b as tf.Tensor2D))([tf.tensor2d(z1, [N, D]), tf.tensor2d(z2, [N, D])]);
    return [v, grads[0] as tf.Tensor, grads[1] as tf.Tensor];
  });
  try {
    return { loss: (value.dataSync() as Float32Array)[0] as number, dz1: g1.dataSync() as Float32Array, dz2: g2.dataSync() as Float32Array };
  } finally {
    tf.dispose([value, g1, g2]);
  }
}

function assertAgree(what: string, fast: { loss: number; dz1: Float32Array; dz2: Float32Array }, slow: { loss: number; dz1: Float32Array; dz2: Float32Array }): void {
  assert.ok(Number.isFinite(fast.loss) && fast.loss > 0, `${what}: loss ${fast.loss} should be positive on random inputs`);
  assert.ok(Math.abs(fast.loss - slow.loss) <= 1e-5 * Math.max(1, Math.abs(slow.loss)), `${what}: loss ${fast.loss} vs autodiff ${slow.loss}`);
  let largest = 0;
  let nonZero = 0;
  for (const g of [slow.dz1, slow.dz2]) {
    for (const v of g) {
      largest = Math.max(largest, Math.abs(v));
      if (v !== 0) nonZero++;
    }
  }
  assert.ok(nonZero > N * D, `${what}: the autodiff gradient is mostly zero (${nonZero} non-zero entries): not a real check`);
  for (const [x, y, name] of [[fast.dz1, slow.dz1, 'dz1'], [fast.dz2, slow.dz2, 'dz2']] as const) {
    for (let i = 0; i < x.length; i++) {
      assert.ok(Math.abs((x[i] as number) - (y[i] as number)) <= 2e-5 * largest, `${what} ${name}[${i}]: ${x[i]} vs autodiff ${y[i]} (largest ${largest})`);
    }
  }
}

const LABELS = Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]);
const MINERS: Record<'all' | 'hard' | 'semi-hard', TripletMiner> = { all: 'batch-all', hard: 'batch-hard', 'semi-hard': 'semi-hard' };

describe('the closed-form gradients of the recipe losses equal tfjs autodiff of the library losses (cpu)', () => {
  before(async () => {
    await initBackend({ prefer: 'cpu' });
  });

  for (const labels of [undefined, LABELS]) {
    const form = labels === undefined ? 'label-free' : 'label-aware';
    for (const mining of ['all', 'hard', 'semi-hard'] as const) {
      it(`triplet, ${mining} mining, ${form}`, () => {
        const margin = 0.5;
        const loss = recipePairLoss({ loss: 'triplet', temperature: 0.2, margin, mining });
        for (const seed of [1, 2, 3]) {
          const z1 = randomRows(seed);
          const z2 = randomRows(seed + 100);
          const slow = autodiff((a, b) => tripletLoss(tf.concat([a, b], 0), rows(labels), { margin, miner: MINERS[mining], normalize: true }), z1, z2);
          assertAgree(`triplet ${mining} ${form} seed ${seed}`, pairLossGradient(loss, z1, z2, N, D, labels), slow);
        }
      });
    }

    it(`margin contrastive, ${form}`, () => {
      const margin = 1.2;
      const loss = recipePairLoss({ loss: 'margin', temperature: 0.2, margin });
      for (const seed of [4, 5]) {
        const z1 = randomRows(seed);
        const z2 = randomRows(seed + 100);
        const slow = autodiff((a, b) => libraryMargin(tf.concat([a, b], 0), rows(labels), margin), z1, z2);
        assertAgree(`margin ${form} seed ${seed}`, pairLossGradient(loss, z1, z2, N, D, labels), slow);
      }
    });
  }

  it('supcon (labels required), and dcl', () => {
    for (const temperature of [0.1, 0.5]) {
      const z1 = randomRows(6);
      const z2 = randomRows(7);
      const supcon = autodiff((a, b) => supConLoss(tf.stack([a, b], 1) as tf.Tensor3D, LABELS, { temperature, baseTemperature: temperature }), z1, z2);
      assertAgree(`supcon tau ${temperature}`, pairLossGradient(recipePairLoss({ loss: 'supcon', temperature }), z1, z2, N, D, LABELS), supcon);
      const dcl = autodiff((a, b) => ntXentLoss(a, b, { temperature, decoupled: true }), z1, z2);
      assertAgree(`dcl tau ${temperature}`, pairLossGradient(recipePairLoss({ loss: 'dcl', temperature }), z1, z2, N, D), dcl);
    }
  });

  it('each loss callable (the autodiff path) is the library loss: its value equals the closed form', () => {
    const z1 = randomRows(8);
    const z2 = randomRows(9);
    for (const name of RECIPE_LOSSES.filter((l) => l !== 'moco')) {
      const loss = recipePairLoss(defaultLossRecipe(name));
      const labels = loss.labels === undefined ? undefined : LABELS;
      const slowOnly: PairLoss = Object.assign((a: tf.Tensor2D, b: tf.Tensor2D, l?: Int32Array) => loss(a, b, l), loss.labels === undefined ? {} : { labels: loss.labels });
      const fast = pairLossGradient(loss, z1, z2, N, D, labels);
      const slow = pairLossGradient(slowOnly, z1, z2, N, D, labels);
      assertAgree(`${name} callable`, fast, slow);
    }
  });

  it('supervision changes the loss: label-aware triplet and margin differ from their label-free forms; supcon refuses to run without labels', () => {
    const z1 = randomRows(10);
    const z2 = randomRows(11);
    for (const name of ['triplet', 'margin'] as const) {
      const loss = recipePairLoss(defaultLossRecipe(name));
      assert.notEqual(pairLossGradient(loss, z1, z2, N, D).loss, pairLossGradient(loss, z1, z2, N, D, LABELS).loss, name);
    }
    assert.throws(() => pairLossGradient(recipePairLoss(defaultLossRecipe('supcon')), z1, z2, N, D), { code: 'FEDCLR_CONTRASTIVE_LABELS_REQUIRED' });
    assert.throws(() => pairLossGradient(recipePairLoss(defaultLossRecipe('ntxent')), z1, z2, N, D, LABELS), /takes no labels/);
    assert.throws(() => pairLossGradient(recipePairLoss(defaultLossRecipe('triplet')), z1, z2, N, D, LABELS.subarray(1)), /7 labels for a batch of 8 images/);
  });
});

describe('training with the recipe losses', () => {
  before(async () => {
    await initBackend({ prefer: 'cpu' });
  });

  it('no loss leaks a tensor across steps (label-free and label-aware)', async () => {
    const images = uniformArray(8 * 64, 5);
    for (const name of RECIPE_LOSSES.filter((l) => l !== 'moco')) {
      const loss = recipePairLoss(defaultLossRecipe(name));
      const engine = await createStepEngine({ spec: noBatchNorm, augment: { crop: { scale: [0.5, 1] }, flip: { p: 0.5 } }, loss, optimizer: { kind: 'adam' }, workers: 0, maxBatch: 8, seed: 1 });
      try {
        for (const labels of loss.labels === 'required' ? [LABELS] : loss.labels === 'optional' ? [undefined, LABELS] : [undefined]) {
          await engine.step(images, 8, 1e-3, 0, labels);
          const before = tf.memory().numTensors;
          for (let step = 1; step < 6; step++) {
            const { loss: value } = await engine.step(images, 8, 1e-3, step, labels);
            assert.ok(Number.isFinite(value), `${name}: loss ${value}`);
          }
          assert.equal(tf.memory().numTensors, before, `${name} ${labels === undefined ? 'label-free' : 'label-aware'}`);
        }
      } finally {
        await engine.dispose();
      }
    }
    const before = tf.memory().numTensors;
    for (const name of RECIPE_LOSSES.filter((l) => l !== 'moco')) recipePairLoss(defaultLossRecipe(name));
    assert.equal(tf.memory().numTensors, before, 'building the losses (as an agent does every round)');
  });

  it('labels reach the loss in batch order through two worker threads as in-process', async () => {
    const images = uniformArray(10 * 64, 8);
    const labels = Int32Array.from([3, 1, 3, 0, 1, 1, 0, 3, 2, 2]);
    const config = { spec: noBatchNorm, augment: null, loss: recipePairLoss(defaultLossRecipe('supcon')), optimizer: { kind: 'adam' as const }, seed: 4, maxBatch: 10 };
    const local = await createStepEngine({ ...config, workers: 0 });
    const parallel = await createStepEngine({ ...config, workers: 2 });
    const shuffled = await createStepEngine({ ...config, workers: 0 });
    try {
      for (let step = 0; step < 3; step++) {
        const a = await local.step(images, 10, 1e-2, step, labels);
        const b = await parallel.step(images, 10, 1e-2, step, labels);
        await shuffled.step(images, 10, 1e-2, step, Int32Array.from(labels).reverse());
        assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `step ${step}: loss ${a.loss} vs ${b.loss}`);
      }
      let differs = 0;
      for (let i = 0; i < local.params.length; i++) {
        assert.ok(Math.abs((local.params[i] as number) - (parallel.params[i] as number)) < 1e-5, `weight ${i}: ${local.params[i]} vs ${parallel.params[i]}`);
        differs = Math.max(differs, Math.abs((local.params[i] as number) - (shuffled.params[i] as number)));
      }
      assert.ok(differs > 1e-4, 'other labels for the same images train differently');
      // Checked before any worker starts (a sync throw, like the batch checks).
      await assert.rejects(async () => local.step(images, 10, 1e-2, 9), { code: 'FEDCLR_CONTRASTIVE_LABELS_REQUIRED' });
      await assert.rejects(async () => parallel.step(images, 10, 1e-2, 9, labels.subarray(2)), /8 labels for a batch of 10 images/);
      assert.ok((await parallel.step(images, 10, 1e-2, 3, labels)).loss > 0, 'the engine still steps after a refused call');
    } finally {
      await Promise.all([local.dispose(), parallel.dispose(), shuffled.dispose()]);
    }
  });

  function dataset(labels: Uint8Array | null): ImageDataset {
    const count = 16;
    const images = Uint8Array.from(uniformArray(count * 12 * 12, 21), (v) => Math.floor(v * 256));
    return { images, labels, count, height: 12, width: 12, channels: 1, classNames: labels === null ? [] : ['a', 'b'] };
  }
  const spec = withProjectionHead(convnetS({ height: 12, width: 12, channels: 1, widths: [4, 8, 8] }), 8, { hidden: 8, out: 8 });
  const train = (loss: RecipeLoss, labels: Uint8Array | null, useLabels: boolean, temperature = 0.2) =>
    trainContrastive(dataset(labels), { spec, augment: { crop: { scale: [0.5, 1] } }, loss: recipePairLoss({ ...defaultLossRecipe(loss), temperature }), useLabels, optimizer: { kind: 'adam' }, learningRate: 1e-2, batchSize: 8, maxSteps: 4, seed: 3, workers: 0 });

  it('trainContrastive gives the dataset labels to the loss with useLabels: SupCon with one class per image is NT-Xent, with two classes it is not', async () => {
    const distinct = Uint8Array.from({ length: 16 }, (_, i) => i);
    const ntxent = await train('ntxent', null, false);
    const supconDistinct = await train('supcon', distinct, true);
    const supconTwo = await train('supcon', Uint8Array.from({ length: 16 }, (_, i) => i % 2), true);
    assert.equal(supconDistinct.steps, 4);
    let sameAsNtXent = 0;
    let twoClasses = 0;
    for (let i = 0; i < ntxent.weights.length; i++) {
      sameAsNtXent = Math.max(sameAsNtXent, Math.abs((ntxent.weights[i] as number) - (supconDistinct.weights[i] as number)));
      twoClasses = Math.max(twoClasses, Math.abs((ntxent.weights[i] as number) - (supconTwo.weights[i] as number)));
    }
    assert.ok(sameAsNtXent < 1e-5, `SupCon with unique labels differs from NT-Xent by ${sameAsNtXent}`);
    assert.ok(twoClasses > 1e-4, 'SupCon with shared classes trains like NT-Xent: the labels did not reach the loss');
  });

  it('trainContrastive refuses labels a loss cannot use, and a label-requiring loss without them', async () => {
    const labels = Uint8Array.from({ length: 16 }, (_, i) => i % 2);
    await assert.rejects(train('supcon', labels, false), { code: 'FEDCLR_CONTRASTIVE_LABELS_REQUIRED' });
    await assert.rejects(train('supcon', null, true), /useLabels: the dataset has no labels/);
    await assert.rejects(train('ntxent', labels, true), /useLabels: this loss takes no labels/);
  });
});
