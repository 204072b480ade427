// HTTP routes (fastify plugin). Every route declares its JSON schema (querystring, params and
// response); the response schemas are exported so tests can check the data against them.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import { HashSchema, RoundConfigSchema, TensorSpecSchema } from '@fedclr/protocol';
import type { StateDb, RoundRow } from './db.js';
import type { EngineStatus, GlobalModel } from './engine.js';
import { LayersModelUnavailableError, RoundNotFoundError } from './errors.js';
import type { AgentInfo } from './gateway.js';
import type { HistoryCache } from './history-cache.js';
import type { LayersModelFiles } from './layers-model.js';
import type { MetricsRegistry } from './metrics.js';

export interface HttpContext {
  readonly db: StateDb;
  readonly status: () => EngineStatus;
  readonly model: () => GlobalModel;
  /** The current model as tfjs layers files; absent when the coordinator has no graph spec. */
  readonly layersModel?: () => Promise<LayersModelFiles>;
  readonly agents: () => { connected: number; authenticated: number; list: AgentInfo[] };
  /** The running round's cohort and each member's status (undefined between rounds). */
  readonly cohort?: () => { roundId: number; members: readonly { agentId: string; status: string }[] } | undefined;
  readonly metrics: MetricsRegistry;
  readonly startedAt: number;
  readonly coordinatorId: string;
  /** Hex Ed25519 public key of the coordinator. */
  readonly coordinatorKey: string;
  readonly strategy: { name: string; params: Readonly<Record<string, number>> };
  readonly aggregation: string;
  /** Secure mode: the coordinator's secagg signing key (hex; agents may pin it) and encoding settings. */
  readonly secagg?: { readonly publicKey: string; readonly clip: number; readonly maxWeight: number; readonly dropoutFraction: number; readonly corruptFraction: number };
  /** Keeps GET /api/rounds' answers until the history changes (ETag, 304); without it every request queries. */
  readonly history?: HistoryCache;
}

const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: 'null' }] });
const metricsRecord = { type: 'object', additionalProperties: { type: 'number' } } as const;

export const HealthSchema = {
  type: 'object',
  required: ['status', 'uptimeSeconds', 'phase'],
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['ok', 'stopping'] },
    uptimeSeconds: { type: 'number', minimum: 0 },
    phase: { type: 'string' },
  },
} as const;

export const StatusSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['coordinatorId', 'coordinatorKey', 'phase', 'completedRounds', 'targetRounds', 'model', 'agents', 'strategy', 'aggregation', 'round'],
  properties: {
    coordinatorId: { type: 'string' },
    /** Hex Ed25519 public key that signs every coordinator message (agents pin it: --coordinator-key). */
    coordinatorKey: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    phase: { type: 'string', enum: ['waiting', 'inviting', 'collecting', 'aggregating', 'committing', 'finished', 'stopped'] },
    completedRounds: { type: 'integer', minimum: 0 },
    targetRounds: { type: 'integer', minimum: 1 },
    model: {
      type: 'object',
      additionalProperties: false,
      required: ['modelVersion', 'roundId', 'architecture', 'parameters'],
      properties: {
        modelVersion: HashSchema,
        roundId: { type: 'integer', minimum: 0 },
        architecture: { type: 'string' },
        parameters: { type: 'integer', minimum: 0 },
      },
    },
    agents: {
      type: 'object',
      additionalProperties: false,
      required: ['connected', 'authenticated', 'ready', 'active'],
      properties: {
        connected: { type: 'integer', minimum: 0 },
        authenticated: { type: 'integer', minimum: 0 },
        ready: { type: 'integer', minimum: 0 },
        active: { type: 'integer', minimum: 0 },
      },
    },
    strategy: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'params'],
      properties: { name: { type: 'string' }, params: metricsRecord },
    },
    aggregation: { type: 'string', enum: ['plain', 'secure'] },
    secagg: {
      type: 'object',
      additionalProperties: false,
      required: ['publicKey', 'clip', 'maxWeight', 'dropoutFraction', 'corruptFraction'],
      properties: {
        publicKey: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        clip: { type: 'number' },
        maxWeight: { type: 'integer', minimum: 1 },
        dropoutFraction: { type: 'number', minimum: 0 },
        corruptFraction: { type: 'number', minimum: 0 },
      },
    },
    round: nullable({
      type: 'object',
      additionalProperties: false,
      required: ['roundId', 'startedAt', 'deadlineAt', 'cohortSize', 'answered', 'accepted', 'required'],
      properties: {
        roundId: { type: 'integer', minimum: 0 },
        startedAt: { type: 'integer' },
        deadlineAt: { type: 'integer' },
        cohortSize: { type: 'integer', minimum: 0 },
        answered: { type: 'integer', minimum: 0 },
        accepted: { type: 'integer', minimum: 0 },
        required: { type: 'integer', minimum: 0 },
      },
    }),
    finishedBy: { type: 'string', enum: ['rounds', 'privacy-budget'] },
    /** DP runs: what the RDP accountant says the committed rounds spent. */
    privacy: {
      type: 'object',
      additionalProperties: false,
      required: ['epsilon', 'delta', 'order', 'rounds', 'targetEpsilon', 'noiseMultiplier', 'samplingRate'],
      properties: {
        epsilon: { type: 'number', minimum: 0 },
        delta: { type: 'number' },
        order: nullable({ type: 'number' }),
        rounds: { type: 'integer', minimum: 0 },
        targetEpsilon: nullable({ type: 'number' }),
        noiseMultiplier: { type: 'number' },
        samplingRate: { type: 'number' },
      },
    },
  },
} as const;

const RoundItemSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'roundId', 'status', 'startedAt', 'endedAt', 'durationMs', 'baseModelVersion', 'modelVersion', 'completedRounds',
    'cohortSize', 'required', 'included', 'totalWeight', 'reason', 'metrics',
  ],
  properties: {
    roundId: { type: 'integer', minimum: 0 },
    status: { type: 'string', enum: ['running', 'completed', 'failed', 'aborted', 'interrupted'] },
    startedAt: { type: 'integer' },
    endedAt: nullable({ type: 'integer' }),
    durationMs: nullable({ type: 'integer', minimum: 0 }),
    baseModelVersion: HashSchema,
    modelVersion: nullable(HashSchema),
    completedRounds: nullable({ type: 'integer', minimum: 0 }),
    cohortSize: { type: 'integer', minimum: 0 },
    required: { type: 'integer', minimum: 0 },
    included: nullable({ type: 'integer', minimum: 0 }),
    totalWeight: nullable({ type: 'number', minimum: 0 }),
    reason: nullable({ type: 'string' }),
    metrics: metricsRecord,
  },
} as const;

export const RoundsPageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['items', 'total', 'limit', 'offset'],
  properties: {
    items: { type: 'array', items: RoundItemSchema },
    total: { type: 'integer', minimum: 0 },
    limit: { type: 'integer', minimum: 1 },
    offset: { type: 'integer', minimum: 0 },
  },
} as const;

export const RoundDetailSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['round', 'participants'],
  properties: {
    round: RoundItemSchema,
    participants: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['agentId', 'status', 'exampleCount', 'loss', 'bytes', 'reason'],
        properties: {
          agentId: { type: 'string' },
          status: { type: 'string' },
          exampleCount: nullable({ type: 'integer', minimum: 0 }),
          loss: nullable({ type: 'number' }),
          bytes: nullable({ type: 'integer', minimum: 0 }),
          reason: nullable({ type: 'string' }),
        },
      },
    },
  },
} as const;

export const ModelInfoSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['architecture', 'modelVersion', 'roundId', 'completedRounds', 'parameters', 'manifest', 'frameBytes'],
  properties: {
    architecture: { type: 'string' },
    modelVersion: HashSchema,
    roundId: { type: 'integer', minimum: 0 },
    completedRounds: { type: 'integer', minimum: 0 },
    parameters: { type: 'integer', minimum: 0 },
    manifest: { type: 'array', items: TensorSpecSchema },
    frameBytes: { type: 'integer', minimum: 0 },
  },
} as const;

/** model.json of the tfjs layers format (the topology is tfjs-layers' own JSON, passed through). */
export const LayersModelJsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['format', 'generatedBy', 'convertedBy', 'modelTopology', 'weightsManifest', 'userDefinedMetadata'],
  properties: {
    format: { type: 'string', enum: ['layers-model'] },
    generatedBy: { type: 'string' },
    convertedBy: { type: 'null' },
    modelTopology: { type: 'object', additionalProperties: true },
    weightsManifest: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['paths', 'weights'],
        properties: {
          paths: { type: 'array', minItems: 1, items: { type: 'string' } },
          weights: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'shape', 'dtype'],
              properties: {
                name: { type: 'string' },
                shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
                dtype: { type: 'string', enum: ['float32'] },
              },
            },
          },
        },
      },
    },
    // fedclr: { spec (the graph), info: { roundId, completedRounds, modelVersion, architecture } }
    userDefinedMetadata: { type: 'object', additionalProperties: true },
  },
} as const;

const binary = (description: string) => ({ description, type: 'string', format: 'binary' }) as const;

export const AgentsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['connected', 'authenticated', 'items'],
  properties: {
    connected: { type: 'integer', minimum: 0 },
    authenticated: { type: 'integer', minimum: 0 },
    /** The running round's cohort: ids and status so far (selected, included, dropped, ...); null between rounds. */
    cohort: nullable({
      type: 'object',
      additionalProperties: false,
      required: ['roundId', 'members'],
      properties: {
        roundId: { type: 'integer', minimum: 0 },
        members: {
          type: 'array',
          items: { type: 'object', additionalProperties: false, required: ['agentId', 'status'], properties: { agentId: { type: 'string' }, status: { type: 'string' } } },
        },
      },
    }),
    items: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['agentId', 'connectedSince', 'lastSeen'],
        properties: {
          agentId: { type: 'string' },
          connectedSince: { type: 'integer' },
          lastSeen: { type: 'integer' },
          state: { type: 'string', enum: ['idle', 'training', 'uploading', 'secagg'] },
          progress: { type: 'number', minimum: 0, maximum: 1 },
        },
      },
    },
  },
} as const;

export const ErrorSchema = {
  type: 'object',
  required: ['statusCode', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

const PageQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
} as const;

/** Round config schema (from @fedclr/protocol) re-exported for API clients. */
export { RoundConfigSchema };

function roundItem(r: RoundRow) {
  return {
    roundId: r.id,
    status: r.status,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    durationMs: r.durationMs,
    baseModelVersion: r.baseModelVersion,
    modelVersion: r.modelVersion,
    completedRounds: r.completedRounds,
    cohortSize: r.cohortSize,
    required: r.required,
    included: r.included,
    totalWeight: r.totalWeight,
    reason: r.reason,
    metrics: r.metrics,
  };
}

export function httpRoutes(ctx: HttpContext): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get('/health', { schema: { response: { 200: HealthSchema } } }, async () => {
      const s = ctx.status();
      return {
        status: s.stopping || s.phase === 'stopped' ? 'stopping' : 'ok',
        uptimeSeconds: (Date.now() - ctx.startedAt) / 1000,
        phase: s.phase,
      };
    });

    app.get('/api/status', { schema: { response: { 200: StatusSchema } } }, async () => {
      const s = ctx.status();
      const m = ctx.model();
      const a = ctx.agents();
      return {
        coordinatorId: ctx.coordinatorId,
        coordinatorKey: ctx.coordinatorKey,
        phase: s.phase,
        completedRounds: s.completedRounds,
        targetRounds: s.targetRounds,
        model: { modelVersion: m.modelVersion, roundId: m.roundId, architecture: m.architecture, parameters: m.weights.length },
        agents: { connected: a.connected, authenticated: a.authenticated, ready: s.readyAgents, active: s.activeAgents },
        strategy: { name: ctx.strategy.name, params: { ...ctx.strategy.params } },
        aggregation: ctx.aggregation,
        ...(ctx.secagg === undefined ? {} : { secagg: { ...ctx.secagg } }),
        round: s.round ?? null,
        ...(s.finishedBy === undefined ? {} : { finishedBy: s.finishedBy }),
        ...(s.privacy === undefined ? {} : { privacy: { ...s.privacy } }),
      };
    });

    app.get<{ Querystring: { limit: number; offset: number } }>(
      '/api/rounds',
      { schema: { querystring: PageQuerySchema, response: { 200: RoundsPageSchema, 304: { description: 'not modified since the ETag sent (If-None-Match)', type: 'null' }, 400: ErrorSchema } } },
      async (req, reply) => {
        const { limit, offset } = req.query;
        const answer = () => {
          const page = ctx.db.listRounds(limit, offset);
          return { items: page.items.map(roundItem), total: page.total, limit, offset };
        };
        if (ctx.history === undefined) return answer();
        return ctx.history.reply(req, reply, `rounds:${limit}:${offset}`, () => reply.serialize(answer()));
      },
    );

    app.get<{ Params: { id: number } }>(
      '/api/rounds/:id',
      {
        schema: {
          params: {
            type: 'object',
            required: ['id'],
            additionalProperties: false,
            properties: { id: { type: 'integer', minimum: 0 } },
          },
          response: { 200: RoundDetailSchema, 404: ErrorSchema },
        },
      },
      async (req) => {
        const r = ctx.db.getRound(req.params.id);
        if (r === undefined) throw new RoundNotFoundError(req.params.id);
        return { round: roundItem(r), participants: ctx.db.participants(r.id) };
      },
    );

    app.get('/api/agents', { schema: { response: { 200: AgentsSchema } } }, async () => {
      const a = ctx.agents();
      return { connected: a.connected, authenticated: a.authenticated, items: a.list, cohort: ctx.cohort?.() ?? null };
    });

    app.get('/api/model/info', { schema: { response: { 200: ModelInfoSchema } } }, async () => {
      const m = ctx.model();
      return {
        architecture: m.architecture,
        modelVersion: m.modelVersion,
        roundId: m.roundId,
        completedRounds: m.completedRounds,
        parameters: m.weights.length,
        manifest: m.manifest.map((t) => ({ name: t.name, shape: [...t.shape], dtype: t.dtype })),
        frameBytes: m.frame.byteLength,
      };
    });

    // The latest global model: in the tfjs layers format (model.json + its sibling weights.bin) and
    // as a fedclr tensor frame. Every response names the model version it carries (header and
    // ETag): a client fetching model.json then weights.bin across a round's commit can tell.
    const versionHeaders = (reply: FastifyReply, m: { modelVersion: string; roundId: number; architecture: string }): void => {
      void reply
        .header('x-fedclr-model-version', m.modelVersion)
        .header('x-fedclr-round', String(m.roundId))
        .header('x-fedclr-architecture', m.architecture)
        .header('etag', `"${m.modelVersion}"`);
    };
    const layersFiles = (): Promise<LayersModelFiles> => {
      if (ctx.layersModel === undefined) throw new LayersModelUnavailableError();
      return ctx.layersModel();
    };

    app.get(
      '/api/model',
      { schema: { response: { 302: { description: 'redirect to /api/model/model.json', type: 'null' } } } },
      async (_req, reply) => reply.redirect('/api/model/model.json', 302),
    );

    app.get('/api/model/model.json', { schema: { response: { 200: LayersModelJsonSchema, 404: ErrorSchema } } }, async (_req, reply) => {
      const files = await layersFiles();
      versionHeaders(reply, files);
      return files.modelJson;
    });

    app.get(
      '/api/model/weights.bin',
      {
        schema: {
          produces: ['application/octet-stream'],
          response: { 200: binary('float32 weights of model.json\'s weightsManifest, in its order'), 404: ErrorSchema },
        },
      },
      async (_req, reply) => {
        const files = await layersFiles();
        versionHeaders(reply, files);
        void reply.type('application/octet-stream');
        return reply.send(Buffer.from(files.weightData.buffer, files.weightData.byteOffset, files.weightData.byteLength));
      },
    );

    // The tensor frame: manifest + float32 data + sha256 (= model version), as sent in round-start.
    app.get(
      '/api/model/frame',
      { schema: { produces: ['application/octet-stream'], response: { 200: binary('fedclr tensor frame (format 1)') } } },
      async (_req, reply) => {
        const m = ctx.model();
        versionHeaders(reply, m);
        void reply.type('application/octet-stream');
        return reply.send(m.frame);
      },
    );

    app.get(
      '/metrics',
      { schema: { produces: ['text/plain'], response: { 200: { type: 'string' } } } },
      async (_req, reply) => {
        void reply.type(ctx.metrics.contentType);
        return ctx.metrics.render();
      },
    );
  };
}
