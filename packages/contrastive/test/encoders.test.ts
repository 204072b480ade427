// Encoder specs: shapes, sizes, configurability, and that a ResNet trains and exports.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Network, inferShapes, initBackend, loadFlatWeights, loadModel, manifestOf, saveModel, totalSize } from '@fedclr/tensor';
import { PROJECTION, REPRESENTATION, contrastiveModel, convnetS, createStepEngine, ntXentPairLoss, representationWidth, resnetSmall, withProjectionHead } from '../src/index.js';
import { uniformArray } from './seeded.js';

describe('encoders', () => {
  before(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('convnet-s: 3 convs 32/64/512 with strides 1/2/2, BatchNorm, ReLU, GAP to 512-d', () => {
    const spec = convnetS();
    assert.equal(spec.name, 'convnet-s');
    const shapes = inferShapes(spec);
    assert.deepEqual(shapes.get('conv1'), [28, 28, 32]);
    assert.deepEqual(shapes.get('conv2'), [14, 14, 64]);
    assert.deepEqual(shapes.get('conv3'), [7, 7, 512]);
    assert.deepEqual(shapes.get(REPRESENTATION), [512]);
    assert.equal(spec.nodes.filter((n) => n.op === 'bn' && n.relu).length, 3);
    const net = new Network(spec);
    // 3x3 kernels without bias + BatchNorm (4 vectors each)
    assert.equal(totalSize(manifestOf(net)), 9 * 32 + 9 * 32 * 64 + 9 * 64 * 512 + 4 * (32 + 64 + 512));
    net.dispose();
    // Other widths are named by them, so models of different widths never share a name.
    assert.equal(convnetS({ widths: [32, 64, 128] }).name, 'convnet-s-32-64-128');
  });

  it('input size, channels and widths are configurable and validated', () => {
    const spec = convnetS({ height: 32, width: 24, channels: 3, widths: [8, 16, 24] });
    assert.deepEqual(inferShapes(spec).get('conv3'), [8, 6, 24]);
    assert.equal(representationWidth(spec), 24);
    assert.throws(() => convnetS({ channels: 0 }), { code: 'FEDCLR_CONTRASTIVE_INVALID_ENCODER' });
    assert.throws(() => resnetSmall({ widths: [8, 16], blocks: [1] }), { code: 'FEDCLR_CONTRASTIVE_INVALID_ENCODER' });
  });

  it('the small ResNet downsamples per stage, uses projection shortcuts, and ends in a 256-d representation', () => {
    const spec = resnetSmall({ height: 64, width: 64, channels: 3 });
    const shapes = inferShapes(spec);
    assert.deepEqual(shapes.get('s1b1_out'), [64, 64, 32]);
    assert.deepEqual(shapes.get('s4b1_out'), [8, 8, 256]);
    assert.deepEqual(shapes.get(REPRESENTATION), [256]);
    assert.ok(spec.nodes.some((n) => n.name === 's2b1_proj'));
    assert.ok(!spec.nodes.some((n) => n.name === 's1b1_proj'), 'no projection where shapes already match');
  });

  it('the projection head maps the representation to the loss space', () => {
    const spec = withProjectionHead(convnetS(), 256, { hidden: 64, out: 32 });
    const shapes = inferShapes(spec);
    assert.deepEqual(shapes.get('head_hidden'), [64]);
    assert.deepEqual(shapes.get(PROJECTION), [32]);
    assert.equal(spec.output, PROJECTION);
  });

  it('a small ResNet on 32x32 RGB trains (finite loss, weights change) and round-trips through a tfjs model file', async () => {
    const spec = contrastiveModel('resnet-s', { height: 32, width: 32, channels: 3 }, { out: 32 });
    const engine = await createStepEngine({ spec, augment: { flip: { p: 0.5 } }, loss: ntXentPairLoss(), optimizer: { kind: 'adam' }, workers: 0, maxBatch: 6, seed: 2 });
    const dir = await mkdtemp(join(tmpdir(), 'fedclr-resnet-'));
    try {
      const before = Float32Array.from(engine.params);
      const images = uniformArray(6 * 32 * 32 * 3, 3);
      const { loss } = await engine.step(images, 6, 1e-3, 0);
      assert.ok(Number.isFinite(loss) && loss > 0);
      assert.notDeepEqual(engine.params, before);
      await saveModel(join(dir, 'm'), spec, engine.params);
      const loaded = await loadModel(join(dir, 'm'), spec);
      assert.deepEqual(loaded.weights, engine.params);
      // the file's weights, in a fresh network, give the engine's representations
      const net = new Network(spec);
      loadFlatWeights(net, loaded.weights, loaded.manifest);
      const x = tf.tensor4d(images, [6, 32, 32, 3]);
      const fromFile = net.apply(x, false, REPRESENTATION);
      const fromEngine = await engine.embed(images, 6, REPRESENTATION);
      const values = fromFile.dataSync();
      assert.equal(values.length, fromEngine.length);
      for (let i = 0; i < values.length; i++) assert.ok(Math.abs((values[i] as number) - (fromEngine[i] as number)) < 1e-4);
      tf.dispose([x, fromFile]);
      net.dispose();
    } finally {
      await engine.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
