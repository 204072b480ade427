// TypeBox schemas of every wire message. Static types are derived from them (`Static<...>`),
// the compiled validators in messages.ts check them at run time, and the JSON-only ones
// (RoundConfig, TensorSpec, ...) are plain JSON Schema that fastify routes can reuse.
//
// Binary fields (tensor frames, keys, signatures, secagg payloads) are `Type.Uint8Array`:
// socket.io ships Buffers as binary attachments, so a message is a JSON part plus attachments.
// `Type.Uint8Array` is a TypeBox extension, not JSON Schema: do not hand those message schemas
// to ajv (fastify) as they are.
import { Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';
import type { ProtocolLimits } from './limits.js';
import { DEFAULT_LIMITS } from './limits.js';
import { PROTOCOL_VERSION_PATTERN } from './version.js';

const strict = { additionalProperties: false } as const;

// ---- primitives ----------------------------------------------------------------------------

/** `MAJOR.MINOR`, e.g. '1.0'. */
export const ProtocolVersionSchema = Type.String({ pattern: PROTOCOL_VERSION_PATTERN, maxLength: 16 });

/** Agent identifier: 1-128 chars of [A-Za-z0-9._:-], starting alphanumeric. */
export const AGENT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
export const AgentIdSchema = Type.String({ pattern: AGENT_ID_PATTERN, maxLength: 128 });

/** Lower-case hex sha256: model versions and content hashes. */
export const HASH_PATTERN = '^[0-9a-f]{64}$';
export const HashSchema = Type.String({ pattern: HASH_PATTERN, maxLength: 64 });

export const RoundIdSchema = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** Finite numbers only: TypeBox rejects NaN and +-Infinity by default (TypeSystemPolicy.AllowNaN). */
const Finite = Type.Number();

/** Session id chosen by the coordinator in `welcome`; agents' signatures are bound to it. */
export const SessionIdSchema = Type.String({ pattern: '^[A-Za-z0-9_-]{16,128}$', maxLength: 128 });

/** Error / reason codes sent as data: SCREAMING_SNAKE_CASE. */
const ErrorCode = Type.String({ pattern: '^[A-Z][A-Z0-9_]{0,63}$', maxLength: 64 });
const MetricName = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.]{0,63}$', maxLength: 64 });

/** Ed25519 public key: exactly 32 bytes. */
export const PublicKeySchema = Type.Uint8Array({ minByteLength: 32, maxByteLength: 32 });
/** Ed25519 detached signature: exactly 64 bytes. */
export const SignatureSchema = Type.Uint8Array({ minByteLength: 64, maxByteLength: 64 });
/** Bytes of the agent's per-connection nonce (hello.nonce). */
export const CONNECTION_NONCE_BYTES = 32;
/** Fresh random value an agent sends in each hello; the coordinator's signatures cover it. */
export const ConnectionNonceSchema = Type.Uint8Array({ minByteLength: CONNECTION_NONCE_BYTES, maxByteLength: CONNECTION_NONCE_BYTES });

type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };

function literals<const T extends readonly string[]>(values: T): TUnion<Literals<T>> {
  const variants = values.map((v) => Type.Literal(v)) as unknown as Literals<T>;
  return Type.Union(variants) as TUnion<Literals<T>>;
}

// ---- enumerations --------------------------------------------------------------------------

export const DTYPES = ['float32', 'int32', 'uint32'] as const;
export const OPTIMIZERS = ['sgd', 'momentum', 'adam'] as const;
/** The losses agents train: @fedclr/contrastive's RECIPE_LOSSES (protocol uses no tfjs; a test keeps the two equal). */
export const LOSSES = ['ntxent', 'dcl', 'moco', 'triplet', 'margin', 'supcon'] as const;
/** Triplet mining (config.mining). */
export const MININGS = ['all', 'hard', 'semi-hard'] as const;
/** The losses that take config.margin, and the one that takes config.mining. */
export const MARGIN_LOSSES: readonly LossName[] = ['triplet', 'margin'];
export const MINING_LOSSES: readonly LossName[] = ['triplet'];
export const AGGREGATION_MODES = ['plain', 'secure'] as const;
export const AGENT_STATES = ['idle', 'training', 'uploading', 'secagg'] as const;
export const ROUND_OUTCOMES = ['completed', 'aborted'] as const;
export const SHUTDOWN_REASONS = ['stopping', 'restarting', 'completed', 'evicted'] as const;
/** Why a hello was refused. */
export const REJECT_REASONS = [
  'version-incompatible',
  'invalid-hello',
  'not-enrolled',
  'bad-signature',
  'duplicate-session',
  'capacity',
  'shutting-down',
] as const;
/** Why an update was refused. */
export const UPDATE_REJECT_REASONS = [
  'invalid-message',
  'round-mismatch',
  'not-in-cohort',
  'duplicate',
  'late',
  'stale-model',
  'too-large',
  'bad-frame',
  'manifest-mismatch',
  'non-finite',
  'hash-mismatch',
  'bad-signature',
] as const;
/** Capabilities a hello may advertise (any `[a-z][a-z0-9.-]*` string is accepted). */
export const KNOWN_CAPABILITIES = ['secagg', 'dp', 'fedprox', 'supcon', 'eval'] as const;

export const DtypeSchema = literals(DTYPES);
export const AggregationModeSchema = literals(AGGREGATION_MODES);
export const RejectReasonSchema = literals(REJECT_REASONS);
export const UpdateRejectReasonSchema = literals(UPDATE_REJECT_REASONS);

// ---- JSON-only compound schemas (valid JSON Schema; fastify can reuse them) ----------------

/** One tensor of a frame manifest. */
export const TensorSpecSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f]+$' }),
    shape: Type.Array(Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 }), { maxItems: DEFAULT_LIMITS.maxRank }),
    dtype: DtypeSchema,
  },
  strict,
);

/** Who adds a DP round's Gaussian noise (DP_NOISE_PLACEMENTS). */
export const DP_NOISE_PLACEMENTS = ['agents', 'coordinator'] as const;

/**
 * Client-level differential privacy for a round (3.0; DP-FedAvg): every delta is clipped to
 * config.clipNorm C, the sum is unweighted and the new global update is sum / config.cohortSize.
 * Noise 'agents' (secure rounds): each agent adds N(0, sigma^2 C^2 / n_min), n_min = cohort -
 * tolerated dropouts - tolerated corrupt agents of the signed SecAgg+ parameters. Noise
 * 'coordinator' (plain rounds only): the coordinator adds N(0, sigma^2 C^2) to the sum; it sees
 * every clipped update (a weaker trust model).
 */
export const DpConfigSchema = Type.Object(
  {
    /** sigma: the summed noise's standard deviation over C; > 0 (omit dp for no DP). */
    noiseMultiplier: Type.Number({ exclusiveMinimum: 0, maximum: 1000 }),
    noise: literals(DP_NOISE_PLACEMENTS),
  },
  strict,
);

/**
 * A Poisson round (3.1): the coordinator invited `invited` agents with sampling-invite at rate q,
 * each drew its own coin (u < q) from a secret only it holds, and the cohort is exactly the
 * volunteers. An agent refuses such a round-start unless it volunteered for this round id at this
 * rate. A DP round's fixed denominator is then q * invited (the expected cohort size), not the
 * cohort that turned up.
 */
export const SamplingConfigSchema = Type.Object(
  {
    /** q: each invited agent's probability of volunteering, in (0, 1]. */
    rate: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
    /** Agents invited (sent sampling-invite) for this round. */
    invited: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  },
  strict,
);

/**
 * The model and augmentation of a round's training recipe (the rest of it, optimizer, rate,
 * batch, loss, temperature, margin and mining, are RoundConfig's own fields). An agent builds its encoder and
 * augmentation from this and trains nothing else; it refuses a recipe it cannot run.
 */
export const RoundRecipeSchema = Type.Object(
  {
    model: Type.Object(
      {
        /** Encoder family, e.g. 'convnet-s' or 'resnet-s' (agents refuse one they do not know). */
        encoder: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$', maxLength: 32 }),
        /** Filters per layer (convnet-s) or channels per stage (resnet-s). */
        widths: Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), { minItems: 1, maxItems: 8 }),
        /** Projection head: hidden and output units. */
        head: Type.Object({ hidden: Type.Integer({ minimum: 1, maximum: 4096 }), out: Type.Integer({ minimum: 1, maximum: 4096 }) }, strict),
        /** The images the model takes. */
        input: Type.Object(
          {
            height: Type.Integer({ minimum: 8, maximum: 512 }),
            width: Type.Integer({ minimum: 8, maximum: 512 }),
            channels: Type.Integer({ minimum: 1, maximum: 4 }),
          },
          strict,
        ),
      },
      strict,
    ),
    augment: Type.Object(
      {
        /** Side of the training views: random crops are resized to it. */
        viewSize: Type.Integer({ minimum: 4, maximum: 512 }),
        /** Smallest random crop, fraction of the image area. */
        cropMin: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
        /** Colour-jitter strength. */
        strength: Type.Number({ minimum: 0, maximum: 2.5 }),
      },
      strict,
    ),
    /** Decoupled weight decay (adam) or L2 (sgd, momentum) on kernels. */
    weightDecay: Type.Number({ minimum: 0, maximum: 1 }),
    /** Loss 'moco': the key encoder's EMA rate and the queue size (agents use the recipe's defaults without it). */
    moco: Type.Optional(
      Type.Object(
        {
          momentum: Type.Number({ minimum: 0, exclusiveMaximum: 1 }),
          queueSize: Type.Integer({ minimum: 0, maximum: 65536 }),
        },
        strict,
      ),
    ),
  },
  strict,
);

/** What an agent must do in a round. */
export const RoundConfigSchema = Type.Object(
  {
    localEpochs: Type.Integer({ minimum: 1, maximum: 1000 }),
    batchSize: Type.Integer({ minimum: 2, maximum: 65536 }),
    learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 10 }),
    optimizer: literals(OPTIMIZERS),
    loss: literals(LOSSES),
    /** Softmax temperature (ntxent, dcl, moco, supcon; carried, unused, by triplet and margin). */
    temperature: Type.Number({ exclusiveMinimum: 0, maximum: 100 }),
    /** (2.2) triplet and margin, and only they: the margin between unit embeddings' distances. */
    margin: Type.Optional(Type.Number({ minimum: 0, maximum: 4 })),
    /** (2.2) triplet, and only it: which triplets train. */
    mining: Type.Optional(literals(MININGS)),
    /** FedProx proximal term; 0 is plain FedAvg local training. */
    fedproxMu: Type.Number({ minimum: 0, maximum: 1000 }),
    /** L2 norm bound of the update (delta); 0 disables clipping (not allowed with dp, whose noise and influence bound it sets). */
    clipNorm: Type.Number({ minimum: 0, maximum: 1e6 }),
    /** Time budget for train + upload, counted from receipt of round-start. */
    deadlineMs: Type.Integer({ minimum: 1000, maximum: 7 * 24 * 3600 * 1000 }),
    aggregation: AggregationModeSchema,
    /** Number of agents the coordinator sampled for this round (agents check it against their policy); a DP round's fixed denominator. */
    cohortSize: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    dp: Type.Optional(DpConfigSchema),
    /** (3.1) Present in a Poisson round: the cohort is the agents whose own coins volunteered them. */
    sampling: Type.Optional(SamplingConfigSchema),
    /** Seed for the agent's augmentation/shuffling RNG (reproducible simulations). */
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 })),
    /** The architecture and augmentation to train (2.1); a contrastive agent refuses a round without it. */
    recipe: Type.Optional(RoundRecipeSchema),
  },
  strict,
);

// ---- messages ------------------------------------------------------------------------------

/** Builds every message schema for the given limits (sizes are baked into the schemas). */
export function buildMessageSchemas(limits: Readonly<ProtocolLimits> = DEFAULT_LIMITS) {
  const Text = Type.String({ maxLength: limits.maxTextLength });
  const Frame = Type.Uint8Array({ minByteLength: 64, maxByteLength: limits.maxFrameBytes });
  const Metrics = Type.Record(MetricName, Finite, { maxProperties: limits.maxMetrics, additionalProperties: false });
  const Sig = Type.Optional(SignatureSchema);
  const SecaggAddress = Type.Union([AgentIdSchema, Type.Literal('@coordinator'), Type.Literal('@all')]);

  // agent -> coordinator

  const hello = Type.Object(
    {
      type: Type.Literal('hello'),
      /** Checked before the rest of the schema: a different major gets a version error. */
      protocolVersion: ProtocolVersionSchema,
      agentId: AgentIdSchema,
      publicKey: PublicKeySchema,
      /**
       * Fresh random bytes for this connection: every coordinator message of the connection is
       * signed over them, so none can be replayed into another connection.
       */
      nonce: ConnectionNonceSchema,
      capabilities: Type.Array(Type.String({ pattern: '^[a-z][a-z0-9.-]{0,63}$', maxLength: 64 }), {
        maxItems: limits.maxCapabilities,
        uniqueItems: true,
      }),
      exampleCount: Type.Optional(Count),
      /**
       * A one-time enrolment token from the coordinator's operator (fedclr admin token): a key
       * not yet enrolled is enrolled with it at its first successful handshake. Ignored once the
       * key is enrolled. Opaque to the protocol.
       */
      token: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9._-]+$' })),
    },
    strict,
  );

  const ready = Type.Object({ type: Type.Literal('ready'), sig: Sig }, strict);

  const update = Type.Object(
    {
      type: Type.Literal('update'),
      roundId: RoundIdSchema,
      /** Version of the global model the agent trained from (round-start's modelVersion). */
      modelVersion: HashSchema,
      /** Required in plain rounds; absent in secure rounds (the count is inside the masked vector). */
      exampleCount: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
      /** Plain rounds only: per-agent metrics are a side channel in secure rounds (openUpdate refuses them). */
      metrics: Type.Optional(Type.Object(
        {
          loss: Finite,
          steps: Type.Optional(Count),
          durationMs: Type.Optional(Count),
          extra: Type.Optional(Metrics),
        },
        strict,
      )),
      /** Tensor frame: the delta (plain) or the masked fixed-point vector (secure). */
      frame: Frame,
      sig: Sig,
    },
    strict,
  );

  const error = Type.Object(
    {
      type: Type.Literal('error'),
      code: ErrorCode,
      message: Text,
      roundId: Type.Optional(RoundIdSchema),
      /** The agent is giving up (it will disconnect) rather than skipping one round. */
      fatal: Type.Optional(Type.Boolean()),
      sig: Sig,
    },
    strict,
  );

  const heartbeat = Type.Object(
    {
      type: Type.Literal('heartbeat'),
      /** Agent wall clock, ms since the epoch. */
      sentAt: Count,
      state: literals(AGENT_STATES),
      roundId: Type.Optional(RoundIdSchema),
      progress: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      sig: Sig,
    },
    strict,
  );

  /** Secure-aggregation envelope (both directions); the payload's format belongs to secagg. */
  const secagg = Type.Object(
    {
      type: Type.Literal('secagg'),
      roundId: RoundIdSchema,
      stage: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$', maxLength: 32 }),
      from: SecaggAddress,
      to: SecaggAddress,
      payload: Type.Uint8Array({ maxByteLength: limits.maxSecaggPayloadBytes }),
      sig: Sig,
    },
    strict,
  );

  // coordinator -> agent

  const welcome = Type.Object(
    {
      type: Type.Literal('welcome'),
      /** The negotiated version: same major, lower of the two minors. */
      protocolVersion: ProtocolVersionSchema,
      sessionId: SessionIdSchema,
      coordinatorId: Type.Optional(AgentIdSchema),
      heartbeatIntervalMs: Type.Integer({ minimum: 100, maximum: 3_600_000 }),
      /** The coordinator's limits; the agent must not send more. */
      limits: Type.Object(
        {
          maxFrameBytes: Type.Integer({ minimum: 1 }),
          maxSecaggPayloadBytes: Type.Integer({ minimum: 1 }),
        },
        strict,
      ),
      /** Current global model version, if any. */
      modelVersion: Type.Optional(HashSchema),
      /** The coordinator's Ed25519 public key; every coordinator message is signed by it. */
      coordinatorKey: PublicKeySchema,
      sig: Sig,
    },
    strict,
  );

  /** Frozen across majors together with hello's type/protocolVersion, so any peer can read it. */
  const reject = Type.Object(
    {
      type: Type.Literal('reject'),
      reason: RejectReasonSchema,
      message: Text,
      /** The coordinator's protocol version, so the agent knows what to upgrade to. */
      protocolVersion: ProtocolVersionSchema,
    },
    strict,
  );

  const roundStart = Type.Object(
    {
      type: Type.Literal('round-start'),
      roundId: RoundIdSchema,
      /** sha256 of the weights frame's manifest + data; equals the frame header hash. */
      modelVersion: HashSchema,
      config: RoundConfigSchema,
      /** Global weights as a tensor frame. */
      weights: Frame,
      sig: Sig,
    },
    strict,
  );

  const roundEnd = Type.Object(
    {
      type: Type.Literal('round-end'),
      roundId: RoundIdSchema,
      outcome: literals(ROUND_OUTCOMES),
      /** Why the round aborted (or a note on completion). */
      reason: Type.Optional(Text),
      /** The new global model version after a completed round. */
      modelVersion: Type.Optional(HashSchema),
      participants: Type.Optional(Count),
      /** Whether this agent's update made it into the aggregate. */
      included: Type.Optional(Type.Boolean()),
      metrics: Type.Optional(Metrics),
      sig: Sig,
    },
    strict,
  );

  const updateRejected = Type.Object(
    {
      type: Type.Literal('update-rejected'),
      roundId: RoundIdSchema,
      reason: UpdateRejectReasonSchema,
      /** The catalogued error code behind the rejection, when there is one. */
      code: Type.Optional(ErrorCode),
      message: Text,
      sig: Sig,
    },
    strict,
  );

  const shutdown = Type.Object(
    {
      type: Type.Literal('shutdown'),
      reason: literals(SHUTDOWN_REASONS),
      message: Type.Optional(Text),
      /** Reconnect no sooner than this; absent: do not reconnect. */
      reconnectAfterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
      sig: Sig,
    },
    strict,
  );

  /**
   * (3.1) Poisson sampling: the agent's answer to sampling-invite, from its own coin for
   * (coordinator key, roundId); the same round id always gets the same answer.
   */
  const samplingAnswer = Type.Object(
    {
      type: Type.Literal('sampling-answer'),
      roundId: RoundIdSchema,
      volunteer: Type.Boolean(),
      sig: Sig,
    },
    strict,
  );

  const agentToCoordinator = { hello, ready, update, error, heartbeat, secagg, 'sampling-answer': samplingAnswer } as const;
  /**
   * (3.1) Poisson sampling: before round-start, every ready agent is invited to draw its coin for
   * round `roundId` at rate q; only volunteers may then be sent the round's round-start.
   */
  const samplingInvite = Type.Object(
    {
      type: Type.Literal('sampling-invite'),
      roundId: RoundIdSchema,
      rate: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
      sig: Sig,
    },
    strict,
  );

  const coordinatorToAgent = {
    welcome,
    reject,
    'round-start': roundStart,
    'round-end': roundEnd,
    'update-rejected': updateRejected,
    shutdown,
    secagg,
    'sampling-invite': samplingInvite,
  } as const;

  return {
    agentToCoordinator,
    coordinatorToAgent,
    /** Discriminated unions on `type`, for documentation and for TypeBox's own checkers. */
    AgentMessage: Type.Union([hello, ready, update, error, heartbeat, secagg, samplingAnswer]),
    CoordinatorMessage: Type.Union([welcome, reject, roundStart, roundEnd, updateRejected, shutdown, secagg, samplingInvite]),
  };
}

export type MessageSchemas = ReturnType<typeof buildMessageSchemas>;
type A = MessageSchemas['agentToCoordinator'];
type C = MessageSchemas['coordinatorToAgent'];

/** Schemas built with DEFAULT_LIMITS. */
export const Schemas: MessageSchemas = buildMessageSchemas(DEFAULT_LIMITS);

// ---- static types --------------------------------------------------------------------------

export type Dtype = (typeof DTYPES)[number];
export type Optimizer = (typeof OPTIMIZERS)[number];
export type LossName = (typeof LOSSES)[number];
export type Mining = (typeof MININGS)[number];
export type AggregationMode = (typeof AGGREGATION_MODES)[number];
export type RejectReason = (typeof REJECT_REASONS)[number];
export type UpdateRejectReason = (typeof UPDATE_REJECT_REASONS)[number];
export type RoundConfig = Static<typeof RoundConfigSchema>;
export type RoundRecipe = Static<typeof RoundRecipeSchema>;
export type DpConfig = Static<typeof DpConfigSchema>;
export type DpNoisePlacement = (typeof DP_NOISE_PLACEMENTS)[number];
export type SamplingConfig = Static<typeof SamplingConfigSchema>;

export type HelloMessage = Static<A['hello']>;
export type ReadyMessage = Static<A['ready']>;
export type UpdateMessage = Static<A['update']>;
export type ErrorMessage = Static<A['error']>;
export type HeartbeatMessage = Static<A['heartbeat']>;
export type SecaggMessage = Static<A['secagg']>;
export type SamplingAnswerMessage = Static<A['sampling-answer']>;
export type WelcomeMessage = Static<C['welcome']>;
export type RejectMessage = Static<C['reject']>;
export type RoundStartMessage = Static<C['round-start']>;
export type RoundEndMessage = Static<C['round-end']>;
export type UpdateRejectedMessage = Static<C['update-rejected']>;
export type ShutdownMessage = Static<C['shutdown']>;
export type SamplingInviteMessage = Static<C['sampling-invite']>;

export type AgentMessage = HelloMessage | ReadyMessage | UpdateMessage | ErrorMessage | HeartbeatMessage | SecaggMessage | SamplingAnswerMessage;
export type CoordinatorMessage =
  | WelcomeMessage
  | RejectMessage
  | RoundStartMessage
  | RoundEndMessage
  | UpdateRejectedMessage
  | ShutdownMessage
  | SecaggMessage
  | SamplingInviteMessage;
export type Message = AgentMessage | CoordinatorMessage;

export type AgentMessageType = AgentMessage['type'];
export type CoordinatorMessageType = CoordinatorMessage['type'];

export type { TSchema };
