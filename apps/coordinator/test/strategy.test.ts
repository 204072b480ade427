// Strategies and plain aggregation, with hand-computed numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrame, encodeFrame } from '@fedclr/protocol';
import type { Manifest } from '@fedclr/protocol';
import { PlainAggregationSession, type Aggregate } from '../src/aggregation.js';
import { isCoordinatorError } from '../src/errors.js';
import { createStrategy, fedAdam, fedAvg, fedAvgM, statisticsMask, withAveragedStatistics } from '../src/strategy.js';

const agg = (weightedSum: number[], totalWeight: number): Aggregate => ({
  weightedSum: Float64Array.from(weightedSum),
  totalWeight,
  contributors: ['a', 'b'],
});

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs((actual[i] as number) - (expected[i] as number)) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('FedAvg: x + weighted mean delta (agents: delta [1,0] x1 and [0,2] x3)', () => {
  const s = fedAvg();
  // sum = 1*[1,0] + 3*[0,2] = [1,6], weight 4, mean [0.25, 1.5]
  const r = s.apply(Float32Array.of(1, 2), agg([1, 6], 4), s.initialState(2));
  close(r.weights, [1.25, 3.5]);
  assert.equal(r.state.step, 1);
  const half = fedAvg({ lr: 0.5 }).apply(Float32Array.of(1, 2), agg([1, 6], 4), s.initialState(2));
  close(half.weights, [1.125, 2.75]);
});

test('FedAvgM: velocity = momentum * velocity + mean delta; x += lr * velocity (two rounds)', () => {
  const s = fedAvgM({ momentum: 0.5, lr: 1 });
  const r1 = s.apply(Float32Array.of(1, 2), agg([1, 6], 4), s.initialState(2));
  close(r1.weights, [1.25, 3.5]); // v = [0.25, 1.5]
  const r2 = s.apply(r1.weights, agg([2, -2], 2), r1.state); // d = [1, -1]; v = [0.125+1, 0.75-1]
  close(r2.weights, [2.375, 3.25]);
  close(r2.state.buffers['velocity'] as Float64Array, [1.125, -0.25]);
  assert.deepEqual(s.params, { lr: 1, momentum: 0.5 });
  assert.deepEqual(fedAvgM().params, { lr: 1, momentum: 0.9 });
});

test('FedAdam (Reddi et al. 2021): hand-computed step, and the defaults', () => {
  const s = fedAdam({ lr: 1, beta1: 0.5, beta2: 0.5, tau: 0.5 });
  const st = s.initialState(2);
  close(st.buffers['v'] as Float64Array, [0.25, 0.25]); // v starts at tau^2
  // d = [1, -2]; m = [0.5, -1]; v = 0.5*0.25 + 0.5*d^2 = [0.625, 2.125]
  // x = m / (sqrt(v) + tau) = 0.5/(0.790569415+0.5), -1/(1.457737974+0.5)
  const r = s.apply(Float32Array.of(0, 0), agg([1, -2], 1), st);
  close(r.weights, [0.3874258867, -0.5107937]);
  close(r.state.buffers['m'] as Float64Array, [0.5, -1], 1e-12);
  close(r.state.buffers['v'] as Float64Array, [0.625, 2.125], 1e-12);

  const d = fedAdam();
  assert.deepEqual(d.params, { lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  // d = [1]: m = 0.1, v = 0.99e-6 + 0.01 = 0.01000099, x = 0.1 * 0.1 / (sqrt(v) + 1e-3) = 0.0990050...
  const one = d.apply(Float32Array.of(0), agg([1], 1), d.initialState(1));
  close(one.weights, [0.01 / (Math.sqrt(0.01000099) + 1e-3)]);
  close(one.weights, [0.099005], 1e-6);
});

test('BatchNorm statistics are averaged whatever the server step size or momentum', () => {
  const manifest = [
    { name: 'conv1/kernel', shape: [2] },
    { name: 'bn1/gamma', shape: [1] },
    { name: 'bn1/moving_mean', shape: [1] },
    { name: 'bn1/moving_variance', shape: [1] },
  ];
  const mask = statisticsMask(manifest);
  assert.deepEqual([...mask], [0, 0, 0, 1, 1]);
  // mean delta [0.5, 0.5, 0.5, 0.5, -0.9]: the variance 1 -> 0.1 would go to -0.8 with lr 2.
  const global = Float32Array.of(1, 1, 1, 0, 1);
  const aggregate = agg([1, 1, 1, 1, -1.8], 2);
  const doubled = withAveragedStatistics(fedAvg({ lr: 2 }), mask);
  close(doubled.apply(global, aggregate, doubled.initialState(5)).weights, [2, 2, 2, 0.5, 0.1]);
  const momentum = withAveragedStatistics(fedAvgM({ lr: 1, momentum: 0.9 }), mask);
  const r1 = momentum.apply(global, aggregate, momentum.initialState(5));
  const r2 = momentum.apply(r1.weights, agg([0, 0, 0, 0, 0], 2), r1.state);
  // parameters keep moving on momentum (0.9 * 0.5); statistics stay at the agents' average
  close(r2.weights, [1.95, 1.95, 1.95, 0.5, 0.1]);
  // plain FedAvg is unchanged by the wrapper; a model without statistics gets the strategy itself
  const plain = withAveragedStatistics(fedAvg(), mask);
  close(plain.apply(global, aggregate, plain.initialState(5)).weights, [1.5, 1.5, 1.5, 0.5, 0.1]);
  const bare = fedAvg();
  assert.equal(withAveragedStatistics(bare, statisticsMask([{ name: 'dense/kernel', shape: [3] }])), bare);
  assert.throws(() => doubled.apply(Float32Array.of(1, 2), agg([0, 0], 1), doubled.initialState(2)), /statistics mask has 5 values but the model has 2/);
});

test('strategies refuse empty aggregates, wrong dimensions, foreign state and divergence', () => {
  const s = fedAvg();
  const code = (fn: () => unknown, c: string) => assert.throws(fn, (e: unknown) => isCoordinatorError(e) && e.code === c);
  code(() => s.apply(Float32Array.of(1), agg([1], 0), s.initialState(1)), 'FEDCLR_COORD_STRATEGY');
  code(() => s.apply(Float32Array.of(1, 2), agg([1], 1), s.initialState(2)), 'FEDCLR_COORD_STRATEGY');
  code(() => s.apply(Float32Array.of(1), agg([1e300], 1), s.initialState(1)), 'FEDCLR_COORD_STRATEGY');
  const m = fedAvgM();
  code(() => m.apply(Float32Array.of(1), agg([1], 1), fedAdam().initialState(1)), 'FEDCLR_COORD_STRATEGY_STATE');
  assert.equal(createStrategy({ name: 'fedadam', lr: 0.5 }).params['lr'], 0.5);
});

test('plain aggregation sums weighted deltas in float64 and exposes only the sum and the weight', () => {
  const manifest: Manifest = [{ name: 'w', shape: [3], dtype: 'float32' }];
  const session = new PlainAggregationSession({ roundId: 1, modelVersion: 'a'.repeat(64), cohort: ['a', 'b', 'c'], manifest, dimension: 3 });
  const frame = (v: number[]) => decodeFrame(encodeFrame({ manifest, data: Float32Array.from(v) }));
  session.addUpdate('a', { frame: frame([1, 2, 3]), exampleCount: 2 });
  session.addUpdate('b', { frame: frame([0.5, -1, 0]), exampleCount: 4 });
  const code = (fn: () => unknown, c: string) => assert.throws(fn, (e: unknown) => isCoordinatorError(e) && e.code === c);
  code(() => session.addUpdate('b', { frame: frame([0, 0, 0]), exampleCount: 1 }), 'FEDCLR_COORD_AGGREGATION_INPUT');
  code(() => session.addUpdate('z', { frame: frame([0, 0, 0]), exampleCount: 1 }), 'FEDCLR_COORD_AGGREGATION_INPUT');
  code(() => session.addUpdate('c', { frame: frame([0, 0, 0]), exampleCount: undefined }), 'FEDCLR_COORD_AGGREGATION_INPUT');
  const step = session.close();
  assert.equal(step.status.kind, 'done');
  if (step.status.kind !== 'done') return;
  close(step.status.aggregate.weightedSum, [4, 0, 6], 0);
  assert.equal(step.status.aggregate.totalWeight, 6);
  assert.deepEqual(step.status.aggregate.contributors, ['a', 'b']);
  assert.deepEqual(Object.keys(step.status.aggregate).sort(), ['contributors', 'metrics', 'totalWeight', 'weightedSum']);
  // Metrics are counts over the cohort (how many updates the server's norm bound clipped), never per agent.
  assert.deepEqual(step.status.aggregate.metrics, { clippedUpdates: 0 });
  code(() => session.close(), 'FEDCLR_COORD_AGGREGATION_STATE');
  code(() => session.addUpdate('c', { frame: frame([0, 0, 0]), exampleCount: 1 }), 'FEDCLR_COORD_AGGREGATION_STATE');

  const empty = new PlainAggregationSession({ roundId: 2, modelVersion: 'a'.repeat(64), cohort: ['a'], manifest, dimension: 3 });
  assert.equal(empty.close().status.kind, 'aborted');
});

test('float64 accumulation: 1000 agents of small deltas on a large base sum without float32 drift', () => {
  const manifest: Manifest = [{ name: 'w', shape: [1], dtype: 'float32' }];
  const cohort = Array.from({ length: 1000 }, (_, i) => `a${i}`);
  const session = new PlainAggregationSession({ roundId: 1, modelVersion: 'a'.repeat(64), cohort, manifest, dimension: 1 });
  const f = decodeFrame(encodeFrame({ manifest, data: Float32Array.of(1e-3) }));
  for (const id of cohort) session.addUpdate(id, { frame: f, exampleCount: 1000 });
  const st = session.close().status;
  assert.equal(st.kind, 'done');
  if (st.kind !== 'done') return;
  const mean = (st.aggregate.weightedSum[0] as number) / st.aggregate.totalWeight;
  assert.ok(Math.abs(mean - Math.fround(1e-3)) < 1e-15);
});
