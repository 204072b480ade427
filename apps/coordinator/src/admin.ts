// The HTTP API's access rules and the admin routes (/api/admin), fastify plugins:
//   - every route is rate limited per client IP (@fastify/rate-limit; admin routes tighter);
//   - CORS only for the configured origins (@fastify/cors; off by default);
//   - admin routes need `Authorization: Bearer <admin token>` (<state>/admin-token, 0600);
//   - read routes (status, rounds, agents, model, metrics) need it too unless publicRead (the
//     default on a loopback bind); /health is always public (liveness probes).
// Enrolments are the same SQLite rows the gateway admits by (db.ts, admission.ts).
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { AGENT_ID_PATTERN } from '@fedclr/protocol';
import { MAX_TOKEN_TTL_MS, sameSecret, type EnrolmentTokens } from './admission.js';
import { parsePublicKey } from './auth.js';
import type { ResolvedConfig } from './config.js';
import type { EnrolmentRow, EnrolmentStatus, StateDb } from './db.js';
import { AdminBadKeyError, AgentNotEnrolledError, EnrolmentConflictError, UnauthorizedError } from './errors.js';
import { conflictMessage } from './admission.js';
import { ErrorSchema } from './http.js';

export const ADMIN_PREFIX = '/api/admin';
/** Routes no token ever guards. */
const ALWAYS_PUBLIC = new Set(['/health']);

export interface HttpSecurityOptions {
  readonly http: ResolvedConfig['http'];
  /** The admin bearer token. */
  readonly adminToken: string;
  /** More routes no token guards: the dashboard's static files, which hold no data (dashboard.ts). */
  readonly publicRoutes?: ReadonlySet<string>;
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/**
 * True for an admin route. Decided by the matched route's pattern, never by the raw URL: the
 * router percent-decodes paths, so '/api/%61dmin/...' reaches an admin route while its URL
 * does not start with '/api/admin'. Unmatched URLs (404) count as read routes.
 */
function isAdminRoute(req: FastifyRequest): boolean {
  const route = req.routeOptions.url;
  return route !== undefined && (route === ADMIN_PREFIX || route.startsWith(`${ADMIN_PREFIX}/`));
}

/**
 * Installs rate limits, CORS and the bearer-token check on `app` (call before the routes are
 * registered, on the root instance, so every route gets them).
 */
export async function installHttpSecurity(app: FastifyInstance, o: HttpSecurityOptions): Promise<void> {
  const { http } = o;
  if (http.rateLimit > 0 || http.adminRateLimit > 0) {
    await app.register(rateLimit, {
      global: true,
      timeWindow: http.rateWindowMs,
      // Per client IP; admin routes have their own, smaller budget.
      max: (req) => (isAdminRoute(req) ? http.adminRateLimit : http.rateLimit) || 1_000_000_000,
      keyGenerator: (req) => `${isAdminRoute(req) ? 'admin' : 'api'}:${req.ip}`,
    });
  }
  if (http.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: http.corsOrigins.includes('*') ? '*' : [...http.corsOrigins],
      methods: ['GET', 'POST'],
      allowedHeaders: ['authorization', 'content-type'],
    });
  }
  // preParsing: after every onRequest hook, so the rate limiter (a route-level onRequest hook)
  // counts refused requests too, and before any body is parsed.
  app.addHook('preParsing', async (req, reply, payload) => {
    const route = req.routeOptions.url;
    if (req.method === 'OPTIONS' || (route !== undefined && (ALWAYS_PUBLIC.has(route) || o.publicRoutes?.has(route) === true))) return payload;
    const admin = isAdminRoute(req);
    if (!admin && http.publicRead) return payload;
    const given = bearer(req);
    void reply.header('www-authenticate', 'Bearer realm="fedclr"');
    if (given === undefined) {
      throw new UnauthorizedError(`${admin ? 'admin routes' : 'this coordinator\'s read routes'} need 'Authorization: Bearer <token>' (the admin token in <state>/admin-token)`);
    }
    if (!sameSecret(given, o.adminToken)) throw new UnauthorizedError('the bearer token is not this coordinator\'s admin token');
    return payload;
  });
}

// ---- admin routes ------------------------------------------------------------------------------

export const EnrolmentSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['agentId', 'publicKey', 'status', 'source', 'enrolledAt', 'revokedAt', 'revokeReason', 'firstSeen', 'lastSeen', 'sessions', 'connected'],
  properties: {
    agentId: { type: 'string' },
    publicKey: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    status: { type: 'string', enum: ['enrolled', 'revoked'] },
    source: { type: 'string', enum: ['admin', 'config', 'token', 'open'] },
    enrolledAt: { type: 'integer' },
    revokedAt: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
    revokeReason: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    firstSeen: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
    lastSeen: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
    sessions: { type: 'integer', minimum: 0 },
    connected: { type: 'boolean' },
  },
} as const;

const errors = { 400: ErrorSchema, 401: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 429: ErrorSchema } as const;

export const EnrolmentListSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['mode', 'items'],
  properties: { mode: { type: 'string', enum: ['allow-list', 'open'] }, items: { type: 'array', items: EnrolmentSchema } },
} as const;

export const TokensSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tokens', 'expiresAt'],
  properties: {
    tokens: { type: 'array', items: { type: 'string' } },
    expiresAt: { type: 'integer' },
  },
} as const;

export interface AdminContext {
  readonly db: StateDb;
  readonly tokens: EnrolmentTokens;
  readonly mode: 'allow-list' | 'open';
  /** Ends a revoked agent's session (gateway.evict); true if it was connected. */
  readonly evict: (agentId: string, reason: string) => boolean;
  readonly connected: (agentId: string) => boolean;
}

export function adminRoutes(ctx: AdminContext): FastifyPluginAsync {
  const view = (r: EnrolmentRow) => ({
    agentId: r.agentId,
    publicKey: r.publicKey.toString('hex'),
    status: r.status,
    source: r.source,
    enrolledAt: r.enrolledAt,
    revokedAt: r.revokedAt,
    revokeReason: r.revokeReason,
    firstSeen: r.firstSeen,
    lastSeen: r.lastSeen,
    sessions: r.sessions,
    connected: ctx.connected(r.agentId),
  });
  return async (app: FastifyInstance) => {
    app.get<{ Querystring: { status?: EnrolmentStatus } }>(
      `${ADMIN_PREFIX}/enrolments`,
      {
        schema: {
          querystring: { type: 'object', additionalProperties: false, properties: { status: { type: 'string', enum: ['enrolled', 'revoked'] } } },
          response: { 200: EnrolmentListSchema, ...errors },
        },
      },
      async (req) => ({ mode: ctx.mode, items: ctx.db.listEnrolments(req.query.status).map(view) }),
    );

    app.post<{ Body: { agentId: string; publicKey: string } }>(
      `${ADMIN_PREFIX}/enrolments`,
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['agentId', 'publicKey'],
            properties: { agentId: { type: 'string', pattern: AGENT_ID_PATTERN }, publicKey: { type: 'string', minLength: 1, maxLength: 200 } },
          },
          response: { 200: EnrolmentSchema, 201: EnrolmentSchema, ...errors },
        },
      },
      async (req, reply) => {
        let key: Buffer;
        try {
          key = parsePublicKey(req.body.publicKey);
        } catch {
          throw new AdminBadKeyError(JSON.stringify(req.body.publicKey.slice(0, 80)));
        }
        const r = ctx.db.admit(req.body.agentId, key, 'admin', Date.now());
        if (!r.ok) throw new EnrolmentConflictError(conflictMessage(req.body.agentId, r.conflict, r.row));
        req.log.info({ agentId: r.row.agentId, publicKey: key.toString('hex'), created: r.created }, 'agent enrolled by the operator');
        void reply.status(r.created ? 201 : 200);
        return view(r.row);
      },
    );

    app.post<{ Params: { agentId: string }; Body: { reason?: string } }>(
      `${ADMIN_PREFIX}/enrolments/:agentId/revoke`,
      {
        schema: {
          params: { type: 'object', additionalProperties: false, required: ['agentId'], properties: { agentId: { type: 'string', pattern: AGENT_ID_PATTERN } } },
          body: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } } },
          response: { 200: EnrolmentSchema, ...errors },
        },
        preValidation: async (req) => {
          req.body ??= {};
        },
      },
      async (req) => {
        const { agentId } = req.params;
        const before = ctx.db.getEnrolment(agentId);
        if (before === undefined) throw new AgentNotEnrolledError(agentId);
        const row = ctx.db.revoke(agentId, Date.now(), req.body.reason ?? null) as EnrolmentRow;
        // Revoked now: refused at its next hello; if connected, its session ends now too.
        const evicted = ctx.evict(agentId, `revoked by the operator${row.revokeReason === null ? '' : `: ${row.revokeReason}`}`);
        req.log.warn({ agentId, evicted, wasRevoked: before.status === 'revoked' }, 'agent revoked by the operator');
        return view(row);
      },
    );

    app.post<{ Body: { ttlSeconds?: number; count?: number } }>(
      `${ADMIN_PREFIX}/tokens`,
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ttlSeconds: { type: 'integer', minimum: 1, maximum: MAX_TOKEN_TTL_MS / 1000, default: 86_400 },
              count: { type: 'integer', minimum: 1, maximum: 10_000, default: 1 },
            },
          },
          response: { 201: TokensSchema, ...errors },
        },
        // No body at all means the defaults (one token, 24 h).
        preValidation: async (req) => {
          req.body ??= {};
        },
      },
      async (req, reply) => {
        const ttlSeconds = req.body.ttlSeconds ?? 86_400;
        const count = req.body.count ?? 1;
        const minted = ctx.tokens.mint(count, ttlSeconds * 1000, Date.now());
        req.log.info({ count, expiresAt: new Date(minted.expiresAt).toISOString() }, 'enrolment tokens minted');
        void reply.status(201);
        return minted;
      },
    );
  };
}
