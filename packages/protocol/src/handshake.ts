// The hello/welcome handshake and the mapping of catalogued errors to the reason codes sent
// back on the wire (reject, update-rejected).
//
//   agent                                   coordinator
//     hello {protocolVersion, agentId, publicKey, capabilities}  ->
//                                           parseMessage: a different major throws
//                                           FEDCLR_PROTO_VERSION_INCOMPATIBLE before any
//                                           field check; respondToHello / rejectForError
//     (hello also carries a fresh nonce: the coordinator's signatures are bound to it)
//     <- welcome {negotiated protocolVersion, sessionId, limits, coordinatorKey, sig}
//        or  reject {reason, message}
//     acceptWelcome(reply): checks the negotiated version, throws on reject
import { randomBytes } from 'node:crypto';
import {
  HandshakeRejectedError,
  VersionIncompatibleError,
  isProtocolError,
  type ProtocolErrorCode,
} from './errors.js';
import { DEFAULT_LIMITS, type ProtocolLimits } from './limits.js';
import { CONNECTION_NONCE_BYTES } from './schemas.js';
import type {
  HelloMessage,
  RejectMessage,
  RejectReason,
  UpdateRejectReason,
  UpdateRejectedMessage,
  WelcomeMessage,
} from './schemas.js';
import { PROTOCOL_VERSION, assertCompatibleVersion, isCompatibleVersion, negotiateVersion } from './version.js';

/** A fresh random connection nonce for `hello.nonce` (32 bytes). */
export function createConnectionNonce(): Uint8Array {
  return new Uint8Array(randomBytes(CONNECTION_NONCE_BYTES));
}

/** A fresh random session id (128 bits, base64url) for `welcome.sessionId`. */
export function createSessionId(): string {
  return randomBytes(16).toString('base64url');
}

export interface WelcomeOptions {
  sessionId: string;
  /** The coordinator's Ed25519 public key (32 bytes); the caller signs the welcome with it. */
  coordinatorKey: Uint8Array;
  heartbeatIntervalMs: number;
  coordinatorId?: string;
  modelVersion?: string;
  limits?: Readonly<ProtocolLimits>;
  /** The coordinator's version (default PROTOCOL_VERSION). */
  version?: string;
}

/**
 * The coordinator's answer to a parsed hello: a welcome with the negotiated version, or a
 * reject('version-incompatible'). Enrollment (is this public key admitted?) is the caller's
 * business: answer with `rejectMessage('not-enrolled', ...)` instead.
 */
export function respondToHello(hello: HelloMessage, options: WelcomeOptions): WelcomeMessage | RejectMessage {
  const version = options.version ?? PROTOCOL_VERSION;
  if (!isCompatibleVersion(hello.protocolVersion, version)) {
    return rejectForError(new VersionIncompatibleError(hello.protocolVersion, version), version);
  }
  const limits = options.limits ?? DEFAULT_LIMITS;
  const welcome: WelcomeMessage = {
    type: 'welcome',
    protocolVersion: negotiateVersion(hello.protocolVersion, version),
    sessionId: options.sessionId,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    limits: { maxFrameBytes: limits.maxFrameBytes, maxSecaggPayloadBytes: limits.maxSecaggPayloadBytes },
    coordinatorKey: options.coordinatorKey,
  };
  if (options.coordinatorId !== undefined) welcome.coordinatorId = options.coordinatorId;
  if (options.modelVersion !== undefined) welcome.modelVersion = options.modelVersion;
  return welcome;
}

/** Builds a reject message. */
export function rejectMessage(reason: RejectReason, message: string, version: string = PROTOCOL_VERSION): RejectMessage {
  return { type: 'reject', reason, message, protocolVersion: version };
}

/**
 * The reject to send when parsing a hello failed: version errors -> 'version-incompatible',
 * anything else -> 'invalid-hello'. The catalogued message (which names the field) is forwarded.
 */
export function rejectForError(err: unknown, version: string = PROTOCOL_VERSION): RejectMessage {
  const code = isProtocolError(err) ? err.code : undefined;
  const reason: RejectReason =
    code === 'FEDCLR_PROTO_VERSION_INCOMPATIBLE' || code === 'FEDCLR_PROTO_VERSION_MALFORMED'
      ? 'version-incompatible'
      : 'invalid-hello';
  const text = err instanceof Error ? err.message : 'invalid hello';
  return rejectMessage(reason, text.slice(0, DEFAULT_LIMITS.maxTextLength), version);
}

/**
 * Agent side: checks the coordinator's reply. Returns the welcome if its negotiated version is
 * one this agent speaks; throws FEDCLR_PROTO_VERSION_INCOMPATIBLE for a version reject or an
 * incompatible welcome, and FEDCLR_PROTO_HANDSHAKE_REJECTED for any other reject.
 */
export function acceptWelcome(reply: WelcomeMessage | RejectMessage, version: string = PROTOCOL_VERSION): WelcomeMessage {
  if (reply.type === 'reject') {
    if (reply.reason === 'version-incompatible') throw new VersionIncompatibleError(reply.protocolVersion, version);
    throw new HandshakeRejectedError(reply.reason, reply.message);
  }
  assertCompatibleVersion(reply.protocolVersion, version);
  return reply;
}

const UPDATE_REASON_BY_CODE: Partial<Record<ProtocolErrorCode, UpdateRejectReason>> = {
  FEDCLR_PROTO_ROUND_MISMATCH: 'round-mismatch',
  FEDCLR_PROTO_PAYLOAD_TOO_LARGE: 'too-large',
  FEDCLR_PROTO_FRAME_TOO_LARGE: 'too-large',
  FEDCLR_PROTO_FRAME_BAD_MAGIC: 'bad-frame',
  FEDCLR_PROTO_FRAME_UNSUPPORTED_VERSION: 'bad-frame',
  FEDCLR_PROTO_FRAME_TRUNCATED: 'bad-frame',
  FEDCLR_PROTO_FRAME_BAD_HEADER: 'bad-frame',
  FEDCLR_PROTO_FRAME_BAD_MANIFEST: 'bad-frame',
  FEDCLR_PROTO_FRAME_LENGTH_MISMATCH: 'bad-frame',
  FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH: 'manifest-mismatch',
  FEDCLR_PROTO_FRAME_NON_FINITE: 'non-finite',
  FEDCLR_PROTO_HASH_MISMATCH: 'hash-mismatch',
};

/** The update-rejected reason for a catalogued error (schema errors -> 'invalid-message'). */
export function updateRejectReasonFor(err: unknown): UpdateRejectReason {
  if (!isProtocolError(err)) return 'invalid-message';
  return UPDATE_REASON_BY_CODE[err.code] ?? 'invalid-message';
}

/** The update-rejected message for an error raised while checking an agent's update. */
export function updateRejectedForError(roundId: number, err: unknown): UpdateRejectedMessage {
  const msg: UpdateRejectedMessage = {
    type: 'update-rejected',
    roundId,
    reason: updateRejectReasonFor(err),
    message: (err instanceof Error ? err.message : String(err)).slice(0, DEFAULT_LIMITS.maxTextLength),
  };
  if (isProtocolError(err)) msg.code = err.code;
  return msg;
}
