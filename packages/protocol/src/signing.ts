// What an agent signs. DESIGN: every protocol message an agent sends is signed with its
// Ed25519 identity key. Signing itself (tweetnacl) lives outside this package; this module
// defines the exact bytes: a domain tag, the session id from `welcome` (so a signed message
// cannot be replayed into another session), and a canonical serialization of the message
// without its `sig` field. Binary fields enter as their length and sha256, so signing a large
// update costs one native hash pass, not a JSON dump.
//
//   payload = "fedclr-sig-v1\0" || sessionId || "\0" || canonicalJson(message minus sig)
//   canonicalJson: object keys sorted, undefined skipped, Uint8Array -> {"$bytes":len,"$sha256":hex}
import { createHash, createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { InvalidValueError } from './errors.js';
import type { AgentMessage, CoordinatorMessage } from './schemas.js';

const DOMAIN = 'fedclr-sig-v1\0';

/** Canonical JSON of a message (or any JSON-like value with Uint8Array leaves), without `sig`. */
export function canonicalJson(value: unknown): string {
  return write(value, true);
}

function write(v: unknown, top: boolean): string {
  if (v instanceof Uint8Array) {
    const digest = createHash('sha256').update(v).digest('hex');
    return `{"$bytes":${v.length},"$sha256":"${digest}"}`;
  }
  if (Array.isArray(v)) return `[${v.map((x) => write(x === undefined ? null : x, false)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined && !(top && k === 'sig'))
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${write(obj[k], false)}`).join(',')}}`;
  }
  if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new InvalidValueError('(signing)', '(number)', 'a finite number', String(v));
  }
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || v === null) return JSON.stringify(v);
  throw new InvalidValueError('(signing)', '(value)', 'JSON-like data or Uint8Array', typeof v);
}

/** The bytes an agent signs (and the coordinator verifies) for `message` in session `sessionId`. */
export function signingPayload(message: AgentMessage, sessionId: string): Buffer {
  return Buffer.from(`${DOMAIN}${sessionId}\0${canonicalJson(message)}`, 'utf8');
}

// ---- coordinator -> agent --------------------------------------------------------------------
//
// Every coordinator message (welcome, round-start, round-end, update-rejected, shutdown, secagg)
// is signed with the coordinator's Ed25519 identity over a payload bound to one connection:
//
//   payload = "fedclr-coordinator-sig-v1\0" || agentId || "\0" || hex(nonce) || "\0" || sessionId
//             || "\0" || canonicalJson(message minus sig)
//
// `nonce` is the fresh random value the agent sent in this connection's hello, so the
// coordinator (or anyone on the path) cannot reuse a signature in another connection; agentId
// re-addresses nothing; sessionId is the one of this connection's welcome (for the welcome
// itself: its own sessionId field). A distinct domain tag keeps the two directions apart: an
// agent's signature can never pass as the coordinator's, nor the reverse. `reject` is not
// signed: its layout is frozen across majors (see version.ts).

const COORDINATOR_DOMAIN = 'fedclr-coordinator-sig-v1\0';

/** What a coordinator signature is bound to: one agent's one connection. */
export interface ConnectionBinding {
  /** The agent id the agent announced in hello (the connection's addressee). */
  readonly agentId: string;
  /** The agent's hello.nonce for this connection (32 bytes). */
  readonly nonce: Uint8Array;
  /** The session id of this connection's welcome. */
  readonly sessionId: string;
}

/** A coordinator message that carries a signature (everything but reject). */
export type SignedCoordinatorMessage = Exclude<CoordinatorMessage, { type: 'reject' }>;

/**
 * The bytes the coordinator signs (and the agent verifies) for `message` on `binding`'s
 * connection. `canonical` may pass canonicalJson(message) computed once for a message sent to
 * many agents (the same round-start to a whole cohort: one hash of the weights, not one per agent).
 */
export function coordinatorSigningPayload(message: SignedCoordinatorMessage, binding: ConnectionBinding, canonical: string = canonicalJson(message)): Buffer {
  const nonce = Buffer.from(binding.nonce.buffer, binding.nonce.byteOffset, binding.nonce.byteLength).toString('hex');
  return Buffer.from(`${COORDINATOR_DOMAIN}${binding.agentId}\0${nonce}\0${binding.sessionId}\0${canonical}`, 'utf8');
}

const b64url = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

/** A node:crypto key for a tweetnacl-layout Ed25519 secret key (seed || public key), cached per array. */
function edPrivateKey(secretKey: Uint8Array): KeyObject {
  let key = privateKeys.get(secretKey);
  if (key === undefined) {
    if (secretKey.length !== 64) throw new InvalidValueError('(signing)', 'secretKey', 'a 64-byte Ed25519 secret key (tweetnacl layout)', `${secretKey.length} bytes`);
    key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64url(secretKey.subarray(0, 32)), x: b64url(secretKey.subarray(32)) }, format: 'jwk' });
    privateKeys.set(secretKey, key);
  }
  return key;
}

/** Ed25519 detached signature (node:crypto; the same bytes as tweetnacl's nacl.sign.detached). */
export function ed25519Sign(data: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, data, edPrivateKey(secretKey)));
}

// Encodings of the small-order points (libsodium's blocklist): under such a "key" a trivial
// signature verifies for many messages, so none of them may ever be a coordinator key.
const SMALL_ORDER_KEYS: ReadonlySet<string> = new Set([
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
]);

/** True for a 32-byte value usable as an Ed25519 public key here (not a small-order point). */
export function isUsableEd25519Key(publicKey: Uint8Array): boolean {
  return publicKey instanceof Uint8Array && publicKey.length === 32 && !SMALL_ORDER_KEYS.has(Buffer.from(publicKey).toString('hex'));
}

/** Ed25519 verification; false (never a throw) for malformed or small-order keys and bad signatures. */
export function ed25519Verify(data: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  if (!isUsableEd25519Key(publicKey)) return false;
  try {
    return nodeVerify(null, data, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(publicKey) }, format: 'jwk' }), signature);
  } catch {
    return false;
  }
}

/** Returns a copy of `message` with `sig` set: the coordinator's signature for this connection. */
export function signCoordinatorMessage<M extends SignedCoordinatorMessage>(message: M, binding: ConnectionBinding, secretKey: Uint8Array, canonical?: string): M {
  const sig = ed25519Sign(coordinatorSigningPayload(message, binding, canonical), secretKey);
  return { ...message, sig };
}

/** Why a coordinator message failed verification (undefined: it verified). */
export type CoordinatorSignatureProblem = 'unsigned' | 'bad-signature';

/** Checks `message.sig` under `publicKey` for this connection. */
export function verifyCoordinatorMessage(
  message: SignedCoordinatorMessage,
  binding: ConnectionBinding,
  publicKey: Uint8Array,
): CoordinatorSignatureProblem | undefined {
  const sig = message.sig;
  if (sig === undefined) return 'unsigned';
  return ed25519Verify(coordinatorSigningPayload(message, binding), sig, publicKey) ? undefined : 'bad-signature';
}
