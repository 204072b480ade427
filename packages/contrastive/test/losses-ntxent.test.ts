import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ntXentLoss, infoNceLoss } from '../src/losses/index.js';
import {
  assertClose,
  assertGradClose,
  GRAD_TOL,
  assertNoLeak,
  assertThrowsCode,
  at,
  autodiffGrads,
  dot,
  logSumExp,
  lossValue,
  mulberry32,
  normalizeRows,
  numericGrad,
  randomMatrix,
  type Matrix,
} from './losses-helpers.js';

before(async () => {
  await tf.setBackend('cpu');
});

/** NT-Xent written from the definition: 2N anchors, one positive, 2N - 2 negatives each. */
function ntXentReference(z1: Matrix, z2: Matrix, tau: number, normalize = true, decoupled = false): number {
  const a = normalize ? normalizeRows(z1) : z1;
  const b = normalize ? normalizeRows(z2) : z2;
  const z = [...a, ...b];
  const n = z1.length;
  let total = 0;
  for (let k = 0; k < 2 * n; k++) {
    const pos = k < n ? k + n : k - n;
    const logits: number[] = [];
    for (let j = 0; j < 2 * n; j++) if (j !== k && !(decoupled && j === pos)) logits.push(dot(at(z, k), at(z, j)) / tau);
    total += -dot(at(z, k), at(z, pos)) / tau + logSumExp(logits);
  }
  return total / (2 * n);
}

function infoNceReference(q: Matrix, k: Matrix, negs: Matrix, tau: number): number {
  const qn = normalizeRows(q);
  const kn = normalizeRows(k);
  const nn = normalizeRows(negs);
  let total = 0;
  qn.forEach((qi, i) => {
    const pos = dot(qi, at(kn, i)) / tau;
    total += -pos + logSumExp([pos, ...nn.map((v) => dot(qi, v) / tau)]);
  });
  return total / q.length;
}

describe('ntXentLoss', () => {
  it('matches a hand-computed case', () => {
    // z1 = z2 = [[1,0],[0,1]], tau = 1. Rows r0..r3 = e1, e2, e1, e2. Anchor r0: positive r2
    // (sim 1), negatives r1, r3 (sim 0): -1 + log(e^1 + e^0 + e^0) = log(2 + e) - 1. By
    // symmetry every anchor has the same loss: log(2 + e) - 1 = 0.551444...
    const eye: Matrix = [
      [1, 0],
      [0, 1],
    ];
    const v = lossValue(([a, b]) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D, { temperature: 1 }), [eye, eye]);
    assertClose(v, Math.log(2 + Math.E) - 1, 1e-6, 'hand case');
    assertClose(v, 0.551444, 1e-5, 'hand case (decimal)');
  });

  it('matches the plain-loop reference on random inputs, with and without normalisation', () => {
    const rng = mulberry32(1);
    for (const [n, d, tau] of [
      [4, 3, 0.5],
      [7, 5, 0.1],
      [1, 4, 0.2],
    ] as const) {
      const z1 = randomMatrix(rng, n, d);
      const z2 = randomMatrix(rng, n, d);
      const got = lossValue(([a, b]) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D, { temperature: tau }), [z1, z2]);
      assertClose(got, ntXentReference(z1, z2, tau), 1e-5, `N=${n} D=${d} tau=${tau}`);
      const raw = lossValue(
        ([a, b]) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D, { temperature: tau, normalize: false }),
        [z1, z2],
      );
      assertClose(raw, ntXentReference(z1, z2, tau, false), 1e-5, `unnormalised N=${n}`);
    }
  });

  it('decoupled (DCL) matches the reference without the positive in the denominator, and its gradients', () => {
    // hand case as above without the positive: -1 + log(e^0 + e^0) = log 2 - 1
    const eye: Matrix = [
      [1, 0],
      [0, 1],
    ];
    const hand = lossValue(([a, b]) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D, { temperature: 1, decoupled: true }), [eye, eye]);
    assertClose(hand, Math.log(2) - 1, 1e-6, 'hand case');
    const rng = mulberry32(4);
    for (const [n, d, tau] of [
      [4, 3, 0.5],
      [7, 5, 0.1],
    ] as const) {
      const z1 = randomMatrix(rng, n, d);
      const z2 = randomMatrix(rng, n, d);
      const got = lossValue(([a, b]) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D, { temperature: tau, decoupled: true }), [z1, z2]);
      assertClose(got, ntXentReference(z1, z2, tau, true, true), 1e-5, `N=${n} D=${d} tau=${tau}`);
      assert.ok(got < ntXentReference(z1, z2, tau), 'leaving the positive out lowers the loss');
    }
    const inputs = [randomMatrix(rng, 5, 4), randomMatrix(rng, 5, 4)];
    const auto = autodiffGrads(([a, b]) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D, { temperature: 0.3, decoupled: true }), inputs);
    const numeric = numericGrad(([a, b]) => ntXentReference(a as Matrix, b as Matrix, 0.3, true, true), inputs);
    assertGradClose(at(auto, 0), at(numeric, 0), GRAD_TOL, 'dz1');
    assertGradClose(at(auto, 1), at(numeric, 1), GRAD_TOL, 'dz2');
  });

  it('is stable for tiny temperatures (large logits)', () => {
    const rng = mulberry32(2);
    const z1 = randomMatrix(rng, 5, 4);
    const z2 = randomMatrix(rng, 5, 4);
    const got = lossValue(([a, b]) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D, { temperature: 0.005 }), [z1, z2]);
    assert.ok(Number.isFinite(got));
    assertClose(got, ntXentReference(z1, z2, 0.005), 1e-4, 'tau 0.005');
  });

  it('has autodiff gradients equal to central differences of the float64 reference', () => {
    const rng = mulberry32(3);
    const inputs = [randomMatrix(rng, 5, 4), randomMatrix(rng, 5, 4)];
    const tau = 0.3;
    const auto = autodiffGrads(([a, b]) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D, { temperature: tau }), inputs);
    const numeric = numericGrad(([a, b]) => ntXentReference(a as Matrix, b as Matrix, tau), inputs);
    assertGradClose(at(auto, 0), at(numeric, 0), GRAD_TOL, 'dz1');
    assertGradClose(at(auto, 1), at(numeric, 1), GRAD_TOL, 'dz2');
  });

  it('leaks no tensors (forward and gradient)', () => {
    const z1 = tf.randomNormal([6, 3], 0, 1, 'float32', 7) as tf.Tensor2D;
    const z2 = tf.randomNormal([6, 3], 0, 1, 'float32', 8) as tf.Tensor2D;
    assertNoLeak(() => ntXentLoss(z1, z2).dispose(), 'forward');
    assertNoLeak(() => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D))([z1, z2]);
      tf.dispose(g);
    }, 'gradient');
    tf.dispose([z1, z2]);
  });

  it('rejects bad inputs with catalogued errors', () => {
    const a = tf.zeros([3, 2]) as tf.Tensor2D;
    const b = tf.zeros([4, 2]) as tf.Tensor2D;
    const c = tf.zeros([3]) as unknown as tf.Tensor2D;
    assertThrowsCode(() => ntXentLoss(a, b), 'FEDCLR_CONTRASTIVE_SHAPE');
    assertThrowsCode(() => ntXentLoss(c, c), 'FEDCLR_CONTRASTIVE_SHAPE');
    assertThrowsCode(() => ntXentLoss(a, a, { temperature: 0 }), 'FEDCLR_CONTRASTIVE_INVALID_OPTION');
    assertThrowsCode(() => ntXentLoss(a, a, { temperature: Number.NaN }), 'FEDCLR_CONTRASTIVE_INVALID_OPTION');
    tf.dispose([a, b, c]);
  });
});

describe('infoNceLoss', () => {
  it('matches a hand-computed case', () => {
    // q = k = e1, negatives e2 and -e1, tau = 1: logits [1, 0, -1];
    // loss = -1 + log(e + 1 + 1/e) = 0.407606...
    const v = lossValue(
      ([q, k, n]) => infoNceLoss(q as tf.Tensor2D, k as tf.Tensor2D, n as tf.Tensor2D, { temperature: 1 }),
      [
        [[1, 0]],
        [[1, 0]],
        [
          [0, 1],
          [-1, 0],
        ],
      ],
    );
    assertClose(v, Math.log(Math.E + 1 + 1 / Math.E) - 1, 1e-6, 'hand case');
    assertClose(v, 0.407606, 1e-5, 'hand case (decimal)');
  });

  it('matches the reference on random inputs and its gradient matches central differences', () => {
    const rng = mulberry32(4);
    const inputs = [randomMatrix(rng, 4, 3), randomMatrix(rng, 4, 3), randomMatrix(rng, 6, 3)];
    const tau = 0.2;
    const fn = ([q, k, n]: tf.Tensor2D[]) =>
      infoNceLoss(q as tf.Tensor2D, k as tf.Tensor2D, n as tf.Tensor2D, { temperature: tau });
    const ref = ([q, k, n]: Matrix[]) => infoNceReference(q as Matrix, k as Matrix, n as Matrix, tau);
    assertClose(lossValue(fn, inputs), ref(inputs), 1e-5, 'value');
    const auto = autodiffGrads(fn, inputs);
    const numeric = numericGrad(ref, inputs);
    for (let i = 0; i < 3; i++) assertGradClose(at(auto, i), at(numeric, i), GRAD_TOL, `grad input ${i}`);
  });

  it('gives 0 with an empty negative set and leaks nothing', () => {
    const q = tf.ones([2, 3]) as tf.Tensor2D;
    const negs = tf.zeros([0, 3]) as tf.Tensor2D;
    assertNoLeak(() => {
      const loss = infoNceLoss(q, q, negs);
      assert.equal(loss.dataSync()[0], 0);
      loss.dispose();
    }, 'infoNce');
    const wide = tf.zeros([2, 4]) as tf.Tensor2D;
    assertThrowsCode(() => infoNceLoss(q, q, wide), 'FEDCLR_CONTRASTIVE_SHAPE');
    tf.dispose([q, negs, wide]);
  });
});
