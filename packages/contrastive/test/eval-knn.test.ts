// Weighted cosine kNN: agreement with a brute-force float64 reference, chunking invariance,
// separable and XOR data, options, determinism and tensor hygiene.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@fedclr/tensor';
import { createRng } from '@fedclr/data';
import { gaussianBlobs, knn, xorBlobs, type FeatureSet } from '../src/eval/index.js';

before(async () => {
  await initBackend({ prefer: 'wasm' });
});

function randomSet(seed: string, count: number, dim: number, classes: number): FeatureSet {
  const rng = createRng(seed);
  return {
    features: Float32Array.from({ length: count * dim }, () => rng.normal()),
    labels: Int32Array.from({ length: count }, () => rng.int(classes)),
    dim,
  };
}

/** kNN from the definition, in float64: sort all train rows by cosine similarity. */
function referenceKnn(train: FeatureSet, test: FeatureSet, k: number, T: number, weighting: 'exponential' | 'majority', C: number): Int32Array {
  const d = train.dim;
  const rows = (set: FeatureSet): number[][] =>
    Array.from({ length: set.labels.length }, (_, i) => {
      const r = Array.from(set.features.subarray(i * d, (i + 1) * d));
      const norm = Math.sqrt(r.reduce((s, v) => s + v * v, 0));
      return r.map((v) => v / norm);
    });
  const a = rows(train);
  const b = rows(test);
  return Int32Array.from(b, (q) => {
    const sims = a.map((r, i) => ({ s: r.reduce((acc, v, j) => acc + v * (q[j] as number), 0), i }));
    sims.sort((x, y) => y.s - x.s || x.i - y.i);
    const votes = new Array<number>(C).fill(0);
    const top = sims.slice(0, k);
    const best = (top[0] as { s: number }).s;
    for (const { s, i } of top) {
      const y = train.labels[i] as number;
      votes[y] = (votes[y] as number) + (weighting === 'exponential' ? Math.exp((s - best) / T) : 1);
    }
    return votes.indexOf(Math.max(...votes));
  });
}

describe('knn', () => {
  const train = randomSet('knn-train', 150, 6, 4);
  const test = randomSet('knn-test', 40, 6, 4);

  for (const weighting of ['exponential', 'majority'] as const) {
    it(`matches a brute-force reference (${weighting}, several k)`, async () => {
      const r = await knn(train, test, { k: 5, extraK: [1, 20], weighting, temperature: 0.1 });
      assert.deepEqual(
        r.accuracyByK.map((e) => e.k),
        [1, 5, 20],
      );
      for (const { k, accuracy } of r.accuracyByK) {
        const ref = referenceKnn(train, test, k, 0.1, weighting, 4);
        let hits = 0;
        for (let i = 0; i < 40; i++) if (ref[i] === test.labels[i]) hits++;
        assert.equal(accuracy, hits / 40, `k = ${k}`);
      }
      assert.deepEqual(r.predictions, referenceKnn(train, test, 5, 0.1, weighting, 4));
    });
  }

  it('gives identical results for any chunk size', async () => {
    const a = await knn(train, test, { chunkRows: 1 });
    const b = await knn(train, test, { chunkRows: 7 });
    const c = await knn(train, test);
    assert.deepEqual(a.predictions, b.predictions);
    assert.deepEqual(a.predictions, c.predictions);
    assert.equal(a.chunkRows, 1);
    assert.equal(c.chunkRows, 40);
  });

  it('classifies Gaussian blobs and XOR almost perfectly', async () => {
    const blobs = await knn(
      gaussianBlobs({ count: 600, dim: 16, classes: 5, seed: 1 }),
      gaussianBlobs({ count: 300, dim: 16, classes: 5, seed: 2 }),
    );
    assert.ok(blobs.accuracy >= 0.99, `blobs ${blobs.accuracy}`);
    const xor = await knn(xorBlobs(400, 1), xorBlobs(400, 2));
    assert.ok(xor.accuracy >= 0.95, `xor ${xor.accuracy}`);
  });

  it('uses k = 20 and T = 0.07 by default, clamps k to the train size', async () => {
    const r = await knn(train, test);
    assert.equal(r.k, 20);
    assert.equal(r.temperature, 0.07);
    assert.equal(r.weighting, 'exponential');
    const big = await knn(train, test, { k: 1000 });
    assert.equal(big.k, 150);
  });

  it('treats an all-zero feature row as similar to nothing (no NaN)', async () => {
    const zeroTest: FeatureSet = { features: new Float32Array(2 * 6), labels: new Int32Array([0, 1]), dim: 6 };
    const r = await knn(train, zeroTest, { k: 3 });
    assert.equal(r.predictions.length, 2);
    for (const p of r.predictions) assert.ok(p >= 0 && p < 4);
  });

  it('is deterministic and leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    const a = await knn(train, test, { extraK: [3] });
    const b = await knn(train, test, { extraK: [3] });
    assert.deepEqual(a.predictions, b.predictions);
    assert.deepEqual(a.accuracyByK, b.accuracyByK);
    await assert.rejects(knn(train, test, { k: 0 }), { code: 'FEDCLR_EVAL_INVALID_OPTION' });
    assert.equal(tf.memory().numTensors, before);
  });

  it('rejects bad options with FEDCLR_EVAL_INVALID_OPTION', async () => {
    const bad = [{ k: 2.5 }, { temperature: 0 }, { extraK: [0] }, { chunkRows: 0 }, { weighting: 'median' as 'majority' }];
    for (const options of bad) await assert.rejects(knn(train, test, options), { code: 'FEDCLR_EVAL_INVALID_OPTION' });
  });
});
