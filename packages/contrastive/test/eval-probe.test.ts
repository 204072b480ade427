// Linear probe and its L-BFGS solver: accuracy on separable and non-separable data, train-only
// standardisation, determinism, convergence checked by an independent float64 gradient, the
// held-out l2 search, and tensor hygiene. Small problems only (the machine is shared).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@fedclr/tensor';
import { createRng } from '@fedclr/data';
import {
  gaussianBlobs,
  linearProbe,
  minimizeLbfgs,
  predictLinearProbe,
  xorBlobs,
  type FeatureSet,
  type LinearProbeModel,
} from '../src/eval/index.js';

before(async () => {
  await initBackend({ prefer: 'wasm' });
});

const blobsTrain = (): FeatureSet => gaussianBlobs({ count: 600, dim: 16, classes: 5, seed: 1 });
const blobsTest = (): FeatureSet => gaussianBlobs({ count: 300, dim: 16, classes: 5, seed: 2 });

/** Gradient of mean CE + l2/2 ||W||^2 at the probe's weights, in float64, from scratch. */
function referenceGradient(set: FeatureSet, model: LinearProbeModel, l2: number): Float64Array {
  const { dim: d, numClasses: C } = model;
  const n = set.labels.length;
  const d1 = d + 1;
  // Train statistics recomputed independently (one pass, float64).
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = set.features[i * d + j] as number;
      mean[j] = (mean[j] as number) + v / n;
      sq[j] = (sq[j] as number) + (v * v) / n;
    }
  }
  const grad = new Float64Array(d1 * C);
  const x = new Float64Array(d1);
  const z = new Float64Array(C);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const m = mean[j] as number;
      x[j] = ((set.features[i * d + j] as number) - m) / Math.sqrt((sq[j] as number) - m * m);
    }
    x[d] = 1;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < d1; j++) s += (x[j] as number) * (model.weights[j * C + c] as number);
      z[c] = s;
    }
    const zmax = Math.max(...z);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp((z[c] as number) - zmax);
    for (let c = 0; c < C; c++) {
      const r = Math.exp((z[c] as number) - zmax) / sum - (c === set.labels[i] ? 1 : 0);
      for (let j = 0; j < d1; j++) grad[j * C + c] = (grad[j * C + c] as number) + (r * (x[j] as number)) / n;
    }
  }
  for (let k = 0; k < d * C; k++) grad[k] = (grad[k] as number) + l2 * (model.weights[k] as number);
  return grad;
}

function infNorm(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i] as number));
  return m;
}

describe('linearProbe', () => {
  it('separates Gaussian blobs almost perfectly, converged', async () => {
    const r = await linearProbe(blobsTrain(), blobsTest());
    assert.ok(r.accuracy >= 0.99, `accuracy ${r.accuracy}`);
    assert.ok(r.trainAccuracy >= 0.99);
    assert.equal(r.converged, true);
    assert.equal(r.stopReason, 'gradient');
    assert.ok(r.gradInfNorm <= 1e-5);
    assert.equal(r.numClasses, 5);
    assert.equal(r.dim, 16);
    assert.equal(r.predictions.length, 300);
    assert.ok(r.trainLoss > 0 && r.trainLoss < r.objective);
  });

  it('reaches a point where an independent float64 gradient vanishes', async () => {
    const train = gaussianBlobs({ count: 400, dim: 6, classes: 3, seed: 5, separation: 0.8 });
    const test = gaussianBlobs({ count: 90, dim: 6, classes: 3, seed: 6, separation: 0.8 });
    const l2 = 1e-3;
    const r = await linearProbe(train, test, { l2 });
    assert.equal(r.converged, true);
    // Overlapping blobs: a finite, interior optimum (not a separable run-away).
    assert.ok(r.trainAccuracy < 1 && r.trainAccuracy > 0.6, `train accuracy ${r.trainAccuracy}`);
    const g = referenceGradient(train, r.model, l2);
    assert.ok(infNorm(g) < 1e-4, `reference gradient inf-norm ${infNorm(g)}`);
    // And the optimum is not trivial: a weight of size >> the gradient noise.
    assert.ok(infNorm(r.model.weights) > 0.1);
  });

  it('stays near chance on XOR (it really is linear)', async () => {
    const r = await linearProbe(xorBlobs(400, 1), xorBlobs(400, 2));
    assert.ok(r.accuracy <= 0.6, `linear probe on XOR scored ${r.accuracy}`);
    assert.ok(r.trainAccuracy <= 0.6);
  });

  it('standardises with train statistics only', async () => {
    // Train: two classes on feature 0 at -2 / +2 (plus a noise feature). Test: class 1 only.
    // Train statistics keep the test points at +2 -> all correct. Test statistics would centre
    // them at 0 and send about half to class 0.
    const rng = createRng('std-test');
    const nTr = 200;
    const nTe = 100;
    const train = new Float32Array(nTr * 2);
    const trainLabels = new Uint8Array(nTr);
    for (let i = 0; i < nTr; i++) {
      const y = i % 2;
      trainLabels[i] = y;
      train[2 * i] = (y === 1 ? 2 : -2) + rng.normal(0, 0.5);
      train[2 * i + 1] = rng.normal(0, 1);
    }
    const test = new Float32Array(nTe * 2);
    for (let i = 0; i < nTe; i++) {
      test[2 * i] = 2 + rng.normal(0, 0.5);
      test[2 * i + 1] = rng.normal(0, 1);
    }
    const r = await linearProbe(
      { features: train, labels: trainLabels, dim: 2 },
      { features: test, labels: new Uint8Array(nTe).fill(1), dim: 2 },
    );
    assert.ok(r.accuracy >= 0.98, `accuracy ${r.accuracy}`);
    let m0 = 0;
    for (let i = 0; i < nTr; i++) m0 += (train[2 * i] as number) / nTr;
    assert.ok(Math.abs((r.model.mean[0] as number) - m0) < 1e-9, 'model mean is the train mean');
  });

  it('is deterministic', async () => {
    const a = await linearProbe(blobsTrain(), blobsTest(), { l2: 1e-3 });
    const b = await linearProbe(blobsTrain(), blobsTest(), { l2: 1e-3 });
    assert.deepEqual(a.model.weights, b.model.weights);
    assert.deepEqual(a.predictions, b.predictions);
    assert.equal(a.iterations, b.iterations);
    assert.equal(a.objective, b.objective);
  });

  it('converges with and without the preconditioner to the same optimum', async () => {
    const train = gaussianBlobs({ count: 300, dim: 8, classes: 3, seed: 11, separation: 0.7 });
    const test = gaussianBlobs({ count: 60, dim: 8, classes: 3, seed: 12, separation: 0.7 });
    const a = await linearProbe(train, test, { l2: 1e-2 });
    const b = await linearProbe(train, test, { l2: 1e-2, precondition: false });
    assert.equal(a.converged && b.converged, true);
    assert.ok(Math.abs(a.objective - b.objective) < 1e-8, `${a.objective} vs ${b.objective}`);
  });

  it('predictLinearProbe reproduces the test predictions', async () => {
    const test = blobsTest();
    const r = await linearProbe(blobsTrain(), test, { l2: 1e-3 });
    assert.deepEqual(predictLinearProbe(r.model, test.features, 300), r.predictions);
  });

  it("chooses l2 ('auto') on held-out train data, never looking at the test split", async () => {
    const train = gaussianBlobs({ count: 300, dim: 8, classes: 3, seed: 21, separation: 0.5 });
    const testA = gaussianBlobs({ count: 60, dim: 8, classes: 3, seed: 22, separation: 0.5 });
    const testB: FeatureSet = { features: testA.features.map((v) => -3 * v), labels: new Int32Array(60), dim: 8 };
    const opts = { l2: 'auto' as const, l2Candidates: [1, 1e-2, 1e-4] };
    const a = await linearProbe(train, testA, opts);
    const b = await linearProbe(train, testB, opts);
    assert.ok(a.l2Search !== null && b.l2Search !== null);
    assert.equal(a.l2Search.length, 3);
    assert.deepEqual(a.l2Search, b.l2Search);
    assert.equal(a.l2, b.l2);
    assert.deepEqual(a.model.weights, b.model.weights);
    assert.deepEqual(
      a.l2Search.map((e) => e.l2),
      [1, 1e-2, 1e-4],
    );
    const best = Math.max(...a.l2Search.map((e) => e.validationAccuracy));
    const chosen = a.l2Search.find((e) => e.l2 === a.l2);
    assert.equal(chosen?.validationAccuracy, best);
  });

  it('leaks no tensors (fixed l2, auto l2, and on error)', async () => {
    const before = tf.memory().numTensors;
    await linearProbe(blobsTrain(), blobsTest());
    await linearProbe(blobsTrain(), blobsTest(), { l2: 'auto', l2Candidates: [1e-2, 1e-4] });
    await assert.rejects(linearProbe(blobsTrain(), { ...blobsTest(), dim: 8 }));
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(linearProbe(blobsTrain(), blobsTest(), { signal: controller.signal }));
    assert.equal(tf.memory().numTensors, before);
  });

  it('rejects bad options with FEDCLR_EVAL_INVALID_OPTION', async () => {
    for (const options of [{ l2: -1 }, { l2: Number.NaN }, { maxIterations: 0 }, { validationFraction: 1 }, { l2Candidates: [] }]) {
      await assert.rejects(linearProbe(blobsTrain(), blobsTest(), options), { code: 'FEDCLR_EVAL_INVALID_OPTION' });
    }
  });
});

describe('minimizeLbfgs', () => {
  it('minimises the Rosenbrock function', async () => {
    const r = await minimizeLbfgs(
      (x, g) => {
        const a = x[0] as number;
        const b = x[1] as number;
        g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
        g[1] = 200 * (b - a * a);
        return (1 - a) ** 2 + 100 * (b - a * a) ** 2;
      },
      Float64Array.from([-1.2, 1]),
      { gradientTolerance: 1e-9, lossTolerance: 0, maxIterations: 200 },
    );
    assert.equal(r.stopReason, 'gradient');
    assert.ok(Math.abs((r.x[0] as number) - 1) < 1e-6 && Math.abs((r.x[1] as number) - 1) < 1e-6, `x = ${String(r.x)}`);
  });

  it('a good preconditioner cuts iterations on an ill-conditioned quadratic', async () => {
    const n = 50;
    const diag = Float64Array.from({ length: n }, (_, i) => 10 ** ((4 * i) / (n - 1))); // 1 .. 1e4
    const quad = (x: Float64Array, g: Float64Array): number => {
      let f = 0;
      for (let i = 0; i < n; i++) {
        const xi = x[i] as number;
        const a = diag[i] as number;
        g[i] = a * xi - 1;
        f += 0.5 * a * xi * xi - xi;
      }
      return f;
    };
    const x0 = new Float64Array(n);
    const plain = await minimizeLbfgs(quad, x0, { gradientTolerance: 1e-6, lossTolerance: 0, maxIterations: 1000 });
    const pre = await minimizeLbfgs(quad, x0, {
      gradientTolerance: 1e-6,
      lossTolerance: 0,
      precondition: (v, out) => {
        for (let i = 0; i < n; i++) out[i] = (v[i] as number) / (diag[i] as number);
      },
    });
    assert.equal(plain.stopReason, 'gradient');
    assert.equal(pre.stopReason, 'gradient');
    assert.ok(pre.iterations <= 2, `preconditioned iterations ${pre.iterations}`);
    assert.ok(plain.iterations > 10 * pre.iterations, `plain ${plain.iterations} vs preconditioned ${pre.iterations}`);
  });
});
