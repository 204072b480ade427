// RDP -> (epsilon, delta): published epsilons of TF-Privacy and Opacus under the conversion
// each used at the time, the soundness check against the exact Gaussian curve, monotonicity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ORDERS, computeRdp, epsilonFromRdp, logErfc, type Conversion } from '../src/index.js';
import { assertAlmostEqual, assertPrinted, range } from './helpers.js';

const TFP_TEST = 'tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py';
const TFP_CLI_TEST = 'tensorflow/privacy tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py';

/** TF-Privacy's compute_dp_sgd_privacy (compute_dp_sgd_privacy_lib.py @943ef91, 2022-01-28). */
function computeDpSgdPrivacy(n: number, batchSize: number, sigma: number, epochs: number, delta: number, conversion: Conversion) {
  const orders = [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, ...range(5, 64), 128, 256, 512];
  const q = batchSize / n;
  const steps = Math.ceil((epochs * n) / batchSize);
  const rdp = computeRdp({ samplingRate: q, noiseMultiplier: sigma, steps, orders });
  return epsilonFromRdp(orders, rdp, delta, conversion);
}

test('TF-Privacy test_get_privacy_spent_check_target_delta: constant RDP 1.1 -> eps 1.32783806176 at order 32', () => {
  // TFP_TEST @ee35642: orders range(2, 33), rdp 1.1, delta 1e-5; assertAlmostEqual (7 places), order 32.
  const orders = range(2, 33);
  const spent = epsilonFromRdp(orders, orders.map(() => 1.1), 1e-5);
  assert.equal(spent.order, 32);
  assertAlmostEqual(spent.epsilon, 1.32783806176, 7, TFP_TEST);
});

test('TF-Privacy: the Gaussian with sigma 4.530877117 is exactly (1, 1e-6)-DP over fine orders', () => {
  // TFP_TEST @ee35642: orders 0.001 * i for i in range(1000, 100000); compute_rdp(1, 4.530877117, 1,
  // orders); eps at delta 1e-6 assertAlmostEqual 1 (7 places). Order 1.0 itself is not an RDP
  // order (the conversion divides by alpha - 1; TF-Privacy skips orders <= 1.01), so it is left out.
  const orders = range(1001, 100000).map((i) => 0.001 * i);
  const rdp = computeRdp({ samplingRate: 1, noiseMultiplier: 4.530877117, orders });
  assertAlmostEqual(epsilonFromRdp(orders, rdp, 1e-6).epsilon, 1, 7, TFP_TEST);
});

test('Opacus rdp.py docstring: [(1e-5, 1.0, 10), (1e-4, 3.0, 4)], orders 2..32, delta 1e-5 -> (0.336, 23)', () => {
  // pytorch/opacus opacus/accountants/analysis/rdp.py module docstring (doctest +NUMBER: 3 digits).
  const orders = range(2, 33);
  const rdp = orders.map(() => 0);
  for (const [q, sigma, steps] of [[1e-5, 1.0, 10], [1e-4, 3.0, 4]] as const) {
    computeRdp({ samplingRate: q, noiseMultiplier: sigma, steps, orders }).forEach((r, i) => (rdp[i] = (rdp[i] as number) + r));
  }
  const spent = epsilonFromRdp(orders, rdp, 1e-5);
  assertPrinted(spent.epsilon, '0.336', 'opacus rdp.py docstring');
  assert.equal(spent.order, 23);
});

test('TF-Privacy compute_dp_sgd_privacy (Balle et al. conversion): 3 published epsilons and orders', () => {
  // TFP_CLI_TEST @943ef91 (and unchanged at be8175b): assertAlmostEqual (7 places), assertEqual order.
  const cases = [
    [60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19],
    [100000, 100, 1.0, 30, 1e-7, 1.4154988495444845, 13],
    [100000000, 1024, 0.1, 10, 1e-7, 5907982.31138195, 1.25], // 7 places here is 1e-14 relative
  ] as const;
  for (const [n, batch, sigma, epochs, delta, eps, order] of cases) {
    const spent = computeDpSgdPrivacy(n, batch, sigma, epochs, delta, 'balle2020');
    assertAlmostEqual(spent.epsilon, eps, 7, `${TFP_CLI_TEST} n=${n}`);
    assert.equal(spent.order, order);
  }
});

test('Classic Mironov conversion: TF-Privacy values from before the Balle et al. switch (be8175b^, 2020)', () => {
  // TFP_CLI_TEST @be8175b^: assertAlmostEqual (7 places) and order.
  const cases = [
    [60000, 150, 1.3, 15, 1e-5, 0.941870567, 19],
    [100000, 100, 1.0, 30, 1e-7, 1.70928734, 13],
    [100000000, 1024, 0.1, 10, 1e-7, 5907984.81339406, 1.25],
  ] as const;
  for (const [n, batch, sigma, epochs, delta, eps, order] of cases) {
    const spent = computeDpSgdPrivacy(n, batch, sigma, epochs, delta, 'mironov2017');
    assertAlmostEqual(spent.epsilon, eps, 7, `${TFP_CLI_TEST} n=${n}`);
    assert.equal(spent.order, order);
  }

  // TFP_TEST @be8175b^ test_get_privacy_spent_check_target_delta: compute_rdp(0.01, 4, 10000,
  // range(2, 33)), delta 1e-5 -> eps 1.258575 (5 places), order 20.
  const orders = range(2, 33);
  const rdp = computeRdp({ samplingRate: 0.01, noiseMultiplier: 4, steps: 10000, orders });
  const spent = epsilonFromRdp(orders, rdp, 1e-5, 'mironov2017');
  assertAlmostEqual(spent.epsilon, 1.258575, 5, TFP_TEST);
  assert.equal(spent.order, 20);
});

test('TF-Privacy test_check_composition: heterogeneous rounds, 8.509656 at order 2.5 (old) and below it (new)', () => {
  // TFP_TEST: (q=1e-4, sigma=.4, 40000 steps) + (q=0.1, sigma=2, 100 steps), delta 1e-5.
  // @be8175b^: assertAlmostEqual(eps, 8.509656, places=5), order 2.5; @ee35642: eps <= 8.509656.
  const orders = [1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 64, 256];
  const first = computeRdp({ samplingRate: 1e-4, noiseMultiplier: 0.4, steps: 40000, orders });
  const second = computeRdp({ samplingRate: 0.1, noiseMultiplier: 2, steps: 100, orders });
  const rdp = first.map((r, i) => r + (second[i] as number));
  const old = epsilonFromRdp(orders, rdp, 1e-5, 'mironov2017');
  assertAlmostEqual(old.epsilon, 8.509656, 5, TFP_TEST);
  assert.equal(old.order, 2.5);
  assert.ok(epsilonFromRdp(orders, rdp, 1e-5).epsilon <= 8.509656);
});

test('TF-Privacy MNIST tutorial README figures (2019, Mironov conversion): 1.03, 1.11, 3.01, 1.19, 7.10', () => {
  // tensorflow/privacy tutorials/README.md @ee35642 (text unchanged since d435fcb, 2019):
  // mnist_dpsgd_tutorial.py's compute_epsilon: q = 256 / 60000, steps = epoch * (60000 // 256),
  // orders [1 + x / 10. for x in range(1, 100)] + range(12, 64), delta 1e-5, printed '%.2f'.
  const tutorial = (sigma: number, epochs: number) =>
    epsilonFromRdp(
      DEFAULT_ORDERS,
      computeRdp({ samplingRate: 256 / 60000, noiseMultiplier: sigma, steps: epochs * Math.floor(60000 / 256), orders: DEFAULT_ORDERS }),
      1e-5,
      'mironov2017',
    ).epsilon;
  assert.equal(tutorial(1.1, 1).toFixed(2), '1.03');
  assert.equal(tutorial(1.1, 2).toFixed(2), '1.11');
  assert.equal(tutorial(1.1, 60).toFixed(2), '3.01');
  assert.equal(tutorial(1.3, 15).toFixed(2), '1.19'); // table row: noise 1.3, 15 epochs
  assert.equal(tutorial(0.7, 45).toFixed(2), '7.10'); // table row: noise 0.7, 45 epochs
  // Same README: `compute_dp_sgd_privacy.py --N=60000 --batch_size=256 --noise_multiplier=1.1
  // --epochs=60 --delta=1e-5` -> "eps = 3.01" ('{:.3g}', ceil steps, the script's own orders).
  assertPrinted(computeDpSgdPrivacy(60000, 256, 1.1, 60, 1e-5, 'mironov2017').epsilon, '3.01', 'tutorials/README.md');
});

test('sound: never below the exact (eps, delta) curve of the Gaussian mechanism (Balle and Wang 2018)', () => {
  // As TF-Privacy's test_get_privacy_spent_gaussian: for sigma = 1 without sampling, the exact
  // delta at eps is Phi(1/(2s) - eps s) - e^eps Phi(-1/(2s) - eps s); the RDP bound's eps at delta
  // must be at least the exact one, i.e. exact delta(eps_rdp) <= delta.
  const orders = range(11, 505).map((x) => 0.1 * x);
  for (const sigma of [0.5, 1, 3]) {
    const rdp = computeRdp({ samplingRate: 1, noiseMultiplier: sigma, orders });
    for (const delta of [0.5, 0.1, 1e-3, 1e-5, 1e-8]) {
      const { epsilon } = epsilonFromRdp(orders, rdp, delta);
      assert.ok(exactGaussianDelta(epsilon, sigma) <= delta, `sigma ${sigma} delta ${delta}: eps ${epsilon}`);
    }
  }
});

function normalCdf(x: number): number {
  return 0.5 * Math.exp(logErfc(-x / Math.SQRT2));
}

function exactGaussianDelta(eps: number, sigma: number): number {
  return normalCdf(1 / (2 * sigma) - eps * sigma) - Math.exp(eps) * normalCdf(-1 / (2 * sigma) - eps * sigma);
}

test('epsilon falls as delta grows; Balle et al. is never above Mironov; all-Infinity RDP gives Infinity', () => {
  const rdp = computeRdp({ samplingRate: 0.04, noiseMultiplier: 1.2, steps: 500, orders: DEFAULT_ORDERS });
  let previous = Infinity;
  for (const delta of [1e-12, 1e-9, 1e-6, 1e-5, 1e-3, 0.1, 0.5, 0.9]) {
    const balle = epsilonFromRdp(DEFAULT_ORDERS, rdp, delta).epsilon;
    assert.ok(balle < previous, `delta ${delta}`);
    assert.ok(balle <= epsilonFromRdp(DEFAULT_ORDERS, rdp, delta, 'mironov2017').epsilon);
    previous = balle;
  }
  assert.deepEqual(epsilonFromRdp([2, 3], [Infinity, Infinity], 1e-5), { epsilon: Infinity, order: 2 });
  assert.deepEqual(epsilonFromRdp([2, 3], [Infinity, 0.5], 1e-5).order, 3);
  // Nothing spent: eps 0 (TF-Privacy's KL shortcut; Opacus's formula alone would give ~0.1 here).
  assert.deepEqual(epsilonFromRdp([2, 3], [0, 0], 1e-5), { epsilon: 0, order: 2 });
});
