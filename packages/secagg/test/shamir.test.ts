// Shamir over GF(2^8): interchangeable with the audited shamir-secret-sharing package (oracle,
// both directions), exact threshold behaviour, perfect secrecy of t - 1 shares, refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combine, split } from 'shamir-secret-sharing';
import { ErrorCodes, MAX_SHARES, combineShares, splitSecret, type RandomBytes } from '../src/index.js';
import { gfMul, reconstructSecret, shareSecret } from '../src/shamir.js';
import { seededBytes } from './helpers.js';

const LENGTHS = [1, 32, 33];
const SHAPES: ReadonlyArray<readonly [count: number, threshold: number]> = [
  [2, 2],
  [3, 2],
  [5, 3],
  [22, 14],
  [255, 128],
  [255, 255],
];

/** A random `size`-subset of `items`, in random order (modulo bias is irrelevant here). */
function subset<T>(items: readonly T[], size: number, random: RandomBytes): T[] {
  const copy = [...items];
  const r = random(2 * copy.length);
  for (let i = copy.length - 1; i > 0; i--) {
    const j = (((r[2 * i] as number) << 8) | (r[2 * i + 1] as number)) % (i + 1);
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy.slice(0, size);
}

/** RandomBytes that must be asked for exactly `bytes.length` bytes once, and returns a copy. */
function scripted(bytes: Uint8Array): RandomBytes {
  return (length) => {
    assert.equal(length, bytes.length);
    return bytes.slice();
  };
}

function bump(counts: Uint8Array | undefined, index: number | undefined): void {
  assert.ok(counts !== undefined && index !== undefined);
  counts[index] = (counts[index] as number) + 1;
}

function xOf(share: Uint8Array): number {
  return share[share.length - 1] as number;
}

test('GF(2^8) product equals the carry-less product reduced by x^8 + x^4 + x^3 + x + 1', () => {
  const slow = (a: number, b: number): number => {
    let p = 0;
    for (let i = 0; i < 8; i++) {
      if (b & (1 << i)) p ^= a << i;
    }
    for (let bit = 15; bit >= 8; bit--) if (p & (1 << bit)) p ^= 0x11b << (bit - 8);
    return p;
  };
  for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) assert.equal(gfMul(a, b), slow(a, b));
});

test('oracle: our shares combine with shamir-secret-sharing, and its shares with ours', async () => {
  const random = seededBytes('shamir oracle');
  for (const len of LENGTHS) {
    for (const [count, t] of SHAPES) {
      const secret = random(len);
      const label = `len=${len} count=${count} t=${t}`;

      const ours = splitSecret(secret, count, t, random);
      assert.equal(ours.length, count, label);
      for (const share of ours) {
        assert.ok(share instanceof Uint8Array && share.constructor === Uint8Array, label);
        assert.equal(share.length, len + 1, label);
      }
      const xs = ours.map(xOf);
      assert.ok(xs.every((x) => x >= 1 && x <= MAX_SHARES), label);
      assert.equal(new Set(xs).size, count, label);
      for (const size of new Set([t, Math.min(count, t + 1), count])) {
        for (let trial = 0; trial < 2; trial++) {
          const picked = subset(ours, size, random);
          assert.deepEqual(await combine(picked), secret, `${label}: library combines ${size} of ours`);
          assert.deepEqual(combineShares(picked), secret, `${label}: we combine ${size} of ours`);
        }
      }

      const theirs = await split(Uint8Array.from(secret), count, t);
      for (const size of new Set([t, count])) {
        for (let trial = 0; trial < 2; trial++) {
          const picked = subset(theirs, size, random);
          assert.deepEqual(combineShares(picked), secret, `${label}: we combine ${size} of the library's`);
        }
      }
    }
  }
});

test('any t shares reconstruct; t - 1 or a mix with a foreign share do not', () => {
  const random = seededBytes('shamir subsets');
  const secret = random(32);
  const shares = splitSecret(secret, 5, 3, random);
  const indices = [0, 1, 2, 3, 4];
  // Every subset of size >= t, exhaustively (26 of them).
  for (let mask = 0; mask < 32; mask++) {
    const picked = indices.filter((i) => mask & (1 << i)).map((i) => shares[i] as Uint8Array);
    if (picked.length >= 3) assert.deepEqual(combineShares(picked), secret, `mask ${mask}`);
    // t - 1 = 2 shares interpolate a line, not the degree-2 polynomial: almost surely wrong.
    if (picked.length === 2) assert.notDeepEqual(combineShares(picked), secret, `mask ${mask}`);
  }
  const big = splitSecret(secret, 22, 14, random);
  for (let trial = 0; trial < 20; trial++) assert.deepEqual(combineShares(subset(big, 14, random)), secret);
  const other = splitSecret(random(32), 22, 14, random);
  const mixed = [...big.slice(0, 13), other[13] as Uint8Array];
  assert.notDeepEqual(combineShares(mixed), secret);
});

test('t - 1 shares are independent of the secret: uniform for every secret (exhaustive)', () => {
  // t = 2: for each of the 256 one-byte secrets, the 256 possible coefficients send any single
  // share to each of the 256 values exactly once.
  for (let s = 0; s < 256; s++) {
    const seen = [new Uint8Array(256), new Uint8Array(256), new Uint8Array(256)];
    for (let a = 0; a < 256; a++) {
      const shares = splitSecret(Uint8Array.of(s), 3, 2, scripted(Uint8Array.of(a)));
      shares.forEach((share, j) => bump(seen[j], share[0]));
    }
    for (const counts of seen) assert.ok(counts.every((c) => c === 1), `secret ${s}`);
  }
  // t = 3: over all 65536 coefficient pairs, every pair of the 4 shares takes each of the 65536
  // value pairs exactly once, whatever the secret.
  for (const s of [0x00, 0x01, 0x5a, 0xff]) {
    const seen = Array.from({ length: 6 }, () => new Uint8Array(65536));
    const pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]] as const;
    const coefficients = new Uint8Array(2);
    for (let c = 0; c < 65536; c++) {
      coefficients[0] = c >> 8;
      coefficients[1] = c & 0xff;
      const shares = splitSecret(Uint8Array.of(s), 4, 3, scripted(coefficients));
      pairs.forEach(([a, b], p) => bump(seen[p], ((shares[a]?.[0] as number) << 8) | (shares[b]?.[0] as number)));
    }
    for (const counts of seen) assert.ok(counts.every((c) => c === 1), `secret ${s}`);
  }
});

test('splitting is a function of the randomness; the coefficient buffer is wiped', () => {
  const secret = seededBytes('shamir secret')(32);
  assert.deepEqual(splitSecret(secret, 10, 7, seededBytes('seed')), splitSecret(secret, 10, 7, seededBytes('seed')));
  assert.notDeepEqual(splitSecret(secret, 10, 7, seededBytes('seed')), splitSecret(secret, 10, 7, seededBytes('other')));
  let handed: Uint8Array | undefined;
  const source = seededBytes('wipe');
  const shares = splitSecret(secret, 10, 7, (n) => (handed = source(n)));
  assert.equal(handed?.length, 6 * 32);
  assert.ok(handed.every((b) => b === 0));
  assert.deepEqual(combineShares(shares.slice(3)), secret);
  // The default CSPRNG gives fresh shares every time.
  assert.notDeepEqual(splitSecret(secret, 3, 2), splitSecret(secret, 3, 2));
  assert.deepEqual(combineShares(splitSecret(secret, 3, 2).slice(1)), secret);
});

test('Buffers are accepted as secrets and shares', () => {
  const secret = Buffer.from(seededBytes('buffer')(33));
  const shares = splitSecret(secret, 4, 2).map((s) => Buffer.from(s));
  assert.deepEqual(combineShares(shares.slice(2)), new Uint8Array(secret));
});

function refuses(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: { code?: unknown; message?: unknown }) => {
    assert.equal(err.code, code);
    assert.match(String(err.message), message);
    return true;
  });
}

test('split refuses bad thresholds, counts, secrets and randomness with CONFIG_INVALID', () => {
  const secret = new Uint8Array(32).fill(7);
  const config = ErrorCodes.CONFIG_INVALID;
  refuses(() => splitSecret(secret, 5, 1), config, /threshold.*t=1\b/);
  refuses(() => splitSecret(secret, 5, 0), config, /threshold.*t=0\b/);
  refuses(() => splitSecret(secret, 5, 6), config, /threshold.*shares = 5, got t=6\b/);
  refuses(() => splitSecret(secret, 5, 2.5), config, /threshold.*t=2\.5\b/);
  refuses(() => splitSecret(secret, 5, Number.NaN), config, /threshold.*t=NaN/);
  refuses(() => splitSecret(secret, 256, 2), config, /shares.*got 256\b/);
  refuses(() => splitSecret(secret, 256, 200), config, /shares.*got 256\b/);
  refuses(() => splitSecret(secret, 1, 2), config, /shares.*got 1\b/);
  refuses(() => splitSecret(new Uint8Array(0), 5, 3), config, /secret.*0 bytes/);
  refuses(() => splitSecret('secret' as unknown as Uint8Array, 5, 3), config, /secret.*got string/);
  refuses(() => splitSecret(secret, 5, 3, () => new Uint8Array(10)), config, /random.*asked for 64 bytes, got 10 bytes/);
});

test('combine refuses too few shares, unequal lengths, zero or duplicate x with MALFORMED', () => {
  const shares = splitSecret(new Uint8Array(32).fill(9), 5, 3, seededBytes('refusals'));
  const malformed = ErrorCodes.MALFORMED;
  const withX = (share: Uint8Array, x: number): Uint8Array => {
    const copy = share.slice();
    copy[copy.length - 1] = x;
    return copy;
  };
  const [s0, s1, s2] = shares as [Uint8Array, Uint8Array, Uint8Array];
  refuses(() => combineShares([s0]), malformed, /at least 2 shares.*got 1\b/);
  refuses(() => combineShares([]), malformed, /at least 2 shares.*got 0\b/);
  refuses(() => combineShares([s0, s1, withX(s2, xOf(s0))]), malformed, new RegExp(`shares 0 and 2 both have x-coordinate ${xOf(s0)}\\b`));
  refuses(() => combineShares([s0, s1, s0]), malformed, /shares 0 and 2 both have x-coordinate/);
  refuses(() => combineShares([s0, withX(s1, 0), s2]), malformed, /share 1 has x-coordinate 0/);
  refuses(() => combineShares([s0, s1, s2.subarray(1)]), malformed, /share 2 is 32 bytes but share 0 is 33/);
  refuses(() => combineShares([s0.subarray(0, 1), s1.subarray(0, 1)]), malformed, /share 0 must be .* at least 2 bytes/);
  refuses(() => combineShares([s0, [1, 2] as unknown as Uint8Array]), malformed, /share 1 is not a Uint8Array/);
  refuses(() => combineShares(Array.from({ length: 256 }, () => s0)), malformed, /at most 255 shares.*got 256\b/);
});

test('combineShares is synchronous; the async wrappers delegate to the sync functions', async () => {
  const secret = seededBytes('sync')(32);
  const shares = splitSecret(secret, 3, 2);
  assert.ok(Array.isArray(shares));
  const out: unknown = combineShares(shares.slice(0, 2));
  assert.ok(out instanceof Uint8Array);
  assert.ok(!(out instanceof Promise) && typeof (out as { then?: unknown }).then === 'undefined');
  assert.deepEqual(out, secret);

  const viaAsync = await shareSecret(secret, 4, 3);
  assert.equal(viaAsync.length, 4);
  assert.deepEqual(await reconstructSecret(viaAsync.slice(1)), secret);
  assert.deepEqual(await combine(viaAsync.slice(0, 3)), secret);
  // Errors surface as rejections, as before.
  await assert.rejects(shareSecret(secret, 4, 5), { code: ErrorCodes.CONFIG_INVALID });
  await assert.rejects(reconstructSecret([viaAsync[0] as Uint8Array]), { code: ErrorCodes.MALFORMED });
});
