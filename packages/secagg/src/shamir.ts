// Shamir secret sharing over GF(2^8), synchronous. Shares are interchangeable with the audited
// shamir-secret-sharing package (the test suite uses it as an oracle): same field (AES
// polynomial x^8 + x^4 + x^3 + x + 1) and same layout, each share being the secret's bytes
// evaluated at x followed by one byte holding x (1..255, so at most MAX_SHARES shares).
//
// Table lookups index by secret-dependent bytes (as in the library): not cache-timing hardened.
import { defaultRandomBytes, type RandomBytes } from './crypto.js';
import { ConfigError, MalformedMessageError } from './errors.js';
import { MAX_SHARES } from './params.js';

// LOG[0] points into a zero tail of EXP, so `EXP[LOG[a] + LOG[b]]` is a * b for every a, b
// (zero included) without a branch. EXP covers 0..1020: two periods of g^i, then zeros.
const ZERO_LOG = 510;
const EXP = new Uint8Array(2 * ZERO_LOG + 1);
const LOG = new Uint16Array(256);
{
  let v = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = v;
    EXP[i + 255] = v;
    LOG[v] = i;
    // v *= 3 (generator of GF(2^8)*): v ^ 2v, reducing by 0x11b.
    v ^= (v << 1) ^ (v & 0x80 ? 0x11b : 0);
  }
  LOG[0] = ZERO_LOG;
}

/** Field product in GF(2^8) (exported for the test suite, not part of the package API). */
export function gfMul(a: number, b: number): number {
  return EXP[(LOG[a & 0xff] as number) + (LOG[b & 0xff] as number)] as number;
}

function checkSplitArgs(secret: Uint8Array, count: number, threshold: number): void {
  if (!(secret instanceof Uint8Array) || secret.length === 0) {
    const got = secret instanceof Uint8Array ? '0 bytes' : typeof secret;
    throw new ConfigError('secret', `must be a non-empty Uint8Array, got ${got}`);
  }
  if (!Number.isInteger(count) || count < 2 || count > MAX_SHARES) {
    throw new ConfigError('shares', `need an integer count in [2, ${MAX_SHARES}] (GF(2^8) has 255 non-zero points), got ${String(count)}`);
  }
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > count) {
    throw new ConfigError('threshold', `need an integer t with 2 <= t <= shares = ${count}, got t=${String(threshold)}`);
  }
}

/**
 * Splits `secret` into `count` shares, any `threshold` of which reconstruct it and fewer reveal
 * nothing. Share i is the secret's length plus one byte, its x-coordinate i + 1. Polynomial
 * coefficients come from `random` (node:crypto's CSPRNG by default).
 */
export function splitSecret(
  secret: Uint8Array,
  count: number,
  threshold: number,
  random: RandomBytes = defaultRandomBytes,
): Uint8Array[] {
  checkSplitArgs(secret, count, threshold);
  const len = secret.length;
  const degree = threshold - 1;
  const want = degree * len;
  // coefficients[(k - 1) * len + i]: the x^k coefficient of byte i's polynomial.
  const coefficients = random(want);
  try {
    if (!(coefficients instanceof Uint8Array) || coefficients.length !== want) {
      const got = coefficients instanceof Uint8Array ? `${coefficients.length} bytes` : typeof coefficients;
      throw new ConfigError('random', `asked for ${want} bytes, got ${got}`);
    }
    const shares: Uint8Array[] = [];
    // Fixed points 1..count: Shamir's secrecy does not depend on which distinct non-zero points
    // are used, and fixed points keep the shares a function of `random` alone (reproducible).
    const times = new Uint8Array(256); // times[a] = a * x for the current x
    for (let x = 1; x <= count; x++) {
      const share = new Uint8Array(len + 1);
      share[len] = x;
      const logX = LOG[x] as number;
      for (let a = 0; a < 256; a++) times[a] = EXP[(LOG[a] as number) + logX] as number;
      // Horner over all bytes at once, from the top coefficient down to the secret.
      share.set(coefficients.subarray((degree - 1) * len, degree * len));
      for (let k = degree - 1; k >= 1; k--) {
        const offset = (k - 1) * len;
        for (let i = 0; i < len; i++) share[i] = (times[share[i] as number] as number) ^ (coefficients[offset + i] as number);
      }
      for (let i = 0; i < len; i++) share[i] = (times[share[i] as number] as number) ^ (secret[i] as number);
      shares.push(share);
    }
    return shares;
  } finally {
    // The coefficients determine the secret from any one share: do not leave them in memory.
    if (coefficients instanceof Uint8Array) coefficients.fill(0);
  }
}

/**
 * Reconstructs the secret from exactly the shares given (Lagrange interpolation at 0). With
 * fewer than the threshold the result is a wrong value, not an error: shares carry no threshold.
 * Cost O(t^2) for the basis weights plus O(t * length); pass t shares, not all of them.
 */
export function combineShares(shares: readonly Uint8Array[]): Uint8Array {
  const where = 'Shamir shares';
  if (!Array.isArray(shares) || shares.length < 2) {
    const got = Array.isArray(shares) ? `${shares.length}` : typeof shares;
    throw new MalformedMessageError(where, `need at least 2 shares to interpolate, got ${got}`);
  }
  if (shares.length > MAX_SHARES) {
    throw new MalformedMessageError(where, `at most ${MAX_SHARES} shares exist over GF(2^8), got ${shares.length}`);
  }
  const first = shares[0];
  if (!(first instanceof Uint8Array) || first.length < 2) {
    throw new MalformedMessageError(where, 'share 0 must be a Uint8Array of at least 2 bytes (data + x-coordinate)');
  }
  const shareLength = first.length;
  const len = shareLength - 1;
  const t = shares.length;
  const xs = new Uint8Array(t);
  const owner = new Int16Array(256).fill(-1); // x-coordinate -> index of the share holding it
  for (let i = 0; i < t; i++) {
    const share = shares[i];
    if (!(share instanceof Uint8Array)) throw new MalformedMessageError(where, `share ${i} is not a Uint8Array`);
    if (share.length !== shareLength) {
      throw new MalformedMessageError(where, `share ${i} is ${share.length} bytes but share 0 is ${shareLength}`);
    }
    const x = share[len] as number;
    // x = 0 would be the secret itself; no honest share has it.
    if (x === 0) throw new MalformedMessageError(where, `share ${i} has x-coordinate 0 (reserved for the secret)`);
    const prior = owner[x] as number;
    if (prior >= 0) throw new MalformedMessageError(where, `shares ${prior} and ${i} both have x-coordinate ${x}`);
    owner[x] = i;
    xs[i] = x;
  }
  // Basis weights at 0: w_i = prod_{j != i} x_j / (x_i + x_j) (minus is plus in GF(2^8)), kept as
  // logarithms. The xs are distinct and non-zero, so no factor is zero.
  let sumLogX = 0;
  for (let j = 0; j < t; j++) sumLogX += LOG[xs[j] as number] as number;
  const logWeights = new Uint16Array(t);
  for (let i = 0; i < t; i++) {
    const xi = xs[i] as number;
    let logDenominator = 0;
    for (let j = 0; j < t; j++) if (j !== i) logDenominator += LOG[xi ^ (xs[j] as number)] as number;
    const logW = (sumLogX - (LOG[xi] as number) - logDenominator) % 255;
    logWeights[i] = logW < 0 ? logW + 255 : logW;
  }
  // secret = sum_i w_i * y_i, byte by byte; one pass over each share.
  const secret = new Uint8Array(len);
  for (let i = 0; i < t; i++) {
    const share = shares[i] as Uint8Array;
    const logW = logWeights[i] as number;
    for (let b = 0; b < len; b++) {
      secret[b] = (secret[b] as number) ^ (EXP[(LOG[share[b] as number] as number) + logW] as number);
    }
  }
  return secret;
}

/** Async form of `splitSecret`, kept while call sites move to the synchronous one. */
export async function shareSecret(secret: Uint8Array, count: number, threshold: number): Promise<Uint8Array[]> {
  return splitSecret(secret, count, threshold);
}

/** Async form of `combineShares`, kept while call sites move to the synchronous one. */
export async function reconstructSecret(shares: readonly Uint8Array[]): Promise<Uint8Array> {
  return combineShares(shares);
}
