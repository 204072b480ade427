// Error catalog of @fedclr/secagg. Every error thrown on purpose by this package is one of these
// constructors, so callers branch on `err.code` (stable) rather than on messages.
// Status codes: 400 bad configuration or input, 401 authentication (signature, decryption),
// 409 protocol-stage conflicts (wrong round, stage, recipient), 422 a peer or the coordinator
// contradicted itself, 500 a broken internal invariant.
import createError from '@fastify/error';

// ---- configuration -----------------------------------------------------------------------

/** An option is out of its domain. Args: (option name, what is wrong). */
export const ConfigError = createError<'FEDCLR_SECAGG_CONFIG_INVALID', 400, [string, string]>(
  'FEDCLR_SECAGG_CONFIG_INVALID',
  'Invalid secure-aggregation option %s: %s',
  400,
);

/**
 * The requested dropout and corrupt fractions cannot both be tolerated (SecAgg+ conditions).
 * Args: (what was asked, why it fails and what to change).
 */
export const ThresholdUnachievableError = createError<
  'FEDCLR_SECAGG_THRESHOLD_UNACHIEVABLE',
  400,
  [string, string]
>('FEDCLR_SECAGG_THRESHOLD_UNACHIEVABLE', 'No Shamir threshold satisfies %s: %s', 400);

/** An agent id is not enrolled (no long-term signing key). Args: (agent id). */
export const NotEnrolledError = createError<'FEDCLR_SECAGG_NOT_ENROLLED', 400, [string]>(
  'FEDCLR_SECAGG_NOT_ENROLLED',
  'Agent %s is not enrolled: enrol its Ed25519 public key before putting it in a cohort',
  400,
);

/**
 * The coordinator's session parameters differ from what this agent derives or accepts.
 * Args: (parameter, what was received, what is required).
 */
export const ParamsMismatchError = createError<
  'FEDCLR_SECAGG_PARAMS_MISMATCH',
  422,
  [string, string, string]
>(
  'FEDCLR_SECAGG_PARAMS_MISMATCH',
  'Refusing session: parameter %s is %s but this agent requires %s',
  422,
);

// ---- cryptography and signatures -----------------------------------------------------------

/** A signature does not verify. Args: (stage, claimed sender). */
export const BadSignatureError = createError<'FEDCLR_SECAGG_BAD_SIGNATURE', 401, [string, string]>(
  'FEDCLR_SECAGG_BAD_SIGNATURE',
  'Refusing %s message: signature of %s does not verify (tampered, or signed by another key)',
  401,
);

/** Who claims to have signed is unknown. Args: (stage, claimed sender). */
export const UnknownSignerError = createError<'FEDCLR_SECAGG_UNKNOWN_SIGNER', 401, [string, string]>(
  'FEDCLR_SECAGG_UNKNOWN_SIGNER',
  'Refusing %s message: sender %s has no known signing key in this session',
  401,
);

/** A public key is of low order or malformed. Args: (whose key, what is wrong). */
export const WeakKeyError = createError<'FEDCLR_SECAGG_WEAK_KEY', 401, [string, string]>(
  'FEDCLR_SECAGG_WEAK_KEY',
  'Rejecting key of %s: %s',
  401,
);

// ---- protocol stage ------------------------------------------------------------------------

/** The message is for another protocol or version. Args: (received, expected). */
export const ProtocolMismatchError = createError<
  'FEDCLR_SECAGG_PROTOCOL_MISMATCH',
  409,
  [string, string]
>('FEDCLR_SECAGG_PROTOCOL_MISMATCH', 'Refusing message of protocol %s: this endpoint speaks %s', 409);

/** The message belongs to another session/round (replay). Args: (received, expected). */
export const SessionMismatchError = createError<
  'FEDCLR_SECAGG_SESSION_MISMATCH',
  409,
  [string, string]
>(
  'FEDCLR_SECAGG_SESSION_MISMATCH',
  'Refusing message of session %s in session %s (replayed from another round?)',
  409,
);

/** The message is not addressed to this endpoint. Args: (stage, recipients, this endpoint). */
export const MisaddressedError = createError<
  'FEDCLR_SECAGG_MISADDRESSED',
  409,
  [string, string, string]
>('FEDCLR_SECAGG_MISADDRESSED', 'Refusing %s message addressed to [%s]: this endpoint is %s', 409);

/** The message is for a stage this endpoint is not in. Args: (received stage, current state). */
export const UnexpectedStageError = createError<
  'FEDCLR_SECAGG_UNEXPECTED_STAGE',
  409,
  [string, string]
>('FEDCLR_SECAGG_UNEXPECTED_STAGE', 'Unexpected %s message while %s', 409);

/** The sender is not expected in the current stage. Args: (stage, sender, why). */
export const UnexpectedSenderError = createError<
  'FEDCLR_SECAGG_UNEXPECTED_SENDER',
  409,
  [string, string, string]
>('FEDCLR_SECAGG_UNEXPECTED_SENDER', 'Refusing %s message from %s: %s', 409);

/** A second message from the same sender in one stage. Args: (stage, sender). */
export const DuplicateMessageError = createError<
  'FEDCLR_SECAGG_DUPLICATE_MESSAGE',
  409,
  [string, string]
>('FEDCLR_SECAGG_DUPLICATE_MESSAGE', 'Already have a %s message from %s in this session', 409);

/** The session ended (done or aborted). Args: (final state). */
export const SessionEndedError = createError<'FEDCLR_SECAGG_SESSION_ENDED', 409, [string]>(
  'FEDCLR_SECAGG_SESSION_ENDED',
  'The secure-aggregation session has ended (%s); start a new session for a new round',
  409,
);

// ---- consistency ---------------------------------------------------------------------------

/**
 * The coordinator's survivor/dropout announcement is inconsistent (revealing would risk giving
 * away both shares of one neighbour). Args: (what is inconsistent).
 */
export const InconsistentAnnouncementError = createError<
  'FEDCLR_SECAGG_INCONSISTENT_ANNOUNCEMENT',
  422,
  [string]
>('FEDCLR_SECAGG_INCONSISTENT_ANNOUNCEMENT', 'Refusing to unmask: %s', 422);

/** A second, different unmask request in the same session. Args: (details). */
export const UnmaskConflictError = createError<'FEDCLR_SECAGG_UNMASK_CONFLICT', 422, [string]>(
  'FEDCLR_SECAGG_UNMASK_CONFLICT',
  'Refusing a second, different unmask request in this session: %s',
  422,
);

/** Relayed keys or shares contradict what the agent knows. Args: (what is inconsistent). */
export const RelayInconsistentError = createError<'FEDCLR_SECAGG_RELAY_INCONSISTENT', 422, [string]>(
  'FEDCLR_SECAGG_RELAY_INCONSISTENT',
  'Refusing relayed data: %s',
  422,
);

/**
 * The agent refuses to go on because a rule that protects its input (or its neighbours') would
 * be broken. Args: (rule, details). Rules: masking-neighbours, participants-subset,
 * survivor-neighbours, owner-neighbours, participants-split, consistency-signatures,
 * second-view, cohort-size, survivor-floor.
 */
export const ConsistencyError = createError<'FEDCLR_SECAGG_CONSISTENCY', 422, [string, string]>(
  'FEDCLR_SECAGG_CONSISTENCY',
  'Refusing to go on (rule %s): %s',
  422,
);

// ---- encoding ------------------------------------------------------------------------------

/** Message fields have the wrong type, length or shape. Args: (where, what is wrong). */
export const MalformedMessageError = createError<'FEDCLR_SECAGG_MALFORMED', 400, [string, string]>(
  'FEDCLR_SECAGG_MALFORMED',
  'Malformed %s: %s',
  400,
);

/** Fixed-point parameters cannot guarantee that the cohort sum never wraps. Args: (details). */
export const NoWrapError = createError<'FEDCLR_SECAGG_ENCODING_NO_WRAP', 400, [string]>(
  'FEDCLR_SECAGG_ENCODING_NO_WRAP',
  'Fixed-point parameters cannot guarantee a wrap-free sum: %s',
  400,
);

/** A value to encode is invalid (NaN, wrong length, weight out of range). Args: (what, why). */
export const EncodingInputError = createError<
  'FEDCLR_SECAGG_ENCODING_INPUT',
  400,
  [string, string]
>('FEDCLR_SECAGG_ENCODING_INPUT', 'Cannot encode %s: %s', 400);

// ---- differential privacy -----------------------------------------------------------------

/**
 * The fixed-point grid is too coarse for a DP round's noise: stochastic rounding could depend on
 * the data. Args: (tau, noise multiplier, clip norm, scale, n_min).
 */
export const DpGridTooCoarseError = createError<
  'FEDCLR_SECAGG_DP_GRID_TOO_COARSE',
  400,
  [string, string, string, string, string]
>(
  'FEDCLR_SECAGG_DP_GRID_TOO_COARSE',
  "Refusing a DP round: each agent's noise spans tau = sigma C s / sqrt(n_min) = %s grid steps (noiseMultiplier sigma %s, clipNorm C %s, scale s %s, n_min %s), " +
    'fewer than the 4 that make the rounding independent of the data; raise the noise multiplier or sample smaller cohorts (C cancels out: the scale shrinks as C grows)',
  400,
);

// ---- internal ------------------------------------------------------------------------------

/** A broken internal invariant (a bug). Args: (details). */
export const InternalError = createError<'FEDCLR_SECAGG_INTERNAL', 500, [string]>(
  'FEDCLR_SECAGG_INTERNAL',
  'Internal secure-aggregation invariant broken: %s',
  500,
);

/** Stable codes, for exhaustive switches in callers. */
export const ErrorCodes = {
  CONFIG_INVALID: 'FEDCLR_SECAGG_CONFIG_INVALID',
  THRESHOLD_UNACHIEVABLE: 'FEDCLR_SECAGG_THRESHOLD_UNACHIEVABLE',
  NOT_ENROLLED: 'FEDCLR_SECAGG_NOT_ENROLLED',
  PARAMS_MISMATCH: 'FEDCLR_SECAGG_PARAMS_MISMATCH',
  BAD_SIGNATURE: 'FEDCLR_SECAGG_BAD_SIGNATURE',
  UNKNOWN_SIGNER: 'FEDCLR_SECAGG_UNKNOWN_SIGNER',
  WEAK_KEY: 'FEDCLR_SECAGG_WEAK_KEY',
  PROTOCOL_MISMATCH: 'FEDCLR_SECAGG_PROTOCOL_MISMATCH',
  SESSION_MISMATCH: 'FEDCLR_SECAGG_SESSION_MISMATCH',
  MISADDRESSED: 'FEDCLR_SECAGG_MISADDRESSED',
  UNEXPECTED_STAGE: 'FEDCLR_SECAGG_UNEXPECTED_STAGE',
  UNEXPECTED_SENDER: 'FEDCLR_SECAGG_UNEXPECTED_SENDER',
  DUPLICATE_MESSAGE: 'FEDCLR_SECAGG_DUPLICATE_MESSAGE',
  SESSION_ENDED: 'FEDCLR_SECAGG_SESSION_ENDED',
  INCONSISTENT_ANNOUNCEMENT: 'FEDCLR_SECAGG_INCONSISTENT_ANNOUNCEMENT',
  UNMASK_CONFLICT: 'FEDCLR_SECAGG_UNMASK_CONFLICT',
  RELAY_INCONSISTENT: 'FEDCLR_SECAGG_RELAY_INCONSISTENT',
  CONSISTENCY: 'FEDCLR_SECAGG_CONSISTENCY',
  MALFORMED: 'FEDCLR_SECAGG_MALFORMED',
  ENCODING_NO_WRAP: 'FEDCLR_SECAGG_ENCODING_NO_WRAP',
  ENCODING_INPUT: 'FEDCLR_SECAGG_ENCODING_INPUT',
  DP_GRID_TOO_COARSE: 'FEDCLR_SECAGG_DP_GRID_TOO_COARSE',
  INTERNAL: 'FEDCLR_SECAGG_INTERNAL',
  /** Not thrown: the code of the coordinator's abort result (`status.abort.code`). */
  ABORTED: 'FEDCLR_SECAGG_ABORTED',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];
