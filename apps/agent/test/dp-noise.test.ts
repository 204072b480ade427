// The client-level DP mechanism on the agent's real path, no sockets: each agent's delta goes
// through prepareDelta (clip to C) and encodeSecureInput (Gaussian noise sized from the signed
// SecAgg+ parameters, unweighted encoding), then through secagg's in-process protocol with real
// SecAggAgents and SecAggServer (runInProcess), and the unmasked sum is measured.
//
// Cohort n = 20, dropoutFraction 0.3 (D = 6, the most the parameters allow), corruptFraction
// 0.1 (C_ = 2): n_min = 12. Six agents go silent after the share check, before their masked
// input, so 14 noises are in the sum: variance (14 / 12) sigma^2 C^2. The old formula (each agent
// N(0, sigma^2 C^2 / n)) leaves 14 / 20 = 0.7 sigma^2 C^2, below the bar: the second test shows
// the bar test catches it.
//
// Tolerance. The d = 20,000 coordinates of the decoded sum are independent N(0, V) (plus the
// stochastic rounding, at most 1/(4 s^2) variance per agent, s ~ 2^24 here). Their mean square
// estimates V with standard deviation V sqrt(2/d) (chi-square with d degrees of freedom), so
// 4 sqrt(2/d) = 4% is four standard deviations: a false failure has probability ~3e-5 for an
// unseeded source, and the seeded one makes the run deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { RoundConfig } from '@fedclr/protocol';
import {
  ErrorCodes,
  SecAggAgent,
  SecAggServer,
  addGaussianNoise,
  boxMullerGaussian,
  deriveDpEncoding,
  deriveSecAggParams,
  encodeFixedPoint,
  generateSigningKeyPair,
  runInProcess,
  seededRandomWords,
  type AgentOptions,
  type FixedPointParams,
  type RandomBytes,
  type RandomWords,
  type Rule,
  type SigningKeyPair,
} from '@fedclr/secagg';
import { checkRoundPolicy, POLICY_DEFAULTS } from '../src/policy.js';
import { encodeSecureInput } from '../src/secure-round.js';
import { prepareDelta } from '../src/update.js';
import { CONFIG } from './fake-coordinator.js';

const N = 20;
const DROPOUT = 0.3;
const CORRUPT = 0.1;
const DROPPED = 6;
const N_MIN = 12;
const SIGMA = 1.1;
const CLIP = 0.5;
const SPEC = { noiseMultiplier: SIGMA, clipNorm: CLIP };
const DIM = 20_000;
const TOL = 4 * Math.sqrt(2 / DIM);
const PARAMS = deriveSecAggParams({ cohortSize: N, dropoutFraction: DROPOUT, corruptFraction: CORRUPT });

// The shared test round, made a secure DP round of this cohort.
const ROUND: RoundConfig = {
  ...CONFIG,
  clipNorm: CLIP,
  aggregation: 'secure',
  cohortSize: N,
  dp: { noiseMultiplier: SIGMA, noise: 'agents' },
};

function seededWords(label: string): RandomWords {
  return seededRandomWords(new Uint8Array(createHash('sha256').update(label).digest()));
}

function seededBytes(label: string): RandomBytes {
  const words = seededWords(label);
  return (length) => {
    const w = new Uint32Array(Math.ceil(length / 4));
    words(w);
    return new Uint8Array(w.buffer, 0, length).slice();
  };
}

/** The agent's own path from trained weights to the clipped delta. */
function clippedDelta(global: Float32Array, local: Float32Array, exampleCount: number): Float32Array {
  return prepareDelta({
    roundId: 1,
    manifest: [{ name: 'w', shape: [global.length], dtype: 'float32' }],
    global,
    output: { weights: local, exampleCount, metrics: {} },
    config: ROUND,
    durationMs: 0,
    limits: { maxFrameBytes: 1 << 30, maxMetrics: 8 },
  }).delta;
}

/** What an agent feeds SecAggAgent.setInput, given its session (seeded noise and rounding). */
type Encoder = (id: string, agent: SecAggAgent, delta: Float32Array, exampleCount: number) => Uint32Array;

const agentEncoder: Encoder = (id, agent, delta, exampleCount) => {
  const encoding = agent.config?.encoding;
  const params = agent.params;
  if (encoding === undefined || params === undefined) throw new Error('no session yet');
  return encodeSecureInput({ delta, exampleCount, encoding, params, dp: SPEC, gaussian: boxMullerGaussian(seededWords(`noise/${id}`)), random: seededWords(`sr/${id}`) }).words;
};

/** The formula this replaced: N(0, sigma^2 C^2 / cohortSize) per agent, whoever survives. */
const oldEncoder: Encoder = (id, agent, delta) => {
  const noisy = addGaussianNoise(delta, (SIGMA * CLIP) / Math.sqrt(N), boxMullerGaussian(seededWords(`noise/${id}`)));
  return encodeFixedPoint(noisy, 1, agent.config?.encoding as FixedPointParams, seededWords(`sr/${id}`));
};

/** A corrupt agent: no noise at all. */
const noiselessEncoder: Encoder = (id, agent, delta) => encodeFixedPoint(delta, 1, agent.config?.encoding as FixedPointParams, seededWords(`sr/${id}`));

interface RoundOptions {
  readonly dimension: number;
  readonly encoder: Encoder;
  /** Agents silent before their masked input (default: the first D). */
  readonly dropped?: number;
  /** Local weights and example count of agent i (default: no change, 100 images). */
  readonly local?: (i: number, global: Float32Array) => { weights: Float32Array; exampleCount: number };
  /** Agents that add no noise (corrupt). */
  readonly noiseless?: ReadonlySet<number>;
  /** false: a coordinator without the survivor floor (a malicious one). */
  readonly serverFloor?: boolean;
  readonly agentClass?: new (options: AgentOptions) => SecAggAgent;
}

function secureRound(label: string, o: RoundOptions) {
  const ids = Array.from({ length: N }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
  const identities = new Map(ids.map((id) => [id, generateSigningKeyPair(seededBytes(`${label}/identity/${id}`))] as const));
  const serverIdentity = generateSigningKeyPair(seededBytes(`${label}/identity/server`));
  const session = `${label}/round-1`;
  const server = new SecAggServer({
    session,
    identity: serverIdentity,
    enrolled: new Map([...identities].map(([id, pair]) => [id, pair.publicKey] as const)),
    cohort: ids,
    dropoutFraction: DROPOUT,
    corruptFraction: CORRUPT,
    encoding: deriveDpEncoding(SPEC, o.dimension, PARAMS),
    graphSeed: new Uint8Array(createHash('sha256').update(`${label}/graph`).digest()),
    ...(o.serverFloor === false ? {} : { dp: SPEC }),
  });
  const AgentClass = o.agentClass ?? SecAggAgent;
  const agents = new Map(
    ids.map((id) => [id, new AgentClass({ id, identity: identities.get(id) as SigningKeyPair, serverPublicKey: serverIdentity.publicKey, session, random: seededBytes(`${label}/agent/${id}`), policy: { dp: SPEC } })] as const),
  );
  const global = new Float32Array(o.dimension);
  const errors: Error[] = [];
  const outcome = runInProcess({
    server,
    agents,
    input: (id, agent) => {
      const i = ids.indexOf(id);
      const local = o.local?.(i, global) ?? { weights: global.slice(), exampleCount: 100 };
      const encoder = o.noiseless?.has(i) === true ? noiselessEncoder : o.encoder;
      return encoder(id, agent, clippedDelta(global, local.weights, local.exampleCount), local.exampleCount);
    },
    dropBefore: { 'masked-input': ids.slice(0, o.dropped ?? DROPPED) },
    onAgentError: (_id, err) => errors.push(err),
  });
  return { outcome, errors, scale: server.config.encoding.scale };
}

function decoded(run: ReturnType<typeof secureRound>) {
  const status = run.outcome.status;
  if (status.kind !== 'done') assert.fail(`expected done, got ${status.kind}: ${status.kind === 'aborted' ? status.abort.message : ''}`);
  return status.result;
}

/** Mean square of the decoded sum over sigma^2 C^2 (the deltas are zero: it is all noise). */
function noiseVariance(values: Float64Array): number {
  let sq = 0;
  for (const v of values) sq += v * v;
  return sq / values.length / (SIGMA * CLIP) ** 2;
}

/** The stochastic rounding's own variance allowance: at most 1/(4 s^2) per agent, in units of sigma^2 C^2. */
function roundingAllowance(survivors: number, scale: number): number {
  return survivors / (4 * scale * scale) / (SIGMA * CLIP) ** 2;
}

test('bar: 30% of the cohort drops before its masked input; the unmasked sum still carries >= sigma^2 C^2 of noise, (survivors / n_min) sigma^2 C^2 exactly', (t) => {
  const run = secureRound('bar', { dimension: DIM, encoder: agentEncoder });
  const result = decoded(run);
  const survivors = result.survivors.length;
  assert.equal(survivors, N - DROPPED);
  assert.equal(result.decoded.weight, survivors, 'each agent counts once (weight 1): no example count in the sum');
  const v = noiseVariance(result.decoded.values);
  const expected = survivors / N_MIN;
  t.diagnostic(`empirical variance ${v.toFixed(4)} sigma^2 C^2; expected ${expected.toFixed(4)} (survivors ${survivors} / n_min ${N_MIN}); bar ${(1 - TOL).toFixed(4)}`);
  assert.ok(v >= 1 - TOL, `variance ${v} sigma^2 C^2 is below the bar ${1 - TOL}`);
  assert.ok(Math.abs(v - expected) <= TOL * expected + roundingAllowance(survivors, run.scale), `variance ${v} vs expected ${expected}`);
});

test('bar, control: the old formula N(0, sigma^2 C^2 / cohortSize) leaves ~0.7 sigma^2 C^2 in the same round: the bar test fails on it', (t) => {
  const run = secureRound('bar', { dimension: DIM, encoder: oldEncoder });
  const result = decoded(run);
  const v = noiseVariance(result.decoded.values);
  const expected = (N - DROPPED) / N;
  t.diagnostic(`old formula: empirical variance ${v.toFixed(4)} sigma^2 C^2; expected ${expected} (14 / 20)`);
  assert.ok(v < 1 - TOL, `the old formula would pass the bar (${v})`);
  assert.ok(Math.abs(v - expected) <= TOL * expected + roundingAllowance(N - DROPPED, run.scale));
});

class FloorlessAgent extends SecAggAgent {
  protected override enforce(rule: Rule, ok: boolean, details: () => string): void {
    if (rule !== 'survivor-floor') super.enforce(rule, ok, details);
  }
}

test('survivor floor: a coordinator announcing n - D - 1 survivors is refused by every honest agent; without the rule, 2 corrupt survivors leave the sum short of sigma^2 C^2', (t) => {
  // Honest agents: every survivor refuses to sign the survivor set, nothing is unmasked.
  const honest = secureRound('floor', { dimension: 64, encoder: agentEncoder, dropped: DROPPED + 1, serverFloor: false });
  assert.equal(honest.outcome.status.kind, 'aborted');
  assert.equal(honest.errors.length, N - DROPPED - 1);
  for (const err of honest.errors) {
    assert.equal((err as { code?: string }).code, ErrorCodes.CONSISTENCY);
    assert.match(err.message, /rule survivor-floor\): 13 survivors announced, fewer than cohort 20 - tolerated dropouts 6 = 14/);
  }
  // The honest coordinator aborts such a round itself, before asking for shares.
  const own = secureRound('floor', { dimension: 64, encoder: agentEncoder, dropped: DROPPED + 1 });
  assert.equal(own.outcome.status.kind === 'aborted' ? own.outcome.status.abort.reason : own.outcome.status.kind, 'too-few-survivors');
  // The attack against a weakened build: 13 survivors, two of them corrupt (no noise), 11 honest noises < n_min.
  const weak = secureRound('floor', { dimension: DIM, encoder: agentEncoder, dropped: DROPPED + 1, serverFloor: false, agentClass: FloorlessAgent, noiseless: new Set([18, 19]) });
  const v = noiseVariance(decoded(weak).decoded.values);
  t.diagnostic(`without the floor: variance ${v.toFixed(4)} sigma^2 C^2 (expected 11 / 12)`);
  assert.ok(v < 1 - TOL, `the short sum still carries ${v} sigma^2 C^2`);
});

test('weighting: an agent with 10x the images and 10x the norm encodes exactly as one at the clip norm; it moves the mean over the cohort by C / cohortSize', () => {
  const d = 64;
  const global = new Float32Array(d);
  const big = new Float32Array(d);
  big[0] = 10 * CLIP; // norm 10 C
  const atClip = new Float32Array(d);
  atClip[0] = CLIP;
  const encodeAs = (local: Float32Array, exampleCount: number) => {
    const encoding = deriveDpEncoding(SPEC, d, PARAMS);
    return encodeSecureInput({ delta: clippedDelta(global, local, exampleCount), exampleCount, encoding, params: PARAMS, dp: SPEC, gaussian: boxMullerGaussian(seededWords('w/noise')), random: seededWords('w/sr') });
  };
  const heavy = encodeAs(big, 1000);
  const light = encodeAs(atClip, 100);
  assert.deepEqual(heavy.words, light.words, 'example count and excess norm change nothing');
  assert.equal(heavy.weight, 1);
  assert.equal(heavy.noiseStd, light.noiseStd);
  assert.ok(Math.abs(heavy.noiseStd - (SIGMA * CLIP) / Math.sqrt(N_MIN)) < 1e-15, 'the same noise as everyone');

  // In a round: the last agent (a survivor) trains big with 10x the images; same seeds otherwise.
  const zero = decoded(secureRound('weights', { dimension: d, encoder: agentEncoder }));
  const moved = decoded(secureRound('weights', { dimension: d, encoder: agentEncoder, local: (i) => (i === N - 1 ? { weights: big, exampleCount: 1000 } : { weights: global.slice(), exampleCount: 100 }) }));
  const scale = deriveDpEncoding(SPEC, d, PARAMS).scale;
  // The mean's denominator is the cohort size (the coordinator divides by it, not by the 14 survivors).
  const shift = ((moved.decoded.values[0] as number) - (zero.decoded.values[0] as number)) / N;
  assert.ok(Math.abs(shift - CLIP / N) < 2 / scale / N + 1e-7, `the mean moved by ${shift}, not C / n = ${CLIP / N}`);
  for (let i = 1; i < d; i++) assert.equal(moved.decoded.values[i], zero.decoded.values[i]);
});

test('policy: DP noise where the aggregation carries it; --min-noise-multiplier still refuses a low sigma in the new config shape', () => {
  const lax = { ...POLICY_DEFAULTS, requireSecure: false, minCohort: 1 };
  assert.equal(checkRoundPolicy(POLICY_DEFAULTS, ROUND), undefined, "secure with the agents' noise");
  assert.equal(checkRoundPolicy(lax, { ...ROUND, aggregation: 'plain', dp: { noiseMultiplier: 1, noise: 'coordinator' } }), undefined, 'central DP for a policy that allows plain rounds');
  assert.equal(checkRoundPolicy(POLICY_DEFAULTS, { ...ROUND, aggregation: 'plain', dp: { noiseMultiplier: 1, noise: 'coordinator' } })?.rule, 'require-secure');
  assert.equal(checkRoundPolicy(lax, { ...ROUND, aggregation: 'plain' })?.rule, 'dp-noise');
  assert.equal(checkRoundPolicy(lax, { ...ROUND, dp: { noiseMultiplier: 1, noise: 'coordinator' } })?.rule, 'dp-noise');
  assert.equal(checkRoundPolicy(lax, { ...ROUND, clipNorm: 0 })?.rule, 'dp-clip-norm');
  const strict = { ...POLICY_DEFAULTS, minNoiseMultiplier: 1.5 };
  assert.match(checkRoundPolicy(strict, ROUND)?.problem ?? '', /dp\.noiseMultiplier is 1\.1; this agent requires at least 1\.5/);
  assert.equal(checkRoundPolicy(strict, { ...ROUND, dp: { noiseMultiplier: 1.5, noise: 'agents' } }), undefined);
  const { dp: _dp, ...noDp } = ROUND;
  assert.equal(checkRoundPolicy(strict, noDp)?.rule, 'min-noise-multiplier');
});
