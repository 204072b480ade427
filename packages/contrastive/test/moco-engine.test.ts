// MoCo in the step engines (in-process and worker threads) and the trainer: the key encoder
// follows the online one by EMA after every step, view 1's keys enter the queue, a step lowers
// the loss on a fixed batch, no tensor leaks, and a resumed run continues the queue exactly.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { ImageDataset } from '@fedclr/data';
import { initBackend } from '@fedclr/tensor';
import { contrastiveModel, convnetS, createStepEngine, gray28Config, mocoLoss, trainContrastive, withProjectionHead, type MocoLoss } from '../src/index.js';
import { fixedBatchLosses, noBatchNorm, tensorsAcrossSteps } from './engine-helpers.js';
import { uniformArray, unitRows } from './seeded.js';

const moco = (queueSize: number, momentum = 0.9): MocoLoss => mocoLoss({ temperature: 0.2, momentum, queueSize });

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
  return diff;
}

describe('MoCo step engines', () => {
  let dir: string;
  before(async () => {
    await initBackend({ prefer: 'wasm' });
    dir = await mkdtemp(join(tmpdir(), 'fedclr-moco-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a step: the key encoder becomes m·key + (1-m)·new weights, and view 1\'s unit keys (from the key encoder before the step) enter the queue', async () => {
    for (const workers of [0, 2]) {
      const loss = moco(16, 0.9);
      const engine = await createStepEngine({ spec: noBatchNorm, augment: null, loss, optimizer: { kind: 'sgd' }, seed: 5, workers, maxBatch: 8 });
      try {
        const batch = uniformArray(8 * 64, 3);
        const initial = Float32Array.from(engine.params);
        assert.deepEqual(loss.state.key, initial, 'a fresh key encoder starts as the online one');
        // No augmentation: view 1 is the image, and the key encoder is (still) the online one.
        const expectedKeys = unitRows(await engine.embed(batch, 8), 6);
        await engine.step(batch, 8, 0.1, 0);
        assert.ok(maxDiff(engine.params, initial) > 1e-4, 'the step changed the weights');
        const ema = initial.map((w, i) => 0.9 * w + 0.1 * (engine.params[i] as number));
        assert.ok(maxDiff(loss.state.key as Float32Array, ema) < 1e-6, `${workers} workers: EMA`);
        assert.equal(loss.state.queue?.length, 8);
        assert.ok(maxDiff(loss.state.queue?.keys() as Float32Array, expectedKeys) < 1e-5, `${workers} workers: enqueued keys`);
      } finally {
        await engine.dispose();
      }
    }
  });

  it('two worker threads compute the same MoCo steps as the in-process engine (keys, queue and weights)', async () => {
    const config = { spec: noBatchNorm, augment: null, optimizer: { kind: 'adam' as const }, seed: 3, maxBatch: 16 };
    const a = { loss: moco(12) };
    const b = { loss: moco(12) };
    const local = await createStepEngine({ ...config, ...a, workers: 0 });
    const parallel = await createStepEngine({ ...config, ...b, workers: 2 });
    try {
      for (let step = 0; step < 4; step++) {
        const batch = uniformArray(10 * 64, 20 + step);
        const ra = await local.step(batch, 10, 0.01, step);
        const rb = await parallel.step(batch, 10, 0.01, step);
        assert.ok(Number.isFinite(ra.loss) && Math.abs(ra.loss - rb.loss) < 1e-5, `step ${step}: loss ${ra.loss} vs ${rb.loss}`);
      }
      assert.equal(a.loss.state.queue?.length, 12);
      assert.ok(maxDiff(local.params, parallel.params) < 1e-4, 'weights');
      assert.ok(maxDiff(a.loss.state.key as Float32Array, b.loss.state.key as Float32Array) < 1e-4, 'key encoders');
      assert.ok(maxDiff(a.loss.state.queue?.keys() as Float32Array, b.loss.state.queue?.keys() as Float32Array) < 1e-4, 'queues');
    } finally {
      await local.dispose();
      await parallel.dispose();
    }
  });

  it('the loss falls when training convnet-s on a fixed batch with a full queue', async () => {
    const loss = moco(32, 0.9);
    const engine = await createStepEngine({
      spec: contrastiveModel('convnet-s', { height: 28, width: 28, channels: 1 }),
      augment: { flip: { p: 0.5 } },
      loss,
      optimizer: { kind: 'adam' },
      seed: 1,
      workers: 0,
      maxBatch: 16,
    });
    try {
      // Two steps fill the queue (16 keys each): from then on every step has 15 + 32 negatives.
      const losses = (await fixedBatchLosses(engine, uniformArray(16 * 784, 5), 16, 3e-3, 0, 15)).slice(2);
      const [first, last] = [losses[0] as number, losses[losses.length - 1] as number];
      assert.ok(Number.isFinite(first) && last < first - 0.2, `loss ${first} -> ${last}`);
    } finally {
      await engine.dispose();
    }
  });

  it('100 MoCo steps do not grow tf.memory().numTensors after warm-up (BatchNorm model, augmentation)', async () => {
    const initial = tf.memory().numTensors;
    const engine = await createStepEngine({
      spec: contrastiveModel('convnet-s', { height: 28, width: 28, channels: 1 }),
      augment: gray28Config(),
      loss: moco(20),
      optimizer: { kind: 'adam' },
      workers: 0,
      maxBatch: 8,
    });
    try {
      const [before, after] = await tensorsAcrossSteps(engine, uniformArray(8 * 784, 6), 8, 100);
      assert.equal(after, before);
    } finally {
      await engine.dispose();
    }
    assert.equal(tf.memory().numTensors, initial, 'disposing the engine frees the key encoder too');
  });

  it('refuses multi-crop, and a state bound to another model', async () => {
    await assert.rejects(
      createStepEngine({ spec: noBatchNorm, augment: null, localViews: { count: 2, augment: { crop: { size: [4, 4] } } }, loss: moco(4), optimizer: { kind: 'sgd' }, workers: 0 }),
      /two views per image/,
    );
    const loss = moco(4);
    loss.state.resetKey(new Float32Array(3));
    await assert.rejects(createStepEngine({ spec: noBatchNorm, augment: null, loss, optimizer: { kind: 'sgd' }, workers: 0 }), /one architecture/);
  });

  it('refuses labels: MoCo is label-free (engine step and trainContrastive useLabels)', async () => {
    const engine = await createStepEngine({ spec: noBatchNorm, augment: null, loss: moco(4), optimizer: { kind: 'sgd' }, workers: 0 });
    try {
      await assert.rejects(engine.step(uniformArray(4 * 64, 9), 4, 1e-3, 0, new Int32Array([0, 1, 0, 1])), /MoCo is label-free/);
    } finally {
      await engine.dispose();
    }
    const labelled: ImageDataset = { images: new Uint8Array(8 * 64).map((_, i) => (i * 37) % 256), labels: new Uint8Array([0, 1, 0, 1, 0, 1, 0, 1]), count: 8, height: 8, width: 8, channels: 1, classNames: ['a', 'b'] };
    await assert.rejects(trainContrastive(labelled, { spec: noBatchNorm, augment: null, loss: moco(4), useLabels: true, optimizer: { kind: 'sgd' }, learningRate: 1e-3, batchSize: 4, maxSteps: 1, seed: 1, workers: 0 }), /MoCo takes no labels/);
  });

  it('trainContrastive: a stopped MoCo run resumed from its checkpoint ends with the same weights, key encoder and queue as an uninterrupted one', async () => {
    const spec = withProjectionHead(convnetS({ height: 12, width: 12, channels: 1, widths: [4, 8, 8] }), 8, { hidden: 8, out: 8 });
    let s = 77;
    const images = new Uint8Array(20 * 144).map(() => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s >>> 24));
    const data: ImageDataset = { images, labels: null, count: 20, height: 12, width: 12, channels: 1, classNames: [] };
    const config = { spec, augment: { crop: { scale: [0.5, 1] as const }, flip: { p: 0.5 } }, optimizer: { kind: 'adam' as const }, learningRate: 1e-2, warmupSteps: 2, batchSize: 8, seed: 11, workers: 0, maxSteps: 5 };
    const straightLoss = moco(10);
    const straight = await trainContrastive(data, { ...config, loss: straightLoss });
    const ckpt = join(dir, 'ckpt');
    const stop = new AbortController();
    await trainContrastive(data, { ...config, loss: moco(10), checkpointDir: ckpt, signal: stop.signal, onProgress: (p) => p.step === 3 && stop.abort() });
    const resumedLoss = moco(10);
    const resumed = await trainContrastive(data, { ...config, loss: resumedLoss, checkpointDir: ckpt, resume: true });
    assert.equal(resumed.steps, 5);
    assert.deepEqual(resumed.weights, straight.weights);
    assert.deepEqual(resumedLoss.state.key, straightLoss.state.key);
    assert.deepEqual(resumedLoss.state.queue?.snapshot(), straightLoss.state.queue?.snapshot());
    await assert.rejects(trainContrastive(data, { ...config, loss: moco(6), checkpointDir: ckpt, resume: true }), /MoCo queue of 10/);
  });
});
