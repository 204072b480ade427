// Crypto helpers. Keys and formats are tweetnacl's (Ed25519 `nacl.sign` key pairs, X25519
// `nacl.box` key pairs, `nacl.box` ciphertexts); the hot paths (Ed25519 sign/verify, X25519) run
// on node:crypto, which computes the same functions 15-50x faster than tweetnacl's JS. The test
// suite checks byte-for-byte equality with nacl.sign.detached, nacl.scalarMult and nacl.box.before.
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  randomBytes as nodeRandomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import nacl from 'tweetnacl';
import { InternalError, WeakKeyError } from './errors.js';

/** Source of uniformly random bytes. Defaults to node:crypto's CSPRNG; tests inject a seeded one. */
export type RandomBytes = (length: number) => Uint8Array;

export const defaultRandomBytes: RandomBytes = (length) => new Uint8Array(nodeRandomBytes(length));

/** Long-term identity: an Ed25519 key pair as produced by `nacl.sign.keyPair()`. */
export interface SigningKeyPair {
  readonly publicKey: Uint8Array; // 32 bytes
  readonly secretKey: Uint8Array; // 64 bytes: seed || public key (tweetnacl layout)
}

/** Per-round X25519 key pair as produced by `nacl.box.keyPair()`. */
export interface BoxKeyPair {
  readonly publicKey: Uint8Array; // 32 bytes
  readonly secretKey: Uint8Array; // 32 bytes
}

// DER prefixes wrapping a raw 32-byte private key (RFC 8410).
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

// Native key objects, cached per secret-key array (by identity, not value): importing costs
// more than using. JWK import with the public part is ~5x faster than DER, which re-derives
// the public key; DER is used where the public key is what we want.
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

function publicFromPrivate(key: KeyObject): Uint8Array {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new InternalError('native key export lacks the public point');
  return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
}

function edPrivateKey(secretKey: Uint8Array): KeyObject {
  let key = privateKeys.get(secretKey);
  if (key === undefined) {
    if (secretKey.length !== 64) throw new InternalError('Ed25519 secret key must be 64 bytes (nacl layout)');
    key = createPrivateKey({
      key: { kty: 'OKP', crv: 'Ed25519', d: b64(secretKey.subarray(0, 32)), x: b64(secretKey.subarray(32)) },
      format: 'jwk',
    });
    privateKeys.set(secretKey, key);
  }
  return key;
}

// Node imports an OKP private JWK from `d` alone (the `x` it requires is not used), ~10x faster
// than PKCS#8 DER, whose OpenSSL 3 decoder made X25519 key pairs 11% of an agent host's CPU (an
// agent makes k + 2 per round, k = 162 at 300 agents). Checked once here against the DER import:
// a Node that checked or used `x` would fall back to DER. (Not generateKeyPairSync: exporting its
// keys deadlocked Node 20.20 when a GC ran the key job's destructor mid-export.)
const PLACEHOLDER_X = b64(new Uint8Array(32));

function xPrivateKeyFromJwk(secretKey: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(secretKey), x: PLACEHOLDER_X }, format: 'jwk' });
}

function xPrivateKeyFromDer(secretKey: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8, secretKey]), format: 'der', type: 'pkcs8' });
}

function jwkImportUsesOnlyD(): boolean {
  const probe = new Uint8Array(32).fill(0x42);
  let fast: KeyObject;
  try {
    fast = xPrivateKeyFromJwk(probe);
  } catch {
    return false; // this Node refuses the placeholder: DER it is
  }
  return bytesEqual(publicFromPrivate(fast), publicFromPrivate(xPrivateKeyFromDer(probe)));
}

const X25519_JWK_IMPORT = jwkImportUsesOnlyD();

function xPrivateKey(secretKey: Uint8Array): KeyObject {
  let key = privateKeys.get(secretKey);
  if (key === undefined) {
    if (secretKey.length !== 32) throw new InternalError('X25519 secret key must be 32 bytes');
    key = X25519_JWK_IMPORT ? xPrivateKeyFromJwk(secretKey) : xPrivateKeyFromDer(secretKey);
    privateKeys.set(secretKey, key);
  }
  return key;
}

/** Same key pair as `nacl.sign.keyPair.fromSeed(random(32))`, derived natively (~15x faster). */
export function generateSigningKeyPair(random: RandomBytes = defaultRandomBytes): SigningKeyPair {
  const seed = random(32);
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = publicFromPrivate(key);
  const secretKey = new Uint8Array(64);
  secretKey.set(seed);
  secretKey.set(publicKey, 32);
  privateKeys.set(secretKey, key);
  return { publicKey, secretKey };
}

/** Same key pair as `nacl.box.keyPair.fromSecretKey(random(32))`, derived natively. */
export function generateBoxKeyPair(random: RandomBytes = defaultRandomBytes): BoxKeyPair {
  const secretKey = random(32).slice();
  return { publicKey: publicFromPrivate(xPrivateKey(secretKey)), secretKey };
}

// Imported public keys, by curve and value: an agent checks each neighbour's X25519 keys and
// then uses them, and verifies many signatures under the same cohort keys. Bounded: the oldest
// entries go first.
const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_PUBLIC_KEYS = 8192;

function okpPublicKey(crv: 'Ed25519' | 'X25519', publicKey: Uint8Array): KeyObject {
  const x = b64(publicKey);
  const id = `${crv}:${x}`;
  let key = publicKeys.get(id);
  if (key === undefined) {
    key = createPublicKey({ key: { kty: 'OKP', crv, x }, format: 'jwk' });
    if (publicKeys.size >= MAX_CACHED_PUBLIC_KEYS) publicKeys.delete(publicKeys.keys().next().value as string);
    publicKeys.set(id, key);
  }
  return key;
}

/** Ed25519 detached signature; identical bytes to `nacl.sign.detached`. */
export function signDetached(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, message, edPrivateKey(secretKey)));
}

/** Ed25519 verification; same verdict as `nacl.sign.detached.verify` for well-formed inputs. */
export function verifyDetached(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  return nodeVerify(null, message, okpPublicKey('Ed25519', publicKey), signature);
}

/**
 * X25519 (RFC 7748), equal to `nacl.scalarMult(secretKey, publicKey)`. Low-order public keys
 * (all-zero output) are rejected: they would make a "shared" secret the server can predict.
 */
export function x25519(secretKey: Uint8Array, publicKey: Uint8Array, whose: string): Uint8Array {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new WeakKeyError(whose, 'an X25519 public key must be 32 bytes');
  }
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: xPrivateKey(secretKey), publicKey: okpPublicKey('X25519', publicKey) });
  } catch (err) {
    // OpenSSL refuses to derive from small-order points; anything else is unexpected.
    if ((err as { code?: unknown }).code === 'ERR_OSSL_FAILED_DURING_DERIVATION') {
      throw new WeakKeyError(whose, 'public key is of small order (shared secret would be zero)');
    }
    throw err;
  }
  const out = new Uint8Array(shared);
  if (out.every((b) => b === 0)) throw new WeakKeyError(whose, 'shared secret is zero');
  return out;
}

interface NaclLowLevel {
  crypto_core_hsalsa20(out: Uint8Array, input: Uint8Array, key: Uint8Array, constant: Uint8Array): number;
  crypto_stream(out: Uint8Array, outPos: number, length: number, nonce: Uint8Array, key: Uint8Array): number;
}

/** tweetnacl's low-level functions (present at runtime, absent from its typings). */
export const naclLowLevel: NaclLowLevel = (nacl as unknown as { lowlevel: NaclLowLevel }).lowlevel;

const SIGMA = new TextEncoder().encode('expand 32-byte k');

/** `nacl.box.before(publicKey, secretKey)`: HSalsa20 of the X25519 point, via native X25519. */
export function boxBefore(publicKey: Uint8Array, secretKey: Uint8Array, whose: string): Uint8Array {
  const shared = x25519(secretKey, publicKey, whose);
  const key = new Uint8Array(32);
  naclLowLevel.crypto_core_hsalsa20(key, new Uint8Array(16), shared, SIGMA);
  return key;
}

/** XSalsa20-Poly1305 (`nacl.box.after`). */
export function boxSeal(plaintext: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array {
  return nacl.box.after(plaintext, nonce, key);
}

/** Opens a `nacl.box.after` ciphertext; null when forged, corrupted or for another key. */
export function boxOpen(ciphertext: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | null {
  if (nonce.length !== nacl.box.nonceLength) return null;
  return nacl.box.open.after(ciphertext, nonce, key);
}

export const BOX_NONCE_LENGTH = nacl.box.nonceLength;

/** HKDF-SHA256. */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length = 32): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Does `secretKey` (X25519) belong to `publicKey`? Used to check reconstructed mask keys. */
const PROBE_SCALAR = new Uint8Array(32).fill(0x5a);

/** Throws WEAK_KEY if `publicKey` is not a usable X25519 public key (wrong length, small order). */
export function assertStrongX25519(publicKey: Uint8Array, whose: string): void {
  x25519(PROBE_SCALAR, publicKey, whose).fill(0);
}

export function x25519PublicMatches(secretKey: Uint8Array, publicKey: Uint8Array): boolean {
  return secretKey.length === 32 && bytesEqual(publicFromPrivate(xPrivateKey(secretKey)), publicKey);
}
