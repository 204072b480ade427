import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ntXentLoss, supConLoss, type SupConContrastMode } from '../src/losses/index.js';
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
  randomLabels,
  randomMatrix,
  type Matrix,
} from './losses-helpers.js';

before(async () => {
  await tf.setBackend('cpu');
});

/**
 * SupCon from the definition. views[v] is the [N, D] matrix of view v. Rows are stacked
 * view-major; anchors without positives are skipped (the documented choice).
 */
function supConReference(
  views: Matrix[],
  labels: number[] | undefined,
  tau: number,
  baseTau: number,
  mode: SupConContrastMode,
): number {
  const n = at(views, 0).length;
  const rows: number[][] = [];
  const rowLabel: number[] = [];
  views.forEach((m) => {
    normalizeRows(m).forEach((r, i) => {
      rows.push(r);
      rowLabel.push(labels === undefined ? i : at(labels, i));
    });
  });
  const numAnchors = mode === 'all' ? rows.length : n;
  let total = 0;
  let count = 0;
  for (let a = 0; a < numAnchors; a++) {
    const logits: number[] = [];
    const positives: number[] = [];
    for (let j = 0; j < rows.length; j++) {
      if (j === a) continue;
      const s = dot(at(rows, a), at(rows, j)) / tau;
      logits.push(s);
      if (at(rowLabel, j) === at(rowLabel, a)) positives.push(s);
    }
    if (positives.length === 0) continue;
    const lse = logSumExp(logits);
    const meanLogProb = positives.reduce((acc, s) => acc + (s - lse), 0) / positives.length;
    total += -(tau / baseTau) * meanLogProb;
    count++;
  }
  return count === 0 ? 0 : total / count;
}

/** The tfjs loss on V view matrices stacked to [N, V, D] (or [N, D] when V = 1 and flat). */
function supConOnViews(
  labels: number[] | undefined,
  options: { temperature: number; baseTemperature: number; contrastMode: SupConContrastMode },
  flat = false,
) {
  return (xs: tf.Tensor2D[]): tf.Scalar =>
    tf.tidy(() => {
      const features = flat ? at(xs, 0) : (tf.stack(xs, 1) as tf.Tensor3D);
      return supConLoss(features, labels, options);
    });
}

describe('supConLoss', () => {
  it('matches a hand-computed case', () => {
    // f0 = f1 = e1 (class 0), f2 = e2 (class 1), tau = baseTau = 1, one view.
    // Anchor 0: positive f1 (sim 1); denominator over j != 0: e^1 + e^0 -> l0 = log(1 + e) - 1.
    // Anchor 1: the same. Anchor 2 has no positive: excluded.
    // loss = log(1 + e) - 1 = 0.313262...
    const f: Matrix = [
      [1, 0],
      [1, 0],
      [0, 1],
    ];
    const v = lossValue(supConOnViews([0, 0, 1], { temperature: 1, baseTemperature: 1, contrastMode: 'all' }, true), [f]);
    assertClose(v, Math.log(1 + Math.E) - 1, 1e-6, 'hand case');
    assertClose(v, 0.313262, 1e-5, 'hand case (decimal)');
  });

  it('matches the reference on random inputs: views 1-3, modes all/one, with and without labels', () => {
    const rng = mulberry32(11);
    const n = 6;
    const d = 4;
    for (const numViews of [1, 2, 3]) {
      for (const mode of ['all', 'one'] as const) {
        for (const withLabels of [true, false]) {
          const views = Array.from({ length: numViews }, () => randomMatrix(rng, n, d));
          const labels = withLabels ? randomLabels(rng, n, 3) : undefined;
          const opts = { temperature: 0.2, baseTemperature: 0.07, contrastMode: mode };
          const got = lossValue(supConOnViews(labels, opts, numViews === 1), views);
          const want = supConReference(views, labels, 0.2, 0.07, mode);
          assertClose(got, want, 1e-5, `V=${numViews} mode=${mode} labels=${withLabels}`);
        }
      }
    }
  });

  it('equals NT-Xent for two views, no labels, mode all, temperature = baseTemperature', () => {
    const rng = mulberry32(12);
    const views = [randomMatrix(rng, 5, 3), randomMatrix(rng, 5, 3)];
    const sup = lossValue(supConOnViews(undefined, { temperature: 0.5, baseTemperature: 0.5, contrastMode: 'all' }), views);
    const nt = lossValue(([a, b]) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D, { temperature: 0.5 }), views);
    assertClose(sup, nt, 1e-5, 'SupCon(no labels) vs NT-Xent');
  });

  it('excludes anchors without positives; all excluded gives 0 with a zero gradient', () => {
    const rng = mulberry32(13);
    const f = randomMatrix(rng, 4, 3);
    const fn = supConOnViews([0, 1, 2, 3], { temperature: 0.1, baseTemperature: 0.1, contrastMode: 'all' }, true);
    assert.equal(lossValue(fn, [f]), 0);
    const [g] = autodiffGrads(fn, [f]);
    assert.ok((g as Matrix).every((row) => row.every((v) => v === 0)));
    // One class occurring once among others: its anchor is skipped, the rest averaged.
    const labels = [0, 0, 1, 1, 2];
    const f2 = randomMatrix(rng, 5, 3);
    const opts = { temperature: 0.1, baseTemperature: 0.1, contrastMode: 'all' as const };
    assertClose(lossValue(supConOnViews(labels, opts, true), [f2]), supConReference([f2], labels, 0.1, 0.1, 'all'), 1e-5, 'partial');
  });

  it('accepts labels as an int32 tensor', () => {
    const rng = mulberry32(14);
    const f = randomMatrix(rng, 5, 3);
    const labels = [1, 0, 1, 0, 1];
    const ft = tf.tensor2d(f);
    const lt = tf.tensor1d(labels, 'int32');
    const loss = supConLoss(ft, lt, { temperature: 0.3 });
    assertClose(loss.dataSync()[0] ?? Number.NaN, supConReference([f], labels, 0.3, 0.07, 'all'), 1e-5, 'tensor labels');
    tf.dispose([ft, lt, loss]);
  });

  it('has autodiff gradients equal to central differences of the reference (3 views, both modes)', () => {
    const rng = mulberry32(15);
    const views = [randomMatrix(rng, 4, 3), randomMatrix(rng, 4, 3), randomMatrix(rng, 4, 3)];
    const labels = [0, 1, 0, 2];
    for (const mode of ['all', 'one'] as const) {
      const opts = { temperature: 0.5, baseTemperature: 0.25, contrastMode: mode };
      const auto = autodiffGrads(supConOnViews(labels, opts), views);
      const numeric = numericGrad((vs) => supConReference(vs, labels, 0.5, 0.25, mode), views);
      for (let v = 0; v < 3; v++) assertGradClose(at(auto, v), at(numeric, v), GRAD_TOL, `mode ${mode} view ${v}`);
    }
  });

  it('leaks no tensors and rejects bad input', () => {
    const f = tf.randomNormal([6, 2, 3], 0, 1, 'float32', 3) as tf.Tensor3D;
    const labels = [0, 1, 2, 0, 1, 2];
    assertNoLeak(() => supConLoss(f, labels).dispose(), 'forward');
    assertNoLeak(() => tf.dispose(tf.grad((x: tf.Tensor) => supConLoss(x as tf.Tensor3D, labels))(f)), 'gradient');
    assertThrowsCode(() => supConLoss(f, [0, 1]), 'FEDCLR_CONTRASTIVE_INVALID_LABELS');
    assertThrowsCode(() => supConLoss(f, [0, 1, 2, 0, 1, 2.5]), 'FEDCLR_CONTRASTIVE_INVALID_LABELS');
    assertThrowsCode(
      () => supConLoss(f, labels, { contrastMode: 'some' as SupConContrastMode }),
      'FEDCLR_CONTRASTIVE_INVALID_OPTION',
    );
    assertThrowsCode(() => supConLoss(f, labels, { baseTemperature: -1 }), 'FEDCLR_CONTRASTIVE_INVALID_OPTION');
    const flat = tf.zeros([6]) as unknown as tf.Tensor2D;
    assertThrowsCode(() => supConLoss(flat, labels), 'FEDCLR_CONTRASTIVE_SHAPE');
    tf.dispose([f, flat]);
  });
});
