// Key derivations shared by agents and the coordinator. Every PRG key and nonce is bound to the
// protocol id and the session id (domain separation): a mask from one round never reappears in
// another, even if an agent reused its keys.
import { createHash } from 'node:crypto';
import { canonicalDigest, decodeCanonical } from './canonical.js';
import { bytesEqual, hkdf, x25519 } from './crypto.js';
import { PROTOCOL_ID, expectRecord } from './messages.js';
import { PRG_NONCE_LENGTH } from './prg.js';

function sessionSalt(session: string): Uint8Array {
  return canonicalDigest(['fedclr/secagg+ salt', PROTOCOL_ID, session]);
}

/** Nonce of every mask stream of a session (keys are already unique per session and pair). */
export function maskNonce(session: string): Uint8Array {
  return canonicalDigest(['fedclr/secagg+ mask nonce', PROTOCOL_ID, session]).subarray(0, PRG_NONCE_LENGTH);
}

/** PRG key of agent `owner`'s self mask, from its 32-byte seed b_u. */
export function selfMaskKey(seed: Uint8Array, session: string, owner: string): Uint8Array {
  return hkdf(seed, sessionSalt(session), canonicalDigest(['self-mask', owner]));
}

/** +1 if `self` adds PRG(s_uv) for neighbour `peer`, -1 if it subtracts (lower id adds). */
export function pairwiseSign(self: string, peer: string): 1 | -1 {
  return self < peer ? 1 : -1;
}

/**
 * s_uv: HKDF of the X25519 point between u's mask secret key and v's mask public key, bound to
 * both ids and both public keys (ordered by id) so u and v derive the same key.
 */
export function pairwiseMaskKey(
  session: string,
  self: string,
  selfPublicKey: Uint8Array,
  selfSecretKey: Uint8Array,
  peer: string,
  peerPublicKey: Uint8Array,
): Uint8Array {
  const point = x25519(selfSecretKey, peerPublicKey, peer);
  const [a, pa, b, pb] =
    self < peer ? [self, selfPublicKey, peer, peerPublicKey] : [peer, peerPublicKey, self, selfPublicKey];
  return hkdf(point, sessionSalt(session), canonicalDigest(['pairwise-mask', a, pa, b, pb]));
}

/** Binding commitment to the self-mask seed, so a bad reconstruction is detected. */
export function seedCommitment(session: string, owner: string, seed: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash('sha256')
      .update(canonicalDigest(['fedclr/secagg+ seed commitment', PROTOCOL_ID, session, owner]))
      .update(seed)
      .digest(),
  );
}

export const SEED_LENGTH = 32;
/** shamir-secret-sharing shares are the secret length plus one x-coordinate byte. */
export const SHARE_LENGTH = SEED_LENGTH + 1;

/** A neighbour's two shares and their salts, as decrypted by their holder. */
export interface OpenedShares {
  readonly seedShare: Uint8Array;
  readonly seedSalt: Uint8Array;
  readonly keyShare: Uint8Array;
  readonly keySalt: Uint8Array;
}

/** Random salt inside each encrypted share, so a share commitment hides the share. */
export const SHARE_SALT_LENGTH = 16;

/**
 * Commitment of `owner` to the share of kind `kind` it gave `holder`. The owner publishes it in
 * its signed share-keys message; a revealed share that does not match is a bad share of that
 * holder, and is skipped (robust reconstruction).
 */
export function shareCommitment(
  session: string,
  owner: string,
  holder: string,
  kind: 'seed' | 'key',
  share: Uint8Array,
  salt: Uint8Array,
): Uint8Array {
  return canonicalDigest(['fedclr/secagg+ share commitment', PROTOCOL_ID, session, owner, holder, kind, share, salt]);
}

const SIGNED_STATEMENT_CONTEXT = 'fedclr/secagg+/1 statement\0';

/**
 * What an agent signs for each encrypted share: a recipient complains (revealing the one inbox
 * secret that opens it) only about a ciphertext its sender signed, so a coordinator that garbles
 * ciphertexts cannot harvest inbox secrets; it only makes the recipient leave.
 */
export function shareStatement(
  session: string,
  from: string,
  to: string,
  share: { readonly nonce: Uint8Array; readonly ciphertext: Uint8Array; readonly seedShareCommitment: Uint8Array; readonly keyShareCommitment: Uint8Array },
): Uint8Array {
  return canonicalDigest([
    SIGNED_STATEMENT_CONTEXT,
    'encrypted-share',
    PROTOCOL_ID,
    session,
    from,
    to,
    share.nonce,
    share.ciphertext,
    share.seedShareCommitment,
    share.keyShareCommitment,
  ]);
}

/**
 * What an agent signs for each neighbour in its advertisement: its two session keys and the
 * inbox key it made for that neighbour. The coordinator relays each neighbour only its own
 * entry with this signature (O(k) per agent; relaying whole advertisements, whose signature
 * needs every neighbour's inbox key, made the keys stage O(n k^2): 2 MB per agent at k = 162).
 */
export function neighbourKeysStatement(
  session: string,
  owner: string,
  holder: string,
  keys: { readonly encryptionKey: Uint8Array; readonly maskKey: Uint8Array; readonly inboxKey: Uint8Array },
): Uint8Array {
  return canonicalDigest([SIGNED_STATEMENT_CONTEXT, 'neighbour-keys', PROTOCOL_ID, session, owner, holder, keys.encryptionKey, keys.maskKey, keys.inboxKey]);
}

/**
 * What an agent signs in its masked input: the participant set it masked with. Every neighbour
 * that will reveal its seed checks it against its own view, so the coordinator cannot show the
 * agent a smaller participant list than everybody else (the split-view attack).
 */
export function maskedWithStatement(session: string, agent: string, participants: readonly string[]): Uint8Array {
  return canonicalDigest([SIGNED_STATEMENT_CONTEXT, 'masked-with', PROTOCOL_ID, session, agent, [...participants].sort()]);
}

/** What an agent signs in the consistency stage: the one survivor/dropout view it accepts. */
export function consistencyStatement(session: string, survivors: readonly string[], dropouts: readonly string[]): Uint8Array {
  return canonicalDigest([SIGNED_STATEMENT_CONTEXT, 'consistency', PROTOCOL_ID, session, [...survivors].sort(), [...dropouts].sort()]);
}

/**
 * Checks a decrypted share plaintext against the sender's commitments; a string says what is
 * wrong. Shared with the coordinator, which re-runs it to judge a complaint.
 */
export function checkSharePlaintext(
  opened: Uint8Array,
  session: string,
  from: string,
  to: string,
  seedCommit: Uint8Array,
  keyCommit: Uint8Array,
): OpenedShares | string {
  let plain: Record<string, unknown>;
  try {
    plain = expectRecord('share plaintext', decodeCanonical(opened, 'share plaintext'));
  } catch (err) {
    return `the plaintext does not decode (${(err as Error).message})`;
  }
  if (plain.protocol !== PROTOCOL_ID || plain.session !== session || plain.from !== from || plain.to !== to) {
    return 'the plaintext was made for another session or pair';
  }
  const bytes = (key: string, length: number): Uint8Array | undefined => {
    const v = plain[key];
    return v instanceof Uint8Array && v.length === length ? v : undefined;
  };
  const seedShare = bytes('seedShare', SHARE_LENGTH);
  const seedSalt = bytes('seedSalt', SHARE_SALT_LENGTH);
  const keyShare = bytes('keyShare', SHARE_LENGTH);
  const keySalt = bytes('keySalt', SHARE_SALT_LENGTH);
  if (seedShare === undefined || seedSalt === undefined || keyShare === undefined || keySalt === undefined) {
    return 'the plaintext lacks a share or salt of the right length';
  }
  if (!bytesEqual(shareCommitment(session, from, to, 'seed', seedShare, seedSalt), seedCommit)) return 'the seed share does not match its commitment';
  if (!bytesEqual(shareCommitment(session, from, to, 'key', keyShare, keySalt), keyCommit)) return 'the mask-key share does not match its commitment';
  return { seedShare, seedSalt, keyShare, keySalt };
}
