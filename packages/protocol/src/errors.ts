// The protocol's error catalog: every error this package throws is created here, with a
// stable `FEDCLR_PROTO_*` code and an HTTP status code so that the coordinator's fastify
// routes can return it as is. Messages are formatted with util.format (`%s`) and name the
// field, tensor or limit involved, so that a log line alone says what to fix.
import createError from '@fastify/error';
import type { FastifyError } from '@fastify/error';

type S = string | number;

// ---- version -------------------------------------------------------------------------------

/** A protocol version string is not `MAJOR.MINOR`. Args: the offending value. */
export const VersionMalformedError = createError<'FEDCLR_PROTO_VERSION_MALFORMED', 400, [S]>(
  'FEDCLR_PROTO_VERSION_MALFORMED',
  "Protocol version %s is malformed: expected 'MAJOR.MINOR' with non-negative integers, e.g. '1.0'",
  400,
);

/** The peer speaks another major version. Args: remote version, local version. */
export const VersionIncompatibleError = createError<'FEDCLR_PROTO_VERSION_INCOMPATIBLE', 426, [S, S]>(
  'FEDCLR_PROTO_VERSION_INCOMPATIBLE',
  'Protocol version %s is incompatible with local version %s: the major versions differ, so the message ' +
    'layouts differ; upgrade the agent or the coordinator so both run the same major version',
  426,
);

/** The coordinator answered hello with a reject. Args: reason code, coordinator's message. */
export const HandshakeRejectedError = createError<'FEDCLR_PROTO_HANDSHAKE_REJECTED', 403, [S, S]>(
  'FEDCLR_PROTO_HANDSHAKE_REJECTED',
  "The coordinator rejected this agent's hello (reason '%s'): %s",
  403,
);

// ---- schema / validation -------------------------------------------------------------------

/** The raw message is not a plain object. Args: description of what was received. */
export const NotAnObjectError = createError<'FEDCLR_PROTO_NOT_AN_OBJECT', 400, [S]>(
  'FEDCLR_PROTO_NOT_AN_OBJECT',
  "A protocol message must be a plain object with a string 'type' field; got %s",
  400,
);

/** No such message type. Args: the type, the direction, the accepted types. */
export const UnknownTypeError = createError<'FEDCLR_PROTO_UNKNOWN_TYPE', 400, [S, S, S]>(
  'FEDCLR_PROTO_UNKNOWN_TYPE',
  "Unknown message type %s for direction '%s'; accepted types: %s",
  400,
);

/** A known type sent the wrong way. Args: the type, the direction it was received on, its direction. */
export const WrongDirectionError = createError<'FEDCLR_PROTO_WRONG_DIRECTION', 400, [S, S, S]>(
  'FEDCLR_PROTO_WRONG_DIRECTION',
  "Message type '%s' is not accepted on '%s': it is a %s message",
  400,
);

/** additionalProperties: false was violated. Args: message type, field path, allowed fields. */
export const UnknownFieldError = createError<'FEDCLR_PROTO_UNKNOWN_FIELD', 400, [S, S, S]>(
  'FEDCLR_PROTO_UNKNOWN_FIELD',
  "'%s' message: unknown field '%s'; allowed fields here: %s",
  400,
);

/** A required field is absent. Args: message type, field path. */
export const MissingFieldError = createError<'FEDCLR_PROTO_MISSING_FIELD', 400, [S, S]>(
  'FEDCLR_PROTO_MISSING_FIELD',
  "'%s' message: required field '%s' is missing",
  400,
);

/** A field has the wrong JSON/JS type. Args: message type, field path, expected, received. */
export const WrongTypeError = createError<'FEDCLR_PROTO_WRONG_TYPE', 400, [S, S, S, S]>(
  'FEDCLR_PROTO_WRONG_TYPE',
  "'%s' message: field '%s' must be %s; got %s",
  400,
);

/** A number is outside its bounds. Args: message type, field path, bound description, received. */
export const OutOfRangeError = createError<'FEDCLR_PROTO_OUT_OF_RANGE', 400, [S, S, S, S]>(
  'FEDCLR_PROTO_OUT_OF_RANGE',
  "'%s' message: field '%s' is out of range: must be %s; got %s",
  400,
);

/** A value fails a pattern, enum or length rule. Args: message type, field path, rule, received. */
export const InvalidValueError = createError<'FEDCLR_PROTO_INVALID_VALUE', 400, [S, S, S, S]>(
  'FEDCLR_PROTO_INVALID_VALUE',
  "'%s' message: field '%s' is invalid: must be %s; got %s",
  400,
);

/** Fields are individually valid but contradict each other or the round. Args: message type, problem. */
export const InconsistentMessageError = createError<'FEDCLR_PROTO_INCONSISTENT', 400, [S, S]>(
  'FEDCLR_PROTO_INCONSISTENT',
  "'%s' message is inconsistent: %s",
  400,
);

/** A message refers to a round other than the current one. Args: message type, got, expected. */
export const RoundMismatchError = createError<'FEDCLR_PROTO_ROUND_MISMATCH', 409, [S, S, S]>(
  'FEDCLR_PROTO_ROUND_MISMATCH',
  "'%s' message is for round %s but the current round is %s",
  409,
);

// ---- size limits ---------------------------------------------------------------------------

/** A field exceeds its configured size limit. Args: message type, field path, limit, actual size. */
export const PayloadTooLargeError = createError<'FEDCLR_PROTO_PAYLOAD_TOO_LARGE', 413, [S, S, S, S]>(
  'FEDCLR_PROTO_PAYLOAD_TOO_LARGE',
  "'%s' message: field '%s' exceeds its size limit of %s; got %s (raise the limit in ProtocolLimits on both sides if this is expected)",
  413,
);

/** A tensor frame (or a part of it) exceeds a configured limit. Args: what, limit, actual. */
export const FrameTooLargeError = createError<'FEDCLR_PROTO_FRAME_TOO_LARGE', 413, [S, S, S]>(
  'FEDCLR_PROTO_FRAME_TOO_LARGE',
  'Tensor frame too large: %s is limited to %s; got %s (see ProtocolLimits)',
  413,
);

/** A ProtocolLimits value is unusable. Args: limit name, problem. */
export const InvalidLimitsError = createError<'FEDCLR_PROTO_INVALID_LIMITS', 500, [S, S]>(
  'FEDCLR_PROTO_INVALID_LIMITS',
  "Invalid protocol limit '%s': %s",
  500,
);

// ---- tensor frames -------------------------------------------------------------------------

/** The frame does not start with the frame magic. Args: the first bytes seen, hex. */
export const FrameBadMagicError = createError<'FEDCLR_PROTO_FRAME_BAD_MAGIC', 400, [S]>(
  'FEDCLR_PROTO_FRAME_BAD_MAGIC',
  "Not a fedclr tensor frame: expected magic 'FCLR' (46434c52), got %s",
  400,
);

/** Frame format version not understood. Args: version seen, supported version. */
export const FrameUnsupportedVersionError = createError<'FEDCLR_PROTO_FRAME_UNSUPPORTED_VERSION', 400, [S, S]>(
  'FEDCLR_PROTO_FRAME_UNSUPPORTED_VERSION',
  'Tensor frame format version %s is not supported (this build reads version %s)',
  400,
);

/** Fewer bytes than the header declares. Args: what is missing, needed, available. */
export const FrameTruncatedError = createError<'FEDCLR_PROTO_FRAME_TRUNCATED', 400, [S, S, S]>(
  'FEDCLR_PROTO_FRAME_TRUNCATED',
  'Tensor frame truncated: %s needs %s bytes but only %s are present',
  400,
);

/** A header field is malformed (flags, reserved bytes, padding, lengths). Args: problem. */
export const FrameBadHeaderError = createError<'FEDCLR_PROTO_FRAME_BAD_HEADER', 400, [S]>(
  'FEDCLR_PROTO_FRAME_BAD_HEADER',
  'Tensor frame header is malformed: %s',
  400,
);

/** The JSON manifest is not a valid manifest. Args: problem. */
export const FrameBadManifestError = createError<'FEDCLR_PROTO_FRAME_BAD_MANIFEST', 400, [S]>(
  'FEDCLR_PROTO_FRAME_BAD_MANIFEST',
  'Tensor frame manifest is invalid: %s',
  400,
);

/** Manifest and data byte count disagree. Args: problem. */
export const FrameLengthMismatchError = createError<'FEDCLR_PROTO_FRAME_LENGTH_MISMATCH', 400, [S]>(
  'FEDCLR_PROTO_FRAME_LENGTH_MISMATCH',
  'Tensor frame length mismatch: %s',
  400,
);

/** The manifest differs from the one the receiver expects. Args: first mismatch. */
export const FrameManifestMismatchError = createError<'FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH', 400, [S]>(
  'FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH',
  'Tensor frame does not match the expected manifest (no reshape is attempted): %s',
  400,
);

/** A float tensor holds NaN or +-Infinity. Args: tensor name, flat index, value. */
export const FrameNonFiniteError = createError<'FEDCLR_PROTO_FRAME_NON_FINITE', 400, [S, S, S]>(
  'FEDCLR_PROTO_FRAME_NON_FINITE',
  "Tensor '%s' holds a non-finite value at flat index %s (%s); diverged training or a corrupt update",
  400,
);

/** encodeFrame was given unusable input (programming error on the sending side). Args: problem. */
export const FrameBadInputError = createError<'FEDCLR_PROTO_FRAME_BAD_INPUT', 500, [S]>(
  'FEDCLR_PROTO_FRAME_BAD_INPUT',
  'Cannot encode tensor frame: %s',
  500,
);

// ---- hashes --------------------------------------------------------------------------------

/** A model-version / content hash does not match. Args: what, expected, actual. */
export const HashMismatchError = createError<'FEDCLR_PROTO_HASH_MISMATCH', 409, [S, S, S]>(
  'FEDCLR_PROTO_HASH_MISMATCH',
  'Hash mismatch on %s: expected %s, got %s',
  409,
);

// ---- catalog helpers -----------------------------------------------------------------------

/** Every code this package can throw, grouped by concern. */
export const PROTOCOL_ERROR_CODES = {
  version: [
    'FEDCLR_PROTO_VERSION_MALFORMED',
    'FEDCLR_PROTO_VERSION_INCOMPATIBLE',
    'FEDCLR_PROTO_HANDSHAKE_REJECTED',
  ],
  schema: [
    'FEDCLR_PROTO_NOT_AN_OBJECT',
    'FEDCLR_PROTO_UNKNOWN_TYPE',
    'FEDCLR_PROTO_WRONG_DIRECTION',
    'FEDCLR_PROTO_UNKNOWN_FIELD',
    'FEDCLR_PROTO_MISSING_FIELD',
    'FEDCLR_PROTO_WRONG_TYPE',
    'FEDCLR_PROTO_OUT_OF_RANGE',
    'FEDCLR_PROTO_INVALID_VALUE',
    'FEDCLR_PROTO_INCONSISTENT',
    'FEDCLR_PROTO_ROUND_MISMATCH',
  ],
  size: ['FEDCLR_PROTO_PAYLOAD_TOO_LARGE', 'FEDCLR_PROTO_FRAME_TOO_LARGE', 'FEDCLR_PROTO_INVALID_LIMITS'],
  frame: [
    'FEDCLR_PROTO_FRAME_BAD_MAGIC',
    'FEDCLR_PROTO_FRAME_UNSUPPORTED_VERSION',
    'FEDCLR_PROTO_FRAME_TRUNCATED',
    'FEDCLR_PROTO_FRAME_BAD_HEADER',
    'FEDCLR_PROTO_FRAME_BAD_MANIFEST',
    'FEDCLR_PROTO_FRAME_LENGTH_MISMATCH',
    'FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH',
    'FEDCLR_PROTO_FRAME_NON_FINITE',
    'FEDCLR_PROTO_FRAME_BAD_INPUT',
  ],
  hash: ['FEDCLR_PROTO_HASH_MISMATCH'],
} as const;

export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[keyof typeof PROTOCOL_ERROR_CODES][number];

const ALL_CODES: ReadonlySet<string> = new Set(Object.values(PROTOCOL_ERROR_CODES).flat());

/** A catalogued protocol error (has a `FEDCLR_PROTO_*` code and an HTTP status code). */
export type ProtocolError = FastifyError & { code: ProtocolErrorCode; statusCode: number };

/** True when `err` is one of this catalog's errors (optionally: with this exact code). */
export function isProtocolError(err: unknown, code?: ProtocolErrorCode): err is ProtocolError {
  if (!(err instanceof Error)) return false;
  const c = (err as { code?: unknown }).code;
  if (typeof c !== 'string' || !ALL_CODES.has(c)) return false;
  return code === undefined || c === code;
}
