// Triplet (three miners) and margin contrastive losses.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { marginContrastiveLoss, tripletLoss, type TripletMiner } from '../src/losses/index.js';
import {
  assertClose,
  assertGradClose,
  GRAD_TOL,
  assertNoLeak,
  assertThrowsCode,
  at,
  autodiffGrads,
  lossValue,
  mulberry32,
  numericGrad,
  randomLabels,
  randomMatrix,
  sqDist,
  type Matrix,
} from './losses-helpers.js';

before(async () => {
  await tf.setBackend('cpu');
});

/** Triplet loss from the definitions in the doc comment, by loops over indices. */
function tripletReference(x: Matrix, labels: number[], margin: number, miner: TripletMiner, squared: boolean): number {
  const n = x.length;
  const d = (i: number, j: number) => {
    const s = sqDist(at(x, i), at(x, j));
    return squared ? s : Math.sqrt(s);
  };
  const isPos = (a: number, p: number) => a !== p && at(labels, a) === at(labels, p);
  const isNeg = (a: number, k: number) => at(labels, a) !== at(labels, k);
  const idx = Array.from({ length: n }, (_, i) => i);
  const losses: number[] = [];
  if (miner === 'batch-all') {
    for (const a of idx)
      for (const p of idx)
        for (const k of idx) {
          if (!isPos(a, p) || !isNeg(a, k)) continue;
          const v = d(a, p) - d(a, k) + margin;
          if (v > 0) losses.push(v);
        }
  } else if (miner === 'batch-hard') {
    for (const a of idx) {
      const ps = idx.filter((p) => isPos(a, p)).map((p) => d(a, p));
      const ns = idx.filter((k) => isNeg(a, k)).map((k) => d(a, k));
      if (ps.length === 0 || ns.length === 0) continue;
      losses.push(Math.max(0, Math.max(...ps) - Math.min(...ns) + margin));
    }
  } else {
    for (const a of idx) {
      const ns = idx.filter((k) => isNeg(a, k)).map((k) => d(a, k));
      if (ns.length === 0) continue;
      for (const p of idx) {
        if (!isPos(a, p)) continue;
        const dap = d(a, p);
        const farther = ns.filter((v) => v > dap);
        const chosen = farther.length > 0 ? Math.min(...farther) : Math.max(...ns);
        losses.push(Math.max(0, dap - chosen + margin));
      }
    }
  }
  return losses.length === 0 ? 0 : losses.reduce((s, v) => s + v, 0) / losses.length;
}

function marginReference(x1: Matrix, x2: Matrix, y: number[], margin: number): number {
  let total = 0;
  x1.forEach((a, i) => {
    const d2 = sqDist(a, at(x2, i));
    const d = Math.sqrt(d2);
    total += at(y, i) * d2 + (1 - at(y, i)) * Math.max(0, margin - d) ** 2;
  });
  return total / x1.length;
}

const MINERS: TripletMiner[] = ['batch-all', 'batch-hard', 'semi-hard'];

describe('tripletLoss', () => {
  it('matches hand-computed cases for every miner, plain and squared', () => {
    // 1-D points x0 = 0, x1 = 2 (class 0), x2 = 3 (class 1), margin 1.
    // Euclidean: d01 = 2, d02 = 3, d12 = 1.
    //  batch-all: triplets (0,1,2): 2 - 3 + 1 = 0 (not > 0); (1,0,2): 2 - 1 + 1 = 2 -> mean of {2} = 2.
    //  batch-hard: anchor 0: 2 - 3 + 1 = 0; anchor 1: 2 - 1 + 1 = 2; anchor 2 has no positive -> 1.
    //  semi-hard: (0,1): negative at 3 > 2 -> 0; (1,0): no negative beyond 2, farthest is 1 -> 2; mean 1.
    // Squared: d01 = 4, d02 = 9, d12 = 1.
    //  batch-all: (0,1,2): 4 - 9 + 1 < 0; (1,0,2): 4 - 1 + 1 = 4 -> 4.
    //  batch-hard: anchor 0: 0; anchor 1: 4 -> 2.   semi-hard: (0,1): 0; (1,0): 4 -> 2.
    const x: Matrix = [[0], [2], [3]];
    const labels = [0, 0, 1];
    const expected: Record<TripletMiner, [number, number]> = {
      'batch-all': [2, 4],
      'batch-hard': [1, 2],
      'semi-hard': [1, 2],
    };
    for (const miner of MINERS) {
      for (const squared of [false, true]) {
        const v = lossValue(([e]) => tripletLoss(e as tf.Tensor2D, labels, { margin: 1, miner, squared }), [x]);
        assertClose(v, expected[miner][squared ? 1 : 0], 1e-6, `${miner} squared=${squared}`);
      }
    }
  });

  it('matches the plain-loop reference on random inputs', () => {
    const rng = mulberry32(21);
    for (let trial = 0; trial < 3; trial++) {
      const n = 8 + trial * 3;
      const x = randomMatrix(rng, n, 4);
      const labels = randomLabels(rng, n, 3);
      for (const miner of MINERS) {
        for (const squared of [false, true]) {
          const margin = squared ? 0.8 : 0.5;
          const got = lossValue(([e]) => tripletLoss(e as tf.Tensor2D, labels, { margin, miner, squared }), [x]);
          assertClose(got, tripletReference(x, labels, margin, miner, squared), 1e-5, `${miner} sq=${squared} n=${n}`);
        }
      }
    }
  });

  it('normalize: true equals the loss on L2-normalised rows', () => {
    const rng = mulberry32(22);
    const x = randomMatrix(rng, 6, 3);
    const labels = [0, 1, 0, 1, 2, 2];
    const normed = x.map((r) => {
      const norm = Math.sqrt(r.reduce((s, v) => s + v * v, 0));
      return r.map((v) => v / norm);
    });
    const got = lossValue(([e]) => tripletLoss(e as tf.Tensor2D, labels, { margin: 0.2, normalize: true, miner: 'batch-hard' }), [x]);
    assertClose(got, tripletReference(normed, labels, 0.2, 'batch-hard', false), 1e-5, 'normalized');
  });

  it('has autodiff gradients equal to central differences of the reference', () => {
    const rng = mulberry32(23);
    const x = randomMatrix(rng, 7, 3);
    const labels = [0, 0, 1, 1, 2, 2, 0];
    for (const miner of MINERS) {
      for (const squared of [false, true]) {
        const margin = 0.6;
        const auto = autodiffGrads(([e]) => tripletLoss(e as tf.Tensor2D, labels, { margin, miner, squared }), [x]);
        const numeric = numericGrad(([e]) => tripletReference(e as Matrix, labels, margin, miner, squared), [x]);
        assertGradClose(at(auto, 0), at(numeric, 0), GRAD_TOL, `${miner} squared=${squared}`);
      }
    }
  });

  it('gives finite gradients for coincident embeddings and 0 without valid triplets', () => {
    const x: Matrix = [
      [1, 1],
      [1, 1],
      [1, 1],
      [0, 2],
    ];
    for (const miner of MINERS) {
      const [g] = autodiffGrads(([e]) => tripletLoss(e as tf.Tensor2D, [0, 0, 1, 1], { miner }), [x]);
      assert.ok((g as Matrix).every((row) => row.every(Number.isFinite)), `${miner} gradient finite`);
      assert.equal(lossValue(([e]) => tripletLoss(e as tf.Tensor2D, [0, 0, 0, 0], { miner }), [x]), 0, `${miner} one class`);
      assert.equal(lossValue(([e]) => tripletLoss(e as tf.Tensor2D, [0, 1, 2, 3], { miner }), [x]), 0, `${miner} no positives`);
    }
  });

  it('leaks no tensors and rejects bad input', () => {
    const x = tf.randomNormal([8, 3], 0, 1, 'float32', 5) as tf.Tensor2D;
    const labels = tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32');
    for (const miner of MINERS) {
      assertNoLeak(() => tripletLoss(x, labels, { miner }).dispose(), `${miner} forward`);
      assertNoLeak(() => tf.dispose(tf.grad((e: tf.Tensor) => tripletLoss(e as tf.Tensor2D, labels, { miner }))(x)), `${miner} grad`);
    }
    assertThrowsCode(() => tripletLoss(x, [0, 1]), 'FEDCLR_CONTRASTIVE_INVALID_LABELS');
    assertThrowsCode(() => tripletLoss(x, labels, { margin: -1 }), 'FEDCLR_CONTRASTIVE_INVALID_OPTION');
    assertThrowsCode(() => tripletLoss(x, labels, { miner: 'hardest' as TripletMiner }), 'FEDCLR_CONTRASTIVE_INVALID_OPTION');
    tf.dispose([x, labels]);
  });
});

describe('marginContrastiveLoss', () => {
  it('matches a hand-computed case', () => {
    // x1 = 0; x2 = (3,4), (0.6,0.8), (3,4); y = 1, 0, 0; margin 2. d = 5, 1, 5.
    // Terms: 1 * 25 = 25; (2 - 1)^2 = 1; max(0, 2 - 5)^2 = 0. Mean = 26 / 3 = 8.6667.
    const x1: Matrix = [
      [0, 0],
      [0, 0],
      [0, 0],
    ];
    const x2: Matrix = [
      [3, 4],
      [0.6, 0.8],
      [3, 4],
    ];
    const v = lossValue(([a, b]) => marginContrastiveLoss(a as tf.Tensor2D, b as tf.Tensor2D, [1, 0, 0], { margin: 2 }), [x1, x2]);
    assertClose(v, 26 / 3, 1e-6, 'hand case');
  });

  it('matches the reference on random inputs (array and tensor flags) and central differences', () => {
    const rng = mulberry32(31);
    const x1 = randomMatrix(rng, 8, 3);
    const x2 = randomMatrix(rng, 8, 3);
    const y = [1, 0, 1, 0, 0, 1, 0, 0];
    const margin = 1.5;
    const fn = ([a, b]: tf.Tensor2D[]) => marginContrastiveLoss(a as tf.Tensor2D, b as tf.Tensor2D, y, { margin });
    const ref = ([a, b]: Matrix[]) => marginReference(a as Matrix, b as Matrix, y, margin);
    assertClose(lossValue(fn, [x1, x2]), ref([x1, x2]), 1e-5, 'array flags');
    const yt = tf.tensor1d(y);
    const withTensor = lossValue(([a, b]) => marginContrastiveLoss(a as tf.Tensor2D, b as tf.Tensor2D, yt, { margin }), [x1, x2]);
    yt.dispose();
    assertClose(withTensor, ref([x1, x2]), 1e-5, 'tensor flags');
    const auto = autodiffGrads(fn, [x1, x2]);
    const numeric = numericGrad(ref, [x1, x2]);
    assertGradClose(at(auto, 0), at(numeric, 0), GRAD_TOL, 'dx1');
    assertGradClose(at(auto, 1), at(numeric, 1), GRAD_TOL, 'dx2');
  });

  it('gives finite gradients for identical pairs, leaks nothing, rejects bad flags', () => {
    const x: Matrix = [
      [0.5, 0.5],
      [0.5, 0.5],
    ];
    const [g1] = autodiffGrads(([a, b]) => marginContrastiveLoss(a as tf.Tensor2D, b as tf.Tensor2D, [1, 0]), [x, x]);
    assert.ok((g1 as Matrix).every((row) => row.every(Number.isFinite)));
    const a = tf.randomNormal([5, 3], 0, 1, 'float32', 1) as tf.Tensor2D;
    const b = tf.randomNormal([5, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
    assertNoLeak(() => marginContrastiveLoss(a, b, [1, 0, 1, 0, 1]).dispose(), 'forward');
    assertNoLeak(
      () => tf.dispose(tf.grads((p: tf.Tensor, q: tf.Tensor) => marginContrastiveLoss(p as tf.Tensor2D, q as tf.Tensor2D, [1, 0, 1, 0, 1]))([a, b])),
      'grad',
    );
    assertThrowsCode(() => marginContrastiveLoss(a, b, [1, 0, 2, 0, 1]), 'FEDCLR_CONTRASTIVE_INVALID_LABELS');
    assertThrowsCode(() => marginContrastiveLoss(a, b, [1, 0]), 'FEDCLR_CONTRASTIVE_INVALID_LABELS');
    assertThrowsCode(() => marginContrastiveLoss(a, b, [1, 0, 1, 0, 1], { margin: -0.1 }), 'FEDCLR_CONTRASTIVE_INVALID_OPTION');
    tf.dispose([a, b]);
  });
});
