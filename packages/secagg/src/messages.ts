// Protocol messages: plain objects with Uint8Array / Uint32Array fields, no transport.
// Every message is an Envelope signed (Ed25519) by its sender over the canonical encoding of
// (protocol id, session id, stage, sender, recipients, payload): a message replayed into another
// session, moved to another stage, or delivered to someone not among its recipients fails the
// checks below even though its signature is genuine.
import { canonicalDigest, canonicalLength, type CanonicalValue } from './canonical.js';
import { signDetached, verifyDetached } from './crypto.js';
import {
  BadSignatureError,
  MalformedMessageError,
  MisaddressedError,
  ProtocolMismatchError,
  SessionMismatchError,
  UnexpectedStageError,
} from './errors.js';
import type { FixedPointParams } from './encoding.js';
import type { PrgAlgorithm } from './prg.js';

export const PROTOCOL_ID = 'fedclr/secagg+/1';
/** Default id of the coordinator endpoint in envelopes. */
export const DEFAULT_SERVER_ID = 'coordinator';

/**
 * Stages, in protocol order. Server -> agents: setup, keys, shares, participants, check,
 * unmask. Agents -> server: advertise, share-keys, share-check, masked-input, consistency,
 * unmask-response.
 */
export type Stage =
  | 'setup'
  | 'advertise'
  | 'keys'
  | 'share-keys'
  | 'shares'
  | 'share-check'
  | 'participants'
  | 'masked-input'
  | 'check'
  | 'consistency'
  | 'unmask'
  | 'unmask-response';

// A type alias (not an interface) so envelopes nest inside canonical values.
export type Envelope<S extends Stage, P extends CanonicalValue> = {
  readonly protocol: string;
  readonly session: string;
  readonly stage: S;
  readonly sender: string;
  /** Sorted; deliver the message to each of them. */
  readonly recipients: readonly string[];
  readonly payload: P;
  readonly signature: Uint8Array;
};

/** A cohort member as published in the session config. */
export type CohortMember = { readonly id: string; readonly signingKey: Uint8Array };

/** Everything both sides must agree on; carried, signed, in the setup message. */
export type SessionConfig = {
  readonly session: string;
  readonly server: string;
  readonly cohort: readonly CohortMember[];
  readonly graphSeed: Uint8Array;
  readonly dropoutFraction: number;
  readonly corruptFraction: number;
  readonly securityBits: number;
  readonly correctnessBits: number;
  /** Derived k and t (agents re-derive them and refuse a mismatch). */
  readonly neighbours: number;
  readonly threshold: number;
  readonly prg: PrgAlgorithm;
  readonly encoding: FixedPointParams;
};

export type SetupPayload = { readonly config: SessionConfig };
/**
 * A per-neighbour key: `peer` is the other agent, `key` 32 bytes, `signature` the advertiser's
 * over neighbourKeysStatement(session, advertiser, peer, its encryption, mask and this key).
 */
export type PeerKey = { readonly peer: string; readonly key: Uint8Array; readonly signature: Uint8Array };
export type AdvertisePayload = {
  /** Sender side of share encryption (X25519). */
  readonly encryptionKey: Uint8Array;
  /** Pairwise-mask key (X25519). */
  readonly maskKey: Uint8Array;
  /**
   * One inbox key per neighbour (X25519): shares from `peer` are encrypted to it. Revealing one
   * inbox secret proves a bad ciphertext from that neighbour and opens nothing else.
   */
  readonly inboxKeys: readonly PeerKey[];
};
export type AdvertiseMessage = Envelope<'advertise', AdvertisePayload>;
/** What the recipient needs of one neighbour's advertisement, with that neighbour's signature over it. */
export type NeighbourKeys = {
  readonly agent: string;
  readonly encryptionKey: Uint8Array;
  readonly maskKey: Uint8Array;
  /** The neighbour's inbox key for the recipient. */
  readonly inboxKey: Uint8Array;
  /** The PeerKey signature: over neighbourKeysStatement(session, agent, recipient, the three keys). */
  readonly signature: Uint8Array;
};
/** The recipient's own advertisement (to check it was relayed intact) and its neighbours' keys for it. */
export type KeysPayload = { readonly own: AdvertiseMessage; readonly neighbours: readonly NeighbourKeys[] };
export type EncryptedShare = {
  readonly peer: string;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
  /** shareCommitment of the seed share and of the mask-key share inside (with their salts). */
  readonly seedShareCommitment: Uint8Array;
  readonly keyShareCommitment: Uint8Array;
  /** The sender's Ed25519 signature over shareStatement(session, sender, recipient, the fields above). */
  readonly signature: Uint8Array;
};
export type ShareKeysPayload = {
  /** SHA-256 commitment to the self-mask seed, checked after reconstruction. */
  readonly seedCommitment: Uint8Array;
  /** One ciphertext per neighbour that advertised keys; `peer` is the recipient. */
  readonly shares: readonly EncryptedShare[];
};
export type SharesPayload = {
  /** Every agent whose shares were accepted (U2). */
  readonly participants: readonly string[];
  /** Ciphertexts addressed to the recipient; `peer` is the sender. */
  readonly shares: readonly EncryptedShare[];
};
/** A recipient's proof that `peer`'s ciphertext to it is bad: the one inbox secret for `peer`. */
export type Complaint = { readonly peer: string; readonly inboxSecret: Uint8Array; readonly reason: string };
export type ShareCheckPayload = { readonly complaints: readonly Complaint[] };
/** The final masking set (U2 minus agents proven to have sent bad shares, minus the silent). */
export type ParticipantsPayload = { readonly participants: readonly string[] };
export type MaskedInputPayload = {
  readonly masked: Uint32Array;
  /** Signature over maskedWithStatement(session, sender, participants): whom it masked with. */
  readonly maskedWith: Uint8Array;
};
export type AgentSignature = { readonly agent: string; readonly signature: Uint8Array };
export type CheckPayload = {
  readonly survivors: readonly string[];
  readonly dropouts: readonly string[];
  /** The recipient's surviving neighbours' masked-with signatures. */
  readonly maskedWith: readonly AgentSignature[];
};
export type ConsistencyPayload = { readonly signature: Uint8Array };
export type UnmaskPayload = {
  readonly survivors: readonly string[];
  readonly dropouts: readonly string[];
  /** Consistency signatures of the recipient's neighbours over (survivors, dropouts). */
  readonly signatures: readonly AgentSignature[];
};
export type RevealedShare = { readonly owner: string; readonly share: Uint8Array; readonly salt: Uint8Array };
export type UnmaskResponsePayload = {
  /** Shares of the self-mask seeds of surviving neighbours. */
  readonly seedShares: readonly RevealedShare[];
  /** Shares of the mask secret keys of dropped neighbours. */
  readonly keyShares: readonly RevealedShare[];
};
/** Plaintext inside an encrypted share: the ids stop the coordinator rerouting it. */
export type SharePlaintext = {
  readonly protocol: string;
  readonly session: string;
  readonly from: string;
  readonly to: string;
  readonly seedShare: Uint8Array;
  readonly seedSalt: Uint8Array;
  readonly keyShare: Uint8Array;
  readonly keySalt: Uint8Array;
};

export type SetupMessage = Envelope<'setup', SetupPayload>;
export type KeysMessage = Envelope<'keys', KeysPayload>;
export type ShareKeysMessage = Envelope<'share-keys', ShareKeysPayload>;
export type SharesMessage = Envelope<'shares', SharesPayload>;
export type ShareCheckMessage = Envelope<'share-check', ShareCheckPayload>;
export type ParticipantsMessage = Envelope<'participants', ParticipantsPayload>;
export type CheckMessage = Envelope<'check', CheckPayload>;
export type ConsistencyMessage = Envelope<'consistency', ConsistencyPayload>;
export type MaskedInputMessage = Envelope<'masked-input', MaskedInputPayload>;
export type UnmaskMessage = Envelope<'unmask', UnmaskPayload>;
export type UnmaskResponseMessage = Envelope<'unmask-response', UnmaskResponsePayload>;

/** What the coordinator sends to agents. */
export type ServerMessage = SetupMessage | KeysMessage | SharesMessage | ParticipantsMessage | CheckMessage | UnmaskMessage;
/** What agents send to the coordinator. */
export type AgentMessage =
  | AdvertiseMessage
  | ShareKeysMessage
  | ShareCheckMessage
  | MaskedInputMessage
  | ConsistencyMessage
  | UnmaskResponseMessage;
export type SecAggMessage = ServerMessage | AgentMessage;

const SIGNATURE_CONTEXT = new TextEncoder().encode('fedclr/secagg+/1 signature\0');

function signedContent(
  protocol: string,
  session: string,
  stage: Stage,
  sender: string,
  recipients: readonly string[],
  payload: CanonicalValue,
): Uint8Array {
  const digest = canonicalDigest([protocol, session, stage, sender, [...recipients], payload]);
  const out = new Uint8Array(SIGNATURE_CONTEXT.length + digest.length);
  out.set(SIGNATURE_CONTEXT);
  out.set(digest, SIGNATURE_CONTEXT.length);
  return out;
}

export function signEnvelope<S extends Stage, P extends CanonicalValue>(
  fields: { session: string; stage: S; sender: string; recipients: readonly string[]; payload: P },
  secretKey: Uint8Array,
): Envelope<S, P> {
  const recipients = [...fields.recipients].sort();
  const signature = signDetached(
    signedContent(PROTOCOL_ID, fields.session, fields.stage, fields.sender, recipients, fields.payload),
    secretKey,
  );
  return { protocol: PROTOCOL_ID, ...fields, recipients, signature };
}

/** Only the signature; the context checks are in `checkEnvelope`. */
export function envelopeSignatureValid(message: Envelope<Stage, CanonicalValue>, publicKey: Uint8Array): boolean {
  return verifyDetached(
    signedContent(message.protocol, message.session, message.stage, message.sender, message.recipients, message.payload),
    message.signature,
    publicKey,
  );
}

export interface EnvelopeExpectation {
  readonly session: string;
  /** Allowed stages; a message of another stage is UNEXPECTED_STAGE. */
  readonly stages: readonly Stage[];
  /** Describes the receiver's state, for the error message. */
  readonly state: string;
  /** The receiving endpoint; must be among the recipients. */
  readonly recipient: string;
}

/**
 * Structural and context checks, in an order that yields the most specific error: protocol,
 * session (replay), stage, addressing, then the signature under `publicKey`.
 */
export function checkEnvelope(message: unknown, expect: EnvelopeExpectation, publicKey: (sender: string) => Uint8Array): void {
  if (typeof message !== 'object' || message === null) throw new MalformedMessageError('message', 'not an object');
  const m = message as Partial<Envelope<Stage, CanonicalValue>>;
  if (typeof m.protocol !== 'string') throw new MalformedMessageError('message.protocol', 'missing');
  if (m.protocol !== PROTOCOL_ID) throw new ProtocolMismatchError(m.protocol, PROTOCOL_ID);
  if (typeof m.session !== 'string') throw new MalformedMessageError('message.session', 'missing');
  if (m.session !== expect.session) throw new SessionMismatchError(m.session, expect.session);
  if (typeof m.stage !== 'string') throw new MalformedMessageError('message.stage', 'missing');
  if (!expect.stages.includes(m.stage)) throw new UnexpectedStageError(m.stage, expect.state);
  if (typeof m.sender !== 'string') throw new MalformedMessageError('message.sender', 'missing');
  if (!Array.isArray(m.recipients) || !m.recipients.every((r) => typeof r === 'string')) {
    throw new MalformedMessageError('message.recipients', 'must be an array of agent ids');
  }
  if (!m.recipients.includes(expect.recipient)) {
    throw new MisaddressedError(m.stage, m.recipients.join(', '), expect.recipient);
  }
  if (!(m.signature instanceof Uint8Array)) throw new MalformedMessageError('message.signature', 'must be a Uint8Array');
  if (m.payload === undefined) throw new MalformedMessageError('message.payload', 'missing');
  const key = publicKey(m.sender);
  if (!envelopeSignatureValid(m as Envelope<Stage, CanonicalValue>, key)) throw new BadSignatureError(m.stage, m.sender);
}

/** Approximate wire size: the canonical encoding of the whole envelope. */
export function messageByteLength(message: SecAggMessage): number {
  return canonicalLength({ ...message });
}

// ---- payload field checks (the wire layer validates too; these keep the machines safe alone) --

export function expectBytes(where: string, value: unknown, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new MalformedMessageError(where, 'must be a Uint8Array');
  if (length !== undefined && value.length !== length) {
    throw new MalformedMessageError(where, `must be ${length} bytes, got ${value.length}`);
  }
  return value;
}

export function expectString(where: string, value: unknown): string {
  if (typeof value !== 'string') throw new MalformedMessageError(where, 'must be a string');
  return value;
}

export function expectArray(where: string, value: unknown): readonly unknown[] {
  if (!Array.isArray(value)) throw new MalformedMessageError(where, 'must be an array');
  return value;
}

export function expectRecord(where: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedMessageError(where, 'must be an object');
  }
  return value as Record<string, unknown>;
}

/** A list of distinct agent ids. */
export function expectIdList(where: string, value: unknown): string[] {
  const list = expectArray(where, value).map((v, i) => expectString(`${where}[${i}]`, v));
  if (new Set(list).size !== list.length) throw new MalformedMessageError(where, 'contains duplicates');
  return list;
}
