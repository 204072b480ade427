// The coordinator's error catalog: every error this package throws is created here, with a
// stable `FEDCLR_COORD_*` code and an HTTP status so fastify routes can return it as is.
// Messages use util.format (`%s`) and name the field, round or file involved.
import createError from '@fastify/error';
import type { FastifyError } from '@fastify/error';

type S = string | number;

// ---- configuration -------------------------------------------------------------------------

/** A configuration value is invalid. Args: field path, rule, received. */
export const ConfigInvalidError = createError<'FEDCLR_COORD_CONFIG_INVALID', 500, [S, S, S]>(
  'FEDCLR_COORD_CONFIG_INVALID',
  "Invalid coordinator configuration: '%s' must be %s; got %s",
  500,
);

// ---- model and checkpoints -----------------------------------------------------------------

/** The model given at start-up does not fit the run on disk or itself. Args: problem. */
export const ModelMismatchError = createError<'FEDCLR_COORD_MODEL_MISMATCH', 500, [S]>(
  'FEDCLR_COORD_MODEL_MISMATCH',
  'Model mismatch: %s',
  500,
);

/** No model to start from. Args: state dir. */
export const ModelMissingError = createError<'FEDCLR_COORD_MODEL_MISSING', 500, [S]>(
  'FEDCLR_COORD_MODEL_MISSING',
  'No global model: the state dir %s holds no completed round and no initial model was given to startCoordinator',
  500,
);

/** A checkpoint on disk is unreadable or does not match its committed row. Args: path, problem. */
export const CheckpointCorruptError = createError<'FEDCLR_COORD_CHECKPOINT_CORRUPT', 500, [S, S]>(
  'FEDCLR_COORD_CHECKPOINT_CORRUPT',
  'Checkpoint %s is corrupt or inconsistent: %s',
  500,
);

/** No model can be served yet. */
export const ModelUnavailableError = createError<'FEDCLR_COORD_MODEL_UNAVAILABLE', 503, []>(
  'FEDCLR_COORD_MODEL_UNAVAILABLE',
  'No global model is available yet',
  503,
);

/** GET /api/model/model.json or weights.bin on a coordinator started without the model's graph spec. */
export const LayersModelUnavailableError = createError<'FEDCLR_COORD_LAYERS_MODEL_UNAVAILABLE', 404, []>(
  'FEDCLR_COORD_LAYERS_MODEL_UNAVAILABLE',
  'This coordinator was started without the model architecture (deps.modelSpec), so it cannot serve the tfjs layers format; GET /api/model/frame has the weights',
  404,
);

// ---- persistence ---------------------------------------------------------------------------

/** The database cannot be opened or migrated. Args: path, problem. */
export const DatabaseError = createError<'FEDCLR_COORD_DATABASE', 500, [S, S]>(
  'FEDCLR_COORD_DATABASE',
  'State database %s: %s',
  500,
);

/** The database was written by a newer build. Args: found version, supported version. */
export const SchemaTooNewError = createError<'FEDCLR_COORD_SCHEMA_TOO_NEW', 500, [S, S]>(
  'FEDCLR_COORD_SCHEMA_TOO_NEW',
  'State database schema version %s is newer than this build supports (%s); upgrade the coordinator',
  500,
);

// ---- aggregation and strategies ------------------------------------------------------------

/** An update does not fit the aggregation (programming error at the call site). Args: problem. */
export const AggregationInputError = createError<'FEDCLR_COORD_AGGREGATION_INPUT', 500, [S]>(
  'FEDCLR_COORD_AGGREGATION_INPUT',
  'Aggregation input rejected: %s',
  500,
);

/** The aggregation session was used after it closed, or closed twice. Args: operation, state. */
export const AggregationStateError = createError<'FEDCLR_COORD_AGGREGATION_STATE', 500, [S, S]>(
  'FEDCLR_COORD_AGGREGATION_STATE',
  "Aggregation session cannot '%s' while %s",
  500,
);

/** The strategy produced NaN/Inf or was fed an empty aggregate. Args: strategy, problem. */
export const StrategyError = createError<'FEDCLR_COORD_STRATEGY', 500, [S, S]>(
  'FEDCLR_COORD_STRATEGY',
  "Strategy '%s' failed: %s",
  500,
);

/** Strategy state from a checkpoint does not fit the strategy. Args: strategy, problem. */
export const StrategyStateError = createError<'FEDCLR_COORD_STRATEGY_STATE', 500, [S, S]>(
  'FEDCLR_COORD_STRATEGY_STATE',
  "Cannot restore the state of strategy '%s': %s",
  500,
);

/** The coordinator's secagg signing key file is unusable. Args: path, problem. */
export const SecaggIdentityError = createError<'FEDCLR_COORD_SECAGG_IDENTITY', 500, [S, S]>(
  'FEDCLR_COORD_SECAGG_IDENTITY',
  'Secure-aggregation identity file %s is unusable: %s',
  500,
);

// ---- round engine --------------------------------------------------------------------------

/** The round engine received an event it cannot handle in its state. Args: event, state. */
export const EngineStateError = createError<'FEDCLR_COORD_ENGINE_STATE', 500, [S, S]>(
  'FEDCLR_COORD_ENGINE_STATE',
  "Round engine cannot handle event '%s' in phase '%s'",
  500,
);

// ---- agents and authentication -------------------------------------------------------------

/** A public key in the enrolment allow-list is not 32 bytes of hex or base64. Args: entry. */
export const BadPublicKeyError = createError<'FEDCLR_COORD_BAD_PUBLIC_KEY', 500, [S]>(
  'FEDCLR_COORD_BAD_PUBLIC_KEY',
  'Enrolment allow-list entry %s is not an Ed25519 public key (32 bytes as hex or base64)',
  500,
);

/** A public key given to the admin API is not 32 bytes of hex or base64. Args: value. */
export const AdminBadKeyError = createError<'FEDCLR_COORD_ADMIN_BAD_KEY', 400, [S]>(
  'FEDCLR_COORD_ADMIN_BAD_KEY',
  'publicKey %s is not an Ed25519 public key (32 bytes as 64 hex characters or base64)',
  400,
);

/** An enrolment would bind an id or a key twice. Args: problem. */
export const EnrolmentConflictError = createError<'FEDCLR_COORD_ENROLMENT_CONFLICT', 409, [S]>(
  'FEDCLR_COORD_ENROLMENT_CONFLICT',
  'Enrolment refused: %s',
  409,
);

/** The admin API was asked about an agent id that was never enrolled. Args: agent id. */
export const AgentNotEnrolledError = createError<'FEDCLR_COORD_AGENT_NOT_ENROLLED', 404, [S]>(
  'FEDCLR_COORD_AGENT_NOT_ENROLLED',
  "Agent '%s' is not enrolled",
  404,
);

/** A secret file in the state dir (admin token, token key) is unusable. Args: path, problem. */
export const SecretFileError = createError<'FEDCLR_COORD_SECRET_FILE', 500, [S, S]>(
  'FEDCLR_COORD_SECRET_FILE',
  'Secret file %s is unusable: %s',
  500,
);

// ---- lifecycle and HTTP --------------------------------------------------------------------

/** The coordinator is shutting down. */
export const ShuttingDownError = createError<'FEDCLR_COORD_SHUTTING_DOWN', 503, []>(
  'FEDCLR_COORD_SHUTTING_DOWN',
  'The coordinator is shutting down',
  503,
);

/** An HTTP request lacks the bearer token its route needs, or carries a wrong one. Args: problem. */
export const UnauthorizedError = createError<'FEDCLR_COORD_UNAUTHORIZED', 401, [S]>(
  'FEDCLR_COORD_UNAUTHORIZED',
  'Unauthorized: %s',
  401,
);

/** No checkpoint on disk (pruned by keepLastK, or never exported as tfjs) for that round. Args: round id. */
export const CheckpointNotFoundError = createError<'FEDCLR_COORD_CHECKPOINT_NOT_FOUND', 404, [S]>(
  'FEDCLR_COORD_CHECKPOINT_NOT_FOUND',
  'Round %s has no tfjs checkpoint on disk (never completed, pruned by keepLastK, or written without the tfjs exporter)',
  404,
);

/** No such round. Args: round id. */
export const RoundNotFoundError = createError<'FEDCLR_COORD_ROUND_NOT_FOUND', 404, [S]>(
  'FEDCLR_COORD_ROUND_NOT_FOUND',
  'Round %s does not exist',
  404,
);

// ---- privacy -------------------------------------------------------------------------------

/** The saved privacy ledger cannot be read. Args: problem. */
export const PrivacyStateInvalidError = createError<'FEDCLR_COORD_PRIVACY_STATE_INVALID', 500, [S]>(
  'FEDCLR_COORD_PRIVACY_STATE_INVALID',
  "Refusing to start: the state dir's privacy ledger (run_meta 'privacy-ledger') is unreadable: %s. Starting over would hide the epsilon already spent; restore the database from a backup, or start a new run in a new --state dir",
  500,
);

// ---- catalog helpers -----------------------------------------------------------------------

export const COORDINATOR_ERROR_CODES = {
  config: ['FEDCLR_COORD_CONFIG_INVALID'],
  model: [
    'FEDCLR_COORD_MODEL_MISMATCH',
    'FEDCLR_COORD_MODEL_MISSING',
    'FEDCLR_COORD_CHECKPOINT_CORRUPT',
    'FEDCLR_COORD_MODEL_UNAVAILABLE',
    'FEDCLR_COORD_LAYERS_MODEL_UNAVAILABLE',
    'FEDCLR_COORD_CHECKPOINT_NOT_FOUND',
  ],
  persistence: ['FEDCLR_COORD_DATABASE', 'FEDCLR_COORD_SCHEMA_TOO_NEW'],
  aggregation: [
    'FEDCLR_COORD_AGGREGATION_INPUT',
    'FEDCLR_COORD_AGGREGATION_STATE',
    'FEDCLR_COORD_STRATEGY',
    'FEDCLR_COORD_STRATEGY_STATE',
    'FEDCLR_COORD_SECAGG_IDENTITY',
  ],
  engine: ['FEDCLR_COORD_ENGINE_STATE'],
  agents: [
    'FEDCLR_COORD_BAD_PUBLIC_KEY',
    'FEDCLR_COORD_ADMIN_BAD_KEY',
    'FEDCLR_COORD_ENROLMENT_CONFLICT',
    'FEDCLR_COORD_AGENT_NOT_ENROLLED',
    'FEDCLR_COORD_SECRET_FILE',
  ],
  privacy: ['FEDCLR_COORD_PRIVACY_STATE_INVALID'],
  lifecycle: ['FEDCLR_COORD_SHUTTING_DOWN', 'FEDCLR_COORD_ROUND_NOT_FOUND', 'FEDCLR_COORD_UNAUTHORIZED'],
} as const;

export type CoordinatorErrorCode = (typeof COORDINATOR_ERROR_CODES)[keyof typeof COORDINATOR_ERROR_CODES][number];
export type CoordinatorError = FastifyError & { code: CoordinatorErrorCode; statusCode: number };

const ALL_CODES: ReadonlySet<string> = new Set(Object.values(COORDINATOR_ERROR_CODES).flat());

/** True when `err` is one of this catalog's errors (optionally with this exact code). */
export function isCoordinatorError(err: unknown, code?: CoordinatorErrorCode): err is CoordinatorError {
  if (!(err instanceof Error)) return false;
  const c = (err as { code?: unknown }).code;
  if (typeof c !== 'string' || !ALL_CODES.has(c)) return false;
  return code === undefined || c === code;
}
