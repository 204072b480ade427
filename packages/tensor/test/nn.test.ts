// The graph executor's fused ops must match plain tfjs autodiff; flat weights must round-trip
// and refuse mismatches.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  Network,
  batchNormTrain,
  channelAffine,
  channelMeans,
  flattenWeights,
  globalAveragePool,
  initBackend,
  loadFlatWeights,
  manifestOf,
  totalSize,
  type GraphSpec,
  type WeightManifest,
} from '../src/index.js';
import { uniformArray } from './seeded.js';

/** `count` values uniform in [shift - scale, shift + scale). */
function seeded(count: number, seed: number, scale = 1, shift = 0): Float32Array {
  return uniformArray(count, seed).map((u) => (u - 0.5) * 2 * scale + shift);
}

function maxRelError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    ref = Math.max(ref, Math.abs(b[i] as number));
  }
  return diff / Math.max(ref, 1e-12);
}

const tiny: GraphSpec = {
  name: 'tiny',
  input: { height: 6, width: 5, channels: 2 },
  nodes: [
    { op: 'conv', name: 'c1', input: 'input', filters: 4, kernel: 3, stride: 1 },
    { op: 'bn', name: 'b1', input: 'c1', relu: true },
    { op: 'conv', name: 'c2', input: 'b1', filters: 4, kernel: 3, stride: 2 },
    { op: 'bn', name: 'b2', input: 'c2' },
    { op: 'conv', name: 'skip', input: 'b1', filters: 4, kernel: 1, stride: 2 },
    { op: 'add', name: 'sum', inputs: ['b2', 'skip'], relu: true },
    { op: 'gap', name: 'representation', input: 'sum' },
    { op: 'dense', name: 'head', input: 'representation', units: 3 },
  ],
  output: 'head',
};

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`nn ops on ${backend}`, () => {
    before(async () => {
      await initBackend({ prefer: 'wasm' });
      tf.setBackend(backend);
    });

    it('channelMeans equals tf.mean over all axes but the last (4-D and 2-D)', () => {
      for (const shape of [[3, 5, 4, 6], [7, 9]]) {
        const x = tf.tensor(seeded(shape.reduce((a, b) => a * b, 1), 3, 2, 0.5), shape);
        const expected = tf.mean(x, shape.slice(0, -1).map((_, i) => i));
        assert.ok(maxRelError(channelMeans(x).dataSync() as Float32Array, expected.dataSync() as Float32Array) < 1e-5);
        tf.dispose([x, expected]);
      }
    });

    for (const relu of [false, true]) {
      it(`fused batchNorm${relu ? '+ReLU' : ''} value and gradients match tfjs autodiff of the textbook formula`, () => {
        const shape: [number, number, number, number] = [4, 5, 3, 6];
        const x = tf.tensor4d(seeded(4 * 5 * 3 * 6, 11, 2, 0.7), shape);
        const gamma = tf.tensor1d(seeded(6, 12, 0.5, 1));
        const beta = tf.tensor1d(seeded(6, 13, 0.5));
        const dy = tf.tensor4d(seeded(4 * 5 * 3 * 6, 14), shape);
        const reference = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor => {
          const { mean, variance } = tf.moments(a, [0, 1, 2]);
          const y = tf.add(tf.mul(tf.div(tf.sub(a, mean), tf.sqrt(tf.add(variance, 1e-3))), g), b);
          return relu ? tf.relu(y) : y;
        };
        const fused = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor =>
          batchNormTrain(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3, relu, (stats) => tf.dispose([stats.mean, stats.variance]));
        const run = (f: (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor): Float32Array[] =>
          tf.tidy(() => {
            const value = f(x, gamma, beta);
            const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, g, b), dy)))([x, gamma, beta]);
            return [value, ...grads].map((t) => t.dataSync() as Float32Array);
          });
        const expected = run(reference);
        const actual = run(fused);
        ['value', 'dx', 'dgamma', 'dbeta'].forEach((name, i) => {
          const err = maxRelError(actual[i] as Float32Array, expected[i] as Float32Array);
          assert.ok(err < 1e-4, `${name}: relative error ${err}`);
        });
        tf.dispose([x, gamma, beta, dy]);
      });
    }

    it('channelAffine equals x·scale + shift (optional shift, optional ReLU, 4-D and 2-D)', () => {
      for (const shape of [[3, 5, 4, 6], [7, 6]]) {
        const size = shape.reduce((a, b) => a * b, 1);
        const x = tf.tensor(seeded(size, 41, 2), shape);
        const scale = tf.tensor1d(seeded(6, 42, 1.5));
        const shift = tf.tensor1d(seeded(6, 43));
        for (const withShift of [false, true]) {
          for (const relu of [false, true]) {
            const [actual, expected] = tf.tidy(() => {
              const plain = withShift ? tf.add(tf.mul(x, scale), shift) : tf.mul(x, scale);
              return [channelAffine(x, scale, withShift ? shift : null, relu), relu ? tf.relu(plain) : plain];
            });
            assert.deepEqual(actual!.shape, shape);
            const err = maxRelError(actual!.dataSync() as Float32Array, expected!.dataSync() as Float32Array);
            assert.ok(err < 1e-6, `shift ${withShift} relu ${relu} shape ${shape.join('x')}: ${err}`);
            tf.dispose([actual!, expected!]);
          }
        }
        tf.dispose([x, scale, shift]);
      }
    });

    it('a clone keeps its values after the source is disposed', () => {
      const values = seeded(24, 51);
      const source = tf.tensor2d(values, [4, 6]);
      const copy = tf.clone(source);
      source.dispose();
      assert.deepEqual(Array.from(copy.dataSync()), Array.from(values));
      copy.dispose();
    });

    it('globalAveragePool value and gradient match tf.mean', () => {
      const x = tf.tensor4d(seeded(2 * 3 * 4 * 5, 21), [2, 3, 4, 5]);
      const dy = tf.tensor2d(seeded(10, 22), [2, 5]);
      const [a, ga] = tf.tidy(() => [globalAveragePool(x), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(globalAveragePool(t as tf.Tensor4D), dy)))(x)]);
      const [b, gb] = tf.tidy(() => [tf.mean(x, [1, 2]), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, [1, 2]), dy)))(x)]);
      assert.ok(maxRelError(a!.dataSync() as Float32Array, b!.dataSync() as Float32Array) < 1e-6);
      assert.ok(maxRelError(ga!.dataSync() as Float32Array, gb!.dataSync() as Float32Array) < 1e-6);
      tf.dispose([x, dy, a!, b!, ga!, gb!]);
    });

    it('a training forward updates BatchNorm moving statistics with Keras momentum, inference uses them', () => {
      const net = new Network({ ...tiny, batchNorm: { momentum: 0.9, epsilon: 1e-3 } }, 5);
      const x = tf.tensor4d(seeded(3 * 6 * 5 * 2, 31, 1, 2), [3, 6, 5, 2]);
      const conv = tf.conv2d(x, net.param('c1/kernel') as tf.Tensor4D, 1, 'same');
      const batchMean = tf.mean(conv, [0, 1, 2]).dataSync() as Float32Array;
      tf.dispose(net.apply(x, true));
      const moving = net.param('b1/moving_mean').dataSync() as Float32Array;
      batchMean.forEach((m, i) => assert.ok(Math.abs((moving[i] as number) - 0.1 * m) < 1e-5));
      const before = tf.memory().numTensors;
      tf.dispose(net.apply(x, false));
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([x, conv]);
      net.dispose();
    });
  });
}

describe('flat weights and manifests', () => {
  before(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('initial weights depend only on the seed (0 included): same seed, same weights', () => {
    const weightsOf = (seed: number): Float32Array => {
      const net = new Network(tiny, seed);
      try {
        return flattenWeights(net);
      } finally {
        net.dispose();
      }
    };
    for (const seed of [0, 3]) assert.deepEqual(Array.from(weightsOf(seed)), Array.from(weightsOf(seed)), `seed ${seed}`);
    assert.notDeepEqual(Array.from(weightsOf(0)), Array.from(weightsOf(1)));
  });

  it('flatten -> load into another network -> flatten is the identity, and outputs agree', () => {
    const a = new Network(tiny, 1);
    const b = new Network(tiny, 2);
    const flat = flattenWeights(a);
    assert.equal(flat.length, totalSize(manifestOf(a)));
    assert.notDeepEqual(flattenWeights(b), flat);
    loadFlatWeights(b, flat, manifestOf(a));
    assert.deepEqual(flattenWeights(b), flat);
    const x = tf.tensor4d(seeded(2 * 6 * 5 * 2, 41), [2, 6, 5, 2]);
    const ya = a.apply(x, false).dataSync();
    const yb = b.apply(x, false).dataSync();
    assert.deepEqual(yb, ya);
    tf.dispose(x);
    a.dispose();
    b.dispose();
  });

  it('manifest order lists every weight, BatchNorm statistics as non-trainable', () => {
    const net = new Network(tiny, 1);
    const m = manifestOf(net);
    assert.deepEqual(
      m.tensors.map((t) => `${t.name}:${t.shape.join('x')}:${t.trainable ? 'T' : 'S'}`),
      [
        'c1/kernel:3x3x2x4:T', 'b1/gamma:4:T', 'b1/beta:4:T', 'b1/moving_mean:4:S', 'b1/moving_variance:4:S',
        'c2/kernel:3x3x4x4:T', 'b2/gamma:4:T', 'b2/beta:4:T', 'b2/moving_mean:4:S', 'b2/moving_variance:4:S',
        'skip/kernel:1x1x4x4:T', 'head/kernel:4x3:T', 'head/bias:3:T',
      ],
    );
    net.dispose();
  });

  it('refuses a wrong length, a renamed tensor, a reshaped tensor and another architecture', () => {
    const net = new Network(tiny, 1);
    const flat = flattenWeights(net);
    const m = manifestOf(net);
    const before = flattenWeights(net);
    assert.throws(() => loadFlatWeights(net, flat.subarray(1)), { code: 'FEDCLR_TENSOR_WEIGHT_LENGTH' });
    const renamed: WeightManifest = { ...m, tensors: m.tensors.map((t, i) => (i === 1 ? { ...t, name: 'b1/scale' } : t)) };
    assert.throws(() => loadFlatWeights(net, flat, renamed), { code: 'FEDCLR_TENSOR_MANIFEST_MISMATCH', message: /b1\/scale/ });
    const reshaped: WeightManifest = { ...m, tensors: m.tensors.map((t, i) => (i === 11 ? { ...t, shape: [3, 4] } : t)) };
    assert.throws(() => loadFlatWeights(net, flat, reshaped), { code: 'FEDCLR_TENSOR_MANIFEST_MISMATCH', message: /head\/kernel/ });
    assert.throws(() => loadFlatWeights(net, flat, { ...m, architecture: 'other' }), { code: 'FEDCLR_TENSOR_MANIFEST_MISMATCH' });
    assert.deepEqual(flattenWeights(net), before, 'a refused load must not touch the weights');
    net.dispose();
  });
});
