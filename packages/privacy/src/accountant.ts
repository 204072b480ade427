// A running RDP total for one federated run: each round of client sampling (rate q) plus
// Gaussian noise (multiplier sigma) adds its RDP at every order; the spent epsilon is read off
// the total at any delta. Plain data, so a restarted coordinator resumes from its saved JSON.
import { StateInvalidError } from './errors.js';
import { epsilonFromRdp, type Conversion, type PrivacySpent } from './conversion.js';
import { DEFAULT_ORDERS } from './orders.js';
import { sampledGaussianRdp } from './rdp.js';
import { MAX_ORDER, checkCount, checkDelta, checkEpsilon, checkNoiseMultiplier, checkOrders, checkSamplingRate } from './validate.js';

export const ACCOUNTANT_STATE_VERSION = 1;

/**
 * Saved accountant: the orders and the accumulated RDP at each. JSON has no Infinity, so an
 * infinite RDP (a round without noise) is the string 'Infinity'.
 */
export interface RdpAccountantState {
  version: typeof ACCOUNTANT_STATE_VERSION;
  orders: number[];
  rdp: (number | 'Infinity')[];
}

export class RdpAccountant {
  readonly #orders: readonly number[];
  readonly #rdp: number[];

  /** A fresh accountant (nothing spent) over `orders` (default: Opacus's DEFAULT_ALPHAS). */
  constructor(orders: readonly number[] = DEFAULT_ORDERS) {
    this.#orders = Object.freeze(checkOrders(orders));
    this.#rdp = this.#orders.map(() => 0);
  }

  /** Rebuilds an accountant from `toJSON()` output (parsed), refusing anything malformed. */
  static fromJSON(state: unknown): RdpAccountant {
    const { orders, rdp } = parseState(state);
    const accountant = new RdpAccountant(orders);
    rdp.forEach((r, i) => (accountant.#rdp[i] = r));
    return accountant;
  }

  get orders(): readonly number[] {
    return this.#orders;
  }

  /** Accumulated RDP at each order (a copy). */
  get rdp(): number[] {
    return [...this.#rdp];
  }

  /** Accounts `count` rounds with the given noise multiplier and client sampling rate. */
  step(noiseMultiplier: number, samplingRate: number, count = 1): void {
    const added = this.#roundRdp(noiseMultiplier, samplingRate, count);
    added.forEach((r, i) => (this.#rdp[i] = (this.#rdp[i] as number) + r));
  }

  /** Epsilon spent so far at `delta`, and the order that gives it. */
  epsilon(delta: number, conversion: Conversion = 'balle2020'): PrivacySpent {
    return epsilonFromRdp(this.#orders, this.#rdp, delta, conversion);
  }

  /**
   * Whether `count` more rounds (default 1) with these parameters would take epsilon at `delta`
   * above `targetEpsilon`. The coordinator asks before each round and stops when true.
   */
  wouldExceed(targetEpsilon: number, delta: number, noiseMultiplier: number, samplingRate: number, count = 1): boolean {
    const target = checkEpsilon(targetEpsilon);
    checkDelta(delta);
    const added = this.#roundRdp(noiseMultiplier, samplingRate, count);
    const total = this.#rdp.map((r, i) => r + (added[i] as number));
    return epsilonFromRdp(this.#orders, total, delta).epsilon > target;
  }

  /** Plain JSON state for `fromJSON`. */
  toJSON(): RdpAccountantState {
    return {
      version: ACCOUNTANT_STATE_VERSION,
      orders: [...this.#orders],
      rdp: this.#rdp.map((r) => (r === Infinity ? 'Infinity' : r)),
    };
  }

  #roundRdp(noiseMultiplier: number, samplingRate: number, count: number): number[] {
    const sigma = checkNoiseMultiplier(noiseMultiplier);
    const q = checkSamplingRate(samplingRate);
    const n = checkCount(count, 'count');
    if (n === 0) return this.#orders.map(() => 0);
    return this.#orders.map((alpha) => n * sampledGaussianRdp(q, sigma, alpha));
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseState(state: unknown): { orders: number[]; rdp: number[] } {
  if (!isRecord(state)) throw new StateInvalidError('state', 'is not an object');
  if (state.version !== ACCOUNTANT_STATE_VERSION) {
    throw new StateInvalidError('version', `is ${JSON.stringify(state.version)}, expected ${ACCOUNTANT_STATE_VERSION}`);
  }
  const { orders, rdp } = state;
  if (!Array.isArray(orders) || orders.length === 0) throw new StateInvalidError('orders', 'is not a non-empty array');
  orders.forEach((alpha: unknown, i) => {
    if (typeof alpha !== 'number' || !(alpha > 1 && alpha <= MAX_ORDER)) {
      throw new StateInvalidError(`orders[${i}]`, `is ${JSON.stringify(alpha)}, not an order in (1, ${MAX_ORDER}]`);
    }
  });
  if (!Array.isArray(rdp) || rdp.length !== orders.length) {
    throw new StateInvalidError('rdp', `is not an array of ${orders.length} values (one per order)`);
  }
  return { orders: orders as number[], rdp: rdp.map(parseRdpValue) };
}

function parseRdpValue(value: unknown, i: number): number {
  if (value === 'Infinity') return Infinity;
  if (typeof value !== 'number' || !(value >= 0 && Number.isFinite(value))) {
    throw new StateInvalidError(`rdp[${i}]`, `is ${JSON.stringify(value)}, not a finite number >= 0 or "Infinity"`);
  }
  return value;
}
