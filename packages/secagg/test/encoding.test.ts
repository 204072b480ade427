// Fixed-point encoding: derived scale cannot wrap, bound holds, errors are clear, seeded runs
// are reproducible, stochastic rounding is unbiased.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ErrorCodes,
  decodeFixedPointSum,
  deriveFixedPoint,
  encodeFixedPoint,
  preQuantized,
  weightedMean,
  type FixedPointParams,
} from '../src/index.js';
import { plainSum, seededFloats, seededWords } from './helpers.js';

function sumOf(params: FixedPointParams, vectors: readonly Uint32Array[]) {
  return decodeFixedPointSum(plainSum(vectors, params.length), params, vectors.length);
}

test('derived scale is the largest power of two that cannot wrap', () => {
  for (const [clip, n] of [[1, 100], [0.01, 1000], [3.7, 7], [1e-6, 50], [1000, 10]] as const) {
    const p = deriveFixedPoint({ dimension: 4, clip, cohortSize: n });
    assert.equal(Math.log2(p.scale) % 1, 0);
    assert.ok(n * Math.ceil(clip * p.scale) <= 2 ** 31 - 1, 'no wrap');
    assert.ok(n * Math.ceil(clip * p.scale * 2) > 2 ** 31 - 1, 'maximal');
    assert.equal(p.sumErrorBound, n / p.scale);
    assert.ok(n * Math.ceil(p.maxWeight * p.weightScale) <= 2 ** 32 - 1);
  }
});

test('n extreme vectors (all +c or all -c, max weight) sum without wrap and decode within the bound', () => {
  const n = 37;
  const p = deriveFixedPoint({ dimension: 3, clip: 0.75, cohortSize: n, maxWeight: 500 });
  for (const sign of [1, -1]) {
    const vectors = Array.from({ length: n }, (_, i) =>
      encodeFixedPoint([sign * 10, sign * 0.75, sign * 0.7499], 500, p, seededWords(`extreme-${sign}-${i}`)),
    );
    const decoded = sumOf(p, vectors);
    assert.ok(Math.abs((decoded.values[0] as number) - sign * 0.75 * n) < decoded.valueErrorBound);
    assert.ok(Math.abs((decoded.values[1] as number) - sign * 0.75 * n) < decoded.valueErrorBound);
    assert.ok(Math.abs((decoded.values[2] as number) - sign * 0.7499 * n) < decoded.valueErrorBound);
    assert.equal(decoded.weight, 500 * n);
  }
});

test('random data: decoded sum and weighted mean within their bounds', () => {
  const n = 20;
  const p = deriveFixedPoint({ dimension: 500, clip: 0.5, cohortSize: n, maxWeight: 1000 });
  const exact = new Float64Array(p.dimension);
  const vectors: Uint32Array[] = [];
  let weight = 0;
  const weighted = new Float64Array(p.dimension);
  for (let u = 0; u < n; u++) {
    const x = seededFloats(`enc-${u}`, p.dimension, 0.8);
    const w = 10 + 47 * u;
    vectors.push(encodeFixedPoint(x, w, p, seededWords(`sr-${u}`)));
    const z = preQuantized(x, w, p);
    for (let i = 0; i < exact.length; i++) {
      exact[i] = (exact[i] as number) + (z[i] as number);
      const clipped = Math.max(-0.5, Math.min(0.5, x[i] as number));
      weighted[i] = (weighted[i] as number) + w * clipped;
    }
    weight += w;
  }
  const decoded = sumOf(p, vectors);
  for (let i = 0; i < exact.length; i++) {
    assert.ok(Math.abs((decoded.values[i] as number) - (exact[i] as number)) < decoded.valueErrorBound);
  }
  assert.equal(decoded.weight, weight, 'integer weights with a power-of-two scale are exact');
  const { mean, errorBound } = weightedMean(decoded, p);
  for (let i = 0; i < mean.length; i++) {
    assert.ok(Math.abs((mean[i] as number) - (weighted[i] as number) / weight) <= errorBound * (1 + 1e-9));
  }
});

test('stochastic rounding is unbiased: the mean of many encodings approaches the value', () => {
  const p = deriveFixedPoint({ dimension: 1, clip: 1, cohortSize: 1, scale: 4, weighted: false });
  let sum = 0;
  const trials = 20000;
  const words = seededWords('unbiased');
  for (let i = 0; i < trials; i++) sum += (encodeFixedPoint([0.3], 1, p, words)[0] as number) | 0;
  // 0.3 * 4 = 1.2: values 1 or 2, mean 1.2; std of the mean ~ 0.4/sqrt(20000) = 0.003.
  assert.ok(Math.abs(sum / trials - 1.2) < 0.015, `mean ${sum / trials}`);
});

test('seeded encoding is deterministic; different seeds round differently', () => {
  const p = deriveFixedPoint({ dimension: 1000, clip: 1, cohortSize: 10 });
  const x = seededFloats('det', 1000, 1);
  assert.deepEqual(encodeFixedPoint(x, 1, p, seededWords('a')), encodeFixedPoint(x, 1, p, seededWords('a')));
  assert.notDeepEqual(encodeFixedPoint(x, 1, p, seededWords('a')), encodeFixedPoint(x, 1, p, seededWords('b')));
});

test('parameters that cannot satisfy no-wrap throw ENCODING_NO_WRAP with a way out', () => {
  const tooFine = () => deriveFixedPoint({ dimension: 10, clip: 1, cohortSize: 100, scale: 2 ** 25 });
  assert.throws(tooFine, (err: Error & { code: string }) => {
    assert.equal(err.code, ErrorCodes.ENCODING_NO_WRAP);
    assert.match(err.message, /use scale <= 16777216/);
    return true;
  });
  assert.throws(() => deriveFixedPoint({ dimension: 10, clip: 1, cohortSize: 100, maxSumError: 1e-9 }), {
    code: ErrorCodes.ENCODING_NO_WRAP,
  });
  assert.throws(() => deriveFixedPoint({ dimension: 10, clip: 1, cohortSize: 2 ** 31 }), { code: ErrorCodes.ENCODING_NO_WRAP });
  assert.throws(() => deriveFixedPoint({ dimension: 10, clip: 1, cohortSize: 10, maxWeight: 2 ** 30, weightScale: 4 }), {
    code: ErrorCodes.ENCODING_NO_WRAP,
  });
  assert.throws(() => deriveFixedPoint({ dimension: 10, clip: 1, cohortSize: 10, scale: 3 }), { code: ErrorCodes.CONFIG_INVALID });
  assert.throws(() => deriveFixedPoint({ dimension: 10, clip: 0, cohortSize: 10 }), { code: ErrorCodes.CONFIG_INVALID });
  // A reachable precision passes.
  const ok = deriveFixedPoint({ dimension: 10, clip: 1, cohortSize: 100, maxSumError: 1e-5 });
  assert.ok(ok.sumErrorBound <= 1e-5);
});

test('invalid inputs to encode/decode are refused', () => {
  const p = deriveFixedPoint({ dimension: 3, clip: 1, cohortSize: 4, maxWeight: 10 });
  const words = seededWords('invalid');
  assert.throws(() => encodeFixedPoint([0, Number.NaN, 0], 1, p, words), { code: ErrorCodes.ENCODING_INPUT });
  assert.throws(() => encodeFixedPoint([0, Infinity, 0], 1, p, words), { code: ErrorCodes.ENCODING_INPUT });
  assert.throws(() => encodeFixedPoint([0, 0], 1, p, words), { code: ErrorCodes.ENCODING_INPUT });
  assert.throws(() => encodeFixedPoint([0, 0, 0], 11, p, words), { code: ErrorCodes.ENCODING_INPUT });
  assert.throws(() => decodeFixedPointSum(new Uint32Array(4), p, 5), { code: ErrorCodes.ENCODING_INPUT });
});
