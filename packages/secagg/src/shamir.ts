// Thin wrapper over shamir-secret-sharing (audited; GF(2^8), so at most 255 shares). Each share
// is the secret length plus one byte holding its x-coordinate.
import { combine, split } from 'shamir-secret-sharing';
import { ConfigError } from './errors.js';
import { MAX_SHARES } from './params.js';

// The library checks `constructor === Uint8Array`, which a Buffer fails: always pass copies.
const plain = (bytes: Uint8Array): Uint8Array => Uint8Array.from(bytes);

/** Splits `secret` into `count` shares, any `threshold` of which reconstruct it. */
export async function shareSecret(secret: Uint8Array, count: number, threshold: number): Promise<Uint8Array[]> {
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > count || count > MAX_SHARES) {
    throw new ConfigError('threshold', `need 2 <= t <= shares <= ${MAX_SHARES}, got t=${threshold}, shares=${count}`);
  }
  return split(plain(secret), count, threshold);
}

/** Reconstructs from exactly the shares given (pass t of them: cost grows with the square). */
export async function reconstructSecret(shares: readonly Uint8Array[]): Promise<Uint8Array> {
  return combine(shares.map(plain));
}
