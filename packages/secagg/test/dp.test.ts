// Distributed DP on the secagg grid (src/dp.ts): the noise source, the encoding a DP round needs
// (and the refusals of one that cannot carry the noise), and the survivor floor that keeps at
// least n_min honest noises in any sum the coordinator can unmask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ErrorCodes,
  MIN_GRID_NOISE,
  NOISE_HEADROOM,
  SecAggAgent,
  boxMullerGaussian,
  checkDpEncoding,
  cryptoGaussian,
  deriveDpEncoding,
  deriveFixedPoint,
  deriveSecAggParams,
  minHonestSurvivors,
  runInProcess,
  sumNoiseStd,
  type AgentOptions,
  type Rule,
} from '../src/index.js';
import { makeFederation, throwsWithCode } from './helpers.js';

const SPEC = { noiseMultiplier: 1, clipNorm: 0.5 };
// n = 20, dropoutFraction 0.3, corruptFraction 0.1: D = 6, C = 2, n_min = 12 (complete graph).
const PARAMS = deriveSecAggParams({ cohortSize: 20, dropoutFraction: 0.3, corruptFraction: 0.1 });

test('cryptoGaussian: finite standard normal draws, bounded by sqrt(2 ln 2^53)', () => {
  const n = 1 << 16;
  const x = new Float64Array(n);
  cryptoGaussian(x);
  let sum = 0;
  let sq = 0;
  for (const v of x) {
    assert.ok(Number.isFinite(v) && Math.abs(v) <= Math.sqrt(2 * 53 * Math.LN2));
    sum += v;
    sq += v * v;
  }
  // Mean and variance within 4 standard errors (1/sqrt(n) and sqrt(2/n)).
  assert.ok(Math.abs(sum / n) < 4 / Math.sqrt(n), `mean ${sum / n}`);
  assert.ok(Math.abs(sq / n - 1) < 4 * Math.sqrt(2 / n), `variance ${sq / n}`);
});

test('Box-Muller never takes log(0): all-zero and all-one words give finite extremes', () => {
  const zeros = new Float64Array(3);
  boxMullerGaussian((w) => w.fill(0))(zeros);
  assert.equal(zeros[0], Math.sqrt(2 * 53 * Math.LN2)); // u1 = 2^-53, the largest radius
  assert.ok(zeros.every(Number.isFinite));
  const ones = new Float64Array(2);
  boxMullerGaussian((w) => w.fill(0xffffffff))(ones);
  assert.ok(ones.every((v) => Object.is(Math.abs(v), 0))); // u1 = 1: radius 0
});

test('the DP encoding is unweighted, has unit weight, room for 9 noise std and a fine grid', () => {
  const e = deriveDpEncoding(SPEC, 100, PARAMS);
  assert.equal(e.weighted, false);
  assert.equal(e.maxWeight, 1);
  assert.equal(minHonestSurvivors(PARAMS), 12);
  const std = (SPEC.noiseMultiplier * SPEC.clipNorm) / Math.sqrt(12);
  assert.ok(e.clip >= SPEC.clipNorm + NOISE_HEADROOM * std && e.clip < SPEC.clipNorm * 1.001 + NOISE_HEADROOM * std);
  const plan = checkDpEncoding(SPEC, e, PARAMS);
  assert.equal(plan.minHonest, 12);
  assert.ok(Math.abs(plan.agentStd - std) < 1e-15);
  assert.ok(plan.gridNoise >= MIN_GRID_NOISE);
  assert.ok(Math.abs(sumNoiseStd(SPEC, 14, 12) - Math.sqrt(14 / 12) * 0.5) < 1e-15);
  // The claim at tau = 4: frac(a + N(0, tau^2)) is uniform within 2 sum exp(-2 pi^2 k^2 tau^2) < 1e-130.
  let tv = 0;
  for (let k = 1; k <= 10; k++) tv += 2 * Math.exp(-2 * Math.PI ** 2 * k * k * MIN_GRID_NOISE ** 2);
  assert.ok(tv < 1e-130);
});

test('an encoding that cannot carry the noise is refused, naming the parameter', () => {
  const dp = deriveDpEncoding(SPEC, 10, PARAMS);
  const weighted = deriveFixedPoint({ dimension: 10, clip: dp.clip, cohortSize: 20, maxWeight: 1 });
  assert.match(throwsWithCode(() => checkDpEncoding(SPEC, weighted, PARAMS), ErrorCodes.PARAMS_MISMATCH).message, /config\.encoding\.weighted/);
  const heavy = deriveFixedPoint({ dimension: 10, clip: dp.clip, cohortSize: 20, maxWeight: 100, weighted: false });
  assert.match(throwsWithCode(() => checkDpEncoding(SPEC, heavy, PARAMS), ErrorCodes.PARAMS_MISMATCH).message, /config\.encoding\.maxWeight/);
  // A clip at C would cut the noise of every coordinate near the bound.
  const tight = deriveFixedPoint({ dimension: 10, clip: SPEC.clipNorm, cohortSize: 20, maxWeight: 1, weighted: false });
  assert.match(throwsWithCode(() => checkDpEncoding(SPEC, tight, PARAMS), ErrorCodes.PARAMS_MISMATCH).message, /config\.encoding\.clip/);
  throwsWithCode(() => checkDpEncoding({ ...SPEC, clipNorm: 0 }, dp, PARAMS), ErrorCodes.CONFIG_INVALID);
  throwsWithCode(() => checkDpEncoding({ ...SPEC, noiseMultiplier: Number.NaN }, dp, PARAMS), ErrorCodes.CONFIG_INVALID);
});

test('a grid too coarse for the noise is refused, naming sigma, clip, scale and n_min', () => {
  const tiny = { noiseMultiplier: 1e-7, clipNorm: 0.5 };
  const err = throwsWithCode(() => deriveDpEncoding(tiny, 10, PARAMS), ErrorCodes.DP_GRID_TOO_COARSE);
  for (const part of [/sigma 1e-7/, /clipNorm C 0\.5/, /scale s \d+/, /n_min 12/, /tau = .* grid steps/]) assert.match(err.message, part);
  // An agent refuses it too (a coordinator may derive the encoding for a coarser grid than its config says).
  const coarse = deriveFixedPoint({ dimension: 10, clip: 1, cohortSize: 20, maxWeight: 1, weighted: false, scale: 2 ** 10 });
  throwsWithCode(() => checkDpEncoding({ noiseMultiplier: 0.001, clipNorm: 0.5 }, coarse, PARAMS), ErrorCodes.DP_GRID_TOO_COARSE);
});

test('survivor floor: the coordinator aborts below n - D survivors, before asking for shares', () => {
  const fed = makeFederation({ n: 20, dimension: 8, dropoutFraction: 0.3, corruptFraction: 0.1, dp: SPEC, label: 'dp-floor' });
  const sent: string[] = [];
  const outcome = runInProcess({
    server: fed.server,
    agents: fed.agents,
    input: (id) => fed.input(id),
    dropBefore: { 'masked-input': fed.ids.slice(0, 7) },
    onSend: (from, m) => {
      if (from === fed.server.serverId) sent.push(m.stage);
    },
  });
  assert.equal(outcome.status.kind, 'aborted');
  if (outcome.status.kind !== 'aborted') return;
  assert.equal(outcome.status.abort.reason, 'too-few-survivors');
  assert.equal(outcome.status.abort.stage, 'masked-input');
  assert.match(outcome.status.abort.message, /13 surviving agents remain, fewer than the DP survivor floor 14/);
  assert.ok(!sent.includes('check') && !sent.includes('unmask'));
  // D dropouts exactly: the round completes.
  const ok = makeFederation({ n: 20, dimension: 8, dropoutFraction: 0.3, corruptFraction: 0.1, dp: SPEC, label: 'dp-floor-ok' });
  const done = runInProcess({ server: ok.server, agents: ok.agents, input: (id) => ok.input(id), dropBefore: { 'masked-input': ok.ids.slice(0, 6) } });
  assert.equal(done.status.kind, 'done');
});

class FloorlessAgent extends SecAggAgent {
  protected override enforce(rule: Rule, ok: boolean, details: () => string): void {
    if (rule !== 'survivor-floor') super.enforce(rule, ok, details);
  }
}

test('survivor floor: honest agents refuse a coordinator that announces n - D - 1 survivors; weakened ones unmask', () => {
  const run = (agentClass: new (o: AgentOptions) => SecAggAgent) => {
    // A malicious coordinator: the same server without its floor.
    const fed = makeFederation({ n: 20, dimension: 8, dropoutFraction: 0.3, corruptFraction: 0.1, dp: SPEC, serverFloor: false, label: 'dp-floorless' });
    for (const id of fed.ids) fed.agents.set(id, new agentClass(fed.agentOptions(id)));
    const errors: Error[] = [];
    const outcome = runInProcess({
      server: fed.server,
      agents: fed.agents,
      input: (id) => fed.input(id),
      dropBefore: { 'masked-input': fed.ids.slice(0, 7) },
      onAgentError: (_id, err) => errors.push(err),
    });
    return { outcome, errors };
  };
  const honest = run(SecAggAgent);
  assert.equal(honest.errors.length, 13, 'every survivor refused');
  for (const err of honest.errors) {
    assert.equal((err as Error & { code?: string }).code, ErrorCodes.CONSISTENCY);
    assert.match(err.message, /rule survivor-floor\): 13 survivors announced, fewer than cohort 20 - tolerated dropouts 6 = 14/);
  }
  assert.equal(honest.outcome.status.kind, 'aborted', 'nothing was unmasked');
  // The control: without the rule the same coordinator unmasks a sum of 13 (11 honest if 2 are corrupt < n_min 12).
  const weakened = run(FloorlessAgent);
  assert.equal(weakened.errors.length, 0);
  assert.equal(weakened.outcome.status.kind, 'done');
});
