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

// ---- rounds --------------------------------------------------------------------------------

/** The round cannot be done by this agent (model dtypes, unknown aggregation, bad frame). Args: round, problem. */
export const RoundUnsupportedError = createError<'FEDCLR_AGENT_ROUND_UNSUPPORTED', 400, [S, S]>(
  'FEDCLR_AGENT_ROUND_UNSUPPORTED',
  'Round %s cannot be done by this agent: %s',
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

// ---- catalog helpers -----------------------------------------------------------------------

export const AGENT_ERROR_CODES = {
  config: ['FEDCLR_AGENT_CONFIG_INVALID'],
  identity: ['FEDCLR_AGENT_IDENTITY_INSECURE', 'FEDCLR_AGENT_IDENTITY_CORRUPT'],
  handshake: ['FEDCLR_AGENT_GAVE_UP'],
  rounds: [
    'FEDCLR_AGENT_ROUND_UNSUPPORTED',
    'FEDCLR_AGENT_TRAINER_OUTPUT',
    'FEDCLR_AGENT_TRAINING_FAILED',
    'FEDCLR_AGENT_ROUND_ABORTED',
  ],
  secagg: ['FEDCLR_AGENT_SECAGG_REFUSED', 'FEDCLR_AGENT_SECAGG_FAILED'],
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
