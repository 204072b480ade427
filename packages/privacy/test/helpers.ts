// Shared test helpers: error-code assertions and tolerance checks in the style of the Python
// tests the published values come from.
import assert from 'node:assert/strict';

/** Runs fn, asserts it throws an error with `code`, returns the error. */
export function throwsWithCode(fn: () => unknown, code: string): Error & { code: string } {
  try {
    fn();
  } catch (err) {
    const e = err as Error & { code: string };
    if (e.code !== code) throw new Error(`expected ${code}, got ${String(e.code)}: ${e.message}`);
    return e;
  }
  throw new Error(`expected an error with ${code}, but it returned`);
}

/** numpy's assert_allclose(actual, expected, rtol) for one value. */
export function assertRelClose(actual: number, expected: number, rtol: number, what = ''): void {
  const err = Math.abs(actual - expected);
  assert.ok(err <= rtol * Math.abs(expected), `${what}: ${actual} vs ${expected} (relative error ${err / Math.abs(expected)} > ${rtol})`);
}

/** Python's unittest assertAlmostEqual(actual, expected, places): round(diff, places) == 0. */
export function assertAlmostEqual(actual: number, expected: number, places = 7, what = ''): void {
  const diff = Math.abs(actual - expected);
  assert.ok(diff < 0.5 * 10 ** -places, `${what}: ${actual} vs ${expected} differ by ${diff} (places=${places})`);
}

/** Agreement with a value printed to `digits` significant digits (Python's '{:.Ng}'). */
export function assertPrinted(actual: number, printed: string, what = ''): void {
  const digits = printed.replace(/^[-0.]+/, '').replace('.', '').length;
  assert.equal(actual.toPrecision(digits), Number(printed).toPrecision(digits), `${what}: ${actual} does not print as ${printed}`);
}

/** range(start, stop) of Python. */
export function range(start: number, stop: number): number[] {
  return Array.from({ length: Math.max(0, stop - start) }, (_, i) => start + i);
}
