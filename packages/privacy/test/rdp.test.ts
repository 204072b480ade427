// RDP of the sampled Gaussian mechanism: closed forms, composition, TF-Privacy's published test
// values, multi-precision references for log(A_alpha), and numerical robustness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ORDERS, computeRdp, rdpAtOrder, sampledGaussianRdp } from '../src/index.js';
import { logAFrac, logAInt } from '../src/rdp.js';
import { assertAlmostEqual, assertRelClose } from './helpers.js';

// TF-Privacy, tensorflow_privacy/privacy/analysis/rdp_accountant_test.py at ee35642 (2022-04-20,
// the last in-tree implementation); the same cases pass in Opacus, which ports that code.
const TFP_TEST = 'tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py @ee35642';

test('q = 1 is the Gaussian mechanism: alpha / (2 sigma^2) exactly, at integer and fractional orders', () => {
  for (const sigma of [0.5, 1, 1.1, 3, 10]) {
    for (const alpha of [1.5, 2, 2.5, 3, 7.25, 32, 63, 256]) {
      assert.equal(rdpAtOrder(1, sigma, alpha), alpha / (2 * sigma * sigma));
    }
  }
  // TFP_TEST test_compute_rdp_no_sampling: compute_rdp(1, 10, 1, 20) == 0.1 (assertEqual).
  assert.equal(computeRdp({ samplingRate: 1, noiseMultiplier: 10, steps: 1, orders: [20] })[0], 0.1);
});

test('q = 0 spends nothing; sigma = 0 (no noise) is Infinity', () => {
  // TFP_TEST test_compute_rdp_no_data: compute_rdp(0, 10, 1, 20) == 0.
  assert.deepEqual(computeRdp({ samplingRate: 0, noiseMultiplier: 10, steps: 1, orders: [20] }), [0]);
  assert.deepEqual(computeRdp({ samplingRate: 0, noiseMultiplier: 0, orders: [2, 2.5] }), [0, 0]);
  assert.deepEqual(computeRdp({ samplingRate: 0.1, noiseMultiplier: 0, orders: [2, 2.5] }), [Infinity, Infinity]);
  assert.deepEqual(computeRdp({ samplingRate: 0.1, noiseMultiplier: 0, steps: 0, orders: [2] }), [0]);
});

test('T rounds compose to T times the one-round RDP', () => {
  const orders = [1.5, 2, 4.5, 32];
  for (const [q, sigma] of [[0.01, 1.1], [0.3, 2], [1, 4]] as const) {
    const one = computeRdp({ samplingRate: q, noiseMultiplier: sigma, orders });
    const many = computeRdp({ samplingRate: q, noiseMultiplier: sigma, orders, steps: 250 });
    many.forEach((r, i) => assert.equal(r, 250 * (one[i] as number)));
  }
});

test('TF-Privacy test_compute_rdp_scalar: compute_rdp(0.1, 2, 10, 5) = 0.07737 (5 places)', () => {
  // TFP_TEST: assertAlmostEqual(rdp_scalar, 0.07737, places=5)
  const [rdp] = computeRdp({ samplingRate: 0.1, noiseMultiplier: 2, steps: 10, orders: [5] });
  assertAlmostEqual(rdp as number, 0.07737, 5, TFP_TEST);
});

test('TF-Privacy test_compute_rdp_sequence: q = 0.01, sigma = 2.5, 50 steps (rtol 1e-4)', () => {
  // TFP_TEST: compute_rdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, np.inf]) allclose
  // [6.5007e-04, 1.0854e-03, 2.1808e-03, 2.3846e-02, 1.6742e+02, np.inf], rtol=1e-4.
  // The infinite order is not accepted here (orders are finite; its RDP is Infinity for q > 0).
  const orders = [1.5, 2.5, 5, 50, 100];
  const expected = [6.5007e-4, 1.0854e-3, 2.1808e-3, 2.3846e-2, 1.6742e2];
  const rdp = computeRdp({ samplingRate: 0.01, noiseMultiplier: 2.5, steps: 50, orders });
  rdp.forEach((r, i) => assertRelClose(r, expected[i] as number, 1e-4, `${TFP_TEST} order ${orders[i]}`));
});

// TFP_TEST test_compute_log_a_equals_mp compares log(A_alpha) with mpmath quadrature at rtol 1e-4
// for these parameters. The reference values here were computed for this test (not published)
// with mpmath 1.3.0 at 50 digits, rounded to doubles: the same quadrature for fractional orders,
// the exact binomial sum for integer orders (the two agree to all printed digits).
const LOG_A_MP: [q: number, sigma: number, alpha: number, logA: number][] = [
  [1e-7, 0.1, 1.01, 4.003412322526399e-8],
  [1e-6, 0.1, 256, 3260463.2292971606],
  [1e-5, 0.1, 256.1, 3263607.0397884212],
  [1e-6, 1, 27, 8.769511304848498e-10],
  [1e-4, 1, 1.5, 6.4426869538366495e-9],
  [1e-3, 1, 2, 0.0000017182803522145153],
  [0.01, 10, 20, 0.00019129699912842963],
  [0.1, 100, 20.5, 0.00019991818458068295],
  [0.99, 0.1, 256, 3263997.427114021],
  [0.999, 100, 256.1, 3.260108037973113],
];

test('log(A_alpha) equals the multi-precision value at TF-Privacy test_compute_log_a_equals_mp parameters', () => {
  for (const [q, sigma, alpha, expected] of LOG_A_MP) {
    const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
    // TF-Privacy asserts rtol 1e-4. Here: 3e-7 at order 1.01 (cancellation in the alternating
    // series), 2e-9 or better elsewhere (Opacus, with scipy's binom, is 9e-7 off at (1e-6, 1, 27)).
    assertRelClose(logA, expected, alpha === 1.01 ? 1e-6 : 1e-8, `log A(q=${q}, sigma=${sigma}, alpha=${alpha})`);
  }
});

test('numerically safe: tiny q, huge sigma, large orders, q next to 1, tiny sigma give finite RDP >= 0', () => {
  const orders = [...DEFAULT_ORDERS, 128, 256, 256.5, 1024];
  for (const q of [1e-12, 1e-5, 0.04, 0.5, 0.999, 1 - 1e-12, 1 - 2 ** -53]) {
    for (const sigma of [1e-3, 0.1, 1, 100, 1e4, 1e6]) {
      const rdp = computeRdp({ samplingRate: q, noiseMultiplier: sigma, orders });
      rdp.forEach((r, i) => {
        const alpha = orders[i] as number;
        assert.ok(Number.isFinite(r) && r >= 0, `q=${q} sigma=${sigma} alpha=${alpha}: ${r}`);
        assert.ok(r <= alpha / (2 * sigma * sigma), `above the unsampled Gaussian at q=${q} sigma=${sigma} alpha=${alpha}`);
      });
    }
  }
  // Past ~1e-100 the plain Gaussian's bound is returned: the series equals it to 1e-15 there.
  assert.equal(sampledGaussianRdp(0.01, 1e-160, 2.5), 2.5 / (2 * 1e-160 * 1e-160));
});

test('RDP increases with q and with the order, decreases with sigma', () => {
  const orders = [1.5, 2, 3.5, 8, 32];
  const at = (q: number, sigma: number) => computeRdp({ samplingRate: q, noiseMultiplier: sigma, orders });
  for (const sigma of [0.7, 1.5, 5]) {
    let previous = at(0.001, sigma);
    for (const q of [0.01, 0.1, 0.5, 0.9, 1]) {
      const current = at(q, sigma);
      current.forEach((r, i) => assert.ok(r > (previous[i] as number), `q=${q} sigma=${sigma} order ${orders[i]}`));
      for (let i = 1; i < current.length; i++) assert.ok((current[i] as number) > (current[i - 1] as number));
      previous = current;
    }
  }
  for (const q of [0.01, 0.3]) {
    let previous = at(q, 0.5);
    for (const sigma of [0.8, 1.2, 2, 10]) {
      const current = at(q, sigma);
      current.forEach((r, i) => assert.ok(r < (previous[i] as number), `q=${q} sigma=${sigma} order ${orders[i]}`));
      previous = current;
    }
  }
});

test('large fractional orders: the series is not cut at a tiny first term (TF-Privacy and Opacus go negative)', () => {
  // RDP from mpmath 1.3.0 quadrature at 50 digits (computed for this test). TF-Privacy @ee35642
  // and Opacus return -0.6830054166428398, -0.3602596167421368 and -0.10556690256410999 here:
  // they stop at i = 0 because (1-q)^alpha and q^alpha are both below e^-30. The default orders
  // (fractional ones <= 10.9) are not affected.
  const cases: [q: number, sigma: number, alpha: number, rdp: number, rtol: number][] = [
    [0.5, 100, 256.1, 0.003221837051034987, 1e-12],
    [0.3, 10, 100.5, 0.05806289750480142, 1e-12],
    [0.1, 1e5, 511.5, 2.557500011854013e-10, 1e-6], // RDP ~ 1e-10: rounding-limited
  ];
  for (const [q, sigma, alpha, expected, rtol] of cases) {
    assertRelClose(rdpAtOrder(q, sigma, alpha), expected, rtol, `q=${q} sigma=${sigma} alpha=${alpha}`);
  }
});

test('fractional orders lie between the neighbouring integer orders (RDP is monotone in the order)', () => {
  // The integer series is a finite sum; this checks the fractional one, which has the stopping rule.
  for (const q of [1e-6, 0.01, 0.1, 0.3, 0.5, 0.7, 0.99]) {
    for (const sigma of [0.3, 0.8, 2, 10, 100, 1e4]) {
      for (const alpha of [1.5, 3.7, 10.9, 44.5, 100.5, 256.1, 1000.5]) {
        const lo = Math.floor(alpha) > 1 ? rdpAtOrder(q, sigma, Math.floor(alpha)) : 0;
        const mid = rdpAtOrder(q, sigma, alpha);
        const hi = rdpAtOrder(q, sigma, Math.ceil(alpha));
        const slack = 1e-12 * hi + 1e-14; // rounding where RDP ~ 0
        assert.ok(lo <= mid + slack && mid <= hi + slack, `q=${q} sigma=${sigma} alpha=${alpha}: ${lo} ${mid} ${hi}`);
      }
    }
  }
});
