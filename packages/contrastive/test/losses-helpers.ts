// Test helpers for the loss tests: a seeded PRNG, float64 matrix helpers, central-difference
// gradients of plain-JS reference losses, and closeness assertions. Not a test file itself.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no gradient functions; tfjs-layers' bundle registers all of
// them into tfjs's global registry as a side effect. The trainer gets them the same way (or
// through @fedclr/tensor); the losses themselves do not import layers.
import '@tensorflow/tfjs-layers';

export type Matrix = number[][];

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). Independent of the code under test. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** rows x cols values uniform in [-scale, scale), rounded to float32 so tfjs sees the same numbers. */
export function randomMatrix(rng: () => number, rows: number, cols: number, scale = 1): Matrix {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.fround((rng() * 2 - 1) * scale)));
}

export function randomLabels(rng: () => number, n: number, classes: number): number[] {
  return Array.from({ length: n }, () => Math.floor(rng() * classes));
}

export function at<T>(xs: readonly T[], i: number): T {
  const v = xs[i];
  if (v === undefined) throw new Error(`index ${i} out of range ${xs.length}`);
  return v;
}

export function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += at(a, i) * at(b, i);
  return s;
}

export function sqDist(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (at(a, i) - at(b, i)) ** 2;
  return s;
}

export function normalizeRows(m: Matrix): Matrix {
  return m.map((row) => {
    const norm = Math.max(Math.sqrt(dot(row, row)), 1e-12);
    return row.map((v) => v / norm);
  });
}

export function logSumExp(values: readonly number[]): number {
  const m = Math.max(...values);
  let s = 0;
  for (const v of values) s += Math.exp(v - m);
  return m + Math.log(s);
}

export function cloneMatrices(ms: readonly Matrix[]): Matrix[] {
  return ms.map((m) => m.map((row) => row.slice()));
}

/** Central-difference gradient of f with respect to every entry of every input matrix (float64). */
export function numericGrad(f: (inputs: Matrix[]) => number, inputs: readonly Matrix[], eps = 1e-5): Matrix[] {
  const work = cloneMatrices(inputs);
  return work.map((m) =>
    m.map((row, i) =>
      row.map((_, j) => {
        const r = at(m, i);
        const orig = at(r, j);
        r[j] = orig + eps;
        const plus = f(work);
        r[j] = orig - eps;
        const minus = f(work);
        r[j] = orig;
        return (plus - minus) / (2 * eps);
      }),
    ),
  );
}

export function assertClose(actual: number, expected: number, tol: number, what: string): void {
  const err = Math.abs(actual - expected);
  assert.ok(
    err <= tol * Math.max(1, Math.abs(expected)),
    `${what}: got ${actual}, expected ${expected} (|diff| ${err.toExponential(3)} > tol ${tol})`,
  );
}

/**
 * Tolerance of autodiff (float32) against central differences of the float64 reference,
 * relative to the largest gradient entry. Measured errors are ~1e-7; 2e-5 leaves a margin
 * while still catching a wrong mask or a missing term (errors of 1e-3 and more).
 */
export const GRAD_TOL = 2e-5;

/** max |a - b| over all entries <= relTol * max(|b|, floor). */
export function assertGradClose(auto: Matrix, numeric: Matrix, relTol: number, what: string, floor = 1e-3): void {
  let maxDiff = 0;
  let maxRef = floor;
  numeric.forEach((row, i) =>
    row.forEach((v, j) => {
      maxDiff = Math.max(maxDiff, Math.abs(at(at(auto, i), j) - v));
      maxRef = Math.max(maxRef, Math.abs(v));
    }),
  );
  assert.ok(
    maxDiff <= relTol * maxRef,
    `${what}: max |autodiff - numeric| = ${maxDiff.toExponential(3)} > ${relTol} * ${maxRef.toExponential(3)}`,
  );
}

/**
 * Autodiff gradients of `lossFn` (built on tfjs) w.r.t. each input matrix, as plain arrays.
 * Disposes everything it creates.
 */
export function autodiffGrads(lossFn: (xs: tf.Tensor2D[]) => tf.Scalar, inputs: readonly Matrix[]): Matrix[] {
  const xs = inputs.map((m) => tf.tensor2d(m));
  const grads = tf.grads((...args: tf.Tensor[]) => lossFn(args as tf.Tensor2D[]))(xs);
  const out = grads.map((g) => g.arraySync() as Matrix);
  tf.dispose([...xs, ...grads]);
  return out;
}

/** The value of a tfjs loss on plain inputs, disposing its tensors. */
export function lossValue(lossFn: (xs: tf.Tensor2D[]) => tf.Scalar, inputs: readonly Matrix[]): number {
  const xs = inputs.map((m) => tf.tensor2d(m));
  const loss = lossFn(xs);
  const v = loss.dataSync()[0];
  tf.dispose([...xs, loss]);
  if (v === undefined) throw new Error('empty loss');
  return v;
}

/** Runs fn and asserts that the number of live tensors is unchanged afterwards. */
export function assertNoLeak(fn: () => void, what: string): void {
  const before = tf.memory().numTensors;
  fn();
  assert.equal(tf.memory().numTensors, before, `${what} leaked tensors`);
}

/** Asserts that fn throws a FastifyError with the given code. */
export function assertThrowsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Error, 'expected an Error');
    assert.equal((err as Error & { code?: string }).code, code, `message: ${err.message}`);
    return true;
  });
}
