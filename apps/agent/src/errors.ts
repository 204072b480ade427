// The agent's error catalog: every error this package throws is created here, with a stable
// `FEDCLR_AGENT_*` code (also sent to the coordinator in `error` messages) and an HTTP status.
import createError from '@fastify/error';
import type { FastifyError } from '@fastify/error';

type S = string | number;

// ---- configuration -------------------------------------------------------------------------

/** An agent option is invalid. Args: option, rule, received. */
export const AgentConfigError = createError<'FEDCLR_AGENT_CONFIG_INVALID', 500, [S, S, S]>(
  'FEDCLR_AGENT_CONFIG_INVALID',
  "Invalid agent option '%s': must be %s; got %s",
  500,
);

// ---- identity ------------------------------------------------------------------------------

/** The identity key file is readable by others. Args: path, mode. */
export const IdentityInsecureError = createError<'FEDCLR_AGENT_IDENTITY_INSECURE', 500, [S, S]>(
  'FEDCLR_AGENT_IDENTITY_INSECURE',
  'Identity file %s has mode %s: it holds the Ed25519 secret key and must not be accessible to group or others (chmod 600)',
  500,
);

/** The identity key file cannot be parsed or its keys do not match. Args: path, problem. */
export const IdentityCorruptError = createError<'FEDCLR_AGENT_IDENTITY_CORRUPT', 500, [S, S]>(
  'FEDCLR_AGENT_IDENTITY_CORRUPT',
  'Identity file %s is unusable: %s',
  500,
);

// ---- handshake -----------------------------------------------------------------------------

/** Reconnection attempts exhausted. Args: attempts, last problem. */
export const GaveUpError = createError<'FEDCLR_AGENT_GAVE_UP', 503, [S, S]>(
  'FEDCLR_AGENT_GAVE_UP',
  'Gave up connecting to the coordinator after %s attempts; last problem: %s',
  503,
);

/** http:// (no TLS) to a host that is not loopback, without --insecure. Args: url, host. */
export const InsecureUrlError = createError<'FEDCLR_AGENT_INSECURE_URL', 400, [S, S]>(
  'FEDCLR_AGENT_INSECURE_URL',
  'Refusing %s: plain http:// (no TLS) to the non-loopback host %s would send everything unencrypted; use https:// (fedclr coordinator --tls-cert FILE --tls-key FILE, or a TLS reverse proxy) or pass --insecure to accept it',
  400,
);

/** The coordinator's TLS certificate failed verification. Args: url, expected host, trust anchors, TLS code, detail. */
export const TlsVerifyError = createError<'FEDCLR_AGENT_TLS_VERIFY_FAILED', 502, [S, S, S, S, S]>(
  'FEDCLR_AGENT_TLS_VERIFY_FAILED',
  "The TLS certificate of %s is not trusted: expected a certificate for host '%s' chaining to %s; got %s (%s). Give the CA that signed it with --ca FILE, or connect with the host name in its subjectAltName",
  502,
);

// ---- rounds --------------------------------------------------------------------------------

/** The round cannot be done by this agent (model dtypes, unknown aggregation, bad frame). Args: round, problem. */
export const RoundUnsupportedError = createError<'FEDCLR_AGENT_ROUND_UNSUPPORTED', 400, [S, S]>(
  'FEDCLR_AGENT_ROUND_UNSUPPORTED',
  'Round %s cannot be done by this agent: %s',
  400,
);

/**
 * The round's training recipe (round config `recipe`) is one this agent cannot run: none sent,
 * an unknown encoder, an input its images cannot have, a view larger than its images. Args: round, problem.
 */
export const RecipeRefusedError = createError<'FEDCLR_AGENT_RECIPE_REFUSED', 400, [S, S]>(
  'FEDCLR_AGENT_RECIPE_REFUSED',
  "Round %s: this agent cannot run the coordinator's training recipe: %s",
  400,
);

/** The local trainer returned something unusable. Args: round, problem. */
export const TrainerOutputError = createError<'FEDCLR_AGENT_TRAINER_OUTPUT', 500, [S, S]>(
  'FEDCLR_AGENT_TRAINER_OUTPUT',
  'Round %s: the local trainer returned an unusable result: %s',
  500,
);

/** The local trainer threw. Args: round, message. */
export const TrainingFailedError = createError<'FEDCLR_AGENT_TRAINING_FAILED', 500, [S, S]>(
  'FEDCLR_AGENT_TRAINING_FAILED',
  'Round %s: local training failed: %s',
  500,
);

/** Training was stopped before it finished. Args: round, why. */
export const RoundAbortedError = createError<'FEDCLR_AGENT_ROUND_ABORTED', 409, [S, S]>(
  'FEDCLR_AGENT_ROUND_ABORTED',
  'Round %s: local training was aborted: %s',
  409,
);

// ---- secure aggregation ------------------------------------------------------------------

/**
 * A secure-aggregation message was refused and ignored; the round goes on (unsigned, badly
 * signed, replayed, mis-addressed, malformed, or signed by an untrusted coordinator key).
 * Args: round, stage, problem. `cause` holds the secagg error when there is one.
 */
export const SecaggRefusedError = createError<'FEDCLR_AGENT_SECAGG_REFUSED', 400, [S, S, S]>(
  'FEDCLR_AGENT_SECAGG_REFUSED',
  'Round %s: refused a secure-aggregation %s message: %s',
  400,
);

/**
 * This agent stopped taking part in a secure round: the coordinator proved inconsistent (e.g. it
 * asked for both shares of one neighbour) or proposed parameters this agent refuses.
 * Args: round, stage, problem.
 */
export const SecaggFailedError = createError<'FEDCLR_AGENT_SECAGG_FAILED', 409, [S, S, S]>(
  'FEDCLR_AGENT_SECAGG_FAILED',
  'Round %s: left secure aggregation at stage %s: %s',
  409,
);

// ---- coordinator trust -------------------------------------------------------------------

/**
 * startAgent was given no way to trust the coordinator. Args: coordinator URL.
 */
export const CoordinatorKeyRequiredError = createError<'FEDCLR_AGENT_COORDINATOR_KEY_REQUIRED', 500, [S]>(
  'FEDCLR_AGENT_COORDINATOR_KEY_REQUIRED',
  "No coordinator key for %s: pin it with --coordinator-key KEY (option coordinatorKey; hex or base64: the coordinator prints " +
    "'coordinator public key' at start, and GET /api/status returns it as coordinatorKey), or accept the first key seen " +
    'with --trust-on-first-use (option trustOnFirstUse; weaker: a first connection to an impostor pins the impostor)',
  500,
);

/**
 * The welcome announced a coordinator key other than the pinned one, or than the one this
 * coordinator URL used before (trust on first use). Args: announced key, expected key and where it comes from.
 */
export const CoordinatorKeyMismatchError = createError<'FEDCLR_AGENT_COORDINATOR_KEY_MISMATCH', 403, [S, S]>(
  'FEDCLR_AGENT_COORDINATOR_KEY_MISMATCH',
  'Refused the coordinator: it presented key %s, but this agent trusts %s. If the coordinator really changed its key, ' +
    'pin the new one with --coordinator-key (check it out of band: the coordinator prints it at start)',
  403,
);

/**
 * A coordinator message carries no signature; it was logged and ignored. Args: message type, detail.
 */
export const MessageUnsignedError = createError<'FEDCLR_AGENT_MESSAGE_UNSIGNED', 401, [S, S]>(
  'FEDCLR_AGENT_MESSAGE_UNSIGNED',
  "Ignored an unsigned '%s' message: every coordinator message must be signed by the coordinator key for this connection (%s); " +
    'an old coordinator (protocol 1.x) or someone on the path sent it',
  401,
);

/**
 * A coordinator message's signature does not verify for this connection under the trusted key:
 * another key, an edited message, one replayed from another connection or session, or one
 * addressed to another agent. Logged and ignored. Args: message type, detail.
 */
export const MessageBadSignatureError = createError<'FEDCLR_AGENT_MESSAGE_BAD_SIGNATURE', 401, [S, S]>(
  'FEDCLR_AGENT_MESSAGE_BAD_SIGNATURE',
  "Ignored a '%s' message whose signature does not verify: %s",
  401,
);

/**
 * A correctly signed message that repeats an earlier one of this connection (e.g. an old
 * round-start). Logged and ignored. Args: message type, detail.
 */
export const MessageReplayedError = createError<'FEDCLR_AGENT_MESSAGE_REPLAYED', 409, [S, S]>(
  'FEDCLR_AGENT_MESSAGE_REPLAYED',
  "Ignored a replayed '%s' message: %s",
  409,
);

// ---- policy --------------------------------------------------------------------------------

/**
 * A round breaks this agent's policy: it does not train, and says why in an `error` message
 * (code FEDCLR_AGENT_POLICY_REFUSED, the round id) that the coordinator records.
 * Args: round, rule (the flag that sets it), problem.
 */
export const PolicyRefusedError = createError<'FEDCLR_AGENT_POLICY_REFUSED', 403, [S, S, S]>(
  'FEDCLR_AGENT_POLICY_REFUSED',
  'Round %s refused by this agent\'s policy (%s): %s',
  403,
);

/**
 * A second sampling-invite for a round this agent already answered, at another rate: ignored (the
 * first rate and answer stand, or a coordinator could raise q until a declining agent volunteers).
 * Args: round, first rate, new rate.
 */
export const SamplingConflictError = createError<'FEDCLR_AGENT_SAMPLING_CONFLICT', 409, [S, S, S]>(
  'FEDCLR_AGENT_SAMPLING_CONFLICT',
  'Ignored a sampling-invite for round %s at rate %s: this agent already answered that round at rate %s, and a round gets one coin at one rate',
  409,
);

/** A policy value (flag, option or policy file) is invalid. Args: flag or field, rule, received. */
export const PolicyInvalidError = createError<'FEDCLR_AGENT_POLICY_INVALID', 400, [S, S, S]>(
  'FEDCLR_AGENT_POLICY_INVALID',
  'Invalid agent policy %s: must be %s; got %s',
  400,
);

/** The agent's saved privacy budget (<stateDir>/privacy-budget.json) cannot be read. Args: path, problem. */
export const PrivacyBudgetInvalidError = createError<'FEDCLR_AGENT_PRIVACY_BUDGET_INVALID', 500, [S, S]>(
  'FEDCLR_AGENT_PRIVACY_BUDGET_INVALID',
  'Refusing to start: the privacy budget file %s is unreadable (%s). Deleting it would forget the epsilon this agent already spent; restore it from a backup',
  500,
);

// ---- catalog helpers -----------------------------------------------------------------------

export const AGENT_ERROR_CODES = {
  config: ['FEDCLR_AGENT_CONFIG_INVALID'],
  identity: ['FEDCLR_AGENT_IDENTITY_INSECURE', 'FEDCLR_AGENT_IDENTITY_CORRUPT'],
  handshake: ['FEDCLR_AGENT_GAVE_UP', 'FEDCLR_AGENT_INSECURE_URL', 'FEDCLR_AGENT_TLS_VERIFY_FAILED'],
  rounds: [
    'FEDCLR_AGENT_ROUND_UNSUPPORTED',
    'FEDCLR_AGENT_RECIPE_REFUSED',
    'FEDCLR_AGENT_TRAINER_OUTPUT',
    'FEDCLR_AGENT_TRAINING_FAILED',
    'FEDCLR_AGENT_ROUND_ABORTED',
  ],
  secagg: ['FEDCLR_AGENT_SECAGG_REFUSED', 'FEDCLR_AGENT_SECAGG_FAILED'],
  trust: [
    'FEDCLR_AGENT_COORDINATOR_KEY_REQUIRED',
    'FEDCLR_AGENT_COORDINATOR_KEY_MISMATCH',
    'FEDCLR_AGENT_MESSAGE_UNSIGNED',
    'FEDCLR_AGENT_MESSAGE_BAD_SIGNATURE',
    'FEDCLR_AGENT_MESSAGE_REPLAYED',
  ],
  policy: ['FEDCLR_AGENT_POLICY_REFUSED', 'FEDCLR_AGENT_POLICY_INVALID', 'FEDCLR_AGENT_PRIVACY_BUDGET_INVALID', 'FEDCLR_AGENT_SAMPLING_CONFLICT'],
} as const;

export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[keyof typeof AGENT_ERROR_CODES][number];
export type AgentError = FastifyError & { code: AgentErrorCode; statusCode: number };

const ALL_CODES: ReadonlySet<string> = new Set(Object.values(AGENT_ERROR_CODES).flat());

export function isAgentError(err: unknown, code?: AgentErrorCode): err is AgentError {
  if (!(err instanceof Error)) return false;
  const c = (err as { code?: unknown }).code;
  if (typeof c !== 'string' || !ALL_CODES.has(c)) return false;
  return code === undefined || c === code;
}
