// Native fast paths equal tweetnacl byte for byte; PRG determinism and uniformity; canonical
// encoding round trips and is injective where it matters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import nacl from 'tweetnacl';
import {
  ErrorCodes,
  PRG_ALGORITHMS,
  addPrg,
  applyMasks,
  boxBefore,
  canonicalDigest,
  canonicalLength,
  decodeCanonical,
  encodeCanonical,
  generateBoxKeyPair,
  generateSigningKeyPair,
  maskNonce,
  pairwiseMaskKey,
  prgWords,
  selfMaskKey,
  signDetached,
  verifyDetached,
  x25519,
} from '../src/index.js';
import { naclLowLevel } from '../src/crypto.js';
import { CHI2_255_P001, chiSquareBytes, keyFrom, seededBytes } from './helpers.js';

test('Ed25519: native keys and signatures equal tweetnacl, both verify each other', () => {
  const random = seededBytes('ed25519');
  for (let i = 0; i < 8; i++) {
    const seed = random(32);
    const ours = generateSigningKeyPair(() => seed);
    const theirs = nacl.sign.keyPair.fromSeed(seed);
    assert.deepEqual(ours.publicKey, theirs.publicKey);
    assert.deepEqual(ours.secretKey, theirs.secretKey);
    const message = random(100 + i);
    const sig = signDetached(message, theirs.secretKey);
    assert.deepEqual(sig, nacl.sign.detached(message, theirs.secretKey));
    assert.ok(verifyDetached(message, sig, theirs.publicKey));
    assert.ok(nacl.sign.detached.verify(message, sig, ours.publicKey));
    message[0] = (message[0] as number) ^ 1;
    assert.ok(!verifyDetached(message, sig, theirs.publicKey));
  }
  assert.ok(!verifyDetached(new Uint8Array(1), new Uint8Array(10), new Uint8Array(32)));
});

test('X25519 and box keys equal nacl.scalarMult and nacl.box.before', () => {
  const random = seededBytes('x25519');
  for (let i = 0; i < 8; i++) {
    const a = generateBoxKeyPair(random);
    const b = generateBoxKeyPair(random);
    assert.deepEqual(a.publicKey, nacl.box.keyPair.fromSecretKey(a.secretKey).publicKey);
    assert.deepEqual(x25519(a.secretKey, b.publicKey, 'b'), nacl.scalarMult(a.secretKey, b.publicKey));
    assert.deepEqual(boxBefore(b.publicKey, a.secretKey, 'b'), nacl.box.before(b.publicKey, a.secretKey));
    assert.deepEqual(x25519(a.secretKey, b.publicKey, 'b'), x25519(b.secretKey, a.publicKey, 'a'));
  }
});

test('box key pairs (X25519 private keys imported from d alone) are nacl key pairs, for many secrets', () => {
  for (let i = 0; i < 64; i++) {
    const pair = generateBoxKeyPair();
    assert.deepEqual(pair.publicKey, nacl.box.keyPair.fromSecretKey(pair.secretKey).publicKey);
  }
  const a = generateBoxKeyPair();
  const b = generateBoxKeyPair();
  assert.equal(a.secretKey.length, 32);
  assert.notDeepEqual(a.secretKey, b.secretKey);
  assert.deepEqual(x25519(a.secretKey, b.publicKey, 'b'), nacl.scalarMult(a.secretKey, b.publicKey));
  assert.deepEqual(boxBefore(b.publicKey, a.secretKey, 'b'), nacl.box.before(b.publicKey, a.secretKey));
});

test('X25519 rejects small-order public keys with WEAK_KEY', () => {
  const a = generateBoxKeyPair(seededBytes('weak'));
  assert.throws(() => x25519(a.secretKey, new Uint8Array(32), 'zero'), { code: ErrorCodes.WEAK_KEY });
  const one = new Uint8Array(32);
  one[0] = 1;
  assert.throws(() => x25519(a.secretKey, one, 'one'), { code: ErrorCodes.WEAK_KEY });
  assert.throws(() => x25519(a.secretKey, new Uint8Array(31), 'short'), { code: ErrorCodes.WEAK_KEY });
});

test('pairwise mask keys agree between the two ends and differ across sessions', () => {
  const random = seededBytes('pairwise');
  const u = generateBoxKeyPair(random);
  const v = generateBoxKeyPair(random);
  const kuv = pairwiseMaskKey('s1', 'u', u.publicKey, u.secretKey, 'v', v.publicKey);
  const kvu = pairwiseMaskKey('s1', 'v', v.publicKey, v.secretKey, 'u', u.publicKey);
  assert.deepEqual(kuv, kvu);
  assert.notDeepEqual(kuv, pairwiseMaskKey('s2', 'u', u.publicKey, u.secretKey, 'v', v.publicKey));
  const seed = random(32);
  assert.notDeepEqual(selfMaskKey(seed, 's1', 'u'), selfMaskKey(seed, 's2', 'u'));
  assert.notDeepEqual(selfMaskKey(seed, 's1', 'u'), selfMaskKey(seed, 's1', 'v'));
  assert.notDeepEqual(maskNonce('s1'), maskNonce('s2'));
});

test('PRG: deterministic, algorithm-separated, prefix-consistent, and addPrg(+1) then addPrg(-1) cancels', () => {
  const key = keyFrom('prg-key');
  const nonce = keyFrom('prg-nonce').subarray(0, 24);
  for (const algorithm of PRG_ALGORITHMS) {
    const a = prgWords(40000, key, nonce, algorithm);
    assert.deepEqual(a, prgWords(40000, key, nonce, algorithm));
    assert.deepEqual(a.subarray(0, 1000), prgWords(1000, key, nonce, algorithm));
    const acc = new Uint32Array(40000).map((_, i) => i * 2654435761);
    const original = acc.slice();
    addPrg(acc, key, nonce, 1, algorithm);
    assert.notDeepEqual(acc, original);
    addPrg(acc, key, nonce, -1, algorithm);
    assert.deepEqual(acc, original);
  }
  assert.notDeepEqual(prgWords(16, key, nonce, 'aes-256-ctr'), prgWords(16, key, nonce, 'chacha20'));
  // XSalsa20 is tweetnacl's crypto_stream.
  const expected = new Uint8Array(64);
  naclLowLevel.crypto_stream(expected, 0, 64, nonce, key);
  const words = prgWords(16, key, nonce, 'xsalsa20');
  assert.deepEqual(new Uint8Array(words.buffer), expected);
});

test('applyMasks (chunk-major, many terms) equals one addPrg per term', () => {
  const nonce = keyFrom('many-nonce').subarray(0, 24);
  const terms = [1, -1, -1, 1, 1].map((sign, i) => ({ key: keyFrom(`many-${i}`), nonce, sign: sign as 1 | -1 }));
  for (const algorithm of PRG_ALGORITHMS) {
    // Not a multiple of the 16384-word chunk.
    const base = new Uint32Array(40001).map((_, i) => i * 40503);
    const fused = base.slice();
    applyMasks(fused, terms, algorithm);
    const sequential = base.slice();
    for (const t of terms) addPrg(sequential, t.key, t.nonce, t.sign, algorithm);
    assert.deepEqual(fused, sequential);
  }
});

test('PRG output is uniform (chi-square on bytes, p = 0.001, fixed seed)', () => {
  const key = keyFrom('chi-prg');
  const nonce = new Uint8Array(24);
  for (const algorithm of PRG_ALGORITHMS) {
    const words = prgWords(65536, key, nonce, algorithm);
    const chi = chiSquareBytes(new Uint8Array(words.buffer));
    assert.ok(chi < CHI2_255_P001, `${algorithm}: chi-square ${chi}`);
  }
});

test('canonical encoding: round trip, key order independence, distinct values distinct bytes', () => {
  const value = {
    b: [1, -0, 2.5, 'x', true, false],
    a: new Uint8Array([1, 2, 3]),
    w: new Uint32Array([0, 0xffffffff, 7]),
    nested: { z: 'last', y: [new Uint8Array(0)] },
  };
  const bytes = encodeCanonical(value);
  assert.deepEqual(decodeCanonical(bytes), { ...value, b: [1, 0, 2.5, 'x', true, false] });
  const reordered = { nested: value.nested, w: value.w, a: value.a, b: value.b };
  assert.deepEqual(encodeCanonical(reordered), bytes);
  // Boundaries are unambiguous: ['ab','c'] vs ['a','bc'], bytes vs string.
  assert.notDeepEqual(canonicalDigest(['ab', 'c']), canonicalDigest(['a', 'bc']));
  assert.notDeepEqual(canonicalDigest(new Uint8Array([97])), canonicalDigest('a'));
  assert.throws(() => decodeCanonical(new Uint8Array([...bytes, 0])), { code: ErrorCodes.MALFORMED });
  assert.throws(() => decodeCanonical(bytes.subarray(0, bytes.length - 1)), { code: ErrorCodes.MALFORMED });
  // A decoded '__proto__' key would set the prototype (fields the signature never covered).
  // {'__proto__': {}} as tagged bytes: object(1) string(9) '__proto__' object(0).
  const evil = new Uint8Array([8, 1, 0, 0, 0, 1, 9, 0, 0, 0, ...new TextEncoder().encode('__proto__'), 8, 0, 0, 0, 0]);
  assert.throws(() => decodeCanonical(evil), { code: ErrorCodes.MALFORMED });
  assert.throws(() => encodeCanonical({ x: Number.NaN }), { code: ErrorCodes.MALFORMED });
});

/** The canonical encoding written out plainly (tag, u32 LE length, bytes): the oracle for the chunked encoder. */
function referenceEncoding(value: unknown): Buffer {
  const head = (tag: number, length: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = tag;
    b.writeUInt32LE(length, 1);
    return b;
  };
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(1, bytes.length), bytes]);
  }
  if (typeof value === 'number') {
    const b = Buffer.alloc(9);
    b[0] = 2;
    b.writeDoubleLE(value === 0 ? 0 : value, 1);
    return b;
  }
  if (typeof value === 'boolean') return Buffer.from([value ? 4 : 3]);
  if (value instanceof Uint8Array) return Buffer.concat([head(5, value.length), value]);
  if (value instanceof Uint32Array) return Buffer.concat([head(6, value.length), Buffer.from(value.buffer, value.byteOffset, value.byteLength)]);
  if (Array.isArray(value)) return Buffer.concat([head(7, value.length), ...value.map(referenceEncoding)]);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  return Buffer.concat([head(8, keys.length), ...keys.flatMap((k) => [referenceEncoding(k), referenceEncoding(record[k])])]);
}

test('canonical encoding of a value much larger than the encoder chunk equals the plain encoding', () => {
  const random = seededBytes('chunks');
  // A keys-message-like value: thousands of small items, plus items that bypass the chunk.
  const value = {
    advertisements: Array.from({ length: 3000 }, (_, i) => ({ peer: `agent-${i}-é€😀`, key: random(32), n: i / 7, ok: i % 2 === 0 })),
    big: random(100_000),
    words: new Uint32Array(20_000).map((_, i) => i * 2654435761),
    long: 'ü'.repeat(300) + 'x'.repeat(70_000),
    exactlyHalfChunk: random(32 * 1024),
  };
  const bytes = encodeCanonical(value);
  assert.ok(bytes.length > 500_000);
  assert.ok(Buffer.from(bytes).equals(referenceEncoding(value)));
  assert.equal(canonicalLength(value), bytes.length);
  assert.deepEqual(canonicalDigest(value), new Uint8Array(createHash('sha256').update(bytes).digest()));
  assert.deepEqual(decodeCanonical(bytes), value);
  // The shared chunk is released after a failed encoding: the next one is still right.
  assert.throws(() => encodeCanonical({ a: 'x'.repeat(70_000), b: Number.NaN }), { code: ErrorCodes.MALFORMED });
  assert.ok(Buffer.from(encodeCanonical(value)).equals(Buffer.from(bytes)));
});
