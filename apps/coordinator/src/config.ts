// Coordinator configuration: what a caller may set, the defaults, and validation that names
// the offending field. `resolveConfig` returns a frozen, fully populated copy.
import { createSecureContext } from 'node:tls';
import { defaultLossRecipe, RECIPE_DEFAULTS, RECIPE_MAX_MARGIN, type LossRecipe } from '@fedclr/contrastive';
import { AGENT_ID_PATTERN, DP_NOISE_PLACEMENTS, LOSSES, MININGS, OPTIMIZERS, parseRoundRecipe, resolveLimits } from '@fedclr/protocol';
import type { AggregationMode, DpConfig, DpNoisePlacement, LossName, Mining, Optimizer, ProtocolLimits, RoundRecipe } from '@fedclr/protocol';
import { deriveDpEncoding, deriveFixedPoint, deriveSecAggParams, PRG_ALGORITHMS, toleratedCounts, type PrgAlgorithm } from '@fedclr/secagg';
import { ConfigInvalidError } from './errors.js';
import { DEFAULT_FINAL_FRACTION, LR_SCHEDULES, type LrSchedule, type LrScheduleName } from './lr-schedule.js';
import { STRATEGY_DEFAULTS, STRATEGY_NAMES, type StrategySpec } from './strategy.js';
import { SAMPLING_MODES, type SamplingMode, type SamplingSettings } from './sampling.js';

export type EnrolmentPolicy =
  /**
   * Any key may enrol (an explicit choice: logged as a warning at start); an agent id stays bound
   * to the first key that proved possession of it.
   */
  | { mode: 'open' }
  /**
   * The default. Only agents enrolled in the state database are admitted (the admin API, fedclr
   * admin, or a one-time enrolment token), plus these Ed25519 public keys (32 bytes, hex or
   * base64), each enrolled at its first handshake under the agent id it presents.
   */
  | { mode: 'allow-list'; publicKeys?: readonly string[] };

/** The HTTP API's access rules (admin routes always need the admin bearer token). */
export interface HttpConfig {
  /**
   * Read routes (status, rounds, agents, model, metrics) without a token. Default: true when the
   * coordinator binds a loopback address (127.0.0.0/8, ::1, localhost), false otherwise.
   */
  publicRead?: boolean;
  /** Origins allowed by CORS (exact strings, e.g. 'https://dash.example'; '*' for any). Default: none (CORS off). */
  corsOrigins?: readonly string[];
  /** Requests per client IP per window on every route; 0 turns rate limiting off. Default 600. */
  rateLimit?: number;
  /** Requests per client IP per window on /api/admin routes (also caps token guessing). Default 60. */
  adminRateLimit?: number;
  /** The rate-limit window. Default 60000 (one minute). */
  rateWindowMs?: number;
}

/**
 * Local training settings sent to agents in each round's config. The defaults are the tuned
 * recipe's (@fedclr/contrastive RECIPE_DEFAULTS: batch 64, Adam, lr 4e-3, NT-Xent, temperature 0.2;
 * another loss's temperature, margin and mining are its own defaults, RECIPE_DEFAULTS.losses).
 */
export interface TrainingConfig {
  batchSize?: number;
  learningRate?: number;
  optimizer?: Optimizer;
  /** One of the losses agents train (protocol LOSSES). */
  loss?: LossName;
  temperature?: number;
  /** triplet and margin only (default: the loss's). */
  margin?: number;
  /** triplet only (default 'semi-hard'). */
  mining?: Mining;
  /** FedProx proximal coefficient mu (0: plain local SGD). */
  fedproxMu?: number;
  /** L2 clip of each agent's delta (0: off; > 0 with dp, where it is C). */
  clipNorm?: number;
  /** Client-level differential privacy (DP-FedAvg): see DpSettings. */
  dp?: DpSettings;
}

/**
 * DP-FedAvg: deltas clipped to training.clipNorm C, an unweighted sum over the sampled cohort
 * size, Gaussian noise of standard deviation noiseMultiplier * C in the sum.
 */
export interface DpSettings {
  /** sigma, in (0, 1000]. Required. */
  noiseMultiplier: number;
  /**
   * 'agents' (default; aggregation 'secure'): each agent adds its share, sized from the SecAgg+
   * parameters so the sum carries at least sigma C. 'coordinator' (aggregation 'plain' only): the
   * coordinator adds N(0, sigma^2 C^2) itself; it sees every clipped update (a weaker trust model).
   */
  noise?: DpNoisePlacement;
}

/** SecAgg+ settings (aggregation 'secure'). */
export interface SecAggConfig {
  /**
   * Per-coordinate clip c of each agent's delta (values are clipped to [-c, c] before the
   * fixed-point encoding). Default: min(training.clipNorm, 0.5) when clipNorm > 0 (an L2 clip
   * already bounds every coordinate by clipNorm); else 0.1. Not with training.dp: a DP round
   * derives it (clipNorm plus 9 standard deviations of an agent's noise, never cut).
   */
  clip?: number;
  /** Largest weight (example count) of one agent; agents clamp larger counts. Default min(maxExampleCount, 10000). Not with training.dp (unweighted). */
  maxWeight?: number;
  /** Fraction of the cohort that may drop out over the whole round (sets the threshold t). Default 0.2. */
  dropoutFraction?: number;
  /** Fraction of the cohort assumed to collude with the coordinator. Default 0.1. */
  corruptFraction?: number;
  /** Deadline of each key-setup stage (advertise, share-keys). Default 30000. */
  stageTimeoutMs?: number;
  /** Mask PRG. Default 'aes-256-ctr'. */
  prg?: PrgAlgorithm;
}

/** The learning rate across rounds (see lr-schedule.ts). */
export interface LrScheduleConfig {
  /** 'constant' (default): every round gets training.learningRate. 'cosine': decays it over the run. */
  kind?: LrScheduleName;
  /** cosine: the rate at the end of the run, as a fraction of training.learningRate, in (0, 1]. Default 0.05. */
  finalFraction?: number;
}

/**
 * How each round's cohort is chosen. 'coordinator' (default): the coordinator samples up to
 * maxCohort of the ready agents from its seed. 'poisson' (protocol 3.1): every ready agent is
 * invited and volunteers with probability `rate` by its own secret coin; the cohort is exactly
 * the volunteers (a round with more than maxCohort or fewer than minCohort fails), so an agent is
 * in a round with probability q whatever the coordinator wants: amplification by sampling.
 */
export interface CohortSamplingConfig {
  mode?: SamplingMode;
  /** q in (0, 1]: required with 'poisson', refused otherwise. */
  rate?: number;
  /** 'poisson': how long to wait for the invited agents' answers. Default 5000. */
  invitationWaitMs?: number;
}

export interface QuorumConfig {
  /** Fraction of the cohort whose updates must arrive for a round to complete. */
  fraction?: number;
  /** And at least this many updates. */
  minCount?: number;
}

export interface ShutdownConfig {
  /** 'abort': abort a running round at once; 'finish': let it complete (bounded by timeoutMs). */
  mode?: 'abort' | 'finish';
  timeoutMs?: number;
}

/** In-process TLS: fastify serves https (and socket.io wss) with this certificate. */
export interface TlsConfig {
  /** PEM certificate chain (the server certificate first). */
  cert: string;
  /** PEM private key of the certificate. */
  key: string;
}

/**
 * Limits on connections before their agent is trusted (see gateway.ts). An agent is trusted once
 * its signed `ready` verified; until then a connection is "pending".
 */
export interface ConnectionLimits {
  /** Bytes a pending connection may send in all (transport framing included). Default 65536. */
  preHandshakeMaxBytes?: number;
  /** Pending connections at once, from anywhere. Default 256. */
  maxPending?: number;
  /** Pending connections at once from one IP address. Default 32. */
  maxPendingPerIp?: number;
  /** Connections (pending or trusted) from one IP address. Default 1024. */
  maxPerIp?: number;
}

export interface CoordinatorConfig {
  /** Directory for the SQLite database and checkpoints (created if missing). */
  stateDir: string;
  host?: string;
  /** TCP port; 0 picks a free one (see the handle's `url`). */
  port?: number;
  coordinatorId?: string;
  /** Completed rounds to run; then agents are told the run is complete. */
  rounds?: number;
  /** Agents needed before a round starts. */
  minCohort?: number;
  /** Most agents sampled into a round. */
  maxCohort?: number;
  /** Once minCohort is reached, wait up to this long for maxCohort before starting. */
  cohortWaitMs?: number;
  /**
   * The first round of this run waits until this many agents are ready at once, so that its cohort
   * is sampled from all of them rather than from the first to connect (a simulation, which knows
   * how many agents it starts); later rounds need only minCohort. Default 0: minCohort is enough.
   */
  firstRoundAgents?: number;
  /** Cohort sampling: the coordinator's (default) or Poisson self-sampling (see CohortSamplingConfig). */
  sampling?: CohortSamplingConfig;
  localEpochs?: number;
  training?: TrainingConfig;
  /**
   * The model and augmentation agents train (round config `recipe`), sent with every round;
   * `fedclr coordinator` always sets it. Default: none (agents that need it refuse the round).
   */
  recipe?: RoundRecipe;
  /**
   * The learning rate sent in each round's config: 'constant' (default) or 'cosine', from
   * training.learningRate down to finalFraction of it, by the run's progress (rounds completed of
   * `rounds`, or the time budget used, whichever is further). A name or { kind, finalFraction }.
   */
  lrSchedule?: LrScheduleName | LrScheduleConfig;
  /**
   * End of the run's time budget, epoch ms (Date.now()), if it has one: the schedule's progress
   * is then also the time used since the coordinator started, over the budget. The coordinator
   * does not stop at it by itself (fedclr coordinator --minutes does).
   */
  budgetEndsAt?: number;
  strategy?: StrategySpec;
  /** 'secure' (SecAgg+: the coordinator only ever sees the cohort's sum; default) or 'plain'. */
  aggregation?: AggregationMode;
  secagg?: SecAggConfig;
  /** Agents' time budget for train + upload (config.deadlineMs on the wire; at least 1000). */
  deadlineMs?: number;
  /** Extra time the coordinator waits beyond deadlineMs (network, clock skew). */
  deadlineGraceMs?: number;
  /** Budget for secure aggregation's stages after collection closes. */
  aggregationDeadlineMs?: number;
  quorum?: QuorumConfig;
  /**
   * Once the quorum is in, wait at most this long for the remaining cohort members, then close
   * collection (secure aggregation drops the late ones). Default: off (wait until all answered
   * or the deadline).
   */
  stragglerGraceMs?: number;
  /** Pause before retrying a failed round. */
  retryDelayMs?: number;
  /** Checkpoints kept on disk (the newest K completed rounds). */
  keepLastK?: number;
  /** Seed of cohort sampling and of the per-round agent seeds. */
  seed?: number;
  /** Who may join. Default { mode: 'allow-list' } (only enrolled agents). */
  enrolment?: EnrolmentPolicy;
  http?: HttpConfig;
  /** Require a valid Ed25519 signature on every agent message after the welcome. */
  requireSignatures?: boolean;
  maxAgents?: number;
  /** Largest exampleCount accepted in an update (bounds one agent's weight). */
  maxExampleCount?: number;
  heartbeatIntervalMs?: number;
  /**
   * socket.io's ping timeout (default 20000): a connection whose pong is this late is closed.
   * Raise it where agents' event loops stall for long (many agents per process, loaded hosts).
   */
  pingTimeoutMs?: number;
  /** Time a new connection has to send a valid hello and prove its key. */
  handshakeTimeoutMs?: number;
  /** Protocol limits; maxFrameBytes defaults to twice the model's frame (at least 1 MiB). */
  limits?: Partial<ProtocolLimits>;
  shutdown?: ShutdownConfig;
  /** Install a SIGTERM/SIGINT handler that closes the coordinator gracefully. */
  handleSignals?: boolean;
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Serve https/wss in-process (default: plain http, e.g. behind a TLS-terminating proxy). */
  tls?: TlsConfig;
  /** Limits before trust (pending connections). */
  connections?: ConnectionLimits;
  /**
   * Plain mode: the server clips each update's L2 norm to this bound. 'auto' (default): the
   * round's clipNorm (with DP, plus the norm its noise can add), else the global model's norm.
   */
  maxUpdateNorm?: number | 'auto';
  /** The privacy budget of a DP run (only with training.dp): see PrivacyBudgetConfig. */
  privacy?: PrivacyBudgetConfig;
}

/**
 * What the RDP accountant reports and enforces in a run with training.dp: epsilon at `delta`
 * after every committed round, and no round that would take it above `targetEpsilon`.
 */
export interface PrivacyBudgetConfig {
  /** Default 1e-5 (below 1/population for federations up to 100,000 agents). */
  delta?: number;
  /** Absent: epsilon is reported, never enforced. */
  targetEpsilon?: number;
}

/** Default delta of the privacy budget. */
export const DEFAULT_DP_DELTA = 1e-5;

export interface ResolvedConfig {
  readonly stateDir: string;
  readonly host: string;
  readonly port: number;
  readonly coordinatorId: string;
  readonly rounds: number;
  readonly minCohort: number;
  readonly maxCohort: number;
  readonly cohortWaitMs: number;
  readonly firstRoundAgents: number;
  readonly sampling: SamplingSettings;
  readonly localEpochs: number;
  readonly training: Readonly<Required<Omit<TrainingConfig, 'dp' | 'margin' | 'mining'>> & Pick<TrainingConfig, 'margin' | 'mining'> & { dp?: DpConfig }>;
  readonly recipe: RoundRecipe | null;
  readonly lrSchedule: LrSchedule;
  readonly budgetEndsAt: number | null;
  readonly strategy: StrategySpec;
  readonly aggregation: AggregationMode;
  readonly secagg: Readonly<Required<SecAggConfig>>;
  readonly deadlineMs: number;
  readonly deadlineGraceMs: number;
  readonly aggregationDeadlineMs: number;
  readonly quorum: Readonly<Required<QuorumConfig>>;
  /** null: off. */
  readonly stragglerGraceMs: number | null;
  readonly retryDelayMs: number;
  readonly keepLastK: number;
  readonly seed: number;
  readonly enrolment: EnrolmentPolicy;
  readonly http: Readonly<Required<Omit<HttpConfig, 'corsOrigins'>>> & { readonly corsOrigins: readonly string[] };
  readonly requireSignatures: boolean;
  readonly maxAgents: number;
  readonly maxExampleCount: number;
  readonly heartbeatIntervalMs: number;
  readonly pingTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly limits: Partial<ProtocolLimits>;
  readonly shutdown: Readonly<Required<ShutdownConfig>>;
  readonly handleSignals: boolean;
  readonly logLevel: NonNullable<CoordinatorConfig['logLevel']>;
  readonly tls: Readonly<TlsConfig> | null;
  readonly connections: Readonly<Required<ConnectionLimits>>;
  readonly maxUpdateNorm: number | 'auto';
  /** Set exactly when training.dp is. */
  readonly privacy: { readonly delta: number; readonly targetEpsilon: number | null } | null;
}

const KNOWN_KEYS = new Set<string>([
  'stateDir', 'host', 'port', 'coordinatorId', 'rounds', 'minCohort', 'maxCohort', 'cohortWaitMs', 'firstRoundAgents', 'localEpochs',
  'training', 'recipe', 'lrSchedule', 'budgetEndsAt', 'strategy', 'aggregation', 'secagg', 'deadlineMs', 'deadlineGraceMs', 'aggregationDeadlineMs', 'quorum', 'stragglerGraceMs', 'retryDelayMs',
  'keepLastK', 'seed', 'enrolment', 'http', 'requireSignatures', 'maxAgents', 'maxExampleCount', 'heartbeatIntervalMs', 'pingTimeoutMs',
  'handshakeTimeoutMs', 'limits', 'shutdown', 'handleSignals', 'logLevel',
]);
for (const k of ['tls', 'connections', 'maxUpdateNorm', 'privacy', 'sampling']) KNOWN_KEYS.add(k);

/** The default of maxExampleCount: one agent's weight in plain rounds (far below 1e9). */
export const DEFAULT_MAX_EXAMPLE_COUNT = 100_000;

function resolveTls(v: unknown): Readonly<TlsConfig> | null {
  if (v === undefined) return null;
  const o = obj('tls', v, ['cert', 'key']);
  for (const k of ['cert', 'key'] as const) {
    const pem = o[k];
    if (typeof pem !== 'string' || !pem.includes('-----BEGIN ')) {
      throw new ConfigInvalidError(`tls.${k}`, 'PEM text (-----BEGIN ...)', describe(pem));
    }
  }
  const tls = { cert: o['cert'] as string, key: o['key'] as string };
  try {
    createSecureContext(tls); // a malformed PEM or a key that does not belong to the certificate
  } catch (err) {
    throw new ConfigInvalidError('tls', 'a PEM certificate and its own private key', (err as Error).message);
  }
  return Object.freeze(tls);
}

function resolveConnections(v: unknown): Readonly<Required<ConnectionLimits>> {
  const o = obj('connections', v, ['preHandshakeMaxBytes', 'maxPending', 'maxPendingPerIp', 'maxPerIp']);
  const out: Required<ConnectionLimits> = {
    preHandshakeMaxBytes: int('connections.preHandshakeMaxBytes', o['preHandshakeMaxBytes'], 65_536, 1024, 64 * 1024 * 1024),
    maxPending: int('connections.maxPending', o['maxPending'], 256, 1, 1_000_000),
    maxPendingPerIp: int('connections.maxPendingPerIp', o['maxPendingPerIp'], 32, 1, 1_000_000),
    maxPerIp: int('connections.maxPerIp', o['maxPerIp'], 1024, 1, 10_000_000),
  };
  return Object.freeze(out);
}

const describe = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (v === undefined || v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return Array.isArray(v) ? 'an array' : typeof v;
};

function int(field: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigInvalidError(field, `an integer in [${min}, ${max}]`, describe(v));
  }
  return v;
}

function num(field: string, v: unknown, def: number, min: number, max: number, exclusiveMin = false): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v > max || (exclusiveMin ? v <= min : v < min)) {
    throw new ConfigInvalidError(field, `a number in ${exclusiveMin ? '(' : '['}${min}, ${max}]`, describe(v));
  }
  return v;
}

function oneOf<T extends string>(field: string, v: unknown, def: T, allowed: readonly T[]): T {
  if (v === undefined) return def;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ConfigInvalidError(field, `one of ${allowed.join(', ')}`, describe(v));
  }
  return v as T;
}

/** training.margin and training.mining: the loss's defaults where it takes them; refused where it does not. */
function lossParameters(t: Record<string, unknown>, loss: LossRecipe): { margin?: number; mining?: Mining } {
  const out: { margin?: number; mining?: Mining } = {};
  if (loss.margin !== undefined) out.margin = num('training.margin', t['margin'], loss.margin, 0, RECIPE_MAX_MARGIN);
  else if (t['margin'] !== undefined) throw new ConfigInvalidError('training.margin', `absent: loss '${loss.loss}' takes no margin (triplet and margin do)`, describe(t['margin']));
  if (loss.mining !== undefined) out.mining = oneOf('training.mining', t['mining'], loss.mining, MININGS);
  else if (t['mining'] !== undefined) throw new ConfigInvalidError('training.mining', `absent: loss '${loss.loss}' takes no mining (triplet does)`, describe(t['mining']));
  return out;
}

function bool(field: string, v: unknown, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw new ConfigInvalidError(field, 'a boolean', describe(v));
  return v;
}

function obj(field: string, v: unknown, keys: readonly string[]): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigInvalidError(field, 'an object', describe(v));
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw new ConfigInvalidError(`${field}.${k}`, `absent (known keys: ${keys.join(', ')})`, 'a value');
  }
  return v as Record<string, unknown>;
}

/** The default per-coordinate clip of secure aggregation (see SecAggConfig.clip). */
function defaultClip(training: ResolvedConfig['training']): number {
  const c = training.clipNorm;
  return c === 0 ? 0.1 : Math.min(c, 0.5);
}

/** training.dp: sigma required in (0, 1000], noise where the aggregation can carry it, clipNorm > 0. */
function resolveDp(raw: unknown, clipNorm: number, aggregation: AggregationMode): DpConfig {
  const dp = obj('training.dp', raw, ['noiseMultiplier', 'noise']);
  if (dp['noiseMultiplier'] === undefined) {
    throw new ConfigInvalidError('training.dp.noiseMultiplier', 'a number in (0, 1000] (required with training.dp: the noise standard deviation over clipNorm; omit training.dp for no DP)', 'undefined');
  }
  const noiseMultiplier = num('training.dp.noiseMultiplier', dp['noiseMultiplier'], Number.NaN, 0, 1000, true);
  const noise = oneOf('training.dp.noise', dp['noise'], 'agents', DP_NOISE_PLACEMENTS);
  if (clipNorm === 0) throw new ConfigInvalidError('training.clipNorm', '> 0 when training.dp is set (it bounds one agent\'s influence and scales the noise)', '0');
  if (aggregation === 'plain' && noise === 'agents') {
    throw new ConfigInvalidError(
      'training.dp.noise',
      "'coordinator' with aggregation 'plain' (the coordinator sees each update: agents' shares of the noise would protect nothing; or use aggregation 'secure')",
      "'agents'",
    );
  }
  if (aggregation === 'secure' && noise === 'coordinator') {
    throw new ConfigInvalidError('training.dp.noise', "'agents' with aggregation 'secure' (coordinator noise is for plain rounds)", "'coordinator'");
  }
  return { noiseMultiplier, noise };
}

/** config.privacy: only with training.dp; delta in (0, 0.1], targetEpsilon > 0. */
function resolvePrivacy(raw: unknown, dp: DpConfig | undefined): ResolvedConfig['privacy'] {
  const p = obj('privacy', raw, ['delta', 'targetEpsilon']);
  if (dp === undefined) {
    if (raw !== undefined) throw new ConfigInvalidError('privacy', 'absent without training.dp (there is no epsilon to account)', describe(raw));
    return null;
  }
  const delta = num('privacy.delta', p['delta'], DEFAULT_DP_DELTA, 0, 0.1, true);
  const targetEpsilon = p['targetEpsilon'] === undefined ? null : num('privacy.targetEpsilon', p['targetEpsilon'], Number.NaN, 0, 1e6, true);
  return Object.freeze({ delta, targetEpsilon });
}

/** Every cohort size a run may sample must have a DP grid fine enough for the agents' noise. */
function checkDpGrid(dp: DpConfig, clipNorm: number, minCohort: number, maxCohort: number, secagg: Required<SecAggConfig>): void {
  const spec = { noiseMultiplier: dp.noiseMultiplier, clipNorm };
  for (let n = minCohort; n <= maxCohort; n++) {
    try {
      deriveDpEncoding(spec, 1, { cohortSize: n, ...toleratedCounts(n, secagg.dropoutFraction, secagg.corruptFraction) });
    } catch (err) {
      throw new ConfigInvalidError('training.dp.noiseMultiplier', `a noise multiplier the secure-aggregation grid can carry for every cohort of minCohort ${minCohort} to maxCohort ${maxCohort}`, `${dp.noiseMultiplier} (at a cohort of ${n}: ${(err as Error).message})`);
    }
  }
}

/** sampling: mode 'coordinator' (default) or 'poisson' with a rate q in (0, 1]; rate and invitationWaitMs only with 'poisson'. */
function resolveSampling(v: unknown): SamplingSettings {
  const o = obj('sampling', v, ['mode', 'rate', 'invitationWaitMs']);
  const mode = oneOf('sampling.mode', o['mode'], 'coordinator', SAMPLING_MODES);
  if (mode === 'coordinator') {
    for (const k of ['rate', 'invitationWaitMs']) {
      if (o[k] !== undefined) throw new ConfigInvalidError(`sampling.${k}`, "absent: only sampling.mode 'poisson' takes it (agents draw their own coins at that rate)", describe(o[k]));
    }
    return Object.freeze({ mode });
  }
  if (o['rate'] === undefined) {
    throw new ConfigInvalidError('sampling.rate', "a number in (0, 1] (required with sampling.mode 'poisson': each invited agent's probability of volunteering)", 'undefined');
  }
  return Object.freeze({
    mode,
    rate: num('sampling.rate', o['rate'], Number.NaN, 0, 1, true),
    invitationWaitMs: int('sampling.invitationWaitMs', o['invitationWaitMs'], 5000, 1, 3_600_000),
  });
}

/** lrSchedule: a name or { kind, finalFraction }; finalFraction only with 'cosine'. */
function resolveLrSchedule(v: unknown): LrSchedule {
  const o = typeof v === 'string' ? { kind: v } : obj('lrSchedule', v, ['kind', 'finalFraction']);
  const kind = oneOf(typeof v === 'string' ? 'lrSchedule' : 'lrSchedule.kind', o['kind'], 'constant', LR_SCHEDULES);
  if (kind === 'constant') {
    if (o['finalFraction'] !== undefined) throw new ConfigInvalidError('lrSchedule.finalFraction', "absent: only 'cosine' decays", describe(o['finalFraction']));
    return Object.freeze({ kind });
  }
  // A rate of 0 is not a valid round config (agents need learningRate > 0): the floor is above 0.
  return Object.freeze({ kind, finalFraction: num('lrSchedule.finalFraction', o['finalFraction'], DEFAULT_FINAL_FRACTION, 0, 1, true) });
}

/** True for a loopback bind address: 127.0.0.0/8, ::1 (also as ::ffff:127.x) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Validates a configuration and fills in defaults. Throws FEDCLR_COORD_CONFIG_INVALID naming the field. */
export function resolveConfig(input: CoordinatorConfig): ResolvedConfig {
  if (typeof input !== 'object' || input === null) throw new ConfigInvalidError('(config)', 'an object', describe(input));
  for (const k of Object.keys(input)) {
    if (!KNOWN_KEYS.has(k)) throw new ConfigInvalidError(k, 'absent: unknown configuration key', 'a value');
  }
  const c = input as unknown as Record<string, unknown>;
  if (typeof c['stateDir'] !== 'string' || c['stateDir'].length === 0) {
    throw new ConfigInvalidError('stateDir', 'a non-empty directory path', describe(c['stateDir']));
  }
  const host = c['host'] === undefined ? '127.0.0.1' : c['host'];
  if (typeof host !== 'string' || host.length === 0) throw new ConfigInvalidError('host', 'a host name or address', describe(host));
  const coordinatorId = c['coordinatorId'] === undefined ? 'coordinator' : c['coordinatorId'];
  if (typeof coordinatorId !== 'string' || !new RegExp(AGENT_ID_PATTERN).test(coordinatorId)) {
    throw new ConfigInvalidError('coordinatorId', `a string matching /${AGENT_ID_PATTERN}/`, describe(coordinatorId));
  }

  const aggregation = oneOf('aggregation', c['aggregation'], 'secure', ['secure', 'plain'] as const);
  // SecAgg+ needs two shareholders per secret: three agents at least.
  const minCohort = int('minCohort', c['minCohort'], aggregation === 'secure' ? 3 : 2, 1, 1_000_000);
  if (aggregation === 'secure' && minCohort < 3) {
    throw new ConfigInvalidError('minCohort', ">= 3 when aggregation is 'secure' (SecAgg+ needs two shareholders per secret; use aggregation 'plain' for smaller cohorts)", String(minCohort));
  }
  const maxCohort = int('maxCohort', c['maxCohort'], Math.max(100, minCohort), 1, 1_000_000);
  if (maxCohort < minCohort) throw new ConfigInvalidError('maxCohort', `>= minCohort (${minCohort})`, String(maxCohort));

  const q = obj('quorum', c['quorum'], ['fraction', 'minCount']);
  const quorum = {
    fraction: num('quorum.fraction', q['fraction'], 0.5, 0, 1),
    minCount: int('quorum.minCount', q['minCount'], 1, 1, 1_000_000),
  };
  if (quorum.minCount > minCohort) {
    throw new ConfigInvalidError('quorum.minCount', `<= minCohort (${minCohort}), or no minimal cohort could ever complete`, String(quorum.minCount));
  }

  const t = obj('training', c['training'], [
    'batchSize', 'learningRate', 'optimizer', 'loss', 'temperature', 'margin', 'mining', 'fedproxMu', 'clipNorm', 'dp',
  ]);
  const loss = defaultLossRecipe(oneOf('training.loss', t['loss'], RECIPE_DEFAULTS.loss, LOSSES));
  const training: ResolvedConfig['training'] = {
    batchSize: int('training.batchSize', t['batchSize'], RECIPE_DEFAULTS.batchSize, 2, 65536),
    learningRate: num('training.learningRate', t['learningRate'], RECIPE_DEFAULTS.learningRates[RECIPE_DEFAULTS.optimizer], 0, 10, true),
    optimizer: oneOf('training.optimizer', t['optimizer'], RECIPE_DEFAULTS.optimizer, OPTIMIZERS),
    loss: loss.loss,
    temperature: num('training.temperature', t['temperature'], loss.temperature, 0, 100, true),
    ...lossParameters(t, loss),
    fedproxMu: num('training.fedproxMu', t['fedproxMu'], 0, 0, 1000),
    clipNorm: num('training.clipNorm', t['clipNorm'], 0, 0, 1e6),
  };
  if (t['dp'] !== undefined) (training as { dp?: DpConfig }).dp = resolveDp(t['dp'], training.clipNorm, aggregation);

  let recipe: RoundRecipe | null = null;
  if (c['recipe'] !== undefined) {
    try {
      recipe = Object.freeze(structuredClone(parseRoundRecipe(c['recipe'])));
    } catch (err) {
      throw new ConfigInvalidError('recipe', 'a training recipe (protocol RoundRecipeSchema)', (err as Error).message);
    }
  }

  const lrSchedule = resolveLrSchedule(c['lrSchedule']);
  const budgetEndsAt = c['budgetEndsAt'] === undefined ? null : int('budgetEndsAt', c['budgetEndsAt'], 0, 1, Number.MAX_SAFE_INTEGER);

  const s = obj('strategy', c['strategy'], ['name', 'lr', 'momentum', 'beta1', 'beta2', 'tau']);
  const name = oneOf('strategy.name', s['name'], 'fedavg', STRATEGY_NAMES);
  const strategy = { name } as Record<string, unknown>;
  for (const [key, def] of Object.entries(STRATEGY_DEFAULTS[name])) {
    const isUnit = key === 'momentum' || key.startsWith('beta');
    strategy[key] = isUnit ? num(`strategy.${key}`, s[key], def, 0, 0.999999) : num(`strategy.${key}`, s[key], def, 0, 1e6, true);
  }
  for (const key of Object.keys(s)) {
    if (key !== 'name' && !(key in STRATEGY_DEFAULTS[name])) {
      throw new ConfigInvalidError(`strategy.${key}`, `absent: not a parameter of '${name}'`, describe(s[key]));
    }
  }

  const maxExampleCount = int('maxExampleCount', c['maxExampleCount'], DEFAULT_MAX_EXAMPLE_COUNT, 1, Number.MAX_SAFE_INTEGER);
  const sa = obj('secagg', c['secagg'], ['clip', 'maxWeight', 'dropoutFraction', 'corruptFraction', 'stageTimeoutMs', 'prg']);
  const secagg: Required<SecAggConfig> = {
    clip: num('secagg.clip', sa['clip'], defaultClip(training), 0, 1000, true),
    maxWeight: int('secagg.maxWeight', sa['maxWeight'], Math.min(maxExampleCount, 10_000), 1, 2 ** 31),
    dropoutFraction: num('secagg.dropoutFraction', sa['dropoutFraction'], 0.2, 0, 0.9),
    corruptFraction: num('secagg.corruptFraction', sa['corruptFraction'], 0.1, 0, 0.9),
    stageTimeoutMs: int('secagg.stageTimeoutMs', sa['stageTimeoutMs'], 30_000, 10, 3_600_000),
    prg: oneOf('secagg.prg', sa['prg'], 'aes-256-ctr', PRG_ALGORITHMS),
  };
  if (training.dp !== undefined) {
    for (const key of ['clip', 'maxWeight'] as const) {
      if (sa[key] !== undefined) throw new ConfigInvalidError(`secagg.${key}`, 'absent with training.dp (a DP round derives its unweighted encoding from clipNorm and the noise)', describe(sa[key]));
    }
  }
  if (aggregation === 'secure') {
    // The threshold and the no-wrap encoding must exist for the smallest and largest cohorts.
    for (const n of new Set([minCohort, maxCohort])) {
      try {
        deriveSecAggParams({ cohortSize: n, dropoutFraction: secagg.dropoutFraction, corruptFraction: secagg.corruptFraction });
        if (training.dp === undefined) deriveFixedPoint({ dimension: 1, clip: secagg.clip, cohortSize: n, maxWeight: secagg.maxWeight });
      } catch (err) {
        throw new ConfigInvalidError(
          n === minCohort ? 'minCohort' : 'maxCohort',
          `a cohort size SecAgg+ can serve with secagg.dropoutFraction ${secagg.dropoutFraction}, corruptFraction ${secagg.corruptFraction}, clip ${secagg.clip}, maxWeight ${secagg.maxWeight}`,
          `${n} (${(err as Error).message})`,
        );
      }
    }
    // A DP round's encoding depends on the cohort size (through n_min): every size the run may sample.
    if (training.dp !== undefined) checkDpGrid(training.dp, training.clipNorm, minCohort, maxCohort, secagg);
  }

  let enrolment: EnrolmentPolicy = { mode: 'allow-list', publicKeys: [] };
  if (c['enrolment'] !== undefined) {
    const e = obj('enrolment', c['enrolment'], ['mode', 'publicKeys']);
    const mode = oneOf('enrolment.mode', e['mode'], 'allow-list', ['open', 'allow-list'] as const);
    const keys = e['publicKeys'] ?? [];
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
      throw new ConfigInvalidError('enrolment.publicKeys', 'an array of strings (hex or base64 Ed25519 keys)', describe(keys));
    }
    if (mode === 'open' && keys.length > 0) throw new ConfigInvalidError('enrolment.publicKeys', "absent with mode 'open' (every key is admitted)", 'an array');
    for (const [i, k] of (keys as string[]).entries()) {
      if (!/^[0-9a-fA-F]{64}$/.test(k.trim()) && !/^[A-Za-z0-9+/_-]{43}=?$/.test(k.trim())) {
        throw new ConfigInvalidError(`enrolment.publicKeys[${i}]`, 'an Ed25519 public key (64 hex characters or base64)', describe(k));
      }
    }
    enrolment = mode === 'open' ? { mode } : { mode, publicKeys: Object.freeze([...(keys as string[])]) };
  }

  const h = obj('http', c['http'], ['publicRead', 'corsOrigins', 'rateLimit', 'adminRateLimit', 'rateWindowMs']);
  const cors = h['corsOrigins'] ?? [];
  if (!Array.isArray(cors) || !cors.every((o) => typeof o === 'string' && o.length > 0 && o.length <= 256)) {
    throw new ConfigInvalidError('http.corsOrigins', "an array of origins ('https://host:port', or '*')", describe(cors));
  }
  const http: ResolvedConfig['http'] = Object.freeze({
    publicRead: bool('http.publicRead', h['publicRead'], isLoopbackHost(host)),
    corsOrigins: Object.freeze([...(cors as string[])]),
    rateLimit: int('http.rateLimit', h['rateLimit'], 600, 0, 10_000_000),
    adminRateLimit: int('http.adminRateLimit', h['adminRateLimit'], 60, 0, 10_000_000),
    rateWindowMs: int('http.rateWindowMs', h['rateWindowMs'], 60_000, 1000, 86_400_000),
  });

  const sd = obj('shutdown', c['shutdown'], ['mode', 'timeoutMs']);
  const limits = c['limits'] === undefined ? {} : (c['limits'] as Partial<ProtocolLimits>);
  try {
    resolveLimits(limits);
  } catch (err) {
    throw new ConfigInvalidError('limits', 'valid ProtocolLimits', (err as Error).message);
  }

  const resolved: ResolvedConfig = {
    stateDir: c['stateDir'],
    host,
    port: int('port', c['port'], 8080, 0, 65535),
    coordinatorId,
    rounds: int('rounds', c['rounds'], 10, 1, 10_000_000),
    minCohort,
    maxCohort,
    cohortWaitMs: int('cohortWaitMs', c['cohortWaitMs'], 0, 0, 86_400_000),
    firstRoundAgents: int('firstRoundAgents', c['firstRoundAgents'], 0, 0, 10_000_000),
    sampling: resolveSampling(c['sampling']),
    localEpochs: int('localEpochs', c['localEpochs'], 1, 1, 1000),
    training: Object.freeze(training),
    recipe,
    lrSchedule,
    budgetEndsAt,
    strategy: Object.freeze(strategy) as unknown as StrategySpec,
    aggregation,
    secagg: Object.freeze(secagg),
    deadlineMs: int('deadlineMs', c['deadlineMs'], 600_000, 1000, 7 * 24 * 3600 * 1000),
    deadlineGraceMs: int('deadlineGraceMs', c['deadlineGraceMs'], 2000, 0, 3_600_000),
    aggregationDeadlineMs: int('aggregationDeadlineMs', c['aggregationDeadlineMs'], 30_000, 1, 3_600_000),
    quorum: Object.freeze(quorum),
    stragglerGraceMs: c['stragglerGraceMs'] === undefined || c['stragglerGraceMs'] === null ? null : int('stragglerGraceMs', c['stragglerGraceMs'], 0, 0, 7 * 24 * 3600 * 1000),
    retryDelayMs: int('retryDelayMs', c['retryDelayMs'], 1000, 0, 3_600_000),
    keepLastK: int('keepLastK', c['keepLastK'], 5, 1, 1_000_000),
    seed: int('seed', c['seed'], 0, 0, 2 ** 32 - 1),
    enrolment,
    http,
    requireSignatures: bool('requireSignatures', c['requireSignatures'], true),
    maxAgents: int('maxAgents', c['maxAgents'], 10_000, 1, 10_000_000),
    maxExampleCount,
    heartbeatIntervalMs: int('heartbeatIntervalMs', c['heartbeatIntervalMs'], 10_000, 100, 3_600_000),
    pingTimeoutMs: int('pingTimeoutMs', c['pingTimeoutMs'], 20_000, 1000, 3_600_000),
    handshakeTimeoutMs: int('handshakeTimeoutMs', c['handshakeTimeoutMs'], 10_000, 10, 3_600_000),
    limits: Object.freeze({ ...limits }),
    shutdown: Object.freeze({
      mode: oneOf('shutdown.mode', sd['mode'], 'abort', ['abort', 'finish'] as const),
      timeoutMs: int('shutdown.timeoutMs', sd['timeoutMs'], 10_000, 0, 3_600_000),
    }),
    handleSignals: bool('handleSignals', c['handleSignals'], false),
    logLevel: oneOf('logLevel', c['logLevel'], 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    tls: resolveTls(c['tls']),
    connections: resolveConnections(c['connections']),
    maxUpdateNorm: c['maxUpdateNorm'] === undefined || c['maxUpdateNorm'] === 'auto' ? 'auto' : num('maxUpdateNorm', c['maxUpdateNorm'], 0, 0, Number.MAX_VALUE, true),
    privacy: resolvePrivacy(c['privacy'], training.dp),
  };
  return Object.freeze(resolved);
}
