// MoCo's pieces on their own (cpu backend): the closed-form gradient against tfjs autodiff of a
// reference implementation, the queue's FIFO ring, the EMA update and the state's binding.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@fedclr/tensor';
import { KeyQueue, MocoState, emaUpdate, mocoLoss, mocoLossGradient, queueCapacityFor } from '../src/index.js';
import { LOGIT_MASK_VALUE } from '../src/losses/common.js';
import { uniformArray, unitRows } from './seeded.js';

const centred = (count: number, seed: number): Float32Array => uniformArray(count, seed).map((v) => v - 0.5);

/**
 * The reference: one logit matrix over every candidate [k2; k1; queue], the wrong view's keys
 * masked out, the positive as a one-hot label, tf.losses.softmaxCrossEntropy, autodiff.
 */
function reference(z: Float32Array, k: Float32Array, queue: Float32Array, n: number, d: number, temperature: number): { loss: number; dz: Float32Array } {
  const m = queue.length / d;
  const labels = new Float32Array(2 * n * (2 * n + m));
  const mask = new Float32Array(2 * n * (2 * n + m));
  for (let r = 0; r < 2 * n; r++) {
    const view = r < n ? 0 : 1;
    const image = r % n;
    // candidate columns: 0..n-1 view 2's keys, n..2n-1 view 1's keys, then the queue
    labels[r * (2 * n + m) + view * n + image] = 1;
    for (let c = 0; c < n; c++) mask[r * (2 * n + m) + (1 - view) * n + c] = LOGIT_MASK_VALUE;
  }
  const [value, grad] = tf.tidy(() => {
    const keys = tf.tensor2d(k, [2 * n, d]);
    const unitKeys = tf.div(keys, tf.norm(keys, 'euclidean', 1, true));
    const [k1, k2] = tf.split(unitKeys, 2, 0);
    const candidates = tf.concat(m > 0 ? [k2 as tf.Tensor, k1 as tf.Tensor, tf.tensor2d(queue, [m, d])] : [k2 as tf.Tensor, k1 as tf.Tensor], 0);
    const f = (x: tf.Tensor): tf.Scalar => {
      const u = tf.div(x, tf.norm(x, 'euclidean', 1, true));
      const logits = tf.add(tf.div(tf.matMul(u as tf.Tensor2D, candidates as tf.Tensor2D, false, true), temperature), tf.tensor2d(mask, [2 * n, 2 * n + m]));
      return tf.losses.softmaxCrossEntropy(tf.tensor2d(labels, [2 * n, 2 * n + m]), logits) as tf.Scalar;
    };
    const { value: v, grads } = tf.valueAndGrads(f)([tf.tensor2d(z, [2 * n, d])]);
    return [v, grads[0] as tf.Tensor];
  });
  try {
    return { loss: (value.dataSync() as Float32Array)[0] as number, dz: grad.dataSync() as Float32Array };
  } finally {
    tf.dispose([value, grad]);
  }
}

describe('MoCo', () => {
  before(async () => {
    await initBackend({ prefer: 'cpu' });
  });

  it('the closed-form InfoNCE gradient (symmetrised, batch keys and queue) equals autodiff of the reference', () => {
    const n = 6;
    const d = 5;
    for (const [temperature, m] of [[0.2, 9], [0.5, 0], [0.07, 3]] as const) {
      const z = centred(2 * n * d, 1 + m);
      const k = centred(2 * n * d, 2 + m);
      const queue = unitRows(centred(m * d, 3 + m), d);
      const fast = mocoLossGradient(z, k, queue, n, d, temperature);
      const slow = reference(z, k, queue, n, d, temperature);
      assert.ok(Math.abs(fast.loss - slow.loss) < 1e-5, `τ ${temperature}, K ${m}: loss ${fast.loss} vs ${slow.loss}`);
      for (let i = 0; i < slow.dz.length; i++) {
        assert.ok(Math.abs((fast.dz[i] as number) - (slow.dz[i] as number)) < 1e-5 * Math.max(1, Math.abs(slow.dz[i] as number)), `τ ${temperature}, K ${m}, grad ${i}: ${fast.dz[i]} vs ${slow.dz[i]}`);
      }
      // the keys to enqueue: view 1's, unit norm
      assert.deepEqual(Array.from(fast.enqueue, (v) => Math.round(v * 1e5)), Array.from(unitRows(k.subarray(0, n * d), d), (v) => Math.round(v * 1e5)));
    }
  });

  it('leaves no tensor behind', () => {
    const before = tf.memory().numTensors;
    mocoLossGradient(centred(40, 1), centred(40, 2), unitRows(centred(20, 3), 5), 4, 5, 0.2);
    mocoLossGradient(centred(40, 1), centred(40, 2), new Float32Array(0), 4, 5, 0.2);
    assert.equal(tf.memory().numTensors, before);
  });

  it('the queue is a FIFO ring: it fills, then each key overwrites the oldest', () => {
    const q = new KeyQueue(3, 2);
    const rows = (...values: number[]): Float32Array => Float32Array.from(values.flatMap((v) => [v, -v]));
    const held = (): number[] => {
      const keys = q.keys();
      return Array.from({ length: q.length }, (_, i) => keys[2 * i] as number).sort((a, b) => a - b);
    };
    assert.equal(q.length, 0);
    q.enqueue(rows(1, 2), 2);
    assert.deepEqual(held(), [1, 2]);
    q.enqueue(rows(3, 4), 2); // 1 is the oldest: 4 takes its slot
    assert.deepEqual(held(), [2, 3, 4]);
    assert.deepEqual(Array.from(q.keys()), [4, -4, 2, -2, 3, -3]);
    q.enqueue(rows(5, 6, 7, 8), 4); // more than the capacity: only the newest 3 stay
    assert.deepEqual(held(), [6, 7, 8]);
    const saved = q.snapshot();
    const copy = new KeyQueue(3, 2);
    copy.restore(saved);
    q.enqueue(rows(9), 1);
    copy.enqueue(rows(9), 1);
    assert.deepEqual(copy.keys(), q.keys());
    assert.deepEqual(held(), [7, 8, 9]);
    const none = new KeyQueue(0, 2);
    none.enqueue(rows(1), 1);
    assert.equal(none.length, 0);
    assert.throws(() => q.enqueue(rows(1), 2), { code: 'FEDCLR_CONTRASTIVE_INVALID_TRAINING' });
    assert.throws(() => new KeyQueue(4, 2).restore(saved), /does not fit/);
  });

  it('the EMA update is m·key + (1-m)·online; m = 0 copies the online weights', () => {
    const key = Float32Array.from([1, 2, 3]);
    const online = Float32Array.from([3, 2, -1]);
    emaUpdate(key, online, 0.75);
    assert.deepEqual(Array.from(key), [1.5, 2, 2]);
    emaUpdate(key, online, 0);
    assert.deepEqual(key, online);
    assert.throws(() => emaUpdate(key, new Float32Array(2), 0.5), { code: 'FEDCLR_CONTRASTIVE_INVALID_TRAINING' });
  });

  it('a state binds to a model: a fresh key encoder copies the weights, a state of another model is refused', () => {
    const state = new MocoState(4);
    const params = Float32Array.from([1, 2, 3]);
    const { key, queue } = state.bind(params, 2);
    assert.deepEqual(key, params);
    assert.notEqual(key, params, 'a copy, not the online weights');
    assert.equal(queue.capacity, 4);
    state.resetKey(Float32Array.from([7, 8, 9]));
    assert.deepEqual(Array.from(state.bind(params, 2).key), [7, 8, 9], 'bind keeps a key encoder it has');
    assert.equal(state.queue, queue, 'and its queue');
    assert.throws(() => state.bind(new Float32Array(4), 2), /one architecture/);
    assert.throws(() => state.bind(params, 3), /2-d keys/);
  });

  it('checks its options, and caps the queue at half the local images', () => {
    assert.throws(() => mocoLoss({ temperature: 0, momentum: 0.9, queueSize: 8 }), /moco.temperature/);
    assert.throws(() => mocoLoss({ temperature: 0.2, momentum: 1, queueSize: 8 }), /moco.momentum/);
    assert.throws(() => mocoLoss({ temperature: 0.2, momentum: 0.9, queueSize: 1.5 }), /moco.queueSize/);
    assert.equal(mocoLoss({ temperature: 0.2, momentum: 0.9, queueSize: 8 }).state.queueSize, 8);
    assert.equal(queueCapacityFor(4096, 60_000), 4096);
    assert.equal(queueCapacityFor(4096, 1001), 500);
  });
});
