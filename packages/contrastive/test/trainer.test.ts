// The local trainer: budgets, per-epoch losses, and checkpoints that resume bit-exactly.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageDataset } from '@fedclr/data';
import * as tf from '@tensorflow/tfjs-core';
import { Network, initBackend, loadFlatWeights } from '@fedclr/tensor';
import { REPRESENTATION, convnetS, ntXentPairLoss, trainContrastive, withProjectionHead, type TrainerConfig } from '../src/index.js';

function dataset(count: number): ImageDataset {
  let s = 77;
  const images = new Uint8Array(count * 12 * 12).map(() => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s >>> 24));
  return { images, labels: null, count, height: 12, width: 12, channels: 1, classNames: [] };
}

const spec = withProjectionHead(convnetS({ height: 12, width: 12, channels: 1, widths: [4, 8, 8] }), 8, { hidden: 8, out: 8 });

function config(extra: Partial<TrainerConfig>): TrainerConfig {
  return {
    spec,
    augment: { crop: { scale: [0.5, 1] }, flip: { p: 0.5 } },
    loss: ntXentPairLoss(),
    optimizer: { kind: 'adam' },
    learningRate: 1e-2,
    warmupSteps: 2,
    batchSize: 8,
    seed: 11,
    workers: 0,
    ...extra,
  };
}

describe('trainContrastive', () => {
  let dir: string;
  before(async () => {
    await initBackend({ prefer: 'wasm' });
    dir = await mkdtemp(join(tmpdir(), 'fedclr-trainer-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs whole epochs, reports one loss per epoch and a progress event per step', async () => {
    const events: number[] = [];
    const result = await trainContrastive(dataset(20), config({ epochs: 3, onProgress: (p) => events.push(p.step) }));
    // 20 images, batch 8: 2 batches per epoch (the remainder is dropped)
    assert.equal(result.steps, 6);
    assert.equal(result.epochsCompleted, 3);
    assert.equal(result.epochLosses.length, 3);
    assert.deepEqual(events, [1, 2, 3, 4, 5, 6]);
    assert.equal(result.stoppedBy, 'epochs');
    assert.equal(result.imagesSeen, 48);
  });

  it('a run stopped and resumed from its checkpoint ends with the same weights as an uninterrupted run', async () => {
    const straight = await trainContrastive(dataset(20), config({ maxSteps: 5 }));
    const ckpt = join(dir, 'ckpt');
    const stop = new AbortController();
    const first = await trainContrastive(dataset(20), config({ maxSteps: 5, checkpointDir: ckpt, signal: stop.signal, onProgress: (p) => p.step === 3 && stop.abort() }));
    assert.equal(first.steps, 3);
    assert.equal(first.stoppedBy, 'signal');
    assert.notDeepEqual(first.weights, straight.weights);
    const resumed = await trainContrastive(dataset(20), config({ maxSteps: 5, checkpointDir: ckpt, resume: true }));
    assert.equal(resumed.steps, 5);
    assert.deepEqual(resumed.weights, straight.weights);
  });

  it('refuses to resume a checkpoint of another configuration', async () => {
    const ckpt = join(dir, 'ckpt2');
    await trainContrastive(dataset(20), config({ maxSteps: 1, checkpointDir: ckpt }));
    await assert.rejects(trainContrastive(dataset(20), config({ maxSteps: 2, checkpointDir: ckpt, resume: true, seed: 12 })), {
      code: 'FEDCLR_CONTRASTIVE_INVALID_TRAINING',
      message: /seed 11/,
    });
  });

  it('lets the event loop run between steps (an agent must keep answering heartbeats)', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      await trainContrastive(dataset(20), config({ maxSteps: 4 }));
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks >= 3, `timers ran ${ticks} times during 4 steps`);
  });

  it('trains on views smaller than the images (8x8 crops of 12x12) and the model still encodes full images', async () => {
    const train = (): ReturnType<typeof trainContrastive> =>
      trainContrastive(dataset(32), config({ augment: { crop: { scale: [0.4, 1], size: [8, 8] }, flip: { p: 0.5 } }, maxSteps: 3 }));
    await train(); // the first run creates the loss's per-size constants, kept for the process
    const numTensors = tf.memory().numTensors;
    const result = await train();
    assert.equal(result.steps, 3);
    assert.equal(tf.memory().numTensors, numTensors);
    const network = new Network(spec);
    try {
      loadFlatWeights(network, result.weights);
      const z = tf.tidy(() => network.apply(tf.tensor4d(Float32Array.from(dataset(4).images, (v) => v / 255), [4, 12, 12, 1]), false, REPRESENTATION).dataSync());
      assert.equal(z.length, 4 * 8);
      assert.ok(z.every(Number.isFinite));
      // ...and views of any size go through the same encoder, but not another channel count.
      assert.throws(() => tf.tidy(() => network.apply(tf.zeros([2, 12, 12, 3]), false)), /expects input \[n,height,width,1\]/);
    } finally {
      network.dispose();
    }
  });

  it('validates its inputs', async () => {
    await assert.rejects(trainContrastive(dataset(20), config({})), { message: /epochs, minutes or maxSteps/ });
    await assert.rejects(trainContrastive(dataset(4), config({ epochs: 1 })), { message: /exceeds/ });
    await assert.rejects(trainContrastive({ ...dataset(20), height: 10 }, config({ epochs: 1 })), { message: /model takes 12x12x1/ });
  });
});
