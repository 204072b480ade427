// Feature helpers, input validation and the combined evaluateRepresentation.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@fedclr/tensor';
import {
  accuracy,
  confusionMatrix,
  evaluateRepresentation,
  extractFeatures,
  gaussianBlobs,
  knn,
  linearProbe,
  rawPixelFeatures,
  validateSplits,
  xorBlobs,
  type FeatureSet,
} from '../src/eval/index.js';

before(async () => {
  await initBackend({ prefer: 'wasm' });
});

const small = (labels: number[], dim = 2): FeatureSet => ({
  features: Float32Array.from({ length: labels.length * dim }, (_, i) => Math.sin(i + 1)),
  labels: Int32Array.from(labels),
  dim,
});

describe('validateSplits', () => {
  it('infers the class count from both splits', () => {
    const v = validateSplits(small([0, 1, 2, 0]), small([3, 1]));
    assert.equal(v.numClasses, 4);
    assert.equal(v.trainCount, 4);
    assert.equal(v.testCount, 2);
    assert.deepEqual(v.trainLabels, Int32Array.from([0, 1, 2, 0]));
  });

  it('rejects mismatched lengths', () => {
    assert.throws(() => validateSplits({ ...small([0, 1, 0]), features: new Float32Array(5) }, small([0, 1])), {
      code: 'FEDCLR_EVAL_INVALID_FEATURES',
    });
    assert.throws(() => validateSplits(small([0, 1, 0]), { ...small([0, 1]), dim: 3 }), { code: 'FEDCLR_EVAL_INVALID_FEATURES' });
    assert.throws(() => validateSplits(small([0, 1, 0], 2), small([0, 1], 3)), { code: 'FEDCLR_EVAL_DIMENSION_MISMATCH' });
    assert.throws(() => validateSplits(small([0, 1]), small([])), { code: 'FEDCLR_EVAL_INVALID_FEATURES' });
  });

  it('rejects fewer train examples than classes', () => {
    assert.throws(() => validateSplits(small([0, 1]), small([2])), { code: 'FEDCLR_EVAL_TOO_FEW_EXAMPLES' });
    assert.throws(() => validateSplits(small([0, 1, 1]), small([0]), 5), { code: 'FEDCLR_EVAL_TOO_FEW_EXAMPLES' });
  });

  it('rejects NaN and infinite features, naming the example', () => {
    const bad = small([0, 1, 0, 1]);
    bad.features[5] = Number.NaN;
    assert.throws(() => validateSplits(bad, small([0, 1])), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FEDCLR_EVAL_NON_FINITE_FEATURE');
      assert.match(err.message, /train feature: example 2, feature 1 is NaN/);
      return true;
    });
    const inf = small([0, 1]);
    inf.features[0] = Number.POSITIVE_INFINITY;
    assert.throws(() => validateSplits(small([0, 1, 0]), inf), { code: 'FEDCLR_EVAL_NON_FINITE_FEATURE' });
  });

  it('rejects bad labels and bad numClasses', () => {
    assert.throws(() => validateSplits({ ...small([0, 1, 0]), labels: [0, 1, -1] }, small([0])), { code: 'FEDCLR_EVAL_INVALID_LABELS' });
    assert.throws(() => validateSplits(small([0, 1, 0]), { ...small([0]), labels: [0.5] }), { code: 'FEDCLR_EVAL_INVALID_LABELS' });
    assert.throws(() => validateSplits(small([0, 0, 0]), small([0])), { code: 'FEDCLR_EVAL_INVALID_LABELS' });
    assert.throws(() => validateSplits(small([0, 1, 0]), small([2]), 2), { code: 'FEDCLR_EVAL_INVALID_LABELS' });
    assert.throws(() => validateSplits(small([0, 1, 0]), small([1]), 1), { code: 'FEDCLR_EVAL_INVALID_OPTION' });
  });

  it('is what linearProbe, knn and evaluateRepresentation run first', async () => {
    const nan = small([0, 1, 0, 1]);
    nan.features[0] = Number.NaN;
    await assert.rejects(linearProbe(nan, small([0, 1])), { code: 'FEDCLR_EVAL_NON_FINITE_FEATURE' });
    await assert.rejects(knn(nan, small([0, 1])), { code: 'FEDCLR_EVAL_NON_FINITE_FEATURE' });
    await assert.rejects(evaluateRepresentation(small([0, 1]), small([2])), { code: 'FEDCLR_EVAL_TOO_FEW_EXAMPLES' });
  });
});

describe('rawPixelFeatures', () => {
  it('scales bytes to [0, 1] and keeps count x pixels values', () => {
    const out = rawPixelFeatures(Uint8Array.from([0, 255, 51, 102, 7, 9]), 2, 2);
    assert.equal(out.length, 4);
    assert.deepEqual(Array.from(out), [0, 1, Math.fround(0.2), Math.fround(0.4)]);
    assert.throws(() => rawPixelFeatures(new Uint8Array(3), 2, 2), { code: 'FEDCLR_EVAL_INVALID_OPTION' });
  });
});

describe('extractFeatures', () => {
  // A toy "encoder": per image, its sum and its first pixel.
  const embed = (batch: Float32Array, count: number): Float32Array => {
    const pixels = batch.length / count;
    const out = new Float32Array(count * 2);
    for (let i = 0; i < count; i++) {
      let s = 0;
      for (let j = 0; j < pixels; j++) s += batch[i * pixels + j] as number;
      out[2 * i] = s;
      out[2 * i + 1] = batch[i * pixels] as number;
    }
    return out;
  };

  it('batches, scales bytes and concatenates in order', async () => {
    const images = Uint8Array.from({ length: 7 * 3 }, (_, i) => i * 5);
    const batches: number[] = [];
    const r = await extractFeatures(
      (batch, count) => {
        batches.push(count);
        return embed(batch, count);
      },
      images,
      7,
      3,
    );
    assert.deepEqual(batches, [3, 3, 1]);
    assert.equal(r.dim, 2);
    assert.equal(r.features.length, 14);
    const direct = embed(rawPixelFeatures(images, 7, 3), 7);
    for (let i = 0; i < 14; i++) assert.ok(Math.abs((r.features[i] as number) - (direct[i] as number)) < 1e-6);
  });

  it('accepts float images and async embedding functions', async () => {
    const images = Float32Array.from({ length: 5 * 4 }, (_, i) => i / 20);
    const r = await extractFeatures(async (b, c) => embed(b, c), images, 5, 2);
    assert.deepEqual(r.features, embed(images, 5));
  });

  it('rejects an embedding of the wrong size', async () => {
    const images = new Uint8Array(6 * 2);
    await assert.rejects(
      extractFeatures((_b, count) => new Float32Array(count === 4 ? 8 : 3), images, 6, 4),
      { code: 'FEDCLR_EVAL_EMBED_OUTPUT' },
    );
    await assert.rejects(
      extractFeatures(() => [1, 2] as unknown as Float32Array, images, 6, 4),
      { code: 'FEDCLR_EVAL_EMBED_OUTPUT' },
    );
    await assert.rejects(extractFeatures(embed, images, 5, 4), { code: 'FEDCLR_EVAL_INVALID_OPTION' });
  });
});

describe('accuracy and confusionMatrix', () => {
  it('count agreements', () => {
    assert.equal(accuracy([0, 1, 2, 2], [0, 1, 1, 2]), 0.75);
    assert.deepEqual(Array.from(confusionMatrix([0, 1, 1, 2], [0, 1, 2, 2], 3)), [1, 0, 0, 0, 1, 1, 0, 0, 1]);
  });
});

describe('evaluateRepresentation', () => {
  it('runs the probe and the kNN on the same splits, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    const blobs = await evaluateRepresentation(
      gaussianBlobs({ count: 400, dim: 12, classes: 4, seed: 3 }),
      gaussianBlobs({ count: 200, dim: 12, classes: 4, seed: 4 }),
      { knn: { extraK: [200] } },
    );
    assert.ok(blobs.linearProbe >= 0.99 && blobs.knn >= 0.99, `${blobs.linearProbe} ${blobs.knn}`);
    assert.equal(blobs.linearProbe, blobs.details.linearProbe.accuracy);
    assert.equal(blobs.knn, blobs.details.knn.accuracy);
    assert.equal(blobs.details.knn.accuracyByK.length, 2);
    assert.equal(blobs.numClasses, 4);
    const xor = await evaluateRepresentation(xorBlobs(400, 1), xorBlobs(200, 2));
    assert.ok(xor.linearProbe <= 0.6 && xor.knn >= 0.95, `XOR: probe ${xor.linearProbe}, knn ${xor.knn}`);
    assert.equal(tf.memory().numTensors, before);
  });

  it('passes its abort signal to both parts', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await assert.rejects(
      evaluateRepresentation(xorBlobs(40, 1), xorBlobs(20, 2), { signal: controller.signal }),
      /stop/,
    );
  });
});
