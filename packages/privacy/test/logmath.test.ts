// Log-space helpers: log(erfc) against multi-precision values, log_add / log_sub identities and
// their edge cases (zero as -Infinity, overflowed terms, negative differences refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCodes, logAdd, logErfc, logSub } from '../src/index.js';
import { assertRelClose, throwsWithCode } from './helpers.js';

// log(erfc(x)) from mpmath 1.3.0 at 40 digits (`float(mpmath.log(mpmath.erfc(x)))`), rounded to
// doubles; computed for this test, not published.
const LOG_ERFC_MP: [number, number][] = [
  [-30, 0.6931471805599453],
  [-5, 0.6931471805591766],
  [-1, 0.6112323176780705],
  [-0.3, 0.28414589714140825],
  [0.2, -0.2519322337826167],
  [0.5, -0.7350111298370844],
  [1, -1.8496055099332482],
  [3, -10.720363041981113],
  [4.5, -22.34976830343594],
  [10, -102.87988902484489],
  [27, -732.8688865078974], // erfc(27) ~ 1e-318: subnormal; its log is not
  [100, -10005.177585122665], // erfc(100) underflows to 0 in doubles
  [1e4, -100000009.78270532],
];

test('logErfc matches multi-precision log(erfc(x)) to 1e-15 relative, far past erfc underflow', () => {
  for (const [x, expected] of LOG_ERFC_MP) assertRelClose(logErfc(x), expected, 1e-15, `logErfc(${x})`);
  assert.ok(logErfc(0) === 0); // -0 from log1p(-0)
  assert.equal(logErfc(Infinity), -Infinity);
  assert.equal(logErfc(-Infinity), Math.LN2);
  assert.ok(Number.isNaN(logErfc(NaN)));
});

test('logErfc is continuous across Cody intervals (0.46875 and 4)', () => {
  for (const edge of [0.46875, 4, -0.46875, -4]) {
    const below = logErfc(edge - 1e-12);
    const above = logErfc(edge + 1e-12);
    assert.ok(Math.abs(below - above) < 1e-10 * Math.max(1, Math.abs(below)), `jump at ${edge}: ${below} vs ${above}`);
  }
});

test('logAdd and logSub: identities, zero as -Infinity, no overflow', () => {
  assertRelClose(logAdd(Math.log(2), Math.log(3)), Math.log(5), 1e-15, 'log(2 + 3)');
  assertRelClose(logSub(Math.log(5), Math.log(3)), Math.log(2), 1e-15, 'log(5 - 3)');
  assert.equal(logAdd(-Infinity, 1.5), 1.5);
  assert.equal(logAdd(1.5, -Infinity), 1.5);
  assert.equal(logSub(1.5, -Infinity), 1.5);
  assert.equal(logSub(1.5, 1.5), -Infinity);
  assert.equal(logAdd(1000, 1000), 1000 + Math.LN2); // exp(1000) overflows; the log does not
  assert.equal(logSub(1000, 0), 1000); // TF-Privacy's OverflowError branch
  assert.equal(logAdd(Infinity, 3), Infinity);
  assertRelClose(logSub(1e-300, 0), Math.log(Math.expm1(1e-300)), 1e-12, 'tiny difference'); // -690.8
});

test('logSub refuses a negative difference and an undefined one', () => {
  throwsWithCode(() => logSub(1, 2), ErrorCodes.NUMERICAL);
  throwsWithCode(() => logSub(Infinity, Infinity), ErrorCodes.NUMERICAL);
});
