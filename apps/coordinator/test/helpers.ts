// Shared test helpers: a small model, update messages, an engine with test settings, config refusals.
import assert from 'node:assert/strict';
import { encodeFrame, resolveLimits } from '@fedclr/protocol';
import type { Manifest, UpdateMessage } from '@fedclr/protocol';
import { plainAggregator, type AggregatorFactory } from '../src/aggregation.js';
import { resolveConfig, type CoordinatorConfig } from '../src/config.js';
import { RoundEngine, type EngineAction, type EngineSettings } from '../src/engine.js';
import { isCoordinatorError } from '../src/errors.js';
import type { PrivacyLedger } from '../src/privacy-ledger.js';
import { fedAvg, type Strategy } from '../src/strategy.js';

/** A two-tensor model: kernel [rows, cols] and bias [cols]. */
export function makeModel(rows = 4, cols = 3, seed = 1): { manifest: Manifest; weights: Float32Array } {
  const manifest: Manifest = [
    { name: 'dense/kernel', shape: [rows, cols], dtype: 'float32' },
    { name: 'dense/bias', shape: [cols], dtype: 'float32' },
  ];
  const weights = new Float32Array(rows * cols + cols);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < weights.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    weights[i] = (x / 2 ** 32 - 0.5) * 0.2;
  }
  return { manifest, weights };
}

export function updateMessage(
  roundId: number,
  modelVersion: string,
  manifest: Manifest,
  delta: Float32Array,
  exampleCount: number | undefined,
  loss = 1,
): UpdateMessage {
  const msg: UpdateMessage = {
    type: 'update',
    roundId,
    modelVersion,
    metrics: { loss },
    frame: encodeFrame({ manifest, data: delta }),
  };
  if (exampleCount !== undefined) msg.exampleCount = exampleCount;
  return msg;
}

export const TEST_SETTINGS: EngineSettings = {
  rounds: 3,
  minCohort: 2,
  maxCohort: 3,
  cohortWaitMs: 0,
  roundConfig: {
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.01,
    optimizer: 'sgd',
    loss: 'ntxent',
    temperature: 0.5,
    fedproxMu: 0,
    clipNorm: 0,
    deadlineMs: 1000,
  },
  deadlineGraceMs: 0,
  aggregationDeadlineMs: 500,
  quorum: { fraction: 0.5, minCount: 1 },
  retryDelayMs: 100,
  seed: 7,
  maxExampleCount: 1_000_000,
  limits: resolveLimits({ maxFrameBytes: 1 << 20 }),
};

export function makeEngine(
  overrides: Partial<EngineSettings> = {},
  options: { strategy?: Strategy; aggregator?: AggregatorFactory; rows?: number; cols?: number; completedRounds?: number; privacy?: PrivacyLedger } = {},
): { engine: RoundEngine; manifest: Manifest; weights: Float32Array } {
  const { manifest, weights } = makeModel(options.rows ?? 4, options.cols ?? 3);
  const engine = new RoundEngine({
    settings: { ...TEST_SETTINGS, ...overrides },
    strategy: options.strategy ?? fedAvg(),
    aggregator: options.aggregator ?? plainAggregator,
    model: { architecture: 'test-mlp', manifest, weights, roundId: 0, completedRounds: options.completedRounds ?? 0 },
    ...(options.privacy === undefined ? {} : { privacy: options.privacy }),
    nextRoundId: 1,
  });
  return { engine, manifest, weights };
}

export function sends(actions: readonly EngineAction[], type?: string): { to: string; message: { type: string } & Record<string, unknown> }[] {
  const out: { to: string; message: { type: string } & Record<string, unknown> }[] = [];
  for (const a of actions) {
    if (a.type === 'send' && (type === undefined || a.message.type === type)) {
      out.push({ to: a.to, message: a.message as unknown as { type: string } & Record<string, unknown> });
    }
  }
  return out;
}

export function ofType<T extends EngineAction['type']>(actions: readonly EngineAction[], type: T): Extract<EngineAction, { type: T }>[] {
  return actions.filter((a): a is Extract<EngineAction, { type: T }> => a.type === type);
}

/** Deterministic delta for agent `i`. */
export function deltaFor(n: number, i: number, scale = 0.01): Float32Array {
  const d = new Float32Array(n);
  for (let k = 0; k < n; k++) d[k] = scale * Math.sin(1 + k * 0.37 + i * 1.91);
  return d;
}

/** Minimal JSON-schema checker for the keywords the HTTP schemas use. Returns the first problem. */
export function schemaProblem(schema: unknown, value: unknown, path = '$'): string | undefined {
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s['anyOf'])) {
    const problems = (s['anyOf'] as unknown[]).map((x) => schemaProblem(x, value, path));
    return problems.every((p) => p !== undefined) ? `${path}: matches no anyOf branch (${problems.join('; ')})` : undefined;
  }
  if (s['const'] !== undefined && value !== s['const']) return `${path}: expected const ${String(s['const'])}`;
  if (Array.isArray(s['enum']) && !(s['enum'] as unknown[]).includes(value)) return `${path}: ${String(value)} not in enum`;
  const type = s['type'];
  if (typeof type === 'string') {
    const ok =
      (type === 'object' && typeof value === 'object' && value !== null && !Array.isArray(value)) ||
      (type === 'array' && Array.isArray(value)) ||
      (type === 'string' && typeof value === 'string') ||
      (type === 'integer' && Number.isInteger(value)) ||
      (type === 'number' && typeof value === 'number' && Number.isFinite(value)) ||
      (type === 'boolean' && typeof value === 'boolean') ||
      (type === 'null' && value === null);
    if (!ok) return `${path}: expected ${type}, got ${JSON.stringify(value)}`;
  }
  if (typeof value === 'number') {
    if (typeof s['minimum'] === 'number' && value < s['minimum']) return `${path}: ${value} < minimum ${s['minimum']}`;
    if (typeof s['maximum'] === 'number' && value > s['maximum']) return `${path}: ${value} > maximum ${s['maximum']}`;
  }
  if (typeof value === 'string' && typeof s['pattern'] === 'string' && !new RegExp(s['pattern']).test(value)) {
    return `${path}: ${JSON.stringify(value)} does not match /${s['pattern']}/`;
  }
  if (Array.isArray(value) && s['items'] !== undefined) {
    if (typeof s['maxItems'] === 'number' && value.length > s['maxItems']) return `${path}: too many items`;
    for (let i = 0; i < value.length; i++) {
      const p = schemaProblem(s['items'], value[i], `${path}[${i}]`);
      if (p !== undefined) return p;
    }
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = (s['properties'] ?? {}) as Record<string, unknown>;
    for (const r of (s['required'] ?? []) as string[]) if (!(r in obj)) return `${path}: missing required '${r}'`;
    for (const [k, v] of Object.entries(obj)) {
      if (k in props) {
        const p = schemaProblem(props[k], v, `${path}.${k}`);
        if (p !== undefined) return p;
      } else if (s['additionalProperties'] === false) {
        return `${path}: unexpected property '${k}'`;
      } else if (typeof s['additionalProperties'] === 'object') {
        const p = schemaProblem(s['additionalProperties'], v, `${path}.${k}`);
        if (p !== undefined) return p;
      }
    }
  }
  return undefined;
}

/** Asserts that `config` is refused with FEDCLR_COORD_CONFIG_INVALID naming `field` (and matching `also`). */
export function refusedConfig(config: Partial<CoordinatorConfig>, field: string, also?: RegExp): void {
  assert.throws(
    () => resolveConfig({ stateDir: 'x', ...config }),
    (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_CONFIG_INVALID') && e.message.includes(`'${field}'`) && (also === undefined || also.test(e.message)),
    `expected a refusal naming ${field}`,
  );
}
