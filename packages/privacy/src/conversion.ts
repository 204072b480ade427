// RDP -> (epsilon, delta)-DP, minimised over the orders.
//
// 'balle2020' (default): Balle, Barthe, Gaboardi, Hsu, Sato 2020, "Hypothesis testing
// interpretations and Rényi differential privacy" (AISTATS 2020, arXiv:1905.09982, Theorem 21;
// also Canonne, Kamath, Steinke 2020, arXiv:2004.00010, Proposition 12):
//   eps(alpha) = rdp(alpha) + log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1)
// This is Opacus's `get_privacy_spent` (opacus/accountants/analysis/rdp.py) and TF-Privacy's
// `_compute_eps` (tensorflow_privacy/privacy/analysis/rdp_accountant.py at ee35642, 2022-04-20,
// the last in-tree version; since then TF-Privacy calls dp_accounting, which keeps it). Like
// TF-Privacy, an order whose rdp satisfies 1 - exp(-rdp) <= delta^2 gives eps = 0 (total
// variation <= sqrt(1 - exp(-KL)) <= delta, and KL <= rdp), and the result is clamped at 0.
//
// 'mironov2017': Mironov 2017, "Rényi Differential Privacy" (arXiv:1702.07476, Proposition 3):
//   eps(alpha) = rdp(alpha) - log(delta) / (alpha - 1)
// the conversion TF-Privacy used until be8175b (2020-12-30) and Opacus until v0.14 (2021-04).
// Always larger than 'balle2020' for the same rdp; kept to compare with older published numbers.
import { InvalidArgumentError } from './errors.js';
import { checkDelta, checkOrders, checkRdpValue } from './validate.js';

export type Conversion = 'balle2020' | 'mironov2017';
export const CONVERSIONS: readonly Conversion[] = ['balle2020', 'mironov2017'];

/** An (epsilon, delta) guarantee and the order that gave it. */
export interface PrivacySpent {
  /** Smallest epsilon over the orders; Infinity when every order has infinite RDP. */
  epsilon: number;
  /** The order attaining it (the first such order on ties, or when all are Infinity). */
  order: number;
}

/** Balle et al. 2020 at one order; TF-Privacy's special cases included. */
export function balleEpsilon(alpha: number, rdp: number, delta: number): number {
  if (rdp === Infinity) return Infinity;
  if (delta * delta + Math.expm1(-rdp) >= 0) return 0;
  return rdp + Math.log1p(-1 / alpha) - Math.log(delta * alpha) / (alpha - 1);
}

/** Mironov 2017 at one order. */
export function mironovEpsilon(alpha: number, rdp: number, delta: number): number {
  return rdp - Math.log(delta) / (alpha - 1);
}

function checkConversion(value: unknown): Conversion {
  if (!CONVERSIONS.includes(value as Conversion)) {
    throw new InvalidArgumentError('conversion', `must be one of ${CONVERSIONS.join(', ')}, got ${String(value)}`);
  }
  return value as Conversion;
}

/**
 * Epsilon of the RDP curve `rdp` (at `orders`) for the given delta: the minimum over orders of
 * the chosen conversion. Like Opacus's `get_privacy_spent(orders, rdp, delta)`.
 */
export function epsilonFromRdp(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
  conversion: Conversion = 'balle2020',
): PrivacySpent {
  const alphas = checkOrders(orders);
  if (!Array.isArray(rdp) || rdp.length !== alphas.length) {
    const got = Array.isArray(rdp) ? rdp.length : typeof rdp;
    throw new InvalidArgumentError('rdp', `must be an array with one value per order (${alphas.length}), got ${got}`);
  }
  const values = rdp.map((r: unknown, i) => checkRdpValue(r, `rdp[${i}]`));
  const d = checkDelta(delta);
  const perOrder = checkConversion(conversion) === 'balle2020' ? balleEpsilon : mironovEpsilon;
  let best: PrivacySpent = { epsilon: Infinity, order: alphas[0] as number };
  alphas.forEach((alpha, i) => {
    const epsilon = perOrder(alpha, values[i] as number, d);
    if (epsilon < best.epsilon) best = { epsilon, order: alpha };
  });
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}
