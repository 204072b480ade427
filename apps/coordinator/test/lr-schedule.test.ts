// The learning-rate schedule across rounds: the pure functions, its configuration, the engine
// sending it (no sockets), and a real coordinator whose agents receive it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { createFakeTrainer, startAgent, type LocalTrainer } from '@fedclr/agent';
import type { RoundStartMessage } from '@fedclr/protocol';
import { resolveConfig } from '../src/config.js';
import type { EngineAction, RoundEngine, RoundSummary } from '../src/engine.js';
import { isCoordinatorError } from '../src/errors.js';
import { DEFAULT_FINAL_FRACTION, lrFactor, runProgress, scheduledLearningRate, type LrSchedule } from '../src/lr-schedule.js';
import { deltaFor, makeEngine, ofType, sends, updateMessage } from './helpers.js';
import { startTestCoordinator, tempDir, trust, withTimeout } from './harness.js';

const COSINE: LrSchedule = { kind: 'cosine', finalFraction: DEFAULT_FINAL_FRACTION };
const close = (actual: number, expected: number, what: string): void => assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual} != ${expected}`);

test('lrFactor: cosine from 1 at p=0 through (1+f)/2 at p=0.5 to f at p=1; constant is 1', () => {
  assert.equal(DEFAULT_FINAL_FRACTION, 0.05);
  close(lrFactor(COSINE, 0), 1, 'p=0');
  close(lrFactor(COSINE, 0.5), 0.525, 'p=0.5');
  close(lrFactor(COSINE, 1), 0.05, 'p=1');
  close(lrFactor(COSINE, 0.25), 0.05 + 0.95 * 0.5 * (1 + Math.SQRT1_2), 'p=0.25');
  close(lrFactor({ kind: 'cosine', finalFraction: 0.2 }, 1), 0.2, 'finalFraction 0.2 at p=1');
  close(lrFactor({ kind: 'cosine', finalFraction: 0.2 }, 0.5), 0.6, 'finalFraction 0.2 at p=0.5');
  close(lrFactor({ kind: 'cosine', finalFraction: 1 }, 0.7), 1, 'finalFraction 1 is constant');
  close(lrFactor(COSINE, -0.5), 1, 'progress is clamped below');
  close(lrFactor(COSINE, 3), 0.05, 'and above');
  let previous = Infinity;
  for (let i = 0; i <= 20; i++) {
    const f = lrFactor(COSINE, i / 20);
    assert.ok(f < previous && f > 0, `decreasing and positive at p=${i / 20}`);
    previous = f;
  }
  for (const p of [0, 0.3, 1]) assert.equal(lrFactor({ kind: 'constant' }, p), 1);
  assert.equal(scheduledLearningRate(0.002, { kind: 'constant' }, 0.9), 0.002, 'constant sends the base rate exactly');
  close(scheduledLearningRate(0.002, COSINE, 0.5), 0.002 * 0.525, 'cosine scales the base rate');
});

test('runProgress: the round midpoint by rounds or by time, whichever is further, in [0, 1]', () => {
  // By rounds: (done + 1/2) / rounds.
  close(runProgress({ completedRounds: 0, rounds: 4, now: 0 }), 0.125, 'first of 4');
  close(runProgress({ completedRounds: 3, rounds: 4, now: 0 }), 0.875, 'last of 4');
  // By time: (elapsed + half the expected round) / budget, when it is further.
  const budget = { startsAt: 1000, endsAt: 11_000 };
  close(runProgress({ completedRounds: 0, rounds: 10, now: 7000, budget }), 0.6, 'time, no estimate yet');
  close(runProgress({ completedRounds: 0, rounds: 10, now: 7000, budget, expectedRoundMs: 2000 }), 0.7, 'time at the midpoint');
  close(runProgress({ completedRounds: 8, rounds: 10, now: 2000, budget, expectedRoundMs: 2000 }), 0.85, 'rounds are further than time');
  close(runProgress({ completedRounds: 0, rounds: 1_000_000, now: 6000, budget }), 0.5, 'an unbounded round count: time decides');
  assert.equal(runProgress({ completedRounds: 0, rounds: 10, now: 20_000, budget }), 1, 'past the budget');
  assert.equal(runProgress({ completedRounds: 0, rounds: 10, now: 0, budget }), 0.05, 'before the budget starts: rounds only');
  assert.equal(runProgress({ completedRounds: 0, rounds: 10, now: 0, budget: { startsAt: 5, endsAt: 5 } }), 1, 'an empty budget is used up');
  assert.equal(runProgress({ completedRounds: 12, rounds: 10, now: 0 }), 1, 'rounds beyond the target');
});

test('config: lrSchedule (name or object) and budgetEndsAt, validated with the field named', () => {
  const code = (fn: () => unknown, re: RegExp) =>
    assert.throws(fn, (e: unknown) => isCoordinatorError(e) && e.code === 'FEDCLR_COORD_CONFIG_INVALID' && re.test(e.message));
  const c = resolveConfig({ stateDir: 'x' });
  assert.deepEqual(c.lrSchedule, { kind: 'constant' });
  assert.equal(c.budgetEndsAt, null);
  assert.deepEqual(resolveConfig({ stateDir: 'x', lrSchedule: 'cosine' }).lrSchedule, { kind: 'cosine', finalFraction: 0.05 });
  assert.deepEqual(resolveConfig({ stateDir: 'x', lrSchedule: { kind: 'cosine', finalFraction: 0.1 } }).lrSchedule, { kind: 'cosine', finalFraction: 0.1 });
  assert.deepEqual(resolveConfig({ stateDir: 'x', lrSchedule: { kind: 'constant' } }).lrSchedule, { kind: 'constant' });
  assert.equal(resolveConfig({ stateDir: 'x', budgetEndsAt: 1_700_000_000_000 }).budgetEndsAt, 1_700_000_000_000);
  code(() => resolveConfig({ stateDir: 'x', lrSchedule: 'linear' as never }), /'lrSchedule' must be one of constant, cosine; got "linear"/);
  code(() => resolveConfig({ stateDir: 'x', lrSchedule: { kind: 'step' } as never }), /'lrSchedule\.kind' must be one of constant, cosine/);
  code(() => resolveConfig({ stateDir: 'x', lrSchedule: { kind: 'cosine', finalFraction: 0 } }), /'lrSchedule\.finalFraction' must be a number in \(0, 1\]/);
  code(() => resolveConfig({ stateDir: 'x', lrSchedule: { kind: 'cosine', finalFraction: 1.5 } }), /'lrSchedule\.finalFraction'/);
  code(() => resolveConfig({ stateDir: 'x', lrSchedule: { finalFraction: 0.1 } }), /'lrSchedule\.finalFraction' must be absent: only 'cosine' decays/);
  code(() => resolveConfig({ stateDir: 'x', lrSchedule: { kind: 'cosine', warmup: 2 } as never }), /'lrSchedule\.warmup'/);
  code(() => resolveConfig({ stateDir: 'x', budgetEndsAt: 'soon' as never }), /'budgetEndsAt' must be an integer/);
});

/** Starts agents a and b on `engine`, then completes `rounds` rounds; returns each round-start and summary. */
function runRounds(engine: RoundEngine, rounds: number, times: { start: number; roundMs: number }): { starts: RoundStartMessage[]; summaries: RoundSummary[] } {
  const starts: RoundStartMessage[] = [];
  const summaries: RoundSummary[] = [];
  let now = times.start;
  let actions: EngineAction[] = [...engine.handle({ type: 'start' }, now), ...engine.handle({ type: 'agent-ready', agentId: 'a' }, now), ...engine.handle({ type: 'agent-ready', agentId: 'b' }, now)];
  for (let i = 0; i < rounds; i++) {
    const start = sends(actions, 'round-start')[0]?.message as unknown as RoundStartMessage | undefined;
    assert.ok(start !== undefined, `round ${i + 1} started`);
    starts.push(start);
    const n = engine.globalModel.weights.length;
    now += times.roundMs;
    engine.handle({ type: 'update', agentId: 'a', message: updateMessage(start.roundId, start.modelVersion, engine.globalModel.manifest, deltaFor(n, 0), 5) }, now);
    const last = engine.handle({ type: 'update', agentId: 'b', message: updateMessage(start.roundId, start.modelVersion, engine.globalModel.manifest, deltaFor(n, 1), 5) }, now);
    const commit = ofType(last, 'commit')[0];
    assert.ok(commit !== undefined, `round ${i + 1} commits`);
    summaries.push(commit.record.summary);
    actions = engine.handle({ type: 'commit-done', roundId: start.roundId }, now);
  }
  return { starts, summaries };
}

test('engine: consecutive rounds get decreasing rates under cosine, the same one under constant', () => {
  const cosine = runRounds(makeEngine({ rounds: 2, minCohort: 2, maxCohort: 2, lrSchedule: COSINE }).engine, 2, { start: 0, roundMs: 10 });
  const [c1, c2] = cosine.starts.map((s) => s.config.learningRate) as [number, number];
  close(c1, 0.01 * lrFactor(COSINE, 0.25), 'round 1 at the midpoint of the first half');
  close(c2, 0.01 * lrFactor(COSINE, 0.75), 'round 2 at the midpoint of the second half');
  assert.ok(c1 > c2);
  assert.deepEqual(cosine.summaries.map((s) => s.metrics['learningRate']), [c1, c2], 'the summary records the rate sent');

  const constant = runRounds(makeEngine({ rounds: 2, minCohort: 2, maxCohort: 2 }).engine, 2, { start: 0, roundMs: 10 });
  assert.deepEqual(constant.starts.map((s) => s.config.learningRate), [0.01, 0.01], 'the default is constant');
  assert.deepEqual(constant.summaries.map((s) => s.metrics['learningRate']), [0.01, 0.01]);

  // A time budget further along than the rounds: round 1 starts 10% into it (no duration known
  // yet), takes 20% of it; round 2 starts at 30% and is expected to end at 50%: its midpoint is 40%.
  const timed = makeEngine({ rounds: 1000, minCohort: 2, maxCohort: 2, lrSchedule: COSINE, budget: { startsAt: 0, endsAt: 10_000 } }).engine;
  const t = runRounds(timed, 2, { start: 1000, roundMs: 2000 });
  close(t.starts[0]?.config.learningRate as number, 0.01 * lrFactor(COSINE, 0.1), 'round 1 by time');
  close(t.starts[1]?.config.learningRate as number, 0.01 * lrFactor(COSINE, 0.4), 'round 2 by time, at its expected midpoint');
});

test('coordinator: agents receive the scheduled rate; rounds record it (summary, GET /api/rounds)', async () => {
  const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn' });
  const run = async (lrSchedule: 'constant' | 'cosine'): Promise<{ received: number[][]; summaries: number[]; api: number[] }> => {
    const dir = tempDir();
    const { coordinator } = await startTestCoordinator({
      stateDir: join(dir, 'coordinator'),
      rounds: 2,
      minCohort: 2,
      maxCohort: 2,
      training: { learningRate: 0.004 },
      lrSchedule,
    });
    const received: number[][] = [[], []];
    const summaries: number[] = [];
    coordinator.events.on('round-completed', (s) => summaries.push(s.metrics['learningRate'] as number));
    try {
      const agents = await Promise.all(
        [0, 1].map((i) => {
          const inner = createFakeTrainer({ seed: i, delayMs: 20 });
          const trainer: LocalTrainer = {
            train: (input, signal, onProgress) => {
              received[i]?.push(input.config.learningRate);
              return inner.train(input, signal, onProgress);
            },
          };
          return startAgent({ coordinatorUrl: coordinator.url, stateDir: join(dir, `a${i}`), trainer, logger, ...trust(coordinator.publicKey) });
        }),
      );
      await withTimeout(coordinator.finished, 15_000, 'two rounds');
      await Promise.all(agents.map((a) => withTimeout(a.done, 5000, 'agents to exit')));
      const res = await fetch(`${coordinator.url}/api/rounds`);
      const page = (await res.json()) as { items: { roundId: number; metrics: Record<string, number> }[] };
      const api = [...page.items].sort((a, b) => a.roundId - b.roundId).map((r) => r.metrics['learningRate'] as number);
      return { received, summaries, api };
    } finally {
      await coordinator.close();
    }
  };

  const cosine = await run('cosine');
  const expected = [0.004 * lrFactor(COSINE, 0.25), 0.004 * lrFactor(COSINE, 0.75)];
  for (const r of cosine.received) {
    assert.equal(r.length, 2);
    close(r[0] as number, expected[0] as number, 'round 1 received');
    close(r[1] as number, expected[1] as number, 'round 2 received');
    assert.ok((r[0] as number) > (r[1] as number), 'decreasing');
  }
  assert.deepEqual(cosine.summaries, cosine.received[0]);
  assert.deepEqual(cosine.api, cosine.received[0]);

  const constant = await run('constant');
  assert.deepEqual(constant.received, [[0.004, 0.004], [0.004, 0.004]]);
  assert.deepEqual(constant.summaries, [0.004, 0.004]);
  assert.deepEqual(constant.api, [0.004, 0.004]);
});
