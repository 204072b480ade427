// The dashboard: its static page (apps/coordinator/dashboard/, served at / by @fastify/static),
// and the two read routes only it needs: GET /api/run (what this run is: model, recipe,
// strategy, aggregation, threat model) and GET /api/checkpoints (which rounds' tfjs models are
// still on disk), with GET /api/checkpoints/:id/tfjs/:file serving them.
//
// The page's files hold no data, so they are public like /health; every number the page shows
// comes from the read routes (and /api/events), which follow the coordinator's HTTP access rule:
// the page sends the bearer token it is given (admin.ts).
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { CheckpointNotFoundError } from './errors.js';
import type { HistoryCache } from './history-cache.js';
import { checkpointDirName } from './model-store.js';
import { ErrorSchema } from './http.js';

/** apps/coordinator/dashboard (this file runs from dist/src/). */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));

/** The URL paths of the page's files: public routes (admin.ts). */
export function dashboardRoutes(dir = DASHBOARD_DIR): Set<string> {
  const files = readdirSync(dir).filter((f) => !f.startsWith('.'));
  return new Set(['/', ...files.map((f) => `/${f}`)]);
}

export interface RunInfo {
  readonly model: { readonly architecture: string; readonly parameters: number };
  /** The training recipe sent with every round: scalar settings only (name -> value). */
  readonly recipe: Readonly<Record<string, string | number | boolean>>;
  readonly strategy: { readonly name: string; readonly params: Readonly<Record<string, number>> };
  readonly aggregation: string;
  readonly sampling: string;
  readonly rounds: number;
  readonly cohort: { readonly min: number; readonly max: number };
  /** What this configuration defends against, one statement per line. */
  readonly threatModel: readonly string[];
  readonly dp: { readonly noiseMultiplier: number; readonly clipNorm: number; readonly noise: string; readonly delta: number; readonly targetEpsilon: number | null } | null;
}

export const RunSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['model', 'recipe', 'strategy', 'aggregation', 'sampling', 'rounds', 'cohort', 'threatModel', 'dp'],
  properties: {
    model: {
      type: 'object',
      additionalProperties: false,
      required: ['architecture', 'parameters'],
      properties: { architecture: { type: 'string' }, parameters: { type: 'integer', minimum: 0 } },
    },
    recipe: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] } },
    strategy: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'params'],
      properties: { name: { type: 'string' }, params: { type: 'object', additionalProperties: { type: 'number' } } },
    },
    aggregation: { type: 'string', enum: ['plain', 'secure'] },
    sampling: { type: 'string' },
    rounds: { type: 'integer', minimum: 1 },
    cohort: { type: 'object', additionalProperties: false, required: ['min', 'max'], properties: { min: { type: 'integer' }, max: { type: 'integer' } } },
    threatModel: { type: 'array', items: { type: 'string' } },
    dp: {
      anyOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['noiseMultiplier', 'clipNorm', 'noise', 'delta', 'targetEpsilon'],
          properties: {
            noiseMultiplier: { type: 'number' },
            clipNorm: { type: 'number' },
            noise: { type: 'string' },
            delta: { type: 'number' },
            targetEpsilon: { anyOf: [{ type: 'number' }, { type: 'null' }] },
          },
        },
        { type: 'null' },
      ],
    },
  },
} as const;

export const CheckpointsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['roundId', 'tfjs'],
        properties: { roundId: { type: 'integer', minimum: 0 }, tfjs: { type: 'boolean', description: 'the checkpoint has tfjs/model.json' } },
      },
    },
  },
} as const;

/** The threat model lines of a configuration (DESIGN.md, README "Threat model"). */
export function threatModel(o: { aggregation: string; dpNoise: string | null; sampling: string; enrolment: string }): string[] {
  const lines: string[] = [];
  if (o.aggregation === 'secure') {
    lines.push('SecAgg+: the coordinator sees only the sum of the surviving cohort\'s masked updates (honest-but-curious or malicious coordinator, up to the tolerated corrupt fraction colluding)');
  } else {
    lines.push('plain aggregation: the coordinator sees every agent\'s update in the clear (it must be trusted with them)');
  }
  if (o.dpNoise === 'agents') lines.push('distributed DP: each agent adds its share of Gaussian noise; the revealed sum carries the full noise');
  else if (o.dpNoise === 'coordinator') lines.push('central DP: the coordinator clips and adds the noise itself (it sees every clipped update)');
  else lines.push('no differential privacy: the aggregate is revealed without noise');
  lines.push(o.sampling === 'poisson' ? 'Poisson self-sampling: agents volunteer by their own coin; the coordinator cannot pick the cohort' : 'cohorts sampled by the coordinator (seeded)');
  lines.push(o.enrolment === 'open' ? 'open enrolment: any key may join (test benches only)' : 'allow-list enrolment: only admitted Ed25519 keys join; every message is signed');
  lines.push('not defended by masking: poisoning inside the mask (bounded by clipping and range checks only)');
  return lines;
}

export interface DashboardContext {
  readonly run: () => RunInfo;
  /** The checkpoint directory of a file model store, if the coordinator uses one. */
  readonly checkpointsDir?: string;
  /** Round ids whose checkpoint is on disk. */
  readonly checkpoints: () => Promise<number[]>;
  /** Keeps /api/checkpoints' answer until the history changes (checkpoints change only at commits). */
  readonly history?: HistoryCache;
}

const TFJS_FILES = ['model.json', 'weights.bin'] as const;

export function dashboardPlugin(ctx: DashboardContext, dir = DASHBOARD_DIR): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    // wildcard: false: one route per file present now, so no other path is ever looked up on disk.
    await app.register(fastifyStatic, { root: dir, prefix: '/', wildcard: false, index: ['index.html'], decorateReply: false, cacheControl: true, maxAge: 0 });

    app.get('/api/run', { schema: { response: { 200: RunSchema } } }, async () => ctx.run());

    const tfjsPath = (roundId: number, file: string): string | undefined => {
      if (ctx.checkpointsDir === undefined) return undefined;
      const path = join(ctx.checkpointsDir, checkpointDirName(roundId), 'tfjs', file);
      return existsSync(path) ? path : undefined;
    };

    const notModified = { description: 'not modified since the ETag sent (If-None-Match)', type: 'null' } as const;
    app.get('/api/checkpoints', { schema: { response: { 200: CheckpointsSchema, 304: notModified } } }, async (req, reply) => {
      const answer = async () => {
        const ids = await ctx.checkpoints();
        return { items: ids.map((roundId) => ({ roundId, tfjs: tfjsPath(roundId, 'model.json') !== undefined })) };
      };
      if (ctx.history === undefined) return answer();
      return ctx.history.reply(req, reply, 'checkpoints', async () => reply.serialize(await answer()));
    });

    app.get<{ Params: { id: number; file: (typeof TFJS_FILES)[number] } }>(
      '/api/checkpoints/:id/tfjs/:file',
      {
        schema: {
          params: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'file'],
            properties: { id: { type: 'integer', minimum: 0 }, file: { type: 'string', enum: [...TFJS_FILES] } },
          },
          response: { 200: { description: 'the checkpoint\'s tfjs layers model.json or weights.bin (tf.loadLayersModel(url-of-model.json))' }, 404: ErrorSchema },
        },
      },
      async (req, reply) => {
        const { id, file } = req.params;
        const path = tfjsPath(id, file);
        if (path === undefined) throw new CheckpointNotFoundError(id);
        void reply.type(file === 'model.json' ? 'application/json' : 'application/octet-stream').header('cache-control', 'no-cache');
        return reply.send(await readFile(path));
      },
    );
  };
}
