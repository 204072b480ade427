// Step engines: the data-parallel engine must compute the same update as the in-process one,
// training must not leak tensors, and the flat optimisers must do textbook updates.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type GraphSpec, type WeightManifest } from '@fedclr/tensor';
import { contrastiveModel, createStepEngine, FlatOptimizer, gray28Config, learningRateAt, multiViewLossGradient, ntXentPairLoss, pairLossGradient, splitBatch, supConLoss, type PairLoss } from '../src/index.js';
import { fixedBatchLosses, tensorsAcrossSteps } from './engine-helpers.js';
import { uniformArray } from './seeded.js';
import { noBatchNorm } from './specs.js';

function images(count: number, pixels: number, seed: number): Float32Array {
  return uniformArray(count * pixels, seed);
}

describe('step engines', () => {
  before(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('the closed-form NT-Xent gradient (plain and decoupled) equals autodiff of the loss', () => {
    for (const [temperature, decoupled] of [[0.1, false], [0.5, false], [0.2, true]] as const) {
      const closed = ntXentPairLoss({ temperature, decoupled });
      const autodiff: PairLoss = (a, b) => closed(a, b);
      const z1 = images(12, 7, 3).map((v) => v - 0.5);
      const z2 = images(12, 7, 4).map((v) => v - 0.5);
      const fast = pairLossGradient(closed, z1, z2, 12, 7);
      const slow = pairLossGradient(autodiff, z1, z2, 12, 7);
      assert.ok(Math.abs(fast.loss - slow.loss) < 1e-5, `loss ${fast.loss} vs ${slow.loss}`);
      for (const [x, y] of [[fast.dz1, slow.dz1], [fast.dz2, slow.dz2]] as const) {
        for (let i = 0; i < x.length; i++) assert.ok(Math.abs((x[i] as number) - (y[i] as number)) < 1e-5, `grad ${i}: ${x[i]} vs ${y[i]}`);
      }
    }
  });

  it('the multi-view (multi-crop) NT-Xent gradient equals autodiff of SupCon with the image as label, and two views equal NT-Xent', () => {
    const n = 5;
    const d = 6;
    for (const views of [3, 4]) {
      const temperature = 0.3;
      const z = images(views * n, d, 10 + views).map((v) => v - 0.5);
      const fast = multiViewLossGradient(ntXentPairLoss({ temperature }), z, views, n, d);
      // SupCon takes [N, V, D] with its own layout; ours is view-major [V·N, D].
      const [value, grad] = tf.tidy(() => {
        const x = tf.tensor2d(z, [views * n, d]);
        const { value: v, grads } = tf.valueAndGrads((t: tf.Tensor) =>
          supConLoss(tf.transpose(tf.reshape(t, [views, n, d]), [1, 0, 2]) as tf.Tensor3D, undefined, { temperature, baseTemperature: temperature }),
        )([x]);
        return [v, grads[0] as tf.Tensor];
      });
      const slowLoss = (value.dataSync() as Float32Array)[0] as number;
      const slowGrad = grad.dataSync() as Float32Array;
      tf.dispose([value, grad]);
      assert.ok(Math.abs(fast.loss - slowLoss) < 1e-5, `V=${views}: loss ${fast.loss} vs ${slowLoss}`);
      for (let i = 0; i < slowGrad.length; i++) assert.ok(Math.abs((fast.dz[i] as number) - (slowGrad[i] as number)) < 1e-5, `V=${views} grad ${i}: ${fast.dz[i]} vs ${slowGrad[i]}`);
    }
    const z = images(2 * n, d, 20).map((v) => v - 0.5);
    const loss = ntXentPairLoss({ temperature: 0.2 });
    const pair = pairLossGradient(loss, z.subarray(0, n * d), z.subarray(n * d), n, d);
    const multi = tf.tidy(() => (loss.multiView as NonNullable<PairLoss['multiView']>)(tf.tensor2d(z, [2 * n, d]), 2).loss.dataSync()[0] as number);
    assert.ok(Math.abs(multi - pair.loss) < 1e-6, `two views: ${multi} vs ${pair.loss}`);
    assert.throws(() => multiViewLossGradient(ntXentPairLoss({ decoupled: true }), images(3 * n, d, 1), 3, n, d), /two views per image only/);
  });

  it('multi-crop: two worker threads match the in-process engine, and local views leave BatchNorm statistics to the global views', async () => {
    const config = { spec: noBatchNorm, loss: ntXentPairLoss({ temperature: 0.5 }), optimizer: { kind: 'adam' as const }, seed: 3, maxBatch: 16 };
    const batch = images(10, 64, 9);
    // Identity global views and deterministic local ones (whole image at 4x4): both engines agree.
    const exact = { ...config, augment: null, localViews: { count: 2, augment: { crop: { scale: [1, 1] as const, ratio: [1, 1] as const, size: [4, 4] as const } } } };
    const a = await createStepEngine({ ...exact, workers: 0 });
    const b = await createStepEngine({ ...exact, workers: 2 });
    try {
      for (let step = 0; step < 2; step++) {
        const ra = await a.step(batch, 10, 0.01, step);
        const rb = await b.step(batch, 10, 0.01, step);
        assert.ok(Number.isFinite(ra.loss) && Math.abs(ra.loss - rb.loss) < 1e-5, `loss ${ra.loss} vs ${rb.loss}`);
      }
      let maxDiff = 0;
      for (let i = 0; i < a.params.length; i++) maxDiff = Math.max(maxDiff, Math.abs((a.params[i] as number) - (b.params[i] as number)));
      assert.ok(maxDiff < 1e-4, `weights differ by ${maxDiff}`);
    } finally {
      await a.dispose();
      await b.dispose();
    }
    // BatchNorm: with and without local views, the moving statistics after a step are the same.
    const bnSpec = contrastiveModel('convnet-s', { height: 12, width: 12, channels: 1 });
    const common = { spec: bnSpec, augment: { crop: { scale: [0.5, 1] as const } }, loss: ntXentPairLoss({ temperature: 0.5 }), optimizer: { kind: 'adam' as const }, seed: 4, workers: 0 };
    const plain = await createStepEngine(common);
    const multi = await createStepEngine({ ...common, localViews: { count: 2, augment: { crop: { scale: [0.1, 0.5] as const, size: [6, 6] as const } } } });
    try {
      const input = images(8, 144, 2);
      await plain.step(input, 8, 0.01, 0);
      await multi.step(input, 8, 0.01, 0);
      let offset = 0;
      let trainableDiffers = false;
      for (const t of plain.manifest.tensors) {
        const size = t.shape.reduce((x, y) => x * y, 1);
        const p = plain.params.subarray(offset, offset + size);
        const m = multi.params.subarray(offset, offset + size);
        if (t.trainable) trainableDiffers ||= p.some((v, i) => v !== m[i]);
        else assert.deepEqual(m, p, `${t.name}: local views changed the moving statistics`);
        offset += size;
      }
      assert.ok(trainableDiffers, 'local views changed no weight');
    } finally {
      await plain.dispose();
      await multi.dispose();
    }
  });

  it('splits a batch into near-equal contiguous parts', () => {
    assert.deepEqual(splitBatch(7, 3), [{ start: 0, count: 3 }, { start: 3, count: 2 }, { start: 5, count: 2 }]);
    assert.deepEqual(splitBatch(4, 2), [{ start: 0, count: 2 }, { start: 2, count: 2 }]);
  });

  it('two worker threads produce the same weights as the in-process engine', async () => {
    const config = { spec: noBatchNorm, augment: null, loss: ntXentPairLoss({ temperature: 0.5 }), optimizer: { kind: 'adam' as const }, seed: 3, maxBatch: 16 };
    const local = await createStepEngine({ ...config, workers: 0 });
    const parallel = await createStepEngine({ ...config, workers: 2 });
    try {
      assert.deepEqual(parallel.params, local.params, 'same seed, same initial weights');
      const batch = images(10, 64, 9);
      for (let step = 0; step < 3; step++) {
        const a = await local.step(batch, 10, 0.01, step);
        const b = await parallel.step(batch, 10, 0.01, step);
        assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${a.loss} vs ${b.loss}`);
      }
      let maxDiff = 0;
      for (let i = 0; i < local.params.length; i++) maxDiff = Math.max(maxDiff, Math.abs((local.params[i] as number) - (parallel.params[i] as number)));
      assert.ok(maxDiff < 1e-4, `weights differ by ${maxDiff}`);
      const ea = await local.embed(batch, 10, 'representation');
      const eb = await parallel.embed(batch, 10, 'representation');
      assert.equal(ea.length, 10 * 8);
      for (let i = 0; i < ea.length; i++) assert.ok(Math.abs((ea[i] as number) - (eb[i] as number)) < 1e-4);
    } finally {
      await local.dispose();
      await parallel.dispose();
    }
  });

  it('the loss falls when training convnet-s on a fixed batch', async () => {
    const engine = await createStepEngine({
      spec: contrastiveModel('convnet-s', { height: 28, width: 28, channels: 1 }),
      augment: { flip: { p: 0.5 } },
      loss: ntXentPairLoss({ temperature: 0.5 }),
      optimizer: { kind: 'adam' },
      seed: 1,
      workers: 0,
      maxBatch: 32,
    });
    try {
      const losses = await fixedBatchLosses(engine, images(32, 784, 5), 32, 3e-3, 0, 15);
      const [first, last] = [losses[0] as number, losses[losses.length - 1] as number];
      assert.ok(Number.isFinite(first) && last < first - 0.2, `loss ${first} -> ${last}`);
    } finally {
      await engine.dispose();
    }
  });

  it('100 training steps do not grow tf.memory().numTensors after warm-up', async () => {
    const engine = await createStepEngine({
      spec: contrastiveModel('convnet-s', { height: 28, width: 28, channels: 1 }),
      augment: gray28Config(),
      loss: ntXentPairLoss(),
      optimizer: { kind: 'adam' },
      workers: 0,
      maxBatch: 8,
    });
    try {
      const [before, after] = await tensorsAcrossSteps(engine, images(8, 784, 6), 8, 100);
      assert.equal(after, before);
    } finally {
      await engine.dispose();
    }
  });

  it('FedProx through both engines: the proximal step differs from the plain one by exactly lr·mu·(w - anchor)', async () => {
    // BatchNorm included: its moving statistics are not trainable and must come out as in plain training.
    const spec: GraphSpec = {
      name: 'prox-cnn',
      input: { height: 8, width: 8, channels: 1 },
      nodes: [
        { op: 'conv', name: 'c1', input: 'input', filters: 4, kernel: 3, stride: 2 },
        { op: 'bn', name: 'b1', input: 'c1', relu: true },
        { op: 'gap', name: 'representation', input: 'b1' },
        { op: 'dense', name: 'projection', input: 'representation', units: 6 },
      ],
      output: 'projection',
    };
    const base = { spec, augment: null, loss: ntXentPairLoss({ temperature: 0.5 }), optimizer: { kind: 'sgd' as const, momentum: 0 }, seed: 2, maxBatch: 8 };
    const plain = await createStepEngine({ ...base, workers: 0 });
    const start = Float32Array.from(plain.params);
    const anchor = start.map((w, i) => w + 0.5 * Math.sin(i + 1));
    const mu = 0.7;
    const lr = 0.05;
    // Local (in-process) and parallel (one worker: the same batch statistics as in-process).
    const proximal = [await createStepEngine({ ...base, workers: 0, proximal: { mu, anchor } }), await createStepEngine({ ...base, workers: 1, proximal: { mu, anchor } })];
    try {
      const batch = images(8, 64, 11);
      await plain.step(batch, 8, lr, 0);
      const trainable = new Set<number>();
      let offset = 0;
      for (const t of plain.manifest.tensors) {
        const size = t.shape.reduce((a, b) => a * b, 1);
        if (t.trainable) for (let i = offset; i < offset + size; i++) trainable.add(i);
        offset += size;
      }
      assert.ok(trainable.size < start.length, 'the model has non-trainable statistics');
      for (const engine of proximal) {
        await engine.step(batch, 8, lr, 0);
        for (let i = 0; i < start.length; i++) {
          const pull = trainable.has(i) ? lr * mu * ((start[i] as number) - (anchor[i] as number)) : 0;
          const expected = (plain.params[i] as number) - pull;
          assert.ok(Math.abs((engine.params[i] as number) - expected) < 1e-5, `${engine.workers} workers, weight ${i}: ${engine.params[i]} vs ${expected}`);
        }
      }
    } finally {
      await plain.dispose();
      await Promise.all(proximal.map((e) => e.dispose()));
    }
  });

  it('building a pair loss (as an agent does every round) leaves no tensor behind', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) ntXentPairLoss({ temperature: 0.2 + i / 10, decoupled: i === 1 });
    assert.equal(tf.memory().numTensors, before);
  });

  it('refuses a batch larger than maxBatch or smaller than 2', async () => {
    const engine = await createStepEngine({ spec: noBatchNorm, augment: null, loss: ntXentPairLoss(), optimizer: { kind: 'sgd' }, workers: 0, maxBatch: 4 });
    try {
      await assert.rejects(engine.step(images(5, 64, 1), 5, 0.1, 0), { code: 'FEDCLR_CONTRASTIVE_INVALID_TRAINING' });
      await assert.rejects(engine.step(images(1, 64, 1), 1, 0.1, 0), { code: 'FEDCLR_CONTRASTIVE_INVALID_TRAINING' });
    } finally {
      await engine.dispose();
    }
  });
});

describe('flat optimisers and schedule', () => {
  const manifest: WeightManifest = {
    architecture: 't',
    tensors: [
      { name: 'w/kernel', shape: [2, 1], dtype: 'float32', trainable: true },
      { name: 'bn/moving_mean', shape: [1], dtype: 'float32', trainable: false },
      { name: 'b/bias', shape: [1], dtype: 'float32', trainable: true },
    ],
  };

  it('Adam: first step moves each weight by lr·sign(g); statistics are left alone', () => {
    const opt = new FlatOptimizer(manifest, { kind: 'adam' });
    const params = Float32Array.from([1, 2, 5, 3]);
    opt.apply(params, Float32Array.from([0.5, -2, 4]), 0.1);
    // m̂ = g, v̂ = g², so the step is lr·g/(|g|+eps)
    assert.ok(Math.abs((params[0] as number) - 0.9) < 1e-6);
    assert.ok(Math.abs((params[1] as number) - 2.1) < 1e-6);
    assert.equal(params[2], 5);
    assert.ok(Math.abs((params[3] as number) - 2.9) < 1e-6);
  });

  it('SGD with momentum accumulates velocity; weight decay skips biases', () => {
    const opt = new FlatOptimizer(manifest, { kind: 'sgd', momentum: 0.5, weightDecay: 0.1 });
    const params = Float32Array.from([1, 0, 0, 1]);
    opt.apply(params, Float32Array.from([1, 0, 1]), 1);
    // kernel: g' = 1 + 0.1·1 = 1.1 → 1 - 1.1 = -0.1; bias: no decay → 1 - 1 = 0
    assert.ok(Math.abs((params[0] as number) + 0.1) < 1e-6);
    assert.ok(Math.abs((params[3] as number) - 0) < 1e-6);
    opt.apply(params, Float32Array.from([0, 0, 0]), 1);
    // bias velocity 0.5·1 = 0.5 → 0 - 0.5
    assert.ok(Math.abs((params[3] as number) + 0.5) < 1e-6);
  });

  it('FedProx: one SGD step is the plain step minus lr·mu·(w - anchor) on trainable entries only', () => {
    const grads = [0.5, -2, 4];
    const start = [1, 2, 5, 3];
    const anchor = Float32Array.from([0.5, 2.5, -7, 1]); // -7: a statistic, which must not be pulled
    const plain = Float32Array.from(start);
    new FlatOptimizer(manifest, { kind: 'sgd', momentum: 0.9 }).apply(plain, Float32Array.from(grads), 0.1);
    const prox = Float32Array.from(start);
    new FlatOptimizer(manifest, { kind: 'sgd', momentum: 0.9 }, { mu: 0.3, anchor }).apply(prox, Float32Array.from(grads), 0.1);
    for (const i of [0, 1, 3]) {
      const expected = (plain[i] as number) - 0.1 * 0.3 * ((start[i] as number) - (anchor[i] as number));
      assert.ok(Math.abs((prox[i] as number) - expected) < 1e-6, `weight ${i}: ${prox[i]} vs ${expected}`);
    }
    assert.equal(prox[2], 5);
    assert.equal(plain[2], 5);
    // mu = 0 is plain training
    const zero = Float32Array.from(start);
    new FlatOptimizer(manifest, { kind: 'sgd' }, { mu: 0, anchor }).apply(zero, Float32Array.from(grads), 0.1);
    assert.deepEqual(zero, plain);
  });

  it('FedProx: refuses a negative mu and an anchor of the wrong length', () => {
    assert.throws(() => new FlatOptimizer(manifest, { kind: 'adam' }, { mu: -1, anchor: new Float32Array(4) }), { code: 'FEDCLR_CONTRASTIVE_INVALID_TRAINING' });
    assert.throws(() => new FlatOptimizer(manifest, { kind: 'adam' }, { mu: 0.1, anchor: new Float32Array(3) }), { code: 'FEDCLR_CONTRASTIVE_INVALID_TRAINING' });
  });

  it('cosine schedule with warm-up', () => {
    const s = { learningRate: 1, warmupSteps: 10, totalSteps: 110 };
    assert.ok(Math.abs(learningRateAt(0, s) - 0.1) < 1e-12);
    assert.ok(Math.abs(learningRateAt(9, s) - 1) < 1e-12);
    assert.ok(Math.abs(learningRateAt(10, s) - 1) < 1e-12);
    assert.ok(Math.abs(learningRateAt(60, s) - 0.5) < 1e-12);
    assert.ok(Math.abs(learningRateAt(110, s)) < 1e-12);
    assert.equal(learningRateAt(500, { learningRate: 0.3 }), 0.3);
  });

  it('rejects out-of-range hyper-parameters', () => {
    assert.throws(() => new FlatOptimizer(manifest, { kind: 'adam', beta1: 1 }), { code: 'FEDCLR_CONTRASTIVE_INVALID_TRAINING' });
    assert.throws(() => new FlatOptimizer(manifest, { kind: 'sgd', momentum: -0.1 }), { code: 'FEDCLR_CONTRASTIVE_INVALID_TRAINING' });
  });
});
