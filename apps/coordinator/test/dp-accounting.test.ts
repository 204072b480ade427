// The coordinator's privacy ledger and what the engine does with it: epsilon after every
// committed round (the no-sampling closed form, alpha / (2 sigma^2) per round at every order),
// a failed commit charges nothing, and the run finishes (reason 'privacy-budget') before a
// round that would take epsilon above the budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ORDERS, epsilonFromRdp } from '@fedclr/privacy';
import { createPlainAggregator } from '../src/aggregation.js';
import { resolveConfig } from '../src/config.js';
import type { EngineAction, RoundEngine } from '../src/engine.js';
import { isCoordinatorError } from '../src/errors.js';
import { PrivacyLedger } from '../src/privacy-ledger.js';
import { deltaFor, makeEngine, ofType, sends, TEST_SETTINGS, updateMessage } from './helpers.js';

const SIGMA = 1.1;
const DELTA = 1e-5;
const CLIP = 0.5;

/** Epsilon after `rounds` unsampled Gaussian rounds, from the closed form RDP(alpha) = rounds * alpha / (2 sigma^2). */
function closedForm(rounds: number, sigma = SIGMA): number {
  return epsilonFromRdp(DEFAULT_ORDERS, DEFAULT_ORDERS.map((a) => (rounds * a) / (2 * sigma * sigma)), DELTA).epsilon;
}

/** Equal to float rounding: n rounds summed vs the closed form's one product differ in the last bits. */
function close(actual: number | undefined, expected: number, what: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= 1e-12 * expected, `${what}: ${actual} vs ${expected}`);
}

test('ledger: epsilon per round is the no-sampling closed form; afterRound leaves the old ledger alone; the state round-trips', () => {
  const fresh = PrivacyLedger.fresh({ noiseMultiplier: SIGMA, delta: DELTA });
  assert.deepEqual(fresh.spent(), { epsilon: 0, delta: DELTA, order: null, rounds: 0 });
  let ledger = fresh;
  for (let r = 1; r <= 5; r++) {
    ledger = ledger.afterRound(1);
    close(ledger.spent().epsilon, closedForm(r), `round ${r}`);
    assert.equal(ledger.spent().rounds, r);
  }
  assert.equal(fresh.spent().rounds, 0, 'afterRound returns a new ledger');
  const restored = PrivacyLedger.restore({ noiseMultiplier: SIGMA, delta: DELTA }, JSON.stringify(ledger.toJSON()));
  assert.deepEqual(restored.spent(), ledger.spent());
  close(restored.afterRound(1).spent().epsilon, closedForm(6), 'round 6 after restore');
  // Sampling makes each round cheaper (amplification), never dearer.
  assert.ok(fresh.afterRound(0.1).spent().epsilon < fresh.afterRound(1).spent().epsilon);
});

test('ledger: the budget check looks one round ahead; no target, no stop', () => {
  const e2 = closedForm(2);
  const e3 = closedForm(3);
  const budgeted = PrivacyLedger.fresh({ noiseMultiplier: SIGMA, delta: DELTA, targetEpsilon: (e2 + e3) / 2 });
  assert.equal(budgeted.afterRound(1).wouldExceed(1), false);
  assert.equal(budgeted.afterRound(1).afterRound(1).wouldExceed(1), true);
  assert.equal(PrivacyLedger.fresh({ noiseMultiplier: SIGMA, delta: DELTA }).afterRound(1).afterRound(1).wouldExceed(1), false);
});

test('ledger: a corrupt saved state is refused with FEDCLR_COORD_PRIVACY_STATE_INVALID, never reset', () => {
  const good = PrivacyLedger.fresh({ noiseMultiplier: SIGMA, delta: DELTA }).afterRound(1).toJSON();
  const bad: [string, RegExp][] = [
    ['{not json', /not JSON/],
    ['null', /not an object/],
    [JSON.stringify({ ...good, version: 2 }), /version is 2/],
    [JSON.stringify({ ...good, rounds: -1 }), /rounds is -1/],
    [JSON.stringify({ ...good, accountant: { ...good.accountant, rdp: good.accountant.rdp.slice(1) } }), /rdp/],
    [JSON.stringify({ ...good, accountant: { ...good.accountant, rdp: good.accountant.rdp.map(() => -1) } }), /rdp\[0\]/],
  ];
  for (const [text, re] of bad) {
    assert.throws(
      () => PrivacyLedger.restore({ noiseMultiplier: SIGMA, delta: DELTA }, text),
      (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_PRIVACY_STATE_INVALID') && re.test((e as Error).message),
      text.slice(0, 60),
    );
  }
});

test('config: privacy needs training.dp; delta and targetEpsilon are range-checked, naming the field', () => {
  const dp = { training: { clipNorm: CLIP, dp: { noiseMultiplier: SIGMA } } };
  assert.deepEqual(resolveConfig({ stateDir: 'x', ...dp }).privacy, { delta: 1e-5, targetEpsilon: null });
  assert.deepEqual(resolveConfig({ stateDir: 'x', ...dp, privacy: { delta: 1e-6, targetEpsilon: 8 } }).privacy, { delta: 1e-6, targetEpsilon: 8 });
  assert.equal(resolveConfig({ stateDir: 'x' }).privacy, null);
  const refused = (config: Record<string, unknown>, field: string) =>
    assert.throws(() => resolveConfig({ stateDir: 'x', ...config }), (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_CONFIG_INVALID') && (e as Error).message.includes(`'${field}'`), field);
  refused({ privacy: { delta: 1e-5 } }, 'privacy');
  for (const delta of [0, -1, 0.5, Number.NaN, '1e-5']) refused({ ...dp, privacy: { delta } }, 'privacy.delta');
  for (const targetEpsilon of [0, -2, Number.POSITIVE_INFINITY]) refused({ ...dp, privacy: { targetEpsilon } }, 'privacy.targetEpsilon');
  refused({ ...dp, privacy: { epsilon: 8 } }, 'privacy.epsilon');
});

/** A central-DP engine over agents a, b, c; `round` runs one round to its commit action. */
function dpEngine(privacy: PrivacyLedger, rounds = 10) {
  const { engine, manifest, weights } = makeEngine(
    { rounds, minCohort: 3, maxCohort: 3, roundConfig: { ...TEST_SETTINGS.roundConfig, clipNorm: CLIP, dp: { noiseMultiplier: SIGMA, noise: 'coordinator' } } },
    { aggregator: createPlainAggregator({ gaussian: (out) => out.fill(0) }), privacy },
  );
  let now = 1000;
  const delta = deltaFor(weights.length, 1, 0.01);
  const round = (actions: EngineAction[]) => {
    const start = sends(actions, 'round-start')[0];
    assert.ok(start !== undefined, 'a round starts');
    const { roundId, modelVersion } = start.message as unknown as { roundId: number; modelVersion: string };
    let out: EngineAction[] = [];
    for (const agentId of ['a', 'b', 'c']) out = engine.handle({ type: 'update', agentId, message: updateMessage(roundId, modelVersion, manifest, delta, 10) }, (now += 10));
    const [commit] = ofType(out, 'commit');
    assert.ok(commit !== undefined, `round ${roundId} reaches its commit`);
    return commit;
  };
  const begin = (): EngineAction[] => {
    for (const agentId of ['a', 'b', 'c']) engine.handle({ type: 'agent-ready', agentId }, now);
    return engine.handle({ type: 'start' }, now);
  };
  return { engine: engine as RoundEngine, round, begin, tick: () => (now += 10) };
}

test('engine: each committed round records epsilon; a failed commit charges nothing; the run finishes before exceeding its budget', () => {
  const e1 = closedForm(1);
  const e2 = closedForm(2);
  const target = (e2 + closedForm(3)) / 2;
  const { engine, round, begin, tick } = dpEngine(PrivacyLedger.fresh({ noiseMultiplier: SIGMA, delta: DELTA, targetEpsilon: target }));
  const first = round(begin());
  assert.equal(first.record.summary.metrics['dpEpsilon'], e1);
  assert.equal(first.record.summary.metrics['dpDelta'], DELTA);
  assert.equal(first.record.summary.metrics['dpSamplingRate'], 1);
  assert.equal(first.record.privacyState?.rounds, 1);
  assert.equal(engine.status().privacy?.rounds, 0, 'not charged before the commit is done');

  // The commit fails: nothing was published, nothing is charged; the retried round costs e1 again.
  engine.handle({ type: 'commit-failed', roundId: first.roundId, error: 'disk full' }, tick());
  assert.equal(engine.status().privacy?.epsilon, 0);
  const retry = round(engine.handle({ type: 'timer', timer: 'retry', roundId: first.roundId + 1 }, tick() + 1000));
  assert.equal(retry.record.summary.metrics['dpEpsilon'], e1);
  const afterRetry = engine.handle({ type: 'commit-done', roundId: retry.roundId }, tick());
  assert.equal(engine.status().privacy?.epsilon, e1);

  const second = round(afterRetry);
  close(second.record.summary.metrics['dpEpsilon'], e2, 'round 2');
  const end = engine.handle({ type: 'commit-done', roundId: second.roundId }, tick());
  assert.deepEqual(ofType(end, 'finished'), [{ type: 'finished', completedRounds: 2, reason: 'privacy-budget' }]);
  assert.equal(sends(end, 'round-start').length, 0, 'no third round');
  assert.deepEqual(sends(end, 'shutdown').map((s) => s.to), ['a', 'b', 'c']);
  const status = engine.status();
  assert.equal(status.phase, 'finished');
  assert.equal(status.finishedBy, 'privacy-budget');
  close(status.privacy?.epsilon, e2, 'status');
  assert.deepEqual(status.privacy, { epsilon: status.privacy?.epsilon, delta: DELTA, order: status.privacy?.order, rounds: 2, targetEpsilon: target, noiseMultiplier: SIGMA, samplingRate: 1 });
  assert.ok((status.privacy?.epsilon ?? Infinity) <= target);
});

test('engine: a restored ledger whose budget is spent finishes at start, without a round', () => {
  const spent = PrivacyLedger.fresh({ noiseMultiplier: SIGMA, delta: DELTA, targetEpsilon: closedForm(2) * 1.0001 }).afterRound(1).afterRound(1);
  const { engine, begin } = dpEngine(spent);
  const actions = begin();
  assert.equal(sends(actions, 'round-start').length, 0);
  assert.deepEqual(ofType(actions, 'finished'), [{ type: 'finished', completedRounds: 0, reason: 'privacy-budget' }]);
  assert.equal(engine.status().finishedBy, 'privacy-budget');
});

test('engine: a Poisson round is charged at its sampling rate q (amplification), the status reports q', () => {
  const ledger = PrivacyLedger.fresh({ noiseMultiplier: SIGMA, delta: DELTA });
  const { engine, manifest, weights } = makeEngine(
    { minCohort: 2, maxCohort: 8, sampling: { mode: 'poisson', rate: 0.25, invitationWaitMs: 300 }, roundConfig: { ...TEST_SETTINGS.roundConfig, clipNorm: CLIP, dp: { noiseMultiplier: SIGMA, noise: 'coordinator' } } },
    { aggregator: createPlainAggregator({ gaussian: (out) => out.fill(0) }), privacy: ledger },
  );
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
  for (const agentId of ids) engine.handle({ type: 'agent-ready', agentId }, 0);
  engine.handle({ type: 'start' }, 0);
  assert.equal(engine.status().privacy?.samplingRate, 0.25);
  for (const agentId of ids) engine.handle({ type: 'sampling-answer', agentId, message: { type: 'sampling-answer', roundId: 1, volunteer: agentId < 'd' } }, 10);
  let last: EngineAction[] = [];
  for (const agentId of ['a', 'b', 'c']) last = engine.handle({ type: 'update', agentId, message: updateMessage(1, engine.globalModel.modelVersion, manifest, deltaFor(weights.length, 1, 0.01), 7) }, 20);
  const [commit] = ofType(last, 'commit');
  assert.ok(commit !== undefined);
  assert.equal(commit.record.summary.metrics['dpSamplingRate'], 0.25);
  assert.equal(commit.record.summary.metrics['dpEpsilon'], ledger.afterRound(0.25).spent().epsilon);
  assert.ok((commit.record.summary.metrics['dpEpsilon'] ?? Infinity) < closedForm(1), 'cheaper than an unsampled round');
});
