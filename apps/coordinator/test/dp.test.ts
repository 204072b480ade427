// Client-level DP on the coordinator: config refusals that name the field, the unweighted sum
// over the fixed denominator (the sampled cohort, not the survivors) in secure and plain rounds,
// the central-noise path (plain, dp.noise 'coordinator') and what a DP round records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeFrame, encodeFrame } from '@fedclr/protocol';
import { boxMullerGaussian, dpEncodingClip, seededRandomWords } from '@fedclr/secagg';
import { createPlainAggregator, type AggregationDp, type AggregationStatus, type AggregationStep, type OutboundSecagg } from '../src/aggregation.js';
import { resolveConfig, type CoordinatorConfig } from '../src/config.js';
import { SecureAggregationSession, secureAggregator } from '../src/secure-aggregation.js';
import { deltaFor, makeEngine, makeModel, ofType, refusedConfig, TEST_SETTINGS, updateMessage } from './helpers.js';
import { deliverToAgent, makeAgents, sessionOptions, type InProcessAgent } from './secagg-helpers.js';

const IDS = ['a0', 'a1', 'a2', 'a3', 'a4'];
const MODEL_VERSION = 'b'.repeat(64);
const SIGMA = 0.8;
const CLIP = 0.5;

const refused = refusedConfig;

test('config: malformed DP settings are refused, naming the field', () => {
  const dp = (d: unknown, extra: Partial<CoordinatorConfig> = {}): Partial<CoordinatorConfig> => ({ ...extra, training: { clipNorm: CLIP, dp: d as never, ...extra.training } });
  refused(dp({}), 'training.dp.noiseMultiplier', /required with training\.dp.*got undefined/);
  for (const sigma of [Number.NaN, -1, 0, 1001, Number.POSITIVE_INFINITY, '1']) refused(dp({ noiseMultiplier: sigma }), 'training.dp.noiseMultiplier');
  refused(dp({ noiseMultiplier: 1, cohortSize: 10 }), 'training.dp.cohortSize', /unknown|absent/);
  refused(dp({ noiseMultiplier: 1, noise: 'server' }), 'training.dp.noise');
  refused({ training: { clipNorm: 0, dp: { noiseMultiplier: 1 } } }, 'training.clipNorm', /> 0 when training\.dp/);
  refused(dp({ noiseMultiplier: 1 }, { aggregation: 'plain', minCohort: 2 }), 'training.dp.noise', /'coordinator' with aggregation 'plain'/);
  refused(dp({ noiseMultiplier: 1, noise: 'coordinator' }), 'training.dp.noise', /'agents' with aggregation 'secure'/);
  refused(dp({ noiseMultiplier: 1 }, { secagg: { clip: 2 } }), 'secagg.clip');
  refused(dp({ noiseMultiplier: 1 }, { secagg: { maxWeight: 10 } }), 'secagg.maxWeight');
  // A grid too coarse for some cohort the run may sample: the message names sigma, clip, scale and n_min.
  refused(dp({ noiseMultiplier: 1e-7 }), 'training.dp.noiseMultiplier', /at a cohort of \d+: .*sigma 1e-7.*clipNorm C 0\.5.*scale s \d+.*n_min \d+/);

  const ok = resolveConfig({ stateDir: 'x', training: { clipNorm: CLIP, dp: { noiseMultiplier: SIGMA } } });
  assert.deepEqual(ok.training.dp, { noiseMultiplier: SIGMA, noise: 'agents' });
  const central = resolveConfig({ stateDir: 'x', aggregation: 'plain', minCohort: 2, training: { clipNorm: CLIP, dp: { noiseMultiplier: SIGMA, noise: 'coordinator' } } });
  assert.deepEqual(central.training.dp, { noiseMultiplier: SIGMA, noise: 'coordinator' });
});

/** Drives a secure session with in-process agents; `silent` go quiet from that stage on. */
async function driveSecure(dp: AggregationDp, agents: Map<string, InProcessAgent>, silent: ReadonlyMap<string, string>) {
  const { manifest, weights } = makeModel(4, 3);
  const session = secureAggregator(sessionOptions(agents)).open({ roundId: 1, modelVersion: MODEL_VERSION, cohort: IDS, manifest, dimension: weights.length, dp });
  assert.ok(session instanceof SecureAggregationSession);
  const outbox: OutboundSecagg[] = [];
  let final: AggregationStatus | undefined;
  const settle = (step: AggregationStep): void => {
    outbox.push(...step.messages);
    if (step.status.kind === 'done' || step.status.kind === 'aborted') final = step.status;
  };
  const gone = new Set<string>();
  const run = async (): Promise<void> => {
    for (let m = outbox.shift(); m !== undefined; m = outbox.shift()) {
      const to = m.to[0] as string;
      if (gone.has(to) || silent.get(to) === m.message.stage) {
        if (!gone.has(to)) settle(session.drop(to));
        gone.add(to);
        continue;
      }
      for (const o of await deliverToAgent(agents.get(to) as InProcessAgent, m.message, MODEL_VERSION)) {
        settle(o.kind === 'secagg' ? session.receive(to, o.message) : session.addUpdate(to, { frame: o.frame, exampleCount: undefined }));
      }
    }
  };
  settle(session.start());
  await run();
  settle(session.close());
  await run();
  return { session, final };
}

test("secure DP round: an unweighted encoding with room for the noise; the aggregate's denominator is the cohort (5), not the 4 survivors; the record carries the noise std and n_min", async () => {
  const d = makeModel(4, 3).weights.length;
  // These test agents add no noise (the agents' part is apps/agent's): the sum is exact to the grid.
  const agents = makeAgents(IDS, (i) => deltaFor(d, i, 0.05), () => 1);
  const dp: AggregationDp = { noiseMultiplier: SIGMA, clipNorm: CLIP, noise: 'agents' };
  const { session, final } = await driveSecure(dp, agents, new Map([['a4', 'participants']]));
  const encoding = session.encoding;
  assert.ok(encoding !== undefined);
  assert.equal(encoding.weighted, false);
  assert.equal(encoding.maxWeight, 1);
  // n = 5, dropoutFraction 0.2 (D = 1), corruptFraction 0 (C = 0): n_min = 4.
  assert.equal(encoding.clip, dpEncodingClip(dp, 4));
  assert.ok(final?.kind === 'done', `done, got ${JSON.stringify(final)}`);
  const a = final.aggregate;
  assert.deepEqual([...a.contributors].sort(), ['a0', 'a1', 'a2', 'a3']);
  assert.equal(a.totalWeight, 5, 'the fixed denominator: the sampled cohort');
  const bound = a.metrics?.['secaggQuantisationBound'] ?? Number.NaN;
  for (let i = 0; i < d; i++) {
    const want = ['a0', 'a1', 'a2', 'a3'].reduce((s, id) => s + ((agents.get(id) as InProcessAgent).delta[i] as number), 0) / 5;
    assert.ok(Math.abs((a.weightedSum[i] as number) / a.totalWeight - want) <= bound, `coordinate ${i}`);
  }
  assert.equal(a.metrics?.['dpMinHonest'], 4);
  assert.equal(a.metrics?.['dpDenominator'], 5);
  assert.ok(Math.abs((a.metrics?.['dpNoiseStd'] ?? 0) - Math.sqrt(4 / 4) * SIGMA * CLIP) < 1e-12);
});

test('secure DP round under Poisson sampling: the denominator comes from the round (q * invited, here 7.5), not from the cohort of 5', async () => {
  const agents = makeAgents(IDS, (i) => deltaFor(makeModel(4, 3).weights.length, i, 0.05), () => 1);
  const { final } = await driveSecure({ noiseMultiplier: 0.8, clipNorm: 0.5, noise: 'agents', denominator: 7.5 }, agents, new Map());
  assert.ok(final?.kind === 'done', JSON.stringify(final));
  assert.equal(final.aggregate.totalWeight, 7.5);
  assert.equal(final.aggregate.metrics?.['dpDenominator'], 7.5);
});

test('secure DP round: more than D dropouts abort the round (too-few-survivors) before any share is asked for', async () => {
  const d = makeModel(4, 3).weights.length;
  const agents = makeAgents(IDS, (i) => deltaFor(d, i, 0.05), () => 1);
  const { final } = await driveSecure({ noiseMultiplier: SIGMA, clipNorm: CLIP, noise: 'agents' }, agents, new Map([['a3', 'participants'], ['a4', 'participants']]));
  assert.ok(final?.kind === 'aborted');
  assert.match(final.reason, /too-few-survivors.*masked-input.*DP survivor floor 4/);
});

function seededGaussian(label: string) {
  return boxMullerGaussian(seededRandomWords(new Uint8Array(createHash('sha256').update(label).digest())));
}

function plainFrame(delta: Float32Array) {
  const manifest = [{ name: 'w', shape: [delta.length], dtype: 'float32' as const }];
  return { manifest, frame: decodeFrame(encodeFrame({ manifest, data: delta })) };
}

test('central DP (plain, dp.noise coordinator): the coordinator adds N(0, sigma^2 C^2) to the unweighted sum; one agent moves the mean by at most C / cohortSize', () => {
  const d = 20_000;
  const dp: AggregationDp = { noiseMultiplier: SIGMA, clipNorm: CLIP, noise: 'coordinator' };
  const zero = new Float32Array(d);
  const { manifest } = plainFrame(zero);
  const open = (gaussian: (out: Float64Array) => void) => createPlainAggregator({ gaussian }).open({ roundId: 1, modelVersion: MODEL_VERSION, cohort: IDS, manifest, dimension: d, dp });

  // Zero deltas (the agents add no noise of their own): the sum is the coordinator's noise alone.
  const noisy = open(seededGaussian('central'));
  for (const id of IDS.slice(0, 3)) noisy.addUpdate(id, { frame: plainFrame(zero).frame, exampleCount: 100 });
  const status = noisy.close().status;
  assert.ok(status.kind === 'done');
  let sq = 0;
  for (const v of status.aggregate.weightedSum) sq += v * v;
  const variance = sq / d / (SIGMA * CLIP) ** 2;
  // Mean square of d independent N(0, sigma^2 C^2): relative standard deviation sqrt(2/d); four of them.
  assert.ok(Math.abs(variance - 1) <= 4 * Math.sqrt(2 / d), `central noise variance ${variance} sigma^2 C^2`);
  assert.equal(status.aggregate.totalWeight, 5, 'the fixed denominator: 5 sampled, 3 sent');
  assert.equal(status.aggregate.metrics?.['dpNoiseStd'], SIGMA * CLIP);
  assert.equal(status.aggregate.metrics?.['dpDenominator'], 5);

  // Influence: 10x the images and 100x the clip norm still count once, clipped to C.
  const none = open((out) => out.fill(0));
  const huge = new Float32Array(d).fill(1); // norm 141 = 283 C
  none.addUpdate('a0', { frame: plainFrame(huge).frame, exampleCount: 1000 });
  none.addUpdate('a1', { frame: plainFrame(zero).frame, exampleCount: 100 });
  const s = none.close().status;
  assert.ok(s.kind === 'done');
  let norm = 0;
  for (const v of s.aggregate.weightedSum) norm += v * v;
  const meanShift = Math.sqrt(norm) / s.aggregate.totalWeight;
  assert.ok(Math.abs(meanShift - CLIP / 5) < 1e-6, `one agent moved the mean by ${meanShift}, more than C / cohortSize = ${CLIP / 5}`);
});

test('engine: a DP round sends dp in round-start and divides by the cohort size; the round record carries the DP noise std', () => {
  const dpConfig = { noiseMultiplier: SIGMA, noise: 'coordinator' as const };
  const { engine, manifest, weights } = makeEngine(
    { minCohort: 3, maxCohort: 3, quorum: { fraction: 0.5, minCount: 1 }, roundConfig: { ...TEST_SETTINGS.roundConfig, clipNorm: CLIP, dp: dpConfig } },
    { aggregator: createPlainAggregator({ gaussian: (out) => out.fill(0) }) },
  );
  const now = 1000;
  for (const agentId of ['a', 'b', 'c']) engine.handle({ type: 'agent-ready', agentId }, now);
  const started = engine.handle({ type: 'start' }, now);
  const start = started.find((a) => a.type === 'send' && a.message.type === 'round-start');
  assert.ok(start?.type === 'send' && start.message.type === 'round-start');
  assert.deepEqual(start.message.config.dp, dpConfig);
  const { roundId, modelVersion } = start.message;
  const delta = deltaFor(weights.length, 1, 0.01);
  engine.handle({ type: 'update', agentId: 'a', message: updateMessage(roundId, modelVersion, manifest, delta, 50) }, now);
  engine.handle({ type: 'update', agentId: 'b', message: updateMessage(roundId, modelVersion, manifest, delta, 5000) }, now);
  const actions = engine.handle({ type: 'timer', timer: 'deadline', roundId }, now + 5000);
  const [commit] = ofType(actions, 'commit');
  assert.ok(commit !== undefined, 'the round completes with 2 of 3');
  const summary = commit.record.summary;
  assert.equal(summary.totalWeight, 3, 'sum over 2 updates, divided by the 3 sampled');
  assert.equal(summary.metrics['dpNoiseStd'], SIGMA * CLIP);
  // FedAvg (server lr 1): the model moves by (2 delta) / 3, whatever the example counts.
  for (let i = 0; i < weights.length; i++) {
    const want = (weights[i] as number) + (2 * (delta[i] as number)) / 3;
    assert.ok(Math.abs((commit.record.model.weights[i] as number) - want) < 1e-6, `weight ${i}`);
  }
});
