// Log-space arithmetic for the RDP series: sums of terms that over- or underflow doubles are
// kept as logarithms (-Infinity stands for 0), as in TF-Privacy's and Opacus's `_log_add`,
// `_log_sub` and `_log_erfc`.
import { NumericalError } from './errors.js';

/** log(exp(x) + exp(y)), without overflow. */
export function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === -Infinity) return b; // adding 0
  if (b === Infinity) return Infinity; // exp(a - b) would be NaN
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(exp(x) - exp(y)) for x >= y; throws NumericalError when the difference is negative. */
export function logSub(x: number, y: number): number {
  if (x < y) throw new NumericalError(`log-space subtraction went negative (log ${x} - log ${y})`);
  if (y === -Infinity) return x; // subtracting 0
  if (x === Infinity) {
    if (y === Infinity) throw new NumericalError('log-space subtraction of two overflowed terms');
    return Infinity;
  }
  if (x === y) return -Infinity;
  // exp(x) - exp(y) = exp(x) * (1 - exp(y - x)); -expm1 keeps precision when y is close to x,
  // and for x >> y the factor is 1 (TF-Privacy's OverflowError branch returns x).
  return x + Math.log(-Math.expm1(y - x));
}

// W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969)
// 631-638, with the coefficients of his CALERF (netlib specfun/erf, 1990) as the nearest doubles.
// Relative error below 1e-16 for erf on |x| <= 0.46875 and for erfc elsewhere.
const ERF_A = [3.1611237438705655, 113.86415415105016, 377.485237685302, 3209.3775891384694, 0.18577770618460315];
const ERF_B = [23.601290952344122, 244.02463793444417, 1282.6165260773723, 2844.236833439171];
const ERFC_C = [
  0.5641884969886701, 8.883149794388377, 66.11919063714163, 298.6351381974001, 881.952221241769,
  1712.0476126340707, 2051.0783778260716, 1230.3393547979972, 2.1531153547440383e-8,
];
const ERFC_D = [
  15.744926110709835, 117.6939508913125, 537.1811018620099, 1621.3895745666903, 3290.7992357334597,
  4362.619090143247, 3439.3676741437216, 1230.3393548037495,
];
const ERFC_P = [
  0.30532663496123236, 0.36034489994980445, 0.12578172611122926, 0.016083785148742275,
  0.0006587491615298378, 0.016315387137302097,
];
const ERFC_Q = [2.568520192289822, 1.8729528499234604, 0.5279051029514285, 0.06051834131244132, 0.0023352049762686918];
const ONE_OVER_SQRT_PI = 0.5641895835477563;
const ERF_SMALL = 0.46875;
/** Above this, 1 - 1/(2 y^2) == 1 in doubles and erfc(y) * exp(y^2) * y * sqrt(pi) == 1. */
const ERFC_HUGE = 6.71e7;

function coef(c: readonly number[], i: number): number {
  return c[i] as number;
}

/** erf(x) for |x| <= 0.46875 (Cody's first interval). */
function erfSmall(x: number): number {
  const ysq = x * x;
  let num = coef(ERF_A, 4) * ysq;
  let den = ysq;
  for (let i = 0; i < 3; i++) {
    num = (num + coef(ERF_A, i)) * ysq;
    den = (den + coef(ERF_B, i)) * ysq;
  }
  return (x * (num + coef(ERF_A, 3))) / (den + coef(ERF_B, 3));
}

/** erfcx(y) = exp(y^2) erfc(y) for y > 0.46875 (Cody's second and third intervals). */
function erfcxTail(y: number): number {
  if (y <= 4) {
    let num = coef(ERFC_C, 8) * y;
    let den = y;
    for (let i = 0; i < 7; i++) {
      num = (num + coef(ERFC_C, i)) * y;
      den = (den + coef(ERFC_D, i)) * y;
    }
    return (num + coef(ERFC_C, 7)) / (den + coef(ERFC_D, 7));
  }
  if (y >= ERFC_HUGE) return ONE_OVER_SQRT_PI / y;
  const z = 1 / (y * y);
  let num = coef(ERFC_P, 5) * z;
  let den = z;
  for (let i = 0; i < 4; i++) {
    num = (num + coef(ERFC_P, i)) * z;
    den = (den + coef(ERFC_Q, i)) * z;
  }
  return (ONE_OVER_SQRT_PI - (z * (num + coef(ERFC_P, 4))) / (den + coef(ERFC_Q, 4))) / y;
}

/** log(erfc(y)) for y > 0.46875, never underflowing: -y^2 + log(erfcx(y)). */
function logErfcTail(y: number): number {
  if (y === Infinity) return -Infinity;
  // Cody's split of y^2 into a part exact in doubles plus a small correction, so that the
  // exponent keeps full relative precision for large y.
  const head = Math.trunc(y * 16) / 16;
  const tail = (y - head) * (y + head);
  return -head * head - tail + Math.log(erfcxTail(y));
}

/**
 * log(erfc(x)) with full relative precision for all x: no underflow for large positive x
 * (erfc(30) ~ 1e-393 is not a double, its logarithm is), no cancellation near 0.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const y = Math.abs(x);
  if (y <= ERF_SMALL) return Math.log1p(-erfSmall(x));
  if (x > 0) return logErfcTail(y);
  // erfc(x) = 2 - erfc(-x) for negative x.
  return Math.LN2 + Math.log1p(-0.5 * Math.exp(logErfcTail(y)));
}
