// Poisson self-sampling on the coordinator (issue 15): the engine invites every ready agent, the
// cohort is exactly the volunteers (too many or too few fail the round, never subsampled), a DP
// round divides by q * invited, Poisson rounds record samplingRate and sampledFrom; the config
// and its refusals. Pure engine tests: events in, actions out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoundStartMessage } from '@fedclr/protocol';
import { createPlainAggregator } from '../src/aggregation.js';
import { resolveConfig } from '../src/config.js';
import type { EngineAction, EngineSettings, RoundEngine } from '../src/engine.js';
import { deltaFor, makeEngine, ofType, refusedConfig, sends, TEST_SETTINGS, updateMessage } from './helpers.js';

const IDS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const POISSON: EngineSettings['sampling'] = { mode: 'poisson', rate: 0.5, invitationWaitMs: 300 };

/** All of `ids` ready, then the engine starts: the first round invites all of them. */
function start(engine: RoundEngine, ids: readonly string[], now = 0): EngineAction[] {
  const out: EngineAction[] = [];
  for (const id of ids) out.push(...engine.handle({ type: 'agent-ready', agentId: id }, now));
  out.push(...engine.handle({ type: 'start' }, now));
  return out;
}

function answer(engine: RoundEngine, agentId: string, roundId: number, volunteer: boolean, now = 10): EngineAction[] {
  return engine.handle({ type: 'sampling-answer', agentId, message: { type: 'sampling-answer', roundId, volunteer } }, now);
}

test('poisson: every ready agent is invited (signed sampling-invite {roundId, rate}); the cohort is exactly the volunteers; round-start carries sampling {rate, invited}', () => {
  const { engine } = makeEngine({ minCohort: 2, maxCohort: 8, cohortWaitMs: 0, sampling: POISSON });
  engine.handle({ type: 'start' }, 0);
  for (const id of IDS.slice(0, 1)) engine.handle({ type: 'agent-ready', agentId: id }, 0);
  // minCohort 2 is reached by the second agent: invitations go to the ready agents of that moment.
  const invited = engine.handle({ type: 'agent-ready', agentId: 'b' }, 0);
  for (const id of IDS.slice(2)) engine.handle({ type: 'agent-ready', agentId: id }, 0);
  const invites = sends(invited, 'sampling-invite');
  assert.deepEqual(invites.map((s) => s.to), ['a', 'b']);
  assert.deepEqual(invites[0]?.message, { type: 'sampling-invite', roundId: 1, rate: 0.5 });
  assert.equal(sends(invited, 'round-start').length, 0, 'no round-start before the answers');
  assert.equal(engine.phase, 'inviting');
  assert.deepEqual(ofType(invited, 'set-timer').map((t) => [t.timer, t.delayMs]), [['invitation', 300]]);

  // Answers from agents not invited, for another round, or twice are ignored.
  assert.equal(sends(answer(engine, 'c', 1, true), 'round-start').length, 0);
  assert.equal(sends(answer(engine, 'a', 9, true), 'round-start').length, 0);
  answer(engine, 'a', 1, true);
  assert.equal(engine.phase, 'inviting');
  const out = answer(engine, 'b', 1, true);
  const starts = sends(out, 'round-start');
  assert.deepEqual(starts.map((s) => s.to), ['a', 'b'], 'all answered: the round starts with the volunteers');
  const msg = starts[0]?.message as unknown as RoundStartMessage;
  assert.equal(msg.roundId, 1, 'the invitation round id is the round id');
  assert.equal(msg.config.cohortSize, 2);
  assert.deepEqual(msg.config.sampling, { rate: 0.5, invited: 2 });
  assert.ok(ofType(out, 'clear-timer').some((t) => t.timer === 'invitation'));
  assert.equal(engine.phase, 'collecting');
});

test('poisson: at the invitation timer, the volunteers so far are the cohort; decliners and silent agents are not in it', () => {
  const { engine } = makeEngine({ minCohort: 2, maxCohort: 8, cohortWaitMs: 100, sampling: POISSON });
  start(engine, IDS);
  assert.equal(engine.phase, 'inviting');
  for (const [id, v] of [['a', true], ['b', false], ['c', true], ['d', false], ['e', true]] as const) answer(engine, id, 1, v);
  engine.handle({ type: 'agent-left', agentId: 'e' }, 20); // a volunteer that left cannot be in the cohort
  const out = engine.handle({ type: 'timer', timer: 'invitation', roundId: 1 }, 400);
  const starts = sends(out, 'round-start');
  assert.deepEqual(starts.map((s) => s.to), ['a', 'c']);
  assert.deepEqual((starts[0]?.message as unknown as RoundStartMessage).config.sampling, { rate: 0.5, invited: 8 });
  const [started] = ofType(out, 'round-started');
  assert.deepEqual(started?.record.cohort, ['a', 'c']);
});

test('poisson: too few volunteers fail the round with the reason; the retry is a new round id with new invitations (new coins)', () => {
  const { engine } = makeEngine({ minCohort: 3, maxCohort: 8, sampling: POISSON });
  start(engine, IDS.slice(0, 4));
  answer(engine, 'a', 1, true);
  answer(engine, 'b', 1, true);
  answer(engine, 'c', 1, false);
  const out = answer(engine, 'd', 1, false);
  assert.equal(sends(out, 'round-start').length, 0);
  const [failed] = ofType(out, 'round-failed');
  assert.ok(failed !== undefined);
  assert.equal(failed.summary.roundId, 1);
  assert.match(failed.summary.reason ?? '', /too few volunteers: 2 of 4 invited agents volunteered at rate 0\.5.*under minCohort 3/);
  assert.deepEqual(failed.summary.cohort, ['a', 'b']);
  assert.equal(failed.summary.metrics['samplingRate'], 0.5);
  assert.equal(failed.summary.metrics['sampledFrom'], 4);
  assert.equal(ofType(out, 'round-started').length, 1, 'the failed round is recorded (started, then failed)');
  assert.deepEqual(sends(out, 'round-end').map((s) => [s.to, s.message['outcome']]), [['a', 'aborted'], ['b', 'aborted']], 'the volunteers are told');
  assert.equal(engine.phase, 'waiting');
  const retry = engine.handle({ type: 'timer', timer: 'retry', roundId: 2 }, 200);
  const again = sends(retry, 'sampling-invite');
  assert.equal(again.length, 4);
  assert.equal(again[0]?.message['roundId'], 2, 'a new round id: every agent draws a new coin');
});

test('poisson: more volunteers than maxCohort fail the round rather than subsample it', () => {
  const { engine } = makeEngine({ minCohort: 2, maxCohort: 3, sampling: POISSON });
  start(engine, IDS.slice(0, 5));
  for (const id of IDS.slice(0, 4)) answer(engine, id, 1, true);
  const out = answer(engine, 'e', 1, false);
  assert.equal(sends(out, 'round-start').length, 0, 'no cohort picked from the volunteers');
  const [failed] = ofType(out, 'round-failed');
  assert.match(failed?.summary.reason ?? '', /too many volunteers: 4 of 5 invited.*over maxCohort 3.*never subsampled/);
});

test('poisson: shutdown during the invitations aborts them (nothing was trained) and stops', () => {
  const { engine } = makeEngine({ minCohort: 2, maxCohort: 8, sampling: POISSON });
  start(engine, IDS.slice(0, 3));
  answer(engine, 'a', 1, true);
  const out = engine.handle({ type: 'shutdown', mode: 'finish' }, 50);
  assert.equal(ofType(out, 'round-failed')[0]?.summary.status, 'aborted');
  assert.equal(ofType(out, 'stopped').length, 1);
  assert.equal(engine.phase, 'stopped');
});

test('poisson DP (plain, coordinator noise): the fixed denominator is q * invited, not the cohort; the summary records samplingRate and sampledFrom', () => {
  const dp = { noiseMultiplier: 0.8, noise: 'coordinator' as const };
  const { engine, manifest, weights } = makeEngine(
    { minCohort: 2, maxCohort: 8, sampling: { mode: 'poisson', rate: 0.25, invitationWaitMs: 300 }, quorum: { fraction: 0.5, minCount: 1 }, roundConfig: { ...TEST_SETTINGS.roundConfig, clipNorm: 0.5, dp } },
    { aggregator: createPlainAggregator({ gaussian: (out) => out.fill(0) }) },
  );
  start(engine, IDS);
  for (const id of IDS) answer(engine, id, 1, id === 'a' || id === 'b' || id === 'c');
  const delta = deltaFor(weights.length, 1, 0.01);
  let last: EngineAction[] = [];
  for (const id of ['a', 'b', 'c']) last = engine.handle({ type: 'update', agentId: id, message: updateMessage(1, engine.globalModel.modelVersion, manifest, delta, 7) }, 20);
  const [commit] = ofType(last, 'commit');
  assert.ok(commit !== undefined);
  const m = commit.record.summary.metrics;
  assert.equal(commit.record.summary.totalWeight, 2, 'q * invited = 0.25 * 8, though 3 volunteered');
  assert.equal(m['dpDenominator'], 2);
  assert.equal(m['samplingRate'], 0.25);
  assert.equal(m['sampledFrom'], 8);
  assert.equal(m['cohort'], 3);
  for (let i = 0; i < weights.length; i++) {
    const want = (weights[i] as number) + (3 * (delta[i] as number)) / 2;
    assert.ok(Math.abs((commit.record.model.weights[i] as number) - want) < 1e-6, `weight ${i}`);
  }
});

test('coordinator sampling: no invitations, no sampling field, no samplingRate metric, the denominator is the cohort', () => {
  const { engine } = makeEngine({ minCohort: 2, maxCohort: 3 });
  const out = start(engine, IDS.slice(0, 2));
  assert.equal(sends(out, 'sampling-invite').length, 0);
  const msg = sends(out, 'round-start')[0]?.message as unknown as RoundStartMessage;
  assert.equal(msg.config.sampling, undefined);
});

// ---- configuration ---------------------------------------------------------------------------

const refused = refusedConfig;

test('config: sampling defaults to the coordinator; poisson needs a rate in (0, 1]; a rate without poisson is refused', () => {
  assert.deepEqual(resolveConfig({ stateDir: 'x' }).sampling, { mode: 'coordinator' });
  assert.deepEqual(resolveConfig({ stateDir: 'x', sampling: { mode: 'poisson', rate: 0.75 } }).sampling, { mode: 'poisson', rate: 0.75, invitationWaitMs: 5000 });
  assert.deepEqual(resolveConfig({ stateDir: 'x', sampling: { mode: 'poisson', rate: 1, invitationWaitMs: 50 } }).sampling, { mode: 'poisson', rate: 1, invitationWaitMs: 50 });
  refused({ sampling: { mode: 'poisson' } }, 'sampling.rate', /required with sampling\.mode 'poisson'/);
  for (const rate of [0, -0.5, 1.01, Number.NaN]) refused({ sampling: { mode: 'poisson', rate } }, 'sampling.rate', /\(0, 1\]/);
  refused({ sampling: { rate: 0.5 } }, 'sampling.rate', /only sampling\.mode 'poisson'/);
  refused({ sampling: { mode: 'coordinator', invitationWaitMs: 10 } }, 'sampling.invitationWaitMs');
  refused({ sampling: { mode: 'random' as never } }, 'sampling.mode', /coordinator, poisson/);
  refused({ sampling: { mode: 'poisson', rate: 0.5, q: 1 } as never }, 'sampling.q');
  refused({ sampling: 'poisson' as never }, 'sampling', /an object/);
});
