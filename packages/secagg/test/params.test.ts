// Threshold and neighbour-graph derivation (SecAgg+ conditions) and their error paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  COMPLETE_GRAPH_MAX_COHORT,
  ErrorCodes,
  buildNeighbourGraph,
  deriveSecAggParams,
  log2HypergeometricTail,
  type SecAggParams,
} from '../src/index.js';
import { agentId, keyFrom } from './helpers.js';

function checkComplete(p: SecAggParams): void {
  const k = p.neighbours;
  assert.equal(p.graph, 'complete');
  assert.equal(k, p.cohortSize - 1);
  // Privacy against the split attack: t > (k + C)/2. Recovery: t <= k - D.
  assert.ok(2 * p.threshold > k + p.maxCorrupt);
  assert.ok(p.threshold <= k - p.maxDropouts);
  assert.ok(p.threshold >= 2);
}

test('small cohorts use the complete graph with t = floor((k + C)/2) + 1', () => {
  for (let n = 3; n <= COMPLETE_GRAPH_MAX_COHORT; n++) {
    const p = deriveSecAggParams({ cohortSize: n, dropoutFraction: 0.1, corruptFraction: 0.1 });
    checkComplete(p);
    assert.equal(p.threshold, Math.max(2, Math.floor((n - 1 + Math.floor(0.1 * n)) / 2) + 1));
  }
  const p = deriveSecAggParams({ cohortSize: 10, dropoutFraction: 0.3, corruptFraction: 0.2 });
  assert.deepEqual([p.neighbours, p.threshold, p.maxDropouts, p.maxCorrupt], [9, 6, 3, 2]);
});

test('large cohorts get a sparse Harary graph with k = O(log n) growth and the bounds met', () => {
  const ks: number[] = [];
  for (const n of [100, 1000, 10000]) {
    const p = deriveSecAggParams({ cohortSize: n, dropoutFraction: 0.1, corruptFraction: 0.05 });
    assert.equal(p.graph, 'harary');
    assert.equal(p.neighbours % 2, 0);
    assert.ok(p.neighbours < n - 1);
    assert.ok(2 * p.threshold > p.neighbours, 't is a majority of the neighbours');
    assert.ok(p.log2PrivacyFailure <= -p.securityBits);
    assert.ok(p.log2ConnectivityFailure <= -p.securityBits);
    assert.ok(p.log2RecoveryFailure <= -p.correctnessBits);
    ks.push(p.neighbours);
  }
  // Logarithmic growth: 10x more agents add a roughly constant number of neighbours.
  assert.ok((ks[2] as number) < 1.5 * (ks[1] as number), `k: ${ks.join(', ')}`);
  assert.ok((ks[2] as number) - (ks[1] as number) <= (ks[1] as number) - (ks[0] as number), `k: ${ks.join(', ')}`);
});

test('an explicit k >= n - 1 means the complete graph; odd sparse k is a config error', () => {
  checkComplete(deriveSecAggParams({ cohortSize: 30, dropoutFraction: 0.1, corruptFraction: 0.1, neighbours: 29 }));
  assert.throws(() => deriveSecAggParams({ cohortSize: 30, dropoutFraction: 0.1, corruptFraction: 0.1, neighbours: 11 }), {
    code: ErrorCodes.CONFIG_INVALID,
  });
});

test('unachievable fractions throw THRESHOLD_UNACHIEVABLE with an explanation', () => {
  assert.throws(() => deriveSecAggParams({ cohortSize: 10, dropoutFraction: 0.4, corruptFraction: 0.3 }), (err: Error & { code: string }) => {
    assert.equal(err.code, ErrorCodes.THRESHOLD_UNACHIEVABLE);
    assert.match(err.message, /C \+ 2D < k/);
    return true;
  });
  // Too small a k for the requested security level.
  assert.throws(() => deriveSecAggParams({ cohortSize: 200, dropoutFraction: 0.1, corruptFraction: 0.1, neighbours: 6 }), {
    code: ErrorCodes.THRESHOLD_UNACHIEVABLE,
  });
  // GF(2^8) Shamir: a complete graph over 300 agents would need 299 shares.
  assert.throws(() => deriveSecAggParams({ cohortSize: 300, dropoutFraction: 0.1, corruptFraction: 0.1, neighbours: 299 }), {
    code: ErrorCodes.THRESHOLD_UNACHIEVABLE,
  });
  assert.throws(() => deriveSecAggParams({ cohortSize: 2, dropoutFraction: 0, corruptFraction: 0 }), { code: ErrorCodes.CONFIG_INVALID });
  assert.throws(() => deriveSecAggParams({ cohortSize: 10, dropoutFraction: 1, corruptFraction: 0 }), { code: ErrorCodes.CONFIG_INVALID });
});

test('hypergeometric tail matches direct enumeration', () => {
  // P[X >= 2] for X ~ Hyp(N=10, K=3, n=4): 1 - P0 - P1.
  const c = (n: number, k: number): number => {
    let r = 1;
    for (let i = 0; i < k; i++) r = (r * (n - i)) / (i + 1);
    return r;
  };
  const p0 = (c(3, 0) * c(7, 4)) / c(10, 4);
  const p1 = (c(3, 1) * c(7, 3)) / c(10, 4);
  assert.ok(Math.abs(2 ** log2HypergeometricTail(10, 3, 4, 2) - (1 - p0 - p1)) < 1e-12);
  assert.equal(log2HypergeometricTail(10, 3, 4, 4), -Infinity);
  assert.ok(Math.abs(log2HypergeometricTail(10, 3, 4, 0)) < 1e-12);
});

test('Harary graph: k-regular, symmetric, no self loops, deterministic in (seed, session)', () => {
  const ids = Array.from({ length: 50 }, (_, i) => agentId(i));
  const seed = keyFrom('graph-seed');
  const g = buildNeighbourGraph(ids, 8, seed, 's1');
  assert.equal(g.kind, 'harary');
  for (const a of ids) {
    const ns = g.neighbours(a);
    assert.equal(ns.length, 8);
    assert.ok(!ns.includes(a));
    for (const b of ns) assert.ok(g.isNeighbour(b, a));
  }
  // Connected (a ring with chords).
  const seen = new Set([ids[0] as string]);
  const stack = [ids[0] as string];
  while (stack.length > 0) {
    for (const b of g.neighbours(stack.pop() as string)) {
      if (!seen.has(b)) {
        seen.add(b);
        stack.push(b);
      }
    }
  }
  assert.equal(seen.size, ids.length);
  // Same inputs (in any order) give the same graph; another seed or session another graph.
  const again = buildNeighbourGraph([...ids].reverse(), 8, seed, 's1');
  for (const a of ids) assert.deepEqual(again.neighbours(a), g.neighbours(a));
  const other = buildNeighbourGraph(ids, 8, keyFrom('other-seed'), 's1');
  const otherSession = buildNeighbourGraph(ids, 8, seed, 's2');
  assert.ok(ids.some((a) => other.neighbours(a).join() !== g.neighbours(a).join()));
  assert.ok(ids.some((a) => otherSession.neighbours(a).join() !== g.neighbours(a).join()));
  // Complete graph when k >= n - 1.
  const complete = buildNeighbourGraph(ids.slice(0, 6), 5, seed, 's1');
  assert.equal(complete.kind, 'complete');
  assert.equal(complete.neighbours(ids[0] as string).length, 5);
  assert.throws(() => buildNeighbourGraph([...ids, ids[0] as string], 8, seed, 's1'), { code: ErrorCodes.CONFIG_INVALID });
});
