// RdpAccountant: Opacus's published accountant epsilon, budget checks before a round, JSON state
// round trips and refusals of corrupted state, monotonicity of the spent epsilon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACCOUNTANT_STATE_VERSION, DEFAULT_ORDERS, ErrorCodes, RdpAccountant, computeRdp } from '../src/index.js';
import { assertAlmostEqual, assertRelClose, throwsWithCode } from './helpers.js';

test('default orders are Opacus DEFAULT_ALPHAS: 1.1..10.9 step 0.1, then 12..63', () => {
  assert.equal(DEFAULT_ORDERS.length, 151);
  assert.equal(DEFAULT_ORDERS[0], 1.1);
  assert.equal(DEFAULT_ORDERS[98], 10.9);
  assert.equal(DEFAULT_ORDERS[99], 12);
  assert.equal(DEFAULT_ORDERS[150], 63);
  assert.ok(Object.isFrozen(DEFAULT_ORDERS));
});

test('Opacus test_rdp_accountant: sigma 1.5, q 0.04, int(90 / 0.04) = 2250 steps, delta 1e-5 -> 7.32911117143', () => {
  // pytorch/opacus opacus/tests/accountants_test.py AccountingTest.test_rdp_accountant:
  // assertAlmostEqual(epsilon, 7.32911117143) (7 places), default alphas.
  const accountant = new RdpAccountant();
  for (let i = 0; i < 2250; i++) accountant.step(1.5, 0.04);
  const spent = accountant.epsilon(1e-5);
  assertAlmostEqual(spent.epsilon, 7.32911117143, 7, 'opacus accountants_test.py');
  assert.equal(spent.order, 3.9);
  // step(count) is the same composition in one call.
  const batched = new RdpAccountant();
  batched.step(1.5, 0.04, 2250);
  assertAlmostEqual(batched.epsilon(1e-5).epsilon, 7.32911117143, 7, 'step(count)');
});

test('stepping T times adds up to computeRdp with T steps (composition), heterogeneous rounds add', () => {
  const orders = [1.5, 2, 4.5, 32];
  for (const [q, sigma] of [[0.01, 1.1], [0.3, 2], [1, 4]] as const) {
    const accountant = new RdpAccountant(orders);
    for (let t = 0; t < 250; t++) accountant.step(sigma, q);
    const composed = computeRdp({ samplingRate: q, noiseMultiplier: sigma, orders, steps: 250 });
    accountant.rdp.forEach((r, i) => assertRelClose(r, composed[i] as number, 1e-12, `order ${orders[i]}`));
  }
  const mixed = new RdpAccountant(orders);
  mixed.step(1.1, 0.01, 10);
  mixed.step(2, 0.3, 5);
  const a = computeRdp({ samplingRate: 0.01, noiseMultiplier: 1.1, orders, steps: 10 });
  const b = computeRdp({ samplingRate: 0.3, noiseMultiplier: 2, orders, steps: 5 });
  assert.deepEqual(mixed.rdp, a.map((r, i) => r + (b[i] as number)));
});

test('a fresh accountant has spent nothing', () => {
  assert.deepEqual(new RdpAccountant().epsilon(1e-5), { epsilon: 0, order: 1.1 });
});

test('wouldExceed looks one round (or count rounds) ahead and changes nothing', () => {
  const accountant = new RdpAccountant();
  accountant.step(1.1, 0.01, 999);
  const before = accountant.rdp;
  const now = accountant.epsilon(1e-5).epsilon;
  const ahead = RdpAccountant.fromJSON(accountant.toJSON());
  ahead.step(1.1, 0.01);
  const next = ahead.epsilon(1e-5).epsilon;
  assert.ok(now < next);
  // A budget between the two: round 999 was allowed, round 1000 would exceed it.
  assert.equal(accountant.wouldExceed((now + next) / 2, 1e-5, 1.1, 0.01), true);
  assert.equal(accountant.wouldExceed(next, 1e-5, 1.1, 0.01), false, 'reaching the budget exactly is allowed');
  assert.equal(accountant.wouldExceed(next, 1e-5, 1.1, 0.01, 2), true);
  assert.deepEqual(accountant.rdp, before, 'wouldExceed must not spend');

  const fresh = new RdpAccountant();
  assert.equal(fresh.wouldExceed(1e9, 1e-5, 0, 0.01), true, 'a round without noise exceeds any budget');
  assert.equal(fresh.wouldExceed(1e-9, 1e-5, 0, 0), false, 'a round sampling nobody spends nothing');
});

test('epsilon grows with rounds and with q, falls with sigma and with delta', () => {
  const eps = (sigma: number, q: number, rounds: number, delta = 1e-5) => {
    const accountant = new RdpAccountant();
    accountant.step(sigma, q, rounds);
    return accountant.epsilon(delta).epsilon;
  };
  const increasing = (values: number[], what: string) =>
    values.slice(1).forEach((v, i) => assert.ok(v > (values[i] as number), `${what}: ${values.join(', ')}`));
  increasing([1, 10, 100, 1000, 10000].map((t) => eps(1.0, 0.01, t)), 'rounds');
  increasing([0.001, 0.01, 0.05, 0.2, 0.6, 1].map((q) => eps(1.0, q, 100)), 'q');
  increasing([8, 4, 2, 1, 0.7, 0.5].map((s) => eps(s, 0.05, 100)), 'decreasing sigma');
  increasing([0.5, 0.1, 1e-3, 1e-5, 1e-8, 1e-12].map((d) => eps(1.0, 0.05, 100, d)), 'decreasing delta');
});

test('state round-trips through JSON, including an infinite RDP, and resumes accounting', () => {
  const accountant = new RdpAccountant([1.5, 2, 8, 32]);
  accountant.step(1.2, 0.02, 300);
  const text = JSON.stringify(accountant);
  const restored = RdpAccountant.fromJSON(JSON.parse(text));
  assert.deepEqual(restored.orders, accountant.orders);
  assert.deepEqual(restored.rdp, accountant.rdp);
  assert.deepEqual(restored.epsilon(1e-6), accountant.epsilon(1e-6));
  restored.step(1.2, 0.02);
  accountant.step(1.2, 0.02);
  assert.deepEqual(restored.rdp, accountant.rdp);

  accountant.step(0, 0.02); // a round without noise: no privacy left
  const state = JSON.parse(JSON.stringify(accountant.toJSON()));
  assert.deepEqual(state.rdp, ['Infinity', 'Infinity', 'Infinity', 'Infinity']);
  assert.equal(state.version, ACCOUNTANT_STATE_VERSION);
  assert.equal(RdpAccountant.fromJSON(state).epsilon(1e-5).epsilon, Infinity);
});

test('corrupted state is refused with FEDCLR_PRIVACY_STATE_INVALID naming the field', () => {
  const good = new RdpAccountant([2, 4]).toJSON();
  const corrupt: [unknown, RegExp][] = [
    [null, /state is not an object/],
    [[1, 2], /state is not an object/],
    [{ ...good, version: 2 }, /version is 2/],
    [{ ...good, orders: [] }, /orders is not a non-empty array/],
    [{ ...good, orders: [2, 1] }, /orders\[1\] is 1/],
    [{ ...good, orders: [2, '4'] }, /orders\[1\]/],
    [{ ...good, rdp: [0] }, /rdp is not an array of 2/],
    [{ ...good, rdp: [0, -1] }, /rdp\[1\] is -1/],
    [{ ...good, rdp: [0, null] }, /rdp\[1\] is null/],
    [{ ...good, rdp: [0, 'inf'] }, /rdp\[1\]/],
    [{ orders: [2, 4], rdp: [0, 0] }, /version/],
  ];
  for (const [state, message] of corrupt) {
    const err = throwsWithCode(() => RdpAccountant.fromJSON(state), ErrorCodes.STATE_INVALID);
    assert.match(err.message, message);
  }
});
