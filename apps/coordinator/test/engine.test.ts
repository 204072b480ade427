// Pure RoundEngine tests: no sockets, no timers, no clock. Events in, actions out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame } from '@fedclr/protocol';
import type { Manifest, RoundStartMessage, SecaggMessage, UpdateMessage } from '@fedclr/protocol';
import type { AggregationSession, AggregationStep, AggregatorFactory } from '../src/aggregation.js';
import { PlainAggregationSession } from '../src/aggregation.js';
import type { EngineAction, RoundEngine } from '../src/engine.js';
import { sampleCohort } from '../src/sampling.js';
import { deltaFor, makeEngine, ofType, sends, updateMessage } from './helpers.js';

function ready(engine: RoundEngine, ids: string[], now = 0): EngineAction[] {
  const out: EngineAction[] = [];
  out.push(...engine.handle({ type: 'start' }, now));
  for (const id of ids) out.push(...engine.handle({ type: 'agent-ready', agentId: id }, now));
  return out;
}

function roundStart(actions: readonly EngineAction[]): { cohort: string[]; msg: RoundStartMessage } {
  const s = sends(actions, 'round-start');
  assert.ok(s.length > 0, 'expected round-start messages');
  return { cohort: s.map((x) => x.to).sort(), msg: s[0]?.message as unknown as RoundStartMessage };
}

function update(engine: RoundEngine, agentId: string, message: UpdateMessage, now = 10): EngineAction[] {
  return engine.handle({ type: 'update', agentId, message }, now);
}

test('waits for the minimum cohort, then samples up to the maximum (deterministic, seeded)', () => {
  const { engine } = makeEngine({ minCohort: 3, maxCohort: 4 });
  let actions = ready(engine, ['a', 'b']);
  assert.equal(sends(actions, 'round-start').length, 0, 'two agents are below minCohort');
  assert.equal(engine.phase, 'waiting');
  actions = engine.handle({ type: 'agent-ready', agentId: 'c' }, 1);
  const { cohort, msg } = roundStart(actions);
  assert.deepEqual(cohort, ['a', 'b', 'c']);
  assert.equal(msg.roundId, 1);
  assert.equal(msg.modelVersion, engine.globalModel.modelVersion);
  assert.equal(msg.config.aggregation, 'plain');
  assert.equal(msg.config.cohortSize, 3, 'the signed config tells agents how many were sampled');
  assert.equal(typeof msg.config.seed, 'number');
  assert.deepEqual(ofType(actions, 'set-timer').map((t) => [t.timer, t.delayMs]), [['deadline', 1000]]);
  assert.equal(ofType(actions, 'round-started').length, 1);
  assert.equal(engine.phase, 'collecting');

  // Sampling: at most maxCohort, reproducible, independent of arrival order.
  const ids = Array.from({ length: 10 }, (_, i) => `agent-${i}`);
  const c1 = sampleCohort(ids, 4, 7, 1);
  assert.equal(c1.length, 4);
  assert.deepEqual(sampleCohort([...ids].reverse(), 4, 7, 1), c1);
  assert.notDeepEqual(sampleCohort(ids, 4, 7, 2), c1, 'another round draws another cohort');
  const { engine: e2 } = makeEngine({ minCohort: 2, maxCohort: 4 });
  const started = roundStart(ready(e2, ids.slice(0, 4)).concat(ready(e2, [])));
  assert.equal(started.cohort.length, 2, 'starts as soon as minCohort is there (no cohort wait)');
  assert.equal(started.msg.config.cohortSize, 2);
});

test('firstRoundAgents: the first round waits for that many ready agents, later rounds only for minCohort', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 2, maxCohort: 2, firstRoundAgents: 4 });
  let actions = ready(engine, ['a', 'b', 'c']);
  assert.equal(sends(actions, 'round-start').length, 0, 'three ready agents are below firstRoundAgents 4');
  assert.equal(engine.phase, 'waiting');
  actions = engine.handle({ type: 'agent-ready', agentId: 'd' }, 1);
  const first = roundStart(actions);
  assert.equal(first.cohort.length, 2);
  // Two agents leave during round 1: with 2 ready (minCohort, below firstRoundAgents), round 2 starts.
  for (const id of ['a', 'b', 'c', 'd'].filter((x) => !first.cohort.includes(x))) engine.handle({ type: 'agent-left', agentId: id }, 2);
  for (const [i, id] of first.cohort.entries()) update(engine, id, updateMessage(1, first.msg.modelVersion, manifest, deltaFor(weights.length, i), 10));
  actions = engine.handle({ type: 'commit-done', roundId: 1 }, 20);
  assert.equal(engine.globalModel.completedRounds, 1);
  assert.equal(roundStart(actions).msg.roundId, 2);
});

test('cohort wait: after minCohort, waits for more agents until the timer, starts at once at maxCohort', () => {
  const { engine } = makeEngine({ minCohort: 2, maxCohort: 3, cohortWaitMs: 500 });
  let actions = ready(engine, ['a', 'b']);
  assert.equal(sends(actions, 'round-start').length, 0);
  assert.deepEqual(ofType(actions, 'set-timer').map((t) => t.timer), ['cohort-wait']);
  actions = engine.handle({ type: 'timer', timer: 'cohort-wait', roundId: 1 }, 500);
  assert.deepEqual(roundStart(actions).cohort, ['a', 'b']);

  const { engine: e2 } = makeEngine({ minCohort: 2, maxCohort: 3, cohortWaitMs: 500 });
  ready(e2, ['a', 'b']);
  actions = e2.handle({ type: 'agent-ready', agentId: 'c' }, 10);
  assert.deepEqual(roundStart(actions).cohort, ['a', 'b', 'c']);
  assert.ok(ofType(actions, 'clear-timer').some((t) => t.timer === 'cohort-wait'));
});

test('a round where everyone answers commits the example-weighted average, then the next round starts', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 3, maxCohort: 3 });
  const { msg } = roundStart(ready(engine, ['a', 'b', 'c']));
  const counts = { a: 10, b: 30, c: 60 } as Record<string, number>;
  const deltas = { a: deltaFor(weights.length, 0), b: deltaFor(weights.length, 1), c: deltaFor(weights.length, 2) } as Record<string, Float32Array>;
  let last: EngineAction[] = [];
  for (const id of ['a', 'b', 'c']) {
    last = update(engine, id, updateMessage(1, msg.modelVersion, manifest, deltas[id] as Float32Array, counts[id]));
    assert.equal(ofType(last, 'update-accepted').length, 1);
  }
  const commit = ofType(last, 'commit');
  assert.equal(commit.length, 1);
  assert.equal(engine.phase, 'committing');
  const rec = commit[0]?.record;
  assert.ok(rec !== undefined);
  for (let i = 0; i < weights.length; i++) {
    const local = (id: string) => (weights[i] as number) + ((deltas[id] as Float32Array)[i] as number);
    const expected = (10 * local('a') + 30 * local('b') + 60 * local('c')) / 100;
    assert.ok(Math.abs((rec.model.weights[i] as number) - expected) < 1e-6, `weight ${i}`);
  }
  assert.equal(rec.summary.status, 'completed');
  assert.equal(rec.summary.metrics['included'], 3);
  assert.equal(rec.summary.totalWeight, 100);
  assert.equal(engine.globalModel.modelVersion, msg.modelVersion, 'the global model changes only after the commit');

  const done = engine.handle({ type: 'commit-done', roundId: 1 }, 20);
  assert.equal(engine.globalModel.modelVersion, rec.model.modelVersion);
  assert.equal(engine.globalModel.completedRounds, 1);
  const ends = sends(done, 'round-end');
  assert.equal(ends.length, 3);
  assert.ok(ends.every((e) => e.message['outcome'] === 'completed' && e.message['included'] === true));
  const next = roundStart(done);
  assert.equal(next.msg.roundId, 2);
  assert.equal(next.msg.modelVersion, rec.model.modelVersion);
});

test('deadline with quorum: the round completes with the answers it has; silent agents are recorded as timeouts', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 3, maxCohort: 3, quorum: { fraction: 0.6, minCount: 1 } });
  const { msg } = roundStart(ready(engine, ['a', 'b', 'c']));
  update(engine, 'a', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5));
  update(engine, 'b', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5));
  assert.equal(engine.phase, 'collecting');
  const actions = engine.handle({ type: 'timer', timer: 'deadline', roundId: 1 }, 1000);
  const commit = ofType(actions, 'commit')[0];
  assert.ok(commit !== undefined);
  const byId = new Map(commit.record.summary.participants.map((p) => [p.agentId, p.status]));
  assert.deepEqual(Object.fromEntries(byId), { a: 'included', b: 'included', c: 'timeout' });
  // A stale deadline timer of an older round is ignored.
  engine.handle({ type: 'commit-done', roundId: 1 }, 1001);
  const stale = engine.handle({ type: 'timer', timer: 'deadline', roundId: 1 }, 1002);
  assert.equal(ofType(stale, 'commit').length + ofType(stale, 'round-failed').length, 0);
});

test('deadline without quorum: the round fails, is recorded, agents are told, and a new round id retries it', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 3, maxCohort: 3, quorum: { fraction: 1, minCount: 1 } });
  const before = engine.globalModel.modelVersion;
  const { msg } = roundStart(ready(engine, ['a', 'b', 'c']));
  update(engine, 'a', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5));
  const actions = engine.handle({ type: 'timer', timer: 'deadline', roundId: 1 }, 1000);
  const failed = ofType(actions, 'round-failed');
  assert.equal(failed.length, 1);
  assert.match(failed[0]?.summary.reason ?? '', /quorum not reached: 1 of 3/);
  assert.equal(failed[0]?.summary.status, 'failed');
  const ends = sends(actions, 'round-end');
  assert.equal(ends.length, 3);
  assert.ok(ends.every((e) => e.message['outcome'] === 'aborted'));
  assert.equal(engine.globalModel.modelVersion, before, 'a failed round never touches the model');
  assert.deepEqual(ofType(actions, 'set-timer').map((t) => t.timer), ['retry']);
  assert.equal(sends(actions, 'round-start').length, 0, 'no immediate retry: the retry delay applies');
  const retry = engine.handle({ type: 'timer', timer: 'retry', roundId: 2 }, 1100);
  const next = roundStart(retry);
  assert.equal(next.msg.roundId, 2, 'the retry is a new round id');
  assert.equal(next.msg.modelVersion, before, 'with the same global model');
});

test('late updates (after the round closed) are rejected as late and never touch the model', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 2, maxCohort: 2, quorum: { fraction: 0.5, minCount: 1 } });
  const { msg } = roundStart(ready(engine, ['a', 'b']));
  update(engine, 'a', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5));
  const closed = engine.handle({ type: 'timer', timer: 'deadline', roundId: 1 }, 1000);
  assert.equal(ofType(closed, 'commit').length, 1);
  // While committing:
  let late = update(engine, 'b', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5), 1001);
  assert.deepEqual(sends(late, 'update-rejected').map((s) => s.message['reason']), ['late']);
  engine.handle({ type: 'commit-done', roundId: 1 }, 1002);
  const after = engine.globalModel.weights.slice();
  // After the next round started:
  late = update(engine, 'b', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5), 1003);
  const rej = ofType(late, 'update-rejected');
  assert.deepEqual(rej.map((r) => [r.reason, r.late, r.roundId]), [['late', true, 1]]);
  assert.deepEqual(engine.globalModel.weights, after);
});

test('bad updates are rejected with a reason and never reach the aggregate', () => {
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
  const { engine, manifest, weights } = makeEngine({ minCohort: 10, maxCohort: 10, maxExampleCount: 1000, quorum: { fraction: 0.1, minCount: 1 } });
  const { msg } = roundStart(ready(engine, ids));
  engine.handle({ type: 'agent-ready', agentId: 'x' }, 1);
  const n = weights.length;
  const v = msg.modelVersion;
  const reasons = (actions: EngineAction[]) => sends(actions, 'update-rejected').map((s) => s.message['reason']);
  const good = (i: number) => updateMessage(1, v, manifest, deltaFor(n, i), 5 + i);

  assert.deepEqual(reasons(update(engine, 'x', good(0))), ['not-in-cohort']);
  assert.deepEqual(reasons(update(engine, 'a', updateMessage(9, v, manifest, deltaFor(n, 0), 5))), ['round-mismatch']);
  assert.deepEqual(reasons(update(engine, 'a', updateMessage(1, 'f'.repeat(64), manifest, deltaFor(n, 0), 5))), ['stale-model']);
  const wrongShape: Manifest = [
    { name: 'dense/kernel', shape: [3, 4], dtype: 'float32' },
    { name: 'dense/bias', shape: [3], dtype: 'float32' },
  ];
  const wrong = update(engine, 'b', updateMessage(1, v, wrongShape, deltaFor(n, 1), 5));
  assert.deepEqual(reasons(wrong), ['manifest-mismatch']);
  assert.match(String(sends(wrong, 'update-rejected')[0]?.message['message']), /shape/);
  const nan = deltaFor(n, 2);
  nan[3] = Number.NaN;
  assert.deepEqual(reasons(update(engine, 'c', updateMessage(1, v, manifest, nan, 5))), ['non-finite']);
  const inf = deltaFor(n, 2);
  inf[0] = Number.POSITIVE_INFINITY;
  assert.deepEqual(reasons(update(engine, 'd', updateMessage(1, v, manifest, inf, 5))), ['non-finite']);
  assert.deepEqual(reasons(engine.handle({ type: 'update-invalid', agentId: 'e', roundId: 1, reason: 'bad-signature', message: 'no sig' }, 2)), ['bad-signature']);
  assert.deepEqual(reasons(update(engine, 'f', good(5))), []);
  assert.deepEqual(reasons(update(engine, 'f', good(5))), ['duplicate']);
  engine.handle({ type: 'agent-error', agentId: 'g', message: { type: 'error', code: 'TRAINING_FAILED', message: 'oom', roundId: 1 } }, 3);
  assert.deepEqual(reasons(update(engine, 'i', updateMessage(1, v, manifest, deltaFor(n, 8), 5000))), ['invalid-message']);
  const corrupt = good(9);
  const bytes = corrupt.frame as Uint8Array;
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff; // flip a data byte: the content hash no longer matches
  assert.deepEqual(reasons(update(engine, 'j', corrupt)), ['hash-mismatch']);
  const last = update(engine, 'h', good(7));
  assert.equal(engine.phase, 'committing', 'everyone answered');
  const rec = ofType(last, 'commit')[0]?.record;
  assert.ok(rec !== undefined);
  const f = deltaFor(n, 5);
  const h = deltaFor(n, 7);
  for (let k = 0; k < n; k++) {
    const expected = (weights[k] as number) + (10 * (f[k] as number) + 12 * (h[k] as number)) / 22;
    assert.ok(Math.abs((rec.model.weights[k] as number) - expected) < 1e-6, `weight ${k}`);
  }
  const status = Object.fromEntries(rec.summary.participants.map((p) => [p.agentId, p.status]));
  assert.deepEqual(status, {
    a: 'rejected', b: 'rejected', c: 'rejected', d: 'rejected', e: 'rejected', f: 'included',
    g: 'failed', h: 'included', i: 'rejected', j: 'rejected',
  });
});

test('an agent that disconnects mid-round is dropped and does not stall the round', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 3, maxCohort: 3, quorum: { fraction: 0.5, minCount: 1 } });
  const { msg } = roundStart(ready(engine, ['a', 'b', 'c']));
  update(engine, 'a', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5));
  engine.handle({ type: 'agent-left', agentId: 'c' }, 5);
  assert.equal(engine.phase, 'collecting');
  const actions = update(engine, 'b', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5));
  const rec = ofType(actions, 'commit')[0]?.record;
  assert.ok(rec !== undefined, 'closes as soon as the remaining agents answered, before the deadline');
  assert.equal(rec.summary.participants.find((p) => p.agentId === 'c')?.status, 'dropped');
  const done = engine.handle({ type: 'commit-done', roundId: 1 }, 30);
  assert.deepEqual(sends(done, 'round-end').map((s) => s.to).sort(), ['a', 'b'], 'the dropped agent gets no round-end');
});

test('a failed commit fails the round and keeps the previous model', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 2, maxCohort: 2 });
  const before = engine.globalModel;
  const { msg } = roundStart(ready(engine, ['a', 'b']));
  update(engine, 'a', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5));
  update(engine, 'b', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5));
  assert.equal(engine.phase, 'committing');
  const actions = engine.handle({ type: 'commit-failed', roundId: 1, error: 'disk full' }, 40);
  assert.match(ofType(actions, 'round-failed')[0]?.summary.reason ?? '', /disk full/);
  assert.equal(engine.globalModel, before);
  assert.equal(engine.globalModel.completedRounds, 0);
});

test('finishes after the configured rounds; agents (also late joiners) are told the run is complete', () => {
  const { engine, manifest, weights } = makeEngine({ rounds: 1, minCohort: 2, maxCohort: 2 });
  const { msg } = roundStart(ready(engine, ['a', 'b']));
  update(engine, 'a', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5));
  update(engine, 'b', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5));
  const done = engine.handle({ type: 'commit-done', roundId: 1 }, 50);
  assert.equal(ofType(done, 'finished').length, 1);
  assert.equal(engine.phase, 'finished');
  assert.deepEqual(sends(done, 'shutdown').map((s) => [s.to, s.message['reason']]), [['a', 'completed'], ['b', 'completed']]);
  assert.equal(sends(done, 'round-start').length, 0);
  const late = engine.handle({ type: 'agent-ready', agentId: 'c' }, 60);
  assert.deepEqual(sends(late, 'shutdown').map((s) => s.message['reason']), ['completed']);
  // Resuming a finished run starts nothing.
  const { engine: resumed } = makeEngine({ rounds: 1 }, { completedRounds: 1 });
  assert.equal(ofType(resumed.handle({ type: 'start' }, 0), 'finished').length, 1);
});

test("shutdown 'abort' aborts the running round; 'finish' lets it complete first", () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 2, maxCohort: 2 });
  roundStart(ready(engine, ['a', 'b']));
  const actions = engine.handle({ type: 'shutdown', mode: 'abort', notice: { reason: 'restarting', reconnectAfterMs: 2000 } }, 5);
  assert.equal(ofType(actions, 'round-failed')[0]?.summary.status, 'aborted');
  assert.deepEqual(sends(actions, 'round-end').map((s) => s.message['outcome']), ['aborted', 'aborted']);
  assert.deepEqual(sends(actions, 'shutdown').map((s) => [s.message['reason'], s.message['reconnectAfterMs']]), [
    ['restarting', 2000],
    ['restarting', 2000],
  ]);
  assert.equal(ofType(actions, 'stopped').length, 1);
  assert.equal(engine.phase, 'stopped');
  assert.equal(ofType(actions, 'set-timer').length, 0, 'no retry after an abort for shutdown');

  const { engine: e2 } = makeEngine({ minCohort: 2, maxCohort: 2 });
  const { msg } = roundStart(ready(e2, ['a', 'b']));
  const s1 = e2.handle({ type: 'shutdown', mode: 'finish' }, 5);
  assert.equal(ofType(s1, 'stopped').length, 0);
  update(e2, 'a', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5));
  update(e2, 'b', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5));
  const s2 = e2.handle({ type: 'commit-done', roundId: 1 }, 9);
  assert.equal(sends(s2, 'round-start').length, 0, 'no new round while stopping');
  assert.equal(ofType(s2, 'stopped').length, 1);
  assert.equal(e2.globalModel.completedRounds, 1);
});

/** A two-stage aggregator (like SecAgg+'s masked-input then unmask) to show the engine drives one. */
function twoStageAggregator(): AggregatorFactory {
  return {
    mode: 'plain',
    open(round) {
      const inner = new PlainAggregationSession(round);
      let stage: 'collect' | 'unmask' | 'done' = 'collect';
      const waiting = new Set<string>();
      const session: AggregationSession = {
        mode: 'plain',
        updateManifest: inner.updateManifest,
        start: () => inner.start(),
        addUpdate: (id, u) => {
          waiting.add(id);
          return inner.addUpdate(id, u);
        },
        drop: (id) => {
          waiting.delete(id);
          return { messages: [], status: stage === 'unmask' ? { kind: 'finishing', waitingFor: [...waiting] } : { kind: 'collecting' } };
        },
        close: (): AggregationStep => {
          if (stage === 'collect') {
            stage = 'unmask';
            const ask: SecaggMessage = { type: 'secagg', roundId: round.roundId, stage: 'unmask', from: '@coordinator', to: '@all', payload: new Uint8Array(1) };
            return { messages: [{ to: [...waiting], message: ask }], status: { kind: 'finishing', waitingFor: [...waiting] } };
          }
          return { messages: [], status: { kind: 'aborted', reason: 'unmask stage timed out' } };
        },
        receive: (id) => {
          waiting.delete(id);
          if (waiting.size > 0) return { messages: [], status: { kind: 'finishing', waitingFor: [...waiting] } };
          stage = 'done';
          return inner.close();
        },
      };
      return session;
    },
  };
}

test('an aggregator with an extra stage after collection (secure-style) is driven through it', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 2, maxCohort: 2 }, { aggregator: twoStageAggregator() });
  const { msg } = roundStart(ready(engine, ['a', 'b']));
  update(engine, 'a', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5));
  const closed = update(engine, 'b', updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5));
  assert.equal(engine.phase, 'aggregating');
  assert.deepEqual(sends(closed, 'secagg').map((s) => s.to).sort(), ['a', 'b']);
  assert.deepEqual(ofType(closed, 'set-timer').map((t) => t.timer), ['aggregation-deadline']);
  const reply = (from: string): SecaggMessage => ({ type: 'secagg', roundId: 1, stage: 'unmask-response', from, to: '@coordinator', payload: new Uint8Array(1) });
  engine.handle({ type: 'secagg', agentId: 'a', message: reply('a') }, 20);
  const done = engine.handle({ type: 'secagg', agentId: 'b', message: reply('b') }, 21);
  assert.equal(ofType(done, 'commit').length, 1);

  // Same aggregator, unmask deadline: the round fails cleanly.
  const { engine: e2 } = makeEngine({ minCohort: 2, maxCohort: 2 }, { aggregator: twoStageAggregator() });
  const s2 = roundStart(ready(e2, ['a', 'b']));
  update(e2, 'a', updateMessage(1, s2.msg.modelVersion, manifest, deltaFor(weights.length, 0), 5));
  update(e2, 'b', updateMessage(1, s2.msg.modelVersion, manifest, deltaFor(weights.length, 1), 5));
  const t = e2.handle({ type: 'timer', timer: 'aggregation-deadline', roundId: 1 }, 600);
  assert.match(ofType(t, 'round-failed')[0]?.summary.reason ?? '', /unmask stage timed out/);
});

test('round start carries a frame whose hash is the model version', () => {
  const { engine } = makeEngine();
  const { msg } = roundStart(ready(engine, ['a', 'b']));
  const again = encodeFrame({ manifest: engine.globalModel.manifest, data: engine.globalModel.weights });
  assert.deepEqual(Buffer.from(msg.weights), again);
});
