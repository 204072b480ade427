// Agent identity: Ed25519 signature checks (node:crypto, no extra dependency; byte-compatible
// with tweetnacl's nacl.sign.detached on the agent). Who may join is admission.ts.
//
// Handshake: the hello carries the agent's public key; the welcome carries a fresh random
// session id; the agent's first message after it, `ready`, must be signed over
// signingPayload(ready, sessionId), which proves possession of the secret key and binds the
// session. Every later message is signed the same way (a signature cannot be replayed into
// another session because the session id is inside the signed bytes).
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { signingPayload } from '@fedclr/protocol';
import type { AgentMessage } from '@fedclr/protocol';
import { BadPublicKeyError } from './errors.js';

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A KeyObject for a raw 32-byte Ed25519 public key. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new BadPublicKeyError(`(${raw.length} bytes)`);
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** True when `sig` is a valid Ed25519 signature of `data` under `key`. */
export function verifyEd25519(key: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64) return false;
  return verify(null, data, key, sig);
}

/** True when the message carries a valid signature for this session. */
export function verifyMessage(key: KeyObject, message: AgentMessage, sessionId: string): boolean {
  const sig = 'sig' in message ? message.sig : undefined;
  if (sig === undefined) return false;
  return verifyEd25519(key, signingPayload(message, sessionId), sig);
}

/** Parses a 32-byte key given as 64 hex characters or base64/base64url. */
export function parsePublicKey(text: string): Buffer {
  const t = text.trim();
  let b: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(t)) b = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) b = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  else throw new BadPublicKeyError(JSON.stringify(t.slice(0, 80)));
  if (b.length !== 32) throw new BadPublicKeyError(JSON.stringify(t.slice(0, 80)));
  return b;
}
