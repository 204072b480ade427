// SecAgg+ parameter derivation: neighbour count k and Shamir threshold t from the cohort size n,
// the tolerated dropout fraction delta and the corrupt fraction gamma (Bell et al. 2020).
//
// Let D = floor(delta n) dropouts (over all stages) and C = floor(gamma n) corrupt agents, who
// collude with the coordinator. Each agent's secrets (self-mask seed b_u, mask key sk_u) are
// shared t-of-|N(u)| among its neighbours N(u). Requirements for an honest agent u:
//   privacy   A malicious coordinator can tell some honest neighbours "u survived" (they reveal
//             b-shares) and the others "u dropped" (sk-shares); corrupt neighbours reveal both.
//             It learns both secrets only if (honest) + 2 (corrupt) >= 2t, so we need
//             k + c_u < 2t, i.e. t > (k + c_u) / 2, with c_u the corrupt neighbours of u.
//   privacy   The honest survivors' subgraph must stay connected, or the coordinator learns the
//             partial sums of its components (a component of one agent is that agent's input).
//   recovery  At least t neighbours of every agent answer the unmask stage: k - d_u >= t, with
//             d_u the dropped neighbours of u.
// Complete graph (n <= 20, or whenever k >= n - 1): worst case c_u = C, d_u = D; deterministic.
// Harary graph (k even, ring of n agents in a random order, each joined to the k/2 nearest on
// each side): N(u) is a uniformly random k-subset of the others, so c_u and d_u are
// hypergeometric; we bound failure by a union over the n agents and require
//   n P[c_u >= 2t - k] <= 2^-securityBits,
//   n P[k/2 consecutive ring positions all corrupt-or-dropped] <= 2^-securityBits
//     (removing nodes from the ring-with-chords disconnects it only if some k/2 consecutive
//     nodes all go; the bound assumes corruption and dropouts do not depend on the graph seed),
//   n P[d_u > k - t] <= 2^-correctnessBits.
// We choose the smallest k that passes and, for that k, the smallest t that passes privacy
// (it maximises the dropouts actually tolerated). Shamir over GF(2^8) caps k at 255.
import { ConfigError, ThresholdUnachievableError } from './errors.js';

export interface SecAggParamsRequest {
  /** Number of agents selected for the round (n). */
  readonly cohortSize: number;
  /** Fraction of the cohort that may drop out over the whole round (delta, in [0, 1)). */
  readonly dropoutFraction: number;
  /** Fraction of the cohort that may be corrupt and collude with the coordinator (gamma). */
  readonly corruptFraction: number;
  /** Neighbour count k; derived when omitted. Must be even unless >= n - 1 (complete graph). */
  readonly neighbours?: number;
  /** Sparse graphs only: privacy failure probability <= 2^-securityBits. Default 40. */
  readonly securityBits?: number;
  /** Sparse graphs only: recovery failure probability <= 2^-correctnessBits. Default 20. */
  readonly correctnessBits?: number;
}

export interface SecAggParams {
  readonly cohortSize: number;
  readonly dropoutFraction: number;
  readonly corruptFraction: number;
  readonly securityBits: number;
  readonly correctnessBits: number;
  readonly graph: 'complete' | 'harary';
  /** Neighbours per agent (k); n - 1 for the complete graph. */
  readonly neighbours: number;
  /** Shamir threshold t. */
  readonly threshold: number;
  /** D = floor(delta n) and C = floor(gamma n). */
  readonly maxDropouts: number;
  readonly maxCorrupt: number;
  /** log2 of the failure bounds (-Infinity when impossible; complete graph: all -Infinity). */
  readonly log2PrivacyFailure: number;
  readonly log2ConnectivityFailure: number;
  readonly log2RecoveryFailure: number;
}

export const DEFAULT_SECURITY_BITS = 40;
export const DEFAULT_CORRECTNESS_BITS = 20;
/** Cohorts up to this size always use the complete graph. */
export const COMPLETE_GRAPH_MAX_COHORT = 20;
/** shamir-secret-sharing works over GF(2^8): at most 255 shares. */
export const MAX_SHARES = 255;

function checkFraction(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    throw new ConfigError(name, `must be a number in [0, 1), got ${String(value)}`);
  }
}

function checkBits(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 1 || value > 128) {
    throw new ConfigError(name, `must be in [1, 128], got ${String(value)}`);
  }
}

const logFactorials: number[] = [0];
function logFactorial(n: number): number {
  for (let i = logFactorials.length; i <= n; i++) logFactorials.push((logFactorials[i - 1] as number) + Math.log(i));
  return logFactorials[n] as number;
}

function logChoose(n: number, k: number): number {
  if (k < 0 || k > n) return -Infinity;
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k);
}

/** log2 P[X >= x] for X ~ Hypergeometric(population, successes, draws). */
export function log2HypergeometricTail(population: number, successes: number, draws: number, x: number): number {
  const lo = Math.max(x, 0, draws - (population - successes));
  const hi = Math.min(successes, draws);
  if (lo > hi) return -Infinity;
  const denom = logChoose(population, draws);
  const terms: number[] = [];
  for (let i = lo; i <= hi; i++) {
    terms.push(logChoose(successes, i) + logChoose(population - successes, draws - i) - denom);
  }
  const max = Math.max(...terms);
  const sum = terms.reduce((acc, term) => acc + Math.exp(term - max), 0);
  return Math.min(0, (max + Math.log(sum)) / Math.LN2);
}

interface SparseCheck {
  readonly threshold: number;
  readonly privacy: number;
  readonly connectivity: number;
  readonly recovery: number;
}

function checkSparse(
  n: number,
  k: number,
  C: number,
  D: number,
  securityBits: number,
  correctnessBits: number,
): SparseCheck | undefined {
  const log2n = Math.log2(n);
  // k/2 specific ring positions all "bad" (corrupt or dropped): hypergeometric, all successes.
  const bad = Math.min(n, C + D);
  const run = k / 2;
  const connectivity = log2n + (logChoose(bad, run) - logChoose(n, run)) / Math.LN2;
  if (connectivity > -securityBits) return undefined;
  for (let t = Math.max(2, Math.floor(k / 2) + 1); t <= k; t++) {
    const privacy = log2n + log2HypergeometricTail(n - 1, C, k, 2 * t - k);
    if (privacy > -securityBits) continue;
    const recovery = log2n + log2HypergeometricTail(n - 1, D, k, k - t + 1);
    if (recovery > -correctnessBits) return undefined;
    return { threshold: t, privacy, connectivity, recovery };
  }
  return undefined;
}

/** D = floor(delta n) dropouts and C = floor(gamma n) corrupt agents tolerated in a cohort of n. */
export function toleratedCounts(cohortSize: number, dropoutFraction: number, corruptFraction: number): { maxDropouts: number; maxCorrupt: number } {
  return { maxDropouts: Math.floor(dropoutFraction * cohortSize), maxCorrupt: Math.floor(corruptFraction * cohortSize) };
}

/**
 * Derives (k, t). Throws THRESHOLD_UNACHIEVABLE when no threshold satisfies both fractions,
 * CONFIG_INVALID for malformed requests.
 */
export function deriveSecAggParams(request: SecAggParamsRequest): SecAggParams {
  const n = request.cohortSize;
  if (!Number.isInteger(n) || n < 3) {
    throw new ConfigError('cohortSize', `must be an integer >= 3 (Shamir needs two shareholders), got ${String(n)}`);
  }
  checkFraction('dropoutFraction', request.dropoutFraction);
  checkFraction('corruptFraction', request.corruptFraction);
  const securityBits = request.securityBits ?? DEFAULT_SECURITY_BITS;
  const correctnessBits = request.correctnessBits ?? DEFAULT_CORRECTNESS_BITS;
  checkBits('securityBits', securityBits);
  checkBits('correctnessBits', correctnessBits);
  const { maxDropouts: D, maxCorrupt: C } = toleratedCounts(n, request.dropoutFraction, request.corruptFraction);
  const base = {
    cohortSize: n,
    dropoutFraction: request.dropoutFraction,
    corruptFraction: request.corruptFraction,
    securityBits,
    correctnessBits,
    maxDropouts: D,
    maxCorrupt: C,
  };
  const asked = `n=${n}, dropoutFraction=${request.dropoutFraction} (D=${D}), corruptFraction=${request.corruptFraction} (C=${C})`;

  const complete = (): SecAggParams => {
    const k = n - 1;
    if (k > MAX_SHARES) {
      throw new ThresholdUnachievableError(
        asked,
        `a complete graph needs ${k} shares per secret but GF(2^8) Shamir allows ${MAX_SHARES}; ask for a sparse graph (smaller neighbours) or lower securityBits`,
      );
    }
    const t = Math.max(2, Math.floor((k + C) / 2) + 1);
    if (t > k - D) {
      throw new ThresholdUnachievableError(
        asked,
        `privacy needs t > (k + C)/2 = ${(k + C) / 2} but recovery needs t <= k - D = ${k - D} (k=${k}); tolerate fewer dropouts or fewer corrupt agents (need C + 2D < k)`,
      );
    }
    return {
      ...base,
      graph: 'complete',
      neighbours: k,
      threshold: t,
      log2PrivacyFailure: -Infinity,
      log2ConnectivityFailure: -Infinity,
      log2RecoveryFailure: -Infinity,
    };
  };

  const sparse = (k: number, check: SparseCheck): SecAggParams => ({
    ...base,
    graph: 'harary',
    neighbours: k,
    threshold: check.threshold,
    log2PrivacyFailure: check.privacy,
    log2ConnectivityFailure: check.connectivity,
    log2RecoveryFailure: check.recovery,
  });

  if (request.neighbours !== undefined) {
    const k = request.neighbours;
    if (!Number.isInteger(k) || k < 2) throw new ConfigError('neighbours', `must be an integer >= 2, got ${String(k)}`);
    if (k >= n - 1 || n <= COMPLETE_GRAPH_MAX_COHORT) return complete();
    if (k % 2 !== 0) {
      throw new ConfigError('neighbours', `a sparse Harary graph needs an even k, got ${k}`);
    }
    if (k > MAX_SHARES) throw new ConfigError('neighbours', `at most ${MAX_SHARES} (GF(2^8) Shamir), got ${k}`);
    const check = checkSparse(n, k, C, D, securityBits, correctnessBits);
    if (check === undefined) {
      throw new ThresholdUnachievableError(
        `${asked}, k=${k}, securityBits=${securityBits}, correctnessBits=${correctnessBits}`,
        'no t meets the privacy, connectivity and recovery bounds at this k; raise neighbours (or omit it to derive one)',
      );
    }
    return sparse(k, check);
  }

  if (n <= COMPLETE_GRAPH_MAX_COHORT) return complete();
  for (let k = 4; k < n - 1 && k <= MAX_SHARES; k += 2) {
    const check = checkSparse(n, k, C, D, securityBits, correctnessBits);
    if (check !== undefined) return sparse(k, check);
  }
  return complete();
}
